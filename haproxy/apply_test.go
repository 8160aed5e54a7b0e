package haproxy

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
	"github.com/lodestar-lb/lodestar/templates"
)

// applierConfig binds everything on free loopback ports in a short run directory.
func applierConfig(t *testing.T) ApplierConfig {
	t.Helper()
	dir := haproxytest.SocketDir(t)
	bind := func() string { return "127.0.0.1:" + strconv.Itoa(haproxytest.FreePort(t)) }
	if _, err := EnsureSelfSignedCert(filepath.Join(dir, "default.pem")); err != nil {
		t.Fatal(err)
	}
	log, _ := logtest.New()
	return ApplierConfig{
		Build: Config{Groups: []string{"*"}, Templates: templates.Builtin(), RunDir: dir,
			HTTPBind: bind(), HTTPSBind: bind(), StatsBind: bind(), AppIDBind: bind(), HardStopAfter: 30 * time.Second},
		Bin:    haproxytest.Bin(t),
		Logger: log,
	}
}

// manyApps makes n vhost apps with one task each, on service ports from base.
func manyApps(n, base int) []*discovery.App {
	apps := make([]*discovery.App, n)
	for i := range apps {
		apps[i] = app(fmt.Sprintf("/team/app%03d", i), withPorts(base+i),
			withLabel("HAPROXY_0_VHOST", fmt.Sprintf("app%03d.test", i)),
			withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
			withTasks(task(fmt.Sprintf("t%03d", i), host("127.0.0.1"), ports(40000+i))))
	}
	return apps
}

// TestCheckExcludesWhatHAProxyRejects: among 100 apps, one carries a bind option only HAProxy
// knows is wrong (in a FRONTEND_HEAD under --label-templates full: HAPROXY_0_BIND_OPTIONS and
// confined templates hold bind options to lodestar's allow-list). It is left out with
// HAProxy's own message, the other 99 stay, and it takes exactly two `haproxy -c` runs, not
// one per app as marathon-lb does.
func TestCheckExcludesWhatHAProxyRejects(t *testing.T) {
	cfg := applierConfig(t)
	cfg.Build.LabelTemplates = LabelTemplatesFull
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(100, 20000)
	apps[42].Labels["HAPROXY_0_FRONTEND_HEAD"] = "frontend {backend}\n  bind {bindAddr}:{servicePort} no-such-bind-keyword\n  mode {mode}\n"
	snap := snapshot(t, apps...)

	conf, excluded, validations, err := a.Check(context.Background(), snap)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if validations != 2 {
		t.Errorf("%d validations, want 2 (one that fails, one without the blamed app)", validations)
	}
	if len(excluded) != 1 || excluded[0].AppID != "/team/app042" {
		t.Fatalf("excluded %+v, want only /team/app042", excluded)
	}
	if !strings.Contains(excluded[0].Reason, "no-such-bind-keyword") || len(excluded[0].HAProxy) == 0 {
		t.Errorf("exclusion %+v should carry HAProxy's alert naming the keyword", excluded[0])
	}
	text := string(conf)
	if strings.Contains(text, "team_app042_20042") {
		t.Error("the rejected app is still in the configuration")
	}
	for _, i := range []int{0, 41, 43, 99} {
		if name := fmt.Sprintf("backend team_app%03d_%d", i, 20000+i); !strings.Contains(text, name) {
			t.Errorf("configuration lacks %q", name)
		}
	}
}

// TestCheckValidConfigTakesOneValidation: a configuration HAProxy accepts is checked once.
func TestCheckValidConfigTakesOneValidation(t *testing.T) {
	a, err := NewApplier(applierConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, excluded, validations, err := a.Check(context.Background(), snapshot(t, manyApps(5, 21000)...))
	if err != nil || validations != 1 || len(excluded) != 0 {
		t.Fatalf("Check = %d validations, excluded %v, err %v; want 1, none, nil", validations, excluded, err)
	}
}

// TestApplierRuntimeThenCoalescedReload drives a real HAProxy: a task change goes through the
// Runtime API with no reload, and a burst of structural changes inside the coalescing window
// becomes a single reload.
func TestApplierRuntimeThenCoalescedReload(t *testing.T) {
	cfg := applierConfig(t)
	cfg.ReloadMinWait, cfg.ReloadMaxWait = time.Second, 10*time.Second
	s := newApplierStack(t, cfg, false)
	a, reg := s.a, s.reg
	apps := manyApps(3, 22000)
	s.start(apps...)
	reloads := s.reloadCount
	base := reloads()

	// A task moves: runtime only.
	apps[1] = app(apps[1].ID, withPorts(22001), withLabel("HAPROXY_0_VHOST", "app001.test"), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
		withTasks(task("t001-b", host("127.0.0.1"), ports(41001))))
	reg.replace(t, apps...)
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return a.Status().RuntimeApplies == 1 }, "a runtime apply")
	if got := reloads(); got != base {
		t.Fatalf("a task change reloaded HAProxy (%d → %d reloads)", base, got)
	}
	if !strings.Contains(string(a.Config()), "127.0.0.1:41001") {
		t.Error("the configuration on record does not have the moved task")
	}

	// Three new apps in quick succession: one reload.
	for i := range 3 {
		apps = append(apps, manyApps(1, 22100+i)[0])
		apps[len(apps)-1].ID = fmt.Sprintf("/burst/app%d", i)
		reg.replace(t, apps...)
	}
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return a.Status().Reloads >= 1 }, "a reload")
	// Every app of the burst is in the one reload.
	for i := range 3 {
		if name := fmt.Sprintf("backend burst_app%d_%d", i, 22100+i); !strings.Contains(string(a.Config()), name) {
			t.Errorf("configuration after the reload lacks %q", name)
		}
	}
	st := a.Status()
	if st.Reloads != 1 || reloads() != base+1 {
		t.Errorf("%d reloads recorded, HAProxy counted %d; want exactly one for the burst", st.Reloads, reloads()-base)
	}
	if st.LastApply == nil || st.LastApply.Kind != "reload" || !strings.Contains(st.LastApply.Reason, "burst") {
		t.Errorf("last apply %+v, want a reload naming a burst backend", st.LastApply)
	}
}

// reloadCount is HAProxy's own count of reloads (the master's `show proc`).
func (s *applierStack) reloadCount() int {
	s.t.Helper()
	n, err := s.proc.Master().ReloadCount(context.Background())
	if err != nil {
		s.t.Fatalf("show proc: %v", err)
	}
	return n
}

// serverAddr returns the address and port `show servers state` reports for backend/server.
func (s *applierStack) serverAddr(backend, server string) string {
	s.t.Helper()
	out, err := NewRuntimeClient(filepath.Join(s.a.cfg.Build.RunDir, "admin.sock")).ShowServersState(context.Background())
	if err != nil {
		s.t.Fatalf("show servers state: %v", err)
	}
	for _, line := range strings.Split(out, "\n") {
		// be_id be_name srv_id srv_name srv_addr … srv_port is the 19th field.
		f := strings.Fields(line)
		if len(f) > 18 && f[1] == backend && f[3] == server {
			return f[4] + ":" + f[18]
		}
	}
	return ""
}

// TestApplierRuntimeWhileReloadPending: while a structural change (a new app) waits out a
// long --reload-min-wait, a task of another, existing app moves. The move reaches the running
// HAProxy through the Runtime API while the reload is still pending, does not restart the
// structural quiet period, and the reload that follows carries it instead of reverting it.
// The window runs on a fake clock: the test decides when time passes, never sleeps.
func TestApplierRuntimeWhileReloadPending(t *testing.T) {
	cfg := applierConfig(t)
	cfg.ReloadMinWait, cfg.ReloadMaxWait = 10*time.Second, time.Minute
	s := newApplierStack(t, cfg, false)
	clk := newFakeClock()
	s.a.clock = clk
	a, reg := s.a, s.reg
	apps := manyApps(2, 23000)
	s.start(apps...)
	reloads := s.reloadCount
	base := reloads()
	if got := s.serverAddr("team_app001_23001", "s1"); got != "127.0.0.1:40001" {
		t.Fatalf("team_app001_23001/s1 at %q before the move, want 127.0.0.1:40001", got)
	}

	// A new app: structural, it waits for the min wait.
	late := manyApps(1, 23100)[0]
	late.ID = "/late/app"
	apps = append(apps, late)
	reg.replace(t, apps...)
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return len(clk.Armed()) == 1 }, "the reload window to open")
	clk.Advance(6 * time.Second)

	// app001's task moves: an existing slot, applied at once although the reload is pending.
	apps[1] = app(apps[1].ID, withPorts(23001), withLabel("HAPROXY_0_VHOST", "app001.test"), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
		withTasks(task("t001-b", host("127.0.0.1"), ports(41001))))
	reg.replace(t, apps...)
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return s.serverAddr("team_app001_23001", "s1") == "127.0.0.1:41001" },
		"the moved task in the running HAProxy")
	if got, st := reloads(), a.Status(); got != base || st.Reloads != 0 {
		t.Fatalf("the move went live through a reload (%d → %d reloads, %d recorded), not while the reload was pending", base, got, st.Reloads)
	}
	if s.serverAddr("late_app_23100", "s1") != "" {
		t.Fatal("the new app is in the running HAProxy before its reload")
	}

	// The min wait since the structural change passes: the move did not restart it.
	clk.Advance(4 * time.Second)
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return a.Status().Reloads == 1 }, "the reload, min wait after the new app")
	if got := reloads(); got != base+1 {
		t.Errorf("HAProxy counted %d reloads, want one", got-base)
	}
	if got := s.serverAddr("team_app001_23001", "s1"); got != "127.0.0.1:41001" {
		t.Errorf("after the reload team_app001_23001/s1 is at %q: the move was reverted", got)
	}
	if got := s.serverAddr("late_app_23100", "s1"); got != "127.0.0.1:40000" {
		t.Errorf("after the reload late_app_23100/s1 is at %q, want 127.0.0.1:40000", got)
	}
	for _, want := range []string{"backend late_app_23100", "127.0.0.1:41001"} {
		if !strings.Contains(string(a.Config()), want) || !strings.Contains(s.onDisk(), want) {
			t.Errorf("the configuration after the reload (on record or on disk) lacks %q", want)
		}
	}
}
