package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

func TestRewriteBindsKeepsLinesAndOptions(t *testing.T) {
	config := "global\n  maxconn 10\nfrontend a\n  bind *:80\n  bind 127.0.0.1:8443 ssl crt /x.pem\nfrontend b\n  bind *:8080\n    bind\t[::]:9000 v4v6\n"
	fds := map[string]int{"*:80": 3, "127.0.0.1:8443": 4, "[::]:9000": 5}
	got := string(rewriteBinds([]byte(config), fds))
	want := "global\n  maxconn 10\nfrontend a\n  bind fd@3\n  bind fd@4 ssl crt /x.pem\nfrontend b\n  bind *:8080\n    bind\tfd@5 v4v6\n"
	if got != want {
		t.Fatalf("rewriteBinds:\n%s\nwant:\n%s", got, want)
	}
	if back := parseFDs(formatFDs(fds)); !maps.Equal(back, fds) {
		t.Fatalf("parseFDs(formatFDs(%v)) = %v", fds, back)
	}
	if got := boundAddrs([]byte(config)); !slices.Equal(got, []string{"*:80", "127.0.0.1:8443", "*:8080", "[::]:9000"}) {
		t.Fatalf("boundAddrs = %v", got)
	}
	// A record whose descriptor is not one an inherited socket has, or whose address is not
	// one lodestar holds, maps nothing.
	if back := parseFDs([]byte("x *:80\n1 *:81\n3 unix@/x\n4\n5 *:82 extra\n-7 *:83\n")); len(back) != 0 {
		t.Fatalf("parseFDs of hostile records = %v, want nothing", back)
	}
}

func TestListenerAddr(t *testing.T) {
	for in, want := range map[string]string{"*:80": "0.0.0.0:80", ":8080": "0.0.0.0:8080", "127.0.0.1:9": "127.0.0.1:9", "[::1]:443": "[::1]:443"} {
		got, err := listenerAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("listenerAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"fd@3", "unix@/x", "ipv4@1.2.3.4:80", "*:80,*:81", "*:80-81", "*:0", "*:70000", "example.com:80", "80", "/tmp/sock"} {
		if got, err := listenerAddr(bad); err == nil {
			t.Errorf("listenerAddr(%q) = %v, want an error", bad, got)
		}
	}
}

// TestListenerSetHoldsSocketsAcrossStarts: a held address gets its socket once, keeps its
// descriptor number from start to start, and an address outside the set is left to HAProxy.
func TestListenerSetHoldsSocketsAcrossStarts(t *testing.T) {
	a, b := fmt.Sprintf("127.0.0.1:%d", haproxytest.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", haproxytest.FreePort(t))
	s := NewListenerSet([]string{a, b})
	defer s.Close()
	warn := func(addr string, err error) { t.Errorf("open %s: %v", addr, err) }
	files, fds := s.forStart([]byte("  bind "+a+"\n  bind 127.0.0.1:1\n"), warn)
	if len(files) != 1 || !maps.Equal(fds, map[string]int{a: 3}) {
		t.Fatalf("first start: %d files, %v", len(files), fds)
	}
	// The kernel accepts into the held socket's backlog with nobody accepting.
	c, err := net.DialTimeout("tcp", a, 2*time.Second)
	if err != nil {
		t.Fatalf("connect to a held socket: %v", err)
	}
	c.Close()
	files2, fds2 := s.forStart([]byte("  bind "+b+"\n  bind "+a+"\n"), warn)
	if len(files2) != 2 || files2[0] != files[0] || !maps.Equal(fds2, map[string]int{a: 3, b: 4}) {
		t.Fatalf("second start: %v, want %s kept at 3 and %s added at 4", fds2, a, b)
	}
	// A set address another process holds is reported, and left out.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s2 := NewListenerSet([]string{busy.Addr().String()})
	var warned []string
	_, fds3 := s2.forStart([]byte("  bind "+busy.Addr().String()+"\n"), func(addr string, err error) { warned = append(warned, addr) })
	if len(fds3) != 0 || len(warned) != 1 {
		t.Fatalf("busy address: fds %v, warned %v", fds3, warned)
	}
	s.Close()
	if _, err := net.DialTimeout("tcp", a, 2*time.Second); err == nil {
		t.Fatalf("%s still accepts after Close", a)
	}
}

// loadSample is one request of runLoad.
type loadSample struct {
	start time.Time
	took  time.Duration
	err   error
}

// runLoad sends one-connection-per-request GETs to url from workers goroutines until ctx ends.
func runLoad(ctx context.Context, url string, workers int) func() []loadSample {
	var mu sync.Mutex
	var samples []loadSample
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for ctx.Err() == nil {
				start := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				mu.Lock()
				samples = append(samples, loadSample{start, time.Since(start), err})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() []loadSample {
		wg.Wait()
		return samples
	}
}

// loadReport counts refused and failed requests and the latency of those that started
// within [from, to] against the median of the others.
func loadReport(t *testing.T, samples []loadSample, from, to time.Time) (refused, failed int) {
	t.Helper()
	var base, window []time.Duration
	for _, s := range samples {
		if s.err != nil {
			if errors.Is(s.err, syscall.ECONNREFUSED) {
				refused++
			} else {
				failed++
			}
			if refused+failed <= 5 {
				t.Logf("request at %s failed: %v", s.start.Format("15:04:05.000"), s.err)
			}
			continue
		}
		if !s.start.Before(from) && !s.start.After(to) {
			window = append(window, s.took)
		} else {
			base = append(base, s.took)
		}
	}
	slices.Sort(base)
	slices.Sort(window)
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[int(p*float64(len(d)-1))]
	}
	median := pct(base, 0.5)
	t.Logf("%d requests (%d refused, %d failed); %d started during the restart (%v): extra latency p50 %v, p99 %v, max %v (others' median %v)",
		len(samples), refused, failed, len(window), to.Sub(from).Round(time.Millisecond),
		(pct(window, 0.5) - median).Round(time.Millisecond), (pct(window, 0.99) - median).Round(time.Millisecond),
		(pct(window, 1) - median).Round(time.Millisecond), median)
	return refused, failed
}

// killUnderLoad runs HAProxy with its frontend's socket held, puts one-connection-per-request
// load on it, SIGKILLs the process victim picks, waits for the supervisor's restart and checks
// that no request was refused or failed.
func killUnderLoad(t *testing.T, victim func(h *testHAProxy) int) {
	b1 := haproxytest.Backend(t)
	var h *testHAProxy
	port := haproxytest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	h = startHAProxyWith(t, func(c *ProcessConfig) { c.HoldListeners = []string{addr} },
		strings.ReplaceAll(oneBackend, "$PORT", fmt.Sprint(port)), map[string]string{"$B1": b1.Addr})
	h.port = port
	if held := h.proc.HeldListeners(); !slices.Equal(held, []string{addr}) {
		t.Fatalf("held listeners %v, want %s", held, addr)
	}
	live, err := os.ReadFile(filepath.Join(h.dir, "live", "haproxy.cfg"))
	if err != nil || !strings.Contains(string(live), "bind fd@3") {
		t.Fatalf("live configuration (%v):\n%s", err, live)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := runLoad(ctx, fmt.Sprintf("http://%s/", addr), loadClients)
	time.Sleep(500 * time.Millisecond)
	oldMaster := h.proc.PID()
	pid := victim(h)
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.proc.Restarted():
	case <-time.After(20 * time.Second):
		t.Fatalf("HAProxy was not restarted")
	}
	backAt := time.Now()
	if h.proc.PID() == oldMaster {
		t.Fatalf("master %d still the same after the kill", oldMaster)
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	refused, failed := loadReport(t, wait(), killedAt, backAt)
	// A request HAProxy's worker had accepted dies with it (a worker whose master died exits
	// at once, by HAProxy's design): at most one per client can be in flight. Every other
	// request waits in the held socket's backlog and is served by the next master.
	if refused != 0 || failed > loadClients {
		t.Fatalf("%d refused and %d failed requests across the kill, want none refused and at most the %d in flight", refused, failed, loadClients)
	}
}

// loadClients is how many clients killUnderLoad runs, each with one request at a time.
const loadClients = 4

func TestHeldListenersSurviveMasterKill(t *testing.T) {
	killUnderLoad(t, func(h *testHAProxy) int { return h.proc.PID() })
}

func TestHeldListenersSurviveWorkerKill(t *testing.T) {
	killUnderLoad(t, func(h *testHAProxy) int {
		procs, err := h.proc.Master().ShowProc(h.ctx())
		if err != nil || len(CurrentWorkers(procs)) == 0 {
			t.Fatalf("show proc: %v %v", procs, err)
		}
		return CurrentWorkers(procs)[0].PID
	})
}

// TestHeldListenersAcrossReloadAndNewAddress: the inherited descriptor stays valid across the
// master's re-execution at a reload; an address the reloaded file adds is bound by HAProxy
// itself, and held from the next start on.
func TestHeldListenersAcrossReloadAndNewAddress(t *testing.T) {
	b1 := haproxytest.Backend(t)
	pa, pb := haproxytest.FreePort(t), haproxytest.FreePort(t)
	a, b := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)
	one := strings.ReplaceAll(oneBackend, "$PORT", fmt.Sprint(pa))
	h := startHAProxyWith(t, func(c *ProcessConfig) { c.HoldListeners = []string{a, b} }, one, map[string]string{"$B1": b1.Addr})
	h.port = pa
	get := func(addr string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("GET via %s: %v", addr, err)
		}
		resp.Body.Close()
	}
	get(a)
	two := one + "\nfrontend fe2\n    bind " + b + "\n    default_backend be\n"
	h.writeConfig(two)
	if err := h.proc.Reload(h.ctx()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	get(a) // fd@3 still open in the re-executed master, handed to the new worker
	get(b)
	if held := h.proc.HeldListeners(); !slices.Equal(held, []string{a}) {
		t.Fatalf("held after the reload: %v, want only %s (b is HAProxy's own until a start)", held, a)
	}
	if err := syscall.Kill(h.proc.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.proc.Restarted():
	case <-time.After(20 * time.Second):
		t.Fatalf("HAProxy was not restarted")
	}
	if held := h.proc.HeldListeners(); !slices.Equal(held, []string{a, b}) {
		t.Fatalf("held after the restart: %v, want %s and %s", held, a, b)
	}
	live, _ := os.ReadFile(filepath.Join(h.dir, "live", "haproxy.cfg"))
	if !strings.Contains(string(live), "bind fd@3") || !strings.Contains(string(live), "bind fd@4") {
		t.Fatalf("live configuration after the restart:\n%s", live)
	}
	get(a)
	get(b)
}

// TestHeldListenersReloadOntoBusyPortIsRefusedFirst: a reload whose new bind address another
// process holds is refused before the master is asked (a refusing 2.6 master loses the
// sockets it inherited), with an alert naming the line; the next reload works on fd@3.
func TestHeldListenersReloadOntoBusyPortIsRefusedFirst(t *testing.T) {
	b1 := haproxytest.Backend(t)
	port := haproxytest.FreePort(t)
	a := fmt.Sprintf("127.0.0.1:%d", port)
	one := strings.ReplaceAll(oneBackend, "$PORT", fmt.Sprint(port))
	h := startHAProxyWith(t, func(c *ProcessConfig) { c.HoldListeners = []string{a} }, one, map[string]string{"$B1": b1.Addr})
	h.port = port
	busy := listenLoopback(t)
	before := h.reloadCount()
	h.writeConfig(one + "\nfrontend taken\n    bind " + busy.Addr().String() + "\n    default_backend be\n")
	err := h.proc.Reload(h.ctx())
	var rerr *ReloadError
	if !errors.As(err, &rerr) || len(rerr.Alerts) != 1 || rerr.Alerts[0].Proxy != "taken" || rerr.Alerts[0].Line == 0 {
		t.Fatalf("reload onto a busy port: %v (%+v), want one alert naming frontend taken and its line", err, rerr)
	}
	if got := h.reloadCount(); got != before {
		t.Fatalf("the master was asked to reload (%d → %d)", before, got)
	}
	h.writeConfig(one + "\nfrontend second\n    bind 127.0.0.1:" + fmt.Sprint(haproxytest.FreePort(t)) + "\n    default_backend be\n")
	if err := h.proc.Reload(h.ctx()); err != nil {
		t.Fatalf("the next reload: %v", err)
	}
	h.mustGet("")
}
