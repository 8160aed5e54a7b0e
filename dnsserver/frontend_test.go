package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/discovery"
)

// startFrontEnd runs a front end on a free loopback port, following reg, until the test ends.
// It returns the front end and the channel Run's result arrives on.
func startFrontEnd(t *testing.T, reg *discovery.Registry, cfg FrontEndConfig) (*FrontEnd, <-chan error) {
	t.Helper()
	if cfg.Server.Listen == "" {
		cfg.Server.Listen = "127.0.0.1:0"
	}
	cfg.Server.ResolvConf = writeFile(t, "resolv.conf", "nameserver 127.0.0.1\n")
	fe, err := NewFrontEnd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sub := reg.Subscribe()
	done := make(chan error, 1)
	go func() { done <- fe.Run(ctx, sub) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sub.Close()
	})
	return fe, done
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not after 10s", what)
	}
}

// TestFrontEndFollowsTheRegistry: the front end serves at once, answers SERVFAIL in the zone
// until every source has synced, then the records of the registry's snapshot, ns1 at its own
// address, and the same records through the API's views.
func TestFrontEndFollowsTheRegistry(t *testing.T) {
	reg := runRegistry(t)
	reg.RegisterSource("mesos")
	fe, _ := startFrontEnd(t, reg, FrontEndConfig{
		Records: RecordConfig{ResolveHost: testResolver},
		LookupHost: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		},
	})
	waitClosed(t, fe.Ready(), "listening")
	if err := fe.Listening(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Send(ctx, discovery.ReplaceMesosState{State: loadState(t)}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.WaitFor(ctx, func(s *discovery.Snapshot) bool { return s.Mesos != nil }); err != nil {
		t.Fatal(err)
	}
	// The state is in the registry, but the source has not reported its sync.
	r, _ := exchange(t, "udp", fe.Addr(), newQuery("toy-store.ipv6-framework.mesos.", dns.TypeA, 0))
	if r.Rcode != dns.RcodeServerFailure || fe.Index() != nil || fe.Hosts("toy-store.ipv6-framework.mesos.") != nil {
		t.Fatalf("before the first sync: rcode %s, index %v; want SERVFAIL and none", dns.RcodeToString[r.Rcode], fe.Index())
	}
	if ax := fe.AXFR(); ax.Domain != "mesos" || len(ax.Records.As) != 0 {
		t.Errorf("AXFR before the first index: %+v", ax)
	}
	if en := fe.Enumerate(); len(en.Frameworks) != 0 {
		t.Errorf("Enumerate before the first index: %+v", en)
	}
	reg.ReportSync("mesos", nil)
	waitClosed(t, fe.Indexed(), "first index")

	r, _ = exchange(t, "udp", fe.Addr(), newQuery("toy-store.ipv6-framework.mesos.", dns.TypeA, 0))
	var got []string
	for _, rr := range r.Answer {
		got = append(got, rr.(*dns.A).A.String())
	}
	slices.Sort(got)
	if r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"12.0.1.2", "12.0.1.3"}) {
		t.Errorf("toy-store A: rcode %s %q, want both IPv4 addresses", dns.RcodeToString[r.Rcode], got)
	}
	host, _, _ := net.SplitHostPort(fe.Addr())
	r, _ = exchange(t, "udp", fe.Addr(), newQuery("ns1.mesos.", dns.TypeA, 0))
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != host {
		t.Errorf("ns1.mesos.: %v, want A %s (the listen address)", r.Answer, host)
	}

	if h := fe.Hosts("Toy-Store.ipv6-framework.mesos"); len(h) != 3 {
		t.Errorf("Hosts: %+v, want three addresses", h)
	}
	if s := fe.Services("_car-store._tcp.marathon.mesos."); len(s) != 2 {
		t.Errorf("Services: %+v", s)
	}
	if ax := fe.AXFR(); ax.Serial != fe.Index().Serial || len(ax.Records.SRVs) == 0 {
		t.Errorf("AXFR: serial %d, %d SRV names", ax.Serial, len(ax.Records.SRVs))
	}
	if en := fe.Enumerate(); len(en.Frameworks) != 4 {
		t.Errorf("Enumerate: %d frameworks, want 4", len(en.Frameworks))
	}
	recs := fe.Records("_CAR-STORE._tcp.marathon.mesos")
	if len(recs) != 2 || recs[0] != (Record{Name: "_car-store._tcp.marathon.mesos.", Type: "SRV", TTL: 60,
		Data: "0 1 31364 car-store-zinaz-0.marathon.slave.mesos."}) {
		t.Errorf("Records: %+v", recs)
	}
	if recs := fe.Records("toy-store.ipv6-framework.mesos."); len(recs) != 3 || recs[2].Type != "AAAA" {
		t.Errorf("Records of toy-store: %+v", recs)
	}
	if fe.Records("nothing.mesos") != nil {
		t.Error("Records of an unknown name")
	}
}

// TestFrontEndRunEnds: Run returns nil when its context ends, and the server's error when it
// cannot listen.
func TestFrontEndRunEnds(t *testing.T) {
	reg := runRegistry(t)
	first, done := startFrontEnd(t, reg, FrontEndConfig{})
	waitClosed(t, first.Ready(), "listening")

	// A second front end on the same port fails.
	fe, err := NewFrontEnd(FrontEndConfig{Server: Config{Listen: first.Addr(),
		ResolvConf: writeFile(t, "resolv.conf", "nameserver 127.0.0.1\n")}})
	if err != nil {
		t.Fatal(err)
	}
	sub := reg.Subscribe()
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fe.Run(ctx, sub); err == nil || !strings.Contains(err.Error(), first.Addr()) {
		t.Errorf("Run on a taken port = %v, want an error naming it", err)
	}
	if err := fe.Listening(); err == nil {
		t.Error("Listening = nil on a front end that never listened")
	}

	select {
	case err := <-done:
		t.Fatalf("the first front end stopped: %v", err)
	default:
	}
}

func TestFrontEndConfigErrors(t *testing.T) {
	for _, cfg := range []FrontEndConfig{
		{Server: Config{Listen: "nowhere"}},
		{Server: Config{Domain: "bad domain"}},
		{Records: RecordConfig{IPSources: []string{"dns"}}},
	} {
		if _, err := NewFrontEnd(cfg); err == nil {
			t.Errorf("NewFrontEnd(%+v) = nil error", cfg)
		}
	}
}

func TestNSAddrs(t *testing.T) {
	if got := nsAddrs("127.0.0.7:53"); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("127.0.0.7")}) {
		t.Errorf("a specific address: %v", got)
	}
	if got := nsAddrs("[::ffff:127.0.0.8]:53"); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("127.0.0.8")}) {
		t.Errorf("an IPv4-mapped address: %v", got)
	}
	for _, a := range nsAddrs("0.0.0.0:53") {
		if !a.Is4() || a.IsLinkLocalUnicast() {
			t.Errorf("a 0.0.0.0 listen gives %v: IPv4 addresses only, no link-local ones", a)
		}
	}
	if got := nsAddrs("0.0.0.0:53"); !slices.Contains(got, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("a wildcard listen: %v, want this host's addresses, loopback included", got)
	}
	for _, bad := range []string{"", "localhost:53", ":53x", "127.0.0.1"} {
		if got := nsAddrs(bad); got != nil {
			t.Errorf("nsAddrs(%q) = %v, want none", bad, got)
		}
	}
}
