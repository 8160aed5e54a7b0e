package dnsserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// maxStagger is the longest the forwarder waits for one upstream before also asking the next.
const maxStagger = 150 * time.Millisecond

// demotion is how long an upstream that failed, or was outrun by the next one, is asked after
// the others.
const demotion = 30 * time.Second

// forwarder sends names outside the zone to upstream resolvers.
//
// Upstreams are raced with a stagger: the first (in configured order) is asked at once; the next
// one as soon as the first fails, or when it has not answered within the stagger (the timeout
// shared among the upstreams, at most maxStagger); and so on. The first usable answer wins and
// the queries still out are cancelled. A slow or dead upstream so costs at most one stagger, not
// a timeout, and while the first upstream is healthy it alone carries the load (no duplicate
// queries, unlike racing all of them at once). An upstream that failed or was outrun goes behind
// the others for the next 30 s (demotion), so a dead first upstream costs one stagger per 30 s,
// not one per query.
type forwarder struct {
	log      *slog.Logger
	defaults []string
	zones    []zoneUpstream // longest zone first
	allow    []netip.Prefix
	timeout  time.Duration
	// demoted holds, per upstream, until when (Unix nanoseconds) it is asked last.
	demoted map[string]*atomic.Int64
	// pools are the sockets of each upstream (forward_pool.go); wheel keeps the deadlines
	// of queries out, and is swept from start on.
	pools map[string]*upstreamPool
	wheel *fwdWheel
	once  sync.Once
	// cache holds forwarded answers (forward_cache.go); nil when off.
	cache *answerCache
}

// zoneUpstream: names in zone go to addrs.
type zoneUpstream struct {
	zone  string
	addrs []string
}

func newForwarder(cfg Config) (*forwarder, error) {
	f := &forwarder{log: cfg.Logger, allow: cfg.ForwardAllow, timeout: cfg.UpstreamTimeout}
	var errs []error
	cache, err := cfg.Cache.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	for _, u := range cfg.Upstreams {
		a, err := upstreamAddr(u)
		if err != nil {
			errs = append(errs, fmt.Errorf("DNS upstream %q (--dns-upstream): %w", u, err))
			continue
		}
		f.defaults = append(f.defaults, a)
	}
	for zone, addrs := range cfg.ZoneUpstreams {
		z := normalizeZone(zone)
		if _, ok := dns.IsDomainName(z); !ok || z == "." && strings.TrimSpace(zone) != "." {
			errs = append(errs, fmt.Errorf("DNS zone upstream zone %q (--dns-zone-upstream): not a domain name", zone))
			continue
		}
		zu := zoneUpstream{zone: z}
		for _, u := range addrs {
			a, err := upstreamAddr(u)
			if err != nil {
				errs = append(errs, fmt.Errorf("DNS zone upstream %s=%s (--dns-zone-upstream): %w", zone, u, err))
				continue
			}
			zu.addrs = append(zu.addrs, a)
		}
		if len(zu.addrs) == 0 {
			errs = append(errs, fmt.Errorf("DNS zone upstream %q (--dns-zone-upstream): no addresses", zone))
		}
		f.zones = append(f.zones, zu)
	}
	slices.SortFunc(f.zones, func(a, b zoneUpstream) int {
		return cmp.Or(cmp.Compare(len(b.zone), len(a.zone)), cmp.Compare(a.zone, b.zone))
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(f.defaults) == 0 && cfg.Forward {
		addrs, err := resolvConfUpstreams(cfg.ResolvConf, localAddrs())
		if err != nil {
			cfg.Logger.Warn("DNS: cannot read default upstreams", "resolv_conf", cfg.ResolvConf, "err", err)
		}
		f.defaults = addrs
		if len(addrs) == 0 && len(f.zones) == 0 {
			cfg.Logger.Warn("DNS: no upstream resolver: names outside the zone will answer SERVFAIL; give --dns-upstream, or --dns-forward=false to refuse them",
				"resolv_conf", cfg.ResolvConf)
		}
	}
	f.demoted = map[string]*atomic.Int64{}
	f.pools = map[string]*upstreamPool{}
	for _, ups := range append([][]string{f.defaults}, zoneAddrs(f.zones)...) {
		for _, a := range ups {
			f.demoted[a] = new(atomic.Int64)
			f.pools[a] = newUpstreamPool(a, f.timeout)
		}
	}
	f.wheel = newFwdWheel(f.timeout)
	f.cache = newAnswerCache(cache.Size, cache.MaxTTL, time.Now)
	return f, nil
}

func zoneAddrs(zones []zoneUpstream) [][]string {
	out := make([][]string, 0, len(zones))
	for _, z := range zones {
		out = append(out, z.addrs)
	}
	return out
}

// start starts the sweeper of forwarding deadlines, once; when life ends it fails every query
// still out and closes the upstream sockets.
func (f *forwarder) start(life context.Context) {
	f.once.Do(func() {
		go func() {
			f.wheel.run(life.Done())
			for _, p := range f.pools {
				p.close()
			}
		}()
	})
}

// ordered returns ups with the demoted upstreams moved to the end, keeping the order otherwise.
func (f *forwarder) ordered(ups []string) []string {
	now := time.Now().UnixNano()
	if !slices.ContainsFunc(ups, func(u string) bool { return f.demoted[u].Load() > now }) {
		return ups // the common case: nothing to move, nothing to allocate
	}
	out := make([]string, 0, len(ups))
	for _, u := range ups {
		if f.demoted[u].Load() <= now {
			out = append(out, u)
		}
	}
	for _, u := range ups {
		if f.demoted[u].Load() > now {
			out = append(out, u)
		}
	}
	return out
}

// demote asks up last for the next while.
func (f *forwarder) demote(up string) {
	f.demoted[up].Store(time.Now().Add(demotion).UnixNano())
}

// upstreamAddr checks an upstream address: an IP address and port, or a bare IP for port 53.
// Host names are refused: resolving them may need lodestar itself.
func upstreamAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(ip, 53).String(), nil
	}
	return "", errors.New("want an IP address with an optional port (1.2.3.4, 1.2.3.4:53, [2001:db8::1]:53)")
}

// resolvConfUpstreams reads the nameservers of a resolv.conf, leaving out loopback, unspecified
// and this host's own addresses: lodestar may itself be the host's resolver.
func resolvConfUpstreams(path string, local map[netip.Addr]bool) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	stub := false
	for _, s := range cc.Servers {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		stub = stub || ip == resolvedStub
		if ip = ip.Unmap(); ip.IsLoopback() || ip.IsUnspecified() || local[ip.WithZone("")] {
			continue
		}
		out = append(out, net.JoinHostPort(ip.String(), cc.Port))
	}
	if len(out) == 0 && stub && path != resolvedResolvConf {
		// systemd-resolved's stub: its own upstreams are listed in resolvedResolvConf.
		return resolvConfUpstreams(resolvedResolvConf, local)
	}
	return out, nil
}

// resolvedStub is systemd-resolved's stub listener, the only nameserver of a resolv.conf it
// manages; resolvedResolvConf lists the upstreams it uses, which lodestar forwards to instead.
var (
	resolvedStub       = netip.MustParseAddr("127.0.0.53")
	resolvedResolvConf = "/run/systemd/resolve/resolv.conf"
)

// localAddrs are the addresses of this host's interfaces.
func localAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap().WithZone("")] = true
		}
	}
	return out
}

// allowed reports whether lodestar forwards for the client at addr.
func (f *forwarder) allowed(addr net.Addr) bool {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip = a.AddrPort().Addr()
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	default:
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range f.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// upstreamsFor returns the upstreams of a name by its key (lower case, with its final dot):
// those of the longest zone containing it, else the defaults.
func (f *forwarder) upstreamsFor(key []byte) []string {
	for _, z := range f.zones {
		if keyInZone(key, z.zone) || z.zone == "." {
			return z.addrs
		}
	}
	return f.defaults
}
