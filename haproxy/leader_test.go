package haproxy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// leaderSnapshot is a snapshot with one app, the Mesos leader mesos and the Marathon leader
// marathon (as /v2/leader names it, and resolved to addr); "" leaves a leader unknown.
func leaderSnapshot(t testing.TB, mesos, marathon, addr string) *discovery.Snapshot {
	t.Helper()
	reg := newTestRegistry(t)
	reg.replace(t, app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withTasks(task("a", ports(31000)))))
	if mesos != "" {
		reg.send(t, discovery.ReplaceMesosState{State: &discovery.MesosState{Leader: mesos}})
	}
	if marathon != "" {
		reg.send(t, discovery.SetMarathonLeader{Leader: marathon, Addr: addr})
	}
	return reg.Snapshot()
}

func leaderConfig(proxies ...LeaderProxy) Config {
	cfg := goldenConfig()
	cfg.LeaderProxies = proxies
	return cfg
}

var (
	mesosProxy    = LeaderProxy{Name: LeaderMesos, Bind: "127.0.0.1:15050"}
	marathonProxy = LeaderProxy{Name: LeaderMarathon, Bind: "*:18080"}
)

// TestLeaderProxyGolden renders both leader proxies, one with a leader and one without, next
// to an app: the lines are lodestar's own (owned by the proxy, not an app), and haproxy -c
// accepts them.
func TestLeaderProxyGolden(t *testing.T) {
	snap := leaderSnapshot(t, "10.0.0.11:5050", "", "")
	m := Build(snap, leaderConfig(mesosProxy, marathonProxy), nil)
	if m.Err != nil {
		t.Fatal(m.Err)
	}
	r := render(t, m)
	golden(t, "leader_proxy.cfg", r.Config)
	golden(t, "leader_proxy.report", report(m, r))
	checkConfig(t, r, goldenRunDir)

	for _, name := range []string{LeaderMesos, LeaderMarathon} {
		section := "backend " + LeaderProxyName(name)
		lines := strings.Split(string(r.Config), "\n")
		i := slices.Index(lines, section)
		if i < 0 {
			t.Fatalf("no %q in the configuration", section)
		}
		for j := i; j < len(lines) && lines[j] != ""; j++ {
			if j > i && !strings.HasPrefix(lines[j], " ") {
				break
			}
			if got := r.OwnerOf(j + 1); got != LeaderProxyOwner(name) {
				t.Errorf("line %d %q is owned by %q, want %q", j+1, lines[j], got, LeaderProxyOwner(name))
			}
		}
	}
	if s := m.Backend(LeaderProxyName(LeaderMesos)).Slots; len(s) != 1 || s[0].Addr != "10.0.0.11" || s[0].Port != 5050 || s[0].State != StateReady {
		t.Errorf("mesos leader slot %+v, want 10.0.0.11:5050 ready", s)
	}
	if s := m.Backend(LeaderProxyName(LeaderMarathon)).Slots; len(s) != 1 || !s[0].Spare() || s[0].State != StateMaint {
		t.Errorf("marathon leader slot with no leader %+v, want a spare in maintenance", s)
	}
}

// TestLeaderProxyPlan: a leader change, loss or return is runtime commands on the one slot,
// never a reload; adding or removing a proxy is a reload.
func TestLeaderProxyPlan(t *testing.T) {
	type state struct{ mesos, marathon, addr string }
	tests := []struct {
		name          string
		before, after state
		proxiesBefore []LeaderProxy
		reload        bool
		reason        string
		cmds          []string
	}{
		{name: "same leaders", before: state{"10.0.0.11:5050", "m1:8080", "10.0.0.21:8080"}, after: state{"10.0.0.11:5050", "m1:8080", "10.0.0.21:8080"}},
		{name: "mesos leader changes",
			before: state{mesos: "10.0.0.11:5050"}, after: state{mesos: "10.0.0.12:5050"},
			reason: "servers of leader_mesos changed",
			cmds:   []string{"set server leader_mesos/s1 addr 10.0.0.12 port 5050"}},
		{name: "marathon leader changes, by its resolved address",
			before: state{marathon: "m1:8080", addr: "10.0.0.21:8080"}, after: state{marathon: "m2:8080", addr: "10.0.0.22:8080"},
			reason: "servers of leader_marathon changed",
			cmds:   []string{"set server leader_marathon/s1 addr 10.0.0.22 port 8080"}},
		{name: "first leader known",
			before: state{}, after: state{mesos: "10.0.0.11:5050"},
			reason: "servers of leader_mesos changed",
			cmds:   []string{"set server leader_mesos/s1 addr 10.0.0.11 port 5050", "set server leader_mesos/s1 state ready"}},
		{name: "leader lost",
			before: state{marathon: "m1:8080", addr: "10.0.0.21:8080"}, after: state{marathon: ""},
			reason: "servers of leader_marathon changed",
			cmds:   []string{"set server leader_marathon/s1 state maint", "set server leader_marathon/s1 addr 127.0.0.1 port 1"}},
		{name: "both change",
			before: state{"10.0.0.11:5050", "m1:8080", "10.0.0.21:8080"}, after: state{"10.0.0.12:5050", "m2:8080", "10.0.0.22:8080"},
			reason: "servers of 2 backends changed",
			cmds:   []string{"set server leader_marathon/s1 addr 10.0.0.22 port 8080", "set server leader_mesos/s1 addr 10.0.0.12 port 5050"}},
		{name: "leader name that did not resolve needs a reload",
			before: state{marathon: "m1:8080", addr: "10.0.0.21:8080"}, after: state{marathon: "m2.example.com:8080"},
			reload: true, reason: "server leader_marathon/s1 address m2.example.com is a host name"},
		{name: "proxy added",
			proxiesBefore: []LeaderProxy{mesosProxy},
			before:        state{mesos: "10.0.0.11:5050"}, after: state{mesos: "10.0.0.11:5050"},
			reload: true, reason: "backend leader_marathon added (and 1 more changes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxies := tt.proxiesBefore
			if proxies == nil {
				proxies = []LeaderProxy{mesosProxy, marathonProxy}
			}
			old := Build(leaderSnapshot(t, tt.before.mesos, tt.before.marathon, tt.before.addr), leaderConfig(proxies...), nil)
			next := Build(leaderSnapshot(t, tt.after.mesos, tt.after.marathon, tt.after.addr), leaderConfig(mesosProxy, marathonProxy), old)
			if old.Err != nil || next.Err != nil {
				t.Fatal(old.Err, next.Err)
			}
			p := MakePlan(old, next)
			if p.Reload != tt.reload || p.Reason != tt.reason {
				t.Errorf("plan reload=%v reason %q, want reload=%v %q", p.Reload, p.Reason, tt.reload, tt.reason)
			}
			if !tt.reload && !slices.Equal(cmdStrings(p.Runtime), tt.cmds) {
				t.Errorf("runtime commands %q, want %q", cmdStrings(p.Runtime), tt.cmds)
			}
			if !tt.reload {
				checkRuntimeReachesNew(t, old, next, p)
			}
			if next.Backend("web_10000") != old.Backend("web_10000") {
				t.Error("the app's backend is a new value though the app did not change")
			}
		})
	}
}

// TestLeaderProxyRemovedIsAReload: dropping a leader proxy is structural.
func TestLeaderProxyRemovedIsAReload(t *testing.T) {
	snap := leaderSnapshot(t, "10.0.0.11:5050", "", "")
	old := Build(snap, leaderConfig(mesosProxy, marathonProxy), nil)
	next := Build(snap, leaderConfig(mesosProxy), old)
	if p := MakePlan(old, next); !p.Reload || p.Reason != "backend leader_marathon removed (and 1 more changes)" {
		t.Errorf("plan %+v, want a reload for the removed proxy", p)
	}
	if next.Backend(LeaderProxyName(LeaderMesos)) != old.Backend(LeaderProxyName(LeaderMesos)) {
		t.Error("the unchanged mesos proxy's backend is a new value")
	}
}

// TestLeaderProxyExclusions: bad proxies are left out with a reason and never stop the rest;
// lodestar's own ports win over an app's.
func TestLeaderProxyExclusions(t *testing.T) {
	snap := snapshot(t, app("/clash", withPorts(15050), withLabel("HAPROXY_GROUP", "external")),
		app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external")))
	cfg := leaderConfig(
		LeaderProxy{Name: "zookeeper", Bind: "127.0.0.1:12181"},
		mesosProxy,
		LeaderProxy{Name: LeaderMesos, Bind: "127.0.0.1:15051"},
		LeaderProxy{Name: LeaderMarathon, Bind: "127.0.0.1:9090"},
	)
	cfg.StatsBind = "127.0.0.1:9090"
	m := Build(snap, cfg, nil)
	if m.Err != nil {
		t.Fatal(m.Err)
	}
	want := []string{
		`(leader-proxy marathon) port -1: port 9090 is taken by the stats frontend (127.0.0.1:9090)`,
		`(leader-proxy mesos) port -1: given more than once`,
		`(leader-proxy zookeeper) port -1: leader proxy "zookeeper": unknown name: want mesos, marathon or zk`,
		`/clash port 0: port 15050 is taken by the leader proxy mesos (127.0.0.1:15050)`,
	}
	var got []string
	for _, e := range m.Excluded {
		got = append(got, e.AppID+" port "+strconv.Itoa(e.Port)+": "+e.Reason)
	}
	if !slices.Equal(got, want) {
		t.Errorf("excluded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := backendNames(m); !slices.Equal(got, []string{"leader_mesos", "web_10000"}) {
		t.Errorf("backends %v, want the mesos proxy and /web", got)
	}

	// The Applier excludes an owner HAProxy blamed; a leader proxy's owner works the same.
	cfg = leaderConfig(mesosProxy)
	cfg.Exclude = map[string]string{LeaderProxyOwner(LeaderMesos): "HAProxy rejected its configuration"}
	m = Build(snap, cfg, nil)
	if m.Backend(LeaderProxyName(LeaderMesos)) != nil || m.Frontend(LeaderProxyName(LeaderMesos)) != nil {
		t.Error("an excluded leader proxy is still in the model")
	}
	if len(m.Excluded) != 1 || m.Excluded[0].AppID != LeaderProxyOwner(LeaderMesos) {
		t.Errorf("excluded %+v, want the mesos proxy", m.Excluded)
	}
}

// TestLeaderProxyValidate covers the messages a user sees for a bad --leader-proxy.
func TestLeaderProxyValidate(t *testing.T) {
	tests := []struct {
		p    LeaderProxy
		want string
	}{
		{LeaderProxy{Name: LeaderMesos, Bind: "127.0.0.1:15050"}, ""},
		{LeaderProxy{Name: LeaderMarathon, Bind: "*:18080"}, ""},
		{LeaderProxy{Name: LeaderMarathon, Bind: ":18080"}, ""},
		{LeaderProxy{Name: LeaderMesos, Bind: "[::1]:15050"}, ""},
		{LeaderProxy{Name: "chronos", Bind: "127.0.0.1:1"}, `unknown name: want mesos, marathon or zk`},
		{LeaderProxy{Name: LeaderZooKeeper, Bind: "127.0.0.1:12181", Members: []string{"10.0.0.1:2181", "zk2.example.com:2181"}}, ""},
		{LeaderProxy{Name: LeaderZooKeeper, Bind: "127.0.0.1:12181"}, `leader proxy zk: no ZooKeeper members to forward to`},
		{LeaderProxy{Name: LeaderZooKeeper, Bind: "127.0.0.1:12181", Members: []string{"10.0.0.1"}}, `member "10.0.0.1": address 10.0.0.1: missing port in address`},
		{LeaderProxy{Name: LeaderZooKeeper, Bind: "127.0.0.1:12181", Members: []string{"10.0.0.1:0"}}, `member "10.0.0.1:0": port "0" is not a number from 1 to 65535`},
		// Hostile: a member that would add a line to the configuration, or options to its server line.
		{LeaderProxy{Name: LeaderZooKeeper, Bind: "127.0.0.1:12181", Members: []string{"10.0.0.1:2181\n  server evil 10.6.6.6:2181"}}, `member "10.0.0.1:2181\n  server evil 10.6.6.6:2181"`},
		{LeaderProxy{Name: LeaderZooKeeper, Bind: "127.0.0.1:12181", Members: []string{"zk1 backup:2181"}}, `want an IP address or an RFC 1123 host name`},
		{LeaderProxy{Name: LeaderMesos, Bind: "127.0.0.1:15050", Members: []string{"10.0.0.1:5050"}}, `only the zk proxy has members; this one follows the leader`},
		{LeaderProxy{Name: LeaderMesos, Bind: "127.0.0.1"}, `bind "127.0.0.1": address 127.0.0.1: missing port in address`},
		{LeaderProxy{Name: LeaderMesos, Bind: "127.0.0.1:0"}, `port "0" is not a number from 1 to 65535`},
		{LeaderProxy{Name: LeaderMesos, Bind: "127.0.0.1:http"}, `port "http" is not a number from 1 to 65535`},
		{LeaderProxy{Name: LeaderMesos, Bind: "master.example.com:15050"}, `"master.example.com" is not an IP address`},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.p, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want one with %q", tt.p, err, tt.want)
		}
	}
}

var zkProxy = LeaderProxy{Name: LeaderZooKeeper, Bind: "127.0.0.1:12181", Members: []string{"10.0.0.1:2181", "10.0.0.2:2181", "zk3.example.com:2182"}}

// TestZooKeeperProxy: the zk proxy is a TCP frontend whose backend holds every member of the
// ensemble with a health check, whatever leader the snapshot names; its lines are its own and
// haproxy -c accepts them; the same members again are the same backend, and no reload.
func TestZooKeeperProxy(t *testing.T) {
	snap := leaderSnapshot(t, "10.0.0.11:5050", "", "")
	m := Build(snap, leaderConfig(mesosProxy, zkProxy), nil)
	if m.Err != nil {
		t.Fatal(m.Err)
	}
	if len(m.Excluded) != 0 {
		t.Fatalf("excluded %+v", m.Excluded)
	}
	r := render(t, m)
	cfg := string(r.Config)
	for _, want := range []string{
		"\nfrontend leader_zk\n  bind 127.0.0.1:12181\n  mode tcp\n  no option idle-close-on-response\n  use_backend leader_zk\n",
		"\nbackend leader_zk\n  id 903\n  mode tcp\n  balance roundrobin\n" +
			"  server s1 10.0.0.1:2181 check\n  server s2 10.0.0.2:2181 check\n  server s3 zk3.example.com:2182 check\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("configuration lacks %q:\n%s", want, cfg)
		}
	}
	checkConfig(t, r, goldenRunDir)
	lines := strings.Split(cfg, "\n")
	i := slices.Index(lines, "backend leader_zk")
	for j := i; j < len(lines) && lines[j] != ""; j++ {
		if got := r.OwnerOf(j + 1); got != LeaderProxyOwner(LeaderZooKeeper) {
			t.Errorf("line %d %q is owned by %q, want %q", j+1, lines[j], got, LeaderProxyOwner(LeaderZooKeeper))
		}
	}

	// A Mesos leader change moves the mesos proxy only; the zk backend is the same value.
	next := Build(leaderSnapshot(t, "10.0.0.12:5050", "", ""), leaderConfig(mesosProxy, zkProxy), m)
	if p := MakePlan(m, next); p.Reload {
		t.Errorf("plan %+v, want no reload", p)
	}
	if next.Backend(LeaderProxyName(LeaderZooKeeper)) != m.Backend(LeaderProxyName(LeaderZooKeeper)) {
		t.Error("the zk proxy's backend is a new value though its members did not change")
	}
	// A member more is a new server line: a reload.
	more := zkProxy
	more.Members = append(slices.Clone(zkProxy.Members), "10.0.0.4:2181")
	if p := MakePlan(next, Build(snap, leaderConfig(mesosProxy, more), next)); !p.Reload {
		t.Errorf("plan %+v after a member was added, want a reload", p)
	}
}
