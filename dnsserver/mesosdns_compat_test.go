package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

// TestRecursionAvailableWhenForwarding: with forwarding on, every answer sets RA, in the zone
// and out of it, also when the upstream that answered does not (an authoritative-only server
// answers without RA); with forwarding off, none does.
func TestRecursionAvailableWhenForwarding(t *testing.T) {
	up := startUpstream(t, "127.0.0.77")
	up.mu.Lock()
	up.noRA = true
	up.mu.Unlock()
	queries := []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"www.example.org.", dns.TypeA, dns.RcodeSuccess},             // forwarded
		{"nothing.example.org.", dns.TypeMX, dns.RcodeNameError},      // forwarded NXDOMAIN
		{"app-abcde-s1.marathon.mesos.", dns.TypeA, dns.RcodeSuccess}, // in the zone
		{"_app._tcp.marathon.mesos.", dns.TypeSRV, dns.RcodeSuccess},
		{"app-abcde-s1.marathon.mesos.", dns.TypeTXT, dns.RcodeSuccess}, // no data
		{"nothing.marathon.mesos.", dns.TypeA, dns.RcodeNameError},
		{"mesos.", dns.TypeSOA, dns.RcodeSuccess},
	}
	for _, forward := range []bool{true, false} {
		s := startServer(t, Config{Forward: forward, Upstreams: []string{up.addr}}, testIndex())
		for _, network := range []string{"udp", "tcp"} {
			for _, q := range queries {
				r, _ := exchange(t, network, s.Addr(), newQuery(q.name, q.qtype, 0))
				want := q.rcode
				if !forward && !inZone(q.name, "mesos.") {
					want = dns.RcodeRefused
				}
				if r.Rcode != want || r.RecursionAvailable != forward {
					t.Errorf("forwarding %v, %s %s %s: rcode %s RA=%v, want %s RA=%v", forward, network, q.name,
						dns.TypeToString[q.qtype], dns.RcodeToString[r.Rcode], r.RecursionAvailable, dns.RcodeToString[want], forward)
				}
			}
		}
		// Before the first index: in-zone names SERVFAIL, with RA as well.
		early := startServer(t, Config{Forward: forward, Upstreams: []string{up.addr}}, nil)
		r, _ := exchange(t, "udp", early.Addr(), newQuery("app.marathon.mesos.", dns.TypeA, 0))
		if r.Rcode != dns.RcodeServerFailure || r.RecursionAvailable != forward {
			t.Errorf("forwarding %v, no index yet: rcode %s RA=%v", forward, dns.RcodeToString[r.Rcode], r.RecursionAvailable)
		}
	}
}

// TestSRVWeight: SRV records carry weight 1 by default, as mesos-dns answers, or the weight
// configured (0 included), in the index and on the wire.
func TestSRVWeight(t *testing.T) {
	st := loadState(t)
	weight := func(w uint16) *uint16 { return &w }
	for _, tc := range []struct {
		set  *uint16
		want uint16
	}{{nil, 1}, {weight(0), 0}, {weight(7), 7}, {weight(65535), 65535}} {
		cfg := testConfig()
		cfg.SRVWeight = tc.set
		ix := BuildIndex(snapshotOf(st), cfg, nil)
		n := 0
		for name, rs := range ix.All() {
			for _, s := range rs.SRV {
				n++
				if s.Weight != tc.want {
					t.Errorf("weight %v: %s has SRV %+v, want weight %d", tc.set, name, s, tc.want)
				}
			}
		}
		if n == 0 {
			t.Fatal("the fixture gave no SRV records")
		}
		// Discovery ports, host ports, named ports and the zone's own SRV names, on the wire.
		s := startServer(t, Config{}, ix)
		for _, name := range []string{"_liquor-store._tcp.marathon.mesos.", "_car-store._udp.marathon.slave.mesos.",
			"_http._liquor-store._tcp.marathon.mesos.", "_leader._tcp.mesos.", "_framework._tcp.marathon.mesos."} {
			r, _ := exchange(t, "udp", s.Addr(), newQuery(name, dns.TypeSRV, 0))
			if len(r.Answer) == 0 {
				t.Errorf("%s: no answer", name)
			}
			for _, rr := range r.Answer {
				if srv, ok := rr.(*dns.SRV); !ok || srv.Weight != tc.want {
					t.Errorf("weight %v: %s answered %v, want weight %d", tc.set, name, rr, tc.want)
				}
			}
		}
	}
	// A changed weight is a change of the records: the serial moves.
	cfg := testConfig()
	one := BuildIndex(snapshotOf(st), cfg, nil)
	cfg.SRVWeight = weight(2)
	if two := BuildIndex(snapshotOf(st), cfg, one); two.Serial == one.Serial {
		t.Errorf("serial %d kept when the SRV weight changed", two.Serial)
	}
}
