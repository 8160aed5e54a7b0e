package autoscale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// EdgeCounters reads GET /v1/apps/{id} of each app from an edge without GET /v1/requests
// (404: an older lodestar): honest routes give counts at their requests_at; hostile ones (a
// port out of range, requests_at in the future) are dropped or clamped; an app the edge does
// not know has no routes; a failing edge fails its reading.
func TestEdgeCountersFallBackToAppReads(t *testing.T) {
	answered := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	readAt := answered.Add(-400 * time.Millisecond)
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/apps/shop/web":
			fmt.Fprintf(w, `{"routes":[{"service_port":10000,"requests":42,"requests_at":%q},
				{"service_port":10001,"requests":7,"requests_at":"2999-01-01T00:00:00Z"},
				{"service_port":70000,"requests":1},{"service_port":10002}]}`, readAt.Format(time.RFC3339Nano))
		case "/v1/apps/gone", "/v1/requests":
			http.NotFound(w, r)
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(edge.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	c := EdgeCounters{URLs: []string{edge.URL, down.URL}, Now: func() time.Time { return answered }}
	rs := c.RequestTotals(context.Background(), []string{"/shop/web", "/gone"})
	if rs[0].Err != nil {
		t.Fatal(rs[0].Err)
	}
	want := map[RouteKey]Count{{"/shop/web", 10000}: {42, readAt}, {"/shop/web", 10001}: {7, answered}}
	if len(rs[0].Totals) != len(want) {
		t.Fatalf("totals %v, want %v", rs[0].Totals, want)
	}
	for k, w := range want {
		if got := rs[0].Totals[k]; got.Total != w.Total || !got.At.Equal(w.At) {
			t.Errorf("%v: %+v, want %+v", k, got, w)
		}
	}
	if rs[1].Err == nil || !strings.Contains(rs[1].Err.Error(), "503") || rs[1].Totals != nil {
		t.Errorf("the failing edge: %+v", rs[1])
	}
	if r := c.RequestTotals(context.Background(), []string{"/other"}); r[0].Err == nil {
		t.Error("a 500 for one app did not fail the edge's reading")
	}
}

// MarathonClient: a 5xx moves on to the next URL, a 409 is ErrDeploymentLocked and final, the
// PUT carries {"instances": n} and basic auth, a slow member times out.
func TestMarathonClient(t *testing.T) {
	var puts atomic.Int32
	var body string
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ops" || p != "pw" {
			http.Error(w, "auth", http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v2/apps/shop/web":
			fmt.Fprint(w, `{"app":{"id":"/shop/web","instances":2,"deployments":[{"id":"d1"}]}}`)
		case r.Method == http.MethodPut && r.URL.Path == "/v2/apps/shop/web":
			b, _ := io.ReadAll(r.Body)
			body = string(b)
			puts.Add(1)
			fmt.Fprint(w, `{"deploymentId":"d2","version":"v"}`)
		case r.Method == http.MethodPut && r.URL.Path == "/v2/apps/locked":
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"message":"App is locked by one or more deployments."}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(good.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "leader election", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	m := MarathonClient{URLs: []string{broken.URL, good.URL}, User: "ops", Password: "pw"}
	st, err := m.App(context.Background(), "/shop/web")
	if err != nil || st.Instances != 2 || st.Deployments != 1 {
		t.Fatalf("App = %+v, %v", st, err)
	}
	if err := m.Scale(context.Background(), "/shop/web", 5); err != nil || body != `{"instances":5}` || puts.Load() != 1 {
		t.Fatalf("Scale: %v, body %q, %d PUTs", err, body, puts.Load())
	}
	if err := m.Scale(context.Background(), "/locked", 5); !errors.Is(err, ErrDeploymentLocked) {
		t.Fatalf("Scale of a locked app: %v, want ErrDeploymentLocked", err)
	}
	if _, err := m.App(context.Background(), "/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("App of a missing app: %v", err)
	}
	// Hostile app ids never reach Marathon as another app's path, a query or a fragment.
	for _, id := range []string{"/shop/web?force=true", "/shop/../locked", "/shop/web#x", "/shop//web", "/Shop/Web", "/shop/web%2F..", ""} {
		before := puts.Load()
		if err := m.Scale(context.Background(), id, 7); err == nil || puts.Load() != before {
			t.Errorf("Scale(%q) = %v with %d PUTs, want an error and none", id, err, puts.Load()-before)
		}
	}
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) }) // runs first: the handler returns, Close does not wait
	slow := MarathonClient{URLs: []string{hang.URL}, Timeout: 100 * time.Millisecond}
	if err := slow.Scale(context.Background(), "/x", 1); !errors.Is(err, ErrMarathonUnavailable) {
		t.Fatalf("a Marathon that never answers: %v, want ErrMarathonUnavailable", err)
	}
	if err := m.Scale(context.Background(), "/locked", 5); errors.Is(err, ErrMarathonUnavailable) {
		t.Fatalf("a 409 is a refusal of one app, not an outage: %v", err)
	}
}

// HTTPAgents reads an agent at the address of its pid; an agent with no usable address is
// an error, not a request to a made-up host.
func TestHTTPAgents(t *testing.T) {
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/monitor/statistics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `[{"executor_id":"web.1","statistics":{"cpus_user_time_secs":1,"mem_rss_bytes":5,"mem_limit_bytes":10,"timestamp":3}}]`)
	}))
	t.Cleanup(agent.Close)
	addr := strings.TrimPrefix(agent.URL, "http://")
	got, err := HTTPAgents{}.Statistics(context.Background(), discovery.Agent{ID: "S1", PID: "slave(1)@" + addr})
	if err != nil || len(got) != 1 || got[0].ExecutorID != "web.1" {
		t.Fatalf("Statistics = %+v, %v", got, err)
	}
	if _, err := (HTTPAgents{}).Statistics(context.Background(), discovery.Agent{ID: "S2", PID: "garbage", Hostname: "evil/host?x"}); err == nil {
		t.Fatal("an agent without an address was read")
	}
}

// Every read of a peer is time-bounded by the reader itself, whatever the http.Client it is
// given (cmd's clients trusting a CA bundle have no timeout): an agent or an edge that
// accepts and never answers fails its reading instead of holding the interval for ever.
func TestPeersThatNeverAnswerTimeOut(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	addr := strings.TrimPrefix(hang.URL, "http://")
	done := make(chan error, 2)
	go func() {
		_, err := HTTPAgents{Client: &http.Client{}, Timeout: 100 * time.Millisecond}.Statistics(context.Background(),
			discovery.Agent{ID: "S1", PID: "slave(1)@" + addr})
		done <- err
	}()
	go func() {
		rs := EdgeCounters{URLs: []string{hang.URL}, Client: &http.Client{}, Timeout: 100 * time.Millisecond}.RequestTotals(context.Background(), []string{"/web"})
		done <- rs[0].Err
	}()
	for range 2 {
		select {
		case err := <-done:
			if err == nil {
				t.Error("a peer that never answers gave a reading")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a read of a peer that never answers did not end")
		}
	}
}
