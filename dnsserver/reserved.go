package dnsserver

import (
	"log/slog"
	"strings"
	"sync"
)

// A Mesos framework is named by its tenant, and its records hang off "{fw}.{domain}". A
// framework named like one of the zone's own names — leader, master, master{N}, slave, ns{N} —
// would add its host to leader.{d} (and its tasks under slave.{d}, where other frameworks'
// tasks have their agent names). mesos-dns lets it; lodestar serves such a framework under
// an alternative instead: the last label of its name (the one next to the domain) gets
// reservedFrameworkSuffix, so "leader" is served as leader-framework.{d} and "web.slave" as
// web.slave-framework.{d}.
//
// The alternatives cannot collide with another framework: a last label that is a system name
// followed by any number of "-framework" is itself reserved and gets one more, so the
// renaming is one-to-one and no framework keeps a name an alternative maps to.

// reservedFrameworkSuffix is appended to the last label of a framework named like a system name.
const reservedFrameworkSuffix = "-framework"

// systemLabel reports whether l is the first label of one of the zone's own names:
// leader, master, master{N}, slave, ns{N} (ns1 is served; the others are kept free for more
// name servers).
func systemLabel(l string) bool {
	switch l {
	case "leader", "master", "slave":
		return true
	}
	if n, ok := strings.CutPrefix(l, "master"); ok {
		return allDigits(n)
	}
	if n, ok := strings.CutPrefix(l, "ns"); ok {
		return allDigits(n)
	}
	return false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// reservedLabel reports whether a framework's last label must be renamed: a system label,
// or a system label with one or more reservedFrameworkSuffix (another framework's alternative).
func reservedLabel(l string) bool {
	for {
		base, ok := strings.CutSuffix(l, reservedFrameworkSuffix)
		if !ok {
			break
		}
		l = base
	}
	return systemLabel(l)
}

// frameworkDomain returns the name a framework's records go under: its name cleaned part by
// part (domainFrag), with a reserved last label renamed. renamed says whether it was.
func frameworkDomain(name string, rfc952 bool) (fw string, renamed bool) {
	fw = domainFrag(name, rfc952)
	last := fw[strings.LastIndexByte(fw, '.')+1:]
	if fw == "" || !reservedLabel(last) {
		return fw, false
	}
	return fw + reservedFrameworkSuffix, true
}

// frameworkDomain is frameworkDomain for the builder: a renamed framework is logged, once per
// process and name, not with every snapshot.
func (b *builder) frameworkDomain(name string) string {
	fw, renamed := frameworkDomain(name, b.rfc952)
	if renamed {
		b.renamed++
		reservedLog.note(b.cfg.Logger, name, fw)
	}
	return fw
}

// maxReservedLogged bounds the names remembered as logged: a tenant creating ever new
// frameworks named master1, master2, … cannot grow the set without bound. Past it, the
// renames are still made and counted, only no longer logged.
const maxReservedLogged = 1024

// reservedLog remembers which renamed frameworks were logged.
var reservedLog = &onceLog{seen: map[string]bool{}}

type onceLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

// first reports whether key is new, and remembers it (up to maxReservedLogged keys).
func (o *onceLog) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[key] || len(o.seen) >= maxReservedLogged {
		return false
	}
	o.seen[key] = true
	return true
}

func (o *onceLog) note(log *slog.Logger, name, alt string) {
	if !o.first(name) || log == nil {
		return
	}
	log.Warn("DNS: a Mesos framework is named like one of the zone's own names (leader, master, masterN, slave, nsN); its records are served under another name",
		"framework", truncateForLog(name), "served_as", alt)
}

// truncateForLog quotes at most 100 bytes of an untrusted name.
func truncateForLog(s string) string {
	const limit = 100
	if len(s) > limit {
		return strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return s
}

// onTaskName reports whether a framework's own name, {fw}.{d}, is a task name of another
// framework: fw is "{label}.{other}" for a framework (or Marathon's) named {other}, whose
// task {label} is {label}.{other}.{d}. A framework named "web.marathon" would add its host to
// Marathon's app "web"; such a framework gets no {fw}.{d} and _framework._tcp.{fw}.{d} (logged
// once). Its tasks keep their names: those have two or more labels above {other}, where
// {other}'s own names all start with '_'.
func (b *builder) onTaskName(fw, name string) bool {
	dot := strings.IndexByte(fw, '.')
	if dot < 0 {
		return false
	}
	if b.fwDomains == nil {
		b.fwDomains = map[string]bool{}
		m, _ := frameworkDomain(b.cfg.MarathonFramework, b.rfc952)
		b.fwDomains[m] = true
		for i := range b.snap.Mesos.Frameworks {
			d, _ := frameworkDomain(b.snap.Mesos.Frameworks[i].Name, b.rfc952)
			b.fwDomains[d] = true
		}
	}
	other := fw[dot+1:]
	if !b.fwDomains[other] {
		return false
	}
	b.renamed++
	reservedLog.noteNested(b.cfg.Logger, name, other)
	return true
}

func (o *onceLog) noteNested(log *slog.Logger, name, other string) {
	if !o.first("nested\x00"+name) || log == nil {
		return
	}
	log.Warn("DNS: a Mesos framework's name is a task name of another framework; its own host record is left out (its tasks are served)",
		"framework", truncateForLog(name), "other_framework", other)
}
