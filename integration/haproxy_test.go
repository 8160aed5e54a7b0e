package integration

// End-to-end tests of lodestar's HAProxy front end: the real lodestar binary drives a real
// HAProxy 2.6 for a fake Marathon; tasks are real Go HTTP servers on 127.0.0.1, and every
// assertion is about what clients see through HAProxy, what HAProxy itself reports (the master's
// reload counter, `show stat`) and what lodestar reports (/v1/haproxy/status, /metrics).

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// TestHAProxyScaleWithoutReload scales an app 1 → 5 → 2 tasks: after each step the requests
// through its vhost and its service port reach exactly the live tasks, and HAProxy never
// reloads: every change goes through the Runtime API.
func TestHAProxyScaleWithoutReload(t *testing.T) {
	t.Parallel()
	const appID = "/shop/scale"
	sp := FreePort(t)
	fm := startLBMarathon(t, lbApp(appID, sp, map[string]string{"HAPROXY_0_VHOST": "scale.test"}))
	backends := make([]*haproxytest.HTTPBackend, 5)
	for i := range backends {
		backends[i] = haproxytest.Backend(t)
	}
	tasks := []string{addTask(t, fm, appID, backends[0])}

	lb := startLB(t, fm)
	c := lbClient(t, true)
	routes := []route{lb.vhostRoute("scale.test"), portRoute(sp)}
	be := backendName(appID, sp)
	lb.waitActiveServers(t, be, backends[0])
	assertTraffic(t, c, routes, backends[:1], backends[1:], 10)
	reloads := lb.reloadCount(t)
	before := lb.status(t)

	for _, b := range backends[1:] {
		tasks = append(tasks, addTask(t, fm, appID, b))
	}
	lb.waitActiveServers(t, be, backends...)
	assertTraffic(t, c, routes, backends, nil, 10)

	for _, id := range tasks[2:] {
		killTask(t, fm, id)
	}
	lb.waitActiveServers(t, be, backends[:2]...)
	assertTraffic(t, c, routes, backends[:2], backends[2:], 10)

	if got := lb.reloadCount(t); got != reloads {
		t.Errorf("HAProxy's reload count (show proc) went from %d to %d while scaling 1 → 5 → 2: want no reload", reloads, got)
	}
	after := lb.status(t)
	if after.Reloads != before.Reloads {
		t.Errorf("/v1/haproxy/status: reloads went from %d to %d while scaling, want no reload", before.Reloads, after.Reloads)
	}
	if after.RuntimeApplies <= before.RuntimeApplies {
		t.Errorf("/v1/haproxy/status: runtime_applies %d → %d, want more after scaling", before.RuntimeApplies, after.RuntimeApplies)
	}
	if after.LastApply == nil || after.LastApply.Kind != "runtime" {
		t.Errorf("/v1/haproxy/status: last_apply %+v, want kind runtime", after.LastApply)
	}
}

// TestHAProxyNewVhostOneReload adds an app with a new vhost: HAProxy reloads exactly once and
// the vhost routes to its task; the app's second task then needs no reload.
func TestHAProxyNewVhostOneReload(t *testing.T) {
	t.Parallel()
	spBase, spNew := FreePort(t), FreePort(t)
	fm := startLBMarathon(t, lbApp("/base", spBase, map[string]string{"HAPROXY_0_VHOST": "base.test"}))
	base := haproxytest.Backend(t)
	addTask(t, fm, "/base", base)

	lb := startLB(t, fm)
	c := lbClient(t, true)
	waitRoutesTo(t, c, lb.vhostRoute("base.test"), base.ID)
	fresh := lb.vhostRoute("fresh.test")
	if id, err := askBackend(c, http.MethodGet, fresh.url, fresh.host); err == nil {
		t.Fatalf("vhost fresh.test reached backend %s before its app existed", id)
	}
	reloads := lb.reloadCount(t)
	before := lb.status(t)

	putApp(t, fm, lbApp("/fresh", spNew, map[string]string{"HAPROXY_0_VHOST": "fresh.test"}))
	f1 := haproxytest.Backend(t)
	addTask(t, fm, "/fresh", f1)
	waitRoutesTo(t, c, fresh, f1.ID)
	waitRoutesTo(t, c, portRoute(spNew), f1.ID)

	// A second task goes through the Runtime API; once it takes traffic, every event before it
	// has been applied.
	// HAProxy serves the new app before lodestar has confirmed the reload and recorded it.
	var mid haproxy.ApplierStatus
	Eventually(t, lbTimeout, "lodestar to record the reload", func() error {
		if mid = lb.status(t); mid.Reloads == before.Reloads {
			return fmt.Errorf("reloads still %d", mid.Reloads)
		}
		return nil
	})
	f2 := haproxytest.Backend(t)
	addTask(t, fm, "/fresh", f2)
	lb.waitActiveServers(t, backendName("/fresh", spNew), f1, f2)
	after := lb.waitApplied(t, mid)
	assertTraffic(t, c, []route{fresh, portRoute(spNew)}, []*haproxytest.HTTPBackend{f1, f2}, []*haproxytest.HTTPBackend{base}, 5)

	if got := lb.reloadCount(t); got != reloads+1 {
		t.Errorf("HAProxy's reload count (show proc) went from %d to %d for one new app: want exactly one reload", reloads, got)
	}
	if after.Reloads != before.Reloads+1 {
		t.Errorf("/v1/haproxy/status: reloads %d → %d, want +1", before.Reloads, after.Reloads)
	}
	if after.LastApply == nil || after.LastApply.Kind != "runtime" {
		t.Errorf("/v1/haproxy/status: last_apply %+v after the second task, want kind runtime", after.LastApply)
	}
}

// loadCounter counts the outcomes of one kind of client.
type loadCounter struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
}

func (lc *loadCounter) fail(err error) {
	lc.failed.Add(1)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if len(lc.errs) < 5 {
		lc.errs = append(lc.errs, err.Error())
	}
}

// runLoad sends requests through r until ctx ends. POST requests have their GetBody removed,
// so that Go's transport never replays one: every failure counts.
func runLoad(ctx context.Context, c *http.Client, method string, r route, lc *loadCounter) {
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, method, r.url, strings.NewReader("ping"))
		if err != nil {
			lc.fail(err)
			return
		}
		req.GetBody = nil
		req.Host = r.host
		resp, err := c.Do(req)
		if ctx.Err() != nil {
			if err == nil {
				resp.Body.Close()
			}
			return
		}
		if err != nil {
			lc.fail(fmt.Errorf("%s %s: %w", method, r.name, err))
			continue
		}
		err = drain(resp)
		switch {
		case err != nil:
			lc.fail(fmt.Errorf("%s %s: reading the body: %w", method, r.name, err))
		case resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend-Id") == "":
			lc.fail(fmt.Errorf("%s %s: status %d", method, r.name, resp.StatusCode))
		default:
			lc.ok.Add(1)
		}
	}
}

// drain reads and closes a response body.
func drain(resp *http.Response) error {
	defer resp.Body.Close()
	_, err := io.Copy(io.Discard, resp.Body)
	return err
}

// TestHAProxyReloadsUnderLoad drives 50 structural changes through lodestar (a label of a side
// app flips, so each needs a reload) while clients keep sending requests to another app, over
// keep-alive connections (POST, which Go never retries) and over a new connection each (GET):
// not one request may fail, and HAProxy must have reloaded at least 50 times.
func TestHAProxyReloadsUnderLoad(t *testing.T) {
	t.Parallel()
	const reloads = 50
	spLoad, spToggle := FreePort(t), FreePort(t)
	toggle := func(balance string) map[string]any {
		return lbApp("/toggle", spToggle, map[string]string{"HAPROXY_0_VHOST": "toggle.test", "HAPROXY_0_BALANCE": balance})
	}
	fm := startLBMarathon(t, lbApp("/load", spLoad, map[string]string{"HAPROXY_0_VHOST": "load.test"}), toggle("roundrobin"))
	b1, b2, tb := haproxytest.Backend(t), haproxytest.Backend(t), haproxytest.Backend(t)
	addTask(t, fm, "/load", b1)
	addTask(t, fm, "/load", b2)
	addTask(t, fm, "/toggle", tb)

	lb := startLB(t, fm, "--reload-min-wait", "1ms", "--reload-max-wait", "10ms")
	lb.waitActiveServers(t, backendName("/load", spLoad), b1, b2)
	routes := []route{lb.vhostRoute("load.test"), portRoute(spLoad)}

	var keepAlive, fresh loadCounter
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range routes {
		for range 2 {
			c := lbClient(t, true)
			wg.Go(func() { runLoad(ctx, c, http.MethodPost, r, &keepAlive) })
		}
		c := lbClient(t, false)
		wg.Go(func() { runLoad(ctx, c, http.MethodGet, r, &fresh) })
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	defer stop()
	progress := func(what string, ka, nka int64) {
		t.Helper()
		Eventually(t, lbTimeout, what, func() error {
			if k, n := keepAlive.ok.Load(), fresh.ok.Load(); k < ka || n < nka {
				return fmt.Errorf("keep-alive ok %d/%d, new-connection ok %d/%d; failed %d and %d", k, ka, n, nka, keepAlive.failed.Load(), fresh.failed.Load())
			}
			return nil
		})
	}
	progress("the clients to get answers", 20, 10)

	start := lb.reloadCount(t)
	startStatus := lb.status(t)
	kaBefore, nkaBefore := keepAlive.ok.Load(), fresh.ok.Load()
	count := start
	for i := range reloads {
		balance := "leastconn"
		if i%2 == 1 {
			balance = "roundrobin"
		}
		putApp(t, fm, toggle(balance))
		count = lb.waitReloadCount(t, count)
	}
	// Keep the load on until the last reload has served requests too.
	progress("requests after the last reload", keepAlive.ok.Load()+20, fresh.ok.Load()+10)
	Eventually(t, lbTimeout, "lodestar to confirm its reloads", func() error {
		if st := lb.status(t); st.Reloads < startStatus.Reloads+reloads {
			return fmt.Errorf("/v1/haproxy/status reloads %d, want at least %d", st.Reloads, startStatus.Reloads+reloads)
		}
		return nil
	})
	stop()

	t.Logf("%d reloads; keep-alive POSTs: %d ok (%d during the reloads), %d failed; new-connection GETs: %d ok (%d during the reloads), %d failed",
		count-start, keepAlive.ok.Load(), keepAlive.ok.Load()-kaBefore, keepAlive.failed.Load(),
		fresh.ok.Load(), fresh.ok.Load()-nkaBefore, fresh.failed.Load())
	if n := keepAlive.failed.Load(); n > 0 {
		t.Errorf("%d keep-alive request(s) failed across the reloads, first: %q", n, keepAlive.errs)
	}
	if n := fresh.failed.Load(); n > 0 {
		t.Errorf("%d new-connection request(s) failed across the reloads, first: %q", n, fresh.errs)
	}
	if count-start < reloads {
		t.Errorf("HAProxy's reload count went from %d to %d, want at least %d reloads", start, count, reloads)
	}
}

// bulkTask is a running task of appID, embedded in its definition, on backend's port.
func bulkTask(appID string, b *haproxytest.HTTPBackend) map[string]any {
	return map[string]any{
		"id":          strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_") + ".t1",
		"appId":       appID,
		"host":        "127.0.0.1",
		"ipAddresses": []any{map[string]any{"ipAddress": "127.0.0.1", "protocol": "IPv4"}},
		"ports":       []any{b.Port},
		"slaveId":     "fakemarathon-S0",
		"state":       "TASK_RUNNING",
		"stagedAt":    "2024-01-01T00:00:00.000Z",
		"startedAt":   "2024-01-01T00:00:01.000Z",
	}
}

// TestHAProxyBadAppAmong500 runs 500 apps of which one has a bad label value: first one that
// lodestar's label parser rejects (HAPROXY_0_MODE=htp), then, once that one is fixed, one that
// only HAProxy rejects (a bind option HAProxy does not know). Each time that app alone is left
// out, with a message naming it (and, for the second, HAProxy's own alert), the other 499 are
// served, and the update that broke the app costs at most 2 `haproxy -c` runs.
func TestHAProxyBadAppAmong500(t *testing.T) {
	t.Parallel()
	const (
		n        = 500
		badLabel = 250 // HAPROXY_0_MODE=htp
		badBind  = 100 // HAPROXY_0_BIND_OPTIONS with a keyword HAProxy does not know
	)
	ports := freePortBlock(t, n)
	backends := make([]*haproxytest.HTTPBackend, 4)
	for i := range backends {
		backends[i] = haproxytest.Backend(t)
	}
	appID := func(i int) string { return fmt.Sprintf("/bulk/app-%03d", i) }
	vhost := func(i int) string { return fmt.Sprintf("app-%03d.bulk.test", i) }
	app := func(i int, extra map[string]string) map[string]any {
		labels := map[string]string{"HAPROXY_0_VHOST": vhost(i)}
		for k, v := range extra {
			labels[k] = v
		}
		a := lbApp(appID(i), ports[i], labels)
		a["instances"] = 1
		a["tasks"] = []any{bulkTask(appID(i), backends[i%len(backends)])}
		return a
	}
	apps := make([]map[string]any, n)
	for i := range apps {
		apps[i] = app(i, nil)
	}
	apps[badLabel] = app(badLabel, map[string]string{"HAPROXY_0_MODE": "htp"})
	fm := startLBMarathon(t, apps...)

	lb := startLB(t, fm)
	c := lbClient(t, true)
	// served checks that every app but the skipped ones answers through its vhost with its own
	// backend, a sample of them and the neighbours of the skipped ones through their service
	// ports too, and that the skipped ones are not served.
	served := func(skip ...int) {
		t.Helper()
		near := map[int]bool{}
		for _, s := range skip {
			near[s-1], near[s+1] = true, true
		}
		for i := range n {
			r := lb.vhostRoute(vhost(i))
			id, err := askBackend(c, http.MethodGet, r.url, r.host)
			if containsInt(skip, i) {
				if err == nil {
					t.Errorf("excluded app %s is still served by %s through %s", appID(i), id, r.name)
				}
				continue
			}
			want := backends[i%len(backends)].ID
			if err != nil || id != want {
				t.Errorf("app %s through %s: backend %q, %v; want %s", appID(i), r.name, id, err, want)
				continue
			}
			if i%50 == 7 || near[i] {
				pr := portRoute(ports[i])
				if id, err := askBackend(c, http.MethodGet, pr.url, ""); err != nil || id != want {
					t.Errorf("app %s through %s: backend %q, %v; want %s", appID(i), pr.name, id, err, want)
				}
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	// (a) A value the label parser rejects.
	st := lb.status(t)
	ex := excludedApp(st, appID(badLabel))
	switch {
	case ex == nil:
		t.Fatalf("/v1/haproxy/status does not list %s (HAPROXY_0_MODE=htp) as excluded: %+v", appID(badLabel), st.Excluded)
	case len(st.Excluded) != 1:
		t.Errorf("/v1/haproxy/status excludes %+v, want only %s", st.Excluded, appID(badLabel))
	}
	for _, part := range []string{appID(badLabel), "HAPROXY_0_MODE", "htp"} {
		if !strings.Contains(ex.Reason, part) {
			t.Errorf("exclusion of %s: reason %q does not name %s (the app, the label and its value)", appID(badLabel), ex.Reason, part)
		}
	}
	served(badLabel)

	// Fixing it brings it back.
	putApp(t, fm, app(badLabel, nil))
	waitRoutesTo(t, c, lb.vhostRoute(vhost(badLabel)), backends[badLabel%len(backends)].ID)
	Eventually(t, lbTimeout, "no app excluded after the fix", func() error {
		if st := lb.status(t); len(st.Excluded) != 0 {
			return fmt.Errorf("excluded: %+v", st.Excluded)
		}
		return nil
	})

	// (b) A value only HAProxy rejects: an allowed bind option (the label check passes it) with
	// an argument HAProxy does not know.
	validations := lb.metric(t, "lodestar_haproxy_validations_total")
	putApp(t, fm, app(badBind, map[string]string{"HAPROXY_0_BIND_OPTIONS": "proto bogus-keyword"}))
	Eventually(t, lbTimeout, "HAProxy's validation to exclude "+appID(badBind), func() error {
		st = lb.status(t)
		if ex = excludedApp(st, appID(badBind)); ex == nil || len(ex.HAProxy) == 0 {
			return fmt.Errorf("excluded: %+v", st.Excluded)
		}
		return nil
	})
	if len(st.Excluded) != 1 {
		t.Errorf("/v1/haproxy/status excludes %+v, want only %s", st.Excluded, appID(badBind))
	}
	if msg := strings.Join(ex.HAProxy, "\n"); !strings.Contains(msg, "bogus-keyword") {
		t.Errorf("exclusion of %s: HAProxy's message %q does not name the bad keyword", appID(badBind), msg)
	}
	if st.LastApply == nil || st.LastApply.Validations > 2 {
		t.Errorf("last_apply %+v: want at most 2 validations", st.LastApply)
	}
	served(badBind)
	if d := lb.metric(t, "lodestar_haproxy_validations_total") - validations; d < 1 || d > 2 {
		t.Errorf("lodestar_haproxy_validations_total grew by %v for the update that broke %s, want 1 or 2", d, appID(badBind))
	}

	// While the bad app stays, a task of another app still goes through the Runtime API: no
	// reload, no validation.
	validations = lb.metric(t, "lodestar_haproxy_validations_total")
	reloads := lb.reloadCount(t)
	st = lb.status(t)
	extra := haproxytest.Backend(t)
	addTask(t, fm, appID(7), extra)
	waitRoutesTo(t, c, portRoute(ports[7]), extra.ID)
	after := lb.waitApplied(t, st)
	if after.Reloads != st.Reloads || after.LastApply == nil || after.LastApply.Kind != "runtime" {
		t.Errorf("a new task of %s while %s is excluded: reloads %d → %d, last_apply %+v; want a runtime apply and no reload",
			appID(7), appID(badBind), st.Reloads, after.Reloads, after.LastApply)
	}
	if got := lb.reloadCount(t); got != reloads {
		t.Errorf("a new task of %s while %s is excluded: HAProxy's reload count went from %d to %d, want no reload", appID(7), appID(badBind), reloads, got)
	}
	if d := lb.metric(t, "lodestar_haproxy_validations_total") - validations; d != 0 {
		t.Errorf("a new task of %s while %s is excluded cost %v validation(s), want none (runtime only)", appID(7), appID(badBind), d)
	}
}

// excludedApp returns the exclusion of appID in st, nil when there is none.
func excludedApp(st haproxy.ApplierStatus, appID string) *haproxy.ExcludedApp {
	for i := range st.Excluded {
		if st.Excluded[i].AppID == appID {
			return &st.Excluded[i]
		}
	}
	return nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestHAProxyRestartedAfterKill kills HAProxy's master with SIGKILL under lodestar: lodestar
// starts it again, says so in /v1/haproxy/status, traffic resumes, and runtime updates reach
// the new HAProxy.
func TestHAProxyRestartedAfterKill(t *testing.T) {
	t.Parallel()
	sp := FreePort(t)
	fm := startLBMarathon(t, lbApp("/phoenix", sp, map[string]string{"HAPROXY_0_VHOST": "phoenix.test"}))
	b1 := haproxytest.Backend(t)
	addTask(t, fm, "/phoenix", b1)

	lb := startLB(t, fm)
	c := lbClient(t, true)
	r := lb.vhostRoute("phoenix.test")
	waitRoutesTo(t, c, r, b1.ID)
	st := lb.status(t)
	pid := st.Process.PID
	if !st.Process.Running || pid == 0 || st.Process.Restarts != 0 {
		t.Fatalf("/v1/haproxy/status process %+v: want running, a pid and no restart", st.Process)
	}
	// Kill only what is HAProxy's master: the pid lodestar reports must be a haproxy process.
	if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err != nil || strings.TrimSpace(string(comm)) != "haproxy" {
		t.Fatalf("pid %d from /v1/haproxy/status is not haproxy: %q, %v", pid, comm, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL to HAProxy's master %d: %v", pid, err)
	}

	Eventually(t, lbTimeout, "lodestar to restart HAProxy", func() error {
		st = lb.status(t)
		p := st.Process
		if p.Restarts < 1 || !p.Running || p.PID == 0 || p.PID == pid || p.LastExit == "" {
			return fmt.Errorf("process %+v", p)
		}
		return nil
	})
	if !strings.Contains(st.Process.LastExit, "killed") && !strings.Contains(st.Process.LastExit, "9") {
		t.Errorf("last_exit %q does not say the master was killed", st.Process.LastExit)
	}
	waitRoutesTo(t, c, r, b1.ID)

	b2 := haproxytest.Backend(t)
	addTask(t, fm, "/phoenix", b2)
	lb.waitActiveServers(t, backendName("/phoenix", sp), b1, b2)
	assertTraffic(t, c, []route{r, portRoute(sp)}, []*haproxytest.HTTPBackend{b1, b2}, nil, 5)
}

// TestHAProxyReloadRefusedBindLeavesAppOut: a new app's service port is held by another
// process. `haproxy -c` passes, HAProxy's reload fails on that bind: lodestar leaves that app
// out (blaming it by the frontend the alert names), another app added at the same time goes
// live, HAProxy's file on disk is the configuration lodestar reports, and the app already
// there keeps serving.
func TestHAProxyReloadRefusedBindLeavesAppOut(t *testing.T) {
	t.Parallel()
	spBase, spFresh := FreePort(t), FreePort(t)
	fm := startLBMarathon(t, lbApp("/base", spBase, map[string]string{"HAPROXY_0_VHOST": "base.test"}))
	base := haproxytest.Backend(t)
	addTask(t, fm, "/base", base)
	lb := startLB(t, fm)
	c := lbClient(t, true)
	waitRoutesTo(t, c, lb.vhostRoute("base.test"), base.ID)

	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	spHeld := held.Addr().(*net.TCPAddr).Port
	putApp(t, fm, lbApp("/held", spHeld, map[string]string{"HAPROXY_0_VHOST": "held.test"}))
	heldBackend := haproxytest.Backend(t)
	addTask(t, fm, "/held", heldBackend)
	putApp(t, fm, lbApp("/fresh", spFresh, map[string]string{"HAPROXY_0_VHOST": "fresh.test"}))
	fresh := haproxytest.Backend(t)
	addTask(t, fm, "/fresh", fresh)

	waitRoutesTo(t, c, lb.vhostRoute("fresh.test"), fresh.ID)
	var st haproxy.ApplierStatus
	Eventually(t, lbTimeout, "lodestar to report /held left out", func() error {
		st = lb.status(t)
		if ex := excludedApp(st, "/held"); ex == nil || !strings.Contains(ex.Reason, "cannot bind") {
			return fmt.Errorf("excluded %+v", st.Excluded)
		}
		return nil
	})
	waitRoutesTo(t, c, lb.vhostRoute("base.test"), base.ID)
	code, served, err := Get(lb.URL("/v1/haproxy/config"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/haproxy/config: %d, %v", code, err)
	}
	onDisk, err := os.ReadFile(filepath.Join(lb.RunDir, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(served) || strings.Contains(string(onDisk), backendName("/held", spHeld)) {
		t.Errorf("HAProxy's file on disk differs from the configuration lodestar reports, or has the app whose bind failed")
	}
	if lb.metric(t, "lodestar_haproxy_reloads_total") < 2 {
		t.Error("the failed reload is not counted")
	}

	// The port is free again: an operator's resync tries the rejected app once more.
	held.Close()
	req, err := http.NewRequest(http.MethodPost, lb.URL("/v1/resync"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/resync: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/resync: %d", resp.StatusCode)
	}
	Eventually(t, lbTimeout, "/held back after the resync", func() error {
		if ex := excludedApp(lb.status(t), "/held"); ex != nil {
			return fmt.Errorf("still left out: %s", ex.Reason)
		}
		return nil
	})
	waitRoutesTo(t, c, lb.vhostRoute("held.test"), heldBackend.ID)
}
