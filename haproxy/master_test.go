package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

func TestParseShowProc(t *testing.T) {
	// Output of HAProxy 2.6.12's master CLI, with an old worker and a program added.
	out := `#<PID>          <type>          <reloads>       <uptime>        <version>      
23288           master          4 [failed: 1]   0d01h02m03s     2.6.12-1+deb12u4
# workers
24110           worker          1               0d00h02m08s     2.6.12-1+deb12u4
# old workers
23790           worker          2               1d00h00m06s     2.6.12-1+deb12u4
# programs
24200           dataplane       0               0d00h00m09s     -
# old programs

`
	procs, err := ParseShowProc(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Proc{
		{PID: 23288, Type: "master", Reloads: 4, FailedReloads: 1, Uptime: time.Hour + 2*time.Minute + 3*time.Second, Version: "2.6.12-1+deb12u4"},
		{PID: 24110, Type: "worker", Reloads: 1, Uptime: 2*time.Minute + 8*time.Second, Version: "2.6.12-1+deb12u4"},
		{PID: 23790, Type: "worker", Reloads: 2, Uptime: 24*time.Hour + 6*time.Second, Version: "2.6.12-1+deb12u4", Old: true},
		{PID: 24200, Type: "dataplane", Program: true, Uptime: 9 * time.Second, Version: "-"},
	}
	if !slices.Equal(procs, want) {
		t.Fatalf("ParseShowProc:\n got %+v\nwant %+v", procs, want)
	}
	if cur := CurrentWorkers(procs); len(cur) != 1 || cur[0].PID != 24110 {
		t.Fatalf("CurrentWorkers = %+v, want only 24110", cur)
	}
	for _, bad := range []string{"", "# workers\n123 worker 0 0d00h00m01s 2.6\n", "master 1 2 3\n"} {
		if _, err := ParseShowProc(bad); err == nil {
			t.Errorf("ParseShowProc(%q) accepted", bad)
		}
	}
}

func TestReloadStartsNewWorkerWithNewConfig(t *testing.T) {
	b1, b2 := haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, oneBackend, map[string]string{"$B1": b1.Addr})
	if h.mustGet("") != b1.ID {
		t.Fatal("not served by b1")
	}
	before, err := h.proc.Master().ShowProc(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if n := h.reloadCount(); n != 0 {
		t.Fatalf("reload count %d at start", n)
	}

	h.vars["$B1"] = b2.Addr
	h.writeConfig(oneBackend)
	if err := h.proc.Reload(h.ctx()); err != nil {
		t.Fatal(err)
	}
	if n := h.reloadCount(); n != 1 {
		t.Fatalf("reload count %d after one reload, want 1", n)
	}
	after, err := h.proc.Master().ShowProc(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	oldW, newW := CurrentWorkers(before)[0], CurrentWorkers(after)
	if len(newW) != 1 || newW[0].PID == oldW.PID || newW[0].Reloads != 0 {
		t.Fatalf("workers after reload %+v, want one new worker (old was %d)", newW, oldW.PID)
	}
	if masterProc(after).PID != masterProc(before).PID {
		t.Fatal("the master changed pid: that is a restart, not a reload")
	}
	// The new worker serves the new configuration at once (fresh connections).
	for range 5 {
		if got := h.mustGet(""); got != b2.ID {
			t.Fatalf("after reload answered by %q, want %q", got, b2.ID)
		}
	}
	// The old worker leaves: it had no connection left.
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return !alive(oldW.PID) }, "the old worker to exit")

	// The same through a bare MasterClient.
	if err := NewMasterClient(h.proc.MasterSocket()).Reload(h.ctx()); err != nil {
		t.Fatal(err)
	}
	if n := h.reloadCount(); n != 2 {
		t.Fatalf("reload count %d, want 2", n)
	}
	if h.proc.Restarts() != 0 {
		t.Fatal("a reload counted as a restart")
	}
}

func TestReloadRefusedConfigKeepsServing(t *testing.T) {
	b1 := haproxytest.Backend(t)
	h := startHAProxy(t, oneBackend, map[string]string{"$B1": b1.Addr})
	before, err := h.proc.Master().ShowProc(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	h.writeConfig(oneBackend + "    bogus-keyword on\n")
	badLine := strings.Count(h.expand(testGlobal+oneBackend), "\n") + 1

	err = h.proc.Reload(h.ctx())
	var rerr *ReloadError
	if !errors.As(err, &rerr) {
		t.Fatalf("Reload of a broken config: %v, want a *ReloadError", err)
	}
	if len(rerr.Alerts) == 0 || rerr.Alerts[0].File != h.cfg || rerr.Alerts[0].Line != badLine ||
		!strings.Contains(rerr.Alerts[0].Message, "unknown keyword 'bogus-keyword'") {
		t.Fatalf("reload error %v: alerts %+v, want %s:%d unknown keyword", err, rerr.Alerts, h.cfg, badLine)
	}
	if !strings.Contains(err.Error(), "bogus-keyword") {
		t.Fatalf("error %q does not carry HAProxy's message", err)
	}
	after, err := h.proc.Master().ShowProc(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if w := CurrentWorkers(after); len(w) != 1 || w[0].PID != CurrentWorkers(before)[0].PID {
		t.Fatalf("workers after a refused reload %+v, want the old one", w)
	}
	if m := masterProc(after); m.Reloads != 1 || m.FailedReloads != 1 {
		t.Fatalf("master after a refused reload %+v, want 1 reload, 1 failed", m)
	}
	if h.mustGet("") != b1.ID {
		t.Fatal("not serving after a refused reload")
	}

	// A bare MasterClient cannot see the alerts but still reports the refusal.
	err = NewMasterClient(h.proc.MasterSocket()).Reload(h.ctx())
	if !errors.As(err, &rerr) || !strings.Contains(err.Error(), "refused the new configuration") {
		t.Fatalf("MasterClient.Reload of a broken config: %v", err)
	}

	h.writeConfig(oneBackend)
	if err := h.proc.Reload(h.ctx()); err != nil {
		t.Fatalf("reload after fixing the config: %v", err)
	}
	if m, _ := h.proc.Master().ShowProc(h.ctx()); masterProc(m).FailedReloads != 0 {
		t.Fatalf("failed reloads not reset by a good reload: %+v", m)
	}
}

func TestReloadTimesOutWithContext(t *testing.T) {
	b1 := haproxytest.Backend(t)
	h := startHAProxy(t, oneBackend, map[string]string{"$B1": b1.Addr})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.proc.Master().Reload(ctx)
	if err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("Reload with a done context: %v", err)
	}
}

func TestMasterExecWorker(t *testing.T) {
	b1 := haproxytest.Backend(t)
	h := startHAProxy(t, oneBackend, map[string]string{"$B1": b1.Addr})
	m := h.proc.Master()
	info, err := m.ExecWorker(h.ctx(), "show info")
	if err != nil {
		t.Fatal(err)
	}
	procs, _ := m.ShowProc(h.ctx())
	if !strings.Contains(info, "Name: HAProxy") || !strings.Contains(info, fmt.Sprintf("Pid: %d", CurrentWorkers(procs)[0].PID)) {
		t.Fatalf("@1 show info answered %q", info)
	}
	_, err = m.ExecWorker(h.ctx(), "set server be/nosuch state ready")
	var rerr *RuntimeError
	if !errors.As(err, &rerr) || rerr.Message != "No such server." {
		t.Fatalf("ExecWorker with an unknown server: %v", err)
	}
	out, err := m.Exec(h.ctx(), "show version")
	if err != nil || !strings.HasPrefix(out, "2.6") {
		t.Fatalf("master show version: %q %v", out, err)
	}
}

// loadBody balances over two backends; $W changes on every reload so each one loads a change.
const loadBody = `
frontend fe
    bind 127.0.0.1:$PORT
    default_backend be

backend be
    balance roundrobin
    server s1 $B1 weight $W
    server s2 $B2
`

// TestReloadsUnderLoadLoseNoRequest reloads 25 times while clients send requests without pause,
// over keep-alive connections and over one connection per request, and requires every single
// request to succeed. The keep-alive clients send POSTs, which net/http never retries on its
// own: a connection HAProxy closed under a request shows up as a failure. The knobs that make
// this hold are documented on testGlobal.
func TestReloadsUnderLoadLoseNoRequest(t *testing.T) {
	b1, b2 := haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, loadBody, map[string]string{"$B1": b1.Addr, "$B2": b2.Addr, "$W": "1"})
	url := fmt.Sprintf("http://127.0.0.1:%d/", h.port)

	var (
		okCount, failCount atomic.Int64
		failMu             sync.Mutex
		failures           []string
	)
	record := func(kind string, resp *http.Response, err error) {
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			id := strings.TrimSpace(string(body))
			if rerr == nil && resp.StatusCode == http.StatusOK && (id == b1.ID || id == b2.ID) {
				okCount.Add(1)
				return
			}
			err = fmt.Errorf("status %d body %q read error %v", resp.StatusCode, body, rerr)
		}
		failCount.Add(1)
		failMu.Lock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf("%s: %v", kind, err))
		}
		failMu.Unlock()
	}
	keepAlive := &http.Transport{MaxIdleConnsPerHost: 8}
	oneShot := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(keepAlive.CloseIdleConnections)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := func(kind string, tr *http.Transport, do func(*http.Client) (*http.Response, error)) {
		defer wg.Done()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := do(c)
			record(kind, resp, err)
		}
	}
	for range 4 {
		wg.Add(1)
		go client("keep-alive POST", keepAlive, func(c *http.Client) (*http.Response, error) {
			return c.Post(url, "text/plain", strings.NewReader("payload"))
		})
	}
	for range 2 {
		wg.Add(1)
		go client("new-connection GET", oneShot, func(c *http.Client) (*http.Response, error) {
			return c.Get(url)
		})
	}

	const reloads = 25
	for i := 1; i <= reloads; i++ {
		h.vars["$W"] = fmt.Sprint(i%5 + 1)
		h.writeConfig(loadBody)
		if err := h.proc.Reload(h.ctx()); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("reload %d: %v", i, err)
		}
		// Let traffic reach the new worker before the next reload.
		mark := okCount.Load() + failCount.Load()
		haproxytest.WaitFor(t, 10*time.Second, func() bool { return okCount.Load()+failCount.Load() >= mark+30 }, "requests after the reload")
	}
	close(stop)
	wg.Wait()

	if n := h.reloadCount(); n != reloads {
		t.Fatalf("reload count %d, want %d", n, reloads)
	}
	if f := failCount.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed during %d reloads; first ones:\n%s", f, f+okCount.Load(), reloads, strings.Join(failures, "\n"))
	}
	if b1.Requests() == 0 || b2.Requests() == 0 {
		t.Fatalf("backends served %d and %d requests, want both used", b1.Requests(), b2.Requests())
	}
	t.Logf("%d requests, 0 failed, %d reloads", okCount.Load(), reloads)
}

// BenchmarkReload measures a confirmed reload (master re-exec, new worker answering) of a small
// configuration.
func BenchmarkReload(b *testing.B) {
	b1 := haproxytest.Backend(b)
	h := startHAProxy(b, oneBackend, map[string]string{"$B1": b1.Addr})
	for b.Loop() {
		if err := h.proc.Reload(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
