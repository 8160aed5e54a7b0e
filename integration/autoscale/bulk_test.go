package autoscale

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/api"
)

// pathLog records the paths an edge was asked for.
type pathLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *pathLog) add(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paths = append(l.paths, p)
}

func (l *pathLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.paths
	l.paths = nil
	return p
}

// An edge with GET /v1/requests is read with ONE request per reading, however many apps are
// asked for: only the apps asked for are counted, at the edge's requests_at; a hostile route
// (a port out of range) is dropped and a requests_at in the future clamped to the answer.
func TestEdgeCountersReadOneRequestPerEdge(t *testing.T) {
	answered := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	readAt := answered.Add(-300 * time.Millisecond)
	evil := "/evil/<script>\x1b[2J"
	var at string
	log := &pathLog{}
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r.URL.Path)
		if r.URL.Path != "/v1/requests" {
			http.Error(w, "only the bulk endpoint here", http.StatusInternalServerError)
			return
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"requests_at": at, "routes": []map[string]any{
			{"app_id": "/shop/web", "service_port": 10000, "requests": 42},
			{"app_id": "/shop/web", "service_port": 10001, "requests": 0},
			{"app_id": evil, "service_port": 10002, "requests": 9},
			{"app_id": "/not/asked", "service_port": 10003, "requests": 5},
			{"app_id": "/shop/web", "service_port": 70000, "requests": 1},
			{"app_id": "/shop/web", "service_port": 0, "requests": 1},
		}})
	}))
	t.Cleanup(edge.Close)
	c := EdgeCounters{URLs: []string{edge.URL}, Now: func() time.Time { return answered }}
	ids := []string{"/shop/web", evil, "/not/routed"}
	for i := range 200 {
		ids = append(ids, fmt.Sprintf("/many/app-%d", i))
	}

	at = readAt.Format(time.RFC3339Nano)
	rs := c.RequestTotals(context.Background(), ids)
	if rs[0].Err != nil {
		t.Fatal(rs[0].Err)
	}
	wantTotals(t, rs[0].Totals, map[RouteKey]Count{{"/shop/web", 10000}: {42, readAt},
		{"/shop/web", 10001}: {0, readAt}, {evil, 10002}: {9, readAt}})
	if got := log.take(); len(got) != 1 || got[0] != "/v1/requests" {
		t.Errorf("one reading of %d apps asked the edge for %v, want one GET /v1/requests", len(ids), got)
	}

	at = "2999-01-01T00:00:00Z"
	rs = c.RequestTotals(context.Background(), ids)
	if rs[0].Err != nil || !rs[0].Totals[RouteKey{"/shop/web", 10000}].At.Equal(answered) {
		t.Errorf("a requests_at in the future: %+v, want it taken as read when answered", rs[0])
	}
}

func wantTotals(t *testing.T, got, want map[RouteKey]Count) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("totals %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g.Total != w.Total || !g.At.Equal(w.At) {
			t.Errorf("%v: %+v, want %+v", k, g, w)
		}
	}
}

// An edge whose GET /v1/requests answers garbage, too much, an error or nothing in time fails
// its reading (the per-app reads are only for a 404), and the edges beside it are read all
// the same.
func TestEdgeCountersBulkFaults(t *testing.T) {
	log := &pathLog{}
	var hung sync.WaitGroup
	release := make(chan struct{})
	faulty := func(body func(w http.ResponseWriter, r *http.Request)) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.add(r.URL.Path)
			body(w, r)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	garbage := faulty(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"routes": [{"app_id": 7`) })
	huge := faulty(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"routes":[`+strings.Repeat(`{"app_id":"/a","service_port":1,"requests":1},`, api.MaxRequestTotalsDocument/40))
	})
	failing := faulty(func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusServiceUnavailable, "reading HAProxy's request counters: HAProxy is not running")
	})
	silent := faulty(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		defer hung.Done()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release); hung.Wait() })
	good := faulty(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"requests_at":"2026-05-01T10:00:00Z","routes":[{"app_id":"/a","service_port":10000,"requests":3}]}`)
	})

	// A generous bound for the answers (32 MiB under -race takes a while); a short one only
	// for the edge that never answers.
	c := EdgeCounters{URLs: []string{garbage, huge, failing, good}, Timeout: time.Minute}
	rs := c.RequestTotals(context.Background(), []string{"/a"})
	slow := EdgeCounters{URLs: []string{silent, good}, Timeout: 300 * time.Millisecond}
	rs = append(rs[:3], append(slow.RequestTotals(context.Background(), []string{"/a"}), rs[3])...)
	urls := []string{garbage, huge, failing, silent}
	for i, want := range []string{"not the JSON expected", "longer than", "status 503: \"reading HAProxy's request counters: HAProxy is not running\"", "deadline exceeded"} {
		if rs[i].Err == nil || !strings.Contains(rs[i].Err.Error(), want) || rs[i].Totals != nil {
			t.Errorf("edge %d: %+v, want an error with %q and no totals", i, rs[i], want)
		}
		if rs[i].Err != nil && !strings.Contains(rs[i].Err.Error(), urls[i]) {
			t.Errorf("edge %d: %v does not name the edge", i, rs[i].Err)
		}
	}
	for _, r := range rs[4:] {
		if r.Err != nil || r.Totals[RouteKey{"/a", 10000}].Total != 3 {
			t.Errorf("the good edge beside the faulty ones: %+v", r)
		}
	}
	for _, p := range log.take() {
		if p != "/v1/requests" {
			t.Errorf("a faulty edge was asked for %s: only a 404 falls back to the per-app reads", p)
		}
	}
}

// Mixed versions: in one reading, an older edge (404 for GET /v1/requests) is read app by
// app and a newer one with one request, and both count.
func TestEdgeCountersMixedVersions(t *testing.T) {
	oldLog, newLog := &pathLog{}, &pathLog{}
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		oldLog.add(r.URL.Path)
		switch r.URL.Path {
		case "/v1/apps/a":
			fmt.Fprint(w, `{"routes":[{"service_port":10000,"requests":5,"requests_at":"2026-05-01T10:00:00Z"}]}`)
		case "/v1/apps/b":
			fmt.Fprint(w, `{"routes":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(old.Close)
	current := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		newLog.add(r.URL.Path)
		fmt.Fprint(w, `{"requests_at":"2026-05-01T10:00:00Z","routes":[{"app_id":"/a","service_port":10000,"requests":7}]}`)
	}))
	t.Cleanup(current.Close)
	c := EdgeCounters{URLs: []string{old.URL, current.URL}}
	rs := c.RequestTotals(context.Background(), []string{"/a", "/b"})
	for i, want := range []uint64{5, 7} {
		if rs[i].Err != nil || len(rs[i].Totals) != 1 || rs[i].Totals[RouteKey{"/a", 10000}].Total != want {
			t.Errorf("edge %d: %+v, want /a:10000 at %d", i, rs[i], want)
		}
	}
	if got := strings.Join(oldLog.take(), " "); got != "/v1/requests /v1/apps/a /v1/apps/b" {
		t.Errorf("the older edge was asked for %s", got)
	}
	if got := strings.Join(newLog.take(), " "); got != "/v1/requests" {
		t.Errorf("the newer edge was asked for %s", got)
	}
}

// BenchmarkEdgeCounters is one reading of 2,000 apps from one edge: read app by app (an edge
// without GET /v1/requests) against one GET /v1/requests.
func BenchmarkEdgeCounters(b *testing.B) {
	const apps = 2000
	ids := make([]string, apps)
	bulk := api.RequestTotals{Routes: make([]api.RouteRequests, apps)}
	for i := range ids {
		ids[i] = fmt.Sprintf("/team/app-%d", i)
		bulk.Routes[i] = api.RouteRequests{AppID: ids[i], ServicePort: 10000 + i, Requests: uint64(i)}
	}
	for name, hasBulk := range map[string]bool{"per-app": false, "bulk": true} {
		edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/requests" {
				if !hasBulk {
					http.NotFound(w, r)
					return
				}
				api.WriteJSON(w, http.StatusOK, bulk)
				return
			}
			fmt.Fprint(w, `{"routes":[{"service_port":10000,"requests":1,"requests_at":"2026-05-01T10:00:00Z"}]}`)
		}))
		b.Run(name, func(b *testing.B) {
			c := EdgeCounters{URLs: []string{edge.URL}}
			for b.Loop() {
				if r := c.RequestTotals(context.Background(), ids); r[0].Err != nil || len(r[0].Totals) != apps {
					b.Fatalf("%d totals, %v", len(r[0].Totals), r[0].Err)
				}
			}
		})
		edge.Close()
	}
}
