package dnsserver

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lodestar-lb/lodestar/discovery"
)

// IP sources: where a task's addresses come from. RecordConfig.IPSources lists them in order;
// the first that yields any address wins.
const (
	// IPSourceNetinfo: container_status.network_infos[].ip_addresses of the latest TASK_RUNNING status.
	IPSourceNetinfo = "netinfo"
	// IPSourceMesos: the MesosContainerizer.NetworkSettings.IPAddress label of that status.
	IPSourceMesos = "mesos"
	// IPSourceDocker: the Docker.NetworkSettings.IPAddress label of that status.
	IPSourceDocker = "docker"
	// IPSourceHost: the agent's address.
	IPSourceHost = "host"
)

// Status labels the mesos and docker IP sources read.
const (
	mesosIPLabel  = "MesosContainerizer.NetworkSettings.IPAddress"
	dockerIPLabel = "Docker.NetworkSettings.IPAddress"
)

// Defaults of RecordConfig.
const (
	DefaultDomain            = "mesos"
	DefaultMarathonFramework = "marathon"
	DefaultTTL               = 60
	DefaultRefreshSeconds    = 30
	// DefaultSRVWeight is the weight of every SRV record, as mesos-dns answers.
	DefaultSRVWeight uint16 = 1
	// The SOA timers, mesos-dns's.
	DefaultSOARefresh uint32 = 60
	DefaultSOARetry   uint32 = 600
	DefaultSOAExpire  uint32 = 86400
)

// DefaultIPSources is mesos-dns's default IP source order.
var DefaultIPSources = []string{IPSourceNetinfo, IPSourceMesos, IPSourceHost}

// RecordConfig says how records are named and where their addresses come from. The zero value
// is usable: WithDefaults fills in every unset field.
type RecordConfig struct {
	// Domain is the zone, without trailing dot (default "mesos").
	Domain string
	// IPSources are tried in order for a task's addresses; the first that yields any wins.
	// Values: netinfo, mesos, docker, host (default netinfo, mesos, host).
	IPSources []string
	// EnforceRFC952 names labels per RFC 952 (at most 24 characters, no leading digit).
	EnforceRFC952 bool
	// HealthyOnly leaves out tasks Marathon reports unhealthy (a health check with alive=false),
	// both Marathon's copy and the Mesos state's copy of the task.
	HealthyOnly bool
	// MarathonFramework is the Mesos framework name of Marathon (default "marathon"): tasks known
	// only from Marathon are named under it.
	MarathonFramework string
	// NSAddrs are lodestar's own DNS listen addresses: the A/AAAA records of ns1.{domain}, the
	// SOA mname. Unspecified addresses (0.0.0.0, ::) are left out; the caller expands them.
	NSAddrs []netip.Addr
	// ResolveHost returns the addresses of a host name (a framework without a pid, an agent or
	// Marathon task known only by host name). It must not block: a cached lookup whose
	// refreshes run elsewhere. May be nil, and then such names get no addresses.
	ResolveHost func(host string) []netip.Addr
	// SOAMname and SOARname are the SOA's primary name server and responsible mailbox, as
	// names (default ns1.{domain} and root.ns1.{domain}, mesos-dns's SOAMname and SOARname).
	SOAMname, SOARname string
	// SOARefresh, SOARetry and SOAExpire are the SOA's timers in seconds (default 60, 600 and
	// 86400, mesos-dns's).
	SOARefresh, SOARetry, SOAExpire uint32
	// SOAMinSerial is the lowest serial the first index gets; later ones advance from it as
	// usual. Zero: the first serial is the time of the first build, as mesos-dns's.
	SOAMinSerial uint32
	// TTL (default 60) and RefreshSeconds (how often the Mesos state is read, default 30) are
	// reported by AXFR only.
	TTL            uint32
	RefreshSeconds int
	// Logger tells about frameworks renamed because their name is reserved (nil: not told).
	Logger *slog.Logger
	// SRVWeight is the weight of every SRV record; nil means DefaultSRVWeight (1, as mesos-dns
	// answers). A pointer, so that a weight of 0 can be asked for.
	SRVWeight *uint16
}

// WithDefaults returns the configuration with unset fields defaulted and the domain
// normalised (lower case, no trailing dot).
func (c RecordConfig) WithDefaults() RecordConfig {
	c.Domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.Domain)), ".")
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if len(c.IPSources) == 0 {
		c.IPSources = slices.Clone(DefaultIPSources)
	}
	if c.MarathonFramework == "" {
		c.MarathonFramework = DefaultMarathonFramework
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.RefreshSeconds == 0 {
		c.RefreshSeconds = DefaultRefreshSeconds
	}
	if c.SRVWeight == nil {
		w := DefaultSRVWeight
		c.SRVWeight = &w
	}
	c.SOAMname, c.SOARname = fqdn(strings.TrimSpace(c.SOAMname)), fqdn(strings.TrimSpace(c.SOARname))
	if c.SOAMname == "." {
		c.SOAMname = "ns1." + c.Domain + "."
	}
	if c.SOARname == "." {
		c.SOARname = "root.ns1." + c.Domain + "."
	}
	c.SOARefresh = cmp.Or(c.SOARefresh, DefaultSOARefresh)
	c.SOARetry = cmp.Or(c.SOARetry, DefaultSOARetry)
	c.SOAExpire = cmp.Or(c.SOAExpire, DefaultSOAExpire)
	return c
}

// Validate checks the configuration (after WithDefaults): the domain must be a valid DNS name
// and every IP source known. BuildIndex never fails; it ignores unknown IP sources.
func (c RecordConfig) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if !validFQDN(c.Domain+".") || strings.ContainsFunc(c.Domain, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.')
	}) {
		errs = append(errs, fmt.Errorf("DNS domain %q: not a valid domain name (labels of a-z, 0-9 and '-', at most 63 characters each)", c.Domain))
	}
	for _, s := range c.IPSources {
		if _, ok := parseIPSource(s); !ok {
			errs = append(errs, fmt.Errorf("IP source %q: unknown; use netinfo, mesos, docker or host", s))
		}
	}
	for _, n := range [...]struct{ what, name string }{{"SOA mname", c.SOAMname}, {"SOA rname", c.SOARname}} {
		if !validFQDN(n.name) || strings.ContainsFunc(n.name, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
		}) {
			errs = append(errs, fmt.Errorf("%s %q: not a valid domain name (labels of a-z, 0-9, '-' and '_', at most 63 characters each)", n.what, n.name))
		}
	}
	if domainFrag(c.MarathonFramework, c.EnforceRFC952) == "" {
		errs = append(errs, fmt.Errorf("the Marathon framework name %q: nothing left after cleaning it into a DNS name", c.MarathonFramework))
	}
	return errors.Join(errs...)
}

type ipSource uint8

const (
	srcNetinfo ipSource = iota
	srcMesos
	srcDocker
	srcHost
)

func parseIPSource(s string) (ipSource, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case IPSourceNetinfo:
		return srcNetinfo, true
	case IPSourceMesos:
		return srcMesos, true
	case IPSourceDocker:
		return srcDocker, true
	case IPSourceHost:
		return srcHost, true
	}
	return 0, false
}

// Metrics of record generation (namespace lodestar, subsystem dnsserver, prefix records_).
var (
	recordsBuildSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "records_build_seconds",
		Help:    "Time to build the DNS record index from a snapshot.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
	})
	recordsNames = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "records_names",
		Help: "Owner names in the newest DNS record index.",
	})
	recordsCount = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "records_rrs",
		Help: "Resource records in the newest DNS record index, by type.",
	}, []string{"type"})
	recordsInvalidNames = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "records_invalid_names",
		Help: "Names left out of the newest index because they are no valid DNS names (a label over 63 characters, a name over 255).",
	})
	recordsRenamedFrameworks = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "records_renamed_frameworks",
		Help: "Frameworks of the newest index served under another name because theirs is one of the zone's own (leader, master, slave, nsN …), or without a host record because theirs is another framework's task name.",
	})
	recordsSerial = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "records_serial",
		Help: "SOA serial of the newest DNS record index.",
	})
)

// BuildIndex computes every record of a snapshot, mesos-dns's names (see DNS.md) for the Mesos
// state's tasks, agents, frameworks and masters, plus the Marathon tasks the Mesos state does
// not know yet. snap may be nil. The serial is prev's when the records are the same, else
// max(prev.Serial+1, now in Unix seconds).
func BuildIndex(snap *discovery.Snapshot, cfg RecordConfig, prev *RecordIndex) *RecordIndex {
	start := time.Now()
	cfg = cfg.WithDefaults()
	b := newBuilder(snap, cfg)
	b.build()
	ix := b.finish()
	ix.Serial = nextSerial(prev, ix, start)

	recordsBuildSeconds.Observe(time.Since(start).Seconds())
	recordsNames.Set(float64(len(ix.names)))
	recordsCount.WithLabelValues("A").Set(float64(ix.counts[0]))
	recordsCount.WithLabelValues("AAAA").Set(float64(ix.counts[1]))
	recordsCount.WithLabelValues("SRV").Set(float64(ix.counts[2]))
	recordsInvalidNames.Set(float64(b.invalid))
	recordsRenamedFrameworks.Set(float64(b.renamed))
	recordsSerial.Set(float64(ix.Serial))
	return ix
}

// nextSerial keeps prev's serial when the records did not change, and otherwise moves it
// forward: to the current Unix time, or by one when prev is already at or past it.
func nextSerial(prev, ix *RecordIndex, now time.Time) uint32 {
	unix := uint32(now.Unix())
	if prev == nil {
		return max(unix, ix.cfg.SOAMinSerial)
	}
	if prev.digest != nil && ix.digest != nil && len(prev.names) == len(ix.names) && prev.Domain == ix.Domain && prev.sum() == ix.sum() {
		return prev.Serial
	}
	return max(prev.Serial+1, unix)
}

// agentInfo is what task records need of an agent.
type agentInfo struct {
	ips  addrPair
	tail string // {slave} of canonical names
}

// builder computes the records of one snapshot. It is used once.
type builder struct {
	snap      *discovery.Snapshot
	cfg       RecordConfig
	rfc952    bool
	sources   []ipSource
	weight    uint16 // of every SRV record
	tail      string // ".mesos."
	names     map[string]*RecordSet
	buf       []byte
	invalid   int
	renamed   int               // frameworks renamed or left without a host record (reserved.go)
	fwDomains map[string]bool   // every framework's domain, made by onTaskName
	cleaned   map[string]string // task name → cleaned label
	resolved  map[string]addrPair
	agents    map[string]*agentInfo
	setSlab   []RecordSet
	addrSlab  []netip.Addr
	arena     nameArena
	groups    map[string]*srvGroup // by "{task}.{fw}.{d}."
	groupList []*srvGroup
	// order lists the names in the order they were made. finish walks it rather than the
	// map: in map order every set is a cache miss, which cost more than the build.
	order     []namedSet
	marathon  map[string]*discovery.Task // Marathon's tasks by id, nil without Marathon apps
	appPrefix map[string]bool            // task id prefixes of Marathon's apps
	fromMesos map[string]bool            // Marathon task ids the Mesos state gave records for

	// enum, when set, collects every task's records for Enumerate; cur is the task being built.
	enum *Enumeration
	cur  *EnumerableTask
}

func newBuilder(snap *discovery.Snapshot, cfg RecordConfig) *builder {
	b := &builder{
		snap:     snap,
		cfg:      cfg,
		rfc952:   cfg.EnforceRFC952,
		weight:   *cfg.SRVWeight,
		tail:     "." + cfg.Domain + ".",
		cleaned:  map[string]string{},
		resolved: map[string]addrPair{},
		agents:   map[string]*agentInfo{},
	}
	for _, s := range cfg.IPSources {
		if src, ok := parseIPSource(s); ok && !slices.Contains(b.sources, src) {
			b.sources = append(b.sources, src)
		}
	}
	estimate := 64
	if snap != nil {
		estimate += 4 * snap.Tasks
		if snap.Mesos != nil {
			for i := range snap.Mesos.Frameworks {
				estimate += 4 * len(snap.Mesos.Frameworks[i].Tasks)
			}
		}
	}
	b.names = make(map[string]*RecordSet, estimate)
	b.order = make([]namedSet, 0, estimate)
	b.groups = make(map[string]*srvGroup, estimate/32)
	return b
}

func (b *builder) build() {
	b.nsRecords()
	if b.snap == nil {
		return
	}
	b.indexMarathon()
	if st := b.snap.Mesos; st != nil {
		b.agentRecords(st)
		b.masterRecords(st)
		for i := range st.Frameworks {
			b.frameworkRecords(&st.Frameworks[i])
		}
	}
	b.marathonRecords()
}

// finish sorts every record set, drops duplicates and adds the SRV groups' records. The digest
// that tells whether two indexes hold the same records is computed when first compared (sum).
func (b *builder) finish() *RecordIndex {
	ix := &RecordIndex{
		Domain: b.cfg.Domain + ".",
		Mname:  b.cfg.SOAMname,
		Rname:  b.cfg.SOARname,
		names:  b.names,
		cfg:    b.cfg,
		snap:   b.snap,
		digest: &lazyDigest{},
	}
	for _, e := range b.order {
		rs := e.rs
		rs.A = sortAddrs(rs.A)
		rs.AAAA = sortAddrs(rs.AAAA)
		rs.SRV = sortSRVs(rs.SRV)
	}
	for _, g := range b.groupList {
		b.finishGroup(g)
	}
	ix.order = b.order // with the groups' names
	for _, e := range b.order {
		ix.counts[0] += len(e.rs.A)
		ix.counts[1] += len(e.rs.AAAA)
		ix.counts[2] += len(e.rs.SRV)
	}
	return ix
}

// sum returns the digest of a built index's records, computing it on first use: the first
// index of a process needs none until the next one is built, so its serving does not wait
// for it.
func (ix *RecordIndex) sum() uint64 {
	ix.digest.once.Do(func() { ix.digest.sum = digestOf(ix.order) })
	return ix.digest.sum
}

// digestOf sums a hash of every name and its records.
func digestOf(order []namedSet) uint64 {
	var h maphash.Hash
	h.SetSeed(digestSeed)
	var scratch [16]byte
	// Several names share one SRV list (see srvGroup): hash each list once.
	type listID struct {
		first *SRV
		n     int
	}
	srvHashes := make(map[listID]uint64, len(order)/8)
	var digest uint64
	for _, e := range order {
		name, rs := e.name, e.rs
		h.Reset()
		h.WriteString(name)
		for _, ip := range rs.A {
			a := ip.As4()
			h.Write(a[:])
		}
		h.WriteByte(0)
		for _, ip := range rs.AAAA {
			scratch = ip.As16()
			h.Write(scratch[:])
		}
		h.WriteByte(0)
		if len(rs.SRV) > 0 {
			id := listID{&rs.SRV[0], len(rs.SRV)}
			sh, ok := srvHashes[id]
			if !ok {
				sh = hashSRVs(rs.SRV)
				srvHashes[id] = sh
			}
			binary.LittleEndian.PutUint64(scratch[:8], sh)
			h.Write(scratch[:8])
		}
		// A sum does not depend on the order the names were made in (the state's order).
		digest += h.Sum64()
	}
	return digest
}

// hashSRVs hashes an SRV list. A list is only ever shared whole (srvGroup), so its first
// element and length identify it.
func hashSRVs(list []SRV) uint64 {
	var h maphash.Hash
	h.SetSeed(digestSeed)
	var b [6]byte
	for _, s := range list {
		h.WriteString(s.Target)
		b[0], b[1] = byte(s.Port>>8), byte(s.Port)
		b[2], b[3] = byte(s.Priority>>8), byte(s.Priority)
		b[4], b[5] = byte(s.Weight>>8), byte(s.Weight)
		h.Write(b[:])
	}
	return h.Sum64() ^ uint64(len(list))
}

// digestSeed is fixed for the process, so digests of indexes built at different times compare.
var digestSeed = maphash.MakeSeed()

func sortAddrs(a []netip.Addr) []netip.Addr {
	if len(a) < 2 {
		return a
	}
	slices.SortFunc(a, netip.Addr.Compare)
	return slices.Compact(a)
}

func sortSRVs(s []SRV) []SRV {
	if len(s) < 2 {
		return s
	}
	slices.SortFunc(s, compareSRV)
	return slices.Compact(s)
}

// mergeSRVs merges two lists sorted by sortSRVs into a new one, as sortSRVs would sort their
// concatenation: in order, without duplicates.
func mergeSRVs(a, b []SRV) []SRV {
	out := make([]SRV, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := compareSRV(a[0], b[0]); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

func compareSRV(a, b SRV) int {
	if c := strings.Compare(a.Target, b.Target); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	if a.Priority != b.Priority {
		return int(a.Priority) - int(b.Priority)
	}
	return int(a.Weight) - int(b.Weight)
}

// --- record sets ---

const slabSize = 1024

// set returns the record set of a name, creating it; nil when the name is no valid DNS name.
// A name given as bytes is looked up without allocating; only a new name is copied.
func (b *builder) set(name []byte) *RecordSet {
	if rs, ok := b.names[string(name)]; ok {
		return rs
	}
	return b.insert(b.arena.intern(name))
}

// setString is set for a name that already is a string (a canonical name that is also an SRV
// target), so the map key and the targets share one copy.
func (b *builder) setString(name string) *RecordSet {
	if rs, ok := b.names[name]; ok {
		return rs
	}
	return b.insert(name)
}

// nameArena hands out the index's name strings from large shared blocks. Why: an index of
// 100,000 tasks has some 400,000 names; one allocation each costs more than the rest of the
// build, and the collector has to trace every one of them for as long as the index lives.
// A block is written once, front to back, and never modified, which is what unsafe.String
// requires; it stays alive while any of its names does.
type nameArena struct{ block []byte }

const arenaBlock = 64 << 10

func (a *nameArena) intern(name []byte) string {
	if len(name) == 0 {
		return ""
	}
	if cap(a.block)-len(a.block) < len(name) {
		a.block = make([]byte, 0, max(arenaBlock, len(name)))
	}
	start := len(a.block)
	a.block = append(a.block, name...)
	return unsafe.String(&a.block[start], len(name))
}

func (b *builder) insert(name string) *RecordSet {
	if !validFQDN(name) {
		b.invalid++
		return nil
	}
	if len(b.setSlab) == 0 {
		b.setSlab = make([]RecordSet, slabSize)
	}
	rs := &b.setSlab[0]
	b.setSlab = b.setSlab[1:]
	rs.pos = int32(len(b.order))
	b.names[name] = rs
	b.order = append(b.order, namedSet{name, rs})
	return rs
}

// addIP adds an A or AAAA record, by the address's family.
func (b *builder) addIP(rs *RecordSet, name string, ip netip.Addr) {
	if rs == nil || !ip.IsValid() {
		return
	}
	if ip.Is4() {
		rs.A = b.appendAddr(rs.A, ip)
	} else {
		rs.AAAA = b.appendAddr(rs.AAAA, ip)
	}
	if b.cur != nil {
		rtype := "A"
		if !ip.Is4() {
			rtype = "AAAA"
		}
		b.enumRecord(name, ip.String(), rtype)
	}
}

// appendAddr appends like append, but a set's first address comes from a slab: most names
// have exactly one, and one allocation per name adds up at 100,000 tasks. Duplicates are
// dropped when the index is finished; here only a repeat of the last address is, since a
// full check would be quadratic in the tasks of an app.
func (b *builder) appendAddr(list []netip.Addr, ip netip.Addr) []netip.Addr {
	if len(list) > 0 && list[len(list)-1] == ip {
		return list
	}
	if list == nil {
		if len(b.addrSlab) == 0 {
			b.addrSlab = make([]netip.Addr, slabSize)
		}
		list = b.addrSlab[0:0:1]
		b.addrSlab = b.addrSlab[1:]
	}
	return append(list, ip)
}

func (b *builder) addPair(rs *RecordSet, name string, p addrPair) {
	b.addIP(rs, name, p.v4)
	b.addIP(rs, name, p.v6)
}

// addSRV adds an SRV record. Duplicates are dropped when the index is finished (a linear check
// here would be quadratic for an app with thousands of tasks).
func (b *builder) addSRV(rs *RecordSet, name, target string, port uint16) {
	if rs == nil || port == 0 {
		return
	}
	rs.SRV = append(rs.SRV, SRV{Target: target, Port: port, Weight: b.weight})
	if b.cur != nil {
		b.enumRecord(name, net.JoinHostPort(target, strconv.Itoa(int(port))), "SRV")
	}
}

// name assembles a name in the builder's scratch buffer; the result is valid until the next call.
func (b *builder) name(parts ...string) []byte {
	b.buf = b.buf[:0]
	for _, p := range parts {
		b.buf = append(b.buf, p...)
	}
	return b.buf
}

// addNameIP adds an address to a name built from parts.
func (b *builder) addNameIP(p addrPair, parts ...string) {
	if p.empty() {
		return
	}
	n := b.name(parts...)
	rs := b.set(n)
	if b.cur != nil {
		b.addPair(rs, string(n), p)
		return
	}
	b.addPair(rs, "", p)
}

// addNameSRV adds an SRV record to a name built from parts.
func (b *builder) addNameSRV(target string, port uint16, parts ...string) {
	if port == 0 {
		return
	}
	n := b.name(parts...)
	rs := b.set(n)
	if b.cur != nil {
		b.addSRV(rs, string(n), target, port)
		return
	}
	b.addSRV(rs, "", target, port)
}

// --- addresses ---

// resolve returns the addresses of a host: the address itself when it is one, else what
// ResolveHost says (memoised for the build).
func (b *builder) resolve(host string) addrPair {
	var p addrPair
	if host == "" {
		return p
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		p.offer(ip)
		return p
	}
	if b.cfg.ResolveHost == nil {
		return p
	}
	if p, ok := b.resolved[host]; ok {
		return p
	}
	for _, ip := range b.cfg.ResolveHost(host) {
		p.offer(ip)
	}
	b.resolved[host] = p
	return p
}

// splitPID splits a libprocess pid "name@host:port" into host and port; ok is false when pid
// has no '@' or no port.
func splitPID(pid string) (host string, port uint16, ok bool) {
	_, addr, found := strings.Cut(pid, "@")
	if !found {
		return "", 0, false
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return h, uint16(n), true
}

// --- names of the zone's infrastructure ---

func (b *builder) nsRecords() {
	for _, ip := range b.cfg.NSAddrs {
		if ip.IsValid() && !ip.IsUnspecified() {
			b.addIP(b.set(b.name("ns1", b.tail)), "", ip.Unmap().WithZone(""))
		}
	}
}

// agentRecords: slave.{d} (every agent) and _slave._tcp.{d} → slave.{d}:{port}.
func (b *builder) agentRecords(st *discovery.MesosState) {
	slave := "slave" + b.tail
	for i := range st.Agents {
		a := &st.Agents[i]
		info := &agentInfo{tail: slaveIDTail(a.ID)}
		host, port, ok := splitPID(a.PID)
		if !ok {
			host, port = a.Hostname, 5051
		}
		info.ips = b.resolve(host)
		if info.ips.empty() && host != a.Hostname {
			info.ips = b.resolve(a.Hostname)
		}
		b.agents[a.ID] = info
		if info.ips.empty() {
			continue
		}
		b.addNameIP(info.ips, slave)
		b.addNameSRV(slave, port, "_slave._tcp", b.tail)
	}
}

// masterRecords: leader.{d}, master.{d} (every master), master{N}.{d} (masters in the state's
// stable order; a leader missing from the list gets the next number, as in mesos-dns), and
// _leader._tcp/_udp.{d} → leader.{d}:{port}.
func (b *builder) masterRecords(st *discovery.MesosState) {
	leaderHost, leaderPort, ok := splitLeader(st)
	leaderIPs := b.resolve(leaderHost)
	leaderName := "leader" + b.tail
	if ok && !leaderIPs.empty() {
		b.addNameIP(leaderIPs, leaderName)
		b.addNameIP(leaderIPs, "master", b.tail)
		b.addNameSRV(leaderName, leaderPort, "_leader._tcp", b.tail)
		b.addNameSRV(leaderName, leaderPort, "_leader._udp", b.tail)
	}
	n := 0
	leaderListed := false
	seen := map[addrPair]bool{}
	for _, m := range st.Masters {
		host := m.IP
		if host == "" {
			host = m.Hostname
		}
		ips := b.resolve(host)
		if ips.empty() || seen[ips] {
			continue
		}
		seen[ips] = true
		if ips == leaderIPs {
			leaderListed = true
		}
		b.addNameIP(ips, "master", b.tail)
		b.addNameIP(ips, "master", strconv.Itoa(n), b.tail)
		n++
	}
	if !leaderListed && !leaderIPs.empty() {
		b.addNameIP(leaderIPs, "master", strconv.Itoa(n), b.tail)
	}
}

// splitLeader returns the leading master's host and port, from "ip:port" or its pid.
func splitLeader(st *discovery.MesosState) (string, uint16, bool) {
	if st.Leader != "" {
		if h, p, err := net.SplitHostPort(st.Leader); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				return h, uint16(n), true
			}
		}
	}
	return splitPID(st.LeaderPID)
}
