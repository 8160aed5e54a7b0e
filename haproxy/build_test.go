package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/templates"
)

// Builders in the style of traefik's marathon provider tests:
// app("/x", withLabel(k, v), withPorts(10000), withTasks(task("t1", host("10.0.0.1"), ports(31000)))).

type appOpt func(*discovery.App)

func app(id string, opts ...appOpt) *discovery.App {
	a := &discovery.App{ID: id, Network: discovery.NetworkHost, Instances: 1, Version: "2024-01-01T00:00:00.000Z"}
	for _, o := range opts {
		o(a)
	}
	for _, t := range a.Tasks {
		t.AppID = a.ID
	}
	return a
}

func withLabel(k, v string) appOpt {
	return func(a *discovery.App) {
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		a.Labels[k] = v
	}
}

// withPorts gives the app host-networking ports with these service ports.
func withPorts(servicePorts ...int) appOpt {
	return func(a *discovery.App) {
		for _, p := range servicePorts {
			a.Ports = append(a.Ports, discovery.Port{ServicePort: p, Protocol: "tcp"})
		}
	}
}

// withContainerPorts gives the app IP-per-task ports without service ports.
func withContainerPorts(containerPorts ...int) appOpt {
	return func(a *discovery.App) {
		a.Network = discovery.NetworkContainer
		for _, p := range containerPorts {
			a.Ports = append(a.Ports, discovery.Port{ContainerPort: p, Protocol: "tcp"})
		}
	}
}

func withHealthCheck(protocol, path string, portIndex int) appOpt {
	return func(a *discovery.App) {
		a.HealthChecks = append(a.HealthChecks, discovery.HealthCheck{Protocol: protocol, Path: path, PortIndex: portIndex,
			IntervalSeconds: 3, TimeoutSeconds: 2, MaxConsecutiveFailures: 2, GracePeriodSeconds: 10})
	}
}

func withInstances(n int) appOpt { return func(a *discovery.App) { a.Instances = n } }

func withTasks(ts ...*discovery.Task) appOpt {
	return func(a *discovery.App) { a.Tasks = append(a.Tasks, ts...) }
}

type taskOpt func(*discovery.Task)

// task builds a running task on 10.0.0.1 with no ports; options override.
func task(id string, opts ...taskOpt) *discovery.Task {
	t := &discovery.Task{ID: id, Host: "10.0.0.1", State: discovery.StateRunning}
	for _, o := range opts {
		o(t)
	}
	return t
}

func host(h string) taskOpt      { return func(t *discovery.Task) { t.Host = h } }
func ports(p ...int) taskOpt     { return func(t *discovery.Task) { t.HostPorts = p } }
func taskIP(ip string) taskOpt   { return func(t *discovery.Task) { t.IPAddresses = []string{ip} } }
func taskState(s string) taskOpt { return func(t *discovery.Task) { t.State = s } }
func health(alive ...bool) taskOpt {
	return func(t *discovery.Task) {
		for _, a := range alive {
			t.Health = append(t.Health, discovery.HealthResult{Alive: a})
		}
	}
}

// snapshot runs a real registry over apps and returns its snapshot, so that task endpoints and
// eligibility are derived by discovery itself.
func snapshot(t testing.TB, apps ...*discovery.App) *discovery.Snapshot {
	t.Helper()
	reg := newTestRegistry(t)
	return reg.replace(t, apps...)
}

type testRegistry struct {
	*discovery.Registry
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg := discovery.NewRegistry()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = reg.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &testRegistry{reg}
}

func (r *testRegistry) send(t testing.TB, u discovery.Update) *discovery.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Send(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := r.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	return r.Snapshot()
}

func (r *testRegistry) replace(t testing.TB, apps ...*discovery.App) *discovery.Snapshot {
	t.Helper()
	return r.send(t, discovery.ReplaceApps{Apps: apps})
}

func testConfig() Config {
	return Config{Templates: templates.Builtin()}
}

func build(t testing.TB, cfg Config, prev *Model, apps ...*discovery.App) *Model {
	t.Helper()
	m := Build(snapshot(t, apps...), cfg, prev)
	if m.Err != nil {
		t.Fatalf("Build: %v", m.Err)
	}
	return m
}

func render(t testing.TB, m *Model) *Rendered {
	t.Helper()
	r, err := Render(m)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return r
}

func backendNames(m *Model) []string {
	var out []string
	for _, b := range m.Backends {
		out = append(out, b.Name)
	}
	return out
}

func excluded(m *Model) []string {
	var out []string
	for _, e := range m.Excluded {
		out = append(out, fmt.Sprintf("%s#%d: %s", e.AppID, e.Port, e.Reason))
	}
	return out
}

// TestBuildOneApp: one app with a vhost and two tasks becomes a backend with the tasks in its
// first slots: no spare when HAProxy can add servers to it at run time, spares after them in
// steps of SlotStep when it cannot (StaticSlots here; sticky apps, hashing balance).
func TestBuildOneApp(t *testing.T) {
	for _, static := range []bool{false, true} {
		cfg := testConfig()
		cfg.StaticSlots = static
		m := build(t, cfg, nil,
			app("/shop/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_VHOST", "shop.example.com"),
				withTasks(task("t1", ports(31000)), task("t2", host("10.0.0.2"), ports(31001)))))
		r := render(t, m)
		if !slices.Equal(backendNames(m), []string{"shop_web_10000"}) {
			t.Fatalf("backends %v, excluded %v", backendNames(m), excluded(m))
		}
		want := []string{"  server s1 10.0.0.1:31000\n", "  server s2 10.0.0.2:31001\n"}
		if static {
			want = append(want, "  server s10 127.0.0.1:1 disabled\n")
		}
		for _, l := range want {
			if !strings.Contains(string(r.Config), l) {
				t.Errorf("static %v: no line %q", static, l)
			}
		}
		if got, want := len(m.Backends[0].Slots), map[bool]int{false: 2, true: 10}[static]; got != want {
			t.Errorf("static %v: %d server lines, want %d", static, got, want)
		}
		if m.Backends[0].DynamicServers == static {
			t.Errorf("static %v: DynamicServers %v", static, m.Backends[0].DynamicServers)
		}
	}
}

func TestGroupsAndStrictMode(t *testing.T) {
	apps := []*discovery.App{
		app("/ext", withPorts(10000), withLabel("HAPROXY_GROUP", "external")),
		app("/int", withPorts(10001), withLabel("HAPROXY_GROUP", "internal")),
		app("/both", withPorts(10002), withLabel("HAPROXY_GROUP", "internal,external")),
		app("/none", withPorts(10003)),
		app("/split", withPorts(10004, 10005), withLabel("HAPROXY_GROUP", "internal"), withLabel("HAPROXY_0_GROUP", "external")),
		app("/off", withPorts(10006, 10007), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_1_ENABLED", "false")),
		app("/on", withPorts(10008, 10009), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_ENABLED", "true")),
	}
	tests := []struct {
		name   string
		groups []string
		strict bool
		want   []string
	}{
		{"default group is external", nil, false,
			[]string{"both_10002", "ext_10000", "off_10006", "on_10008", "on_10009", "split_10004"}},
		{"internal", []string{"internal"}, false,
			[]string{"both_10002", "int_10001", "split_10005"}},
		{"several groups", []string{"internal", "external"}, false,
			[]string{"both_10002", "ext_10000", "int_10001", "off_10006", "on_10008", "on_10009", "split_10004", "split_10005"}},
		{"star serves every app, grouped or not", []string{"*"}, false,
			[]string{"both_10002", "ext_10000", "int_10001", "none_10003", "off_10006", "on_10008", "on_10009", "split_10004", "split_10005"}},
		{"strict mode: only ENABLED=true", nil, true, []string{"on_10008"}},
		{"strict mode with star", []string{"*"}, true, []string{"on_10008"}},
		{"a group nobody has", []string{"edge"}, false, nil},
	}
	snap := snapshot(t, apps...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Groups, cfg.StrictMode = tt.groups, tt.strict
			m := Build(snap, cfg, nil)
			if got := backendNames(m); !slices.Equal(got, tt.want) {
				t.Errorf("backends\n got %v\nwant %v", got, tt.want)
			}
			if len(m.Excluded) != 0 {
				t.Errorf("excluded %v", excluded(m))
			}
		})
	}
}

func slotOf(t *testing.T, b *Backend, taskID string) int {
	t.Helper()
	for i, s := range b.Slots {
		if s.TaskID == taskID {
			return i
		}
	}
	t.Fatalf("task %s has no slot in %s", taskID, b.Name)
	return -1
}

// TestSlotsStableAcrossBuilds: a task keeps its slot while others come and go; without
// dynamic servers, capacity grows by SlotStep and keeps a spare.
func TestSlotsStableAcrossBuilds(t *testing.T) {
	cfg := testConfig()
	cfg.StaticSlots = true
	cfg.SlotStep = 4
	reg := newTestRegistry(t)
	web := func(tasks ...*discovery.Task) *discovery.App {
		return app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withTasks(tasks...))
	}
	tk := func(id string, port int) *discovery.Task { return task(id, ports(port)) }

	m1 := Build(reg.replace(t, web(tk("c", 3), tk("a", 1), tk("b", 2))), cfg, nil)
	b1 := m1.Backend("web_10000")
	if len(b1.Slots) != 4 {
		t.Fatalf("capacity %d, want 4", len(b1.Slots))
	}
	for i, id := range []string{"a", "b", "c", ""} {
		if b1.Slots[i].TaskID != id || b1.Slots[i].Name != fmt.Sprintf("s%d", i+1) {
			t.Fatalf("slot %d = %+v, want task %q", i, b1.Slots[i], id)
		}
	}
	// b goes away, d and e come: d takes b's slot, e the spare; a and c stay; capacity grows to
	// keep a spare.
	m2 := Build(reg.replace(t, web(tk("a", 1), tk("c", 3), tk("d", 4), tk("e", 5))), cfg, m1)
	b2 := m2.Backend("web_10000")
	if len(b2.Slots) != 8 {
		t.Fatalf("capacity %d, want 8", len(b2.Slots))
	}
	for id, want := range map[string]int{"a": 0, "c": 2, "d": 1, "e": 3} {
		if got := slotOf(t, b2, id); got != want {
			t.Errorf("task %s in slot %d, want %d", id, got, want)
		}
	}
	if b2.ID != b1.ID {
		t.Errorf("backend id changed %d → %d", b1.ID, b2.ID)
	}
	// Scaling down to one task shrinks capacity only when half of it is no longer needed.
	m3 := Build(reg.replace(t, web(tk("c", 3))), cfg, m2)
	b3 := m3.Backend("web_10000")
	if len(b3.Slots) != 4 || slotOf(t, b3, "c") != 2 {
		t.Errorf("after scale-down: %d slots, c in slot %d; want 4 and 2", len(b3.Slots), slotOf(t, b3, "c"))
	}
	for i, s := range b3.Slots {
		if s.TaskID == "" && (s.Addr != spareAddr || s.Port != sparePort || s.State != StateMaint) {
			t.Errorf("spare slot %d = %+v", i, s)
		}
	}
	// The same snapshot again: the model shares every backend with the previous one.
	m4 := Build(reg.Snapshot(), cfg, m3)
	if m4.Backend("web_10000") != b3 {
		t.Error("an unchanged backend is not shared with the previous model")
	}
	if p := MakePlan(m3, m4); !p.Empty() {
		t.Errorf("plan for an unchanged snapshot: %+v", p)
	}
}

// TestTaskStates: which tasks get a slot and in which state.
func TestTaskStates(t *testing.T) {
	a := app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withHealthCheck("HTTP", "/", 0),
		withTasks(
			task("healthy", ports(1), health(true)),
			task("no-results-yet", ports(2)),
			task("failing", ports(3), health(false)),
			task("killing", ports(4), taskState(discovery.StateKilling)),
			task("staging", ports(5), taskState(discovery.StateStaging)),
			task("no-ports"),
		))
	snap := snapshot(t, a)
	for _, respect := range []bool{true, false} {
		cfg := testConfig()
		cfg.HealthCheck = respect
		b := Build(snap, cfg, nil).Backend("web_10000")
		got := map[string]ServerState{}
		for _, s := range b.Slots {
			if s.TaskID != "" {
				got[s.TaskID] = s.State
			}
		}
		want := map[string]ServerState{"healthy": StateReady, "no-results-yet": StateReady, "killing": StateDrain}
		if !respect {
			want["failing"] = StateReady
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("HealthCheck=%v: slots %v, want %v", respect, got, want)
		}
	}
}

// TestZeroDowntimeDeployment: the apps of a deployment group share one backend under the old
// app's service port; for each healthy new task one old task drains.
func TestZeroDowntimeDeployment(t *testing.T) {
	zdd := func(id, colour, started string, target int, tasks ...*discovery.Task) *discovery.App {
		return app(id, withPorts(10000), withHealthCheck("HTTP", "/", 0), withInstances(len(tasks)),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_DEPLOYMENT_GROUP", "shop"),
			withLabel("HAPROXY_DEPLOYMENT_COLOUR", colour),
			withLabel("HAPROXY_DEPLOYMENT_STARTED_AT", started),
			withLabel("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", strconv.Itoa(target)),
			withLabel("HAPROXY_DEPLOYMENT_ALT_PORT", "10001"),
			withLabel("HAPROXY_0_PORT", "10000"),
			withTasks(tasks...))
	}
	blue := zdd("/shop-blue", "blue", "2024-01-01T10:00:00", 3,
		task("blue.1", ports(1), health(true)), task("blue.2", ports(2), health(true)), task("blue.3", ports(3), health(true)))
	tests := []struct {
		name    string
		green   []*discovery.Task
		drained []string
	}{
		{"no new task healthy yet", []*discovery.Task{task("green.1", ports(11)), task("green.2", ports(12), health(false))}, nil},
		{"one healthy new task drains one old", []*discovery.Task{task("green.1", ports(11), health(true))}, []string{"blue.1"}},
		{"three healthy drain three", []*discovery.Task{task("green.1", ports(11), health(true)),
			task("green.2", ports(12), health(true)), task("green.3", ports(13), health(true))},
			[]string{"blue.1", "blue.2", "blue.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			green := zdd("/shop-green", "green", "2024-01-02T10:00:00", 3, tt.green...)
			m := build(t, testConfig(), nil, blue, green)
			if got := backendNames(m); !slices.Equal(got, []string{"shop_10000"}) {
				t.Fatalf("backends %v, excluded %v", got, excluded(m))
			}
			b := m.Backend("shop_10000")
			if b.Owner != "/shop" {
				t.Errorf("owner %q", b.Owner)
			}
			var drained []string
			for _, s := range b.Slots {
				if s.State == StateDrain {
					drained = append(drained, s.TaskID)
				}
			}
			if !slices.Equal(drained, tt.drained) {
				t.Errorf("drained %v, want %v", drained, tt.drained)
			}
		})
	}
}

func TestIPPerTaskServicePorts(t *testing.T) {
	cfg := testConfig()
	cfg.MinServPortIPPerTask, cfg.MaxServPortIPPerTask = 10050, 10052
	ippt := func(id string) *discovery.App {
		return app(id, withContainerPorts(8080), withLabel("HAPROXY_GROUP", "external"),
			withTasks(task(id[1:]+".1", taskIP("10.9.0.1"))))
	}
	taken := app("/taken", withPorts(10050), withLabel("HAPROXY_GROUP", "external"))
	reg := newTestRegistry(t)
	m1 := Build(reg.replace(t, ippt("/b"), ippt("/c"), taken), cfg, nil)
	if got := backendNames(m1); !slices.Equal(got, []string{"b_10051", "c_10052", "taken_10050"}) {
		t.Fatalf("backends %v", got)
	}
	// A new app sorting first does not move the others; the range is then full.
	m2 := Build(reg.replace(t, ippt("/a"), ippt("/b"), ippt("/c"), taken), cfg, m1)
	if got := backendNames(m2); !slices.Equal(got, []string{"b_10051", "c_10052", "taken_10050"}) {
		t.Errorf("backends %v", got)
	}
	want := "no service port: every port of --min-serv-port-ip-per-task..--max-serv-port-ip-per-task (10050-10052) is taken"
	if len(m2.Excluded) != 1 || m2.Excluded[0].AppID != "/a" || m2.Excluded[0].Reason != want {
		t.Errorf("excluded %v", excluded(m2))
	}
	if ep := m2.Backend("b_10051").Slots[0]; ep.Addr != "10.9.0.1" || ep.Port != 8080 {
		t.Errorf("IP-per-task server %+v", ep)
	}
}

func TestPortConflicts(t *testing.T) {
	m := build(t, testConfig(), nil,
		app("/a", withPorts(10000), withLabel("HAPROXY_GROUP", "external")),
		app("/b", withPorts(10000), withLabel("HAPROXY_GROUP", "external")),
		app("/c", withPorts(10001), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_BIND_ADDR", "10.0.0.1")),
		app("/d", withPorts(10001), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_BIND_ADDR", "10.0.0.2")),
		app("/e", withPorts(9090), withLabel("HAPROXY_GROUP", "external")),
		app("/f", withPorts(10002), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_PORT", "80")),
		app("/g", withPorts(0), withLabel("HAPROXY_GROUP", "external")),
	)
	if got := backendNames(m); !slices.Equal(got, []string{"a_10000", "c_10001", "d_10001"}) {
		t.Errorf("backends %v", got)
	}
	want := []string{
		"/b#0: port 10000 is taken by /a (neither is older: the first app id keeps it)",
		"/e#0: port 9090 is taken by the stats frontend (*:9090)",
		"/f#0: port 80 is taken by the shared HTTP frontend (*:80)",
		"/g#0: no service port (set servicePort or HAPROXY_0_PORT)",
	}
	if got := excluded(m); !slices.Equal(got, want) {
		t.Errorf("excluded\n got %q\nwant %q", got, want)
	}
}

func TestExcludeByConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Exclude = map[string]string{"/a": "haproxy -c: line 42: bad"}
	m := build(t, cfg, nil,
		app("/a", withPorts(10000), withLabel("HAPROXY_GROUP", "external")),
		app("/b", withPorts(10001), withLabel("HAPROXY_GROUP", "external")))
	if got := backendNames(m); !slices.Equal(got, []string{"b_10001"}) {
		t.Errorf("backends %v", got)
	}
	if got := excluded(m); !slices.Equal(got, []string{"/a#-1: haproxy -c: line 42: bad"}) {
		t.Errorf("excluded %v", got)
	}
}

// TestOwnerMapping: every line of an app's sections, including its lines in the shared
// frontends, maps to the app; HEAD and the shared frontends' heads map to nobody.
func TestOwnerMapping(t *testing.T) {
	m := build(t, testConfig(), nil,
		app("/shop/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_VHOST", "shop.example.com"), withLabel("HAPROXY_0_AUTH", "r:u:p"),
			withTasks(task("t1", ports(31000)))),
		app("/db", withPorts(15432), withLabel("HAPROXY_GROUP", "external"), withTasks(task("t2", ports(31001)))))
	r := render(t, m)
	lines := strings.Split(strings.TrimSuffix(string(r.Config), "\n"), "\n")
	if len(lines) != len(r.Owner) {
		t.Fatalf("%d lines, %d owners", len(lines), len(r.Owner))
	}
	sectionOwner := map[string]string{
		"userlist user_shop_web_10000": "/shop/web",
		"frontend shop_web_10000":      "/shop/web",
		"backend shop_web_10000":       "/shop/web",
		"frontend db_15432":            "/db",
		"backend db_15432":             "/db",
	}
	section, checked := "", 0
	for i, l := range lines {
		n := i + 1
		if l == "" {
			continue
		}
		if !strings.HasPrefix(l, " ") {
			section = l
		}
		want, perApp := sectionOwner[section]
		switch {
		case perApp:
		case strings.HasPrefix(section, "frontend marathon_") &&
			(strings.HasPrefix(l, "  acl ") || strings.HasPrefix(l, "  use_backend ") || strings.HasPrefix(l, "  http-request auth")):
			want = "/shop/web"
			if strings.Contains(l, "db_15432") {
				want = "/db"
			}
		default:
			want = ""
		}
		if got := r.OwnerOf(n); got != want {
			t.Errorf("line %d %q (in %q): owner %q, want %q", n, l, section, got, want)
		}
		checked++
	}
	if checked < 60 {
		t.Errorf("checked %d lines", checked)
	}
	if r.OwnerOf(0) != "" || r.OwnerOf(len(lines)+1) != "" {
		t.Error("OwnerOf outside the file")
	}
}

// TestTemplateLookupOrder: label, then file, then environment, then built-in.
func TestTemplateLookupOrder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "HAPROXY_BACKEND_HEAD"), []byte("\nbackend {backend}\n  mode {mode}\n  # from file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HAPROXY_BACKEND_HEAD":  "\nbackend {backend}\n  # from env\n",
		"HAPROXY_FRONTEND_HEAD": "\nfrontend {backend}\r\n  bind {bindAddr}:{servicePort}\r\n  mode {mode}\r\n  # from env\r\n",
	}
	cfg := Config{TemplatesDir: dir, Getenv: func(k string) string { return env[k] }}
	m := build(t, cfg, nil,
		app("/label", withPorts(10000), withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_BACKEND_HEAD", "\r\nbackend {backend}\r\n  mode {mode}\r\n  # from label\r\n")),
		app("/plain", withPorts(10001), withLabel("HAPROXY_GROUP", "external")))
	for name, want := range map[string]string{"label_10000": "# from label", "plain_10001": "# from file"} {
		if h := m.Backend(name).Head; !strings.Contains(h, want) || strings.Contains(h, "\r") {
			t.Errorf("%s head %q, want %q", name, h, want)
		}
	}
	if f := m.Frontend("plain_10001").Text; !strings.Contains(f, "# from env") || strings.Contains(f, "\r") {
		t.Errorf("frontend %q", f)
	}
	if strings.Contains(m.Backend("plain_10001").Head, "balance") {
		t.Errorf("the file's BACKEND_HEAD (no balance line) is not used: %q", m.Backend("plain_10001").Head)
	}
}

// TestBrokenTemplates: a per-app template that fails leaves out the apps using it; a broken
// global template fails the build.
func TestBrokenTemplates(t *testing.T) {
	apps := []*discovery.App{
		app("/a", withPorts(10000), withLabel("HAPROXY_GROUP", "external")),
		app("/b", withPorts(10001), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_BACKEND_HEAD", "backend {backend}\n  mode {mode}\n")),
	}
	env := map[string]string{"HAPROXY_BACKEND_HEAD": "backend {backend}\n  balance {healthCheckPath}\n"}
	cfg := Config{Getenv: func(k string) string { return env[k] }}
	m := build(t, cfg, nil, apps...)
	want := []string{"/a#0: template HAPROXY_BACKEND_HEAD (environment HAPROXY_BACKEND_HEAD): {healthCheckPath} has no value here"}
	if got := excluded(m); !slices.Equal(got, want) {
		t.Errorf("excluded\n got %q\nwant %q", got, want)
	}
	if got := backendNames(m); !slices.Equal(got, []string{"b_10001"}) {
		t.Errorf("backends %v", got)
	}

	env = map[string]string{"HAPROXY_HTTPS_FRONTEND_HEAD": "frontend x\n  bind {httpsBind} ssl {certs}\n"}
	m = Build(snapshot(t, apps...), cfg, nil)
	if m.Err == nil || !strings.Contains(m.Err.Error(), "unknown field {certs}") {
		t.Errorf("Err = %v", m.Err)
	}
	if _, err := Render(m); err == nil {
		t.Error("Render of a failed model succeeded")
	}

	env = map[string]string{"HAPROXY_HEAD": "global\n  daemon\n  stats socket /x level admin\n"}
	m = Build(snapshot(t, apps...), cfg, nil)
	if m.Err == nil || !strings.Contains(m.Err.Error(), `remove "daemon"`) {
		t.Errorf("Err = %v", m.Err)
	}
}

func TestHeadInfo(t *testing.T) {
	m := build(t, Config{RunDir: "/var/run/x/", Templates: templates.Builtin()}, nil)
	want := HeadInfo{StatsSockets: []string{"/var/run/x/admin.sock"}, ServerStateFile: "/var/run/x/server-state"}
	if !reflect.DeepEqual(m.HeadInfo, want) {
		t.Errorf("HeadInfo %+v, want %+v", m.HeadInfo, want)
	}
}

// TestBackendWeightOrder: shared frontend rules go by HAPROXY_{n}_BACKEND_WEIGHT, highest
// first; a path makes the default weight 1, so paths come before the bare vhost.
func TestBackendWeightOrder(t *testing.T) {
	vh := func(id string, port int, opts ...appOpt) *discovery.App {
		base := []appOpt{withPorts(port), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_VHOST", "x.example.com")}
		return app(id, append(base, opts...)...)
	}
	m := build(t, testConfig(), nil,
		vh("/a-site", 10000),
		vh("/b-api", 10001, withLabel("HAPROXY_0_PATH", "/api")),
		vh("/c-admin", 10002, withLabel("HAPROXY_0_PATH", "/admin"), withLabel("HAPROXY_0_BACKEND_WEIGHT", "10")),
		vh("/d-fallback", 10003, withLabel("HAPROXY_0_PATH", "/"), withLabel("HAPROXY_0_BACKEND_WEIGHT", "-1")))
	for _, f := range []*SharedFrontend{m.HTTP, m.HTTPS} {
		var order []string
		for _, r := range f.Rules {
			if firstWord(r.Text) == "use_backend" {
				order = append(order, strings.Fields(r.Text)[1])
			}
		}
		want := []string{"c-admin_10002", "b-api_10001", "a-site_10000", "d-fallback_10003"}
		if !slices.Equal(order, want) {
			t.Errorf("%s: use_backend order %v, want %v", f.Name, order, want)
		}
	}
}

func TestDontBindHTTPHTTPSAndNoAppID(t *testing.T) {
	cfg := testConfig()
	cfg.DontBindHTTPHTTPS, cfg.NoAppIDFrontend = true, true
	m := build(t, cfg, nil,
		app("/web", withPorts(80), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_VHOST", "web.example.com")))
	if m.HTTP != nil || m.HTTPS != nil || m.AppID != nil {
		t.Errorf("shared frontends %v %v %v", m.HTTP, m.HTTPS, m.AppID)
	}
	if got := backendNames(m); !slices.Equal(got, []string{"web_80"}) {
		t.Errorf("backends %v, excluded %v", got, excluded(m))
	}
	r := render(t, m)
	if strings.Contains(string(r.Config), "marathon_") {
		t.Error("a shared frontend is rendered")
	}
	checkConfig(t, r, DefaultRunDir)
}

// TestIncrementalBuildMatchesFullBuild: reusing what unchanged apps rendered to last time is
// only a shortcut: the result is what building without it gives.
func TestIncrementalBuildMatchesFullBuild(t *testing.T) {
	apps, rules := scenarioApps()
	reg := newTestRegistry(t)
	reg.replace(t, apps...)
	snap1 := reg.send(t, discovery.ReplaceRules{Rules: rules})
	cfg := goldenConfig()
	m1 := Build(snap1, cfg, nil)

	// One app changes a label, one task of another goes away, one app is new.
	changed := slices.Clone(apps)
	for i, a := range changed {
		switch a.ID {
		case "/blog":
			b := *a
			b.Labels = map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "blog.example.org"}
			changed[i] = &b
		case "/shop/web":
			b := *a
			b.Tasks = b.Tasks[1:]
			changed[i] = &b
		}
	}
	changed = append(changed, app("/new", withPorts(10070), withLabel("HAPROXY_GROUP", "external"), withTasks(task("new.1", ports(31090)))))
	snap2 := reg.replace(t, changed...)

	incremental := Build(snap2, cfg, m1)
	noMemo := *m1
	noMemo.memo, noMemo.labels = nil, nil
	full := Build(snap2, cfg, &noMemo)
	ri, rf := render(t, incremental), render(t, full)
	if !bytes.Equal(ri.Config, rf.Config) {
		t.Errorf("incremental build differs:\n%s", lineDiff(string(rf.Config), string(ri.Config)))
	}
	if !slices.Equal(ri.Owner, rf.Owner) || !reflect.DeepEqual(incremental.Excluded, full.Excluded) ||
		!reflect.DeepEqual(incremental.Warnings, full.Warnings) {
		t.Error("owners, exclusions or warnings differ")
	}
	if incremental.Backend("db_15432") != m1.Backend("db_15432") {
		t.Error("an unchanged app's backend is not shared")
	}
	if p := MakePlan(m1, incremental); !p.Reload || !strings.HasPrefix(p.Reason, "backend blog_10001 changed") {
		t.Errorf("plan %+v", p)
	}
}

// TestFrontendLogsOnlyWithTheAccessLog: an app's own frontend gets HAProxy's request log
// format only when the access log is on (FrontendLogs); with it off, `option httplog` in
// 10,000 frontends cost HAProxy 29 MB for lines thrown away. A FRONTEND_HEAD that chooses its
// own format keeps it.
func TestFrontendLogsOnlyWithTheAccessLog(t *testing.T) {
	apps := []*discovery.App{
		app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_MODE", "http")),
		app("/db", withPorts(10001), withLabel("HAPROXY_GROUP", "external")),
		app("/own", withPorts(10002), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_MODE", "http"),
			withLabel("HAPROXY_0_FRONTEND_HEAD", "\nfrontend {backend}\n  bind {bindAddr}:{servicePort}\n  mode {mode}\n  option httplog clf\n")),
	}
	for _, on := range []bool{false, true} {
		cfg := testConfig()
		cfg.FrontendLogs = on
		m := build(t, cfg, nil, apps...)
		text := func(name string) string {
			for _, f := range m.Frontends {
				if f.Name == name {
					return f.Text
				}
			}
			t.Fatalf("no frontend %s; excluded %v", name, excluded(m))
			return ""
		}
		for name, want := range map[string]string{"web_10000": "  option httplog\n", "db_10001": "  option tcplog\n"} {
			if got := strings.Contains(text(name), want); got != on {
				t.Errorf("FrontendLogs %v: %s has %q: %v\n%s", on, name, want, got, text(name))
			}
		}
		if n := strings.Count(text("own_10002"), "option httplog"); n != 1 {
			t.Errorf("FrontendLogs %v: the app's own log format appears %d times:\n%s", on, n, text("own_10002"))
		}
	}
}
