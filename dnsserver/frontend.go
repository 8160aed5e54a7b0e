package dnsserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// hostCacheTTL is how long a resolved framework or agent host name is kept.
const hostCacheTTL = 5 * time.Minute

// FrontEnd is lodestar's DNS front end: the server, and the record index it keeps in step with
// the registry (Run). The API reads the current records through its views (Hosts, Services,
// Enumerate, AXFR, Records, AppNames), each from one immutable index.
type FrontEnd struct {
	srv     *Server
	log     *slog.Logger
	records RecordConfig
	hosts   *HostCache
	indexed chan struct{} // closed once the first index is served
	once    sync.Once
}

// FrontEndConfig configures a FrontEnd.
type FrontEndConfig struct {
	// Server configures the DNS server; its Domain and TTL are the records' too.
	Server Config
	// Records says how records are named. Domain, TTL, NSAddrs and ResolveHost are set by the
	// front end: from Server, from the listen address, and through a cache of LookupHost.
	Records RecordConfig
	// LookupHost resolves a host name (a framework without a pid, an agent known by name)
	// off the serving path (default net.DefaultResolver).
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
}

// NewFrontEnd checks the configuration and returns the front end; nothing listens before Run.
func NewFrontEnd(cfg FrontEndConfig) (*FrontEnd, error) {
	srv, err := New(cfg.Server)
	if err != nil {
		return nil, err
	}
	rc := cfg.Records
	rc.Domain, rc.TTL = strings.TrimSuffix(srv.apex, "."), srv.cfg.TTL
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	lookup := cfg.LookupHost
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	f := &FrontEnd{srv: srv, log: srv.log, indexed: make(chan struct{})}
	f.hosts = NewHostCache(lookup, hostCacheTTL)
	rc.ResolveHost = f.hosts.Lookup
	f.records = rc
	return f, nil
}

// Run serves DNS at once, forwarding other names from the first second, and answers the zone
// from sub's snapshots once every source has synced (sub.WaitSynced): until then in-zone names
// answer SERVFAIL, which resolvers retry, rather than an NXDOMAIN they would cache. It returns
// when ctx ends (nil) or the server fails (why).
func (f *FrontEnd) Run(ctx context.Context, sub *discovery.Subscription) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- f.srv.Run(ctx)
		cancel()
	}()
	f.follow(ctx, sub)
	return <-served
}

// follow keeps the served index in step with sub until ctx ends. ns1's records need the
// listen address, known once the server listens.
func (f *FrontEnd) follow(ctx context.Context, sub *discovery.Subscription) {
	select {
	case <-f.srv.Ready():
	case <-ctx.Done():
		return
	}
	if err := sub.WaitSynced(ctx); err != nil {
		return
	}
	// Follow starts from the current snapshot: a signal of an older one is stale, and would
	// cost a second build of the same records (seconds, at 100,000 tasks).
	select {
	case <-sub.C():
	default:
	}
	rc := f.records
	rc.NSAddrs = nsAddrs(f.srv.Addr())
	first := true
	Follow(ctx, sub, rc, f.hosts, func(ix *RecordIndex) {
		start := time.Now()
		f.srv.SetIndex(ix)
		f.once.Do(func() { close(f.indexed) })
		a, aaaa, srv := ix.Counts()
		level := slog.LevelDebug
		if first {
			level, first = slog.LevelInfo, false
		}
		f.log.Log(ctx, level, "DNS records updated", "names", ix.Len(), "a", a, "aaaa", aaaa, "srv", srv,
			"serial", ix.Serial, "compile", time.Since(start).Round(time.Millisecond))
	})
}

// nsAddrs are the addresses of ns1.{domain}: the listen address, or for a wildcard listen
// (":53", "0.0.0.0:53") every address of this host but link-local ones, as mesos-dns does.
func nsAddrs(listen string) []netip.Addr {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil {
		return nil
	}
	if !ap.Addr().IsUnspecified() {
		return []netip.Addr{ap.Addr().Unmap()}
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range ifaddrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if ap.Addr().Is4() && !p.Addr().Is4() {
			continue // a 0.0.0.0 listen serves IPv4 only
		}
		out = append(out, p.Addr().Unmap())
	}
	return out
}

// Ready is closed once the server listens on UDP and TCP.
func (f *FrontEnd) Ready() <-chan struct{} { return f.srv.Ready() }

// Indexed is closed once the first record index is served.
func (f *FrontEnd) Indexed() <-chan struct{} { return f.indexed }

// Addr is the address the server listens on once Ready is closed.
func (f *FrontEnd) Addr() string { return f.srv.Addr() }

// Listening returns nil once the server listens: the "DNS listening" readiness check.
func (f *FrontEnd) Listening() error {
	select {
	case <-f.srv.Ready():
		return nil
	default:
		return fmt.Errorf("not listening on %s yet", f.srv.Addr())
	}
}

// Index returns the record index served now, nil before the first. It is the server's own:
// the API shows exactly what DNS answers.
func (f *FrontEnd) Index() *RecordIndex {
	if z := f.srv.zone.Load(); z != nil {
		return z.ix
	}
	return nil
}

// Hosts returns the A/AAAA answers of a name, as mesos-dns's GET /v1/hosts/{host}.
func (f *FrontEnd) Hosts(name string) []HostRecord { return f.Index().Hosts(name) }

// Services returns the SRV answers of a name, as mesos-dns's GET /v1/services/{service}.
func (f *FrontEnd) Services(name string) []ServiceRecord { return f.Index().Services(name) }

// Enumerate returns every record by framework and task, as mesos-dns's GET /v1/enumerate.
func (f *FrontEnd) Enumerate() Enumeration {
	if ix := f.Index(); ix != nil {
		return ix.Enumerate()
	}
	return Enumeration{}
}

// AXFR returns every record in mesos-dns's GET /v1/axfr shape; before the first index, the
// zone's data without records.
func (f *FrontEnd) AXFR() AXFR {
	if ix := f.Index(); ix != nil {
		return ix.AXFR()
	}
	return NewRecordIndex(f.records.Domain, 0, nil).AXFR()
}

// AppNames returns the DNS names the tasks of a Marathon app have, sorted.
func (f *FrontEnd) AppNames(appID string) []string { return f.Index().AppNames(appID) }

// Record is one resource record as the API shows it.
type Record struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	// Data is the record's data in zone-file form ("10.0.0.1", "0 1 31000 host.mesos.").
	Data string `json:"data"`
}

// Records returns every record of a name (any case, trailing dot optional), nil when it has
// none.
func (f *FrontEnd) Records(name string) []Record {
	ix := f.Index()
	if ix == nil {
		return nil
	}
	fq := strings.ToLower(strings.TrimSuffix(name, ".")) + "."
	rs := ix.Lookup(fq)
	if rs == nil {
		return nil
	}
	ttl := f.records.TTL
	var out []Record
	for _, a := range rs.A {
		out = append(out, Record{Name: fq, Type: "A", TTL: ttl, Data: a.String()})
	}
	for _, a := range rs.AAAA {
		out = append(out, Record{Name: fq, Type: "AAAA", TTL: ttl, Data: a.String()})
	}
	for _, s := range rs.SRV {
		out = append(out, Record{Name: fq, Type: "SRV", TTL: ttl, Data: fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, s.Target)})
	}
	return out
}
