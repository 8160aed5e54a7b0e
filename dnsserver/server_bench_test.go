package dnsserver

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// benchIndex has the shape of the dnsperf benchmark's cluster: apps of 10 tasks (1,000 there)
// and one of 200, on 100 agents, with mesos-dns's names for each (see internal/gen).
func benchIndex(apps int) *RecordIndex {
	sets := map[string]*RecordSet{}
	add := func(app string, tasks int) {
		appA := &RecordSet{}
		srv := &RecordSet{}
		for i := range tasks {
			ip := netip.AddrFrom4([4]byte{10, byte(len(sets) >> 16), byte(len(sets) >> 8), byte(len(sets))})
			agent := fmt.Sprintf("s%d", i%100)
			canonical := fmt.Sprintf("%s-%05d-%s", app, i, agent)
			appA.A = append(appA.A, ip)
			sets[canonical+".marathon.mesos."] = &RecordSet{A: []netip.Addr{ip}}
			sets[canonical+".slave.mesos."] = &RecordSet{A: []netip.Addr{ip}}
			srv.SRV = append(srv.SRV, SRV{Target: canonical + ".slave.mesos.", Port: uint16(31000 + i)})
		}
		sets[app+".marathon.mesos."] = appA
		sets["_"+app+"._tcp.marathon.mesos."] = srv
	}
	for i := range apps {
		add(fmt.Sprintf("app-%d", i), 10)
	}
	add("big", 200)
	return NewRecordIndex("mesos.", 1, sets)
}

func benchServer(b *testing.B) *Server {
	s, err := New(Config{Domain: "mesos", ResolvConf: "/nonexistent"})
	if err != nil {
		b.Fatal(err)
	}
	s.SetIndex(benchIndex(1000))
	return s
}

// benchmarkPacket measures the UDP hot path without the socket: parse, look up, copy and patch
// the wire answer, count the query.
func benchmarkPacket(b *testing.B, name string, qtype uint16, edns uint16, wantRcode int) {
	benchmarkPacketFrom(b, benchServer(b), loopback, name, qtype, edns, wantRcode)
}

var loopback = netip.MustParseAddr("127.0.0.1")

func benchmarkPacketFrom(b *testing.B, s *Server, from netip.Addr, name string, qtype uint16, edns uint16, wantRcode int) {
	pkt, err := newQuery(name, qtype, edns).Pack()
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, maxUDPSize)
	var keyBuf [256]byte
	var q query
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		// The time RRL reads moves a microsecond per query beyond the real one, so that at
		// its highest rate no answer is limited however fast the loop runs.
		now := start.Add(time.Duration(i) * time.Microsecond)
		reply, rcode, ok := s.answerPacket(from, now, pkt, out[:0], &q, keyBuf[:0], uint32(i))
		if !ok || rcode != wantRcode || len(reply) < headerLen {
			b.Fatalf("ok=%v rcode=%d", ok, rcode)
		}
		observeQuery(q.qtype, rcode, start, false)
	}
}

func BenchmarkUDPAnswerA(b *testing.B) {
	benchmarkPacket(b, "app-17.marathon.mesos.", dns.TypeA, 0, rcodeOK)
}

func BenchmarkUDPAnswerATask(b *testing.B) {
	benchmarkPacket(b, "app-17-00003-s3.marathon.mesos.", dns.TypeA, 0, rcodeOK)
}

func BenchmarkUDPAnswerSRV(b *testing.B) {
	benchmarkPacket(b, "_app-17._tcp.marathon.mesos.", dns.TypeSRV, 1232, rcodeOK)
}

func BenchmarkUDPAnswerSRVTruncated(b *testing.B) {
	benchmarkPacket(b, "_big._tcp.marathon.mesos.", dns.TypeSRV, 0, rcodeOK)
}

func BenchmarkUDPAnswerNXDOMAIN(b *testing.B) {
	benchmarkPacket(b, "nope-17.marathon.mesos.", dns.TypeA, 0, rcodeNX)
}

// rrlBenchServer is benchServer with response-rate limiting on at its highest rate, which
// benchmarkPacketFrom's queries stay within: the benchmarks measure the accounting, not
// dropping.
func rrlBenchServer(b *testing.B) *Server {
	s, err := New(Config{Domain: "mesos", ResolvConf: "/nonexistent", RRL: RRLConfig{Rate: maxRRLRate, Slip: 2}})
	if err != nil {
		b.Fatal(err)
	}
	s.SetIndex(benchIndex(1000))
	return s
}

// BenchmarkUDPAnswerARRLAllowed: RRL on, a client inside --dns-forward-allow (not limited;
// the cost is the allow-list check).
func BenchmarkUDPAnswerARRLAllowed(b *testing.B) {
	benchmarkPacketFrom(b, rrlBenchServer(b), loopback, "app-17-00003-s3.marathon.mesos.", dns.TypeA, 0, rcodeOK)
}

// BenchmarkUDPAnswerARRLOutside: RRL on, a client outside the allow list: every answer is
// accounted to its /24.
func BenchmarkUDPAnswerARRLOutside(b *testing.B) {
	benchmarkPacketFrom(b, rrlBenchServer(b), netip.MustParseAddr("198.51.100.7"), "app-17-00003-s3.marathon.mesos.", dns.TypeA, 0, rcodeOK)
}

// BenchmarkUDPAnswerARRLOutsideOff: the same client with RRL off, the baseline of the above.
func BenchmarkUDPAnswerARRLOutsideOff(b *testing.B) {
	benchmarkPacketFrom(b, benchServer(b), netip.MustParseAddr("198.51.100.7"), "app-17-00003-s3.marathon.mesos.", dns.TypeA, 0, rcodeOK)
}

// BenchmarkUDPAnswerARRLOutsideParallel: every read loop (GOMAXPROCS of them) answering one
// outside client at once, all on one account: the worst case for the limiter's locks.
func BenchmarkUDPAnswerARRLOutsideParallel(b *testing.B) {
	benchmarkPacketParallel(b, rrlBenchServer(b))
}

// BenchmarkUDPAnswerARRLOutsideParallelOff is the baseline of the above, RRL off.
func BenchmarkUDPAnswerARRLOutsideParallelOff(b *testing.B) {
	benchmarkPacketParallel(b, benchServer(b))
}

func benchmarkPacketParallel(b *testing.B, s *Server) {
	pkt, err := newQuery("app-17-00003-s3.marathon.mesos.", dns.TypeA, 0).Pack()
	if err != nil {
		b.Fatal(err)
	}
	from := netip.MustParseAddr("198.51.100.7")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		out := make([]byte, 0, maxUDPSize)
		var keyBuf [256]byte
		var q query
		for i := 0; pb.Next(); i++ {
			start := time.Now()
			// As in benchmarkPacketFrom, RRL's time runs ahead so nothing is limited (by a
			// millisecond a query here, as every goroutine debits the one account).
			now := start.Add(time.Duration(i) * time.Millisecond)
			reply, rcode, ok := s.answerPacket(from, now, pkt, out[:0], &q, keyBuf[:0], uint32(i))
			if !ok || rcode != rcodeOK || len(reply) < headerLen {
				b.Errorf("ok=%v rcode=%d reply %d bytes", ok, rcode, len(reply))
				return
			}
			observeQuery(q.qtype, rcode, start, false)
		}
	})
}

// BenchmarkCompileZone is SetIndex's cost for the 10,200-task cluster.
func BenchmarkCompileZone(b *testing.B) {
	benchmarkCompile(b, 1000)
}

// BenchmarkCompileZone100k is SetIndex's cost for 100,200 tasks.
func BenchmarkCompileZone100k(b *testing.B) {
	benchmarkCompile(b, 10000)
}

func benchmarkCompile(b *testing.B, apps int) {
	ix := benchIndex(apps)
	b.ReportAllocs()
	for b.Loop() {
		compileZone(ix, "mesos.", 60, 5, true)
	}
}
