package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// loadThrough sends one-connection-per-request GETs through r from clients goroutines until
// the returned stop is called, which returns the requests sent and the errors seen.
func loadThrough(t *testing.T, r route, clients int) func() (int, []error) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var errs []error
	sent := 0
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := lbClient(t, false)
			for ctx.Err() == nil {
				_, err := askBackend(c, http.MethodGet, r.url, r.host)
				mu.Lock()
				sent++
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", time.Now().Format("15:04:05.000"), err))
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return func() (int, []error) {
		cancel()
		wg.Wait()
		return sent, errs
	}
}

// TestHAProxyKeptAcrossLodestarRestart: lodestar with --haproxy-on-exit keep is SIGTERMed and
// started again under one-connection-per-request load, then upgraded (stopped, and a newer
// build started). No request fails, the same HAProxy master serves throughout, and a task
// added while lodestar was down reaches HAProxy once it is back, each time.
func TestHAProxyKeptAcrossLodestarRestart(t *testing.T) {
	t.Parallel()
	sp := FreePort(t)
	fm := startLBMarathon(t, lbApp("/kept", sp, map[string]string{"HAPROXY_0_VHOST": "kept.test"}))
	b1 := haproxytest.Backend(t)
	addTask(t, fm, "/kept", b1)
	lb := startLB(t, fm, "--haproxy-on-exit", "keep")
	pid := lb.status(t).Process.PID
	// Whatever happens, no HAProxy of this test outlives it.
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	r := lb.vhostRoute("kept.test")
	waitRoutesTo(t, lbClient(t, true), r, b1.ID)

	stopLoad := loadThrough(t, r, 4)
	time.Sleep(300 * time.Millisecond)
	lb.Lodestar.Stop(t)
	if !lb.Lodestar.Exited() || !processAlive(pid) {
		t.Fatalf("after lodestar's SIGTERM: lodestar exited %v, HAProxy master %d alive %v", lb.Lodestar.Exited(), pid, processAlive(pid))
	}
	// A change while no lodestar runs.
	b2 := haproxytest.Backend(t)
	addTask(t, fm, "/kept", b2)
	time.Sleep(300 * time.Millisecond)

	second := Start(t, lb.Lodestar.args...)
	second.WaitReady(t)
	lb.Lodestar = second
	if got := lb.status(t).Process.PID; got != pid {
		t.Fatalf("HAProxy master %d after the restart, want the kept %d", got, pid)
	}
	second.WaitLog(t, lbTimeout, "adopted the HAProxy a previous lodestar kept running")
	lb.waitActiveServers(t, backendName("/kept", sp), b1, b2)

	// An upgrade: a newer build of lodestar adopts the same HAProxy.
	newer := BuildVersion(t, "v-newer-build")
	lb.Lodestar.Stop(t)
	b3 := haproxytest.Backend(t)
	addTask(t, fm, "/kept", b3)
	third := StartBinary(t, newer, lb.Lodestar.args...)
	third.WaitReady(t)
	lb.Lodestar = third
	third.WaitLog(t, lbTimeout, "version=v-newer-build")
	if got := lb.status(t).Process.PID; got != pid {
		t.Fatalf("HAProxy master %d after the upgrade, want the kept %d", got, pid)
	}
	third.WaitLog(t, lbTimeout, "adopted the HAProxy a previous lodestar kept running")
	lb.waitActiveServers(t, backendName("/kept", sp), b1, b2, b3)
	time.Sleep(300 * time.Millisecond)
	sent, errs := stopLoad()
	t.Logf("%d requests across lodestar's restart and upgrade, %d failed", sent, len(errs))
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed across lodestar's restart and upgrade; first: %v", len(errs), sent, errs[0])
	}
	if masters := haproxyMasters(t, lb.RunDir); len(masters) != 1 || masters[0] != pid {
		t.Fatalf("HAProxy masters on the run dir: %v, want only %d", masters, pid)
	}
	assertTraffic(t, lbClient(t, true), []route{r}, []*haproxytest.HTTPBackend{b1, b2, b3}, nil, 5)
}

// TestHAProxyKeptOneLeftAloneByAnotherRunDir: a HAProxy kept by a lodestar on one run dir is
// neither adopted nor stopped by a lodestar starting on another.
func TestHAProxyKeptOneLeftAloneByAnotherRunDir(t *testing.T) {
	t.Parallel()
	sp := FreePort(t)
	fm := startLBMarathon(t, lbApp("/other", sp, map[string]string{"HAPROXY_0_VHOST": "other.test"}))
	b1 := haproxytest.Backend(t)
	addTask(t, fm, "/other", b1)
	first := startLB(t, fm, "--haproxy-on-exit", "keep")
	pid := first.status(t).Process.PID
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	first.Lodestar.Stop(t)

	fm2 := startLBMarathon(t)
	second := startLB(t, fm2)
	if got := second.status(t).Process.PID; got == pid || got == 0 {
		t.Fatalf("the lodestar on another run dir runs master %d, want its own", got)
	}
	second.Lodestar.Stop(t)
	if !processAlive(pid) {
		t.Fatalf("the HAProxy kept on %s (%d) was stopped by a lodestar on %s", first.RunDir, pid, second.RunDir)
	}
	waitRoutesTo(t, lbClient(t, true), first.vhostRoute("other.test"), b1.ID)
}

// processAlive reports a process that exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

// haproxyMasters lists the live haproxy processes whose command line names runDir's master
// socket and that lead their process group (masters, not workers).
func haproxyMasters(t *testing.T, runDir string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(runDir, "master.sock")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !processAlive(pid) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), sock) {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			out = append(out, pid)
		}
	}
	return out
}
