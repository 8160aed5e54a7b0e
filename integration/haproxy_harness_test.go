package integration

// Helpers of the HAProxy end-to-end tests and benchmarks: a lodestar that drives a real HAProxy
// for a fake Marathon with every bind on a free 127.0.0.1 port, Marathon apps and tasks backed
// by real Go HTTP servers, and readers of what HAProxy and lodestar report (the master's reload
// counter, `show stat`, /v1/haproxy/status, /metrics).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// lbTimeout bounds the wait for a change made in the fake Marathon to show in HAProxy. It is
// generous: the machine is a noisy 2-core VM and tests run in parallel, under -race too.
const lbTimeout = 30 * time.Second

// lbStack is one `lodestar serve` driving a real HAProxy, fed by a fake Marathon.
type lbStack struct {
	*Lodestar
	Marathon *fakemarathon.Server
	// RunDir is lodestar's --run-dir: HAProxy's config, master.sock and admin.sock are there.
	RunDir string
	// HTTPAddr, HTTPSAddr and StatsAddr are the binds of the shared frontends ("127.0.0.1:P").
	HTTPAddr, HTTPSAddr, StatsAddr string
	// Master talks to HAProxy's master CLI; Admin to the worker's admin stats socket.
	Master *haproxy.MasterClient
	Admin  *haproxy.RuntimeClient
}

// startLBMarathon starts a fake Marathon on loopback holding apps (stopped when t ends).
func startLBMarathon(t testing.TB, apps ...map[string]any) *fakemarathon.Server {
	t.Helper()
	fm := fakemarathon.New()
	for _, a := range apps {
		if err := fm.AddApp(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := fm.Start(); err != nil {
		t.Fatalf("starting the fake Marathon: %v", err)
	}
	t.Cleanup(fm.Close)
	return fm
}

// startLB runs `lodestar serve --marathon <fm> --group *` with the shared HTTP, HTTPS and stats
// frontends on free 127.0.0.1 ports, no X-Marathon-App-Id frontend (it has no bind flag and
// would bind *:9091), and a short run directory (unix socket paths are limited to 107 bytes).
// extra flags come last and may override the reload waits. It returns once lodestar is ready:
// HAProxy runs the first configuration.
func startLB(t testing.TB, fm *fakemarathon.Server, extra ...string) *lbStack {
	t.Helper()
	return startLBWithEnv(t, fm, nil, extra...)
}

// startLBWithEnv is startLB with env ("NAME=value") added to lodestar's environment.
func startLBWithEnv(t testing.TB, fm *fakemarathon.Server, env []string, extra ...string) *lbStack {
	t.Helper()
	bin := haproxytest.Bin(t)
	s := &lbStack{
		Marathon:  fm,
		RunDir:    haproxytest.SocketDir(t),
		HTTPAddr:  loopbackAddr(t),
		HTTPSAddr: loopbackAddr(t),
		StatsAddr: loopbackAddr(t),
	}
	args := []string{
		"--marathon", fm.URL(), "--group", "*",
		"--haproxy-bin", bin,
		"--http-bind", s.HTTPAddr, "--https-bind", s.HTTPSAddr, "--stats-bind", s.StatsAddr,
		"--no-appid-frontend",
		"--run-dir", s.RunDir,
	}
	args = append(args, extra...)
	args = withDefault(args, "--reload-min-wait", "20ms")
	args = withDefault(args, "--reload-max-wait", "200ms")
	s.Lodestar = StartWithEnv(t, env, args...)
	s.WaitReady(t)
	s.Master = haproxy.NewMasterClient(filepath.Join(s.RunDir, "master.sock"))
	s.Admin = haproxy.NewRuntimeClient(filepath.Join(s.RunDir, "admin.sock"))
	return s
}

// loopbackAddr is "127.0.0.1:P" with P a free port.
func loopbackAddr(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}

// lbApp is a Marathon app definition with one port: service port servicePort, its frontend
// bound on 127.0.0.1 only, no task (add them with addTask), and labels.
func lbApp(id string, servicePort int, labels map[string]string) map[string]any {
	l := map[string]any{"HAPROXY_0_BIND_ADDR": "127.0.0.1"}
	for k, v := range labels {
		l[k] = v
	}
	return map[string]any{
		"id": id, "instances": 0, "labels": l,
		"portDefinitions": []any{map[string]any{"port": servicePort, "protocol": "tcp", "name": "http"}},
	}
}

// backendName is lodestar's backend name of an app's port: the app id without its leading /,
// / turned into _, then _<servicePort>.
func backendName(appID string, servicePort int) string {
	return strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_") + "_" + strconv.Itoa(servicePort)
}

// addTask starts a running task of appID in the fake Marathon whose host port is backend's,
// and returns its id.
func addTask(t testing.TB, fm *fakemarathon.Server, appID string, backend *haproxytest.HTTPBackend) string {
	t.Helper()
	id, err := fm.AddTask(appID, fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{backend.Port}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// killTask kills a task in the fake Marathon (TASK_KILLING, then TASK_KILLED).
func killTask(t testing.TB, fm *fakemarathon.Server, taskID string) {
	t.Helper()
	if err := fm.KillTask(taskID); err != nil {
		t.Fatal(err)
	}
}

// putApp creates or redefines an app in the fake Marathon (its tasks are kept).
func putApp(t testing.TB, fm *fakemarathon.Server, app map[string]any) {
	t.Helper()
	if err := fm.AddApp(app); err != nil {
		t.Fatal(err)
	}
}

// status reads GET /v1/haproxy/status.
func (s *lbStack) status(t testing.TB) haproxy.ApplierStatus {
	t.Helper()
	var st haproxy.ApplierStatus
	if code := GetJSON(t, s.URL("/v1/haproxy/status"), &st); code != http.StatusOK {
		t.Fatalf("GET /v1/haproxy/status: status %d", code)
	}
	return st
}

// waitApplied waits until lodestar has recorded an apply (a reload or a runtime update) after
// those counted in prev, and returns the status then.
func (s *lbStack) waitApplied(t testing.TB, prev haproxy.ApplierStatus) haproxy.ApplierStatus {
	t.Helper()
	var st haproxy.ApplierStatus
	Eventually(t, lbTimeout, "lodestar to record the apply", func() error {
		st = s.status(t)
		if st.Reloads+st.RuntimeApplies <= prev.Reloads+prev.RuntimeApplies {
			return fmt.Errorf("reloads %d, runtime applies %d: none since", st.Reloads, st.RuntimeApplies)
		}
		return nil
	})
	return st
}

// reloadCount is HAProxy's own reload counter (`show proc` on the master CLI).
func (s *lbStack) reloadCount(t testing.TB) int {
	t.Helper()
	n, err := s.tryReloadCount()
	if err != nil {
		t.Fatalf("HAProxy's reload count: %v", err)
	}
	return n
}

func (s *lbStack) tryReloadCount() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Master.ReloadCount(ctx)
}

// waitReloadCount waits until HAProxy's reload counter is above n and returns it.
func (s *lbStack) waitReloadCount(t testing.TB, n int) int {
	t.Helper()
	var got int
	Eventually(t, lbTimeout, fmt.Sprintf("HAProxy's reload count above %d", n), func() error {
		c, err := s.tryReloadCount()
		if err != nil {
			return err
		}
		if c <= n {
			return fmt.Errorf("reload count %d", c)
		}
		got = c
		return nil
	})
	return got
}

// activeServers returns the addresses of backend's servers that take new traffic: every
// server row of `show stat` that is neither in maintenance nor draining.
func (s *lbStack) activeServers(backend string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := s.Admin.ShowStat(ctx)
	if err != nil {
		return nil, err
	}
	var addrs []string
	seen := false
	for _, r := range rows {
		if r.Proxy != backend {
			continue
		}
		seen = true
		if r.Server == "BACKEND" || r.Server == "FRONTEND" ||
			strings.HasPrefix(r.Status, "MAINT") || strings.HasPrefix(r.Status, "DRAIN") {
			continue
		}
		addrs = append(addrs, r.Addr)
	}
	if !seen {
		return nil, fmt.Errorf("show stat has no backend %s", backend)
	}
	slices.Sort(addrs)
	return addrs, nil
}

// waitActiveServers waits until the servers of backend that take traffic are exactly those of
// backends.
func (s *lbStack) waitActiveServers(t testing.TB, backend string, backends ...*haproxytest.HTTPBackend) {
	t.Helper()
	want := make([]string, len(backends))
	for i, b := range backends {
		want[i] = b.Addr
	}
	slices.Sort(want)
	Eventually(t, lbTimeout, fmt.Sprintf("servers of %s taking traffic to be %v", backend, want), func() error {
		got, err := s.activeServers(backend)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("they are %v", got)
		}
		return nil
	})
}

// waitOnlyMaint waits until every server of backend at addr is in maintenance: a killed task
// whose slot went through drain to maint.
func (s *lbStack) waitOnlyMaint(t testing.TB, backend, addr string) {
	t.Helper()
	Eventually(t, lbTimeout, fmt.Sprintf("the servers of %s at %s to be in maintenance", backend, addr), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rows, err := s.Admin.ShowStat(ctx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Proxy == backend && r.Addr == addr && !strings.HasPrefix(r.Status, "MAINT") {
				return fmt.Errorf("server %s is %s", r.Server, r.Status)
			}
		}
		return nil
	})
}

// metric sums every sample of the counter or gauge name on lodestar's /metrics.
func (s *lbStack) metric(t testing.TB, name string) float64 {
	t.Helper()
	code, body, err := Get(s.URL("/metrics"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, %v", code, err)
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		t.Fatalf("/metrics has no %s", name)
	}
	return sum
}

// lbClient is an HTTP client of HAProxy's frontends. With keepAlive it reuses one connection
// per frontend; without, every request opens a new one. Its idle connections are closed when
// t ends, before lodestar stops HAProxy (cleanups run last-registered first).
func lbClient(t testing.TB, keepAlive bool) *http.Client {
	tr := &http.Transport{
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 4,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// askBackend sends one request to url (Host header host when not empty; POST with a small
// body when post) and returns the id of the backend that answered it. Anything but a 200 from
// a backend is an error.
func askBackend(c *http.Client, method, url, host string) (string, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("ping")
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("%s %s (Host %s): reading the body: %w", method, url, host, err)
	}
	id := resp.Header.Get("X-Backend-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		return "", fmt.Errorf("%s %s (Host %s): status %d, backend %q: %.200s", method, url, host, resp.StatusCode, id, data)
	}
	return id, nil
}

// route is one way into an app through HAProxy: a vhost on the shared HTTP frontend, or the
// app's own service-port frontend.
type route struct {
	name string
	url  string
	host string
}

// vhostRoute reaches the app of vhost through the shared HTTP frontend.
func (s *lbStack) vhostRoute(vhost string) route {
	return route{name: "vhost " + vhost, url: "http://" + s.HTTPAddr + "/", host: vhost}
}

// portRoute reaches an app through its service-port frontend on 127.0.0.1.
func portRoute(servicePort int) route {
	return route{name: "service port " + strconv.Itoa(servicePort), url: "http://127.0.0.1:" + strconv.Itoa(servicePort) + "/"}
}

// assertTraffic sends perBackend requests per live backend through each route and fails t
// unless every live backend answered some of them, no request failed, and none of gone saw
// any request (their servers keep running, so a request HAProxy sent them would count).
func assertTraffic(t testing.TB, c *http.Client, routes []route, live, gone []*haproxytest.HTTPBackend, perBackend int) {
	t.Helper()
	before := map[*haproxytest.HTTPBackend]int64{}
	for _, b := range append(slices.Clone(live), gone...) {
		before[b] = b.Requests()
	}
	answered := map[string]int{}
	for _, r := range routes {
		for range perBackend * len(live) {
			id, err := askBackend(c, http.MethodGet, r.url, r.host)
			if err != nil {
				t.Fatalf("through %s: %v", r.name, err)
			}
			answered[id]++
		}
	}
	for _, b := range live {
		if n := b.Requests() - before[b]; n == 0 {
			t.Errorf("live backend %s (%s) got no request; answers by backend: %v", b.ID, b.Addr, answered)
		}
	}
	for _, b := range gone {
		if n := b.Requests() - before[b]; n != 0 {
			t.Errorf("removed backend %s (%s) still got %d request(s); answers by backend: %v", b.ID, b.Addr, n, answered)
		}
	}
}

// waitRoutesTo waits until a request through r is answered by backend id.
func waitRoutesTo(t testing.TB, c *http.Client, r route, id string) {
	t.Helper()
	Eventually(t, lbTimeout, fmt.Sprintf("%s to reach backend %s", r.name, id), func() error {
		got, err := askBackend(c, http.MethodGet, r.url, r.host)
		if err != nil {
			return err
		}
		if got != id {
			return fmt.Errorf("answered by %s", got)
		}
		return nil
	})
}

// freePortBlock returns n distinct ports that were free on 127.0.0.1 a moment ago, taken below
// the kernel's ephemeral range so that the :0 listeners of concurrent tests cannot take them
// before HAProxy binds them.
func freePortBlock(t testing.TB, n int) []int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const floor = 10000
	if low-floor < 2*n {
		t.Fatalf("ephemeral ports start at %d: too few ports below it for %d service ports", low, n)
	}
	// Spread concurrent test binaries over the range; the listeners prove each port free.
	start := floor + int(time.Now().UnixNano()%int64(low-floor-n))
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; len(ports) < n; i++ {
		if i == low-floor {
			t.Fatalf("fewer than %d free ports between %d and %d", n, floor, low)
		}
		p := floor + (start-floor+i)%(low-floor)
		// A port another test of this binary was handed is not free, listener or not: it may
		// be about to be bound, and HAProxy binds with SO_REUSEPORT, so two edges on one
		// service port would share its connections without an error.
		if !haproxytest.ClaimPort(p) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	return ports
}
