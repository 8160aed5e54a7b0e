package cluster

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// smokeConfig is the lab's configuration with the smoke test on, polling often.
func smokeConfig(l *lab) Config {
	cfg := l.config()
	cfg.Smoke, cfg.SmokePoll = true, 10*time.Millisecond
	return cfg
}

// marathonApps returns the ids of the apps the fake Marathon holds.
func marathonApps(t *testing.T, l *lab) []string {
	t.Helper()
	resp, err := http.Get(l.marathon.URL() + "/v2/apps")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Apps []struct {
			ID string `json:"id"`
		} `json:"apps"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range body.Apps {
		ids = append(ids, a.ID)
	}
	return ids
}

// refusing starts a proxy to the lab's Marathon that answers method with code and forwards
// everything else.
func refusing(t *testing.T, l *lab, method string, code int) *httptest.Server {
	t.Helper()
	u, err := url.Parse(l.marathon.URL())
	if err != nil {
		t.Fatal(err)
	}
	fwd := httputil.NewSingleHostReverseProxy(u)
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == method {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(`{"message":"refused by the test"}`))
			return
		}
		fwd.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestDoctorSmoke: the smoke app is posted, its task runs, and it is deleted.
func TestDoctorSmoke(t *testing.T) {
	l := newLab(t)
	r := runDoctor(t, smokeConfig(l))
	f := want(t, r, CheckSmoke, "", SeverityOK, "ran on 127.0.0.1")
	if !strings.Contains(f.Message, "the app is deleted") || !strings.Contains(f.Target, " app "+smokeAppPrefix) {
		t.Errorf("smoke finding %+v: want the app %s… named and deleted", f, smokeAppPrefix)
	}
	if !r.OK() {
		t.Errorf("a healthy cluster with the smoke test is not all ok:\n%s", table(r))
	}
	if got := marathonApps(t, l); len(got) != 0 {
		t.Errorf("apps left after the smoke test: %v", got)
	}
	if l.marathon.Requests("/v2/apps") == 0 {
		t.Error("no request to /v2/apps: the smoke app was never posted")
	}
}

// TestDoctorSmokeNeverRuns: a task that stays staging is an error after the timeout, naming
// its state; the app is deleted all the same.
func TestDoctorSmokeNeverRuns(t *testing.T) {
	l := newLab(t)
	l.marathon.SetLaunchState("TASK_STAGING")
	cfg := smokeConfig(l)
	cfg.SmokeTimeout = 300 * time.Millisecond
	r := runDoctor(t, cfg)
	f := want(t, r, CheckSmoke, "", SeverityError, "no task running within 300ms (task states: TASK_STAGING)")
	if !strings.Contains(f.Fix, "offers") {
		t.Errorf("fix %q does not point at offers", f.Fix)
	}
	if got := marathonApps(t, l); len(got) != 0 {
		t.Errorf("apps left after a failed smoke test: %v", got)
	}
}

// TestDoctorSmokeTaskFails: a task that fails is an error at once, naming the state.
func TestDoctorSmokeTaskFails(t *testing.T) {
	l := newLab(t)
	l.marathon.SetLaunchState("TASK_FAILED")
	cfg := smokeConfig(l)
	cfg.SmokeTimeout = time.Hour // a wait for the timeout would fail the test's own deadline
	r := runDoctor(t, cfg)
	want(t, r, CheckSmoke, "", SeverityError, "went TASK_FAILED before it ran")
	if got := marathonApps(t, l); len(got) != 0 {
		t.Errorf("apps left after a failed smoke test: %v", got)
	}
}

// TestDoctorSmokeAppExists: an app of the smoke id that is there already is reported and left
// alone: it is not the doctor's to delete.
func TestDoctorSmokeAppExists(t *testing.T) {
	l := newLab(t)
	if err := l.marathon.AddApp(map[string]any{"id": "/smoke-mine", "cmd": "serve", "instances": 0}); err != nil {
		t.Fatal(err)
	}
	cfg := smokeConfig(l)
	cfg.SmokeAppID = "/smoke-mine"
	r := runDoctor(t, cfg)
	f := want(t, r, CheckSmoke, "", SeverityError, "an app /smoke-mine exists already")
	if !strings.Contains(f.Fix, "curl -X DELETE "+l.marathon.URL()+"/v2/apps/smoke-mine") {
		t.Errorf("fix %q lacks the delete command", f.Fix)
	}
	if got := marathonApps(t, l); len(got) != 1 || got[0] != "/smoke-mine" {
		t.Errorf("apps %v, want /smoke-mine kept", got)
	}
}

// TestDoctorSmokeRefused: a Marathon that refuses the POST is an error saying so.
func TestDoctorSmokeRefused(t *testing.T) {
	l := newLab(t)
	p := refusing(t, l, http.MethodPost, http.StatusForbidden)
	cfg := smokeConfig(l)
	cfg.Marathon = []string{p.URL}
	r := runDoctor(t, cfg)
	f := want(t, r, CheckSmoke, "", SeverityError, "Marathon refused to create the smoke app: 403 ")
	if !strings.Contains(f.Fix, "authentication") {
		t.Errorf("fix %q does not mention authentication", f.Fix)
	}
}

// TestDoctorSmokeNotDeleted: a DELETE that fails is a warning with the command to run; the
// launch itself is ok but does not claim the app is gone.
func TestDoctorSmokeNotDeleted(t *testing.T) {
	l := newLab(t)
	p := refusing(t, l, http.MethodDelete, http.StatusInternalServerError)
	cfg := smokeConfig(l)
	cfg.Marathon = []string{p.URL}
	r := runDoctor(t, cfg)
	ok := want(t, r, CheckSmoke, "", SeverityOK, "ran on 127.0.0.1")
	if strings.Contains(ok.Message, "deleted") {
		t.Errorf("finding %q claims the app is deleted", ok.Message)
	}
	f := want(t, r, CheckSmoke, "", SeverityWarn, "could not delete the smoke app: DELETE: 500")
	if !strings.Contains(f.Fix, "curl -X DELETE "+p.URL+"/v2/apps"+smokeAppPrefix) {
		t.Errorf("fix %q lacks the delete command", f.Fix)
	}
}

// TestDoctorSmokeNoLeader: with no Marathon answering, the smoke test says it did not run.
func TestDoctorSmokeNoLeader(t *testing.T) {
	l := newLab(t)
	l.marathon.SetStatus(http.StatusServiceUnavailable)
	r := runDoctor(t, smokeConfig(l))
	want(t, r, CheckSmoke, "", SeverityError, "not run: no Marathon leader answers")
}

// TestNewValidatesSmoke: the smoke test needs Marathon, and an app id given for it must be a
// plain Marathon id (it goes into URLs and a curl command).
func TestNewValidatesSmoke(t *testing.T) {
	if _, err := New(Config{Targets: Targets{Lodestar: []string{"http://127.0.0.1:1"}}, Smoke: true}); err == nil ||
		!strings.Contains(err.Error(), "give Marathon URLs") {
		t.Errorf("smoke without Marathon: %v", err)
	}
	base := Config{Targets: Targets{Marathon: []string{"http://127.0.0.1:1"}}, Smoke: true}
	for _, id := range []string{"/ok", "/team/smoke-1.a"} {
		cfg := base
		cfg.SmokeAppID = id
		if _, err := New(cfg); err != nil {
			t.Errorf("smoke app id %q: %v", id, err)
		}
	}
	for _, id := range []string{"relative", "/Upper", "/x/../y", "/x?force=true", "/x y", "/x/", "/-x", "/x;rm -rf", "/" + strings.Repeat("a", 300)} {
		cfg := base
		cfg.SmokeAppID = id
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "smoke app id") {
			t.Errorf("smoke app id %q: %v, want it refused", id, err)
		}
	}
}
