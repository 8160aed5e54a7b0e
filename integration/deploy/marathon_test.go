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

// TestGetAppRefusesHostileAnswers: a Marathon answering 200 with another app, instances out
// of range, tasks that are not a list, task ids with control characters or path tricks (they
// go into kill requests and printed lines) or a "deployments" that is not a list is an error
// naming the app, not an app deploy acts on; an honest answer passes.
func TestGetAppRefusesHostileAnswers(t *testing.T) {
	answers := map[string]string{
		"/v2/apps/web-green":   `{"app": {"id": "/web-green", "instances": 2, "tasks": [{"id": "web-green.1a2b-3c", "state": "TASK_RUNNING"}], "deployments": []}}`,
		"/v2/apps/other":       `{"app": {"id": "/web-blue", "instances": 2}}`,
		"/v2/apps/negative":    `{"app": {"id": "/negative", "instances": -1}}`,
		"/v2/apps/huge":        `{"app": {"id": "/huge", "instances": 1e12}}`,
		"/v2/apps/tasksobj":    `{"app": {"id": "/tasksobj", "tasks": {"id": "x"}}}`,
		"/v2/apps/ctrl":        `{"app": {"id": "/ctrl", "tasks": [{"id": "ctrl.1\u001b[2J"}]}}`,
		"/v2/apps/trick":       `{"app": {"id": "/trick", "tasks": [{"id": "../../v2/apps?force=true"}]}}`,
		"/v2/apps/idnum":       `{"app": {"id": "/idnum", "tasks": [{"id": 7}]}}`,
		"/v2/apps/deployments": `{"app": {"id": "/deployments", "deployments": "none"}}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, answers[r.URL.Path])
	}))
	defer srv.Close()
	m := testClient(t, []string{srv.URL}, &recordSleeps{})
	if a, ok, err := m.GetApp(context.Background(), "/web-green"); err != nil || !ok || len(a.Tasks()) != 1 {
		t.Fatalf("honest answer: %v %v %v", a, ok, err)
	}
	for path, want := range map[string]string{
		"/other": `"/web-blue"`, "/negative": "instances", "/huge": "instances", "/tasksobj": "tasks",
		"/ctrl": "task id", "/trick": "task id", "/idnum": "task id", "/deployments": "deployments",
	} {
		_, _, err := m.GetApp(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want an error naming the app and %q", path, err, want)
		}
		if err != nil && strings.ContainsRune(err.Error(), 0x1b) {
			t.Errorf("%s: error %q carries a control character", path, err)
		}
	}
}

// TestMarathonMessageIsPrintable: the message of a Marathon error reaches the operator's
// terminal: control characters and invalid UTF-8 in it are replaced, and it is cut short.
func TestMarathonMessageIsPrintable(t *testing.T) {
	for body, want := range map[string]string{
		`{"message": "locked\u001b[2J by\r\nme"}`:         "locked?[2J by??me",
		"plain \x1b]0;title\x07 \xff text":                "plain ?]0;title? ? text",
		`{"message": "` + strings.Repeat("é", 300) + `"}`: strings.Repeat("é", 200) + "…",
	} {
		if got := marathonMessage([]byte(body)); got != want {
			t.Errorf("marathonMessage(%q) = %q, want %q", body, got, want)
		}
	}
}
