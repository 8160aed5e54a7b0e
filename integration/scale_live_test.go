//go:build scale

// The live scale run (`make scale-live`, not part of `make test`): the largest Marathon this
// machine's open-files limit lets HAProxy serve, and how fast a structural change (a new app)
// reaches traffic there while existing apps take continuous requests.

package integration

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/templates"
)

var (
	scaleAdded = flag.Int("scale.added", 25, "apps added one at a time under load")
	// scaleAddedTasks is how many existing apps then get a task more, one at a time.
	scaleAddedTasks = flag.Int("scale.added-tasks", 20, "tasks added to existing apps one at a time, after the apps")
	scaleHeadroom   = flag.Int("scale.headroom", 256, "open files left free under the limit when sizing the run")
)

const (
	// scaleBackends is how many real HTTP servers the tasks share: task j of app i is on
	// backend (i+j) mod scaleBackends, so an app's tasks are distinct servers.
	scaleBackends = 8
	// scaleSampled is how many existing apps take the continuous requests.
	scaleSampled = 64
	// scaleReadyTimeout bounds the first sync, validation and HAProxy start at full size.
	scaleReadyTimeout = 10 * time.Minute
	// scaleRouteTimeout bounds the wait for one new app's first routed request.
	scaleRouteTimeout = 3 * time.Minute
	// scalePollEvery is how often a new app's vhost is tried.
	scalePollEvery = 20 * time.Millisecond
)

// scaleLiveRun is one live scale run: the stack and what the load saw.
type scaleLiveRun struct {
	t        *testing.T
	fm       *fakemarathon.Server
	lb       *lbStack
	ports    []int // service port by app index
	backends []*haproxytest.HTTPBackend

	mu       sync.Mutex
	ok       int
	failures []string
	// extra is the backend of the task addTasks gave an app, by app index.
	extra map[int]string
}

// TestScaleLiveNewAppToTraffic sizes the Marathon to the most apps × 3 tasks (HTTP health
// checks, a vhost and a service port each, --haproxy-maxconn 1024) whose HAProxy
// configuration, as lodestar builds it, fits this machine's open-files limit with the added
// apps; runs `lodestar serve` with real HAProxy on it; then, under continuous requests
// (keep-alive and a connection per request) to a sample of existing apps, adds apps one at a
// time as Marathon would (the app, then its tasks, healthy, each with its events) and
// measures per new app the time from the event to the first request HAProxy routes to it
// through its vhost. It fails when a new app is not routed within scaleRouteTimeout or a
// request to an existing app fails.
func TestScaleLiveNewAppToTraffic(t *testing.T) {
	binds := newScaleBinds(t)
	limit, err := haproxy.OpenFilesLimit()
	if err != nil {
		t.Fatal(err)
	}
	cfg := binds.buildConfig(t)
	n, budget := scaleLiveSize(t, cfg, limit-*scaleHeadroom, *scaleAdded)
	t.Logf("largest size under the open-files limit %d (headroom %d): %d apps + %d added × %d tasks, HAProxy needs %d open files (%+v)",
		limit, *scaleHeadroom, n, *scaleAdded, scaleTasksPerApp, budget.Need(), budget)
	checkOwnOpenFiles(t, n+*scaleAdded+4*scaleSampled+256)

	r := &scaleLiveRun{t: t, ports: freePortBlock(t, n+*scaleAdded)}
	for range scaleBackends {
		r.backends = append(r.backends, haproxytest.Backend(t))
	}
	data := scaleAppsJSON(t, n, func(i int) int { return r.ports[i] }, r.taskPorts)
	startNeed := scaleFDNeed(t, cfg, data).Need()
	r.fm = startScaleMarathon(t, data)
	start := time.Now()
	l := startServeUnannounced(t, Binary(t), binds.serveArgs(r.fm, haproxytest.Bin(t))...)
	l.WaitReadyWithin(t, scaleReadyTimeout)
	t.Logf("ready after %v", time.Since(start).Round(time.Millisecond))
	r.lb = &lbStack{Lodestar: l, Marathon: r.fm, RunDir: binds.RunDir, HTTPAddr: binds.HTTP, HTTPSAddr: binds.HTTPS, StatsAddr: binds.Stats}
	r.checkRunningConfig(startNeed)

	sample := rand.Perm(n)[:min(n, scaleSampled)]
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() { r.load(ctx, lbClient(t, c%2 == 0), sample) })
	}
	before, beforeMetrics := r.lb.status(t), r.metrics()
	lat, applies := r.addApps(n)
	// Then a task more for existing apps: the Runtime API's add server, never a reload.
	mid := r.lb.status(t)
	taskLat := r.addTasks(sample[:min(len(sample), *scaleAddedTasks)])
	if got := r.lb.status(t); got.Reloads != mid.Reloads {
		t.Errorf("adding tasks to existing apps reloaded HAProxy: %d → %d reloads", mid.Reloads, got.Reloads)
	}
	cancel()
	wg.Wait()
	r.report(n, budget, limit, lat, applies, before, beforeMetrics)
	slices.Sort(taskLat)
	if len(taskLat) > 0 {
		t.Logf("scale-live: new tasks of existing apps (add server, no reload): %d, event-to-traffic p50=%v p99=%v",
			len(taskLat), percentile(taskLat, 50).Round(time.Millisecond), percentile(taskLat, 99).Round(time.Millisecond))
	}
}

// addTasks gives each of apps a task more, on a backend of its own, one at a time, and
// measures from the event to the first request through the app's vhost that the new
// backend answers (the app's servers take requests in turn, so that is within a few polls).
func (r *scaleLiveRun) addTasks(apps []int) []time.Duration {
	poll := lbClient(r.t, false)
	healthy := true
	var lat []time.Duration
	for _, i := range apps {
		be := haproxytest.Backend(r.t)
		r.mu.Lock()
		if r.extra == nil {
			r.extra = map[int]string{}
		}
		r.extra[i] = be.ID
		r.mu.Unlock()
		start := time.Now()
		if _, err := r.fm.AddTask(scaleAppID(i), fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{be.Port}, Health: &healthy}); err != nil {
			r.t.Fatal(err)
		}
		tick := time.NewTicker(scalePollEvery)
		for {
			id, err := askBackend(poll, http.MethodGet, "http://"+r.lb.HTTPAddr+"/", scaleVhost(i))
			if err == nil && id == be.ID {
				break
			}
			if time.Since(start) > scaleRouteTimeout {
				tick.Stop()
				r.t.Errorf("the new task of %s got no request within %v of its event: last %v (answered by %q)", scaleAppID(i), scaleRouteTimeout, err, id)
				return lat
			}
			<-tick.C
		}
		tick.Stop()
		lat = append(lat, time.Since(start))
	}
	return lat
}

// taskPorts are the host ports of app i's tasks: distinct backends.
func (r *scaleLiveRun) taskPorts(i int) []int {
	ports := make([]int, scaleTasksPerApp)
	for j := range ports {
		ports[j] = r.backends[(i+j)%scaleBackends].Port
	}
	return ports
}

// answeredBy reports whether backend id serves one of app i's tasks.
func (r *scaleLiveRun) answeredBy(i int, id string) bool {
	for j := range scaleTasksPerApp {
		if r.backends[(i+j)%scaleBackends].ID == id {
			return true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.extra[i] == id
}

// scaleLiveSize is the most apps that, with added more, HAProxy's configuration fits under
// limit open files, and the budget of that configuration: a bisection over configurations
// lodestar builds, since how many server lines an app takes is the build's choice. It is at
// most 10,000 apps in all.
func scaleLiveSize(t *testing.T, cfg haproxy.Config, limit, added int) (int, haproxy.FDBudget) {
	t.Helper()
	need := func(n int) haproxy.FDBudget {
		// Ports only need to be distinct here: nothing binds them.
		return scaleFDNeed(t, cfg, scaleAppsJSON(t, n+added, func(i int) int { return 10000 + i },
			func(i int) []int { return []int{40000 + i%8, 40000 + (i+1)%8, 40000 + (i+2)%8} }))
	}
	if b := need(1); b.Need() > limit {
		t.Fatalf("not even %d apps fit under %d open files: %+v needs %d", 1+added, limit, b, b.Need())
	}
	// The size users name is enough: a machine that fits it (a higher limit, or
	// CAP_SYS_RESOURCE) runs 10,000 apps in all.
	most := scaleOverLimitApps - added
	if b := need(most); b.Need() <= limit {
		return most, b
	}
	lo, hi := 1, min(512, most) // need(lo) fits, need(hi) may not
	for hi < most && need(hi).Need() <= limit {
		lo, hi = hi, min(2*hi, most)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if need(mid).Need() <= limit {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, need(lo)
}

// checkOwnOpenFiles fails t unless this test process may open want files: it holds a listener
// per service port for a moment, the backends' connections and its clients'.
func checkOwnOpenFiles(t *testing.T, want int) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if int(lim.Cur) < want {
		t.Fatalf("this test process may open %d files, it needs about %d", lim.Cur, want)
	}
}

// checkRunningConfig checks that the configuration HAProxy runs needs what the test's build
// of the same apps needs (the sizing above counted the right configuration), and times one
// full `haproxy -c` of it.
func (r *scaleLiveRun) checkRunningConfig(want int) {
	path := filepath.Join(r.lb.RunDir, "haproxy.cfg")
	config, err := os.ReadFile(path)
	if err != nil {
		r.t.Fatal(err)
	}
	if got := haproxy.EstimateFDs(config, true, runtime.NumCPU()).Need(); got != want {
		r.t.Errorf("the running configuration needs %d open files, the test's build of the same apps %d", got, want)
	}
	start := time.Now()
	out, err := exec.Command(haproxytest.Bin(r.t), "-c", "-q", "-f", path).CombinedOutput()
	if err != nil {
		r.t.Fatalf("haproxy -c of the running configuration: %v\n%s", err, out)
	}
	r.t.Logf("running configuration: %d bytes; one full haproxy -c of it took %v", len(config), time.Since(start).Round(time.Millisecond))
}

// load sends requests to the sampled apps' vhosts until ctx ends, counting failures: an
// error, a status other than 200 or an answer from a backend not of the app.
func (r *scaleLiveRun) load(ctx context.Context, c *http.Client, sample []int) {
	for ctx.Err() == nil {
		i := sample[rand.IntN(len(sample))]
		id, err := askBackend(c, http.MethodGet, "http://"+r.lb.HTTPAddr+"/", scaleVhost(i))
		if err == nil && !r.answeredBy(i, id) {
			err = fmt.Errorf("%s answered by %s, not a task of the app", scaleVhost(i), id)
		}
		r.mu.Lock()
		if err != nil {
			r.failures = append(r.failures, time.Now().Format("15:04:05.000")+" "+err.Error())
		} else {
			r.ok++
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

// addApps adds the apps n, n+1, … one at a time and returns, for each, the time from its
// event to its first routed request, and the apply lodestar recorded for it.
func (r *scaleLiveRun) addApps(n int) ([]time.Duration, []*haproxy.ApplyRecord) {
	poll := lbClient(r.t, false)
	healthy := true
	var lat []time.Duration
	var applies []*haproxy.ApplyRecord
	for k := range *scaleAdded {
		i := n + k
		prev := r.lb.status(r.t)
		start := time.Now()
		if err := r.fm.AddApp(scaleApp(i, r.ports[i])); err != nil {
			r.t.Fatal(err)
		}
		for _, port := range r.taskPorts(i) {
			if _, err := r.fm.AddTask(scaleAppID(i), fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{port}, Health: &healthy}); err != nil {
				r.t.Fatal(err)
			}
		}
		tick := time.NewTicker(scalePollEvery)
		for {
			id, err := askBackend(poll, http.MethodGet, "http://"+r.lb.HTTPAddr+"/", scaleVhost(i))
			if err == nil && r.answeredBy(i, id) {
				break
			}
			if time.Since(start) > scaleRouteTimeout {
				tick.Stop()
				r.t.Errorf("new app %s was not routed within %v of its event: last %v (answered by %q)", scaleAppID(i), scaleRouteTimeout, err, id)
				return lat, applies
			}
			<-tick.C
		}
		tick.Stop()
		lat = append(lat, time.Since(start))
		// HAProxy's new worker serves before lodestar has confirmed and recorded the reload.
		applies = append(applies, r.lb.waitApplied(r.t, prev).LastApply)
	}
	return lat, applies
}

// scaleMetrics are lodestar's counters the report compares before and after the adds.
type scaleMetrics struct {
	validations, reloadSeconds, reloadCount float64
}

func (r *scaleLiveRun) metrics() scaleMetrics {
	return scaleMetrics{
		validations:   r.lb.metric(r.t, "lodestar_haproxy_validations_total"),
		reloadSeconds: r.lb.metric(r.t, "lodestar_haproxy_reload_duration_seconds_sum"),
		reloadCount:   r.lb.metric(r.t, "lodestar_haproxy_reload_duration_seconds_count"),
	}
}

// report logs the figures (and one line to grep: "scale-live:") and fails on failed requests
// to existing apps.
func (r *scaleLiveRun) report(n int, budget haproxy.FDBudget, limit int, lat []time.Duration, applies []*haproxy.ApplyRecord,
	before haproxy.ApplierStatus, beforeMetrics scaleMetrics) {
	after, m := r.lb.status(r.t), r.metrics()
	for k, a := range applies {
		if a != nil {
			r.t.Logf("  new app %d: routed after %v; last apply %s (%s) took %s, %d validation(s)",
				k, lat[k].Round(time.Millisecond), a.Kind, a.Reason, a.Duration, a.Validations)
		}
	}
	// lodestar's own account of where each reload's time went (validate, install, haproxy_reload).
	var lines []string
	for _, l := range strings.Split(r.lb.Log.String(), "\n") {
		if strings.Contains(l, `msg="HAProxy reloaded"`) {
			lines = append(lines, l)
		}
	}
	for _, l := range lines[max(0, len(lines)-5):] {
		r.t.Logf("  %s", l)
	}
	reloads := after.Reloads - before.Reloads
	meanReload := time.Duration(0)
	if c := m.reloadCount - beforeMetrics.reloadCount; c > 0 {
		meanReload = time.Duration((m.reloadSeconds - beforeMetrics.reloadSeconds) / c * float64(time.Second))
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	var p50, p99, worst time.Duration
	if len(sorted) > 0 {
		p50, p99, worst = percentile(sorted, 50), percentile(sorted, 99), sorted[len(sorted)-1]
	}
	r.mu.Lock()
	ok, failures := r.ok, slices.Clone(r.failures)
	r.mu.Unlock()
	r.t.Logf("scale-live: apps=%d+%d tasks=%d maxconn=%d fd-need=%d fd-limit=%d routed=%d/%d event-to-traffic p50=%v p99=%v max=%v "+
		"reloads=%d runtime-applies=%d validations=%.0f mean-reload=%v existing-requests=%d failed=%d",
		n, *scaleAdded, (n+*scaleAdded)*scaleTasksPerApp, scaleMaxConn, budget.Need(), limit, len(lat), *scaleAdded,
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond),
		reloads, after.RuntimeApplies-before.RuntimeApplies, m.validations-beforeMetrics.validations,
		meanReload.Round(time.Millisecond), ok, len(failures))
	if ok == 0 {
		r.t.Error("no request to an existing app succeeded: the load did not run")
	}
	if len(failures) > 0 {
		r.t.Errorf("%d of %d requests to existing apps failed; the first: %v", len(failures), ok+len(failures), failures[:min(5, len(failures))])
	}
}

// buildConfig is the build configuration `lodestar serve` makes of serveArgs.
func (b scaleBinds) buildConfig(t testing.TB) haproxy.Config {
	t.Helper()
	set, err := templates.Load("", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return haproxy.Config{
		Groups: []string{"external"}, HTTPBind: b.HTTP, HTTPSBind: b.HTTPS, StatsBind: b.Stats,
		NoAppIDFrontend: true, RunDir: b.RunDir, MaxConn: scaleMaxConn, HealthCheck: true, Templates: set,
	}
}

// scaleFDNeed builds the configuration lodestar would give HAProxy for the apps of appsJSON
// (decoded as lodestar decodes Marathon's answer, through a registry) and returns the open
// files HAProxy would ask for, as lodestar counts them before starting it.
func scaleFDNeed(t testing.TB, cfg haproxy.Config, appsJSON []byte) haproxy.FDBudget {
	t.Helper()
	apps, appErrs, err := discovery.DecodeMarathonApps(appsJSON)
	if err != nil || len(appErrs) != 0 {
		t.Fatalf("decoding the generated apps: %v %v", err, appErrs)
	}
	reg := discovery.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = reg.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	sendCtx, sendCancel := context.WithTimeout(ctx, time.Minute)
	defer sendCancel()
	if err := reg.Send(sendCtx, discovery.ReplaceApps{Apps: apps}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Barrier(sendCtx); err != nil {
		t.Fatal(err)
	}
	m := haproxy.Build(reg.Snapshot(), cfg, nil)
	if m.Err != nil {
		t.Fatalf("building the configuration: %v", m.Err)
	}
	if len(m.Excluded) != 0 {
		t.Fatalf("the build left out %d apps, first %+v", len(m.Excluded), m.Excluded[0])
	}
	r, err := haproxy.Render(m)
	if err != nil {
		t.Fatalf("rendering the configuration: %v", err)
	}
	return haproxy.EstimateFDs(r.Config, true, runtime.NumCPU())
}
