package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// applierStack is an Applier over a test registry and, when it has one, the HAProxy it drives;
// both run until the test ends.
type applierStack struct {
	t    *testing.T
	a    *Applier
	proc *Process
	reg  *testRegistry
	ctx  context.Context
	done chan error
	runs int
}

// newApplierStack makes the Applier (with a Process unless noProcess) without running either.
func newApplierStack(t *testing.T, cfg ApplierConfig, noProcess bool) *applierStack {
	t.Helper()
	s := &applierStack{t: t, reg: newTestRegistry(t), done: make(chan error, 2)}
	log, buf := logtest.New()
	cfg.Logger = log
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.Tail(6000))
		}
	})
	if !noProcess {
		var err error
		s.proc, err = NewProcess(ProcessConfig{Bin: haproxytest.Bin(t), ConfigPath: filepath.Join(cfg.Build.RunDir, "haproxy.cfg"),
			RunDir: cfg.Build.RunDir, Logger: cfg.Logger, StopTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
	}
	a, err := NewApplier(cfg, s.proc)
	if err != nil {
		t.Fatal(err)
	}
	s.a = a
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx = ctx
	t.Cleanup(func() {
		cancel()
		for range s.runs {
			if err := <-s.done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
	return s
}

// run runs the Applier on the registry's snapshots.
func (s *applierStack) run() {
	sub := s.reg.Subscribe()
	s.t.Cleanup(sub.Close)
	s.runs++
	go func() { s.done <- s.a.Run(s.ctx, sub) }()
}

// runProcess runs HAProxy once the first configuration is written.
func (s *applierStack) runProcess() {
	s.runs++
	go func() {
		select {
		case <-s.a.Written():
		case <-s.ctx.Done():
			s.done <- nil
			return
		}
		s.done <- s.proc.Run(s.ctx)
	}()
}

// start runs both and waits for HAProxy to run the first configuration.
func (s *applierStack) start(apps ...*discovery.App) {
	s.t.Helper()
	s.reg.replace(s.t, apps...)
	s.run()
	s.runProcess()
	haproxytest.WaitFor(s.t, 20*time.Second, func() bool { return s.a.Applied() == nil }, "the first configuration applied and HAProxy started")
}

// stat returns HAProxy's `show stat` rows by "proxy/server".
func (s *applierStack) stat() map[string]StatRow {
	s.t.Helper()
	rows, err := NewRuntimeClient(filepath.Join(s.a.cfg.Build.RunDir, "admin.sock")).ShowStat(context.Background())
	if err != nil {
		s.t.Fatalf("show stat: %v", err)
	}
	out := make(map[string]StatRow, len(rows))
	for _, r := range rows {
		out[r.Proxy+"/"+r.Server] = r
	}
	return out
}

// onDisk returns the installed configuration file.
func (s *applierStack) onDisk() string {
	s.t.Helper()
	b, err := os.ReadFile(s.a.ConfigPath())
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// vhostApp is a vhost app with one task, its own frontend on 127.0.0.1:servicePort.
func vhostApp(id string, servicePort int, tasks ...*discovery.Task) *discovery.App {
	return app(id, withPorts(servicePort), withLabel("HAPROXY_0_VHOST", strings.ReplaceAll(strings.Trim(id, "/"), "/", "-")+".test"),
		withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"), withTasks(tasks...))
}

// TestApplierReloadRefusedRestoresAndBlames: a new app binds a port another process holds.
// `haproxy -c` cannot know, the reload fails on that bind: the previous file goes back on disk,
// the alert (which names the app's frontend) leaves that app out, the other new app goes live
// at once, and the failure is counted. After the port is freed, ForgetBlame (/_mlb_signal/hup)
// brings the app back.
func TestApplierReloadRefusedRestoresAndBlames(t *testing.T) {
	cfg := applierConfig(t)
	cfg.ReloadMinWait, cfg.ReloadMaxWait = 10*time.Millisecond, time.Second
	s := newApplierStack(t, cfg, false)
	apps := manyApps(2, 23000)
	s.start(apps...)
	failedBefore := gathered(t, "lodestar_haproxy_reloads_total", map[string]string{"reason": "structure", "result": "error"})

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	fine := 23100
	apps = append(apps,
		vhostApp("/team/taken", takenPort, task("t-taken", host("127.0.0.1"), ports(41100))),
		vhostApp("/team/fine", fine, task("t-fine", host("127.0.0.1"), ports(41101))))
	s.reg.replace(t, apps...)

	takenBackend := "team_taken_" + strconv.Itoa(takenPort)
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		st := s.a.Status()
		return st.Reloads == 1 && st.LastApply.Kind == "reload"
	}, "a reload after the refused one")
	st := s.a.Status()
	if len(st.Excluded) != 1 || st.Excluded[0].AppID != "/team/taken" || !strings.Contains(st.Excluded[0].Reason, "cannot bind") ||
		len(st.Excluded[0].HAProxy) == 0 {
		t.Fatalf("excluded %+v, want /team/taken left out for its bind, with HAProxy's alert", st.Excluded)
	}
	if _, ok := s.stat()["team_fine_23100/BACKEND"]; !ok {
		t.Error("HAProxy does not run the app that can bind")
	}
	if _, ok := s.stat()[takenBackend+"/BACKEND"]; ok {
		t.Errorf("HAProxy runs %s, whose bind failed", takenBackend)
	}
	if strings.Contains(string(s.a.Config()), takenBackend) || s.onDisk() != string(s.a.Config()) {
		t.Errorf("the configuration on record or on disk has %s, or they differ", takenBackend)
	}
	if got := gathered(t, "lodestar_haproxy_reloads_total", map[string]string{"reason": "structure", "result": "error"}); got != failedBefore+1 {
		t.Errorf("failed reloads counted %v, want %v", got, failedBefore+1)
	}

	// Nothing changed in the app: it stays out until the operator asks for a resync.
	taken.Close()
	s.a.ForgetBlame()
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.a.Status().Reloads == 2 }, "a reload after ForgetBlame")
	if _, ok := s.stat()[takenBackend+"/BACKEND"]; !ok {
		t.Error("HAProxy does not run the forgotten app once its port is free")
	}
	if len(s.a.Status().Excluded) != 0 || s.onDisk() != string(s.a.Config()) {
		t.Errorf("after ForgetBlame: excluded %+v, or the file on disk is not the configuration on record", s.a.Status().Excluded)
	}
}

// TestApplierChangeWhileHAProxyIsDown: a change that arrives while HAProxy is down (it crashed
// and the supervisor waits to restart it) cannot be applied then; it goes live once HAProxy
// is back, with no further change from the registry.
func TestApplierChangeWhileHAProxyIsDown(t *testing.T) {
	cfg := applierConfig(t)
	cfg.ReloadMinWait, cfg.ReloadMaxWait = 10*time.Millisecond, time.Second
	s := newApplierStack(t, cfg, false)
	s.proc.cfg.RestartBackoff = 2 * time.Second // a window to change things in
	apps := manyApps(2, 23500)
	s.start(apps...)

	master := s.proc.PID()
	if err := syscall.Kill(master, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return !s.proc.Status().Running }, "HAProxy down")
	apps[1] = vhostApp(apps[1].ID, 23501, task("t001-moved", host("127.0.0.1"), ports(41501)))
	s.reg.replace(t, append(apps, vhostApp("/team/late", 23510, task("t-late", host("127.0.0.1"), ports(41510))))...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		st := s.a.Status()
		return st.LastApply != nil && st.LastApply.Kind == "failed"
	}, "the apply to fail while HAProxy is down")
	if st := s.proc.Status(); st.Running || st.Restarts != 0 {
		t.Fatalf("HAProxy came back before the change was tried (%+v): the test did not open its window", st)
	}

	haproxytest.WaitFor(t, 30*time.Second, func() bool {
		rows, err := NewRuntimeClient(filepath.Join(cfg.Build.RunDir, "admin.sock")).ShowStat(context.Background())
		if err != nil {
			return false
		}
		late, moved := false, false
		for _, r := range rows {
			late = late || r.Proxy == "team_late_23510"
			moved = moved || (r.Proxy == "team_app001_23501" && r.Addr == "127.0.0.1:41501" && r.Status != "MAINT")
		}
		return late && moved && strings.Contains(string(s.a.Config()), "backend team_late_23510")
	}, "the app added and the task moved while HAProxy was down, live after its restart and on record")
	if s.onDisk() != string(s.a.Config()) {
		t.Error("the file on disk is not the configuration on record")
	}
}

// TestApplierFirstStartBindRefusedBlames: at HAProxy's very first start an app's port is
// held by another process. HAProxy exits on that bind; its alert names the app's frontend, so
// the app is left out with the alert, the file is written without it, and the supervisor's
// next start runs the other apps. Once the port is free, ForgetBlame brings the app back.
func TestApplierFirstStartBindRefusedBlames(t *testing.T) {
	cfg := applierConfig(t)
	cfg.ReloadMinWait, cfg.ReloadMaxWait = 10*time.Millisecond, time.Second
	s := newApplierStack(t, cfg, false)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	takenBackend := "team_taken_" + strconv.Itoa(takenPort)
	apps := append(manyApps(2, 23300), vhostApp("/team/taken", takenPort, task("t-taken", host("127.0.0.1"), ports(41300))))
	s.reg.replace(t, apps...)
	s.run()
	s.runProcess()
	haproxytest.WaitFor(t, 30*time.Second, func() bool { return s.proc.Status().Running }, "HAProxy running without the app whose port is taken")

	st := s.a.Status()
	if len(st.Excluded) != 1 || st.Excluded[0].AppID != "/team/taken" || !strings.Contains(st.Excluded[0].Reason, "cannot bind") ||
		len(st.Excluded[0].HAProxy) == 0 {
		t.Fatalf("excluded %+v, want /team/taken left out for its bind, with HAProxy's alert", st.Excluded)
	}
	if st.Process.Restarts == 0 {
		t.Errorf("HAProxy runs without a restart: the port was not taken at its first start")
	}
	stat := s.stat()
	if _, ok := stat["team_app000_23300/BACKEND"]; !ok {
		t.Error("HAProxy does not run the apps that can bind")
	}
	if _, ok := stat[takenBackend+"/BACKEND"]; ok {
		t.Errorf("HAProxy runs %s, whose bind failed", takenBackend)
	}
	if strings.Contains(s.onDisk(), takenBackend) || s.onDisk() != string(s.a.Config()) {
		t.Errorf("the configuration on disk has %s, or it is not the one on record", takenBackend)
	}

	taken.Close()
	s.a.ForgetBlame()
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		_, ok := s.stat()[takenBackend+"/BACKEND"]
		return ok && strings.Contains(string(s.a.Config()), takenBackend)
	}, "HAProxy to run the forgotten app once its port is free")
	if st := s.a.Status(); len(st.Excluded) != 0 || s.onDisk() != string(s.a.Config()) {
		t.Errorf("after ForgetBlame: excluded %+v, or the file on disk is not the configuration on record", st.Excluded)
	}
}

// TestBlameReadsLinesOnlyOfTheFileHAProxyRead: a failed start's alert that names only a line
// of the file blames the app owning that line when HAProxy started with the file on record,
// and nobody when it read another one (the line may belong to some other app there).
func TestBlameReadsLinesOnlyOfTheFileHAProxyRead(t *testing.T) {
	cfg := applierConfig(t)
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := newTestRegistry(t).replace(t, manyApps(2, 23400)...)
	m := Build(snap, a.buildConfig(nil), nil)
	r, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for n := 1; n <= bytes.Count(r.Config, []byte("\n")); n++ {
		if r.OwnerOf(n) == "/team/app001" {
			line = n
			break
		}
	}
	if line == 0 {
		t.Fatal("no line of /team/app001 in the configuration")
	}
	alerts := []Alert{{File: a.ConfigPath(), Line: line, Message: "parsing [" + a.ConfigPath() + ":" + strconv.Itoa(line) + "]: something"}}
	if a.blame(snap, m, r, alerts, false) || len(a.blamed) != 0 {
		t.Errorf("an alert naming a line of another file blamed %v", slices.Sorted(maps.Keys(a.blamed)))
	}
	if !a.blame(snap, m, r, alerts, true) || len(a.blamed) != 1 || a.blamed["/team/app001"].reason == "" {
		t.Errorf("an alert naming line %d of the file on record blamed %v, want /team/app001", line, slices.Sorted(maps.Keys(a.blamed)))
	}
}

// TestApplierRefusedReloadRestoresPreviousFiles: when nothing can be blamed (the alert names no
// app), the reload fails, the previous configuration is back on disk and stays the one on
// record, and the failure is the last apply.
func TestApplierRefusedReloadRestoresPreviousFiles(t *testing.T) {
	cfg := applierConfig(t)
	cfg.ReloadMinWait, cfg.ReloadMaxWait = 10*time.Millisecond, time.Second
	// The stats frontend is global (HEAD): a port taken there blames no app.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var broken atomic.Bool
	editHead(t, &cfg, func(head string) string {
		if broken.Load() {
			return head + "  bind " + taken.Addr().String() + "\n"
		}
		return head
	})
	s := newApplierStack(t, cfg, false)
	apps := manyApps(2, 23200)
	s.start(apps...)
	before := string(s.a.Config())

	broken.Store(true)
	s.reg.replace(t, append(apps, vhostApp("/team/extra", 23210, task("t-extra", host("127.0.0.1"), ports(41102))))...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		st := s.a.Status()
		return st.LastApply != nil && st.LastApply.Kind == "failed"
	}, "a failed reload")
	if st := s.a.Status(); !strings.Contains(st.LastApply.Error, "cannot bind") {
		t.Errorf("last apply %+v, want HAProxy's bind alert", st.LastApply)
	}
	if string(s.a.Config()) != before || s.onDisk() != before {
		t.Error("after a refused reload the configuration on record or on disk is not the previous one")
	}
	if _, ok := s.stat()["team_extra_23210/BACKEND"]; ok {
		t.Error("HAProxy runs the refused configuration")
	}
}

// TestCheckBlamesAlertWithoutLine: HAProxy names no line for a use_backend that leads nowhere,
// only the frontend ("Proxy 'x': unable to find required use_backend"); that frontend's app is
// left out and the rest validates. It takes --label-templates full: confined, lodestar itself
// refuses a use_backend to a backend the app does not own.
func TestCheckBlamesAlertWithoutLine(t *testing.T) {
	cfg := applierConfig(t)
	cfg.Build.LabelTemplates = LabelTemplatesFull
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(5, 23300)
	apps[2].Labels["HAPROXY_0_FRONTEND_BACKEND_GLUE"] = "  use_backend no_such_backend\n"
	conf, excluded, validations, err := a.Check(context.Background(), snapshot(t, apps...))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if validations != 2 || len(excluded) != 1 || excluded[0].AppID != "/team/app002" ||
		!strings.Contains(excluded[0].Reason, "no_such_backend") {
		t.Fatalf("%d validations, excluded %+v; want 2 and /team/app002 for its use_backend", validations, excluded)
	}
	if strings.Contains(string(conf), "team_app002_23302") || !strings.Contains(string(conf), "team_app003_23303") {
		t.Error("the configuration does not leave out exactly the blamed app")
	}
}

// editHead makes the Applier read its HEAD template from the environment at every build, as
// edit(the built-in HEAD).
func editHead(t *testing.T, cfg *ApplierConfig, edit func(string) string) {
	t.Helper()
	head, err := os.ReadFile("../templates/builtin/HAPROXY_HEAD")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Build.Templates = nil
	cfg.Build.Getenv = func(k string) string {
		if k == "HAPROXY_HEAD" {
			return edit(string(head))
		}
		return ""
	}
}

// brokenHead makes the HEAD carry an extra global line while the returned flag is set:
// HAProxy rejects the whole configuration and no app is to blame.
func brokenHead(t *testing.T, cfg *ApplierConfig) *atomic.Bool {
	t.Helper()
	broken := new(atomic.Bool)
	editHead(t, cfg, func(head string) string {
		if broken.Load() {
			return strings.Replace(head, "global\n", "global\n  no-such-global-keyword\n", 1)
		}
		return head
	})
	return broken
}

// TestApplierFirstConfigRetriedUntilValid: a first configuration HAProxy rejects with nothing
// to blame does not end Run (it used to, and `serve` with it): the error shows in Status and
// Healthy, lodestar stays unready, and the next snapshot is tried again.
func TestApplierFirstConfigRetriedUntilValid(t *testing.T) {
	cfg := applierConfig(t)
	broken := brokenHead(t, &cfg)
	broken.Store(true)
	s := newApplierStack(t, cfg, true)
	s.reg.replace(t, manyApps(2, 23400)...)
	s.run()
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		st := s.a.Status()
		return st.LastApply != nil && st.LastApply.Kind == "failed"
	}, "the first configuration to fail")
	if err := s.a.Healthy(); err == nil || !strings.Contains(err.Error(), "no-such-global-keyword") {
		t.Errorf("Healthy() = %v, want the rejection", err)
	}
	if s.a.Applied() == nil {
		t.Error("ready without any configuration")
	}

	broken.Store(false)
	s.reg.replace(t, manyApps(3, 23400)...)
	select {
	case <-s.a.Written():
	case err := <-s.done:
		s.runs--
		t.Fatalf("Run returned %v instead of retrying", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the first configuration was not written once valid")
	}
	if !strings.Contains(string(s.a.Config()), "backend team_app002_23402") {
		t.Error("the first configuration is not the newest snapshot's")
	}
}

// TestValidationLeavesLiveMapsAlone: `haproxy -c` reads the candidate's map files from a
// scratch directory, so neither `render --check` (Check) nor a rejected configuration writes
// the live map files.
func TestValidationLeavesLiveMapsAlone(t *testing.T) {
	cfg := applierConfig(t)
	cfg.Build.HAProxyMap = true
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.Check(context.Background(), snapshot(t, manyApps(3, 23500)...)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	ents, _ := os.ReadDir(cfg.Build.RunDir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".map") || strings.HasPrefix(e.Name(), ".maps-check") {
			t.Errorf("Check left %s in the run directory", e.Name())
		}
	}

	broken := brokenHead(t, &cfg)
	s := newApplierStack(t, cfg, true)
	apps := manyApps(2, 23500)
	s.reg.replace(t, apps...)
	s.run()
	<-s.a.Written()
	domainMap := filepath.Join(cfg.Build.RunDir, "domain2backend.map")
	live, err := os.ReadFile(domainMap)
	if err != nil || !strings.Contains(string(live), "app001.test") {
		t.Fatalf("live domain map %q, %v; want app001.test in it", live, err)
	}
	broken.Store(true)
	s.reg.replace(t, append(apps, vhostApp("/team/new", 23510, task("t-new", host("127.0.0.1"), ports(41500))))...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		st := s.a.Status()
		return st.LastApply != nil && st.LastApply.Kind == "failed"
	}, "the rejected configuration")
	if now, _ := os.ReadFile(domainMap); string(now) != string(live) {
		t.Errorf("a rejected configuration rewrote the live domain map:\n%s", now)
	}
}

// TestReloadMinWaitZero: 0 means no coalescing wait, not the default; negative is refused.
func TestReloadMinWaitZero(t *testing.T) {
	cfg := applierConfig(t)
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.ReloadMinWait != 0 || a.cfg.ReloadMaxWait != DefaultReloadMaxWait {
		t.Errorf("min/max wait %v/%v, want 0/%v", a.cfg.ReloadMinWait, a.cfg.ReloadMaxWait, DefaultReloadMaxWait)
	}
	cfg.ReloadMinWait = 10 * time.Second
	if a, err := NewApplier(cfg, nil); err != nil || a.cfg.ReloadMaxWait != 10*time.Second {
		t.Errorf("min wait 10s without a max: %v, max %v; want the max raised to 10s", err, a.cfg.ReloadMaxWait)
	}
	cfg.ReloadMinWait = -time.Second
	if _, err := NewApplier(cfg, nil); err == nil {
		t.Error("a negative --reload-min-wait was accepted")
	}
}

// TestApplierChangeDuringStartReachesHAProxy: changes written after HAProxy loaded the first
// file but before it was known to run (the Applier then only writes files) reach it once it
// has started: a task that moved and an app that was added.
func TestApplierChangeDuringStartReachesHAProxy(t *testing.T) {
	cfg := applierConfig(t)
	cfg.ReloadMaxWait = time.Second
	s := newApplierStack(t, cfg, false)
	// Started is closed by the test rather than when HAProxy first answers, to hold the window
	// between HAProxy loading its file and the Applier learning that it runs open.
	s.proc.once.Do(func() {})
	apps := manyApps(2, 23600)
	s.reg.replace(t, apps...)
	s.run()
	s.runProcess()
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.proc.Status().Running }, "HAProxy to run the first configuration")

	apps[0] = vhostApp(apps[0].ID, 23600, task("t000-b", host("127.0.0.1"), ports(41600)))
	apps[0].Labels["HAPROXY_0_VHOST"] = "app000.test"
	s.reg.replace(t, apps...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(s.onDisk(), "127.0.0.1:41600") }, "the moved task written")
	apps = append(apps, vhostApp("/team/late", 23610, task("t-late", host("127.0.0.1"), ports(41610))))
	s.reg.replace(t, apps...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(s.onDisk(), "backend team_late_23610") }, "the new app written")
	if _, ok := s.stat()["team_late_23610/BACKEND"]; ok {
		t.Fatal("HAProxy loaded the newer file: the test did not open the window it means to")
	}

	close(s.proc.started)
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.a.Status().Reloads == 1 }, "a reload once HAProxy started")
	stat := s.stat()
	if _, ok := stat["team_late_23610/BACKEND"]; !ok {
		t.Error("HAProxy does not run the app added while it started")
	}
	moved := false
	for _, r := range stat {
		if r.Proxy == "team_app000_23600" && r.Addr == "127.0.0.1:41600" && r.Status != "MAINT" {
			moved = true
		}
	}
	if !moved {
		t.Error("HAProxy does not send to the task that moved while it started")
	}
}

// TestApplierDrainingServerStaysDraining: a draining task is "disabled" in the file (as
// marathon-lb wrote it) and in DRAIN at runtime, after HAProxy starts and after every reload,
// so that its sticky clients keep it until they are done; with a server-state file or, for a
// HEAD template without one, without.
func TestApplierDrainingServerStaysDraining(t *testing.T) {
	for _, stateFile := range []bool{true, false} {
		t.Run(fmt.Sprintf("state-file=%v", stateFile), func(t *testing.T) {
			cfg := applierConfig(t)
			if !stateFile {
				editHead(t, &cfg, func(head string) string {
					head = strings.Replace(head, "  server-state-file {runDir}/server-state\n", "", 1)
					return strings.Replace(head, "  load-server-state-from-file global\n", "", 1)
				})
			}
			s := newApplierStack(t, cfg, false)
			web := app("/web", withPorts(23700), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
				withTasks(task("live", host("127.0.0.1"), ports(41700)), task("leaving", host("127.0.0.1"), ports(41701), taskState(discovery.StateKilling))))
			s.start(web)
			if strings.Contains(s.onDisk(), "server-state") == !stateFile {
				t.Fatalf("server-state-file in the configuration: %v, want %v", !stateFile, stateFile)
			}
			leaving := func() string {
				for _, r := range s.stat() {
					if r.Proxy == "web_23700" && r.Addr == "127.0.0.1:41701" {
						return r.Status
					}
				}
				return "missing"
			}
			haproxytest.WaitFor(t, 20*time.Second, func() bool { return leaving() == "DRAIN" }, "the draining server in DRAIN once HAProxy started")

			s.reg.replace(t, web, vhostApp("/other", 23710, task("t-other", host("127.0.0.1"), ports(41710))))
			haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.a.Status().Reloads == 1 }, "a reload")
			if got := leaving(); got != "DRAIN" {
				t.Errorf("the draining server is %s after a reload, want DRAIN", got)
			}
			if err := s.a.ReloadFromDisk(context.Background()); err != nil {
				t.Fatalf("ReloadFromDisk: %v", err)
			}
			if got := leaving(); got != "DRAIN" {
				t.Errorf("the draining server is %s after a reload of the file on disk, want DRAIN", got)
			}
		})
	}
}

// TestReloadFromDiskWaitsForApply: /_mlb_signal/usr1 does not reload HAProxy in the middle of
// an apply; it runs once the apply is done.
func TestReloadFromDiskWaitsForApply(t *testing.T) {
	cfg := applierConfig(t)
	dir := cfg.Build.RunDir
	gate, waiting := filepath.Join(dir, "gate"), filepath.Join(dir, "waiting")
	// The Applier's `haproxy -c` of a candidate (*.new) blocks on the gate while it exists: the
	// Run loop is inside an apply for as long as the test holds it there.
	script := filepath.Join(dir, "haproxy-check")
	body := "#!/bin/sh\ncase \"$3\" in *.new) if [ -p " + gate + " ]; then touch " + waiting + "; read x < " + gate + "; fi;; esac\nexec " + cfg.Bin + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Bin = script
	s := newApplierStack(t, cfg, false)
	apps := manyApps(2, 23800)
	s.start(apps...)
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}

	s.reg.replace(t, append(apps, vhostApp("/team/more", 23810, task("t-more", host("127.0.0.1"), ports(41810))))...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool { _, err := os.Stat(waiting); return err == nil }, "the apply to validate")
	res := make(chan error, 1)
	go func() { res <- s.a.ReloadFromDisk(context.Background()) }()
	select {
	case err := <-res:
		t.Fatalf("ReloadFromDisk returned (%v) while an apply was validating", err)
	case <-time.After(2 * time.Second):
	}
	writeLine(t, gate)
	if err := <-res; err != nil {
		t.Fatalf("ReloadFromDisk: %v", err)
	}
	st := s.a.Status()
	if st.Reloads != 2 || st.LastApply.Reason != "reload of the file on disk requested" || !strings.Contains(string(s.a.Config()), "backend team_more_23810") {
		t.Errorf("%d reloads, last %+v; want the apply's reload, then the one of the file on disk", st.Reloads, st.LastApply)
	}
}

// writeLine opens the fifo path for writing (which waits for its reader), removes it so that
// no later reader waits, and writes a line.
func writeLine(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	os.Remove(path)
	if _, err := f.WriteString("\n"); err != nil {
		t.Fatal(err)
	}
}

// TestApplierAfterHAProxyCrash: HAProxy killed outright comes back (the supervisor restarts
// it) with what the Applier had set at runtime since the last reload, although the
// server-state file (when the HEAD has one) still holds the state of that reload: a task that
// moved keeps its new address, a task that started draining since stays in DRAIN, and one
// that was draining already is back in DRAIN instead of the file's maintenance.
func TestApplierAfterHAProxyCrash(t *testing.T) {
	for _, stateFile := range []bool{true, false} {
		t.Run(fmt.Sprintf("state-file=%v", stateFile), func(t *testing.T) { testApplierAfterHAProxyCrash(t, stateFile) })
	}
}

func testApplierAfterHAProxyCrash(t *testing.T, stateFile bool) {
	cfg := applierConfig(t)
	if !stateFile {
		editHead(t, &cfg, func(head string) string {
			head = strings.Replace(head, "  server-state-file {runDir}/server-state\n", "", 1)
			return strings.Replace(head, "  load-server-state-from-file global\n", "", 1)
		})
	}
	s := newApplierStack(t, cfg, false)
	web := func(live, stay *discovery.Task) *discovery.App {
		return app("/web", withPorts(23720), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
			withTasks(live, stay, task("leaving", host("127.0.0.1"), ports(41721), taskState(discovery.StateKilling))))
	}
	live, stay := task("live", host("127.0.0.1"), ports(41720)), task("stay", host("127.0.0.1"), ports(41723))
	s.start(web(live, stay))
	// One reload, so that HAProxy saves a server-state file naming the first address.
	s.reg.replace(t, web(live, stay), vhostApp("/other", 23730, task("t-other", host("127.0.0.1"), ports(41730))))
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.a.Status().Reloads == 1 }, "a reload")
	// One task moves, another starts draining: Runtime API changes only.
	s.reg.replace(t, web(task("moved", host("127.0.0.1"), ports(41722)), task("stay", host("127.0.0.1"), ports(41723), taskState(discovery.StateKilling))), vhostApp("/other", 23730, task("t-other", host("127.0.0.1"), ports(41730))))
	servers := func() map[string]string {
		rows, err := NewRuntimeClient(filepath.Join(cfg.Build.RunDir, "admin.sock")).ShowStat(context.Background())
		if err != nil {
			return nil // HAProxy is restarting
		}
		out := map[string]string{}
		for _, r := range rows {
			if r.Proxy == "web_23720" && r.Server != "BACKEND" && r.Status != "MAINT" {
				out[r.Addr] = r.Status
			}
		}
		return out
	}
	want := func(m map[string]string) bool {
		_, old := m["127.0.0.1:41720"]
		_, moved := m["127.0.0.1:41722"]
		return !old && moved && m["127.0.0.1:41721"] == "DRAIN" && m["127.0.0.1:41723"] == "DRAIN"
	}
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return want(servers()) }, "the moved task at its new address, both leaving ones in DRAIN")
	if st := s.a.Status(); st.Reloads != 1 {
		t.Fatalf("%d reloads, want the move to go through the Runtime API", st.Reloads)
	}

	master := s.proc.PID()
	if err := syscall.Kill(master, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	haproxytest.WaitFor(t, 30*time.Second, func() bool {
		st := s.proc.Status()
		return st.Restarts == 1 && st.Running && st.PID != master
	}, "HAProxy restarted")
	// With a state file the restarted HAProxy is reloaded onto the file alone; without one the
	// file is all it read, and setting the draining servers is enough.
	wantReloads := 1
	if stateFile {
		wantReloads = 2
	}
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.a.Status().Reloads >= wantReloads }, "the reloads")
	if st := s.a.Status(); st.Reloads != wantReloads || (stateFile && !strings.Contains(st.LastApply.Reason, "restarted")) {
		t.Errorf("%d reloads, the last %+v; want %d (state file: %v)", st.Reloads, st.LastApply, wantReloads, stateFile)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for last := servers(); !want(last); last = servers() {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart, web_23720's servers in service are %v (address→status); want 127.0.0.1:41722 in place of :41720, and :41721 and :41723 in DRAIN", last)
		}
		<-tick.C
	}
}
