package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults of Config.
const (
	DefaultListen          = "127.0.0.1:8053"
	DefaultResolvConf      = "/etc/resolv.conf"
	DefaultUpstreamTimeout = 2 * time.Second
)

// maxSlowQueries bounds the UDP queries answered off the read loops at once (forwarded ones,
// mostly, which wait for upstreams).
const maxSlowQueries = 4096

// DefaultForwardAllow are the clients lodestar forwards for by default: loopback and the
// private ranges.
var DefaultForwardAllow = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
}

// Config configures the DNS server.
type Config struct {
	// Listen is the UDP and TCP address (default 127.0.0.1:8053; port 0 picks a free port).
	Listen string
	// Domain is the zone lodestar is authoritative for (default "mesos"; a trailing dot is
	// optional).
	Domain string
	// TTL of answers in seconds (0 means 60).
	TTL uint32
	// NegativeTTL is the SOA minimum: how long NXDOMAIN and no-data answers are cached. Used as
	// given; 0 asks resolvers not to cache them.
	NegativeTTL uint32
	// Forward sends names outside Domain to upstream resolvers. With false they get REFUSED.
	// The zero value is false; cmd/lodestar's --dns-forward defaults to true.
	Forward bool
	// Upstreams are the resolvers ("ip:port"; a bare IP means port 53) for names outside
	// Domain. Empty: the nameservers of ResolvConf, leaving out loopback and this host's own
	// addresses (lodestar itself may be listed there).
	Upstreams []string
	// ZoneUpstreams are per-zone resolvers: zone → addresses. The longest zone that contains
	// the name wins over Upstreams.
	ZoneUpstreams map[string][]string
	// ForwardAllow are the clients forwarded for; others get REFUSED for names outside
	// Domain (default DefaultForwardAllow).
	ForwardAllow []netip.Prefix
	// UpstreamTimeout bounds one forwarded query, all upstreams together (default 2s).
	UpstreamTimeout time.Duration
	// UDPSockets is how many UDP sockets share the port with SO_REUSEPORT, each read by its
	// own goroutine (default runtime.NumCPU()).
	UDPSockets int
	// ResolvConf is where default upstreams are read (default /etc/resolv.conf).
	ResolvConf string
	// Logger (default: discard).
	Logger *slog.Logger
	// RRL limits the rate of in-zone UDP answers to clients outside ForwardAllow, and caps
	// their size (rrl.go). The zero value is off; cmd/lodestar turns it on by default.
	RRL RRLConfig
	// TCP caps TCP connections and sets their idle timeout (tcpcap.go).
	TCP TCPConfig
	// Cache keeps forwarded answers (forward_cache.go). The zero value is off; cmd/lodestar
	// turns it on by default.
	Cache CacheConfig
}

// Server is lodestar's DNS server: authoritative for the zone, from the RecordIndex swapped in
// by SetIndex, and a forwarder for other names. It serves UDP and TCP on one port. *Server is
// a dns.Handler as well, so it can be mounted on another miekg/dns server.
type Server struct {
	cfg   Config
	log   *slog.Logger
	apex  string // lower-case FQDN of the zone
	ra    bool   // forwarding is on: replies set RA
	zone  atomic.Pointer[zoneAnswers]
	fwd   *forwarder
	rot   atomic.Uint32
	ready chan struct{}
	addr  atomic.Pointer[string]
	ran   atomic.Bool

	// life bounds forwarded queries; Run cancels it when it returns.
	life context.Context
	stop context.CancelFunc

	slow   chan struct{} // tokens of UDP queries answered off the read loops
	slowWG sync.WaitGroup

	rrl   *rrlLimiter // nil when off
	allow prefixSet   // ForwardAllow, for RRL
	tcpLn *capListener
}

// New checks the configuration and returns a server, which answers SERVFAIL for names in the
// zone until the first SetIndex (resolvers retry a SERVFAIL, while an NXDOMAIN would be
// cached), and forwards other names from the start.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	fwd, err := newForwarder(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger,
		apex:  cfg.Domain,
		ra:    cfg.Forward,
		fwd:   fwd,
		ready: make(chan struct{}),
		slow:  make(chan struct{}, maxSlowQueries),
		rrl:   newRRL(cfg.RRL, time.Now),
		allow: newPrefixSet(cfg.ForwardAllow),
	}
	s.life, s.stop = context.WithCancel(context.Background())
	if cfg.Forward && len(fwd.defaults) == 0 {
		s.log.Warn("DNS: no upstream resolvers (none given, none usable in resolv.conf): names outside the zone get SERVFAIL",
			"resolv_conf", cfg.ResolvConf, "zone", s.apex)
	}
	return s, nil
}

// withDefaults fills in unset fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if host, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("DNS listen address %q: %w", c.Listen, err))
	} else if _, err := netip.ParseAddr(host); host != "" && err != nil {
		errs = append(errs, fmt.Errorf("DNS listen address %q: want an IP address and port (or :port for every address)", c.Listen))
	}
	c.Domain = normalizeZone(c.Domain)
	if c.Domain == "." {
		c.Domain = DefaultDomain + "."
	}
	if _, ok := dns.IsDomainName(c.Domain); !ok || strings.ContainsAny(c.Domain, `\ `) {
		errs = append(errs, fmt.Errorf("DNS domain %q: not a valid domain name", c.Domain))
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.UpstreamTimeout <= 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.UDPSockets < 0 {
		errs = append(errs, fmt.Errorf("DNS UDP sockets %d: want 1 or more (0 for one per CPU)", c.UDPSockets))
	}
	if c.UDPSockets == 0 {
		c.UDPSockets = runtime.NumCPU()
	}
	if len(c.ForwardAllow) == 0 {
		c.ForwardAllow = DefaultForwardAllow
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if c.RRL, err = c.RRL.withDefaults(); err != nil {
		errs = append(errs, err)
	}
	if c.TCP, err = c.TCP.withDefaults(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// normalizeZone lower-cases a zone name and gives it its trailing dot.
func normalizeZone(z string) string {
	return dns.Fqdn(strings.ToLower(strings.TrimSpace(z)))
}

// SetIndex swaps in the records to serve. It compiles the index into wire-format answers first,
// so the swap itself is atomic and queries never wait. While the first index of a big zone
// compiles, the names it has are answered from it directly (the same answers, made per query),
// and the others SERVFAIL as before any index. nil goes back to answering SERVFAIL for the
// zone. An index for another domain is refused (logged) and the current one kept.
func (s *Server) SetIndex(ix *RecordIndex) {
	if ix == nil {
		s.zone.Store(nil)
		srvZoneNames.Set(0)
		srvZoneRecords.Set(0)
		return
	}
	if d := normalizeZone(ix.Domain); ix.Domain != "" && d != s.apex {
		s.log.Error("DNS: record index for another domain ignored; check --dns-domain", "index_domain", d, "zone", s.apex)
		return
	}
	start := time.Now()
	if s.zone.Load() == nil && ix.Len() >= parallelCompileNames {
		// The first index of a big zone: compiling it takes a while (a few hundred ms at
		// 100,000 tasks), in which the names it has are answered from it directly.
		s.zone.Store(newInterimZone(ix, s.apex, s.cfg.TTL, s.cfg.NegativeTTL, s.ra))
	}
	z := compileZone(ix, s.apex, s.cfg.TTL, s.cfg.NegativeTTL, s.ra)
	s.zone.Store(z)
	srvZoneCompileSeconds.Observe(time.Since(start).Seconds())
	srvZoneNames.Set(float64(z.len()))
	srvZoneRecords.Set(float64(z.records))
	srvZoneSerial.Set(float64(z.serial))
	srvZoneUpdated.SetToCurrentTime()
}

// Ready is closed once the server listens on UDP and TCP.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server listens on once Ready is closed (the port chosen, with port 0);
// before that, the configured address.
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return s.cfg.Listen
}

// Run serves UDP and TCP until ctx is done. It may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("dnsserver: Run called twice")
	}
	defer s.stop()
	ln, socks, err := listenAll(ctx, s.cfg.Listen, s.cfg.UDPSockets)
	if err != nil {
		return fmt.Errorf("DNS listen on %s (--dns-listen): %w", s.cfg.Listen, err)
	}
	addr := ln.Addr().String()
	s.tcpLn = newCapListener(ln, s.cfg.TCP)
	tcpStarted := make(chan struct{})
	tcp := &dns.Server{
		Listener: s.tcpLn, Net: "tcp", Handler: s,
		MaxTCPQueries:     -1, // no per-connection cap (mesos-dns closes after 128)
		ReadTimeout:       s.cfg.TCP.readTimeout(),
		IdleTimeout:       func() time.Duration { return s.cfg.TCP.IdleTimeout },
		NotifyStartedFunc: func() { close(tcpStarted) },
	}
	errc := make(chan error, len(socks)+1)
	var wg sync.WaitGroup
	for i, sock := range socks {
		wg.Go(func() {
			if err := s.serveUDP(sock, uint32(i)*7919); err != nil {
				errc <- err
			}
		})
	}
	wg.Go(func() {
		if err := tcp.ActivateAndServe(); err != nil {
			errc <- fmt.Errorf("serving DNS over TCP on %s: %w", addr, err)
		}
	})
	select {
	case <-tcpStarted:
	case err = <-errc:
	}
	if err == nil {
		s.addr.Store(&addr)
		close(s.ready)
		s.log.Info("DNS listening", "addr", addr, "zone", s.apex, "udp_sockets", len(socks),
			"forward", s.cfg.Forward, "upstreams", strings.Join(s.fwd.defaults, ","))
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	}
	for _, sock := range socks {
		sock.conn.Close()
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := tcp.ShutdownContext(shutCtx); serr != nil && err == nil && ctx.Err() == nil {
		err = serr
	}
	s.stop()
	wg.Wait()
	s.slowWG.Wait()
	return err
}

// answerZone answers an in-zone query into out: from the compiled answers, or SERVFAIL before
// the first index.
func (s *Server) answerZone(out []byte, q *query, limit int, rot uint32) ([]byte, int) {
	z := s.zone.Load()
	if z == nil {
		return appendBare(out, q, s.ra, rcodeFail), rcodeFail
	}
	return z.respond(out, q, limit, rot)
}

// ServeDNS answers one query (dns.Handler). The server's own UDP read loops answer in-zone
// queries without it; it serves TCP, forwarded and unusual queries, and servers that mount it.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now()
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	qtype := uint16(0)
	if len(r.Question) > 0 {
		qtype = r.Question[0].Qtype
	}
	rcode, forwarded := s.serveMsg(w, r, tcp)
	observeQuery(qtype, rcode, start, forwarded)
}

// serveMsg answers r and returns the rcode, and whether upstreams were asked.
func (s *Server) serveMsg(w dns.ResponseWriter, r *dns.Msg, tcp bool) (rcode int, forwarded bool) {
	if r.Opcode != dns.OpcodeQuery {
		return writeRcode(w, r, dns.RcodeNotImplemented, s.ra), false
	}
	if len(r.Question) != 1 {
		return writeRcode(w, r, dns.RcodeFormatError, s.ra), false
	}
	if opt := r.IsEdns0(); opt != nil && opt.Version() != 0 {
		return writeRcode(w, r, dns.RcodeBadVers, s.ra), false
	}
	var q query
	qn := make([]byte, 256)
	n, err := dns.PackDomainName(r.Question[0].Name, qn, 0, nil, false)
	if err != nil {
		return writeRcode(w, r, dns.RcodeFormatError, s.ra), false
	}
	q.id, q.qname = r.Id, qn[:n]
	q.key = appendWireKey(make([]byte, 0, n+16), q.qname)
	q.qtype, q.qclass = r.Question[0].Qtype, r.Question[0].Qclass
	if r.RecursionDesired {
		q.flags |= 0x0100
	}
	if r.CheckingDisabled {
		q.flags |= 0x0010
	}
	if opt := r.IsEdns0(); opt != nil {
		q.edns, q.bufSize, q.do = true, opt.UDPSize(), opt.Do()
	}
	if !keyInZone(q.key, s.apex) {
		return s.forward(w, r, &q, tcp)
	}
	limit := maxTCPSize
	if !tcp {
		var reply []byte
		var limited bool
		limit, reply, limited = s.limitUDP(remoteIP(w), time.Now(), &q, r.Len(), make([]byte, 0, 512))
		if limited {
			if reply != nil {
				w.Write(reply)
			}
			return rcodeOK, false
		}
	}
	reply, rcode := s.answerZone(make([]byte, 0, 512), &q, limit, s.rot.Add(1))
	w.Write(reply)
	return rcode, false
}

// writeRcode answers r with an empty reply of rcode, echoing its OPT record.
func writeRcode(w dns.ResponseWriter, r *dns.Msg, rcode int, ra bool) int {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = ra
	if opt := r.IsEdns0(); opt != nil {
		// Pack moves the extended bits of rcode (BADVERS) into this OPT record.
		m.SetEdns0(min(max(opt.UDPSize(), minUDPSize), maxUDPSize), opt.Do())
	}
	w.WriteMsg(m)
	return rcode
}
