package dnsserver

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testClock is an injected clock for the cache.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newTestCache(size int) (*answerCache, *testClock) {
	clock := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newAnswerCache(size, time.Hour, clock.now), clock
}

// cacheQuery parses a query for name and qtype (edns > 0: an OPT record of that size, DO set).
func cacheQuery(t *testing.T, name string, qtype uint16, edns uint16) (*query, *dns.Msg) {
	t.Helper()
	m := newQuery(name, qtype, edns)
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	q := new(query)
	if !parseQuery(pkt, q, make([]byte, 0, 256)) {
		t.Fatalf("%s: not a plain query", name)
	}
	return q, m
}

// upstreamAnswer packs the reply to req that fill makes, and reads it as the forwarder does.
func upstreamAnswer(t *testing.T, q *query, req *dns.Msg, fill func(m *dns.Msg)) ([]byte, *answerInfo) {
	t.Helper()
	m := new(dns.Msg)
	m.SetReply(req)
	m.Compress = true
	fill(m)
	if opt := req.IsEdns0(); opt != nil && m.IsEdns0() == nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	msg, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	info := new(answerInfo)
	if err := readAnswer(msg, q, info); err != nil {
		t.Fatalf("readAnswer of an honest answer: %v", err)
	}
	return msg, info
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// cacheGet looks q up and unpacks the hit.
func cacheGet(t *testing.T, c *answerCache, q *query) *dns.Msg {
	t.Helper()
	b, ok := c.get(nil, appendCacheKey(nil, q), q, true)
	if !ok {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("cached answer does not unpack: %v", err)
	}
	return m
}

func ttls(rrs []dns.RR) []uint32 {
	var out []uint32
	for _, r := range rrs {
		out = append(out, r.Header().Ttl)
	}
	return out
}

func TestCacheCountsTTLsDown(t *testing.T) {
	c, clock := newTestCache(100)
	q, req := cacheQuery(t, "www.example.org.", dns.TypeA, 1232)
	msg, info := upstreamAnswer(t, q, req, func(m *dns.Msg) {
		m.Answer = append(m.Answer, rr(t, "www.example.org. 30 IN A 192.0.2.1"), rr(t, "www.example.org. 50 IN A 192.0.2.2"))
		m.Extra = append(m.Extra, rr(t, "ns.example.org. 40 IN A 192.0.2.53"))
	})
	c.put(appendCacheKey(nil, q), msg, info)

	q.id = 777
	clock.advance(10*time.Second + 900*time.Millisecond)
	got := cacheGet(t, c, q)
	if got == nil {
		t.Fatal("miss 10.9 s after a 30 s answer was stored")
	}
	if a, e := ttls(got.Answer), ttls(got.Extra[:1]); fmt.Sprint(a, e) != "[20 40] [30]" {
		t.Errorf("TTLs after 10.9 s: answer %v additional %v, want [20 40] [30] (whole seconds counted down)", a, e)
	}
	if opt := got.IsEdns0(); opt == nil || !opt.Do() || opt.Version() != 0 {
		t.Errorf("OPT %v: its TTL field (flags, version) must not be counted down", opt)
	}
	if got.Id != 777 || !got.RecursionAvailable || got.Authoritative {
		t.Errorf("ID %d RA %v AA %v: want the asker's ID, RA, no AA", got.Id, got.RecursionAvailable, got.Authoritative)
	}
	clock.advance(19 * time.Second) // 29.9 s
	if got := cacheGet(t, c, q); got == nil || got.Answer[0].Header().Ttl != 1 {
		t.Errorf("at 29.9 s: %v, want a hit with TTL 1", got)
	}
	clock.advance(100 * time.Millisecond) // 30 s: the smallest TTL has run out
	if got := cacheGet(t, c, q); got != nil {
		t.Errorf("hit at 30 s, past the smallest TTL:\n%v", got)
	}
}

func TestCacheNegativeAnswersPerRFC2308(t *testing.T) {
	soa := func(ttl, minimum int) string {
		return fmt.Sprintf("example.org. %d IN SOA ns.example.org. root.example.org. 1 3600 600 86400 %d", ttl, minimum)
	}
	for _, tc := range []struct {
		name  string
		rcode int
		ns    []string
		keep  time.Duration // 0: not cached
	}{
		{"NXDOMAIN, SOA minimum below its TTL", dns.RcodeNameError, []string{soa(300, 60)}, 60 * time.Second},
		{"NXDOMAIN, SOA TTL below its minimum", dns.RcodeNameError, []string{soa(20, 3600)}, 20 * time.Second},
		{"no data, with an SOA", dns.RcodeSuccess, []string{soa(300, 45)}, 45 * time.Second},
		{"NXDOMAIN without an SOA", dns.RcodeNameError, nil, 0},
		{"no data without an SOA", dns.RcodeSuccess, nil, 0},
		{"a referral: NS records, no SOA", dns.RcodeSuccess, []string{"example.org. 300 IN NS ns.example.org."}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clock := newTestCache(100)
			q, req := cacheQuery(t, "nope.example.org.", dns.TypeA, 0)
			msg, info := upstreamAnswer(t, q, req, func(m *dns.Msg) {
				m.Rcode = tc.rcode
				for _, s := range tc.ns {
					m.Ns = append(m.Ns, rr(t, s))
				}
			})
			c.put(appendCacheKey(nil, q), msg, info)
			if tc.keep == 0 {
				if got := cacheGet(t, c, q); got != nil {
					t.Errorf("cached:\n%v", got)
				}
				return
			}
			clock.advance(tc.keep - time.Second)
			got := cacheGet(t, c, q)
			if got == nil || got.Rcode != tc.rcode || len(got.Ns) != 1 || got.Ns[0].Header().Ttl != ttls(rrsOf(t, tc.ns))[0]-uint32(tc.keep/time.Second-1) {
				t.Fatalf("a second before %s: %v, want the denial with its SOA counted down", tc.keep, got)
			}
			clock.advance(time.Second)
			if got := cacheGet(t, c, q); got != nil {
				t.Errorf("still cached after %s", tc.keep)
			}
		})
	}
}

func rrsOf(t *testing.T, ss []string) []dns.RR {
	var out []dns.RR
	for _, s := range ss {
		out = append(out, rr(t, s))
	}
	return out
}

// TestCacheKeepsOut: answers that must not be cached, or not for long.
func TestCacheKeepsOut(t *testing.T) {
	c, clock := newTestCache(100)
	for _, tc := range []struct {
		name string
		fill func(m *dns.Msg)
	}{
		{"SERVFAIL", func(m *dns.Msg) { m.Rcode = dns.RcodeServerFailure }},
		{"REFUSED", func(m *dns.Msg) { m.Rcode = dns.RcodeRefused }},
		{"truncated", func(m *dns.Msg) {
			m.Truncated = true
			m.Answer = append(m.Answer, rr(t, "www.example.org. 30 IN A 192.0.2.1"))
		}},
		{"TTL 0", func(m *dns.Msg) { m.Answer = append(m.Answer, rr(t, "www.example.org. 0 IN A 192.0.2.1")) }},
		{"over 4 kB", func(m *dns.Msg) {
			for i := range 300 {
				m.Answer = append(m.Answer, rr(t, fmt.Sprintf("www.example.org. 30 IN AAAA 2001:db8::%x", i)))
			}
		}},
	} {
		q, req := cacheQuery(t, "www.example.org.", dns.TypeA, 0)
		if tc.name == "over 4 kB" {
			q, req = cacheQuery(t, "www.example.org.", dns.TypeAAAA, 0)
		}
		msg, info := upstreamAnswer(t, q, req, tc.fill)
		c.put(appendCacheKey(nil, q), msg, info)
		if got := cacheGet(t, c, q); got != nil {
			t.Errorf("%s: cached", tc.name)
		}
	}
	// A TTL with the top bit set means 0 (RFC 2181 §8), not 68 years.
	q, req := cacheQuery(t, "top.example.org.", dns.TypeA, 0)
	msg, info := upstreamAnswer(t, q, req, func(m *dns.Msg) {
		m.Answer = append(m.Answer, rr(t, "top.example.org. 30 IN A 192.0.2.1"), rr(t, "top.example.org. 30 IN A 192.0.2.2"))
	})
	binary.BigEndian.PutUint32(msg[info.ttls[1]:], 1<<31|5)
	readAnswer(msg, q, info)
	c.put(appendCacheKey(nil, q), msg, info)
	if got := cacheGet(t, c, q); got != nil {
		t.Errorf("an answer with a TTL of 2^31+5 cached: %v", got)
	}
	// A long TTL is capped at the maximum.
	q, req = cacheQuery(t, "long.example.org.", dns.TypeA, 0)
	msg, info = upstreamAnswer(t, q, req, func(m *dns.Msg) {
		m.Answer = append(m.Answer, rr(t, "long.example.org. 604800 IN A 192.0.2.1"))
	})
	c.put(appendCacheKey(nil, q), msg, info)
	clock.advance(time.Hour - time.Second)
	if cacheGet(t, c, q) == nil {
		t.Error("a week-long answer gone before the hour cap")
	}
	clock.advance(time.Second)
	if got := cacheGet(t, c, q); got != nil {
		t.Errorf("a week-long answer kept past the one-hour cap: %v", got)
	}
}

// TestCacheKey: the name's case does not matter, and the answer carries the asker's case; a
// different name, type, EDNS or DO bit does not share an answer.
func TestCacheKey(t *testing.T) {
	c, _ := newTestCache(100)
	q, req := cacheQuery(t, "WWW.Example.ORG.", dns.TypeA, 1232)
	msg, info := upstreamAnswer(t, q, req, func(m *dns.Msg) {
		m.Answer = append(m.Answer, rr(t, "WWW.Example.ORG. 30 IN A 192.0.2.1"))
	})
	c.put(appendCacheKey(nil, q), msg, info)

	q2, _ := cacheQuery(t, "www.eXample.org.", dns.TypeA, 1232)
	got := cacheGet(t, c, q2)
	if got == nil {
		t.Fatal("miss for the same name in another case")
	}
	if got.Question[0].Name != "www.eXample.org." {
		t.Errorf("question %q, want the asker's www.eXample.org.", got.Question[0].Name)
	}
	for _, other := range []struct {
		name  string
		qtype uint16
		edns  uint16
	}{
		{"www.example.net.", dns.TypeA, 1232},
		{"www.example.org.example.", dns.TypeA, 1232},
		{"ww.example.org.", dns.TypeA, 1232},
		{"www.example.org.", dns.TypeAAAA, 1232},
		{"www.example.org.", dns.TypeA, 0}, // no EDNS: no OPT record may come back
	} {
		oq, _ := cacheQuery(t, other.name, other.qtype, other.edns)
		if got := cacheGet(t, c, oq); got != nil {
			t.Errorf("%s %s edns %d: served the answer cached for WWW.Example.ORG. A", other.name, dns.TypeToString[other.qtype], other.edns)
		}
	}
	noDO, _ := cacheQuery(t, "www.example.org.", dns.TypeA, 1232)
	noDO.do = false
	if got := cacheGet(t, c, noDO); got != nil {
		t.Error("a query without DO served the answer cached for one with DO")
	}
}

func TestCacheIsBounded(t *testing.T) {
	c, _ := newTestCache(32)
	evicted := counterValue(t, cacheEvictions)
	for i := range 1000 {
		q, req := cacheQuery(t, fmt.Sprintf("n%d.example.org.", i), dns.TypeA, 0)
		msg, info := upstreamAnswer(t, q, req, func(m *dns.Msg) {
			m.Answer = append(m.Answer, rr(t, fmt.Sprintf("n%d.example.org. 30 IN A 192.0.2.1", i)))
		})
		c.put(appendCacheKey(nil, q), msg, info)
	}
	n := c.len()
	if n > 32 || n < 16 {
		t.Errorf("%d entries after 1,000 answers into a cache of 32", n)
	}
	if got := counterValue(t, cacheEvictions) - evicted; got != float64(1000-n) {
		t.Errorf("%v evictions counted, want %d", got, 1000-n)
	}
	// The last answer stored is there.
	q, _ := cacheQuery(t, "n999.example.org.", dns.TypeA, 0)
	if cacheGet(t, c, q) == nil {
		t.Error("the newest answer was evicted")
	}
}

// TestCacheDropsEDNSOptions: a cookie the upstream gave one client is not handed to others.
func TestCacheDropsEDNSOptions(t *testing.T) {
	c, _ := newTestCache(100)
	q, req := cacheQuery(t, "www.example.org.", dns.TypeA, 1232)
	msg, info := upstreamAnswer(t, q, req, func(m *dns.Msg) {
		m.Answer = append(m.Answer, rr(t, "www.example.org. 30 IN A 192.0.2.1"))
		m.SetEdns0(1232, true)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708aabbccddeeff0011"})
	})
	c.put(appendCacheKey(nil, q), msg, info)
	got := cacheGet(t, c, q)
	if got == nil {
		t.Fatal("an answer with a cookie was not cached")
	}
	if opt := got.IsEdns0(); opt == nil || len(opt.Option) != 0 || !opt.Do() {
		t.Errorf("cached OPT %v, want DO and no options", opt)
	}
}

// TestReadAnswerRefusesMalformed: an upstream answer is checked before it is relayed or cached.
func TestReadAnswerRefusesMalformed(t *testing.T) {
	q, req := cacheQuery(t, "www.example.org.", dns.TypeA, 0)
	good, _ := upstreamAnswer(t, q, req, func(m *dns.Msg) {
		m.Answer = append(m.Answer, rr(t, "www.example.org. 30 IN A 192.0.2.1"))
	})
	// The answer record's owner is a pointer to the question name, at 12.
	ans := headerLen + len(q.qname) + 4
	if good[ans] != 0xC0 || good[ans+1] != headerLen {
		t.Fatalf("test answer not laid out as expected: % x", good)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"pointer to itself", edit(func(b []byte) []byte { b[ans+1] = byte(ans); return b }), errAnswerName},
		{"pointer forward", edit(func(b []byte) []byte { b[ans+1] = byte(ans + 4); return b }), errAnswerName},
		{"pointer into the header", edit(func(b []byte) []byte { b[ans+1] = 2; return b }), errAnswerName},
		{"label type 0x40", edit(func(b []byte) []byte { b[ans] = 0x41; return b }), errAnswerName},
		{"cut short", good[:len(good)-2], errAnswerShort},
		{"a record count too high", edit(func(b []byte) []byte { b[7] = 2; return b }), errAnswerShort},
		{"bytes after the last record", append(append([]byte(nil), good...), 0, 0), errAnswerTrailing},
		{"a query, not a response", edit(func(b []byte) []byte { b[2] &^= 0x80; return b }), errAnswerNotReply},
		{"another name", edit(func(b []byte) []byte { b[headerLen+1] = 'x'; return b }), errAnswerQuestion},
		{"another type", edit(func(b []byte) []byte { b[ans-3] = byte(dns.TypeMX); return b }), errAnswerQuestion},
		{"no question", edit(func(b []byte) []byte { b[5] = 0; return b }), errAnswerNotReply},
	} {
		if err := readAnswer(tc.msg, q, new(answerInfo)); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A name of 255 bytes and more, made of pointers back to ever longer names: refused.
	long := append([]byte(nil), good[:ans]...)
	long[7] = 1
	name := strings.Repeat("\x3f"+strings.Repeat("a", 63), 4) + "\x00"
	long = append(long, name...)
	long = append(long, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1)
	if err := readAnswer(long, q, new(answerInfo)); err != errAnswerName {
		t.Errorf("a 257-byte owner name: %v, want %v", err, errAnswerName)
	}
	// Two OPT records, or one in the answer section.
	m := new(dns.Msg)
	m.SetReply(req)
	m.SetEdns0(1232, false)
	m.Extra = append(m.Extra, m.Extra[0])
	two, _ := m.Pack()
	if err := readAnswer(two, q, new(answerInfo)); err != errAnswerOPT {
		t.Errorf("two OPT records: %v, want %v", err, errAnswerOPT)
	}
}
