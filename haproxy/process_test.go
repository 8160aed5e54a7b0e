package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// testGlobal is the global and defaults part of the configurations these tests run. The knobs
// that make reloads lossless (see TestReloadsUnderLoadLoseNoRequest) are here:
//
//   - master-worker (-W -S, which Process always uses): on reload the master re-executes itself
//     and hands the listening sockets to the new worker ("-x sockpair@N"), so no SYN ever meets a
//     closed port. `expose-fd listeners` on the stats socket is what older HAProxy needed for that
//     hand-over; 2.6 does it through the master's socketpair, and keeping the keyword costs
//     nothing and keeps `haproxy -x <admin.sock>` working for manual restarts.
//   - option idle-close-on-response: by default a soft-stopping worker closes its idle
//     keep-alive connections at once, racing a client that is sending its next request on one
//     (the client sees a reset; only idempotent requests get retried). With the option the old
//     worker waits for that next request, answers it with "Connection: close", then closes.
//   - hard-stop-after: bounds how long an old worker may linger for clients that keep a
//     connection open and idle.
//   - load-server-state-from-file global + server-state-file: a reload starts servers with the
//     address and admin state saved by SaveServerState.
const testGlobal = `global
    log stdout format short local0 notice
    stats socket $DIR/admin.sock mode 600 level admin expose-fd listeners
    server-state-file $DIR/server-state
    hard-stop-after 5s
    maxconn 2000

defaults
    mode http
    log global
    option idle-close-on-response
    load-server-state-from-file global
    timeout connect 2s
    timeout client 10s
    timeout server 10s
`

// testHAProxy is a Process running a test configuration in its own directory.
type testHAProxy struct {
	t      testing.TB
	dir    string
	cfg    string // configuration path
	port   int    // the HTTP frontend's port ($PORT)
	proc   *Process
	admin  *RuntimeClient
	logs   *logtest.Buffer
	cancel context.CancelFunc
	done   chan error
	vars   map[string]string
}

// expand replaces $DIR, $PORT and the test's extra variables in a configuration text.
func (h *testHAProxy) expand(text string) string {
	pairs := []string{"$DIR", h.dir, "$PORT", fmt.Sprint(h.port)}
	for k, v := range h.vars {
		pairs = append(pairs, k, v)
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// writeConfig installs testGlobal + body as the configuration.
func (h *testHAProxy) writeConfig(body string) {
	h.t.Helper()
	if err := WriteFileAtomic(h.cfg, []byte(h.expand(testGlobal+body)), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// startHAProxy writes testGlobal + body (with $DIR, $PORT and vars expanded) and runs it under a
// Process until the test ends, checking then that no HAProxy process is left. files are written
// into the directory first (name → content), for map files the configuration loads.
func startHAProxy(t testing.TB, body string, vars map[string]string, files ...map[string]string) *testHAProxy {
	t.Helper()
	return startHAProxyWith(t, nil, body, vars, files...)
}

// startHAProxyWith is startHAProxy with a change to the ProcessConfig (nil: none).
func startHAProxyWith(t testing.TB, tweak func(*ProcessConfig), body string, vars map[string]string, files ...map[string]string) *testHAProxy {
	t.Helper()
	bin := haproxytest.Bin(t)
	dir := haproxytest.SocketDir(t)
	log, logs := logtest.New()
	h := &testHAProxy{
		t: t, dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), port: haproxytest.FreePort(t),
		logs: logs, done: make(chan error, 1), vars: vars,
	}
	for _, fs := range files {
		for name, content := range fs {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.writeConfig(body)
	pcfg := ProcessConfig{
		Bin: bin, ConfigPath: h.cfg, RunDir: dir, Logger: log,
		StopTimeout: 5 * time.Second, RestartBackoff: 20 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&pcfg)
	}
	p, err := NewProcess(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	h.proc = p
	h.admin = NewRuntimeClient(filepath.Join(dir, "admin.sock"))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		group := p.GroupPIDs()
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after its context ended")
		}
		for _, pid := range group {
			if alive(pid) {
				t.Errorf("haproxy process %d still runs after Run returned", pid)
			}
		}
		if t.Failed() {
			t.Logf("haproxy log:\n%s", logs.Tail(6000))
		}
	})
	select {
	case <-p.Started():
	case err := <-h.done:
		t.Fatalf("Run returned before HAProxy started: %v\n%s", err, logs.Tail(3000))
	case <-time.After(20 * time.Second):
		t.Fatalf("HAProxy did not start\n%s", logs.Tail(3000))
	}
	return h
}

// listenLoopback listens on a free 127.0.0.1 port until the test ends.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// alive reports a process that exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// ctx returns a context for one operation of a test.
func (h *testHAProxy) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

// get sends GET / with host (if not empty) through HAProxy on a fresh connection and returns
// the answering backend's id and the status code.
func (h *testHAProxy) get(host string) (string, int, error) {
	req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", h.port), nil)
	if err != nil {
		return "", 0, err
	}
	if host != "" {
		req.Host = host
	}
	req.Close = true
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", resp.StatusCode, err
	}
	return strings.TrimSpace(string(body)), resp.StatusCode, nil
}

// mustGet is get that fails the test on a transport error or a status other than 200.
func (h *testHAProxy) mustGet(host string) string {
	h.t.Helper()
	id, code, err := h.get(host)
	if err != nil || code != http.StatusOK {
		h.t.Fatalf("GET via haproxy (host %q): %d %v", host, code, err)
	}
	return id
}

// reloadCount returns the master's reload counter.
func (h *testHAProxy) reloadCount() int {
	h.t.Helper()
	n, err := h.proc.Master().ReloadCount(h.ctx())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

const oneBackend = `
frontend fe
    bind 127.0.0.1:$PORT
    option httplog
    log global
    default_backend be

backend be
    server s1 $B1
`

func TestProcessRunsServesAndStopsCleanly(t *testing.T) {
	b1 := haproxytest.Backend(t)
	// httplog at info level: the traffic log lines must reach our logger, parsed as info.
	h := startHAProxy(t, strings.Replace(oneBackend, "log global", "log stdout format short local0 info", 1),
		map[string]string{"$B1": b1.Addr})

	if got := h.mustGet(""); got != b1.ID {
		t.Fatalf("answered by %q, want %q", got, b1.ID)
	}
	st := h.proc.Status()
	if !st.Running || st.PID <= 0 || st.PID != h.proc.PID() || st.Restarts != 0 {
		t.Fatalf("status %+v, want running with a master pid and no restarts", st)
	}
	pidFile, err := os.ReadFile(h.proc.PIDFile())
	if err != nil || strings.TrimSpace(string(pidFile)) != fmt.Sprint(st.PID) {
		t.Fatalf("pid file %q (%v), want master pid %d", pidFile, err, st.PID)
	}
	if fi, err := os.Stat(h.proc.MasterSocket()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master socket %s: %v, mode %v, want 0600", h.proc.MasterSocket(), err, fi.Mode())
	}
	procs, err := h.proc.Master().ShowProc(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if m := masterProc(procs); m.PID != st.PID || len(CurrentWorkers(procs)) != 1 {
		t.Fatalf("show proc %+v: want master %d and one worker", procs, st.PID)
	}
	// The master's notices are logged at info with HAProxy's pid, the request log line too.
	ctx := h.ctx()
	if _, err := h.logs.Wait(ctx, "level=INFO", "Loading success", "haproxy_pid="); err != nil {
		t.Fatalf("no 'Loading success' info record: %v", err)
	}
	if _, err := h.logs.Wait(ctx, "level=INFO", "GET / HTTP/1.1", "fe be/s1 "); err != nil {
		t.Fatalf("no request log record: %v", err)
	}

	group := h.proc.GroupPIDs()
	if len(group) < 2 {
		t.Fatalf("process group %v: want the master and a worker", group)
	}
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.done <- nil // for the cleanup
	for _, pid := range group {
		if alive(pid) {
			t.Fatalf("process %d of %v still runs after Run returned", pid, group)
		}
	}
	if st := h.proc.Status(); st.Running || st.PID != 0 {
		t.Fatalf("status after stop %+v", st)
	}
	if _, err := h.logs.Wait(h.ctx(), "haproxy stopped"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.get(""); err == nil {
		t.Fatalf("the frontend still answers after stop")
	}
}

func TestProcessSoftStopFinishesOpenRequest(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "slow-done\n")
	})}
	l := listenLoopback(t)
	go slow.Serve(l)
	t.Cleanup(func() { slow.Close() })

	h := startHAProxy(t, oneBackend, map[string]string{"$B1": l.Addr().String()})
	result := make(chan string, 1)
	go func() {
		id, code, err := h.get("")
		result <- fmt.Sprintf("%d %s %v", code, id, err)
	}()
	<-entered
	h.cancel()
	// The master got SIGUSR1 and passed it on: the worker closes its listener and new
	// connections are refused, while the open request is still answered.
	if _, err := h.logs.Wait(h.ctx(), "Proxy fe stopped"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.get(""); err == nil {
		t.Fatal("a new connection was accepted during the soft stop")
	}
	close(release)
	if got := <-result; got != "200 slow-done <nil>" {
		t.Fatalf("open request during soft stop ended with %q", got)
	}
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	h.done <- nil
	if _, err := h.logs.Wait(h.ctx(), "haproxy stopped", `status="exit status 0"`); err != nil {
		t.Fatal(err)
	}
	if len(h.logs.Lines("soft stop timed out")) != 0 {
		t.Fatal("the soft stop needed SIGTERM")
	}
}

func TestProcessRestartsWhenWorkerKilled(t *testing.T) {
	b1 := haproxytest.Backend(t)
	h := startHAProxy(t, oneBackend, map[string]string{"$B1": b1.Addr})
	h.mustGet("")
	procs, err := h.proc.Master().ShowProc(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	oldMaster := h.proc.PID()
	restartsMetric := gathered(t, "lodestar_haproxy_process_restarts_total", nil)
	worker := CurrentWorkers(procs)[0].PID
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// HAProxy's master exits when its worker dies (exit-on-failure); the supervisor restarts it.
	haproxytest.WaitFor(t, 15*time.Second, func() bool {
		st := h.proc.Status()
		return st.Restarts == 1 && st.Running && st.PID != oldMaster
	}, "a restarted, running HAProxy")
	st := h.proc.Status()
	if !strings.Contains(st.LastExit, "137") {
		t.Fatalf("last exit %q, want the master's exit status 137 (worker killed)", st.LastExit)
	}
	if h.mustGet("") != b1.ID {
		t.Fatal("traffic did not resume after the restart")
	}
	if _, err := h.logs.Wait(h.ctx(), "level=ERROR", "haproxy exited; restarting", "137"); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, "lodestar_haproxy_process_restarts_total", nil); got < restartsMetric+1 {
		t.Fatalf("process_restarts_total %v, want at least %v", got, restartsMetric+1)
	}
	if alive(oldMaster) {
		t.Fatalf("old master %d still runs", oldMaster)
	}
}

func TestProcessRestartsWhenMasterKilled(t *testing.T) {
	b1 := haproxytest.Backend(t)
	h := startHAProxy(t, oneBackend, map[string]string{"$B1": b1.Addr})
	h.mustGet("")
	old := h.proc.GroupPIDs()
	oldMaster := h.proc.PID()
	if err := syscall.Kill(oldMaster, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	haproxytest.WaitFor(t, 15*time.Second, func() bool {
		st := h.proc.Status()
		return st.Restarts == 1 && st.Running && st.PID != oldMaster
	}, "a restarted, running HAProxy")
	if st := h.proc.Status(); !strings.Contains(st.LastExit, "killed") {
		t.Fatalf("last exit %q, want killed", st.LastExit)
	}
	for _, pid := range old {
		if alive(pid) {
			t.Fatalf("process %d of the killed master's group still runs", pid)
		}
	}
	if h.mustGet("") != b1.ID {
		t.Fatal("traffic did not resume after the restart")
	}
	if n := h.reloadCount(); n != 0 {
		t.Fatalf("reload count %d after a restart, want 0 (a fresh master)", n)
	}
}

func TestProcessRestartsWithBackoffWhileConfigIsBroken(t *testing.T) {
	b1 := haproxytest.Backend(t)
	h := startHAProxy(t, oneBackend, map[string]string{"$B1": b1.Addr})
	h.writeConfig(oneBackend + "    bogus-keyword\n")
	if err := syscall.Kill(h.proc.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Every start fails on the broken file: restarts go on, the alert is logged, nothing runs.
	haproxytest.WaitFor(t, 15*time.Second, func() bool { return h.proc.Restarts() >= 3 }, "three restarts")
	if h.proc.Status().Running {
		t.Fatal("status running with a configuration HAProxy refuses")
	}
	if _, err := h.logs.Wait(h.ctx(), "level=ERROR", "unknown keyword 'bogus-keyword'"); err != nil {
		t.Fatal(err)
	}
	h.writeConfig(oneBackend)
	haproxytest.WaitFor(t, 15*time.Second, func() bool { return h.proc.Status().Running }, "HAProxy running again")
	if h.mustGet("") != b1.ID {
		t.Fatal("traffic did not resume")
	}
}

func TestNewProcessChecksConfig(t *testing.T) {
	bin := haproxytest.Bin(t)
	dir := haproxytest.SocketDir(t)
	for _, tc := range []struct {
		name string
		cfg  ProcessConfig
		want string
	}{
		{"missing binary", ProcessConfig{Bin: filepath.Join(dir, "no-haproxy"), ConfigPath: "x.cfg", RunDir: dir}, "install Debian's haproxy package"},
		{"no config", ProcessConfig{Bin: bin, RunDir: dir}, "ConfigPath is required"},
		{"no run dir", ProcessConfig{Bin: bin, ConfigPath: "x.cfg"}, "RunDir is required"},
		{"run dir too long", ProcessConfig{Bin: bin, ConfigPath: "x.cfg", RunDir: filepath.Join(dir, strings.Repeat("d", 100))}, "too long for a unix socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewProcess(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewProcess: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	p, err := NewProcess(ProcessConfig{Bin: bin, ConfigPath: "x.cfg", RunDir: filepath.Join(dir, "run")})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "run")); err != nil || !fi.IsDir() {
		t.Fatalf("run dir not created: %v", err)
	}
	if err := p.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("Reload before Run: %v", err)
	}
	var rerr *ReloadError
	if !errors.As(p.Reload(context.Background()), &rerr) {
		t.Fatal("Reload before Run is not a *ReloadError")
	}
}

func TestProcessLogLevels(t *testing.T) {
	log, logs := logtest.New()
	p := &Process{log: log, out: newOutputRing(4)}
	p.readOutput(strings.NewReader(strings.Join([]string{
		"[NOTICE]   (12) : New worker (13) forked",
		"[WARNING]  (12) : config : missing timeouts for frontend 'fe'.",
		"   | While not properly invalid, you will certainly encounter various problems",
		"[ALERT]    (12) : Current worker (13) exited with code 137 (Killed)",
		"<134>fe be/s1 GET / 200",
		"<131>backend be has no server available!",
		"Proxy fe stopped (cumulated conns: FE: 0, BE: 0).",
	}, "\n")))
	for _, want := range [][]string{
		{"level=INFO", "New worker (13) forked", "haproxy_pid=12"},
		{"level=WARN", "missing timeouts"},
		{"level=WARN", "While not properly invalid"},
		{"level=ERROR", "exited with code 137"},
		{"level=INFO", `msg="fe be/s1 GET / 200"`},
		{"level=ERROR", `msg="backend be has no server available!"`},
		{"level=DEBUG", "Proxy fe stopped"}, // one per proxy at every reload: not at info
	} {
		if len(logs.Lines(want...)) != 1 {
			t.Errorf("no log record with %q in:\n%s", want, logs.String())
		}
	}
	if got := p.Output(); len(got) != 4 || got[3] != "Proxy fe stopped (cumulated conns: FE: 0, BE: 0)." {
		t.Fatalf("output ring kept %q, want the last 4 lines", got)
	}
}
