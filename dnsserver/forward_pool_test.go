package dnsserver

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// scriptedUpstream reads queries on a UDP socket and answers each with what reply returns (any
// number of packets, in order). It sends the query IDs it saw on ids.
func scriptedUpstream(t *testing.T, reply func(q *dns.Msg) []*dns.Msg) (addr string, ids <-chan uint16) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ch := make(chan uint16, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			select {
			case ch <- q.Id:
			default:
			}
			for _, m := range reply(q) {
				b, _ := m.Pack()
				pc.WriteTo(b, from)
			}
		}
	}()
	return pc.LocalAddr().String(), ch
}

// aReply answers q with one A record for name.
func aReply(q *dns.Msg, name, ip string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Question[0].Name = name
	rr, _ := dns.NewRR(name + " 30 IN A " + ip)
	m.Answer = append(m.Answer, rr)
	return m
}

// TestForwardMatchesIDAndQuestion: an answer under another ID, or under the query's ID but for
// another question, is dropped and the query waits for its own answer. Queries go upstream
// under IDs of their own, not the client's.
func TestForwardMatchesIDAndQuestion(t *testing.T) {
	up, ids := scriptedUpstream(t, func(q *dns.Msg) []*dns.Msg {
		wrongID := aReply(q, q.Question[0].Name, "127.0.0.66")
		wrongID.Id++
		wrongName := aReply(q, "other.example.org.", "127.0.0.67")
		return []*dns.Msg{wrongID, wrongName, aReply(q, q.Question[0].Name, "127.0.0.68")}
	})
	s := startServer(t, Config{Forward: true, Upstreams: []string{up}}, nil)
	unknown := counterValue(t, srvUpstreamStray.WithLabelValues(up, "unknown_id"))
	question := counterValue(t, srvUpstreamStray.WithLabelValues(up, "question"))
	seen := map[uint16]bool{}
	for i := range 8 {
		network := []string{"udp", "tcp"}[i%2]
		m := newQuery("www.example.org.", dns.TypeA, 0)
		m.Id = 4242
		r, _ := exchange(t, network, s.Addr(), m)
		if got := aAnswer(t, r); got != "127.0.0.68" {
			t.Errorf("%s: answer %s, want the one that matches ID and question (127.0.0.68)", network, got)
		}
		seen[<-ids] = true
	}
	if len(seen) < 2 || seen[4242] && len(seen) < 8 {
		t.Errorf("upstream saw IDs %v for 8 queries with ID 4242, want fresh random ones", seen)
	}
	// The dropped answers are counted; they may still be arriving for the last query.
	waitCounter(t, "stray answers under an unknown ID", func() float64 {
		return counterValue(t, srvUpstreamStray.WithLabelValues(up, "unknown_id")) - unknown
	}, 8)
	waitCounter(t, "answers for another question", func() float64 {
		return counterValue(t, srvUpstreamStray.WithLabelValues(up, "question")) - question
	}, 8)
}

// waitCounter waits (up to 10 s) for get to reach want, and fails if it does not or passes it.
func waitCounter(t *testing.T, what string, get func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	got := get()
	for got < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		got = get()
	}
	if got != want {
		t.Errorf("%s: counted %v, want %v", what, got, want)
	}
}

// TestForwardTimeout: an upstream that never answers costs the query its timeout, then
// SERVFAIL, over UDP and TCP, and counts a timeout.
func TestForwardTimeout(t *testing.T) {
	silent, _ := silentUpstream(t)
	s := startServer(t, Config{Forward: true, Upstreams: []string{silent}, UpstreamTimeout: 200 * time.Millisecond}, nil)
	before := counterValue(t, srvUpstreamFailures.WithLabelValues(silent, "timeout"))
	for _, network := range []string{"udp", "tcp"} {
		r, _ := exchange(t, network, s.Addr(), newQuery("www.example.org.", dns.TypeA, 0))
		if r.Rcode != dns.RcodeServerFailure || !r.RecursionAvailable {
			t.Errorf("%s: rcode %s RA %v, want SERVFAIL with RA", network, dns.RcodeToString[r.Rcode], r.RecursionAvailable)
		}
	}
	if got := counterValue(t, srvUpstreamFailures.WithLabelValues(silent, "timeout")) - before; got != 2 {
		t.Errorf("%v timeouts counted, want 2", got)
	}
}

// TestForwardRefusedSocketFailsOver: an upstream port nobody listens on refuses (ICMP), which
// fails the query over to the next upstream at once, not after the stagger or the timeout.
func TestForwardRefusedSocketFailsOver(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	s := startServer(t, Config{Forward: true, Upstreams: []string{closed}, UpstreamTimeout: time.Hour}, nil)
	before := counterValue(t, srvUpstreamFailures.WithLabelValues(closed, "error"))
	done := make(chan *dns.Msg, 1)
	go func() {
		c := &dns.Client{Timeout: time.Minute}
		r, _, err := c.Exchange(newQuery("www.example.org.", dns.TypeA, 0), s.Addr())
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	select {
	case r := <-done:
		if r != nil && r.Rcode != dns.RcodeServerFailure {
			t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no answer: a refused upstream was waited out (the timeout is an hour)")
	}
	if got := counterValue(t, srvUpstreamFailures.WithLabelValues(closed, "error")) - before; got != 1 {
		t.Errorf("%v errors counted for the refusing upstream, want 1", got)
	}
}

// TestForwardCacheThroughServer: a repeated name is answered from the cache, in the asker's
// case and with its TTL counted down from the upstream's; a denial without SOA and a
// truncated answer are asked upstream every time.
func TestForwardCacheThroughServer(t *testing.T) {
	up := startUpstream(t, "127.0.0.77")
	s := startServer(t, Config{Forward: true, Upstreams: []string{up.addr}, Cache: CacheConfig{Size: 100}}, nil)
	hits := counterValue(t, cacheHits)
	for i, name := range []string{"www.example.org.", "WWW.EXAMPLE.org.", "www.Example.ORG."} {
		network := []string{"udp", "tcp", "udp"}[i]
		r, _ := exchange(t, network, s.Addr(), newQuery(name, dns.TypeA, 1232))
		if got := aAnswer(t, r); got != "127.0.0.77" {
			t.Errorf("%s: %s", name, got)
		}
		if r.Question[0].Name != name || r.Answer[0].Header().Ttl > 30 || !r.RecursionAvailable || r.Authoritative {
			t.Errorf("%s over %s: question %s, TTL %d, RA %v, AA %v; want the asker's name, TTL 30 or less, RA, no AA",
				name, network, r.Question[0].Name, r.Answer[0].Header().Ttl, r.RecursionAvailable, r.Authoritative)
		}
	}
	if got := counterValue(t, cacheHits) - hits; got != 2 {
		t.Errorf("%v cache hits, want 2", got)
	}
	for range 2 {
		exchange(t, "udp", s.Addr(), newQuery("nope.example.org.", dns.TypeMX, 1232)) // NXDOMAIN, no SOA
		r, _ := exchange(t, "udp", s.Addr(), newQuery("big.example.org.", dns.TypeTXT, 0))
		if !r.Truncated {
			t.Error("big.example.org. TXT over UDP without EDNS: want TC")
		}
	}
	seen, _ := up.queries()
	count := map[string]int{}
	for _, m := range seen {
		count[strings.ToLower(m.Question[0].Name)]++
	}
	if count["www.example.org."] != 1 || count["nope.example.org."] != 2 || count["big.example.org."] != 2 {
		t.Errorf("upstream asked %v; want www once, nope (no SOA) and big (truncated) twice each", count)
	}
}

// TestCacheSizeChecked: a negative cache size is refused by New.
func TestCacheSizeChecked(t *testing.T) {
	_, err := New(Config{Cache: CacheConfig{Size: -1}, ResolvConf: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "--dns-cache-size") {
		t.Errorf("New with cache size -1: %v, want an error naming --dns-cache-size", err)
	}
}

// TestWheelKeepsEveryDeadline: the wheel fires a query at its slot, never before its time, and
// one past its horizon early (to be put back), not never.
func TestWheelKeepsEveryDeadline(t *testing.T) {
	t0 := time.Now()
	w := &fwdWheel{base: t0, slots: make([][]*fwdQuery, 4), wake: make(chan struct{}, 1)}
	soon, later, far := new(fwdQuery), new(fwdQuery), new(fwdQuery)
	for fq, at := range map[*fwdQuery]time.Duration{soon: 0, later: 12 * time.Millisecond, far: time.Hour} {
		if !w.schedule(fq, t0.Add(at)) {
			t.Fatal("schedule refused on an open wheel")
		}
	}
	if len(w.wake) != 1 {
		t.Error("the first query on an idle wheel did not wake the sweeper")
	}
	fired := func(now int64) map[*fwdQuery]bool {
		out := map[*fwdQuery]bool{}
		for _, fq := range w.takeDue(nil, now) {
			out[fq] = true
		}
		return out
	}
	if got := fired(0); len(got) != 0 {
		t.Errorf("tick 0 fired %d queries, want none (the earliest is due after tick 0)", len(got))
	}
	if got := fired(2); len(got) != 1 || !got[soon] {
		t.Errorf("ticks 1-2 fired %v, want the query due at once only (12 ms is in tick 2, fired after it)", got)
	}
	if got := fired(3); len(got) != 2 || !got[later] || !got[far] {
		t.Errorf("tick 3 fired %v, want the 12 ms query and the one past the horizon", got)
	}
	if w.count != 0 {
		t.Errorf("count %d after every query fired", w.count)
	}
	// A query that ended is taken off: not fired, not kept.
	ended, kept := new(fwdQuery), new(fwdQuery)
	w.schedule(ended, t0.Add(16*time.Millisecond))
	w.schedule(kept, t0.Add(16*time.Millisecond))
	w.cancel(ended)
	if got := fired(4); len(got) != 1 || !got[kept] || w.count != 0 {
		t.Errorf("tick 4 fired %v (count %d), want only the query still out", got, w.count)
	}
	w.stopAll()
	if w.schedule(soon, t0) {
		t.Error("a stopped wheel took a query")
	}
}

// TestUpstreamSocketsRotate: after rotateAfter queries a socket gives way to a fresh one, so
// queries leave from new source ports, and every query is still answered.
func TestUpstreamSocketsRotate(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ports := make(chan int, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			ports <- from.(*net.UDPAddr).Port
			b, _ := aReply(q, q.Question[0].Name, "127.0.0.69").Pack()
			pc.WriteTo(b, from)
		}
	}()
	up := pc.LocalAddr().String()
	s := startServer(t, Config{Forward: true, Upstreams: []string{up}}, nil, func(s *Server) {
		s.fwd.pools[up].rotateAfter = 3
	})
	// Queries take the sockets in turn: 6 for each place in the pool are 3 on its first socket
	// and 3 on the one that replaced it (the replaced one still open: distinct ports).
	n := upstreamSocketsPer()
	seen := map[int]bool{}
	for range 6 * n {
		r, _ := exchange(t, "udp", s.Addr(), newQuery("www.example.org.", dns.TypeA, 0))
		if got := aAnswer(t, r); got != "127.0.0.69" {
			t.Errorf("answer %s", got)
		}
		seen[<-ports] = true
	}
	if len(seen) != 2*n {
		t.Errorf("%d queries left from %d source ports, want %d (%d sockets, each replaced after 3 queries)", 6*n, len(seen), 2*n, n)
	}
}
