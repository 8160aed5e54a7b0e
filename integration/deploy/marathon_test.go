package deploy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recordSleeps is a Backoff.Sleep that records the waits instead of waiting.
type recordSleeps struct{ waits []time.Duration }

func (r *recordSleeps) sleep(_ context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return nil
}

func testClient(t *testing.T, urls []string, rs *recordSleeps) *Marathon {
	t.Helper()
	m, err := NewMarathon(MarathonConfig{URLs: urls, User: "ops", Password: "pw", Retry: Backoff{Attempts: 4, Base: 100 * time.Millisecond, Max: 250 * time.Millisecond, Sleep: rs.sleep}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 250 * time.Millisecond, Max: 5 * time.Second}
	var got []time.Duration
	for n := range 7 {
		got = append(got, b.Delay(n))
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
}

// TestMarathonRetriesThenSucceeds: a Marathon answering 503 (a leader election) and then 409
// "locked by a deployment" is retried with growing waits, with credentials on every try.
func TestMarathonRetriesThenSucceeds(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ops" || p != "pw" {
			http.Error(w, "no auth", http.StatusUnauthorized)
			return
		}
		switch calls.Add(1) {
		case 1:
			http.Error(w, `{"message": "leader election"}`, http.StatusServiceUnavailable)
		case 2:
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"message": "App is locked by one or more deployments."}`)
		default:
			if r.Method != http.MethodPut || r.URL.Path != "/v2/apps/shop/web-green" {
				t.Errorf("%s %s", r.Method, r.URL)
			}
			fmt.Fprint(w, `{"deploymentId": "d1"}`)
		}
	}))
	defer srv.Close()
	rs := &recordSleeps{}
	if err := testClient(t, []string{srv.URL}, rs).ScaleApp(context.Background(), "/shop/web-green", 3, false); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || !slices.Equal(rs.waits, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}) {
		t.Errorf("%d calls, waits %v", calls.Load(), rs.waits)
	}
}

// TestMarathonGivesUp: a Marathon that refuses every connection is tried Attempts times, over
// every member, and then the error says what was asked, where, and how often.
func TestMarathonGivesUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	rs := &recordSleeps{}
	_, err = testClient(t, []string{dead, dead + "/"}, rs).ListApps(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET "+dead+"/v2/apps") || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("error %v", err)
	}
	if len(rs.waits) != 3 || rs.waits[2] != 250*time.Millisecond {
		t.Errorf("waits %v, want 3 capped at 250ms", rs.waits)
	}
}

// TestMarathonFailsOver: a member that cannot be reached is skipped for the next.
func TestMarathonFailsOver(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"apps": [{"id": "/a", "instances": 2}]}`)
	}))
	defer srv.Close()
	apps, err := testClient(t, []string{dead, srv.URL}, &recordSleeps{}).ListApps(context.Background())
	if err != nil || len(apps) != 1 || apps[0].ID() != "/a" {
		t.Errorf("apps %v, %v", apps, err)
	}
}

// TestMarathonNoRetry: a refusal that will not change (400, 401, 404, 409 exists) is
// returned at once.
func TestMarathonNoRetry(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/v2/apps/gone":
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message": "App '/gone' does not exist"}`)
		case "/v2/apps":
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, `{"message": "Object is not valid"}`)
		case "/v2/apps/x":
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	m := testClient(t, []string{srv.URL}, &recordSleeps{})
	ctx := context.Background()
	if _, ok, err := m.GetApp(ctx, "/gone"); ok || err != nil {
		t.Errorf("GetApp of a missing app: ok %v, err %v", ok, err)
	}
	err := m.CreateApp(ctx, App{"id": "/new"})
	if err == nil || !strings.Contains(err.Error(), "POST /v2/apps: 422 Object is not valid") {
		t.Errorf("create: %v", err)
	}
	if err := m.DeleteApp(ctx, "/x", true); err != nil {
		t.Errorf("deleting an app already gone: %v", err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3 (no retries)", calls.Load())
	}
}

// TestCreateAppLostAnswer: a create whose answer was lost and whose retry finds the app
// (with this deploy's STARTED_AT) succeeds; an app of another deploy under that id fails.
func TestCreateAppLostAnswer(t *testing.T) {
	var posts atomic.Int32
	started := "2026-12-07T20:00:00Z"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && posts.Add(1) == 1:
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"message": "An app with id [/web-green] already exists."}`)
		default:
			fmt.Fprintf(w, `{"app": {"id": "/web-green", "labels": {"HAPROXY_DEPLOYMENT_STARTED_AT": %q}}}`, started)
		}
	}))
	defer srv.Close()
	m := testClient(t, []string{srv.URL}, &recordSleeps{})
	app := App{"id": "/web-green", "labels": map[string]any{LabelStartedAt: started}}
	if err := m.CreateApp(context.Background(), app); err != nil {
		t.Errorf("create after a lost answer: %v", err)
	}
	app.SetLabel(LabelStartedAt, "2026-12-07T21:00:00Z")
	if err := m.CreateApp(context.Background(), app); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("create over another deploy's app: %v", err)
	}
}
