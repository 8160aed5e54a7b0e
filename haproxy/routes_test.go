package haproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// TestAppRoutesAndLabels: the running model answers how an app is routed and what its labels
// parsed to, with the basic-auth password left out.
func TestAppRoutesAndLabels(t *testing.T) {
	cfg := applierConfig(t)
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.AppRoutes("/shop/web") != nil || a.AppLabels("/shop/web") != nil {
		t.Fatal("routes or labels before any configuration")
	}
	reg := newTestRegistry(t)
	reg.replace(t,
		app("/shop/web", withPorts(21000, 21001),
			withLabel("HAPROXY_0_VHOST", "web.example.com,www.example.com"),
			withLabel("HAPROXY_0_PATH", "/shop"),
			withLabel("HAPROXY_0_AUTH", "realm:alice:$5$secret-hash"),
			withLabel("HAPROXY_1_MODE", "tcp"),
			withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"), withLabel("HAPROXY_1_BIND_ADDR", "127.0.0.1"),
			withTasks(task("t1", host("127.0.0.1"), ports(41000, 41001)), task("t2", host("127.0.0.2"), ports(42000, 42001)))),
		app("/other", withPorts(21002), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1")))
	sub := reg.Subscribe()
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, sub) }()
	t.Cleanup(func() { cancel(); <-done })
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return a.AppRoutes("/shop/web") != nil }, "routes of /shop/web")

	routes := a.AppRoutes("/shop/web")
	if len(routes) != 2 {
		t.Fatalf("routes = %+v, want 2 (one per port)", routes)
	}
	r0, r1 := routes[0], routes[1]
	if r0.PortIndex != 0 || r0.ServicePort != 21000 || r0.Mode != "http" || r0.Backend != "shop_web_21000" ||
		strings.Join(r0.VHosts, ",") != "web.example.com,www.example.com" || r0.Path != "/shop" || r0.Frontend == "" {
		t.Errorf("port 0 route = %+v", r0)
	}
	if r1.PortIndex != 1 || r1.ServicePort != 21001 || r1.Mode != "tcp" || len(r1.VHosts) != 0 {
		t.Errorf("port 1 route = %+v", r1)
	}
	var addrs []string
	for _, s := range r0.Servers {
		addrs = append(addrs, s.Address()+"="+s.State.String())
	}
	if got := strings.Join(addrs, " "); got != "127.0.0.1:41000=ready 127.0.0.2:42000=ready" {
		t.Errorf("port 0 servers = %s", got)
	}
	if a.AppRoutes("/nope") != nil {
		t.Error("routes for an unknown app")
	}

	v := a.AppLabels("/shop/web")
	if v == nil || len(v.Ports) != 2 || v.Ports[0].AuthUser != "alice" || v.Ports[0].AuthRealm != "realm" || v.Ports[1].Mode != "tcp" {
		t.Fatalf("labels = %+v", v)
	}
	js, _ := json.Marshal(v)
	if strings.Contains(string(js), "secret-hash") {
		t.Errorf("labels view leaks the password: %s", js)
	}
	if a.AppLabels("/nope") != nil {
		t.Error("labels for an unknown app")
	}
}

// AppBackends lists, in one pass, what AppRoutes gives app by app: deployment group members
// included.
func TestAppBackendsEqualsAppRoutes(t *testing.T) {
	member := func(id, started string) *discovery.App {
		return portApp(id, 27100, withLabel("HAPROXY_0_VHOST", "bg.example.test"),
			withLabel(LabelDeploymentGroup, "bg"), withLabel(LabelDeploymentAltPort, "27101"),
			withLabel(LabelDeploymentStartedAt, started))
	}
	apps := []*discovery.App{member("/bg-blue", "2024-01-01T00:00:00"), member("/bg-green", "2024-02-01T00:00:00"),
		portApp("/a", 27200), portApp("/b", 27300)}
	reg := newTestRegistry(t)
	snap := reg.replace(t, apps...)
	a := &Applier{}
	if a.AppBackends() != nil {
		t.Fatal("backends before any configuration")
	}
	a.running = Build(snap, testConfig(), nil)
	if len(a.running.Excluded) != 0 {
		t.Fatalf("excluded %v", excluded(a.running))
	}
	var want, got []string
	for _, ap := range apps {
		for _, r := range a.AppRoutes(ap.ID) {
			want = append(want, fmt.Sprintf("%s %d %s", ap.ID, r.ServicePort, r.Backend))
		}
	}
	for _, b := range a.AppBackends() {
		if snap.App(b.AppID) != nil { // a group's own name is no app of the registry
			got = append(got, fmt.Sprintf("%s %d %s", b.AppID, b.ServicePort, b.Backend))
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) || len(want) != 4 {
		t.Errorf("AppBackends\n got %q\nwant %q (4 routes)", got, want)
	}
}
