package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// echoUpstream answers every query (without EDNS) with one A record, built from the query's
// bytes, as fast as a loopback socket allows. It runs until the benchmark ends.
func echoUpstream(b *testing.B) string {
	b.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	pc.(*net.UDPConn).SetReadBuffer(1 << 20)
	b.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < headerLen+5 {
				continue
			}
			out := append(buf[:n:n], 0xC0, headerLen, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1)
			out[2] |= 0x80
			out[7] = 1
			pc.WriteTo(out, from)
		}
	}()
	return pc.LocalAddr().String()
}

// BenchmarkForwardExchange: one forwarded query through the pooled upstream sockets, with
// many in flight, to an upstream that answers at once: the forwarder's cost per query
// (loopback system calls included).
func BenchmarkForwardExchange(b *testing.B) {
	up := echoUpstream(b)
	s, err := New(Config{Forward: true, Upstreams: []string{up}, ResolvConf: "/nonexistent"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.fwd.start(ctx)
	pkt, _ := newQuery("www.example.org.", dns.TypeA, 0).Pack()
	var q query
	if !parseQuery(pkt, &q, nil) {
		b.Fatal("query not parsed")
	}
	var failed atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		done := make(chan struct{}, 1)
		for pb.Next() {
			fq := s.newFwdQuery(pkt, &q, s.fwd.defaults)
			fq.finish = func(_ []byte, _ *answerInfo, _ int, err error) {
				if err != nil {
					failed.Add(1)
				}
				done <- struct{}{}
			}
			fq.start(time.Now())
			<-done
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d queries failed", n)
	}
}

// BenchmarkForwardExchangeDialPerQuery is the forwarder before the pool, for comparison: a
// socket dialled per query and miekg/dns's client (a goroutine per upstream asked, a timer,
// and the answer unpacked), to the same upstream.
func BenchmarkForwardExchangeDialPerQuery(b *testing.B) {
	up := echoUpstream(b)
	m := newQuery("www.example.org.", dns.TypeA, 0)
	var failed atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			res := make(chan error, 1)
			go func() {
				c := dns.Client{Net: "udp", Timeout: 2 * time.Second}
				co, err := c.DialContext(ctx, up)
				if err == nil {
					stop := context.AfterFunc(ctx, func() { co.Close() })
					_, _, err = c.ExchangeWithConnContext(ctx, m.Copy(), co)
					stop()
					co.Close()
				}
				res <- err
			}()
			timer := time.NewTimer(150 * time.Millisecond)
			if err := <-res; err != nil {
				failed.Add(1)
			}
			timer.Stop()
			cancel()
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d queries failed", n)
	}
}

// BenchmarkForwardCacheHit: a repeated name outside the zone, answered in the UDP read loop
// from the cache (compare BenchmarkUDPAnswerA, a name in the zone).
func BenchmarkForwardCacheHit(b *testing.B) {
	s, err := New(Config{Forward: true, Upstreams: []string{"192.0.2.53"}, ResolvConf: "/nonexistent", Cache: CacheConfig{Size: 1000}})
	if err != nil {
		b.Fatal(err)
	}
	req := newQuery("www.example.org.", dns.TypeA, 0)
	pkt, _ := req.Pack()
	var q query
	if !parseQuery(pkt, &q, make([]byte, 0, 256)) {
		b.Fatal("query not parsed")
	}
	ans := new(dns.Msg)
	ans.SetReply(req)
	rr, _ := dns.NewRR("www.example.org. 300 IN A 192.0.2.1")
	ans.Answer = append(ans.Answer, rr)
	msg, _ := ans.Pack()
	var info answerInfo
	if err := readAnswer(msg, &q, &info); err != nil {
		b.Fatal(err)
	}
	s.fwd.cache.put(appendCacheKey(nil, &q), msg, &info)
	from := netip.MustParseAddrPort("127.0.0.1:5300")
	out := make([]byte, 0, maxUDPSize)
	var keyBuf [256]byte
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		reply, rcode, ok := s.forwardPacket(udpSocket{}, from, pkt, nil, out[:0], &q, keyBuf[:0], start)
		if !ok || rcode != rcodeOK || len(reply) != len(msg) {
			b.Fatalf("ok=%v rcode=%d reply %d bytes: not the cached answer", ok, rcode, len(reply))
		}
		observeQuery(q.qtype, rcode, start, true)
	}
}

// BenchmarkReadAnswer: the check of an upstream's answer (a 2,000-record one is 2,000 times
// this loop's body; this one has 4 records and an OPT record).
func BenchmarkReadAnswer(b *testing.B) {
	req := newQuery("www.example.org.", dns.TypeA, 1232)
	pkt, _ := req.Pack()
	var q query
	parseQuery(pkt, &q, make([]byte, 0, 256))
	ans := new(dns.Msg)
	ans.SetReply(req)
	ans.Compress = true
	for _, s := range []string{"www.example.org. 300 IN CNAME web.example.org.", "web.example.org. 300 IN A 192.0.2.1", "web.example.org. 300 IN A 192.0.2.2"} {
		rr, _ := dns.NewRR(s)
		ans.Answer = append(ans.Answer, rr)
	}
	soa, _ := dns.NewRR("example.org. 300 IN SOA ns.example.org. root.example.org. 1 3600 600 86400 60")
	ans.Ns = append(ans.Ns, soa)
	ans.SetEdns0(1232, true)
	msg, _ := ans.Pack()
	info := answerInfo{ttls: make([]uint16, 0, 16)}
	b.ReportAllocs()
	for b.Loop() {
		if err := readAnswer(msg, &q, &info); err != nil {
			b.Fatal(err)
		}
	}
}
