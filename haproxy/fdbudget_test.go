package haproxy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// fdConfig generates a configuration with maxconn, frontends binding one port each (a port
// range on the first when ranged > 1) and checked plus unchecked servers.
func fdConfig(t *testing.T, global string, frontends, ranged, checked, unchecked int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "global\n%s\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n", global)
	for i := range frontends {
		port := strconv.Itoa(freePort(t))
		if i == 0 && ranged > 1 {
			port = "40000-" + strconv.Itoa(40000+ranged-1)
		}
		fmt.Fprintf(&b, "frontend f%d\n  bind 127.0.0.1:%s\n  default_backend b\n", i, port)
	}
	b.WriteString("backend b\n")
	for i := range checked {
		fmt.Fprintf(&b, "  server c%d 127.0.0.2:%d check inter 60s\n", i, 1+i)
	}
	for i := range unchecked {
		fmt.Fprintf(&b, "  server u%d 127.0.0.3:%d\n", i, 1+i)
	}
	return b.String()
}

var fdRefusal = regexp.MustCompile(`Cannot raise FD limit to (\d+), limit is (\d+)`)

// haproxyFDNeed starts the real haproxy on cfg under an open-files limit of limit and returns
// the number its refusal names.
func haproxyFDNeed(t *testing.T, cfg string, masterCLI bool, limit int) int {
	t.Helper()
	needHAProxy(t)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is missing: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{fmt.Sprintf("--nofile=%d:%d", limit, limit), haproxyBin, "-db", "-f", path}
	if masterCLI {
		args = append(args, "-W", "-S", filepath.Join(dir, "master.sock"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, prlimit, args...).CombinedOutput()
	m := fdRefusal.FindSubmatch(out)
	if m == nil {
		t.Fatalf("haproxy under a limit of %d did not refuse with \"Cannot raise FD limit\":\n%s", limit, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestEstimateFDsMatchesHAProxy compares the estimate with the number HAProxy 2.6 itself
// refuses to start without, for generated configurations that all exceed a small limit.
func TestEstimateFDsMatchesHAProxy(t *testing.T) {
	const limit = 30
	cases := []struct {
		name                                  string
		global                                string
		frontends, ranged, checked, unchecked int
	}{
		{"150 checked servers", "  maxconn 10\n  nbthread 1", 2, 0, 150, 0},
		{"unchecked servers cost nothing", "  maxconn 10\n  nbthread 2", 1, 0, 20, 40},
		{"a port range is a listener per port", "  maxconn 20\n  nbthread 1", 3, 8, 5, 0},
		{"maxpipes and a stats socket", "  maxconn 10\n  nbthread 1\n  maxpipes 7\n  stats socket SOCK", 1, 0, 3, 0},
		{"threads from the CPUs", "  maxconn 30", 1, 0, 10, 0},
		{"as Process starts it (-W -S)", "  maxconn 25\n  nbthread 2\n  stats socket SOCK mode 600 level admin", 4, 0, 30, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := fdConfig(t, strings.ReplaceAll(c.global, "SOCK", filepath.Join(t.TempDir(), "admin.sock")),
				c.frontends, c.ranged, c.checked, c.unchecked)
			masterCLI := strings.Contains(c.name, "-W -S")
			got := EstimateFDs([]byte(cfg), masterCLI, runtime.NumCPU()).Need()
			want := haproxyFDNeed(t, cfg, masterCLI, limit)
			if got != want {
				t.Errorf("estimate %d, HAProxy asks for %d (%+v)", got, want, EstimateFDs([]byte(cfg), masterCLI, runtime.NumCPU()))
			}
			err := CheckFDBudget([]byte(cfg), masterCLI, limit)
			if !IsFDLimit(err) || !strings.Contains(err.Error(), fmt.Sprintf("HAProxy needs %d open files", want)) ||
				!strings.Contains(err.Error(), fmt.Sprintf("the limit is %d", limit)) || !strings.Contains(err.Error(), "LimitNOFILE") {
				t.Errorf("CheckFDBudget: %v", err)
			}
			if err := CheckFDBudget([]byte(cfg), masterCLI, want); err != nil {
				t.Errorf("a limit of exactly %d refused: %v", want, err)
			}
		})
	}
}

// TestEstimateFDsParsing covers what the generated configurations do not: ulimit-n,
// default-server check and no-check, server-template, agent checks, address lists, and
// hostile numbers, which must not count.
func TestEstimateFDsParsing(t *testing.T) {
	cfg := `global
  maxconn 100
  nbthread 1
defaults
  default-server check
backend a
  server a1 127.0.0.1:1
  server a2 127.0.0.1:2 no-check
  server-template w 1-4 127.0.0.1:3
  server g 127.0.0.1:4 check agent-check agent-port 5
frontend f
  bind 127.0.0.1:80,127.0.0.1:81-83,unix@/run/x.sock
bind 127.0.0.1:90-1
`
	b := EstimateFDs([]byte(cfg), false, 8)
	want := FDBudget{MaxConn: 100, Listeners: 6, CheckedServers: 6, AgentChecks: 1, Threads: 1}
	if b != want {
		t.Errorf("got %+v, want %+v", b, want)
	}
	if n := b.Need(); n != 200+6+6+1+10+3 {
		t.Errorf("Need %d", n)
	}
	hostile := "global\n  maxconn -5\n  nbthread x\n  ulimit-n 99999999999999999999\nfrontend f\n  bind :1-99999999999999\n"
	if b := EstimateFDs([]byte(hostile), false, 2); b.MaxConn != 0 || b.ULimitN != 0 || b.Listeners != 1 || b.Need() != 0 {
		t.Errorf("hostile numbers counted: %+v need %d", b, b.Need())
	}
	if b := EstimateFDs([]byte("global\n  maxconn 10\n  ulimit-n 500\n"), false, 2); b.Need() != 500 {
		t.Errorf("ulimit-n: need %d, want 500", b.Need())
	}
}

// TestApplierOverFDLimitSaysSoOnceAndDoesNotStart: a first configuration that needs more open
// files than HAProxy may have is not written and HAProxy is not started (no restart loop);
// Healthy (/readyz, the status page) carries HAProxy's numbers and the fix, said once per
// distinct need, and it is tried again only on a new snapshot, which starts HAProxy once the
// limit fits.
func TestApplierOverFDLimitSaysSoOnceAndDoesNotStart(t *testing.T) {
	cfg := applierConfig(t)
	log, logs := logtest.New()
	cfg.Logger = log
	var limit atomic.Int64
	limit.Store(1000) // the built-in HEAD's maxconn 4096 alone needs 8192
	cfg.OpenFilesLimit = func() (int, error) { return int(limit.Load()), nil }
	proc, err := NewProcess(ProcessConfig{Bin: haproxytest.Bin(t), ConfigPath: filepath.Join(cfg.Build.RunDir, "haproxy.cfg"),
		RunDir: cfg.Build.RunDir, Logger: log, StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewApplier(cfg, proc)
	if err != nil {
		t.Fatal(err)
	}
	reg := newTestRegistry(t)
	apps := manyApps(2, 24900)
	reg.replace(t, apps...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	sub := reg.Subscribe()
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
		sub.Close()
		if t.Failed() {
			t.Logf("log:\n%s", logs.Tail(4000))
		}
	}()
	go func() { done <- a.Run(ctx, sub) }()
	go func() {
		select {
		case <-a.Written():
			done <- proc.Run(ctx)
		case <-ctx.Done():
			done <- nil
		}
	}()
	attempts := func() time.Time {
		if st := a.Status(); st.LastApply != nil {
			return st.LastApply.At
		}
		return time.Time{}
	}
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return a.Healthy() != nil && strings.Contains(a.Healthy().Error(), "HAProxy needs") },
		"Healthy to say what HAProxy needs")
	first := attempts()
	msg := a.Healthy().Error()
	if !strings.Contains(msg, "2×maxconn 4096") || !strings.Contains(msg, "the limit is 1000") || !strings.Contains(msg, "--haproxy-maxconn") {
		t.Errorf("Healthy: %s", msg)
	}
	if err := a.Applied(); err == nil || !strings.Contains(err.Error(), msg[strings.Index(msg, "HAProxy needs"):]) {
		t.Errorf("Applied (the /readyz check) does not carry the open-files report: %v", err)
	}
	// A new snapshot with the same needs (a task moved): tried again, not said again.
	moved := manyApps(2, 24900)
	moved[1].Tasks[0].HostPorts = []int{41999}
	reg.replace(t, moved...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return attempts().After(first) }, "the new snapshot tried")
	if n := strings.Count(logs.String(), "HAProxy is not started"); n != 1 {
		t.Errorf("the open-files report was logged %d times, want once", n)
	}
	select {
	case <-a.Written():
		t.Fatal("a configuration over the open-files limit was written for HAProxy to start")
	case <-proc.Started():
		t.Fatal("HAProxy was started with a configuration over the open-files limit")
	default:
	}
	if st := proc.Status(); st.Restarts != 0 {
		t.Errorf("HAProxy restarted %d times", st.Restarts)
	}
	// The limit is raised (lodestar restarted under a higher LimitNOFILE, say) and a snapshot
	// arrives: HAProxy starts.
	limit.Store(1 << 20)
	reg.replace(t, apps...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return a.Applied() == nil }, "HAProxy started once the limit fits")
}

// TestEstimateFDsOfLodestarsConfig: for a configuration lodestar builds (the built-in HEAD
// with its stats socket, stats frontend and unix server, vhost and port frontends), started
// as Process starts it, the estimate is the number HAProxy refuses to start without.
func TestEstimateFDsOfLodestarsConfig(t *testing.T) {
	cfg := applierConfig(t)
	cfg.Build.MaxConn = 40
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(5, 25000)
	for _, app := range apps[:3] {
		withHealthCheck("HTTP", "/health", 0)(app)
		app.Tasks = append(app.Tasks, task(app.ID+"-b", host("127.0.0.1"), ports(41000)))
	}
	if err := a.writeFirst(context.Background(), snapshot(t, apps...)); err != nil {
		t.Fatal(err)
	}
	config := a.Config()
	b := EstimateFDs(config, true, runtime.NumCPU())
	if b.MaxConn != 40 || b.Listeners < 5 || b.CheckedServers != 6 {
		t.Fatalf("the estimate missed the configuration's maxconn, listeners or 6 checked servers (3 checked backends of 2 tasks, no spare slots): %+v", b)
	}
	if want := haproxyFDNeed(t, string(config), true, 6); b.Need() != want {
		t.Errorf("estimate %d (%+v), HAProxy asks for %d", b.Need(), b, want)
	}
}

// TestReloadOverFDLimitKeepsRunning: a change whose configuration needs more open files than
// HAProxy may have is not reloaded onto (HAProxy would refuse it): HAProxy keeps running the
// previous configuration, which stays on disk for a restart, and the apply record says what
// HAProxy needs and the fix.
func TestReloadOverFDLimitKeepsRunning(t *testing.T) {
	cfg := applierConfig(t)
	cfg.ReloadMinWait, cfg.ReloadMaxWait = 10*time.Millisecond, time.Second
	var limit atomic.Int64
	limit.Store(1 << 20)
	cfg.OpenFilesLimit = func() (int, error) { return int(limit.Load()), nil }
	s := newApplierStack(t, cfg, false)
	apps := manyApps(3, 25100)
	s.start(apps[:2]...)
	before, reloads := s.onDisk(), s.a.Status().Reloads
	limit.Store(1000)
	s.reg.replace(t, apps...)
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		st := s.a.Status()
		return st.LastApply != nil && strings.Contains(st.LastApply.Error, "HAProxy needs")
	}, "the refused reload recorded")
	st := s.a.Status()
	if st.LastApply.Kind != "failed" || !strings.Contains(st.LastApply.Error, "the limit is 1000") || st.Reloads != reloads {
		t.Errorf("last apply %+v, reloads %d (before %d)", st.LastApply, st.Reloads, reloads)
	}
	if s.onDisk() != before {
		t.Error("the configuration over the limit replaced the file on disk")
	}
	if err := s.a.Healthy(); err != nil || !st.Process.Running {
		t.Errorf("HAProxy does not keep running the previous configuration: %v", err)
	}
}
