package integration

// End-to-end tests of the autoscaler (serve --autoscale): load through a real HAProxy raises an
// app's instances in the fake Marathon and they fall back after the cooldown; CPU figures from
// fake Mesos agents scale an app; an app in a deployment is never scaled.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// scaleTimeout bounds a wait for a scale: generous, the machine is shared and slow.
const scaleTimeout = 90 * time.Second

// taskBackends starts a real HTTP server on the port of every task the fake Marathon's
// deployments launch, and stops it when the task is killed.
type taskBackends struct {
	mu      sync.Mutex
	servers map[string]*http.Server
}

func launchBackends(t *testing.T, fm *fakemarathon.Server) *taskBackends {
	b := &taskBackends{servers: map[string]*http.Server{}}
	// The fake Marathon gives a new task the next host port from 31000 up, which another
	// process on this shared machine may hold: a launch that cannot listen is tried again
	// on the deployment's next step, with the next port, and steps come only with a delay.
	fm.SetLaunchDelay(50 * time.Millisecond)
	fm.SetLauncher(func(appID, taskID, host string, ports []int) error {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(ports[0])))
		if err != nil {
			return err // the deployment tries again with other ports
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, taskID)
		}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		b.mu.Lock()
		b.servers[taskID] = srv
		b.mu.Unlock()
		return nil
	}, func(taskID string) {
		b.mu.Lock()
		srv := b.servers[taskID]
		delete(b.servers, taskID)
		b.mu.Unlock()
		if srv != nil {
			go srv.Close()
		}
	})
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, srv := range b.servers {
			srv.Close()
		}
	})
	return b
}

// marathonInstances is the app's "instances" as the fake Marathon serves it.
func marathonInstances(t testing.TB, fm *fakemarathon.Server, id string) (int, int) {
	t.Helper()
	var doc struct {
		App struct {
			Instances   int   `json:"instances"`
			Deployments []any `json:"deployments"`
		} `json:"app"`
	}
	if code := GetJSON(t, fm.URL()+"/v2/apps"+id, &doc); code != http.StatusOK {
		t.Fatalf("GET /v2/apps%s: %d", id, code)
	}
	return doc.App.Instances, len(doc.App.Deployments)
}

// waitInstances polls the fake Marathon every 5ms until the app has n instances and returns
// when it saw them.
func waitInstances(t *testing.T, fm *fakemarathon.Server, id string, n int) time.Time {
	t.Helper()
	Eventually(t, scaleTimeout, fmt.Sprintf("%s at %d instances in Marathon", id, n), func() error {
		if got, _ := marathonInstances(t, fm, id); got != n {
			return fmt.Errorf("%d instances", got)
		}
		return nil
	})
	return time.Now()
}

// rateLoad sends requests to url at about perSecond until stopped, over keep-alive connections;
// it counts the answers.
type rateLoad struct {
	stop     chan struct{}
	done     sync.WaitGroup
	client   *http.Client
	ok, fail atomic.Int64
}

func startRateLoad(url string, perSecond int) *rateLoad {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	l := &rateLoad{stop: make(chan struct{}), client: client}
	jobs := make(chan struct{}, 64)
	for range 8 {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for range jobs {
				resp, err := client.Get(url)
				if err != nil {
					l.fail.Add(1)
					continue
				}
				resp.Body.Close()
				l.ok.Add(1)
			}
		}()
	}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		defer close(jobs)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
				select {
				case jobs <- struct{}{}:
				default: // the workers are behind: an open loop drops rather than queues
				}
			}
		}
	}()
	return l
}

func (l *rateLoad) Stop() {
	close(l.stop)
	l.done.Wait()
	l.client.CloseIdleConnections() // idle keep-alive connections would hold HAProxy's soft stop
}

// rateApp is an app of one port, one task on a real backend, scaled by request rate: 20 req/s
// per instance, 1 to 3 instances, averaged over 3 samples, 2 intervals past threshold, a
// cooldown of 2 intervals.
func rateApp(id string, servicePort int, extra map[string]string) map[string]any {
	labels := map[string]string{
		"LODESTAR_AUTOSCALE_MODE": "rps", "LODESTAR_AUTOSCALE_TARGET_RPS": "20",
		"LODESTAR_AUTOSCALE_MIN_INSTANCES": "1", "LODESTAR_AUTOSCALE_MAX_INSTANCES": "3",
		"LODESTAR_AUTOSCALE_SAMPLES": "3", "LODESTAR_AUTOSCALE_INTERVALS_PAST_THRESHOLD": "2",
		"LODESTAR_AUTOSCALE_COOLDOWN": "2", "HAPROXY_0_MODE": "http",
	}
	for k, v := range extra {
		labels[k] = v
	}
	app := lbApp(id, servicePort, labels)
	app["instances"] = 1
	return app
}

// autoscaleInterval is the tests' interval: short, so that the tests take seconds.
const autoscaleInterval = "300ms"

// waitServed waits until HAProxy answers 200 on url.
func waitServed(t *testing.T, url string) {
	t.Helper()
	Eventually(t, lbTimeout, "HAProxy serving "+url, func() error {
		code, _, err := Get(url)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
}

// TestAutoscaleRequestRate: about 150 req/s through HAProxy against a target of 20 per
// instance raise the app to its maximum of 3 instances in Marathon; with the load stopped,
// it falls back to its minimum of 1 once the cooldown is over.
func TestAutoscaleRequestRate(t *testing.T) {
	port := FreePort(t)
	fm := startLBMarathon(t, rateApp("/web", port, nil))
	launchBackends(t, fm)
	addTask(t, fm, "/web", haproxytest.Backend(t))
	lb := startLB(t, fm, "--autoscale", "--autoscale-alone", "--autoscale-interval", autoscaleInterval)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitServed(t, url)
	// Idle: the app stays at 1 (the minimum and the target) for a full window.
	lb.WaitLog(t, scaleTimeout, "autoscale decision", "app=/web", "reason=\"at target\"")

	step := time.Now()
	l := startRateLoad(url, 150)
	up := waitInstances(t, fm, "/web", 3)
	t.Logf("load step to Marathon's scale call: %s (interval %s, 3 samples, 2 intervals past threshold)", up.Sub(step).Round(time.Millisecond), autoscaleInterval)
	lb.WaitLog(t, scaleTimeout, "autoscale decision", "app=/web", "action=scale", "from=1", "to=3")
	// The status page shows the autoscaler and the app's last decision.
	if code, page, err := Get(lb.URL("/")); err != nil || code != http.StatusOK ||
		!strings.Contains(string(page), "<h2>Autoscale</h2>") || !strings.Contains(string(page), "<code>/web</code></a></td>\n<td data-label=\"Mode\">rps</td>") {
		t.Errorf("status page: %d %v, want an Autoscale section with /web in rps mode", code, err)
	}
	// The new tasks come up and take traffic.
	Eventually(t, scaleTimeout, "3 servers in HAProxy's view of /web", func() error {
		var doc struct {
			Routes []struct {
				Servers  []any   `json:"servers"`
				Requests *uint64 `json:"requests"`
			} `json:"routes"`
		}
		GetJSON(t, lb.URL("/v1/apps/web"), &doc)
		if len(doc.Routes) != 1 || len(doc.Routes[0].Servers) != 3 || doc.Routes[0].Requests == nil {
			return fmt.Errorf("routes %+v", doc.Routes)
		}
		return nil
	})
	stop := time.Now()
	l.Stop()
	down := waitInstances(t, fm, "/web", 1)
	t.Logf("load stopped to scale-down call: %s; requests answered %d, failed %d", down.Sub(stop).Round(time.Millisecond), l.ok.Load(), l.fail.Load())
	lb.WaitLog(t, scaleTimeout, "autoscale decision", "app=/web", "action=scale", "from=3", "to=1")
	if l.ok.Load() == 0 {
		t.Fatal("no request of the load was answered")
	}
}

// TestAutoscaleNeverDuringDeployment: the same load against an app whose deployment is under
// way is never scaled; once the deployment is over, it is.
func TestAutoscaleNeverDuringDeployment(t *testing.T) {
	port := FreePort(t)
	fm := startLBMarathon(t, rateApp("/web", port, nil))
	launchBackends(t, fm)
	addTask(t, fm, "/web", haproxytest.Backend(t))
	fm.SetDeployments("/web", []string{"5d1e4c9a-0000-4000-8000-000000000001"})
	lb := startLB(t, fm, "--autoscale", "--autoscale-alone", "--autoscale-interval", autoscaleInterval, "--marathon-resync", "1s")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitServed(t, url)
	l := startRateLoad(url, 150)
	defer l.Stop()
	// Skipped for the deployment on several intervals past the warm-up, with the load on…
	Eventually(t, scaleTimeout, "8 decisions skipped for the deployment", func() error {
		if n := len(lb.Log.Lines("autoscale decision", "app=/web", "action=skip", "in a deployment")); n < 8 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	if n, _ := marathonInstances(t, fm, "/web"); n != 1 {
		t.Fatalf("the app was scaled to %d during its deployment", n)
	}
	// …and scaled once it ends.
	fm.SetDeployments("/web", nil)
	waitInstances(t, fm, "/web", 3)
}

// TestAutoscaleResourceCPU: an app whose tasks the fake Mesos agent reports at 90% of a CPU
// against a range of 20% to 60% is scaled out by the multiplier (2 → 3), and, reported idle,
// back in to its minimum.
func TestAutoscaleResourceCPU(t *testing.T) {
	port := FreePort(t)
	app := lbApp("/work", port, map[string]string{
		"LODESTAR_AUTOSCALE_MODE": "cpu", "LODESTAR_AUTOSCALE_CPU_MAX": "60", "LODESTAR_AUTOSCALE_CPU_MIN": "20",
		"LODESTAR_AUTOSCALE_MULTIPLIER": "1.5", "LODESTAR_AUTOSCALE_MIN_INSTANCES": "2", "LODESTAR_AUTOSCALE_MAX_INSTANCES": "3",
		"LODESTAR_AUTOSCALE_SCALE_UP_FACTOR": "2", "LODESTAR_AUTOSCALE_COOL_DOWN_FACTOR": "2", "LODESTAR_AUTOSCALE_COOLDOWN": "2",
	})
	app["instances"] = 2
	fm := startLBMarathon(t, app)
	launchBackends(t, fm)
	addTask(t, fm, "/work", haproxytest.Backend(t))
	addTask(t, fm, "/work", haproxytest.Backend(t))

	agent, err := fakemesos.StartAgent("fakemarathon-S0", "agent-0.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	cluster, err := fakemesos.NewCluster(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cluster.SetAgents(agent)

	// Every task's CPU time grows by busy seconds per second, as the agent reports it.
	var busy atomic.Value
	busy.Store(0.9)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		cpu := map[string]float64{}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, task := range fm.Tasks("/work") {
				id, _ := task["id"].(string)
				cpu[id] += busy.Load().(float64) * 0.05
				agent.SetStatistics(fakemesos.ExecutorStatistics{ExecutorID: id, FrameworkID: "marathon", CPUUserSecs: cpu[id],
					CPUsLimit: 1, MemRSSBytes: 20 << 20, MemLimitBytes: 128 << 20, Timestamp: float64(time.Now().UnixNano()) / 1e9})
			}
		}
	}()
	lb := startLB(t, fm, "--autoscale", "--autoscale-alone", "--autoscale-interval", autoscaleInterval,
		"--mesos-master", cluster.Masters[0].HostPort(), "--mesos-refresh", "1s")
	waitInstances(t, fm, "/work", 3)
	line := lb.WaitLog(t, scaleTimeout, "autoscale decision", "app=/work", "action=scale", "from=2", "to=3")
	t.Logf("scale out: %s", line)
	busy.Store(0.01)
	waitInstances(t, fm, "/work", 2)
	if agent.Requests(fakemesos.PathMonitorStatistics) == 0 {
		t.Fatal("the agent's statistics were never read")
	}
}

// The request counts lodestar's API shows per route are HAProxy's own: they grow with the
// requests sent through it, keep-alive ones included (an HTTP-mode port counts requests; a
// TCP-mode one counts connections).
func TestAutoscaleRouteRequestCounter(t *testing.T) {
	port := FreePort(t)
	fm := startLBMarathon(t, lbApp("/web", port, map[string]string{"HAPROXY_0_MODE": "http"}))
	addTask(t, fm, "/web", haproxytest.Backend(t))
	lb := startLB(t, fm)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitServed(t, url)
	total := func() uint64 {
		var doc struct {
			Routes []struct {
				Requests *uint64 `json:"requests"`
			} `json:"routes"`
		}
		GetJSON(t, lb.URL("/v1/apps/web"), &doc)
		if len(doc.Routes) != 1 || doc.Routes[0].Requests == nil {
			raw, _ := json.Marshal(doc)
			t.Fatalf("no request total in %s", raw)
		}
		return *doc.Routes[0].Requests
	}
	before := total()
	for range 25 {
		if code, _, err := Get(url); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", url, code, err)
		}
	}
	// HAProxy's stats are read at most once a second.
	Eventually(t, lbTimeout, "the request total to grow by 25", func() error {
		if got := total(); got < before+25 {
			return fmt.Errorf("total %d, was %d", got, before)
		}
		return nil
	})
}

// TestAutoscaleTwoInstancesOneLock: two lodestars with --autoscale on one cluster, reading
// the request counts of one edge through its API (--autoscale-lodestar) and sharing a
// ZooKeeper lock: only the holder scales the app up under load; when the holder stops, the
// other takes over and scales it back down once the load ends.
func TestAutoscaleTwoInstancesOneLock(t *testing.T) {
	zk := zktest.Start(t)
	port := FreePort(t)
	fm := startLBMarathon(t, rateApp("/web", port, nil))
	launchBackends(t, fm)
	addTask(t, fm, "/web", haproxytest.Backend(t))
	edge := startLB(t, fm)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitServed(t, url)
	scaler := func() *Lodestar {
		return Start(t, "--marathon", fm.URL(), "--haproxy=false", "--autoscale",
			"--autoscale-zk", zk.URL("/lodestar/autoscale"), "--autoscale-zk-session-timeout", "4s",
			"--autoscale-lodestar", edge.API, "--autoscale-interval", autoscaleInterval)
	}
	a, b := scaler(), scaler()
	var holder, other *Lodestar
	Eventually(t, scaleTimeout, "one instance holding the lock", func() error {
		switch {
		case len(a.Log.Lines("holding the autoscale lock")) > 0:
			holder, other = a, b
		case len(b.Log.Lines("holding the autoscale lock")) > 0:
			holder, other = b, a
		default:
			return fmt.Errorf("none yet")
		}
		return nil
	})
	l := startRateLoad(url, 150)
	waitInstances(t, fm, "/web", 3)
	holder.WaitLog(t, scaleTimeout, "autoscale decision", "app=/web", "action=scale", "from=1", "to=3")
	if got := autoscaleLeaderMetric(t, holder); got != "1" {
		t.Errorf("the holder's lodestar_autoscale_leader is %s, want 1", got)
	}
	if got := autoscaleLeaderMetric(t, other); got != "0" {
		t.Errorf("the other's lodestar_autoscale_leader is %s, want 0", got)
	}
	if lines := other.Log.Lines("autoscale decision", "action=scale"); len(lines) > 0 {
		t.Fatalf("the instance without the lock scaled: %q", lines)
	}
	if lines := other.Log.Lines("holding the autoscale lock"); len(lines) > 0 {
		t.Fatalf("both instances held the lock: %q", lines)
	}

	holder.Stop(t)
	other.WaitLog(t, scaleTimeout, "holding the autoscale lock")
	l.Stop()
	waitInstances(t, fm, "/web", 1)
	// The scale down is the other's, in one step or two: the averaged rate decays with the
	// load's last interval, and on a loaded machine an interval can see a target of 2 first.
	other.WaitLog(t, scaleTimeout, "autoscale decision", "app=/web", "action=scale", "to=1")
}

// autoscaleLeaderMetric is lodestar_autoscale_leader as l's /metrics serves it.
func autoscaleLeaderMetric(t *testing.T, l *Lodestar) string {
	t.Helper()
	code, body, err := Get(l.URL("/metrics"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "lodestar_autoscale_leader "); ok {
			return v
		}
	}
	return "absent"
}

// autoscaleProcess is a `lodestar autoscale` process, its log in Log; it gets SIGTERM when
// the test ends, and must exit with status 0.
type autoscaleProcess struct {
	Log  *logtest.Buffer
	cmd  *exec.Cmd
	done chan error
	stop sync.Once
}

func startAutoscale(t *testing.T, args ...string) *autoscaleProcess {
	t.Helper()
	p := &autoscaleProcess{Log: &logtest.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(Binary(t), append([]string{"autoscale"}, args...)...)
	p.cmd.Env = childEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.Log, p.Log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *autoscaleProcess) Stop(t *testing.T) {
	t.Helper()
	p.stop.Do(func() { p.terminate(t) })
}

func (p *autoscaleProcess) terminate(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("lodestar autoscale exited with %v; its log:\n%s", err, p.Log.Tail(40))
		}
	case <-time.After(StopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("lodestar autoscale did not exit within %s of SIGTERM", StopTimeout)
	}
}

func (p *autoscaleProcess) WaitLog(t *testing.T, parts ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout)
	defer cancel()
	line, err := p.Log.Wait(ctx, parts...)
	if err != nil {
		t.Fatalf("lodestar autoscale log: no line with %q: %v\n%s", parts, err, p.Log.Tail(40))
	}
	return line
}

// TestAutoscaleCommandWithEdges: `lodestar autoscale` beside an edge reads its request counts
// through the edge's API (--lodestar); with --dry-run it logs the scale and writes nothing;
// without, the app goes to its maximum.
func TestAutoscaleCommandWithEdges(t *testing.T) {
	port := FreePort(t)
	fm := startLBMarathon(t, rateApp("/web", port, nil))
	launchBackends(t, fm)
	addTask(t, fm, "/web", haproxytest.Backend(t))
	edge := startLB(t, fm)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitServed(t, url)
	l := startRateLoad(url, 150)
	defer l.Stop()
	args := []string{"--marathon", fm.URL(), "--lodestar", edge.API, "--alone", "--interval", autoscaleInterval}
	perAppReads := apiRequests(t, edge.API, "/v1/apps/{id:.+}")
	dry := startAutoscale(t, append(args, "--dry-run")...)
	dry.WaitLog(t, "autoscale decision", "app=/web", "action=scale", "from=1", "to=3", "dry_run=true")
	dry.Stop(t)
	if n, _ := marathonInstances(t, fm, "/web"); n != 1 {
		t.Fatalf("a dry run scaled the app to %d", n)
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	live := startAutoscale(t, append(args, "--api-listen", apiAddr)...)
	waitInstances(t, fm, "/web", 3)
	live.WaitLog(t, "autoscale decision", "app=/web", "action=scale", "from=1", "to=3")
	// The standalone autoscaler's own API: the scale counted in /metrics, the decision on the
	// status page.
	Eventually(t, scaleTimeout, "the scale in the autoscaler's /metrics and status page", func() error {
		metrics, err := httpGetBody("http://" + apiAddr + "/metrics")
		if err != nil {
			return err
		}
		if !strings.Contains(metrics, `lodestar_autoscale_scales_total{direction="up",result="ok"} 1`) ||
			!strings.Contains(metrics, "lodestar_autoscale_leader 1") {
			return fmt.Errorf("/metrics has no scale up nor leadership")
		}
		page, err := httpGetBody("http://" + apiAddr + "/")
		if err != nil {
			return err
		}
		if !strings.Contains(page, "Autoscale") || !strings.Contains(page, "/web") {
			return fmt.Errorf("the status page shows no decision for /web")
		}
		return nil
	})
	// The autoscalers read the edge with GET /v1/requests, one per reading, never app by app.
	if n := apiRequests(t, edge.API, "/v1/requests"); n < 2 {
		t.Errorf("the edge served %v GET /v1/requests, want one per reading of each autoscaler", n)
	}
	if n := apiRequests(t, edge.API, "/v1/apps/{id:.+}"); n != perAppReads {
		t.Errorf("the edge served %v GET /v1/apps/{id} during autoscaling (%v before): read app by app", n, perAppReads)
	}
}

// apiRequests is how many GET requests of route (the mux template) the lodestar API at base
// served, by its lodestar_api_requests_total.
func apiRequests(t *testing.T, base, route string) float64 {
	t.Helper()
	metrics, err := httpGetBody(strings.TrimRight(base, "/") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, "lodestar_api_requests_total{")
		if !ok || !strings.Contains(rest, `method="GET"`) || !strings.Contains(rest, `route="`+route+`"`) {
			continue
		}
		var n float64
		if _, err := fmt.Sscan(rest[strings.LastIndex(rest, " ")+1:], &n); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		total += n
	}
	return total
}

// httpGetBody GETs url and returns its body; a status other than 200 is an error.
func httpGetBody(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}
