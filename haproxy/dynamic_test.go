package haproxy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/templates"
)

// TestApplierAddsServersAtRuntime: an app with health checks has one server line per task and
// no spare. A second task is added to the running HAProxy with `add server`, its checks
// started: no reload, and it takes traffic once its check passes. A later reload (a new app)
// keeps it, since the file was written with it, and a rolling deployment's extra tasks are
// added the same way.
func TestApplierAddsServersAtRuntime(t *testing.T) {
	cfg := applierConfig(t)
	cfg.Build.HealthCheck = true
	cfg.ReloadMinWait, cfg.ReloadMaxWait = 10*time.Millisecond, time.Second
	s := newApplierStack(t, cfg, false)
	svc := haproxytest.FreePort(t)
	one, two := echoBackend(t, "one"), echoBackend(t, "two")
	checked := func(a *discovery.App) {
		a.HealthChecks = []discovery.HealthCheck{{Protocol: "HTTP", Path: "/", IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: 2}}
	}
	// A task is named by its port, so that one leaving frees its slot.
	web := func(backendPorts ...int) *discovery.App {
		a := trafficApp("/web", svc, nil)
		for _, p := range backendPorts {
			a.Tasks = append(a.Tasks, task("web."+strconv.Itoa(p), host("127.0.0.1"), ports(p)))
		}
		checked(a)
		return a
	}
	s.start(web(one))
	name := "web_" + strconv.Itoa(svc)
	if n := strings.Count(s.onDisk(), "  server s"); n != 1 {
		t.Fatalf("%d server lines for one task, want 1 (no spare)", n)
	}
	reloads := s.reloadCount
	base := reloads()

	s.reg.replace(t, web(one, two))
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return s.a.Status().RuntimeApplies == 1 }, "a runtime apply")
	if got := reloads(); got != base {
		t.Fatalf("a new task reloaded HAProxy (%d → %d reloads)", base, got)
	}
	if got, want := s.serverAddr(name, "s2"), "127.0.0.1:"+strconv.Itoa(two); got != want {
		t.Fatalf("HAProxy's %s/s2 is %q, want %q", name, got, want)
	}
	if want := "  server s2 127.0.0.1:" + strconv.Itoa(two) + " check"; !strings.Contains(s.onDisk(), want) {
		t.Errorf("the file on disk lacks %q:\n%s", want, s.onDisk())
	}
	seen := func(id string) {
		t.Helper()
		haproxytest.WaitFor(t, 20*time.Second, func() bool {
			r, err := trySend(trafficReq{url: servicePortURL(svc)})
			return err == nil && r.id() == id
		}, "traffic reaching "+id)
	}
	seen("two")
	// Its checks run: HAProxy leaves them off on an added server until `enable health`.
	haproxytest.WaitFor(t, 10*time.Second, func() bool {
		row := s.stat()[name+"/s2"]
		return row.Status == "UP" && strings.HasPrefix(row.CheckStatus, "L7OK")
	}, name+"/s2 UP by a passing HTTP check")

	// A new app reloads HAProxy: the added server is in the file, so it stays.
	other := trafficApp("/other", haproxytest.FreePort(t), nil, one)
	s.reg.replace(t, web(one, two), other)
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.a.Status().Reloads >= 1 }, "a reload")
	seen("two")
	seen("one")

	// A rolling deployment: three new tasks beside the two, added at run time.
	three, four, five := echoBackend(t, "three"), echoBackend(t, "four"), echoBackend(t, "five")
	before := reloads()
	s.reg.replace(t, web(one, two, three, four, five), other)
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return s.serverAddr(name, "s5") != "" }, "s5 added")
	seen("five")
	if got := reloads(); got != before {
		t.Errorf("the deployment's new tasks reloaded HAProxy (%d → %d)", before, got)
	}

	// The old tasks go: their slots stay, in maintenance, without a reload…
	applies := s.a.Status().RuntimeApplies
	s.reg.replace(t, web(three, four, five), other)
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return s.a.Status().RuntimeApplies > applies }, "a runtime apply")
	if got := reloads(); got != before {
		t.Errorf("the old tasks leaving reloaded HAProxy (%d → %d)", before, got)
	}
	if row := s.stat()[name+"/s1"]; row.Status != "MAINT" {
		t.Errorf("%s/s1 after its task left: %q, want MAINT", name, row.Status)
	}
	// …until the next reload, which drops them: the file has a line per task again.
	s.reg.replace(t, web(three, four, five), other, trafficApp("/third", haproxytest.FreePort(t), nil, one))
	reloadsBefore := s.a.Status().Reloads
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.a.Status().Reloads > reloadsBefore }, "a reload")
	if n := strings.Count(backendSection(s.onDisk(), name), "  server s"); n != 3 {
		t.Errorf("%d server lines for 3 tasks after the reload, want 3:\n%s", n, backendSection(s.onDisk(), name))
	}
	seen("three")
}

// backendSection returns the lines of backend name in config, up to the next blank line.
func backendSection(config, name string) string {
	_, rest, ok := strings.Cut(config, "\nbackend "+name+"\n")
	if !ok {
		return ""
	}
	section, _, _ := strings.Cut(rest, "\n\n")
	return section
}

// TestDynamicServersOnlyWhereHAProxyTakesThem: HAProxy 2.6 refuses `add server` to a backend
// with per-server cookies (sticky apps) or a balance algorithm that is not dynamic; those keep
// spare slots, every other backend has one slot per task.
func TestDynamicServersOnlyWhereHAProxyTakesThem(t *testing.T) {
	tests := []struct {
		name    string
		labels  map[string]string
		env     map[string]string
		dynamic bool
	}{
		{name: "plain", dynamic: true},
		{name: "leastconn", labels: map[string]string{"HAPROXY_0_BALANCE": "leastconn"}, dynamic: true},
		{name: "sticky", labels: map[string]string{"HAPROXY_0_STICKY": "true", "HAPROXY_0_VHOST": "s.test"}},
		{name: "source", labels: map[string]string{"HAPROXY_0_BALANCE": "source"}},
		{name: "static-rr", labels: map[string]string{"HAPROXY_0_BALANCE": "static-rr"}},
		{name: "balance source from the defaults section", env: map[string]string{
			"HAPROXY_HEAD": "global\n  maxconn 100\ndefaults\n  mode http\n  balance source\n", "HAPROXY_BACKEND_HEAD": "\nbackend {backend}\n  mode {mode}\n"}},
		{name: "the backend's own balance wins over the defaults'", env: map[string]string{
			"HAPROXY_HEAD": "global\n  maxconn 100\ndefaults\n  mode http\n  balance source\n"}, dynamic: true},
		{name: "uri hashed consistently", env: map[string]string{
			"HAPROXY_HEAD": "global\n  maxconn 100\ndefaults\n  mode http\n  balance uri\n  hash-type consistent\n", "HAPROXY_BACKEND_HEAD": "\nbackend {backend}\n  mode {mode}\n"}, dynamic: true},
		{name: "a server template with a fixed cookie",
			labels: map[string]string{"HAPROXY_0_BACKEND_SERVER_OPTIONS": "  server {serverName} {host_ipv4}:{port} cookie c{otherOptions}\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.LabelTemplates = LabelTemplatesFull
			if tt.env != nil {
				cfg.Templates, cfg.Getenv = nil, func(k string) string { return tt.env[k] }
			}
			opts := []appOpt{withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withTasks(task("a", ports(31000)))}
			for k, v := range tt.labels {
				opts = append(opts, withLabel(k, v))
			}
			m := build(t, cfg, nil, app("/web", opts...))
			b := m.Backend("web_10000")
			if b == nil {
				t.Fatalf("no backend; excluded %v", excluded(m))
			}
			wantSlots := 1
			if !tt.dynamic {
				wantSlots = DefaultSlotStep
			}
			if b.DynamicServers != tt.dynamic || len(b.Slots) != wantSlots {
				t.Errorf("DynamicServers %v with %d slots, want %v with %d", b.DynamicServers, len(b.Slots), tt.dynamic, wantSlots)
			}
		})
	}
}

// TestAddServerArgsRefusesWhatTheCLIReadsDifferently: a server line is sent to the Runtime API
// word for word only when the CLI reads it as the configuration parser does.
func TestAddServerArgsRefusesWhatTheCLIReadsDifferently(t *testing.T) {
	slots := []Slot{{Name: "s1", Addr: "10.0.0.1", Port: 31000, State: StateReady}}
	for _, tt := range []struct {
		tmpl string
		ok   bool
	}{
		{"  server {serverName} {host_ipv4}:{port} weight 5{otherOptions}\n", true},
		{"  server {serverName} {host_ipv4}:{port} weight 5 ; shutdown sessions server x/s1{otherOptions}\n", false},
		{"  server {serverName} {host_ipv4}:{port} 'weight' 5{otherOptions}\n", false},
		{"  server {serverName} {host_ipv4}:{port}\\ weight 5{otherOptions}\n", false},
		{"  server {serverName} {host_ipv4}:{port}\n  server extra 10.0.0.9:1{otherOptions}\n", false},
		{"  server other {host_ipv4}:{port}{otherOptions}\n", false},
	} {
		tmpl, err := templates.Parse(templates.BackendServerOptions, tt.tmpl, templates.SourceEnv)
		if err != nil {
			t.Fatal(err)
		}
		args, err := (&serverRender{tmpl: tmpl}).addServerArgs(slots, 0)
		if (err == nil) != tt.ok {
			t.Errorf("%q: args %q, err %v; want ok %v", tt.tmpl, args, err, tt.ok)
		}
	}
}
