package dnsserver

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSOAFieldsAreConfigured: mesos-dns's SOAMname, SOARname, SOARefresh, SOARetry and
// SOAExpire reach the SOA answer and the SOA of negative answers, whether the names are in the
// zone, below each other or elsewhere; unset, they are mesos-dns's defaults.
func TestSOAFieldsAreConfigured(t *testing.T) {
	cases := []struct {
		name         string
		cfg          RecordConfig
		mname, rname string
		timers       [3]uint32
	}{
		{"defaults", RecordConfig{}, "ns1.mesos.", "root.ns1.mesos.", [3]uint32{60, 600, 86400}},
		{"in the zone", RecordConfig{SOAMname: "dns1.mesos", SOARname: "hostmaster.mesos", SOARefresh: 30, SOARetry: 120, SOAExpire: 3600},
			"dns1.mesos.", "hostmaster.mesos.", [3]uint32{30, 120, 3600}},
		{"elsewhere", RecordConfig{SOAMname: "NS.Example.COM.", SOARname: "ops.example.org"},
			"ns.example.com.", "ops.example.org.", [3]uint32{60, 600, 86400}},
		{"rname below mname", RecordConfig{SOAMname: "ns.example.com", SOARname: "admin.ns.example.com"},
			"ns.example.com.", "admin.ns.example.com.", [3]uint32{60, 600, 86400}},
		{"mname the apex", RecordConfig{SOAMname: "mesos", SOARname: "admin.mesos"},
			"mesos.", "admin.mesos.", [3]uint32{60, 600, 86400}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Domain = "mesos"
			ix := BuildIndex(nil, tc.cfg, nil)
			s := startServer(t, Config{}, ix)
			for _, q := range []struct {
				name string
				soa  func(*dns.Msg) []dns.RR
			}{
				{"mesos.", func(m *dns.Msg) []dns.RR { return m.Answer }},
				{"nothing-here.mesos.", func(m *dns.Msg) []dns.RR { return m.Ns }},
			} {
				for _, network := range []string{"udp", "tcp"} {
					r, _ := exchange(t, network, s.Addr(), newQuery(q.name, dns.TypeSOA, 0))
					rrs := q.soa(r)
					if len(rrs) != 1 {
						t.Fatalf("%s %s: want one SOA, got %v", network, q.name, r)
					}
					soa, ok := rrs[0].(*dns.SOA)
					if !ok {
						t.Fatalf("%s %s: want an SOA, got %v", network, q.name, rrs[0])
					}
					got := [3]uint32{soa.Refresh, soa.Retry, soa.Expire}
					if soa.Ns != tc.mname || soa.Mbox != tc.rname || got != tc.timers || soa.Serial != ix.Serial {
						t.Errorf("%s %s: SOA %v, want mname %s rname %s timers %v serial %d", network, q.name, soa, tc.mname, tc.rname, tc.timers, ix.Serial)
					}
				}
			}
		})
	}
}

// TestSOAMinSerial: the first index's serial is at least SOAMinSerial (a serial the operator's
// secondaries already saw); later ones advance from it.
func TestSOAMinSerial(t *testing.T) {
	floor := uint32(time.Now().Unix()) + 1_000_000
	first := BuildIndex(nil, RecordConfig{SOAMinSerial: floor}, nil)
	if first.Serial != floor {
		t.Fatalf("first serial %d, want the floor %d", first.Serial, floor)
	}
	changed := BuildIndex(nil, RecordConfig{SOAMinSerial: floor, Domain: "other"}, first)
	if changed.Serial != floor+1 {
		t.Errorf("serial after a change %d, want %d", changed.Serial, floor+1)
	}
	low := BuildIndex(nil, RecordConfig{SOAMinSerial: 5}, nil)
	if low.Serial < uint32(time.Now().Unix())-60 {
		t.Errorf("a floor in the past must not lower the serial below the time: %d", low.Serial)
	}
}

func TestSOANamesValidated(t *testing.T) {
	for _, bad := range []RecordConfig{{SOAMname: "bad..name"}, {SOARname: "a b.example"}, {SOAMname: string(make([]byte, 300))}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	if err := (RecordConfig{SOAMname: "ns.example.com", SOARname: "hostmaster.example.com"}).Validate(); err != nil {
		t.Errorf("valid names refused: %v", err)
	}
}
