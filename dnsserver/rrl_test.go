package dnsserver

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func testRRL(t *testing.T, cfg RRLConfig) (*rrlLimiter, *fakeClock) {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	return newRRL(cfg, clock.Now), clock
}

// verdicts accounts n responses of ip and writes them as a string: s sent, d dropped,
// t truncated (slipped).
func verdicts(l *rrlLimiter, ip string, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte("sdt"[l.account(netip.MustParseAddr(ip))])
	}
	return b.String()
}

func TestRRLSlip(t *testing.T) {
	for _, c := range []struct {
		slip int
		want string
	}{
		{0, "sssss" + "dddddddd"},
		{1, "sssss" + "tttttttt"},
		{2, "sssss" + "dtdtdtdt"},
		{3, "sssss" + "ddtddtdd"},
	} {
		l, _ := testRRL(t, RRLConfig{Rate: 5, Slip: c.slip})
		if got := verdicts(l, "192.0.2.1", 13); got != c.want {
			t.Errorf("slip %d: %s, want %s", c.slip, got, c.want)
		}
	}
}

// TestRRLRate: Rate responses a second, a second's worth at once; every response counts,
// the limited ones too (bind's semantics), so a flood is paid off before answers resume.
func TestRRLRate(t *testing.T) {
	l, clock := testRRL(t, RRLConfig{Rate: 5, Slip: 2})
	if got := verdicts(l, "192.0.2.1", 20); got != "sssss"+"dtdtdtdtdtdtdtd" {
		t.Fatalf("burst: %s", got)
	}
	// 20 responses at 200 ms each: credit used up to 4 s ahead; one more fits once that is
	// at most a second ahead, at 3.2 s.
	clock.Advance(3*time.Second + 100*time.Millisecond)
	if got := verdicts(l, "192.0.2.1", 1); got != "t" {
		t.Fatalf("at 3.1s: %s, want still limited", got)
	}
	clock.Advance(300 * time.Millisecond) // the response at 3.1 s was debited too
	if got := verdicts(l, "192.0.2.1", 1); got != "s" {
		t.Fatalf("at 3.4s: %s, want sent", got)
	}
	// Steady: one response every 200 ms is always within the rate.
	clock.Advance(10 * time.Second)
	for i := range 50 {
		clock.Advance(200 * time.Millisecond)
		if got := verdicts(l, "192.0.2.1", 1); got != "s" {
			t.Fatalf("steady response %d: %s", i, got)
		}
	}
}

// TestRRLWindow: a flood's debt is capped at Window, so a long flood is forgotten Window
// after it stops rather than after it is paid off.
func TestRRLWindow(t *testing.T) {
	l, clock := testRRL(t, RRLConfig{Rate: 5, Slip: 2, Window: 2 * time.Second})
	verdicts(l, "192.0.2.1", 1000) // 200 s worth
	clock.Advance(2*time.Second + 200*time.Millisecond)
	if got := verdicts(l, "192.0.2.1", 1); got != "s" {
		t.Fatalf("2.2s after a 200s flood with a 2s window: %s, want sent", got)
	}
}

// TestRRLPrefixes: clients share an account per /24 (IPv4) or /56 (IPv6).
func TestRRLPrefixes(t *testing.T) {
	l, _ := testRRL(t, RRLConfig{Rate: 2, Slip: 0})
	for _, c := range []struct{ ip, want string }{
		{"192.0.2.1", "ss"},
		{"192.0.2.254", "d"},        // the same /24
		{"::ffff:192.0.2.9", "d"},   // the same, IPv4-mapped
		{"192.0.3.1", "ss"},         // another /24
		{"2001:db8:0:100::1", "ss"}, // 2001:db8:0:100::/56
		{"2001:db8:0:1ff:ffff::1", "d"},
		{"2001:db8:0:200::1", "s"}, // the next /56
		{"fe80::1%eth0", "ss"},     // zones do not matter
		{"fe80::2", "d"},
	} {
		if got := verdicts(l, c.ip, len(c.want)); got != c.want {
			t.Errorf("%s: %s, want %s", c.ip, got, c.want)
		}
	}
}

// TestRRLTableBounded: a flood from ever new prefixes (forged sources) keeps at most
// MaxClients accounts.
func TestRRLTableBounded(t *testing.T) {
	l, _ := testRRL(t, RRLConfig{Rate: 1, Slip: 0, MaxClients: 64})
	evicted := counterValue(t, srvRRLEvicted)
	for i := range 10000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		l.account(ip)
	}
	if n := l.size(); n > 64 {
		t.Fatalf("%d accounts kept, want at most 64", n)
	}
	if d := counterValue(t, srvRRLEvicted) - evicted; d < 10000-64 {
		t.Errorf("%v evictions counted, want at least %d", d, 10000-64)
	}
}

// TestRRLEvictsExpiredFirst: when the table is full, an account with nothing to remember
// (its credit full again) makes room before one that is limiting a flood.
func TestRRLEvictsExpiredFirst(t *testing.T) {
	l, clock := testRRL(t, RRLConfig{Rate: 1, Slip: 0, Window: time.Hour, MaxClients: 64})
	verdicts(l, "198.51.100.1", 5000) // limited for the next hour
	for i := range 1000 {
		l.account(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})) // a new /24 each
		clock.Advance(2 * time.Second)                                    // each new account has expired before the next comes
	}
	if n := l.size(); n > 64 {
		t.Fatalf("%d accounts kept, want at most 64", n)
	}
	if got := verdicts(l, "198.51.100.1", 1); got != "d" {
		t.Errorf("the flooding prefix after 1000 others came and went: %s, want still limited", got)
	}
}

func TestRRLConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  RRLConfig
		want string // "" valid
	}{
		{RRLConfig{}, ""},
		{RRLConfig{Rate: -1}, "DNS RRL rate -1"},
		{RRLConfig{Rate: 5, Slip: 2}, ""},
		{RRLConfig{Rate: 2_000_000}, "DNS RRL rate"},
		{RRLConfig{Rate: 5, Slip: -1}, "slip -1"},
		{RRLConfig{Rate: 5, Slip: 11}, "slip 11"},
		{RRLConfig{Rate: 5, Window: 500 * time.Millisecond}, "window 500ms"},
		{RRLConfig{Rate: 5, IPv4Prefix: 33}, "prefix lengths /33"},
		{RRLConfig{Rate: 5, IPv6Prefix: -1}, "prefix lengths"},
		{RRLConfig{Rate: 5, MaxClients: 3}, "table size 3"},
	} {
		_, err := New(Config{ResolvConf: "/nonexistent", RRL: c.cfg})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want one with %q", c.cfg, err, c.want)
		}
	}
}

// TestRRLServer: against a real server on 127.0.0.1, outside the allow list, at 5 answers a
// second with slip 2 and a stopped clock: 5 answers, then every other query is answered
// truncated and the others not at all; TCP answers in full; once the clock moves on, UDP
// answers again. A client inside the allow list is never limited.
func TestRRLServer(t *testing.T) {
	clock := newFakeClock()
	s := startServer(t, Config{
		UDPSockets:   1, // one read loop: the answers come in the order of the queries
		ForwardAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		RRL:          RRLConfig{Rate: 5, Slip: 2},
	}, testIndex(), func(s *Server) { s.rrl.now, s.rrl.fixedClock = clock.Now, true })
	dropped, slipped := counterValue(t, srvRRLDropped), counterValue(t, srvRRLSlipped)

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	server, _ := net.ResolveUDPAddr("udp", s.Addr())
	const name = "app-abcde-s1.marathon.mesos."
	for id := 1; id <= 21; id++ {
		m := newQuery(name, dns.TypeA, 0)
		m.Id = uint16(id)
		pkt, _ := m.Pack()
		if _, err := conn.WriteToUDP(pkt, server); err != nil {
			t.Fatal(err)
		}
	}
	// The answer to query 21 (a slip) comes last; every answer before it has come by then.
	got := map[uint16]*dns.Msg{}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got[21] == nil {
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(got), err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		got[r.Id] = r
	}
	for id := uint16(1); id <= 21; id++ {
		r := got[id]
		switch {
		case id <= 5:
			if r == nil || r.Truncated || len(r.Answer) != 1 {
				t.Errorf("query %d: %v, want the answer", id, r)
			}
		case id%2 == 1:
			if r == nil || !r.Truncated || len(r.Answer) != 0 || !r.Authoritative || r.Rcode != dns.RcodeSuccess {
				t.Errorf("query %d: %v, want a truncated empty answer", id, r)
			}
		case r != nil:
			t.Errorf("query %d answered, want it dropped: %v", id, r)
		}
	}
	if d := counterValue(t, srvRRLDropped) - dropped; d != 8 {
		t.Errorf("rrl_dropped_total went up by %v, want 8", d)
	}
	if d := counterValue(t, srvRRLSlipped) - slipped; d != 8 {
		t.Errorf("rrl_slipped_total went up by %v, want 8", d)
	}
	// The retry over TCP is answered.
	if r, _ := exchange(t, "tcp", s.Addr(), newQuery(name, dns.TypeA, 0)); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("over TCP: %v, want the answer", r)
	}
	// A client in the allow list, in the same /24, is not limited.
	allowed := &dns.Client{Net: "udp", Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}}}
	for i := range 10 {
		r, _, err := allowed.Exchange(newQuery(name, dns.TypeA, 0), s.Addr())
		if err != nil || r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("allowed client, query %d: %v %v", i, r, err)
		}
	}
	// After the window the limited client is answered again.
	clock.Advance(DefaultRRLWindow + time.Second)
	if r, _ := exchange(t, "udp", s.Addr(), newQuery(name, dns.TypeA, 0)); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("after the window: %v, want the answer", r)
	}
}

// TestOutsideAnswerSize: a client outside the allow list gets UDP answers of at most a few
// times its query (the rest truncated, for TCP), however big its EDNS0 buffer; a client in
// the list gets what fits its buffer.
func TestOutsideAnswerSize(t *testing.T) {
	s := startServer(t, Config{
		ForwardAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
		RRL:          RRLConfig{Rate: 1000, Slip: 2},
	}, testIndex())
	for _, name := range []string{"many.marathon.mesos.", "_big._tcp.marathon.mesos."} {
		qtype := dns.TypeA
		if strings.HasPrefix(name, "_") {
			qtype = dns.TypeSRV
		}
		m := newQuery(name, qtype, 4096)
		wire, _ := m.Pack()
		r, size := exchange(t, "udp", s.Addr(), m)
		if !r.Truncated || size > max(outsideAnswerFactor*len(wire), minOutsideAnswer) {
			t.Errorf("%s from outside: %d bytes for a %d-byte query, truncated %v; want at most %d, truncated",
				name, size, len(wire), r.Truncated, outsideAnswerFactor*len(wire))
		}
		allowed := &dns.Client{Net: "udp", UDPSize: 4096, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}}}
		ra, _, err := allowed.Exchange(newQuery(name, qtype, 4096), s.Addr())
		if err != nil || ra.Truncated || len(ra.Answer) < 20 {
			t.Errorf("%s from an allowed client: %v %v, want every record", name, ra, err)
		}
	}
}

// TestPrefixSet: the allow list RRL consults agrees with the forwarder's check,
// netip.Prefix.Contains of the unmapped client.
func TestPrefixSet(t *testing.T) {
	lists := [][]netip.Prefix{
		DefaultForwardAllow,
		{netip.MustParsePrefix("0.0.0.0/0")},
		{netip.MustParsePrefix("::/0")},
		{netip.MustParsePrefix("::ffff:0:0/96")}, // IPv4-mapped: no client is in it, as for the forwarder
		{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::7/128")},
		{netip.MustParsePrefix("192.0.2.77/25"), netip.MustParsePrefix("2001:db8:0:ff00::/57")}, // unmasked bits
		{},
	}
	clients := []string{"127.0.0.1", "10.1.2.3", "172.31.255.255", "172.32.0.0", "192.168.0.1", "8.8.8.8",
		"::1", "::2", "fc00::1", "fd12::1", "fe80::1%eth0", "2001:db8::7", "2001:db8::8", "192.0.2.7", "192.0.2.8",
		"192.0.2.1", "192.0.2.200", "2001:db8:0:ff7f::1", "2001:db8:0:ff80::1", "0.0.0.0", "255.255.255.255"}
	for _, list := range lists {
		set := newPrefixSet(list)
		for _, c := range clients {
			ip := netip.MustParseAddr(c)
			want := false
			for _, p := range list {
				want = want || p.Contains(ip.Unmap().WithZone(""))
			}
			if got := set.contains(ip); got != want {
				t.Errorf("%v contains %s: %v, want %v", list, c, got, want)
			}
			if mapped := netip.AddrFrom16(ip.As16()); ip.Is4() && set.contains(mapped) != want {
				t.Errorf("%v contains %s: %v, want %v as for %s", list, mapped, !want, want, c)
			}
		}
	}
}
