package haproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// FDBudget is the number of open files HAProxy 2.6 sizes itself for at start (its maxsock)
// and refuses to start without ("Cannot raise FD limit to N, limit is X"), counted from a
// configuration as HAProxy counts it. The parts were measured against haproxy 2.6 by reading
// that refusal for generated configurations (fdbudget_test.go keeps doing so):
//
//	2 × maxconn + 2 × maxpipes + listeners + checked servers (+1 more with agent-check)
//	+ 3 × nbthread + 10 + the CLI (10 once for the first stats socket or master, + 1 each)
type FDBudget struct {
	// MaxConn is the global maxconn; 0 when the configuration sets none (HAProxy then sizes
	// maxconn from the limit it finds, so it always fits).
	MaxConn int
	// MaxPipes is the global maxpipes (each pipe takes two files).
	MaxPipes int
	// Listeners counts the addresses of bind lines, a port range counting each port.
	Listeners int
	// CheckedServers counts the servers with a health check; AgentChecks those that also
	// have an agent check (one more file each).
	CheckedServers, AgentChecks int
	// Threads is nbthread, or the CPUs lodestar may run on when the configuration sets none.
	Threads int
	// CLI is what the stats sockets and the master CLI (-W -S, as Process starts HAProxy) add.
	CLI int
	// ULimitN is the global ulimit-n: when set, HAProxy asks for exactly that many.
	ULimitN int
}

// fdSections are the keywords that open a section: HAProxy does not need the lines inside
// indented, so neither does the count.
var fdSections = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"peers": true, "resolvers": true, "userlist": true, "mailers": true, "program": true,
	"http-errors": true, "ring": true, "cache": true, "fcgi-app": true,
}

// fdFixed is what HAProxy 2.6 adds whatever the configuration (measured): 10, plus three
// per thread (its poller and its wake-up pipe).
const fdFixed = 10

// MasterCLIFDs is what running as a master with a master CLI socket (-W -S) adds (measured),
// stats sockets then counting one each.
const MasterCLIFDs = 22

// Need is the number of open files HAProxy asks for.
func (b FDBudget) Need() int {
	if b.ULimitN > 0 {
		return b.ULimitN
	}
	if b.MaxConn == 0 {
		return 0
	}
	return 2*b.MaxConn + b.Listeners + b.CheckedServers + b.Extra()
}

// Extra is the part of Need that does not grow with the configuration's size.
func (b FDBudget) Extra() int { return fdFixed + 3*b.Threads + b.CLI + 2*b.MaxPipes + b.AgentChecks }

// EstimateFDs counts config's FD budget. masterCLI says HAProxy runs as a master with a master
// CLI socket (-W -S), as Process starts it; cpus is the thread count when config sets no
// nbthread (runtime.NumCPU, the CPUs this process may run on, as HAProxy counts them).
func EstimateFDs(config []byte, masterCLI bool, cpus int) FDBudget {
	b := FDBudget{Threads: cpus}
	sockets := 0
	var section string
	var defaultCheck, sectionCheck bool
	sc := bufio.NewScanner(bytes.NewReader(config))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fdSections[fields[0]] {
			// A section's servers inherit the default-server of the defaults before it.
			section, sectionCheck = fields[0], defaultCheck
			if section == "defaults" {
				defaultCheck, sectionCheck = false, false
			}
			continue
		}
		switch {
		case section == "global":
			globalFD(&b, fields, &sockets)
		case fields[0] == "bind" && len(fields) > 1:
			b.Listeners += bindAddresses(fields[1])
		case fields[0] == "default-server":
			checked := hasWord(fields, "check")
			if section == "defaults" {
				defaultCheck = checked
			}
			sectionCheck = sectionCheck || checked
		case fields[0] == "server" || fields[0] == "server-template":
			n := 1
			if fields[0] == "server-template" && len(fields) > 2 {
				n = templateCount(fields[2])
			}
			if (hasWord(fields, "check") || sectionCheck) && !hasWord(fields, "no-check") {
				b.CheckedServers += n
				if hasWord(fields, "agent-check") {
					b.AgentChecks += n
				}
			}
		}
	}
	b.Listeners += sockets
	switch {
	case masterCLI:
		b.CLI = MasterCLIFDs
	case sockets > 0:
		b.CLI = 10
	}
	return b
}

// globalFD reads one line of the global section.
func globalFD(b *FDBudget, fields []string, sockets *int) {
	num := func() int {
		if len(fields) < 2 {
			return 0
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil || n < 0 {
			return 0
		}
		return n
	}
	switch fields[0] {
	case "maxconn":
		b.MaxConn = num()
	case "maxpipes":
		b.MaxPipes = num()
	case "nbthread":
		if n := num(); n > 0 {
			b.Threads = n
		}
	case "ulimit-n":
		b.ULimitN = num()
	case "stats":
		if len(fields) > 1 && fields[1] == "socket" {
			*sockets++
		}
	}
}

// bindAddresses counts the listeners of a bind line's address list: "a:80,b:81" is two,
// ":8000-8009" ten.
func bindAddresses(list string) int {
	n := 0
	for _, addr := range strings.Split(list, ",") {
		if addr == "" {
			continue
		}
		n++
		if family, _, ok := strings.Cut(addr, "@"); ok && !strings.HasPrefix(family, "ip") && !strings.HasPrefix(family, "tcp") {
			continue // unix@, abns@, fd@, sockpair@: one socket, no port
		}
		i := strings.LastIndex(addr, ":")
		if i < 0 {
			continue
		}
		lo, hi, ok := strings.Cut(addr[i+1:], "-")
		if !ok {
			continue
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && h > l && h-l < 65536 {
			n += h - l
		}
	}
	return n
}

// templateCount is the number of servers of a server-template's "<num>" or "<from>-<to>".
func templateCount(spec string) int {
	lo, hi, ranged := strings.Cut(spec, "-")
	l, err := strconv.Atoi(lo)
	if err != nil || l < 0 {
		return 1
	}
	if !ranged {
		return l
	}
	h, err := strconv.Atoi(hi)
	if err != nil || h < l {
		return 1
	}
	return h - l + 1
}

func hasWord(fields []string, w string) bool {
	for _, f := range fields[1:] {
		if f == w {
			return true
		}
	}
	return false
}

// OpenFilesLimit is the most open files a HAProxy child of this process can raise itself to:
// the hard RLIMIT_NOFILE, or the kernel's fs.nr_open with CAP_SYS_RESOURCE (which lets it
// raise the hard limit too).
func OpenFilesLimit() (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	limit := int(min(lim.Max, 1<<30))
	if hasCapSysResource() {
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > limit {
				limit = n
			}
		}
	}
	return limit, nil
}

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/self/status's CapEff.
const capSysResource = 24

func hasCapSysResource() bool {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && caps&(1<<capSysResource) != 0
		}
	}
	return false
}

// FDLimitError says that a configuration needs more open files than HAProxy may have, in
// the numbers HAProxy counts, with what to do about it.
type FDLimitError struct {
	Budget FDBudget
	Limit  int
}

func (e *FDLimitError) Error() string {
	b := e.Budget
	if b.ULimitN > 0 {
		return fmt.Sprintf("HAProxy needs %d open files (the configuration's global ulimit-n), the limit is %d: "+
			"raise LimitNOFILE (systemd) / ulimit -n for lodestar, or lower ulimit-n", b.ULimitN, e.Limit)
	}
	return fmt.Sprintf("HAProxy needs %d open files (2×maxconn %d + %d listeners + %d checked servers + %d), the limit is %d: "+
		"raise LimitNOFILE (systemd) / ulimit -n for lodestar, or lower --haproxy-maxconn",
		b.Need(), b.MaxConn, b.Listeners, b.CheckedServers, b.Extra(), e.Limit)
}

// CheckFDBudget returns a *FDLimitError when config needs more open files than limit.
func CheckFDBudget(config []byte, masterCLI bool, limit int) error {
	b := EstimateFDs(config, masterCLI, runtime.NumCPU())
	if b.Need() > limit {
		return &FDLimitError{Budget: b, Limit: limit}
	}
	return nil
}

// IsFDLimit reports whether err is (or wraps) a *FDLimitError.
func IsFDLimit(err error) bool {
	var fe *FDLimitError
	return errors.As(err, &fe)
}

// checkOpenFiles returns a *FDLimitError when config needs more open files than the HAProxy
// lodestar supervises may have: it would refuse to start (or to reload onto it), and restarting
// it could not help until the limit, or the configuration, changes.
func (a *Applier) checkOpenFiles(config []byte) error {
	if a.proc == nil {
		return nil
	}
	limitOf := a.cfg.OpenFilesLimit
	if limitOf == nil {
		limitOf = OpenFilesLimit
	}
	limit, err := limitOf()
	if err != nil {
		a.log.Warn("the open-files limit is unknown: HAProxy's needs are not checked", "err", err)
		return nil
	}
	return CheckFDBudget(config, true, limit)
}
