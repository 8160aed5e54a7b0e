package haproxy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// adoptionSetup writes a configuration into a fresh directory without starting anything.
func adoptionSetup(t *testing.T) *testHAProxy {
	t.Helper()
	b1 := haproxytest.Backend(t)
	dir := haproxytest.SocketDir(t)
	h := &testHAProxy{t: t, dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), port: haproxytest.FreePort(t), vars: map[string]string{"$B1": b1.Addr}}
	h.writeConfig(oneBackend)
	return h
}

// runProcess runs a Process on h's files with keep (KeepOnExit) until the returned stop is
// called; it waits until HAProxy answers. Every HAProxy process of the directory is killed
// when the test ends, whatever happened.
func runProcess(t *testing.T, h *testHAProxy, keep bool, adoptWithin time.Duration) (*Process, *logtest.Buffer, func()) {
	t.Helper()
	log, logs := logtest.New()
	p, err := NewProcess(ProcessConfig{
		Bin: haproxytest.Bin(t), ConfigPath: h.cfg, RunDir: h.dir, Logger: log, KeepOnExit: keep, AdoptWithin: adoptWithin,
		HoldListeners: []string{fmt.Sprintf("127.0.0.1:%d", h.port)}, StopTimeout: 5 * time.Second, RestartBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-p.Started():
	case <-time.After(20 * time.Second):
		t.Fatalf("HAProxy did not start:\n%s", logs.Tail(3000))
	}
	pid := p.PID()
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return p, logs, stop
}

// TestProcessAdoptsKeptHAProxy: a Process with KeepOnExit leaves its master serving; the
// next Process on the run dir adopts that master (same pid) instead of starting one, takes
// over its listening socket (a SIGKILL of the adopted master then refuses nothing), and stops
// it on its own exit without KeepOnExit.
func TestProcessAdoptsKeptHAProxy(t *testing.T) {
	h := adoptionSetup(t)
	p1, _, stop1 := runProcess(t, h, true, 0)
	pid := p1.PID()
	stop1()
	if !alive(pid) {
		t.Fatalf("master %d did not outlive Run with KeepOnExit", pid)
	}
	h.mustGet("") // served with no Process running
	// While no Process runs, the next one writes its own configuration, with other lines.
	h.writeConfig("\n# a change made while lodestar was down\n" + oneBackend)

	p2, logs, stop2 := runProcess(t, h, false, 0)
	if p2.PID() != pid || !p2.Adopted() {
		t.Fatalf("second Process runs master %d (adopted %v), want %d adopted\n%s", p2.PID(), p2.Adopted(), pid, logs.Tail(3000))
	}
	if held := p2.HeldListeners(); !slices.Equal(held, []string{fmt.Sprintf("127.0.0.1:%d", h.port)}) {
		t.Fatalf("held listeners after adoption %v\n%s", held, logs.Tail(3000))
	}
	if _, err := os.Stat(filepath.Join(h.dir, keptFile)); err == nil {
		t.Fatalf("%s still there after the adoption", keptFile)
	}
	if err := p2.Reload(context.Background()); err != nil {
		t.Fatalf("reload of the adopted master: %v", err)
	}
	h.mustGet("")
	group := instanceMembers(pid, "")
	stop2()
	for _, q := range group {
		if alive(q) {
			t.Fatalf("process %d of the adopted HAProxy still runs after Run returned", q)
		}
	}
}

// TestProcessStopsKeptHAProxyNotAdoptedInTime: a kept master found after AdoptWithin is
// stopped and replaced, as is one of lodestar's that was not kept on purpose.
func TestProcessStopsKeptHAProxyNotAdoptedInTime(t *testing.T) {
	h := adoptionSetup(t)
	p1, _, stop1 := runProcess(t, h, true, 0)
	pid := p1.PID()
	stop1()
	// Kept two hours ago.
	old := fmt.Sprintf("%d %d\n", pid, time.Now().Add(-2*time.Hour).Unix())
	if err := os.WriteFile(filepath.Join(h.dir, keptFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	p2, logs, _ := runProcess(t, h, false, time.Hour)
	if p2.PID() == pid || p2.Adopted() || alive(pid) {
		t.Fatalf("master %d (alive %v) was adopted or left running: now %d\n%s", pid, alive(pid), p2.PID(), logs.Tail(3000))
	}
	if len(logs.Lines("stopping the HAProxy a previous lodestar left running", "longer than")) == 0 {
		t.Fatalf("no log of why it was stopped\n%s", logs.Tail(3000))
	}
	h.mustGet("")
}

// TestProcessLeavesForeignHAProxyAlone: a HAProxy named by the run dir's pid file and
// started with lodestar's exact command line, but not by lodestar (no supervisor tag), is
// neither adopted nor stopped.
func TestProcessLeavesForeignHAProxyAlone(t *testing.T) {
	h := adoptionSetup(t)
	// The foreign HAProxy serves another port from its own copy of the file.
	foreignPort := haproxytest.FreePort(t)
	live := filepath.Join(h.dir, "live", "haproxy.cfg")
	if err := os.MkdirAll(filepath.Dir(live), 0o750); err != nil {
		t.Fatal(err)
	}
	body := strings.ReplaceAll(h.expand(testGlobal+oneBackend), fmt.Sprintf(":%d", h.port), fmt.Sprintf(":%d", foreignPort))
	body = strings.ReplaceAll(body, "admin.sock", "foreign-admin.sock")
	body = strings.ReplaceAll(body, "/server-state", "/foreign-state")
	if err := os.WriteFile(live, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(h.dir, "master.sock")
	cmd := startForeign(t, "-W", "-db", "-S", sock+",mode,600", "-f", live, "-p", filepath.Join(h.dir, "haproxy.pid"))
	haproxytest.WaitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(h.dir, "haproxy.pid"))
		return strings.TrimSpace(string(b)) == fmt.Sprint(cmd.Process.Pid)
	}, "the foreign HAProxy's pid file")

	p, logs, stop := runProcess(t, h, false, 0)
	if p.PID() == cmd.Process.Pid || p.Adopted() {
		t.Fatalf("the foreign HAProxy %d was adopted", cmd.Process.Pid)
	}
	if len(logs.Lines("not lodestar's; leaving it alone", "no supervisor tag")) == 0 {
		t.Fatalf("no log of the foreign HAProxy left alone\n%s", logs.Tail(3000))
	}
	h.mustGet("")
	stop()
	if !alive(cmd.Process.Pid) {
		t.Fatalf("the foreign HAProxy %d was stopped", cmd.Process.Pid)
	}
}

// startForeign starts haproxy with args as an operator would by hand (its own process group,
// no supervisor tag), killed when the test ends.
func startForeign(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(haproxytest.Bin(t), args...)
	cmd.Env = []string{haproxyPATH}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the foreign HAProxy's output:\n%s", out.String())
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd
}
