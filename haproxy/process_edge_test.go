package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// testSecret stands for lodestar's --api-auth credentials, given as LODESTAR_API_AUTH.
const testSecret = "token:s3cret-never-served"

// secretProbe answers lodestar's secret through both ways a configuration reads the
// environment: the env() sample fetch at request time and "${…}" expansion at parse time.
const secretProbe = `
frontend fe
    bind 127.0.0.1:$PORT
    http-request return status 200 content-type text/plain lf-string "fetch=%[env(LODESTAR_API_AUTH)] parse=${LODESTAR_API_AUTH}"
`

// Issue 12, item 4: HAProxy inherits nothing of lodestar's environment. With the secret in the
// test's own environment, neither a request nor the started processes' environments show it.
func TestProcessRunsWithScrubbedEnvironment(t *testing.T) {
	t.Setenv("LODESTAR_API_AUTH", testSecret)
	h := startHAProxy(t, secretProbe, nil)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", h.port))
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if got := string(body[:n]); got != "fetch= parse=" {
		t.Errorf("HAProxy answered %q, want the variable empty both ways", got)
	}
	pids := h.proc.GroupPIDs()
	if len(pids) < 2 {
		t.Fatalf("processes %v: want the master and a worker", pids)
	}
	for _, pid := range pids {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		for kv := range strings.SplitSeq(string(env), "\x00") {
			if strings.HasPrefix(kv, "LODESTAR_") || strings.Contains(kv, testSecret) {
				t.Errorf("process %d has %q in its environment", pid, kv)
			}
		}
		if !strings.Contains(string(env), haproxyPATH) {
			t.Errorf("process %d: no %s in %q", pid, haproxyPATH, env)
		}
	}
}

// `haproxy -c` runs with the same environment: an alert would otherwise print the value a
// "${…}" expanded to, and alerts end up in the status API.
func TestValidateDoesNotSeeLodestarEnvironment(t *testing.T) {
	t.Setenv("LODESTAR_API_AUTH", testSecret)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	text := "defaults\n    mode http\nfrontend fe\n    bind \"127.0.0.1:x${LODESTAR_API_AUTH}\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Validate(context.Background(), haproxytest.Bin(t), cfg)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Validate = %v, want a *ValidationError for the bad bind", err)
	}
	if strings.Contains(verr.Output, "s3cret") {
		t.Errorf("haproxy -c printed the secret:\n%s", verr.Output)
	}
}

// Issue 12, item 1: a `daemon` directive in a global section no longer makes HAProxy leave
// its supervisor. It runs in the foreground in lodestar's process group (no restart), the
// directive is named in the log, and nothing is left once Run returns.
func TestProcessDaemonDirectiveStaysSupervised(t *testing.T) {
	h := startHAProxy(t, "\nglobal\n    daemon\n"+secretProbe, nil)
	h.mustGet("")
	if _, err := h.logs.Wait(h.ctx(), "level=WARN", "asks HAProxy to daemonize", "line="); err != nil {
		t.Fatal(err)
	}
	pid := h.proc.PID()
	pids := h.proc.GroupPIDs()
	if len(pids) != 2 {
		t.Fatalf("processes %v, want the master and one worker", pids)
	}
	for _, p := range pids {
		if g, ok := liveProcessGroup(p); !ok || g != pid {
			t.Errorf("process %d is in group %d, want the master's %d", p, g, pid)
		}
	}
	if r := h.proc.Restarts(); r != 0 {
		t.Errorf("%d restarts, want none", r)
	}
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	h.done <- nil
	if left := processesNaming(t, h.cfg); len(left) > 0 {
		t.Fatalf("processes %v still run with %s after Run returned", left, h.cfg)
	}
}

// Should HAProxy daemonize all the same (here a wrapper drops -db), the supervisor finds the
// processes that left its group by their tag, kills them, and says so in the start failure:
// every restart of the loop that follows is cleaned up, and no orphan is left.
func TestProcessDaemonizedHAProxyIsKilled(t *testing.T) {
	dir := haproxytest.SocketDir(t)
	wrapper := filepath.Join(dir, "haproxy-without-db")
	script := "#!/bin/sh\nfor a do shift; [ \"$a\" = -db ] || set -- \"$@\" \"$a\"; done\nexec " + haproxytest.Bin(t) + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	port := haproxytest.FreePort(t)
	text := "global\n    daemon\n" + strings.ReplaceAll(secretProbe, "$PORT", strconv.Itoa(port))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logs := logtest.New()
	p, err := NewProcess(ProcessConfig{Bin: wrapper, ConfigPath: cfg, RunDir: dir, Logger: log, RestartBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case serr := <-p.FailedStarts():
		if !strings.Contains(serr.Error(), "daemonized") {
			t.Errorf("start failure %q does not say HAProxy daemonized", serr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no start failure reported\n%s", logs.Tail(3000))
	}
	if _, err := logs.Wait(context.Background(), "level=ERROR", "left the supervisor's process group"); err != nil {
		t.Fatal(err)
	}
	if left := processesNaming(t, cfg); len(left) > 0 {
		t.Errorf("daemonized processes %v still run after the failure was reported", left)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left := processesNaming(t, cfg); len(left) > 0 {
		t.Fatalf("processes %v still run with %s after Run returned\n%s", left, cfg, logs.Tail(3000))
	}
}

func TestNewProcessRefusesDaemonFlag(t *testing.T) {
	dir := haproxytest.SocketDir(t)
	_, err := NewProcess(ProcessConfig{Bin: haproxytest.Bin(t), ConfigPath: "x.cfg", RunDir: dir, ExtraArgs: []string{"-D"}})
	if err == nil || !strings.Contains(err.Error(), "daemon") {
		t.Fatalf("NewProcess with -D: %v, want a refusal", err)
	}
}

// processesNaming lists the live processes whose command line holds path (the test's own
// configuration file, so no other test's HAProxy counts).
func processesNaming(t *testing.T, path string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), path) && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
