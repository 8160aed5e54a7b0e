package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// snapshotRegistry is a Registry holding one fixed snapshot (nil: none yet).
type snapshotRegistry struct{ snap *discovery.Snapshot }

func (r snapshotRegistry) Snapshot() *discovery.Snapshot     { return r.snap }
func (r snapshotRegistry) Sources() []discovery.SourceStatus { return nil }

// evilID is an app id holding HTML and control characters: the document must carry it
// JSON-escaped, never raw.
const evilID = "/evil/<script>alert(1)</script>\x1b[2J\u2028&"

func appsRegistry(ids ...string) snapshotRegistry {
	apps := make([]*discovery.App, len(ids))
	for i, id := range ids {
		apps[i] = &discovery.App{ID: id}
	}
	return snapshotRegistry{&discovery.Snapshot{Version: 1, Apps: discovery.NewAppSet(apps)}}
}

// countingLive is a LiveServers that counts its readings and answers reading or err.
type countingLive struct {
	reading ServerStates
	err     error
	reads   *atomic.Int32
}

func (c countingLive) ServerStates(context.Context) (ServerStates, error) {
	c.reads.Add(1)
	return c.reading, c.err
}

// requestsGet serves GET /v1/requests over reg and front, and returns the status and body.
func requestsGet(t *testing.T, reg Registry, front Frontends) (int, []byte) {
	t.Helper()
	s := newServer(t, Config{}, reg)
	s.SetFrontends(front)
	return get(t, s.Router(), http.MethodGet, "/v1/requests")
}

// GET /v1/requests answers every routed app's totals from ONE reading of HAProxy: a route
// whose backend HAProxy lacks is left out (never a made-up 0), an app without routes has
// none, and an app id with HTML and control characters is JSON-escaped.
func TestRequestTotals(t *testing.T) {
	routing := statusRouting{routes: map[string][]Route{
		"/shop/web": {{Port: 0, ServicePort: 10080, Backend: "shop_web_10080"},
			{Port: 1, ServicePort: 10081, Backend: "shop_web_10081"}},
		evilID:      {{Port: 0, ServicePort: 10090, Backend: "evil_10090"}},
		"/not/read": {{Port: 0, ServicePort: 10100, Backend: "not_applied_yet"}},
	}}
	reading := liveWithBackends{requests: map[string]uint64{"shop_web_10080": 1234, "shop_web_10081": 0,
		"evil_10090": 7, "unrouted_backend": 99}}
	reads := &atomic.Int32{}
	code, body := requestsGet(t, appsRegistry("/shop/web", evilID, "/not/read", "/unrouted"),
		Frontends{Routing: routing, Live: countingLive{reading: reading, reads: reads}})
	if code != http.StatusOK {
		t.Fatalf("GET /v1/requests = %d %s", code, body)
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("HAProxy read %d times for one request, want once", n)
	}
	for _, raw := range []string{"<script>", "\x1b", "\u2028", "&"} {
		if strings.Contains(string(body), raw) {
			t.Errorf("the document holds %q unescaped: %s", raw, body)
		}
	}
	var doc RequestTotals
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.RequestsAt == nil || !doc.RequestsAt.Equal(reading.ReadAt()) {
		t.Errorf("requests_at %v, want %v", doc.RequestsAt, reading.ReadAt())
	}
	want := []RouteRequests{{evilID, 10090, 7}, {"/shop/web", 10080, 1234}, {"/shop/web", 10081, 0}}
	if !reflect.DeepEqual(doc.Routes, want) {
		t.Errorf("routes %+v, want %+v", doc.Routes, want)
	}
}

// listingRouting is a Routing that lists its backends in one pass (BackendLister); its
// AppRoutes must then not be used.
type listingRouting struct {
	statusRouting
	backends []AppBackend
	perApp   *atomic.Int32
}

func (r listingRouting) AppRoutes(id string) []Route {
	r.perApp.Add(1)
	return r.statusRouting.AppRoutes(id)
}

func (r listingRouting) AppBackends() []AppBackend { return r.backends }

// With a Routing that lists every backend at once, GET /v1/requests takes that list (not
// AppRoutes app by app) and keeps only the apps of the registry: a deployment group's own
// name is no app.
func TestRequestTotalsFromTheBackendList(t *testing.T) {
	perApp := &atomic.Int32{}
	routing := listingRouting{perApp: perApp, backends: []AppBackend{
		{"/bg", 10070, "bg_10070"}, {"/bg-blue", 10070, "bg_10070"}, {"/shop/web", 10080, "shop_web_10080"},
	}}
	reading := liveWithBackends{requests: map[string]uint64{"bg_10070": 5, "shop_web_10080": 1234}}
	code, body := requestsGet(t, appsRegistry("/shop/web", "/bg-blue"),
		Frontends{Routing: routing, Live: countingLive{reading: reading, reads: &atomic.Int32{}}})
	if code != http.StatusOK {
		t.Fatalf("GET /v1/requests = %d %s", code, body)
	}
	var doc RequestTotals
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	want := []RouteRequests{{"/bg-blue", 10070, 5}, {"/shop/web", 10080, 1234}}
	if !reflect.DeepEqual(doc.Routes, want) {
		t.Errorf("routes %+v, want %+v", doc.Routes, want)
	}
	if n := perApp.Load(); n != 0 {
		t.Errorf("AppRoutes called %d times beside the backend list", n)
	}
}

// Nothing routed is an empty list, not a 404 nor a reading of HAProxy (which may fail).
func TestRequestTotalsNothingRouted(t *testing.T) {
	reads := &atomic.Int32{}
	failing := countingLive{err: errors.New("HAProxy is not running"), reads: reads}
	for name, c := range map[string]struct {
		reg   Registry
		front Frontends
	}{
		"no snapshot yet":   {snapshotRegistry{}, Frontends{Routing: statusRouting{}, Live: failing}},
		"no HAProxy":        {appsRegistry("/shop/web"), Frontends{}},
		"no routed app":     {appsRegistry("/shop/web"), Frontends{Routing: statusRouting{}, Live: failing}},
		"no app":            {appsRegistry(), Frontends{Routing: shopRouting(), Live: failing}},
		"no live, no route": {appsRegistry("/a"), Frontends{Routing: statusRouting{}}},
	} {
		code, body := requestsGet(t, c.reg, c.front)
		if code != http.StatusOK || strings.Join(strings.Fields(string(body)), "") != `{"routes":[]}` {
			t.Errorf("%s: %d %s, want 200 with no routes", name, code, body)
		}
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("HAProxy read %d times with nothing routed", n)
	}
}

// HAProxy's view unreadable (failing, hanging, no counters, not wired in) is a 503 saying
// why, never a partial or empty list that a reader would take for "no requests".
func TestRequestTotalsHAProxyUnreadable(t *testing.T) {
	reg := appsRegistry("/shop/web")
	for name, c := range map[string]struct {
		live LiveServers
		want string
	}{
		"socket fails": {fakeLive{err: errors.New("dial unix /run/lodestar/admin.sock: connect: <refused>")}, "connect: <refused>"},
		"socket hangs": {fakeLive{hang: true}, "deadline exceeded"},
		"nil reading":  {countingLive{reads: &atomic.Int32{}}, "not available"},
		"no counters":  {shopLive(), "no backend counters"},
		"not wired":    {nil, "not wired in"},
	} {
		code, body := requestsGet(t, reg, Frontends{Routing: shopRouting(), Live: c.live})
		var doc errorBody
		if err := json.Unmarshal(body, &doc); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(doc.Error, c.want) {
			t.Errorf("%s: %d %s, want 503 saying %q", name, code, body, c.want)
		}
	}
}

// FetchRequestTotals reads what the endpoint serves, and says ErrNoRequestTotals for an
// edge without it (an older lodestar), so that its reader can fall back to FetchApp.
func TestFetchRequestTotals(t *testing.T) {
	reading := liveWithBackends{requests: map[string]uint64{"shop_web_10080": 42}}
	s := newServer(t, Config{}, appsRegistry("/shop/web"))
	s.SetFrontends(Frontends{Routing: shopRouting(), Live: fakeLiveBackends{reading}})
	edge := httptest.NewServer(s.Router())
	defer edge.Close()
	client := &http.Client{Timeout: time.Minute}
	doc, err := FetchRequestTotals(context.Background(), client, edge.URL+"/")
	if err != nil || len(doc.Routes) != 1 || doc.Routes[0] != (RouteRequests{"/shop/web", 10080, 42}) ||
		doc.RequestsAt == nil || !doc.RequestsAt.Equal(reading.ReadAt()) {
		t.Fatalf("FetchRequestTotals = %+v, %v", doc, err)
	}

	old := httptest.NewServer(http.NotFoundHandler())
	defer old.Close()
	if _, err := FetchRequestTotals(context.Background(), client, old.URL); !errors.Is(err, ErrNoRequestTotals) {
		t.Errorf("an edge without the endpoint: %v, want ErrNoRequestTotals", err)
	}
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"routes":[` + strings.Repeat(`{"app_id":"/a","service_port":1,"requests":1},`, MaxRequestTotalsDocument/40)))
	}))
	defer huge.Close()
	if _, err := FetchRequestTotals(context.Background(), client, huge.URL); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("an oversized answer: %v", err)
	}
}
