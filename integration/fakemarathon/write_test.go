package fakemarathon

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// send makes a request with a JSON body and returns the status and the decoded body.
func send(t *testing.T, s *Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// taskStates returns the states of the app's tasks as GET /v2/apps/{id} embeds them.
func taskStates(t *testing.T, s *Server, id string) []string {
	t.Helper()
	code, body := getJSON(t, s, "/v2/apps"+id)
	if code != http.StatusOK {
		t.Fatalf("GET /v2/apps%s: %d %v", id, code, body)
	}
	var states []string
	for _, task := range body["app"].(map[string]any)["tasks"].([]any) {
		states = append(states, task.(map[string]any)["state"].(string))
	}
	return states
}

// TestPostDeleteApp: a posted app's tasks run at once; a second post of the id is a conflict;
// DELETE removes the app, and a second DELETE is a 404.
func TestPostDeleteApp(t *testing.T) {
	s := start(t)
	code, body := send(t, s, http.MethodPost, "/v2/apps", `{"id":"smoke/one","cmd":"sleep 60","cpus":0.01,"mem":16,"instances":1}`)
	if code != http.StatusCreated || body["id"] != "/smoke/one" {
		t.Fatalf("POST: %d %v, want 201 with the app", code, body)
	}
	if got := taskStates(t, s, "/smoke/one"); len(got) != 1 || got[0] != "TASK_RUNNING" {
		t.Errorf("tasks %v, want one TASK_RUNNING", got)
	}
	if code, body := send(t, s, http.MethodPost, "/v2/apps", `{"id":"/smoke/one","cmd":"true"}`); code != http.StatusConflict ||
		!strings.Contains(body["message"].(string), "An app with id [/smoke/one] already exists") {
		t.Errorf("second POST: %d %v, want 409", code, body)
	}
	if code, _ := send(t, s, http.MethodDelete, "/v2/apps/smoke/one", ""); code != http.StatusOK {
		t.Errorf("DELETE: %d, want 200", code)
	}
	if code, _ := getJSON(t, s, "/v2/apps/smoke/one"); code != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d, want 404", code)
	}
	if code, _ := send(t, s, http.MethodDelete, "/v2/apps/smoke/one", ""); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", code)
	}
}

// TestPostAppLaunchState: with a launch state set, posted apps' tasks stay in it.
func TestPostAppLaunchState(t *testing.T) {
	s := start(t, func(s *Server) { s.SetLaunchState("TASK_STAGING") })
	if code, body := send(t, s, http.MethodPost, "/v2/apps", `{"id":"/stuck","cmd":"true","instances":2}`); code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, body)
	}
	if got := taskStates(t, s, "/stuck"); len(got) != 2 || got[0] != "TASK_STAGING" || got[1] != "TASK_STAGING" {
		t.Errorf("tasks %v, want two TASK_STAGING", got)
	}
}

// TestPostAppRefusesBadBodies: what is not an app is refused and stores nothing.
func TestPostAppRefusesBadBodies(t *testing.T) {
	s := start(t)
	for _, tc := range []struct {
		body string
		code int
	}{
		{`not json`, http.StatusBadRequest},
		{`["an", "array"]`, http.StatusBadRequest},
		{`{"cmd":"true"}`, http.StatusUnprocessableEntity},
		{`{"id":"/","cmd":"true"}`, http.StatusUnprocessableEntity},
		{`{"id":"/x","instances":"many"}`, http.StatusUnprocessableEntity},
		{`{"id":"/x","instances":-1}`, http.StatusUnprocessableEntity},
		{`{"id":"/x","instances":1.5}`, http.StatusUnprocessableEntity},
		{`{"id":"/x","instances":"1"}`, http.StatusUnprocessableEntity},
		{`{"id":"/x","instances":1e9}`, http.StatusUnprocessableEntity},
		{`{"id":"/x","pad":"` + strings.Repeat("a", maxPostBody) + `"}`, http.StatusBadRequest},
	} {
		if code, body := send(t, s, http.MethodPost, "/v2/apps", tc.body); code != tc.code {
			t.Errorf("POST %.40q: %d %v, want %d", tc.body, code, body, tc.code)
		}
	}
	if code, body := getJSON(t, s, "/v2/apps"); code != http.StatusOK || len(body["apps"].([]any)) != 0 {
		t.Errorf("apps after bad posts: %d %v, want none", code, body)
	}
}

// TestPostAppConcurrent: of several posts of one id at once, exactly one creates the app.
func TestPostAppConcurrent(t *testing.T) {
	s := start(t)
	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			code, _ := send(t, s, http.MethodPost, "/v2/apps", `{"id":"/race","cmd":"true","instances":1}`)
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	created := 0
	for c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Errorf("POST answered %d, want 201 or 409", c)
		}
	}
	if created != 1 {
		t.Errorf("%d posts created /race, want exactly 1", created)
	}
	if got := taskStates(t, s, "/race"); len(got) != 1 {
		t.Errorf("/race has tasks %v, want one", got)
	}
}
