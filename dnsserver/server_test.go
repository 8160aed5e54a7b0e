package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/discovery"
)

const (
	testSerial = 42
	testTTL    = 60
	testNegTTL = 5
)

// testIndex is the zone the server tests query. Apart from a few hand-written names it has
// record sets sized to exercise truncation: _mid (8 SRV: the answers fit 512 bytes, the
// additional records do not), _big (20 SRV, as mesos-dns's issue with EDNS0), many (100 A),
// _huge (400 SRV, beyond the reach of compression pointers).
func testIndex() *RecordIndex {
	sets := map[string]*RecordSet{
		"app.marathon.mesos.":          {A: addrs("127.0.0.11", "127.0.0.12", "127.0.0.13")},
		"app-abcde-s1.marathon.mesos.": {A: addrs("127.0.0.11")},
		"v6.marathon.mesos.":           {AAAA: addrs("fd01:b::1")},
		"_app._tcp.marathon.mesos.": {SRV: []SRV{
			{Target: "app-abcde-s1.slave.mesos.", Port: 31000},
			{Target: "app-fghij-s2.slave.mesos.", Port: 31001},
		}},
		"app-abcde-s1.slave.mesos.": {A: addrs("127.0.0.21")},
		"app-fghij-s2.slave.mesos.": {A: addrs("127.0.0.22"), AAAA: addrs("fd01:b::22")},
		"ns1.mesos.":                {A: addrs("127.0.0.1")},
		"marathon.mesos.":           {A: addrs("127.0.0.5")},
	}
	addSRVSet(sets, "mid", 8)
	addSRVSet(sets, "big", 20)
	addSRVSet(sets, "huge", 400)
	many := &RecordSet{}
	for i := range 100 {
		many.A = append(many.A, netip.AddrFrom4([4]byte{127, 0, 2, byte(i)}))
	}
	sets["many.marathon.mesos."] = many
	return NewRecordIndex("mesos.", testSerial, sets)
}

// addSRVSet adds _{app}._tcp.marathon.mesos. with n SRV records, each target with one A record.
func addSRVSet(sets map[string]*RecordSet, app string, n int) {
	rs := &RecordSet{}
	for i := range n {
		target := srvTarget(app, i)
		rs.SRV = append(rs.SRV, SRV{Target: target, Port: uint16(31000 + i)})
		sets[target] = &RecordSet{A: []netip.Addr{srvTargetIP(i)}}
	}
	sets["_"+app+"._tcp.marathon.mesos."] = rs
}

func srvTarget(app string, i int) string {
	return fmt.Sprintf("%s-%d-abcde-s%d.slave.mesos.", app, i, i%10)
}

func srvTargetIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, 1 + byte(i/250), byte(i % 250)})
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// startServer runs a server on a free loopback port until the test ends. cfg.Listen, the
// timeouts and the resolv.conf default to test values; ix nil leaves the index unset;
// prepare runs on the server before it starts (to inject a clock, say).
func startServer(t *testing.T, cfg Config, ix *RecordIndex, prepare ...func(*Server)) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Domain == "" {
		cfg.Domain = "mesos"
	}
	if cfg.TTL == 0 {
		cfg.TTL = testTTL
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = testNegTTL
	}
	if cfg.UDPSockets == 0 {
		cfg.UDPSockets = 2
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = writeFile(t, "resolv.conf", "nameserver 127.0.0.1\n")
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ix != nil {
		s.SetIndex(ix)
	}
	for _, p := range prepare {
		p(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("DNS server not listening after 10s")
	}
	return s
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// query builds a query; edns > 0 adds an OPT record with that buffer size and DO set.
func newQuery(name string, qtype uint16, edns uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, true)
	}
	return m
}

// exchange sends m over network ("udp" or "tcp") and returns the reply and its size on the wire.
func exchange(t *testing.T, network, addr string, m *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	co, err := c.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	r, size := exchangeOn(t, co, m)
	return r, size
}

func exchangeOn(t *testing.T, co *dns.Conn, m *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	co.UDPSize = dns.MaxMsgSize // read whatever comes, to see the true size
	co.SetDeadline(time.Now().Add(5 * time.Second))
	if err := co.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	raw, err := co.ReadMsgHeader(nil)
	if err != nil {
		t.Fatalf("%s %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(raw); err != nil {
		t.Fatalf("%s: unpacking the reply: %v", m.Question[0].Name, err)
	}
	if r.Id != m.Id {
		t.Fatalf("reply ID %d, want %d", r.Id, m.Id)
	}
	return r, len(raw)
}

// rrStrings renders records for comparison, sorted (the server rotates answers); OPT is left out.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	slices.Sort(out)
	return out
}

// zoneText parses zone-file lines into the form rrStrings gives.
func zoneText(t *testing.T, lines ...string) []string {
	t.Helper()
	var rrs []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("test record %q: %v", l, err)
		}
		rrs = append(rrs, rr)
	}
	return rrStrings(rrs)
}

const soaLine = "mesos. 5 IN SOA ns1.mesos. root.ns1.mesos. 42 60 600 86400 5"

type dnsCase struct {
	Name    string
	Net     string // udp (default) or tcp
	EDNS    uint16 // buffer size; 0: no OPT record
	Qname   string
	Qtype   uint16
	Qclass  uint16 // default IN
	Rcode   int
	Answer  []string
	Ns      []string
	Extra   []string
	Trunc   bool
	NoAuth  bool // AA must not be set (SERVFAIL before an index)
	AnCount int  // when > 0, only the number of answers is checked (large sets)
	MaxSize int  // when > 0, the reply must be at most this many bytes
}

func srvLines(app string, n int) (answers, extra []string) {
	for i := range n {
		answers = append(answers, fmt.Sprintf("_%s._tcp.marathon.mesos. 60 IN SRV 0 0 %d %s", app, 31000+i, srvTarget(app, i)))
		extra = append(extra, fmt.Sprintf("%s 60 IN A %s", srvTarget(app, i), srvTargetIP(i)))
	}
	return answers, extra
}

func TestAnswers(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	bigAns, bigExtra := srvLines("big", 20)
	midAns, _ := srvLines("mid", 8)
	hugeAns, hugeExtra := srvLines("huge", 400)
	manyAns := make([]string, 100)
	for i := range manyAns {
		manyAns[i] = fmt.Sprintf("many.marathon.mesos. 60 IN A 127.0.2.%d", i)
	}
	cases := []dnsCase{
		{Name: "A of an app", Qname: "app.marathon.mesos.", Qtype: dns.TypeA,
			Answer: []string{"app.marathon.mesos. 60 IN A 127.0.0.11", "app.marathon.mesos. 60 IN A 127.0.0.12", "app.marathon.mesos. 60 IN A 127.0.0.13"}},
		{Name: "A of a task", Qname: "app-abcde-s1.marathon.mesos.", Qtype: dns.TypeA,
			Answer: []string{"app-abcde-s1.marathon.mesos. 60 IN A 127.0.0.11"}},
		{Name: "AAAA", Qname: "v6.marathon.mesos.", Qtype: dns.TypeAAAA,
			Answer: []string{"v6.marathon.mesos. 60 IN AAAA fd01:b::1"}},
		{Name: "SRV with the targets' addresses", Qname: "_app._tcp.marathon.mesos.", Qtype: dns.TypeSRV,
			Answer: []string{"_app._tcp.marathon.mesos. 60 IN SRV 0 0 31000 app-abcde-s1.slave.mesos.", "_app._tcp.marathon.mesos. 60 IN SRV 0 0 31001 app-fghij-s2.slave.mesos."},
			Extra:  []string{"app-abcde-s1.slave.mesos. 60 IN A 127.0.0.21", "app-fghij-s2.slave.mesos. 60 IN A 127.0.0.22", "app-fghij-s2.slave.mesos. 60 IN AAAA fd01:b::22"}},
		{Name: "SOA at the apex", Qname: "mesos.", Qtype: dns.TypeSOA,
			Answer: []string{"mesos. 60 IN SOA ns1.mesos. root.ns1.mesos. 42 60 600 86400 5"}},
		{Name: "NS at the apex with ns1's address", Qname: "mesos.", Qtype: dns.TypeNS,
			Answer: []string{"mesos. 60 IN NS ns1.mesos."}, Extra: []string{"ns1.mesos. 60 IN A 127.0.0.1"}},
		{Name: "A at the apex: no data", Qname: "mesos.", Qtype: dns.TypeA, Ns: []string{soaLine}},
		{Name: "unknown name: NXDOMAIN and SOA", Qname: "nope.marathon.mesos.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []string{soaLine}},
		{Name: "unknown name below a known one", Qname: "x.app.marathon.mesos.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []string{soaLine}},
		{Name: "known name, other type: no data and SOA", Qname: "app.marathon.mesos.", Qtype: dns.TypeAAAA, Ns: []string{soaLine}},
		{Name: "SRV of an A name: no data and SOA", Qname: "app.marathon.mesos.", Qtype: dns.TypeSRV, Ns: []string{soaLine}},
		{Name: "A of an SRV name: no data and SOA", Qname: "_app._tcp.marathon.mesos.", Qtype: dns.TypeA, Ns: []string{soaLine}},
		{Name: "TXT: no data", Qname: "app.marathon.mesos.", Qtype: dns.TypeTXT, Ns: []string{soaLine}},
		{Name: "SOA below the apex: no data", Qname: "app.marathon.mesos.", Qtype: dns.TypeSOA, Ns: []string{soaLine}},
		{Name: "empty non-terminal: no data, not NXDOMAIN", Qname: "_tcp.marathon.mesos.", Qtype: dns.TypeSRV, Ns: []string{soaLine}},
		{Name: "ANY: one RRset (RFC 8482)", Qname: "app-abcde-s1.slave.mesos.", Qtype: dns.TypeANY,
			Answer: []string{"app-abcde-s1.slave.mesos. 60 IN A 127.0.0.21"}},
		{Name: "owner names keep the question's case", Qname: "ApP.MaRaThOn.MeSoS.", Qtype: dns.TypeA,
			Answer: []string{"ApP.MaRaThOn.MeSoS. 60 IN A 127.0.0.11", "ApP.MaRaThOn.MeSoS. 60 IN A 127.0.0.12", "ApP.MaRaThOn.MeSoS. 60 IN A 127.0.0.13"}},
		{Name: "NXDOMAIN keeps the question's case", Qname: "NoPe.MeSoS.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
			Ns: []string{"MeSoS. 5 IN SOA ns1.MeSoS. root.ns1.MeSoS. 42 60 600 86400 5"}},
		{Name: "SRV case kept, targets as stored", Qname: "_APP._TCP.marathon.MESOS.", Qtype: dns.TypeSRV,
			Answer: []string{"_APP._TCP.marathon.MESOS. 60 IN SRV 0 0 31000 app-abcde-s1.slave.mesos.", "_APP._TCP.marathon.MESOS. 60 IN SRV 0 0 31001 app-fghij-s2.slave.mesos."},
			Extra:  []string{"app-abcde-s1.slave.mesos. 60 IN A 127.0.0.21", "app-fghij-s2.slave.mesos. 60 IN A 127.0.0.22", "app-fghij-s2.slave.mesos. 60 IN AAAA fd01:b::22"}},
		{Name: "EDNS0 answer", EDNS: 1232, Qname: "app-abcde-s1.marathon.mesos.", Qtype: dns.TypeA,
			Answer: []string{"app-abcde-s1.marathon.mesos. 60 IN A 127.0.0.11"}},
		{Name: "over TCP", Net: "tcp", Qname: "app-abcde-s1.marathon.mesos.", Qtype: dns.TypeA,
			Answer: []string{"app-abcde-s1.marathon.mesos. 60 IN A 127.0.0.11"}},
		{Name: "NXDOMAIN over TCP", Net: "tcp", Qname: "nope.mesos.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError, Ns: []string{soaLine}},
		// 100 A records are 1,637 bytes: 512 bytes hold (512-12-21-4)/16 = 29 of them.
		{Name: "100 A over UDP without EDNS0: truncated", Qname: "many.marathon.mesos.", Qtype: dns.TypeA, Trunc: true, AnCount: 29, MaxSize: 512},
		{Name: "100 A with EDNS0 4096: complete", EDNS: 4096, Qname: "many.marathon.mesos.", Qtype: dns.TypeA, Answer: manyAns},
		{Name: "100 A over TCP: complete", Net: "tcp", Qname: "many.marathon.mesos.", Qtype: dns.TypeA, Answer: manyAns},
		{Name: "20 SRV with EDNS0 4096: complete with additional", EDNS: 4096, Qname: "_big._tcp.marathon.mesos.", Qtype: dns.TypeSRV, Answer: bigAns, Extra: bigExtra},
		{Name: "20 SRV without EDNS0: truncated, additional dropped", Qname: "_big._tcp.marathon.mesos.", Qtype: dns.TypeSRV, Trunc: true, AnCount: 10, MaxSize: 512},
		{Name: "8 SRV without EDNS0: additional dropped, no TC", Qname: "_mid._tcp.marathon.mesos.", Qtype: dns.TypeSRV, Answer: midAns},
		{Name: "400 SRV over TCP: complete, owners out of pointer range", Net: "tcp", Qname: "_huge._tcp.marathon.mesos.", Qtype: dns.TypeSRV, Answer: hugeAns, Extra: hugeExtra},
		{Name: "AXFR: refused", Net: "tcp", Qname: "mesos.", Qtype: dns.TypeAXFR, Rcode: dns.RcodeRefused, NoAuth: true},
		{Name: "class CH in the zone: refused", Qname: "app.marathon.mesos.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS, Rcode: dns.RcodeRefused, NoAuth: true},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			net := tc.Net
			if net == "" {
				net = "udp"
			}
			m := newQuery(tc.Qname, tc.Qtype, tc.EDNS)
			if tc.Qclass != 0 {
				m.Question[0].Qclass = tc.Qclass
			}
			r, size := exchange(t, net, s.Addr(), m)
			checkReply(t, r, tc)
			if tc.MaxSize > 0 && size > tc.MaxSize {
				t.Errorf("reply is %d bytes, want at most %d", size, tc.MaxSize)
			}
		})
	}
}

func checkReply(t *testing.T, r *dns.Msg, tc dnsCase) {
	t.Helper()
	if r.Rcode != tc.Rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.Rcode])
	}
	if r.Authoritative == tc.NoAuth {
		t.Errorf("AA = %v, want %v", r.Authoritative, !tc.NoAuth)
	}
	if r.Truncated != tc.Trunc {
		t.Errorf("TC = %v, want %v", r.Truncated, tc.Trunc)
	}
	if len(r.Question) != 1 || r.Question[0].Name != tc.Qname {
		t.Errorf("question %v, want %s as sent", r.Question, tc.Qname)
	}
	if tc.AnCount > 0 {
		if len(r.Answer) != tc.AnCount || len(r.Extra) != 0 && r.IsEdns0() == nil {
			t.Errorf("%d answers and %d additional, want %d and none", len(r.Answer), len(r.Extra), tc.AnCount)
		}
		return
	}
	for _, sec := range []struct {
		name      string
		got, want []string
	}{
		{"answer", rrStrings(r.Answer), zoneText(t, tc.Answer...)},
		{"authority", rrStrings(r.Ns), zoneText(t, tc.Ns...)},
		{"additional", rrStrings(r.Extra), zoneText(t, tc.Extra...)},
	} {
		if !slices.Equal(sec.got, sec.want) {
			t.Errorf("%s section:\n got %q\nwant %q", sec.name, sec.got, sec.want)
		}
	}
	if opt := r.IsEdns0(); (opt != nil) != (tc.EDNS > 0) {
		t.Errorf("OPT record in the reply: %v, want %v", opt != nil, tc.EDNS > 0)
	}
}

func TestEDNSBufferSizeAndDOAreEchoed(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	for _, tc := range []struct {
		sent, want uint16
		do         bool
	}{{1232, 1232, true}, {8192, 4096, false}, {100, 512, true}} {
		m := newQuery("app.marathon.mesos.", dns.TypeA, tc.sent)
		m.IsEdns0().SetDo(tc.do)
		for _, name := range []string{"app.marathon.mesos.", "nope.mesos."} {
			m.Question[0].Name = name
			r, _ := exchange(t, "udp", s.Addr(), m)
			opt := r.IsEdns0()
			if opt == nil {
				t.Fatalf("%s, EDNS0 %d: no OPT record in the reply", name, tc.sent)
			}
			if opt.UDPSize() != tc.want || opt.Do() != tc.do || opt.Version() != 0 {
				t.Errorf("%s, EDNS0 %d DO=%v: OPT size %d DO=%v version %d, want %d DO=%v version 0",
					name, tc.sent, tc.do, opt.UDPSize(), opt.Do(), opt.Version(), tc.want, tc.do)
			}
		}
	}
}

func TestUnusualQueries(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	t.Run("EDNS version 1 gets BADVERS", func(t *testing.T) {
		m := newQuery("app.marathon.mesos.", dns.TypeA, 1232)
		m.IsEdns0().SetVersion(1)
		r, _ := exchange(t, "udp", s.Addr(), m)
		if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil {
			t.Errorf("rcode %s, OPT %v; want BADVERS with an OPT record", dns.RcodeToString[r.Rcode], r.IsEdns0())
		}
	})
	t.Run("opcode NOTIFY gets NOTIMP", func(t *testing.T) {
		m := newQuery("mesos.", dns.TypeSOA, 0)
		m.Opcode = dns.OpcodeNotify
		r, _ := exchange(t, "udp", s.Addr(), m)
		if r.Rcode != dns.RcodeNotImplemented {
			t.Errorf("rcode %s, want NOTIMP", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("escaped label: NXDOMAIN, not a match", func(t *testing.T) {
		r, _ := exchange(t, "udp", s.Addr(), newQuery(`app\.marathon.mesos.`, dns.TypeA, 0))
		checkReply(t, r, dnsCase{Qname: `app\.marathon.mesos.`, Rcode: dns.RcodeNameError, Ns: []string{soaLine}})
	})
	t.Run("escaped dot before the apex: one label under the root, not the zone", func(t *testing.T) {
		// foo\.mesos. is the single label "foo.mesos": outside the zone (REFUSED, forwarding is
		// off), and above all a well-formed reply, for TCP too.
		for _, network := range []string{"udp", "tcp"} {
			r, _ := exchange(t, network, s.Addr(), newQuery(`foo\.mesos.`, dns.TypeA, 0))
			if r.Rcode != dns.RcodeRefused || len(r.Ns) != 0 {
				t.Errorf("%s: rcode %s, authority %v; want REFUSED without records", network, dns.RcodeToString[r.Rcode], r.Ns)
			}
		}
	})
	t.Run("RD and CD are copied", func(t *testing.T) {
		m := newQuery("app.marathon.mesos.", dns.TypeA, 0)
		m.RecursionDesired, m.CheckingDisabled = true, true
		r, _ := exchange(t, "udp", s.Addr(), m)
		if !r.RecursionDesired || !r.CheckingDisabled || !r.Response || !r.Authoritative {
			t.Errorf("flags %+v, want QR AA RD CD", r.MsgHdr)
		}
	})
}

func TestNoIndexYetAnswersServfailInTheZone(t *testing.T) {
	s := startServer(t, Config{}, nil)
	for _, network := range []string{"udp", "tcp"} {
		r, _ := exchange(t, network, s.Addr(), newQuery("app.marathon.mesos.", dns.TypeA, 0))
		checkReply(t, r, dnsCase{Qname: "app.marathon.mesos.", Rcode: dns.RcodeServerFailure, NoAuth: true})
	}
	s.SetIndex(testIndex())
	r, _ := exchange(t, "udp", s.Addr(), newQuery("app-abcde-s1.marathon.mesos.", dns.TypeA, 0))
	checkReply(t, r, dnsCase{Qname: "app-abcde-s1.marathon.mesos.", Answer: []string{"app-abcde-s1.marathon.mesos. 60 IN A 127.0.0.11"}})
	s.SetIndex(nil)
	r, _ = exchange(t, "udp", s.Addr(), newQuery("app-abcde-s1.marathon.mesos.", dns.TypeA, 0))
	checkReply(t, r, dnsCase{Qname: "app-abcde-s1.marathon.mesos.", Rcode: dns.RcodeServerFailure, NoAuth: true})
}

func TestSetIndexSwapsRecordsAndSerial(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	next := NewRecordIndex("mesos.", testSerial+1, map[string]*RecordSet{
		"app.marathon.mesos.": {A: addrs("127.0.0.99")},
	})
	s.SetIndex(next)
	r, _ := exchange(t, "udp", s.Addr(), newQuery("app.marathon.mesos.", dns.TypeA, 0))
	checkReply(t, r, dnsCase{Qname: "app.marathon.mesos.", Answer: []string{"app.marathon.mesos. 60 IN A 127.0.0.99"}})
	r, _ = exchange(t, "udp", s.Addr(), newQuery("mesos.", dns.TypeSOA, 0))
	if soa, ok := r.Answer[0].(*dns.SOA); !ok || soa.Serial != testSerial+1 {
		t.Errorf("SOA %v, want serial %d", r.Answer, testSerial+1)
	}
	s.SetIndex(NewRecordIndex("other.", 1, nil))
	r, _ = exchange(t, "udp", s.Addr(), newQuery("app.marathon.mesos.", dns.TypeA, 0))
	if len(r.Answer) != 1 {
		t.Errorf("an index of another domain replaced the served one: %v", r.Answer)
	}
}

func TestAnswersRotate(t *testing.T) {
	s := startServer(t, Config{UDPSockets: 1}, testIndex())
	co, err := (&dns.Client{Net: "udp"}).Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	firsts := map[string]bool{}
	for range 3 {
		r, _ := exchangeOn(t, co, newQuery("app.marathon.mesos.", dns.TypeA, 0))
		firsts[r.Answer[0].(*dns.A).A.String()] = true
	}
	if len(firsts) != 3 {
		t.Errorf("3 queries began with %v, want each of the 3 addresses once", firsts)
	}
	// Rotated SRV answers keep their additional records' owners right (those are compression
	// pointers into the SRV targets, moved with every rotation).
	srvFirsts := map[uint16]bool{}
	for range 20 {
		r, _ := exchangeOn(t, co, newQuery("_big._tcp.marathon.mesos.", dns.TypeSRV, 4096))
		srvFirsts[r.Answer[0].(*dns.SRV).Port] = true
		targets := map[string]bool{}
		for _, rr := range r.Answer {
			targets[rr.(*dns.SRV).Target] = true
		}
		for _, rr := range r.Extra {
			if rr.Header().Rrtype != dns.TypeOPT && !targets[rr.Header().Name] {
				t.Fatalf("additional record %s names no SRV target (answers %v)", rr, r.Answer)
			}
		}
		if len(r.Extra) != 21 {
			t.Fatalf("%d additional records, want 20 and OPT", len(r.Extra))
		}
	}
	if len(srvFirsts) != 20 {
		t.Errorf("20 queries began with %d different SRV records, want 20", len(srvFirsts))
	}
}

func TestHandlerMountedOnAnotherServer(t *testing.T) {
	s, err := New(Config{Domain: "mesos", TTL: testTTL, NegativeTTL: testNegTTL, ResolvConf: writeFile(t, "resolv.conf", "")})
	if err != nil {
		t.Fatal(err)
	}
	s.SetIndex(testIndex())
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	defer srv.Shutdown()
	r, _ := exchange(t, "udp", pc.LocalAddr().String(), newQuery("_app._tcp.marathon.mesos.", dns.TypeSRV, 0))
	checkReply(t, r, dnsCase{Qname: "_app._tcp.marathon.mesos.",
		Answer: []string{"_app._tcp.marathon.mesos. 60 IN SRV 0 0 31000 app-abcde-s1.slave.mesos.", "_app._tcp.marathon.mesos. 60 IN SRV 0 0 31001 app-fghij-s2.slave.mesos."},
		Extra:  []string{"app-abcde-s1.slave.mesos. 60 IN A 127.0.0.21", "app-fghij-s2.slave.mesos. 60 IN A 127.0.0.22", "app-fghij-s2.slave.mesos. 60 IN AAAA fd01:b::22"}})
}

func TestWildcardListenRepliesFromTheQueriedAddress(t *testing.T) {
	s := startServer(t, Config{Listen: "0.0.0.0:0", Forward: false}, testIndex())
	_, port, _ := net.SplitHostPort(s.Addr())
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		addr := net.JoinHostPort(ip, port)
		// A connected UDP socket takes replies from addr only: the reply must leave from the
		// address the query went to, on the read loop (in the zone) and off it (REFUSED).
		r, _ := exchange(t, "udp", addr, newQuery("app-abcde-s1.marathon.mesos.", dns.TypeA, 0))
		checkReply(t, r, dnsCase{Qname: "app-abcde-s1.marathon.mesos.", Answer: []string{"app-abcde-s1.marathon.mesos. 60 IN A 127.0.0.11"}})
		r, _ = exchange(t, "udp", addr, newQuery("example.org.", dns.TypeA, 0))
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("%s: example.org. rcode %s, want REFUSED", addr, dns.RcodeToString[r.Rcode])
		}
	}
}

func TestSecondServerOnTheSamePortFails(t *testing.T) {
	s := startServer(t, Config{}, nil)
	other, err := New(Config{Listen: s.Addr(), ResolvConf: writeFile(t, "resolv.conf", "")})
	if err != nil {
		t.Fatal(err)
	}
	err = other.Run(context.Background())
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "--dns-listen") {
		t.Fatalf("second server on %s: %v, want address in use naming --dns-listen", s.Addr(), err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: "localhost:53"}, "DNS listen address"},
		{Config{Listen: "127.0.0.1"}, "DNS listen address"},
		{Config{Domain: "bad domain"}, "DNS domain"},
		{Config{Upstreams: []string{"dns.google:53"}}, "--dns-upstream"},
		{Config{ZoneUpstreams: map[string][]string{"corp": {"x"}}}, "--dns-zone-upstream"},
		{Config{UDPSockets: -1}, "UDP sockets"},
	} {
		tc.cfg.ResolvConf = "/nonexistent"
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
}

// TestLongTaskNameServesNoMalformedSRV: a task name that fits a label but whose canonical name
// {task}-{hash}-{slave} does not (a 55-character name: an app id like
// /production/payments/reconciliation-worker-v2 comes close) must not make SRV records whose
// target is no DNS name: written on the wire, such a target is a malformed reply.
func TestLongTaskNameServesNoMalformedSRV(t *testing.T) {
	long := strings.Repeat("x", 55)
	agent := "20140803-125133-3041283216-5050-2410-S12"
	st := &discovery.MesosState{
		Agents: []discovery.Agent{{ID: agent, PID: "slave(1)@127.0.0.1:5051"}},
		Frameworks: []discovery.Framework{{Name: "marathon", PID: "s@127.0.0.9:1", Tasks: []discovery.MesosTask{
			{ID: "t1", Name: long, SlaveID: agent, State: "TASK_RUNNING", Ports: []int{9000}},
			{ID: "t2", Name: "long-discovery", SlaveID: agent, State: "TASK_RUNNING", Ports: []int{9001},
				Discovery: &discovery.DiscoveryInfo{Name: long, Ports: []discovery.DiscoveryPort{{Number: 80, Name: "web"}}}},
			{ID: "t3", Name: "short", SlaveID: agent, State: "TASK_RUNNING", Ports: []int{9002}},
		}}},
	}
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	for name, rs := range ix.All() {
		for _, s := range rs.SRV {
			if !validFQDN(s.Target) {
				t.Errorf("%s has SRV target %s, no valid DNS name", name, s.Target)
			}
		}
	}
	if got := rrs(ix, "_short._tcp.marathon.mesos."); len(got) != 1 {
		t.Errorf("_short._tcp.marathon.mesos. = %q, want its SRV record", got)
	}
	s := startServer(t, Config{}, ix)
	for _, name := range []string{"_" + long + "._tcp.marathon.mesos.", "_" + long + "._tcp.marathon.slave.mesos.", "_web._" + long + "._tcp.marathon.mesos."} {
		for _, network := range []string{"udp", "tcp"} {
			// exchange fails the test when the reply does not unpack.
			r, _ := exchange(t, network, s.Addr(), newQuery(name, dns.TypeSRV, 0))
			if len(r.Answer) != 0 {
				t.Errorf("%s over %s: %v, want no SRV records", name, network, r.Answer)
			}
		}
	}
}
