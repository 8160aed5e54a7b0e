package dnsserver

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// The flag has its own name because the server's tests share this package.
var updateRecords = flag.Bool("update-records", false, "rewrite the record golden files in testdata")

func loadState(t testing.TB) *discovery.MesosState {
	t.Helper()
	data, err := os.ReadFile("testdata/state_fake.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := discovery.DecodeMesosState(data)
	if err != nil {
		t.Fatalf("testdata/state_fake.json: %v", err)
	}
	return st
}

func loadApps(t testing.TB) []*discovery.App {
	t.Helper()
	data, err := os.ReadFile("testdata/marathon_apps.json")
	if err != nil {
		t.Fatal(err)
	}
	apps, appErrs, err := discovery.DecodeMarathonApps(data)
	if err != nil || len(appErrs) > 0 {
		t.Fatalf("testdata/marathon_apps.json: %v %v", err, appErrs)
	}
	return apps
}

func snapshotOf(st *discovery.MesosState, apps ...*discovery.App) *discovery.Snapshot {
	n := 0
	for _, a := range apps {
		n += len(a.Tasks)
	}
	return &discovery.Snapshot{Version: 1, Apps: discovery.NewAppSet(apps), Mesos: st, Tasks: n}
}

// testResolver stands in for the cached host lookup cmd wires in.
func testResolver(host string) []netip.Addr {
	switch host {
	case "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	case "agent-9.example.com":
		return []netip.Addr{netip.MustParseAddr("10.9.9.9")}
	case "m3.example.com":
		return []netip.Addr{netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.33"), netip.MustParseAddr("2001:db8::3")}
	}
	return nil
}

func testConfig() RecordConfig {
	return RecordConfig{NSAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, ResolveHost: testResolver}
}

// rrs returns a name's records as zone-file-like lines: "A 1.2.3.4", "SRV 0 1 80 target.".
func rrs(ix *RecordIndex, name string) []string {
	rs := ix.Lookup(name)
	if rs == nil {
		return nil
	}
	var out []string
	for _, ip := range rs.A {
		out = append(out, "A "+ip.String())
	}
	for _, ip := range rs.AAAA {
		out = append(out, "AAAA "+ip.String())
	}
	for _, s := range rs.SRV {
		out = append(out, "SRV "+strconv.Itoa(int(s.Priority))+" "+strconv.Itoa(int(s.Weight))+" "+strconv.Itoa(int(s.Port))+" "+s.Target)
	}
	slices.Sort(out)
	return out
}

type recordCase struct {
	name string
	want []string // nil: the name must not exist
}

func checkRecords(t *testing.T, ix *RecordIndex, cases []recordCase) {
	t.Helper()
	for _, c := range cases {
		want := slices.Clone(c.want)
		slices.Sort(want)
		if got := rrs(ix, c.name); !slices.Equal(got, want) {
			t.Errorf("%s\n got: %q\nwant: %q", c.name, got, want)
		}
	}
}

func srvs(prio string, target string, ports ...int) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = "SRV " + prio + " " + strconv.Itoa(p) + " " + target
	}
	return out
}

// srv is the SRV records of a target's ports with priority 0 and the default weight 1.
func srv(target string, ports ...int) []string { return srvs("0 1", target, ports...) }

func join(lists ...[]string) []string { return slices.Concat(lists...) }

// TestStateFakeRecords checks every kind of mesos-dns name against the Mesos state fixture
// mesos-dns itself is tested with (canonical hashes 4dfjd, zasmd and zinaz are the ones its
// generator tests expect).
func TestStateFakeRecords(t *testing.T) {
	ix := BuildIndex(snapshotOf(loadState(t)), testConfig(), nil)
	const (
		liquor0 = "liquor-store-4dfjd-0.marathon.mesos."
		liquor1 = "liquor-store-zasmd-1.marathon.mesos."
		car     = "car-store-zinaz-0.marathon.slave.mesos."
		toy     = "toy-store-go588-3.ipv6-framework.slave.mesos."
		box     = "some-box-h3dyr-0.chronoswithaspaceandmixedcase-2.0.1.slave.mesos."
	)
	checkRecords(t, ix, []recordCase{
		// The zone's infrastructure.
		{"ns1.mesos.", []string{"A 127.0.0.1"}},
		{"leader.mesos.", []string{"A 1.2.3.4"}},
		{"master.mesos.", []string{"A 1.2.3.4"}},
		{"master0.mesos.", []string{"A 1.2.3.4"}},
		{"master1.mesos.", nil},
		{"_leader._tcp.mesos.", srv("leader.mesos.", 5050)},
		{"_leader._udp.mesos.", srv("leader.mesos.", 5050)},
		{"slave.mesos.", []string{"A 1.2.3.10", "A 1.2.3.11", "A 1.2.3.12", "AAAA 2001:db8::1"}},
		{"_slave._tcp.mesos.", srv("slave.mesos.", 5051)},
		// Frameworks: from the pid; without a pid from the host name (resolved), and no SRV.
		{"marathon.mesos.", []string{"A 1.2.3.11"}},
		{"_framework._tcp.marathon.mesos.", srv("marathon.mesos.", 25501)},
		{"ipv6-framework.mesos.", []string{"AAAA 2001:db8::1"}},
		{"_framework._tcp.ipv6-framework.mesos.", srv("ipv6-framework.mesos.", 25501)},
		{"chronoswithaspaceandmixedcase-2.0.1.mesos.", []string{"A 1.2.3.12"}},
		{"nopid.mesos.", []string{"A 127.0.0.1"}},
		{"_framework._tcp.nopid.mesos.", nil},
		// A task without DiscoveryInfo: task and canonical names, agent names, SRV for every
		// resources.ports port, tcp and udp, in the framework and under slave.
		{"car-store.marathon.mesos.", []string{"A 1.2.3.11"}},
		{"car-store-zinaz-0.marathon.mesos.", []string{"A 1.2.3.11"}},
		{"car-store.marathon.slave.mesos.", []string{"A 1.2.3.11"}},
		{car, []string{"A 1.2.3.11"}},
		{"_car-store._tcp.marathon.mesos.", srv(car, 31364, 31365)},
		{"_car-store._udp.marathon.mesos.", srv(car, 31364, 31365)},
		{"_car-store._tcp.marathon.slave.mesos.", srv(car, 31364, 31365)},
		{"_car-store._udp.marathon.slave.mesos.", srv(car, 31364, 31365)},
		{"car.store.marathon.mesos.", nil},
		// DiscoveryInfo: the cleaned name and the raw (legacy) one, SRV per discovery port in
		// the framework (tcp only, as the ports say) to the canonical name, named ports, and
		// resources.ports only under slave. Two tasks share the name, on two agents.
		{"liquor-store.marathon.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12"}},
		{"liquor.store.marathon.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12"}},
		{"liquor-store.marathon.slave.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12"}},
		{liquor0, []string{"A 1.2.3.11"}},
		{liquor1, []string{"A 1.2.3.12"}},
		{"liquor-store-zasmd-1.marathon.slave.mesos.", []string{"A 1.2.3.12"}},
		{"liquor.store-4dfjd-0.marathon.mesos.", []string{"A 1.2.3.11"}},
		{"_liquor-store._tcp.marathon.mesos.", join(srv(liquor0, 80, 443), srv(liquor1, 80, 443))},
		{"_liquor-store._udp.marathon.mesos.", nil},
		{"_http._liquor-store._tcp.marathon.mesos.", join(srv(liquor0, 80), srv(liquor1, 80))},
		{"_https._liquor-store._tcp.marathon.mesos.", join(srv(liquor0, 443), srv(liquor1, 443))},
		{"_liquor-store._tcp.marathon.slave.mesos.", join(
			srv("liquor-store-4dfjd-0.marathon.slave.mesos.", 31354, 31355),
			srv("liquor-store-zasmd-1.marathon.slave.mesos.", 31737, 31738))},
		{"_liquor-store._udp.marathon.slave.mesos.", join(
			srv("liquor-store-4dfjd-0.marathon.slave.mesos.", 31354, 31355),
			srv("liquor-store-zasmd-1.marathon.slave.mesos.", 31737, 31738))},
		{"_liquor.store._tcp.marathon.mesos.", join(
			srv("liquor.store-4dfjd-0.marathon.mesos.", 80, 443), srv("liquor.store-zasmd-1.marathon.mesos.", 80, 443))},
		{"_https._liquor.store._tcp.marathon.mesos.", join(
			srv("liquor.store-4dfjd-0.marathon.mesos.", 443), srv("liquor.store-zasmd-1.marathon.mesos.", 443))},
		// The discovery name replaces the task name ("big.dog2", "non-human-readable-liquor-store").
		{"big-dog.marathon.mesos.", []string{"A 1.2.3.11"}},
		{"big.dog.marathon.mesos.", []string{"A 1.2.3.11"}},
		{"_big-dog._tcp.marathon.mesos.", srv("big-dog-4dfjd-0.marathon.mesos.", 80, 443)},
		{"_http._big-dog._tcp.marathon.mesos.", srv("big-dog-4dfjd-0.marathon.mesos.", 80)},
		{"big-dog2.marathon.mesos.", nil},
		{"non-human-readable-liquor-store.marathon.mesos.", nil},
		// IP sources (default netinfo, mesos, host): the Mesos containerizer label; a task
		// without ports has no SRV records.
		{"nginx.marathon.mesos.", []string{"A 10.3.0.3"}},
		{"nginx-6ud99-0.marathon.mesos.", []string{"A 10.3.0.3"}},
		{"nginx.marathon.slave.mesos.", []string{"A 1.2.3.11"}},
		{"_nginx._tcp.marathon.mesos.", nil},
		// Only TASK_RUNNING tasks.
		{"poseidon.marathon.mesos.", nil},
		{"_poseidon._tcp.marathon.mesos.", nil},
		// IPv6: netinfo gives every address of every network_info (two networks, the second
		// dual-stack), as mesos-dns does; the agent is IPv6 only.
		{"toy-store.ipv6-framework.mesos.", []string{"A 12.0.1.3", "A 12.0.1.2", "AAAA fd01:b::1:8000:2"}},
		{"toy-store-go588-3.ipv6-framework.mesos.", []string{"A 12.0.1.3", "A 12.0.1.2", "AAAA fd01:b::1:8000:2"}},
		{"toy-store.ipv6-framework.slave.mesos.", []string{"AAAA 2001:db8::1"}},
		{toy, []string{"AAAA 2001:db8::1"}},
		{"_toy-store._tcp.ipv6-framework.mesos.", srv(toy, 31354, 31355)},
		{"_toy-store._udp.ipv6-framework.slave.mesos.", srv(toy, 31354, 31355)},
		// Framework names keep their dots, each part cleaned.
		{"some-box.chronoswithaspaceandmixedcase-2.0.1.mesos.", []string{"A 1.2.3.11"}},
		{box, []string{"A 1.2.3.11"}},
		{"_some-box._udp.chronoswithaspaceandmixedcase-2.0.1.slave.mesos.", srv(box, 31354)},
		{"chronos.marathon.mesos.", []string{"A 1.2.3.11"}},
		{"reviewbot-8sq89-1.marathon.mesos.", []string{"A 1.2.3.12"}},
	})
	if ix.Domain != "mesos." || ix.Mname != "ns1.mesos." || ix.Rname != "root.ns1.mesos." {
		t.Errorf("SOA data: domain %q mname %q rname %q", ix.Domain, ix.Mname, ix.Rname)
	}
	for _, n := range ix.Names() {
		if n != strings.ToLower(n) || !validFQDN(n) {
			t.Errorf("owner name %q is not a valid lower-case FQDN", n)
		}
		for _, s := range ix.Lookup(n).SRV {
			if ix.Lookup(s.Target) == nil {
				t.Errorf("%s: SRV target %s has no records", n, s.Target)
			}
		}
	}
}

// TestStateFakeGolden keeps the whole table of the fixture's records, so that a record nobody
// asked for shows up too. Rewrite with go test ./dnsserver -run Golden -update-records.
func TestStateFakeGolden(t *testing.T) {
	ix := BuildIndex(snapshotOf(loadState(t)), testConfig(), nil)
	var buf bytes.Buffer
	if err := ix.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "state_fake.records")
	if *updateRecords {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (create it with -update-records)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("records differ from %s (rewrite with -update-records after checking):\n%s", golden, lineDiff(string(want), buf.String()))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

func TestIPSources(t *testing.T) {
	st := loadState(t)
	build := func(sources ...string) *RecordIndex {
		cfg := testConfig()
		cfg.IPSources = sources
		return BuildIndex(snapshotOf(st), cfg, nil)
	}
	tests := []struct {
		sources []string
		cases   []recordCase
	}{
		// docker: the label of the latest TASK_RUNNING status by timestamp (10.3.0.1 is the
		// second of three running statuses in the array, and the newest).
		{[]string{"docker", "host"}, []recordCase{
			{"liquor-store.marathon.mesos.", []string{"A 10.3.0.1", "A 10.3.0.2"}},
			{"liquor-store.marathon.slave.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12"}},
			{"big-dog.marathon.mesos.", []string{"A 10.3.0.1"}},
			{"nginx.marathon.mesos.", []string{"A 1.2.3.11"}},
			{"toy-store.ipv6-framework.mesos.", []string{"AAAA 2001:db8::1"}},
		}},
		{[]string{"mesos", "host"}, []recordCase{
			{"liquor-store.marathon.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12"}},
			{"nginx.marathon.mesos.", []string{"A 10.3.0.3"}},
			{"toy-store.ipv6-framework.mesos.", []string{"AAAA 2001:db8::1"}},
		}},
		{[]string{"host"}, []recordCase{
			{"nginx.marathon.mesos.", []string{"A 1.2.3.11"}},
			{"toy-store.ipv6-framework.mesos.", []string{"AAAA 2001:db8::1"}},
			{"toy-store.ipv6-framework.slave.mesos.", []string{"AAAA 2001:db8::1"}},
		}},
		// netinfo alone: tasks without network infos get no task addresses, but keep their
		// agent names and SRV records.
		{[]string{"netinfo"}, []recordCase{
			{"toy-store.ipv6-framework.mesos.", []string{"A 12.0.1.3", "A 12.0.1.2", "AAAA fd01:b::1:8000:2"}},
			{"liquor-store.marathon.mesos.", nil},
			{"liquor-store.marathon.slave.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12"}},
			{"_car-store._tcp.marathon.mesos.", srv("car-store-zinaz-0.marathon.slave.mesos.", 31364, 31365)},
		}},
		{[]string{"netinfo", "docker", "mesos", "host"}, []recordCase{
			{"liquor-store.marathon.mesos.", []string{"A 10.3.0.1", "A 10.3.0.2"}},
			{"nginx.marathon.mesos.", []string{"A 10.3.0.3"}},
			{"car-store.marathon.mesos.", []string{"A 1.2.3.11"}},
			{"toy-store.ipv6-framework.mesos.", []string{"A 12.0.1.3", "A 12.0.1.2", "AAAA fd01:b::1:8000:2"}},
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.sources, ","), func(t *testing.T) {
			checkRecords(t, build(tt.sources...), tt.cases)
		})
	}
}

func TestRFC952(t *testing.T) {
	cfg := testConfig()
	cfg.EnforceRFC952 = true
	ix := BuildIndex(snapshotOf(loadState(t)), cfg, nil)
	checkRecords(t, ix, []recordCase{
		// mesos-dns's own RFC 952 expectation for this fixture.
		{"some-box.chronoswithaspaceandmixe.mesos.", []string{"A 1.2.3.11"}},
		{"chronoswithaspaceandmixe.mesos.", []string{"A 1.2.3.12"}},
		{"some-box.chronoswithaspaceandmixedcase-2.0.1.mesos.", nil},
		{"liquor-store.marathon.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12"}},
	})
}

func TestDomain(t *testing.T) {
	cfg := testConfig()
	cfg.Domain = "Dc1.Example.COM."
	ix := BuildIndex(snapshotOf(loadState(t)), cfg, nil)
	checkRecords(t, ix, []recordCase{
		{"car-store.marathon.dc1.example.com.", []string{"A 1.2.3.11"}},
		{"_car-store._tcp.marathon.dc1.example.com.", srv("car-store-zinaz-0.marathon.slave.dc1.example.com.", 31364, 31365)},
		{"ns1.dc1.example.com.", []string{"A 127.0.0.1"}},
		{"car-store.marathon.mesos.", nil},
	})
	if ix.Domain != "dc1.example.com." || ix.Mname != "ns1.dc1.example.com." || ix.Rname != "root.ns1.dc1.example.com." {
		t.Errorf("domain %q mname %q rname %q", ix.Domain, ix.Mname, ix.Rname)
	}
}

func webHash(suffix string) string { return hashString("shop_web." + suffix) }

const (
	web1 = "5a1f0c2e-b7c1-11f0-9c3e-0242ac110002" // running, healthy, agent ...-0
	web2 = "6b2a1d3f-b7c1-11f0-9c3e-0242ac110002" // running, host name, agent not in the state
	web3 = "7c3b2e40-b7c1-11f0-9c3e-0242ac110002" // running, unhealthy
	web4 = "8d4c3f51-b7c1-11f0-9c3e-0242ac110002" // staging
)

func TestMarathonMerge(t *testing.T) {
	ix := BuildIndex(snapshotOf(loadState(t), loadApps(t)...), testConfig(), nil)
	c1 := "web-shop-" + webHash(web1) + "-0.marathon"
	c2 := "web-shop-" + webHash(web2) + "-s9.marathon"
	c3 := "web-shop-" + webHash(web3) + "-1.marathon"
	c4 := "web-shop-" + webHash(web4) + "-2.marathon"
	ipt := "ipt-net-" + hashString("net_ipt.9e5d4062-b7c1-11f0-9c3e-0242ac110002") + "-2.marathon"
	webSRV := join(srv(c1+".slave.mesos.", 31001, 31002), srv(c2+".slave.mesos.", 31003, 31004), srv(c3+".slave.mesos.", 31005, 31006))
	checkRecords(t, ix, []recordCase{
		// Marathon-only tasks appear under the Marathon framework with the name Mesos will
		// give them (/shop/web → web.shop → web-shop); a host name goes through ResolveHost.
		{"web-shop.marathon.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12", "A 10.9.9.9"}},
		{c1 + ".mesos.", []string{"A 1.2.3.11"}},
		{c1 + ".slave.mesos.", []string{"A 1.2.3.11"}},
		{c2 + ".mesos.", []string{"A 10.9.9.9"}},
		{c2 + ".slave.mesos.", []string{"A 10.9.9.9"}},
		{"web-shop.marathon.slave.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12", "A 10.9.9.9"}},
		{"_web-shop._tcp.marathon.mesos.", webSRV},
		{"_web-shop._udp.marathon.mesos.", webSRV},
		{"_web-shop._tcp.marathon.slave.mesos.", webSRV},
		{c4 + ".mesos.", nil},
		// Container networking: the task's own addresses; the agent's for the slave names.
		{"ipt-net.marathon.mesos.", []string{"A 9.0.0.5", "AAAA fd00::5"}},
		{ipt + ".mesos.", []string{"A 9.0.0.5", "AAAA fd00::5"}},
		{"ipt-net.marathon.slave.mesos.", []string{"A 1.2.3.10"}},
		// In both: the Mesos state's copy only (Marathon's says host 1.2.3.99, port 41000).
		{"car-store.marathon.mesos.", []string{"A 1.2.3.11"}},
		{"_car-store._tcp.marathon.mesos.", srv("car-store-zinaz-0.marathon.slave.mesos.", 31364, 31365)},
		// Marathon knows /chronos but no longer its task: killed since the last state poll.
		{"chronos.marathon.mesos.", nil},
		{"chronos-rx8q6-0.marathon.mesos.", nil},
		{"_chronos._tcp.marathon.mesos.", nil},
		// Apps Marathon does not know, and other frameworks, stay as the state says.
		{"liquor-store.marathon.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12"}},
		{"reviewbot.marathon.mesos.", []string{"A 1.2.3.12"}},
		{"toy-store.ipv6-framework.mesos.", []string{"A 12.0.1.3", "A 12.0.1.2", "AAAA fd01:b::1:8000:2"}},
	})
	// One set of records per task: the car-store task's records are exactly those without
	// Marathon.
	alone := BuildIndex(snapshotOf(loadState(t)), testConfig(), nil)
	for _, n := range alone.Names() {
		if strings.Contains(n, "car-store") && !slices.Equal(rrs(ix, n), rrs(alone, n)) {
			t.Errorf("%s: %q with Marathon, %q without", n, rrs(ix, n), rrs(alone, n))
		}
	}
	for _, n := range ix.Names() {
		if strings.Contains(n, "car-store") && alone.Lookup(n) == nil {
			t.Errorf("%s: only with Marathon's copy of the task", n)
		}
	}
}

// TestMarathonTaskLifecycle follows one task: known only to Marathon, then in both, then
// killed (gone from Marathon while the polled state still lists it).
func TestMarathonTaskLifecycle(t *testing.T) {
	apps := loadApps(t)
	web := apps[slices.IndexFunc(apps, func(a *discovery.App) bool { return a.ID == "/shop/web" })]
	onlyFirst := *web
	onlyFirst.Tasks = web.Tasks[:1]
	id := onlyFirst.Tasks[0].ID
	canonical := "web-shop-" + webHash(web1) + "-0.marathon.mesos."

	// 1. Marathon only.
	st := loadState(t)
	ix1 := BuildIndex(snapshotOf(st, &onlyFirst), testConfig(), nil)
	checkRecords(t, ix1, []recordCase{{"web-shop.marathon.mesos.", []string{"A 1.2.3.11"}}, {canonical, []string{"A 1.2.3.11"}}})

	// 2. The next poll has it, with a container IP: the Mesos copy wins, no duplicate.
	st2 := loadState(t)
	mf := slices.IndexFunc(st2.Frameworks, func(f discovery.Framework) bool { return f.Name == "marathon" })
	st2.Frameworks[mf].Tasks = append(st2.Frameworks[mf].Tasks, discovery.MesosTask{
		ID: id, Name: "web.shop", SlaveID: "20140803-125133-3041283216-5050-2410-0", State: "TASK_RUNNING",
		Ports:    []int{31001, 31002},
		Statuses: []discovery.MesosTaskStatus{{State: "TASK_RUNNING", Timestamp: 1, NetworkIPs: []string{"172.17.0.5"}}},
	})
	ix2 := BuildIndex(snapshotOf(st2, &onlyFirst), testConfig(), ix1)
	checkRecords(t, ix2, []recordCase{
		{"web-shop.marathon.mesos.", []string{"A 172.17.0.5"}},
		{canonical, []string{"A 172.17.0.5"}},
		{"_web-shop._tcp.marathon.mesos.", srv("web-shop-"+webHash(web1)+"-0.marathon.slave.mesos.", 31001, 31002)},
	})
	if ix2.Serial <= ix1.Serial {
		t.Errorf("serial %d after %d: records changed", ix2.Serial, ix1.Serial)
	}

	// 3. Marathon reports it killed (the task leaves the app) before the next poll.
	killed := *web
	killed.Tasks = nil
	ix3 := BuildIndex(snapshotOf(st2, &killed), testConfig(), ix2)
	checkRecords(t, ix3, []recordCase{
		{"web-shop.marathon.mesos.", nil},
		{canonical, nil},
		{"_web-shop._tcp.marathon.mesos.", nil},
		{"car-store.marathon.mesos.", []string{"A 1.2.3.11"}},
	})

	// 4. Marathon says TASK_KILLING: out as well.
	killing := *web
	task := *web.Tasks[0]
	task.State = discovery.StateKilling
	killing.Tasks = []*discovery.Task{&task}
	checkRecords(t, BuildIndex(snapshotOf(st2, &killing), testConfig(), nil), []recordCase{{canonical, nil}})
}

func TestHealthyOnly(t *testing.T) {
	cfg := testConfig()
	cfg.HealthyOnly = true
	ix := BuildIndex(snapshotOf(loadState(t), loadApps(t)...), cfg, nil)
	c3 := "web-shop-" + webHash(web3) + "-1.marathon"
	checkRecords(t, ix, []recordCase{
		// Marathon's copy of an unhealthy task is out; no results yet counts as healthy.
		{"web-shop.marathon.mesos.", []string{"A 1.2.3.11", "A 10.9.9.9"}},
		{c3 + ".mesos.", nil},
		{"_web-shop._tcp.marathon.mesos.", join(
			srv("web-shop-"+webHash(web1)+"-0.marathon.slave.mesos.", 31001, 31002),
			srv("web-shop-"+webHash(web2)+"-s9.marathon.slave.mesos.", 31003, 31004))},
		// So is the Mesos state's copy of a task Marathon reports unhealthy.
		{"reviewbot.marathon.mesos.", nil},
		{"_reviewbot._tcp.marathon.mesos.", nil},
		{"car-store.marathon.mesos.", []string{"A 1.2.3.11"}},
	})
	// Without Marathon there is no health to go by: every running task stays.
	checkRecords(t, BuildIndex(snapshotOf(loadState(t)), cfg, nil), []recordCase{
		{"reviewbot.marathon.mesos.", []string{"A 1.2.3.12"}},
	})
}

func TestSerial(t *testing.T) {
	st := loadState(t)
	before := uint32(time.Now().Unix())
	ix1 := BuildIndex(snapshotOf(st), testConfig(), nil)
	after := uint32(time.Now().Unix())
	if ix1.Serial < before || ix1.Serial > after {
		t.Fatalf("first serial %d, want the current Unix time (%d..%d)", ix1.Serial, before, after)
	}

	// The same records from a state listed in another order keep the serial, even when it is
	// far from the current time.
	reordered := loadState(t)
	slices.Reverse(reordered.Frameworks)
	slices.Reverse(reordered.Agents)
	for i := range reordered.Frameworks {
		slices.Reverse(reordered.Frameworks[i].Tasks)
	}
	prev := *ix1
	prev.Serial = 12345
	ix2 := BuildIndex(snapshotOf(reordered), testConfig(), &prev)
	if ix2.Serial != 12345 {
		t.Errorf("same records: serial %d, want 12345 kept", ix2.Serial)
	}

	changed := loadState(t)
	changed.Agents[0].PID = "slave(1)@1.2.3.200:5051"
	// A previous serial behind the clock jumps to the clock.
	ix3 := BuildIndex(snapshotOf(changed), testConfig(), &prev)
	if now := uint32(time.Now().Unix()); ix3.Serial < before || ix3.Serial > now {
		t.Errorf("changed records after serial 12345: %d, want the current Unix time", ix3.Serial)
	}
	// One ahead of the clock moves by one.
	future := *ix1
	future.Serial = after + 100000
	if ix4 := BuildIndex(snapshotOf(changed), testConfig(), &future); ix4.Serial != future.Serial+1 {
		t.Errorf("changed records after serial %d: %d, want %d", future.Serial, ix4.Serial, future.Serial+1)
	}
	// A change of the listen addresses is a change of records too.
	cfg := testConfig()
	cfg.NSAddrs = append(cfg.NSAddrs, netip.MustParseAddr("::1"))
	if ix5 := BuildIndex(snapshotOf(st), cfg, &future); ix5.Serial != future.Serial+1 {
		t.Errorf("ns1 changed: serial %d, want %d", ix5.Serial, future.Serial+1)
	}
	// An index not made by BuildIndex has no digest to compare: the serial moves on.
	hand := NewRecordIndex("mesos.", after+200000, nil)
	if ix6 := BuildIndex(snapshotOf(st), testConfig(), hand); ix6.Serial != hand.Serial+1 {
		t.Errorf("after a hand-made index: serial %d, want %d", ix6.Serial, hand.Serial+1)
	}
}

func TestMasters(t *testing.T) {
	tests := []struct {
		describe string
		st       discovery.MesosState
		cases    []recordCase
	}{
		{"leader in the middle of the list", discovery.MesosState{
			Leader:  "10.0.0.2:5050",
			Masters: []discovery.Master{{IP: "10.0.0.1", Port: 5050}, {IP: "10.0.0.2", Port: 5050}, {Hostname: "m3.example.com", Port: 5050}},
		}, []recordCase{
			{"leader.mesos.", []string{"A 10.0.0.2"}},
			{"master.mesos.", []string{"A 10.0.0.1", "A 10.0.0.2", "A 10.0.0.3", "AAAA 2001:db8::3"}},
			{"master0.mesos.", []string{"A 10.0.0.1"}},
			{"master1.mesos.", []string{"A 10.0.0.2"}},
			{"master2.mesos.", []string{"A 10.0.0.3", "AAAA 2001:db8::3"}},
			{"master3.mesos.", nil},
			{"_leader._udp.mesos.", srv("leader.mesos.", 5050)},
		}},
		{"leader missing from the list gets the next number", discovery.MesosState{
			LeaderPID: "master@10.0.0.2:5050",
			Masters:   []discovery.Master{{IP: "10.0.0.1"}, {IP: "10.0.0.1"}, {IP: "10.0.0.4"}},
		}, []recordCase{
			{"leader.mesos.", []string{"A 10.0.0.2"}},
			{"master.mesos.", []string{"A 10.0.0.1", "A 10.0.0.2", "A 10.0.0.4"}},
			{"master0.mesos.", []string{"A 10.0.0.1"}},
			{"master1.mesos.", []string{"A 10.0.0.4"}},
			{"master2.mesos.", []string{"A 10.0.0.2"}},
		}},
		{"IPv6 leader", discovery.MesosState{Leader: "[2001:db8::9]:5050"}, []recordCase{
			{"leader.mesos.", []string{"AAAA 2001:db8::9"}},
			{"master0.mesos.", []string{"AAAA 2001:db8::9"}},
			{"_leader._tcp.mesos.", srv("leader.mesos.", 5050)},
		}},
		{"no leader", discovery.MesosState{}, []recordCase{
			{"leader.mesos.", nil}, {"master.mesos.", nil}, {"_leader._tcp.mesos.", nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.describe, func(t *testing.T) {
			checkRecords(t, BuildIndex(snapshotOf(&tt.st), testConfig(), nil), tt.cases)
		})
	}
}

// TestAgentsAndFrameworksByName: agents and frameworks known by host name resolve through
// ResolveHost; without it they get no records, and nothing blocks.
func TestAgentsAndFrameworksByName(t *testing.T) {
	st := &discovery.MesosState{
		Agents: []discovery.Agent{
			{ID: "a-S1", PID: "slave(1)@agent-9.example.com:5051"},
			{ID: "a-S2", Hostname: "localhost"},
			{ID: "a-S3", PID: "slave(1)@unknown.example.com:5051"},
		},
		Frameworks: []discovery.Framework{{
			Name: "Web Jobs", Hostname: "agent-9.example.com",
			Tasks: []discovery.MesosTask{
				{ID: "j1", Name: "job", SlaveID: "a-S1", State: "TASK_RUNNING", Ports: []int{8000}},
				{ID: "j2", Name: "job", SlaveID: "a-S2", State: "TASK_RUNNING"},
				{ID: "j3", Name: "job", SlaveID: "a-S3", State: "TASK_RUNNING", Ports: []int{8001}},
				{ID: "j4", Name: "job", SlaveID: "a-S4", State: "TASK_RUNNING"},
			},
		}},
	}
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	j3 := "job-" + hashString("j3") + "-s3.webjobs.slave.mesos."
	checkRecords(t, ix, []recordCase{
		{"webjobs.mesos.", []string{"A 10.9.9.9"}},
		{"_framework._tcp.webjobs.mesos.", nil},
		{"slave.mesos.", []string{"A 10.9.9.9", "A 127.0.0.1"}},
		{"_slave._tcp.mesos.", srv("slave.mesos.", 5051)},
		// j4 runs on an agent the state does not list: no records.
		{"job.webjobs.mesos.", []string{"A 10.9.9.9", "A 127.0.0.1"}},
		{"job-" + hashString("j4") + "-s4.webjobs.mesos.", nil},
		// j3's agent has no address: its names have none, its SRV records still name it.
		{j3, nil},
		{"_job._tcp.webjobs.mesos.", join(srv("job-"+hashString("j1")+"-s1.webjobs.slave.mesos.", 8000), srv(j3, 8001))},
	})

	noResolver := testConfig()
	noResolver.ResolveHost = nil
	checkRecords(t, BuildIndex(snapshotOf(st), noResolver, nil), []recordCase{
		{"webjobs.mesos.", nil}, {"slave.mesos.", nil}, {"job.webjobs.mesos.", nil},
	})
}

// TestInvalidNames: names that cannot be served (a label over 63 characters) are left out and
// counted; the rest of the task's names stay.
func TestInvalidNames(t *testing.T) {
	long := strings.Repeat("x", 63)
	st := &discovery.MesosState{
		Agents: []discovery.Agent{{ID: "a-S1", PID: "slave(1)@10.0.0.1:5051"}},
		Frameworks: []discovery.Framework{
			{Name: "fw", PID: "s@10.0.0.9:1", Tasks: []discovery.MesosTask{
				{ID: "t1", Name: long, SlaveID: "a-S1", State: "TASK_RUNNING", Ports: []int{9000}},
				{ID: "t2", Name: "$$$", SlaveID: "a-S1", State: "TASK_RUNNING"},
				{ID: "t3", Name: "ok", SlaveID: "a-S1", State: "TASK_RUNNING", Ports: []int{0, 70000, 9001},
					Discovery: &discovery.DiscoveryInfo{Name: "Has Space", Ports: []discovery.DiscoveryPort{
						{Number: 81, Protocol: "TCP", Name: "Web_UI"}, {Number: 82}, {Number: 0, Name: "zero"}}}},
			}},
			{Name: "%%%", PID: "s@10.0.0.8:1", Tasks: []discovery.MesosTask{{ID: "t4", Name: "lost", SlaveID: "a-S1", State: "TASK_RUNNING"}}},
		},
	}
	b := newBuilder(snapshotOf(st), testConfig().WithDefaults())
	b.build()
	ix := b.finish()
	hs := "hasspace-" + hashString("t3") + "-s1.fw.mesos."
	checkRecords(t, ix, []recordCase{
		{long + ".fw.mesos.", []string{"A 10.0.0.1"}},
		{"_" + long + "._tcp.fw.mesos.", nil},
		// A raw DiscoveryInfo name that is no DNS name has no legacy records; the protocol is
		// cleaned (TCP → tcp), the port name too, an empty protocol means both.
		{"hasspace.fw.mesos.", []string{"A 10.0.0.1"}},
		{"_hasspace._tcp.fw.mesos.", srv(hs, 81, 82)},
		{"_hasspace._udp.fw.mesos.", srv(hs, 82)},
		{"_web-ui._hasspace._tcp.fw.mesos.", srv(hs, 81)},
		{"_zero._hasspace._tcp.fw.mesos.", nil},
		{"_hasspace._tcp.fw.slave.mesos.", srv("hasspace-"+hashString("t3")+"-s1.fw.slave.mesos.", 9001)},
	})
	if b.invalid == 0 {
		t.Error("no invalid names counted for a 63-character task name")
	}
	for _, n := range ix.Names() {
		if !validFQDN(n) || strings.Contains(n, "lost") {
			t.Errorf("unexpected name %q", n)
		}
	}
}

func TestRecordConfig(t *testing.T) {
	d := RecordConfig{}.WithDefaults()
	if d.Domain != "mesos" || !slices.Equal(d.IPSources, []string{"netinfo", "mesos", "host"}) ||
		d.MarathonFramework != "marathon" || d.TTL != 60 || d.RefreshSeconds != 30 {
		t.Errorf("defaults: %+v", d)
	}
	if err := (RecordConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if err := (RecordConfig{Domain: "Example.COM.", IPSources: []string{"docker", "host"}}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	bad := RecordConfig{Domain: "bad_domain..x", IPSources: []string{"netinfo", "autoip"}, MarathonFramework: "%%"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{`"bad_domain..x"`, `"autoip"`, `"%%"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// BuildIndex ignores unknown sources rather than failing.
	cfg := testConfig()
	cfg.IPSources = []string{"autoip", "docker"}
	checkRecords(t, BuildIndex(snapshotOf(loadState(t)), cfg, nil), []recordCase{
		{"liquor-store.marathon.mesos.", []string{"A 10.3.0.1", "A 10.3.0.2"}},
		{"car-store.marathon.mesos.", nil},
	})
}

func TestEmptySnapshot(t *testing.T) {
	for _, snap := range []*discovery.Snapshot{nil, {}, snapshotOf(nil, loadApps(t)...)} {
		ix := BuildIndex(snap, testConfig(), nil)
		if got := rrs(ix, "ns1.mesos."); !slices.Equal(got, []string{"A 127.0.0.1"}) {
			t.Errorf("ns1.mesos.: %q", got)
		}
	}
	// Without a Mesos state, Marathon's tasks still have names.
	checkRecords(t, BuildIndex(snapshotOf(nil, loadApps(t)...), testConfig(), nil), []recordCase{
		{"web-shop.marathon.mesos.", []string{"A 1.2.3.11", "A 1.2.3.12", "A 10.9.9.9"}},
		{"car-store.marathon.mesos.", []string{"A 1.2.3.99"}},
	})
}

func TestHostsAndServices(t *testing.T) {
	ix := BuildIndex(snapshotOf(loadState(t)), testConfig(), nil)
	hosts := ix.Hosts("LIQUOR-Store.Marathon.mesos")
	want := []HostRecord{{"liquor-store.marathon.mesos.", "1.2.3.11"}, {"liquor-store.marathon.mesos.", "1.2.3.12"}}
	if !slices.Equal(hosts, want) {
		t.Errorf("Hosts: %+v, want %+v", hosts, want)
	}
	if got := ix.Hosts("toy-store.ipv6-framework.mesos."); !slices.Equal(got, []HostRecord{
		{"toy-store.ipv6-framework.mesos.", "12.0.1.2"}, {"toy-store.ipv6-framework.mesos.", "12.0.1.3"},
		{"toy-store.ipv6-framework.mesos.", "fd01:b::1:8000:2"}}) {
		t.Errorf("Hosts of a task on two networks, one dual-stack: %+v", got)
	}
	for _, name := range []string{"nothing.mesos", "_car-store._tcp.marathon.mesos", ""} {
		if got := ix.Hosts(name); got != nil {
			t.Errorf("Hosts(%q) = %+v, want none", name, got)
		}
	}
	svc := ix.Services("_car-store._TCP.marathon.mesos")
	wantSvc := []ServiceRecord{
		{"_car-store._TCP.marathon.mesos", "car-store-zinaz-0.marathon.slave.mesos.", "1.2.3.11", "31364"},
		{"_car-store._TCP.marathon.mesos", "car-store-zinaz-0.marathon.slave.mesos.", "1.2.3.11", "31365"},
	}
	if !slices.Equal(svc, wantSvc) {
		t.Errorf("Services: %+v, want %+v", svc, wantSvc)
	}
	if got := ix.Services("_toy-store._tcp.ipv6-framework.mesos."); len(got) != 2 || got[0].IP != "2001:db8::1" {
		t.Errorf("Services of an IPv6-only target: %+v", got)
	}
	if got := ix.Services("_leader._tcp.mesos."); len(got) != 1 || got[0].IP != "1.2.3.4" || got[0].Port != "5050" || got[0].Host != "leader.mesos." {
		t.Errorf("Services(_leader._tcp): %+v", got)
	}
	if got := ix.Services("car-store.marathon.mesos"); got != nil {
		t.Errorf("Services of an A-only name: %+v", got)
	}
	var nilIndex *RecordIndex
	if nilIndex.Hosts("x.mesos") != nil || nilIndex.Services("x.mesos") != nil || nilIndex.Len() != 0 || nilIndex.Lookup("x.mesos.") != nil {
		t.Error("a nil index is not empty")
	}
}

func TestAXFR(t *testing.T) {
	cfg := testConfig()
	cfg.IPSources = []string{"netinfo", "docker", "host"}
	cfg.TTL, cfg.RefreshSeconds = 30, 15
	ix := BuildIndex(snapshotOf(loadState(t)), cfg, nil)
	data, err := json.Marshal(ix.AXFR())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Domain, Mname, Rname string
		Serial               uint32
		TTL                  uint32
		RefreshSeconds       int
		Records              struct{ As, AAAAs, SRVs map[string][]string }
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("AXFR JSON %s: %v", data, err)
	}
	for _, key := range []string{`"Domain":"mesos"`, `"Mname":"ns1.mesos."`, `"Rname":"root.ns1.mesos."`, `"TTL":30`, `"RefreshSeconds":15`, `"Records":{"As":`, `"AAAAs":`, `"SRVs":`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Errorf("AXFR JSON lacks %s", key)
		}
	}
	if got.Serial != ix.Serial {
		t.Errorf("serial %d, want %d", got.Serial, ix.Serial)
	}
	// DNS.md's example.
	checks := []struct {
		set  map[string][]string
		name string
		want []string
	}{
		{got.Records.As, "liquor-store.marathon.mesos.", []string{"10.3.0.1", "10.3.0.2"}},
		{got.Records.AAAAs, "toy-store.ipv6-framework.mesos.", []string{"fd01:b::1:8000:2"}},
		// Every address of every network_info, as mesos-dns answers.
		{got.Records.As, "toy-store.ipv6-framework.mesos.", []string{"12.0.1.2", "12.0.1.3"}},
		{got.Records.As, "toy-store-go588-3.ipv6-framework.mesos.", []string{"12.0.1.2", "12.0.1.3"}},
		{got.Records.SRVs, "_liquor-store._tcp.marathon.mesos.", []string{
			"liquor-store-4dfjd-0.marathon.mesos.:443", "liquor-store-4dfjd-0.marathon.mesos.:80",
			"liquor-store-zasmd-1.marathon.mesos.:443", "liquor-store-zasmd-1.marathon.mesos.:80"}},
		{got.Records.SRVs, "_leader._tcp.mesos.", []string{"leader.mesos.:5050"}},
	}
	for _, c := range checks {
		v := slices.Clone(c.set[c.name])
		slices.Sort(v)
		if !slices.Equal(v, c.want) {
			t.Errorf("%s: %q, want %q", c.name, v, c.want)
		}
	}
	a, aaaa, s := ix.Counts()
	n := 0
	for _, v := range got.Records.As {
		n += len(v)
	}
	if n != a || len(got.Records.As)+len(got.Records.AAAAs)+len(got.Records.SRVs) < ix.Len() || aaaa == 0 || s == 0 {
		t.Errorf("AXFR has %d A records, the index %d (%d AAAA, %d SRV)", n, a, aaaa, s)
	}
}

func TestEnumerate(t *testing.T) {
	ix := BuildIndex(snapshotOf(loadState(t), loadApps(t)...), testConfig(), nil)
	data, err := json.Marshal(ix.Enumerate())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Frameworks []struct {
			Tasks []struct {
				Name    string `json:"name"`
				ID      string `json:"id"`
				Records []struct {
					Name  string `json:"name"`
					Host  string `json:"host"`
					Rtype string `json:"rtype"`
				} `json:"records"`
			} `json:"tasks"`
			Name string `json:"name"`
		} `json:"frameworks"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("enumerate JSON %s: %v", data, err)
	}
	var names []string
	tasks := map[string][]string{}
	for _, f := range got.Frameworks {
		names = append(names, f.Name)
		if f.Tasks == nil {
			t.Errorf("framework %q: tasks is null, want a list", f.Name)
		}
		for _, tk := range f.Tasks {
			key := f.Name + "/" + tk.Name + "/" + tk.ID
			for _, r := range tk.Records {
				tasks[key] = append(tasks[key], r.Rtype+" "+r.Name+" "+r.Host)
			}
		}
	}
	wantFrameworks := []string{"ipv6-framework", "chronos with a space AND MIXED CASE-2.0.1", "no pid", "marathon"}
	if !slices.Equal(names, wantFrameworks) {
		t.Errorf("frameworks %q, want %q", names, wantFrameworks)
	}
	car := tasks["marathon/car.store/car-store.43758382-562f-11e4-a088-c20493233aa5"]
	for _, want := range []string{
		"A car-store.marathon.mesos. 1.2.3.11",
		"A car-store-zinaz-0.marathon.slave.mesos. 1.2.3.11",
		"SRV _car-store._udp.marathon.mesos. car-store-zinaz-0.marathon.slave.mesos.:31365",
	} {
		if !slices.Contains(car, want) {
			t.Errorf("car-store task lacks %q: %q", want, car)
		}
	}
	if len(car) != 12 {
		t.Errorf("car-store task: %d records, want 12 (4 A, 8 SRV): %q", len(car), car)
	}
	web := tasks["marathon/web.shop/shop_web."+web1]
	if !slices.Contains(web, "A web-shop.marathon.mesos. 1.2.3.11") {
		t.Errorf("Marathon-only task: %q", web)
	}
	for key := range tasks {
		if strings.Contains(key, "poseidon") || strings.Contains(key, "chronos.49b91a9a") || strings.Contains(key, "/car-store.43758382") && !strings.HasPrefix(key, "marathon/car.store/") {
			t.Errorf("unexpected task %s", key)
		}
	}
	if n := len(got.Frameworks[3].Tasks); n != 10 {
		t.Errorf("marathon framework: %d tasks, want 10 (6 from the state, 4 from Marathon)", n)
	}
}

func TestWriteTable(t *testing.T) {
	ix := NewRecordIndex("mesos", 1, map[string]*RecordSet{
		"b.mesos.":       {A: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, AAAA: []netip.Addr{netip.MustParseAddr("fd00::2")}},
		"_a._tcp.mesos.": {SRV: []SRV{{Target: "b.mesos.", Port: 80, Priority: 1, Weight: 2}}},
	})
	var buf bytes.Buffer
	if err := ix.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"_a._tcp.mesos.  SRV   1 2 80 b.mesos.\n" +
		"b.mesos.        A     10.0.0.2\n" +
		"b.mesos.        AAAA  fd00::2\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
	if ix.Domain != "mesos." || ix.Mname != "ns1.mesos." {
		t.Errorf("NewRecordIndex: domain %q mname %q", ix.Domain, ix.Mname)
	}
}

// TestSharedSRVNames: tasks with and without DiscoveryInfo under one name, a task listed twice,
// a protocol other than tcp and udp, and a task whose SRV name meets the framework's.
func TestSharedSRVNames(t *testing.T) {
	disc := &discovery.DiscoveryInfo{Name: "mix", Ports: []discovery.DiscoveryPort{
		{Number: 80, Protocol: "tcp", Name: "web"}, {Number: 53, Protocol: "udp"}, {Number: 99, Protocol: "sctp"}}}
	st := &discovery.MesosState{
		Agents: []discovery.Agent{{ID: "a-S1", PID: "slave(1)@10.0.0.1:5051"}},
		Frameworks: []discovery.Framework{{Name: "fw", PID: "scheduler@10.0.0.9:4000", Tasks: []discovery.MesosTask{
			{ID: "m1", Name: "mix", SlaveID: "a-S1", State: "TASK_RUNNING", Ports: []int{9001}},
			{ID: "m1", Name: "mix", SlaveID: "a-S1", State: "TASK_RUNNING", Ports: []int{9001}},
			{ID: "m2", Name: "other", SlaveID: "a-S1", State: "TASK_RUNNING", Ports: []int{9002}, Discovery: disc},
			{ID: "m3", Name: "framework", SlaveID: "a-S1", State: "TASK_RUNNING", Ports: []int{7000}},
		}}},
	}
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	m1s := "mix-" + hashString("m1") + "-s1.fw.slave.mesos."
	m2s := "mix-" + hashString("m2") + "-s1.fw.slave.mesos."
	m2 := "mix-" + hashString("m2") + "-s1.fw.mesos."
	checkRecords(t, ix, []recordCase{
		{"mix.fw.mesos.", []string{"A 10.0.0.1"}},
		{"_mix._tcp.fw.slave.mesos.", join(srv(m1s, 9001), srv(m2s, 9002))},
		{"_mix._udp.fw.slave.mesos.", join(srv(m1s, 9001), srv(m2s, 9002))},
		{"_mix._tcp.fw.mesos.", join(srv(m1s, 9001), srv(m2, 80))},
		{"_mix._udp.fw.mesos.", join(srv(m1s, 9001), srv(m2, 53))},
		{"_mix._sctp.fw.mesos.", srv(m2, 99)},
		{"_web._mix._tcp.fw.mesos.", srv(m2, 80)},
		{"_framework._tcp.fw.mesos.", join(srv("fw.mesos.", 4000), srv("framework-"+hashString("m3")+"-s1.fw.slave.mesos.", 7000))},
		{"_framework._udp.fw.mesos.", srv("framework-"+hashString("m3")+"-s1.fw.slave.mesos.", 7000)},
	})
	// Enumerate lists the same records per task.
	var m2Records []string
	for _, f := range ix.Enumerate().Frameworks {
		for _, tk := range f.Tasks {
			if tk.ID == "m2" {
				for _, r := range tk.Records {
					m2Records = append(m2Records, r.Rtype+" "+r.Name+" "+r.Host)
				}
			}
		}
	}
	for _, want := range []string{"SRV _mix._udp.fw.mesos. " + m2 + ":53", "SRV _web._mix._tcp.fw.mesos. " + m2 + ":80",
		"SRV _mix._tcp.fw.slave.mesos. " + m2s + ":9002", "A " + m2 + " 10.0.0.1"} {
		if !slices.Contains(m2Records, want) {
			t.Errorf("enumerate m2 lacks %q: %q", want, m2Records)
		}
	}
	if slices.Contains(m2Records, "SRV _mix._tcp.fw.mesos. "+m2s+":9002") {
		t.Errorf("enumerate m2: resources.ports SRV in the framework despite DiscoveryInfo")
	}
}
