package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a tiny resolver for the forwarding tests: it answers every A query with ip, and
// TXT queries for big.example.org. with 40 strings (over 512 bytes: truncated over UDP unless
// the query's EDNS0 buffer allows more). It records the queries it saw.
type upstream struct {
	addr string
	ip   string

	mu    sync.Mutex
	seen  []*dns.Msg
	nets  []string
	udp   *dns.Server
	tcp   *dns.Server
	rcode int  // answer every query with this rcode when not 0
	noRA  bool // answer as an authoritative-only server does: RA clear
}

func startUpstream(t *testing.T, ip string) *upstream {
	t.Helper()
	u := &upstream{ip: ip}
	// The UDP port the kernel picks may be in use over TCP (by another test's connection):
	// pick again until both are free.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if attempt == 20 {
				t.Fatal(err)
			}
		}
	}
	u.addr = pc.LocalAddr().String()
	u.udp = &dns.Server{PacketConn: pc, Handler: u}
	u.tcp = &dns.Server{Listener: ln, Handler: u}
	for _, s := range []*dns.Server{u.udp, u.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
	}
	t.Cleanup(u.stop)
	return u
}

func (u *upstream) stop() {
	u.udp.Shutdown()
	u.tcp.Shutdown()
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Copy())
	u.nets = append(u.nets, w.RemoteAddr().Network())
	rcode, noRA := u.rcode, u.noRA
	u.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = !noRA
	m.Authoritative = true // as an authoritative upstream answers: lodestar must not pass AA on
	if rcode != 0 {
		m.Rcode = rcode
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	switch {
	case q.Qtype == dns.TypeA:
		rr, _ := dns.NewRR(q.Name + " 30 IN A " + u.ip)
		m.Answer = append(m.Answer, rr)
	case q.Qtype == dns.TypeTXT && strings.EqualFold(q.Name, "big.example.org."):
		for i := range 40 {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 30},
				Txt: []string{strings.Repeat("x", 20) + string(rune('a'+i%26))}})
		}
	case q.Qtype == dns.TypeAAAA && strings.EqualFold(q.Name, manyName):
		// 2,000 AAAA records: 132 kB written out in full, 56 kB compressed.
		for i := range 2000 {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 30},
				AAAA: netip.AddrFrom16([16]byte{0xfd, 14: byte(i >> 8), 15: byte(i)}).AsSlice()})
		}
		m.Compress = true
	default:
		m.Rcode = dns.RcodeNameError
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if w.RemoteAddr().Network() == "udp" {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// manyName has 2,000 AAAA records at the test upstream: over 64 kB unless compressed.
const manyName = "many-addresses.round-robin.example.org."

func (u *upstream) queries() ([]*dns.Msg, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*dns.Msg(nil), u.seen...), append([]string(nil), u.nets...)
}

// silentUpstream reads queries and never answers, until the test ends. got receives a value
// for each query read.
func silentUpstream(t *testing.T) (addr string, got <-chan struct{}) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ch := make(chan struct{}, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return pc.LocalAddr().String(), ch
}

func aAnswer(t *testing.T, r *dns.Msg) string {
	t.Helper()
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("rcode %s, answers %v; want one A record", dns.RcodeToString[r.Rcode], r.Answer)
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		t.Fatalf("answer %v is no A record", r.Answer[0])
	}
	return a.A.String()
}

func TestForwardOtherNames(t *testing.T) {
	up := startUpstream(t, "127.0.0.77")
	s := startServer(t, Config{Forward: true, Upstreams: []string{up.addr}}, nil)

	m := newQuery("www.Example.org.", dns.TypeA, 1232)
	m.Id = 4242
	r, _ := exchange(t, "udp", s.Addr(), m) // checks the ID came back
	if got := aAnswer(t, r); got != "127.0.0.77" {
		t.Errorf("forwarded answer %s, want the upstream's 127.0.0.77", got)
	}
	if r.Authoritative || !r.RecursionAvailable {
		t.Errorf("AA=%v RA=%v, want a recursive, non-authoritative answer", r.Authoritative, r.RecursionAvailable)
	}
	if opt := r.IsEdns0(); opt == nil || !opt.Do() {
		t.Errorf("reply OPT %v, want the client's DO bit echoed", opt)
	}
	seen, _ := up.queries()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d queries, want 1", len(seen))
	}
	opt := seen[0].IsEdns0()
	if opt == nil || opt.UDPSize() != 1232 || !opt.Do() || seen[0].Question[0].Name != "www.Example.org." {
		t.Errorf("upstream got %v with OPT %v, want the client's question, buffer size 1232 and DO", seen[0].Question, opt)
	}

	t.Run("NXDOMAIN passes through", func(t *testing.T) {
		r, _ := exchange(t, "udp", s.Addr(), newQuery("x.example.org.", dns.TypeMX, 0))
		if r.Rcode != dns.RcodeNameError {
			t.Errorf("rcode %s, want the upstream's NXDOMAIN", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("TCP client, truncated UDP answer: asked again over TCP", func(t *testing.T) {
		r, _ := exchange(t, "tcp", s.Addr(), newQuery("big.example.org.", dns.TypeTXT, 0))
		if r.Truncated || len(r.Answer) != 40 {
			t.Errorf("TC=%v with %d answers, want all 40", r.Truncated, len(r.Answer))
		}
		_, nets := up.queries()
		if last := nets[len(nets)-2:]; last[0] != "udp" || last[1] != "tcp" {
			t.Errorf("upstream was asked over %v, want udp then tcp", last)
		}
	})
	t.Run("TCP client, answer over 64 kB unless compressed: passed on compressed", func(t *testing.T) {
		r, _ := exchange(t, "tcp", s.Addr(), newQuery(manyName, dns.TypeAAAA, 0))
		if r.Truncated || len(r.Answer) != 2000 {
			t.Errorf("TC=%v with %d answers, want all 2000", r.Truncated, len(r.Answer))
		}
	})
	t.Run("UDP client, truncated answer: passed on truncated", func(t *testing.T) {
		r, size := exchange(t, "udp", s.Addr(), newQuery("big.example.org.", dns.TypeTXT, 0))
		if !r.Truncated || size > 512 {
			t.Errorf("TC=%v, %d bytes; want TC within 512 bytes", r.Truncated, size)
		}
	})
	t.Run("upstream gone: SERVFAIL", func(t *testing.T) {
		up.stop()
		r, _ := exchange(t, "udp", s.Addr(), newQuery("www.example.org.", dns.TypeA, 0))
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
		}
	})
}

func TestForwardingOffRefuses(t *testing.T) {
	up := startUpstream(t, "127.0.0.77")
	s := startServer(t, Config{Forward: false, Upstreams: []string{up.addr}}, testIndex())
	for _, network := range []string{"udp", "tcp"} {
		r, _ := exchange(t, network, s.Addr(), newQuery("www.example.org.", dns.TypeA, 0))
		if r.Rcode != dns.RcodeRefused || r.RecursionAvailable {
			t.Errorf("%s: rcode %s RA=%v, want REFUSED without RA", network, dns.RcodeToString[r.Rcode], r.RecursionAvailable)
		}
	}
	if seen, _ := up.queries(); len(seen) != 0 {
		t.Errorf("the upstream was asked %d times", len(seen))
	}
}

func TestForwardOnlyForAllowedClients(t *testing.T) {
	up := startUpstream(t, "127.0.0.77")
	s := startServer(t, Config{Forward: true, Upstreams: []string{up.addr},
		ForwardAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, testIndex())
	from := func(ip, network string) *dns.Client {
		var local net.Addr = &net.UDPAddr{IP: net.ParseIP(ip)}
		if network == "tcp" {
			local = &net.TCPAddr{IP: net.ParseIP(ip)}
		}
		return &dns.Client{Net: network, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: local}}
	}
	for _, network := range []string{"udp", "tcp"} {
		r, _, err := from("127.0.0.2", network).Exchange(newQuery("www.example.org.", dns.TypeA, 0), s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("%s from 127.0.0.2: rcode %s, want REFUSED", network, dns.RcodeToString[r.Rcode])
		}
		// The zone is served to everyone.
		r, _, err = from("127.0.0.2", network).Exchange(newQuery("app-abcde-s1.marathon.mesos.", dns.TypeA, 0), s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if got := aAnswer(t, r); got != "127.0.0.11" {
			t.Errorf("%s from 127.0.0.2: zone answer %s", network, got)
		}
		r, _, err = from("127.0.0.1", network).Exchange(newQuery("www.example.org.", dns.TypeA, 0), s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if got := aAnswer(t, r); got != "127.0.0.77" {
			t.Errorf("%s from 127.0.0.1: %s, want the forwarded answer", network, got)
		}
	}
	if seen, _ := up.queries(); len(seen) != 2 {
		t.Errorf("the upstream was asked %d times, want 2 (the allowed client's queries)", len(seen))
	}
}

func TestSlowUpstreamDoesNotHoldUpTheFastOne(t *testing.T) {
	fast := startUpstream(t, "127.0.0.78")
	slow, asked := silentUpstream(t)
	s := startServer(t, Config{Forward: true, Upstreams: []string{slow, fast.addr}, UpstreamTimeout: 10 * time.Second}, nil)
	for range 3 {
		r, _ := exchange(t, "udp", s.Addr(), newQuery("www.example.org.", dns.TypeA, 0))
		if got := aAnswer(t, r); got != "127.0.0.78" {
			t.Errorf("answer %s, want the fast upstream's", got)
		}
	}
	// Outrun once, the silent upstream is asked after the fast one, which answers first.
	<-asked
	if n := len(asked); n != 0 {
		t.Errorf("the silent upstream was asked %d more times, want once in all", n)
	}
	if seen, _ := fast.queries(); len(seen) != 3 {
		t.Errorf("the fast upstream was asked %d times, want 3", len(seen))
	}
}

func TestFailingUpstreamFallsThroughToTheNext(t *testing.T) {
	broken := startUpstream(t, "127.0.0.79")
	broken.mu.Lock()
	broken.rcode = dns.RcodeServerFailure
	broken.mu.Unlock()
	good := startUpstream(t, "127.0.0.80")
	s := startServer(t, Config{Forward: true, Upstreams: []string{broken.addr, good.addr}}, nil)
	r, _ := exchange(t, "udp", s.Addr(), newQuery("www.example.org.", dns.TypeA, 0))
	if got := aAnswer(t, r); got != "127.0.0.80" {
		t.Errorf("answer %s, want the second upstream's", got)
	}
	good.mu.Lock()
	good.rcode = dns.RcodeRefused
	good.mu.Unlock()
	r, _ = exchange(t, "udp", s.Addr(), newQuery("www.example.org.", dns.TypeA, 0))
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("every upstream failing: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

func TestZoneUpstreamsLongestSuffixWins(t *testing.T) {
	def := startUpstream(t, "127.0.0.81")
	corp := startUpstream(t, "127.0.0.82")
	dev := startUpstream(t, "127.0.0.83")
	s := startServer(t, Config{Forward: true, Upstreams: []string{def.addr}, ZoneUpstreams: map[string][]string{
		"corp.example":      {corp.addr},
		"Dev.Corp.Example.": {dev.addr},
	}}, nil)
	for name, want := range map[string]string{
		"www.example.org.":       "127.0.0.81",
		"corp.example.":          "127.0.0.82",
		"a.corp.example.":        "127.0.0.82",
		"a.dev.corp.example.":    "127.0.0.83",
		"b.a.DEV.corp.example.":  "127.0.0.83",
		"notcorp.example.":       "127.0.0.81",
		"corp.example.org.":      "127.0.0.81",
		"x.xdev.corp.example.":   "127.0.0.82",
		"dev.corp.example.com.":  "127.0.0.81",
		"www.dev.corp.example.":  "127.0.0.83",
		"www.corp.example.":      "127.0.0.82",
		"deep.www.corp.example.": "127.0.0.82",
	} {
		r, _ := exchange(t, "udp", s.Addr(), newQuery(name, dns.TypeA, 0))
		if got := aAnswer(t, r); got != want {
			t.Errorf("%s: answered by %s, want %s", name, got, want)
		}
	}
}

func TestResolvConfUpstreams(t *testing.T) {
	path := writeFile(t, "resolv.conf", "# test\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\nnameserver 0.0.0.0\nnameserver 2001:db8::53\noptions ndots:2\n")
	got, err := resolvConfUpstreams(path, map[netip.Addr]bool{netip.MustParseAddr("192.0.2.99"): true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "192.0.2.53:53 [2001:db8::53]:53"; strings.Join(got, " ") != want {
		t.Errorf("upstreams %v, want %s", got, want)
	}
	got, _ = resolvConfUpstreams(path, map[netip.Addr]bool{netip.MustParseAddr("192.0.2.53"): true})
	if want := "[2001:db8::53]:53"; strings.Join(got, " ") != want {
		t.Errorf("with 192.0.2.53 a local address: %v, want %s", got, want)
	}
	// New takes them when no upstream is given; no packet is sent here.
	s, err := New(Config{Forward: true, ResolvConf: path})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.fwd.defaults) == 0 || s.fwd.defaults[0] != "192.0.2.53:53" {
		t.Errorf("default upstreams %v, want resolv.conf's", s.fwd.defaults)
	}
	s, err = New(Config{Forward: true, ResolvConf: path, Upstreams: []string{"127.0.0.1", "[::1]:5353"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.fwd.defaults, " "); got != "127.0.0.1:53 [::1]:5353" {
		t.Errorf("given upstreams %s, want 127.0.0.1:53 [::1]:5353", got)
	}
}

// TestResolvConfSystemdStub: a resolv.conf that names only systemd-resolved's stub leads to the
// upstreams systemd-resolved itself uses.
func TestResolvConfSystemdStub(t *testing.T) {
	real := writeFile(t, "real-resolv.conf", "nameserver 192.0.2.1\nnameserver 192.0.2.2\n")
	old := resolvedResolvConf
	resolvedResolvConf = real
	t.Cleanup(func() { resolvedResolvConf = old })
	stub := writeFile(t, "resolv.conf", "nameserver 127.0.0.53\noptions edns0 trust-ad\n")
	got, err := resolvConfUpstreams(stub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "192.0.2.1:53 192.0.2.2:53"; strings.Join(got, " ") != want {
		t.Errorf("upstreams %v, want %s", got, want)
	}
	// Another loopback resolver (lodestar itself, dnsmasq) is not followed anywhere.
	other := writeFile(t, "other.conf", "nameserver 127.0.0.1\n")
	if got, _ := resolvConfUpstreams(other, nil); len(got) != 0 {
		t.Errorf("loopback-only resolv.conf: %v, want none", got)
	}
}

func TestForwardingStopsWithTheServer(t *testing.T) {
	slow, asked := silentUpstream(t)
	s, err := New(Config{Listen: "127.0.0.1:0", Forward: true, Upstreams: []string{slow}, UpstreamTimeout: time.Minute, ResolvConf: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	client, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	pkt, _ := newQuery("www.example.org.", dns.TypeA, 0).Pack()
	if _, err := client.Write(pkt); err != nil {
		t.Fatal(err)
	}
	// Once the query is out to the silent upstream, stop the server: Run returns without
	// waiting out the minute-long upstream timeout.
	<-asked
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return while a forwarded query waited for its upstream")
	}
}

func TestMetricsCountQueriesAndUpstreamFailures(t *testing.T) {
	broken := startUpstream(t, "127.0.0.79")
	broken.mu.Lock()
	broken.rcode = dns.RcodeRefused
	broken.mu.Unlock()
	s := startServer(t, Config{Forward: true, Upstreams: []string{broken.addr}}, testIndex())
	nx := counterValue(t, srvQueries.WithLabelValues("A", "NXDOMAIN"))
	srv := counterValue(t, srvQueries.WithLabelValues("SRV", "NOERROR"))
	fail := counterValue(t, srvQueries.WithLabelValues("MX", "SERVFAIL"))
	upFail := counterValue(t, srvUpstreamFailures.WithLabelValues(broken.addr, "rcode"))
	exchange(t, "udp", s.Addr(), newQuery("nope.mesos.", dns.TypeA, 0))
	exchange(t, "tcp", s.Addr(), newQuery("_app._tcp.marathon.mesos.", dns.TypeSRV, 0))
	exchange(t, "udp", s.Addr(), newQuery("example.org.", dns.TypeMX, 0))
	// A query is counted after its reply is written: poll until the count shows, or time out.
	for _, c := range []struct {
		name   string
		get    func() float64
		before float64
	}{
		{"A NXDOMAIN", func() float64 { return counterValue(t, srvQueries.WithLabelValues("A", "NXDOMAIN")) }, nx},
		{"SRV NOERROR over TCP", func() float64 { return counterValue(t, srvQueries.WithLabelValues("SRV", "NOERROR")) }, srv},
		{"MX SERVFAIL", func() float64 { return counterValue(t, srvQueries.WithLabelValues("MX", "SERVFAIL")) }, fail},
		{"upstream REFUSED", func() float64 { return counterValue(t, srvUpstreamFailures.WithLabelValues(broken.addr, "rcode")) }, upFail},
	} {
		deadline := time.Now().Add(5 * time.Second)
		got := c.get()
		for got < c.before+1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			got = c.get()
		}
		if got != c.before+1 {
			t.Errorf("%s counted %v times, want 1", c.name, got-c.before)
		}
	}
	if v := gaugeValue(t, srvZoneRecords); v != float64(3+2+3+1+1+1+1+2*8+2*20+2*400+100) {
		t.Errorf("zone_records %v", v)
	}
	if v := gaugeValue(t, srvZoneSerial); v != testSerial {
		t.Errorf("zone_serial %v, want %d", v, testSerial)
	}
}
