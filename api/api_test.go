package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// waitTimeout bounds every wait on a signal; tests never sleep.
const waitTimeout = 10 * time.Second

// newRegistry runs a registry until the test ends.
func newRegistry(t *testing.T) *discovery.Registry {
	t.Helper()
	reg := discovery.NewRegistry(discovery.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return reg
}

// fixtureRegistry is a registry holding the zdd_apps.json fixture plus /shop/web, whose
// tasks are out for different reasons.
func fixtureRegistry(t *testing.T) *discovery.Registry {
	t.Helper()
	reg := newRegistry(t)
	data, err := os.ReadFile(filepath.Join("testdata", "zdd_apps.json"))
	if err != nil {
		t.Fatal(err)
	}
	apps, appErrs, err := discovery.DecodeMarathonApps(data)
	if err != nil || len(appErrs) > 0 {
		t.Fatalf("decoding the fixture: %v %v", err, appErrs)
	}
	apps = append(apps, &discovery.App{
		ID:        "/shop/web",
		Labels:    map[string]string{"HAPROXY_GROUP": "internal"},
		Instances: 3,
		Network:   discovery.NetworkHost,
		Ports:     []discovery.Port{{ServicePort: 10080, Protocol: "tcp", Name: "http"}},
		Tasks: []*discovery.Task{
			{ID: "web.1", Host: "10.0.0.1", State: discovery.StateRunning, HostPorts: []int{31001},
				Health: []discovery.HealthResult{{Alive: true}}, StartedAt: "2024-01-01T00:00:00Z"},
			{ID: "web.2", Host: "10.0.0.2", State: discovery.StateRunning, HostPorts: []int{31002},
				Health: []discovery.HealthResult{{Alive: false, ConsecutiveFailures: 3}}},
			{ID: "web.3", Host: "10.0.0.3", State: discovery.StateKilling, HostPorts: []int{31003}},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := reg.Send(ctx, discovery.ReplaceApps{Apps: apps}); err != nil {
		t.Fatal(err)
	}
	reg.ReportSync("file", nil)
	if _, err := reg.WaitFor(ctx, func(s *discovery.Snapshot) bool { return s.Apps.Len() == 3 }); err != nil {
		t.Fatalf("waiting for the fixture apps: %v", err)
	}
	return reg
}

func newServer(t *testing.T, cfg Config, reg Registry) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(cfg, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// get requests path from the server's router and returns the status and body, checking
// that the response is JSON unless it is /metrics.
func get(t *testing.T, h http.Handler, method, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	if path != "/metrics" {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
		}
	}
	return rec.Code, rec.Body.Bytes()
}

func TestApps(t *testing.T) {
	reg := fixtureRegistry(t)
	s := newServer(t, Config{}, reg)
	code, body := get(t, s.Router(), http.MethodGet, "/v1/apps")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/apps = %d %s", code, body)
	}
	var res struct {
		Version uint64 `json:"version"`
		Apps    []struct {
			ID        string            `json:"id"`
			Labels    map[string]string `json:"labels"`
			Instances int               `json:"instances"`
			Network   string            `json:"network"`
			Ports     []struct {
				ServicePort   int    `json:"service_port"`
				ContainerPort int    `json:"container_port"`
				HostPort      int    `json:"host_port"`
				Protocol      string `json:"protocol"`
				Name          string `json:"name"`
			} `json:"ports"`
			Tasks []struct {
				ID          string   `json:"id"`
				Host        string   `json:"host"`
				State       string   `json:"state"`
				IPAddresses []string `json:"ip_addresses"`
				HostPorts   []int    `json:"host_ports"`
				Endpoints   []struct {
					Host string `json:"host"`
					Port int    `json:"port"`
				} `json:"endpoints"`
				Eligible bool   `json:"eligible"`
				Reason   string `json:"reason"`
				Draining bool   `json:"draining"`
				Health   []struct {
					Alive bool `json:"alive"`
				} `json:"health"`
				StartedAt string `json:"started_at"`
			} `json:"tasks"`
		} `json:"apps"`
		Sources []discovery.SourceStatus `json:"sources"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	if want := reg.Snapshot().Version; res.Version != want {
		t.Errorf("version = %d, want %d", res.Version, want)
	}
	var ids []string
	for _, a := range res.Apps {
		ids = append(ids, a.ID)
	}
	if got, want := strings.Join(ids, " "), "/nginx-blue /nginx-green /shop/web"; got != want {
		t.Fatalf("app ids = %q, want %q (every app whatever its group, with the leading slash)", got, want)
	}

	green := res.Apps[1]
	if green.Network != "bridge" || green.Instances != 3 || len(green.Ports) != 1 ||
		green.Ports[0].ServicePort != 10000 || green.Ports[0].ContainerPort != 8080 || green.Ports[0].Protocol != "tcp" {
		t.Errorf("/nginx-green = network %q, %d instances, ports %+v", green.Network, green.Instances, green.Ports)
	}
	if green.Labels["HAPROXY_DEPLOYMENT_COLOUR"] != "green" {
		t.Errorf("/nginx-green labels = %v", green.Labels)
	}
	if len(green.Tasks) != 3 {
		t.Fatalf("/nginx-green has %d tasks, want 3", len(green.Tasks))
	}
	for _, task := range green.Tasks {
		if !task.Eligible || task.Reason != "" || len(task.Endpoints) != 1 || len(task.IPAddresses) != 1 ||
			len(task.Health) != 1 || !task.Health[0].Alive || task.StartedAt == "" || task.State != discovery.StateRunning {
			t.Errorf("/nginx-green task %+v: want eligible, one endpoint, one IP, alive, started", task)
		}
	}

	web := res.Apps[2]
	if web.Ports[0].Name != "http" || web.Labels["HAPROXY_GROUP"] != "internal" {
		t.Errorf("/shop/web ports %+v labels %v", web.Ports, web.Labels)
	}
	for i, want := range []struct {
		eligible, draining bool
		reason             string
	}{
		{true, false, ""},
		{false, false, "health check failing"},
		{false, true, "TASK_KILLING: draining"},
	} {
		got := web.Tasks[i]
		if got.Eligible != want.eligible || got.Draining != want.draining || got.Reason != want.reason {
			t.Errorf("/shop/web task %s: eligible=%t draining=%t reason=%q, want %t %t %q",
				got.ID, got.Eligible, got.Draining, got.Reason, want.eligible, want.draining, want.reason)
		}
	}
	if ep := web.Tasks[0].Endpoints; len(ep) != 1 || ep[0].Host != "10.0.0.1" || ep[0].Port != 31001 {
		t.Errorf("/shop/web web.1 endpoints = %+v, want 10.0.0.1:31001", ep)
	}
	if len(res.Sources) != 1 || res.Sources[0].Name != "file" || !res.Sources[0].Synced {
		t.Errorf("sources = %+v, want the synced file source", res.Sources)
	}

	// Lists are [] and maps {}, never null; keys are snake_case.
	for _, want := range []string{`"ip_addresses": []`, `"host_ports": [`, `"service_port": 10000`, `"container_port": 8080`,
		`"host_port": 0`, `"started_at": "2016-02-01T22:14:03.432Z"`, `"slave_id": "`, `"last_sync": "`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("body lacks %s", want)
		}
	}
	if bytes.Contains(body, []byte("null")) {
		t.Errorf("body contains null:\n%s", body)
	}
}

func TestAppsEmptyRegistry(t *testing.T) {
	s := newServer(t, Config{}, newRegistry(t))
	code, body := get(t, s.Router(), http.MethodGet, "/v1/apps")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/apps = %d", code)
	}
	var res map[string]any
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if apps, ok := res["apps"].([]any); !ok || len(apps) != 0 {
		t.Errorf("apps = %#v, want []", res["apps"])
	}
	if src, ok := res["sources"].([]any); !ok || len(src) != 0 {
		t.Errorf("sources = %#v, want []", res["sources"])
	}
	if res["version"] != 0.0 {
		t.Errorf("version = %v, want 0", res["version"])
	}
}

func TestHealthz(t *testing.T) {
	s := newServer(t, Config{Version: "1.2.3"}, newRegistry(t))
	code, body := get(t, s.Router(), http.MethodGet, "/healthz")
	var res map[string]string
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || res["status"] != "ok" || res["version"] != "1.2.3" {
		t.Errorf("GET /healthz = %d %s", code, body)
	}
}

func TestReadyz(t *testing.T) {
	reg := newRegistry(t)
	reg.RegisterSource("marathon")
	s := newServer(t, Config{}, reg)
	s.AddReadyCheck("first sync", reg.Synced)
	s.AddReadyCheck("haproxy", func() error { return nil })

	type readyz struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	code, body := get(t, s.Router(), http.MethodGet, "/readyz")
	var res readyz
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || res.Ready ||
		res.Checks["first sync"] != "waiting for the first sync of [marathon]" || res.Checks["haproxy"] != "ok" {
		t.Errorf("GET /readyz before the sync = %d %s, want 503 naming marathon", code, body)
	}

	reg.ReportSync("marathon", nil)
	code, body = get(t, s.Router(), http.MethodGet, "/readyz")
	res = readyz{}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || !res.Ready || res.Checks["first sync"] != "ok" || len(res.Checks) != 2 {
		t.Errorf("GET /readyz after the sync = %d %s, want 200 with both checks ok", code, body)
	}
}

func TestReadyzWithoutChecks(t *testing.T) {
	s := newServer(t, Config{}, newRegistry(t))
	code, body := get(t, s.Router(), http.MethodGet, "/readyz")
	if code != http.StatusOK || !bytes.Contains(body, []byte(`"ready": true`)) {
		t.Errorf("GET /readyz = %d %s", code, body)
	}
}

func TestMetrics(t *testing.T) {
	s := newServer(t, Config{}, newRegistry(t))
	s.Router().HandleFunc("/v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusTeapot, "no things")
	})
	get(t, s.Router(), http.MethodGet, "/healthz")
	get(t, s.Router(), http.MethodGet, "/v1/things/42")
	get(t, s.Router(), http.MethodGet, "/does/not/exist")
	get(t, s.Router(), "BREW", "/healthz")
	code, body := get(t, s.Router(), http.MethodGet, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`lodestar_api_requests_total{code="200",method="GET",route="/healthz"}`,
		`lodestar_api_requests_total{code="418",method="GET",route="/v1/things/{id}"}`,
		`lodestar_api_requests_total{code="404",method="GET",route="(not found)"}`,
		`lodestar_api_requests_total{code="405",method="other",route="(method not allowed)"}`,
		`lodestar_api_request_duration_seconds_bucket{code="200",method="GET",route="/healthz",le="`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	logger, logs := logtest.New()
	s := newServer(t, Config{Logger: logger}, newRegistry(t))
	for _, tc := range []struct {
		method, path string
		code         int
		msg          string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, "no such endpoint: /nope"},
		{http.MethodGet, "/v1/app", http.StatusNotFound, "no such endpoint: /v1/app"},
		{http.MethodGet, "/v1/apps/extra", http.StatusNotFound, "no app /extra in the registry"},
		{http.MethodPost, "/v1/apps", http.StatusMethodNotAllowed, "method POST is not allowed on /v1/apps"},
	} {
		code, body := get(t, s.Router(), tc.method, tc.path)
		var res map[string]string
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("%s %s: %v in %s", tc.method, tc.path, err, body)
		}
		if code != tc.code || res["error"] != tc.msg {
			t.Errorf("%s %s = %d %s, want %d {\"error\":%q}", tc.method, tc.path, code, body, tc.code, tc.msg)
		}
	}
	if l := logs.String(); !strings.Contains(l, "level=DEBUG") || !strings.Contains(l, "path=/nope") || !strings.Contains(l, "code=404") {
		t.Errorf("no debug request log line for /nope:\n%s", l)
	}
}

// run starts s.Run and returns a channel with its result; it waits until s listens.
func run(t *testing.T, ctx context.Context, s *Server) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("server not listening")
	}
	return done
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
		return nil
	}
}

func TestRunServesOnRealListener(t *testing.T) {
	reg := fixtureRegistry(t)
	s := newServer(t, Config{Listen: "127.0.0.1:0"}, reg)
	if s.Addr() != "" {
		t.Errorf("Addr before Run = %q, want empty", s.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := run(t, ctx, s)
	addr := s.Addr()
	if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr = %q, want 127.0.0.1 and the bound port", addr)
	}
	resp, err := http.Get("http://" + addr + "/v1/apps")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"id": "/shop/web"`)) {
		t.Errorf("GET /v1/apps over TCP = %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run = %v, want an error", err)
	}
}

func TestRunPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	s := newServer(t, Config{Listen: addr}, newRegistry(t))
	err = s.Run(context.Background())
	if err == nil {
		t.Fatal("Run on a taken port returned nil")
	}
	if want := "api: listen on " + addr + ": address already in use"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Run = %q, want it to start with %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Run error %v does not wrap EADDRINUSE", err)
	}
	select {
	case <-s.Ready():
		t.Error("Ready closed although Run never listened")
	default:
	}
}

func TestGracefulShutdown(t *testing.T) {
	s := newServer(t, Config{Listen: "127.0.0.1:0"}, newRegistry(t))
	entered, release := make(chan struct{}), make(chan struct{})
	s.Router().HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		WriteJSON(w, http.StatusOK, map[string]string{"slow": "done"})
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := run(t, ctx, s)
	addr := s.Addr()

	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(body), err}
	}()
	<-entered
	cancel()
	// Shutdown closes the listener first; once new connections are refused, the in-flight
	// request must still complete.
	waitRefused(t, addr)
	close(release)
	r := <-got
	if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, `"slow": "done"`) {
		t.Errorf("in-flight request during shutdown = %d %q %v, want 200 done", r.code, r.body, r.err)
	}
	if err := waitRun(t, done); err != nil {
		t.Errorf("Run after graceful shutdown = %v, want nil", err)
	}
}

// waitRefused polls until addr refuses connections (the listener is closed). Polling a
// condition is not a sleep guess: it ends as soon as the state is reached.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		runtime.Gosched()
	}
	t.Fatalf("%s still accepts connections after shutdown began", addr)
}

func TestShutdownTimeoutCutsOff(t *testing.T) {
	s := newServer(t, Config{Listen: "127.0.0.1:0", ShutdownTimeout: 50 * time.Millisecond}, newRegistry(t))
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	s.Router().HandleFunc("/stuck", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := run(t, ctx, s)
	go func() {
		if resp, err := http.Get("http://" + s.Addr() + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	err := waitRun(t, done)
	if err == nil || !strings.Contains(err.Error(), "cut off") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with a stuck request = %v, want a cut-off error", err)
	}
}

func TestNewValidates(t *testing.T) {
	reg := newRegistry(t)
	if _, err := New(Config{Listen: "8090"}, reg); err == nil || !strings.Contains(err.Error(), `"8090"`) {
		t.Errorf("New with a bad address = %v", err)
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("New without a registry succeeded")
	}
	if _, err := New(Config{ShutdownTimeout: -time.Second}, reg); err == nil {
		t.Error("New with a negative shutdown timeout succeeded")
	}
	s, err := New(Config{}, reg)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Listen != DefaultListen {
		t.Errorf("default listen = %q, want %q", s.cfg.Listen, DefaultListen)
	}
}
