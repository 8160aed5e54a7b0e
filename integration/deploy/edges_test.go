package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func view(edge string, servers map[string]ServerView) EdgeView {
	return EdgeView{Edge: edge, Servers: servers}
}

var (
	up       = ServerView{State: "ready", Status: "UP"}
	noCheck  = ServerView{State: "ready", Status: "no check"}
	goingUp  = ServerView{State: "ready", Status: "DOWN 1/2"}
	drained  = ServerView{State: "drain", Status: "DRAIN"}
	draining = ServerView{State: "drain", Status: "DRAIN", Sessions: 3}
)

// TestAssess: an old task may go only when every edge has it in drain with no session; the
// new tasks count as served only where HAProxy has them up.
func TestAssess(t *testing.T) {
	old, fresh := []string{"o1", "o2", "o3"}, []string{"n1", "n2"}
	for _, tc := range []struct {
		name        string
		views       []EdgeView
		wantDrained []string
		wantServing int
		wantWaiting string
	}{
		{"one edge, one drained", []EdgeView{view("a", map[string]ServerView{"o1": drained, "o2": up, "o3": up, "n1": up, "n2": noCheck})},
			[]string{"o1"}, 2, ""},
		{"sessions left", []EdgeView{view("a", map[string]ServerView{"o1": draining, "o2": drained, "n1": up, "n2": up})},
			[]string{"o2"}, 2, "1 old task(s) draining, 3 session(s) left"},
		{"edges disagree", []EdgeView{
			view("a", map[string]ServerView{"o1": drained, "o2": drained, "n1": up, "n2": up}),
			view("b", map[string]ServerView{"o1": drained, "o2": up, "n1": up, "n2": up})},
			[]string{"o1"}, 2, "1 old task(s) draining"},
		{"sessions on the other edge", []EdgeView{
			view("a", map[string]ServerView{"o1": drained, "n1": up, "n2": up}),
			view("b", map[string]ServerView{"o1": draining, "n1": up, "n2": up})},
			nil, 2, "3 session(s) left"},
		{"new task not up on one edge", []EdgeView{
			view("a", map[string]ServerView{"o1": drained, "n1": up, "n2": up}),
			view("b", map[string]ServerView{"o1": drained, "n1": up, "n2": goingUp})},
			[]string{"o1"}, 1, "b: HAProxy serves 1 of 2 new tasks"},
		{"an edge that fails drains nothing", []EdgeView{
			view("a", map[string]ServerView{"o1": drained, "n1": up, "n2": up}),
			{Edge: "b", Err: errors.New("lodestar b: connection refused")}},
			nil, 0, "connection refused"},
		{"old task gone from one edge", []EdgeView{
			view("a", map[string]ServerView{"o1": drained, "n1": up, "n2": up}),
			view("b", map[string]ServerView{"n1": up, "n2": up})},
			[]string{"o1"}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Assess(tc.views, old, fresh)
			if !slices.Equal(a.Drained, tc.wantDrained) || a.NewServing != tc.wantServing || !strings.Contains(a.Waiting, tc.wantWaiting) {
				t.Errorf("drained %v serving %d waiting %q; want %v, %d, %q", a.Drained, a.NewServing, a.Waiting, tc.wantDrained, tc.wantServing, tc.wantWaiting)
			}
			if tc.wantWaiting == "" && a.Waiting != "" {
				t.Errorf("waiting %q, want nothing", a.Waiting)
			}
		})
	}
}

// TestAssessUp: a drained server is up (its checks pass) but not served; a DOWN one is
// neither.
func TestAssessUp(t *testing.T) {
	a := Assess([]EdgeView{view("a", map[string]ServerView{"n1": up, "n2": drained, "n3": goingUp})}, nil, []string{"n1", "n2", "n3"})
	if a.NewServing != 1 || a.NewUp != 2 {
		t.Errorf("serving %d, up %d; want 1 and 2", a.NewServing, a.NewUp)
	}
}

// TestEdgeView reads lodestar's /v1/apps document: port 0's servers by task id, HAProxy's
// status and sessions; an edge without HAProxy's view, or not serving the app, is an error
// naming the edge.
func TestEdgeView(t *testing.T) {
	doc := `{"id": "/web-green", "routes": [
	  {"port": 0, "backend": "web_10000", "servers": [
	    {"slot": "s1", "task_id": "web-blue.1", "state": "drain", "haproxy": {"status": "DRAIN", "sessions": 2, "weight": 1}},
	    {"slot": "s2", "task_id": "web-green.1", "state": "ready", "haproxy": {"status": "UP", "sessions": 0, "weight": 1}}]},
	  {"port": 1, "backend": "web_10002", "servers": [
	    {"slot": "s1", "task_id": "web-blue.1", "state": "ready", "haproxy": {"status": "UP", "sessions": 0}}]}]}`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps/web-green", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, doc) })
	mux.HandleFunc("GET /v1/apps/nolive", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"routes": [{"port": 0, "backend": "b", "servers": [{"task_id": "t", "state": "ready"}]}]}`)
	})
	// Hostile answers: a negative session count would read as idle (and the task be killed
	// with sessions on it), an unknown state as not draining.
	mux.HandleFunc("GET /v1/apps/negative", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"routes": [{"port": 0, "backend": "b", "servers": [{"task_id": "t", "state": "drain", "haproxy": {"status": "DRAIN", "sessions": -1}}]}]}`)
	})
	mux.HandleFunc("GET /v1/apps/oddstate", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"routes": [{"port": 0, "backend": "b", "servers": [{"task_id": "t", "state": "gone\u001b[2J", "haproxy": {"status": "UP", "sessions": 0}}]}]}`)
	})
	mux.HandleFunc("GET /v1/apps/wrongtype", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"routes": [{"port": 0, "backend": "b", "servers": [{"task_id": "t", "state": "drain", "haproxy": {"status": "DRAIN", "sessions": "0"}}]}]}`)
	})
	mux.HandleFunc("GET /v1/apps/huge", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"routes": [{"port": 0, "backend": "b", "servers": [{"task_id": "t", "state": "drain", "haproxy": {"status": "DRAIN", "sessions": 1e30}}]}]}`)
	})
	mux.HandleFunc("GET /v1/apps/noroutes", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"id": "/noroutes"}`) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	e, err := NewEdges([]string{srv.URL}, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := e.View(context.Background(), "/web-green")[0]
	if v.Err != nil {
		t.Fatal(v.Err)
	}
	if got := v.Servers["web-blue.1"]; got != (ServerView{State: "drain", Status: "DRAIN", Sessions: 2}) {
		t.Errorf("old server %+v (port 1's view must not replace port 0's)", got)
	}
	if got := v.Servers["web-green.1"]; !got.serving() {
		t.Errorf("new server %+v not serving", got)
	}
	for id, want := range map[string]string{
		"/nolive":    "no HAProxy view",
		"/noroutes":  "HAProxy does not serve /noroutes",
		"/unknown":   "no app /unknown in its registry",
		"/negative":  "sessions -1",
		"/oddstate":  `state "gone\x1b[2J"`,
		"/wrongtype": "not the JSON expected",
		"/huge":      "not the JSON expected",
	} {
		v := e.View(context.Background(), id)[0]
		if v.Err == nil || !strings.Contains(v.Err.Error(), want) || !strings.Contains(v.Err.Error(), srv.URL) {
			t.Errorf("%s: %v, want an error naming the edge and %q", id, v.Err, want)
		}
	}
	if _, err := NewEdges([]string{"lb1:8090"}, 0); err == nil {
		t.Error("an edge URL without scheme was accepted")
	}
	if _, err := NewEdges(nil, 0); err == nil {
		t.Error("no edge accepted")
	}
}
