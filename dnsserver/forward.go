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
}

// zoneUpstream: names in zone go to addrs.
type zoneUpstream struct {
	zone  string
	addrs []string
}

func newForwarder(cfg Config) (*forwarder, error) {
	f := &forwarder{log: cfg.Logger, allow: cfg.ForwardAllow, timeout: cfg.UpstreamTimeout}
	var errs []error
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
	for _, a := range f.defaults {
		f.demoted[a] = new(atomic.Int64)
	}
	for _, z := range f.zones {
		for _, a := range z.addrs {
			f.demoted[a] = new(atomic.Int64)
		}
	}
	return f, nil
}

// ordered returns ups with the demoted upstreams moved to the end, keeping the order otherwise.
func (f *forwarder) ordered(ups []string) []string {
	now := time.Now().UnixNano()
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

// upstreamsFor returns the upstreams of a lower-case FQDN: those of the longest zone containing
// it, else the defaults.
func (f *forwarder) upstreamsFor(name string) []string {
	for _, z := range f.zones {
		if inZone(name, z.zone) || z.zone == "." {
			return z.addrs
		}
	}
	return f.defaults
}

// forward answers a query outside the zone from the upstreams. It returns the rcode, and
// whether upstreams were asked.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg, q *query, tcp bool) (int, bool) {
	if !s.cfg.Forward || !s.fwd.allowed(w.RemoteAddr()) {
		w.Write(appendBare(nil, q, false, rcodeRefuse)) // no recursion for this client: no RA
		return rcodeRefuse, false
	}
	ups := s.fwd.upstreamsFor(string(q.key))
	if len(ups) == 0 {
		w.Write(appendBare(nil, q, s.ra, rcodeFail))
		return rcodeFail, false
	}
	resp, err := s.fwd.exchange(s.life, r, ups, tcp)
	if err != nil {
		s.log.Debug("DNS: forwarding failed", "name", r.Question[0].Name, "upstreams", strings.Join(ups, ","), "err", err)
		w.Write(appendBare(nil, q, s.ra, rcodeFail))
		return rcodeFail, true
	}
	resp.Id = r.Id
	// lodestar relays this answer; it is not the authority for it, whatever the upstream is.
	// It did recurse for the client, though: an upstream that only serves its own zones
	// answers without RA, and a resolver that sees no RA may not trust the answer.
	resp.Authoritative = false
	resp.RecursionAvailable = s.ra
	// Written out as it came in: compressed. Unpacking forgot that, and a big answer written
	// out in full can pass 64 kB, which no TCP reply can carry.
	resp.Compress = true
	if !tcp {
		limit := minUDPSize
		if opt := r.IsEdns0(); opt != nil {
			limit = max(limit, int(opt.UDPSize()))
		}
		if resp.Len() > limit {
			resp.Truncate(limit)
		}
	}
	w.WriteMsg(resp)
	return resp.Rcode, true
}

// upstreamResult is the answer of upstream number up.
type upstreamResult struct {
	up   int
	resp *dns.Msg
	err  error
}

// exchange asks the upstreams in a staggered race (see forwarder) and returns the first usable
// answer, or the errors of all of them.
func (f *forwarder) exchange(ctx context.Context, r *dns.Msg, ups []string, tcp bool) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	ups = f.ordered(ups)
	stagger := min(maxStagger, f.timeout/time.Duration(len(ups)+1))
	timer := time.NewTimer(stagger)
	defer timer.Stop()
	results := make(chan upstreamResult, len(ups))
	next, pending := 0, 0
	launch := func() {
		i := next
		next++
		pending++
		go func() {
			resp, err := f.ask(ctx, ups[i], r, tcp)
			results <- upstreamResult{i, resp, err}
		}()
		timer.Reset(stagger)
	}
	launch()
	var errs []error
	answered := make([]bool, len(ups))
	for pending > 0 {
		select {
		case res := <-results:
			pending--
			answered[res.up] = true
			if res.err == nil {
				for i := range next {
					if !answered[i] {
						f.demote(ups[i]) // outrun
					}
				}
				return res.resp, nil
			}
			f.demote(ups[res.up])
			errs = append(errs, res.err)
			if next < len(ups) {
				launch()
			}
		case <-timer.C:
			if next < len(ups) {
				launch()
			}
		}
	}
	return nil, errors.Join(errs...)
}

// ask sends r to one upstream, over UDP and, for a TCP client whose answer came back
// truncated, again over TCP. The query goes out with a fresh ID (r is shared, and only read).
// SERVFAIL, REFUSED, NOTIMP and FORMERR answers count as failures, so the next upstream is asked.
func (f *forwarder) ask(ctx context.Context, up string, r *dns.Msg, tcp bool) (*dns.Msg, error) {
	m := *r
	m.Id = dns.Id()
	start := time.Now()
	resp, err := f.exchangeOver(ctx, "udp", up, &m)
	if err == nil && resp.Truncated && tcp {
		resp, err = f.exchangeOver(ctx, "tcp", up, &m)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, ctx.Err() // another upstream answered first, or the server stops
	}
	srvUpstreamDuration.WithLabelValues(up).Observe(time.Since(start).Seconds())
	switch {
	case err != nil:
		reason := "error"
		var ne net.Error
		if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
			reason = "timeout"
		}
		srvUpstreamFailures.WithLabelValues(up, reason).Inc()
		return nil, fmt.Errorf("upstream %s: %w", up, err)
	case len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, r.Question[0].Name) ||
		resp.Question[0].Qtype != r.Question[0].Qtype:
		srvUpstreamFailures.WithLabelValues(up, "mismatch").Inc()
		return nil, fmt.Errorf("upstream %s: answer for another question", up)
	case resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused ||
		resp.Rcode == dns.RcodeNotImplemented || resp.Rcode == dns.RcodeFormatError:
		srvUpstreamFailures.WithLabelValues(up, "rcode").Inc()
		return nil, fmt.Errorf("upstream %s: %s", up, dns.RcodeToString[resp.Rcode])
	}
	return resp, nil
}

// exchangeOver makes one exchange with an upstream. miekg/dns's client honours only the
// context's deadline; closing the connection when the context ends makes cancellation (a race
// won by another upstream, the server stopping) end the exchange too.
func (f *forwarder) exchangeOver(ctx context.Context, network, up string, m *dns.Msg) (*dns.Msg, error) {
	c := dns.Client{Net: network, Timeout: f.timeout}
	co, err := c.DialContext(ctx, up)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	defer context.AfterFunc(ctx, func() { co.Conn.Close() })()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, co)
	return resp, err
}
