package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
)

// The Run tests drive a fake Marathon through deploy's client and read drains from a stub
// edge that applies lodestar's drain rule (one old task per healthy new task, within the
// target) to Marathon's state, with no session left. The real rule, through real HAProxy, is
// exercised in integration/deploy_live_test.go.

// stubEdge serves /v1/apps/{id} as lodestar would for a deployment group in fm.
type stubEdge struct {
	fm       *fakemarathon.Server
	mu       sync.Mutex
	sessions int  // sessions on every drained server
	refuse   bool // answer 503
}

// set changes the sessions of drained servers and whether the edge refuses.
func (e *stubEdge) set(sessions int, refuse bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sessions, e.refuse = sessions, refuse
}

func (e *stubEdge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	sessions, refuse := e.sessions, e.refuse
	e.mu.Unlock()
	if refuse {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	resp, err := http.Get(e.fm.URL() + "/v2/apps?embed=apps.tasks")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var list struct{ Apps []App }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/v1/apps")
	var members []App
	for _, a := range list.Apps {
		if a.Label(LabelGroup) == "web" {
			members = append(members, a)
		}
	}
	if !slices.ContainsFunc(members, func(a App) bool { return a.ID() == id }) {
		http.Error(w, "no app", http.StatusNotFound)
		return
	}
	slices.SortFunc(members, func(x, y App) int { return strings.Compare(x.Label(LabelStartedAt), y.Label(LabelStartedAt)) })
	type server struct {
		TaskID  string         `json:"task_id"`
		State   string         `json:"state"`
		HAProxy map[string]any `json:"haproxy"`
	}
	var servers []server
	drain := map[string]bool{}
	if len(members) > 1 {
		newest := members[len(members)-1]
		healthy := len(healthyTasks(newest.Tasks()))
		target, _ := newest.TargetInstances()
		var old []string
		oldInst := 0
		for _, m := range members[:len(members)-1] {
			n, _ := m.Instances()
			oldInst += n
			old = append(old, taskIDs(m.Tasks())...)
		}
		slices.Sort(old)
		for _, id := range old[:lodestarDrains(healthy, oldInst, len(old), target)] {
			drain[id] = true
		}
	}
	for _, m := range members {
		for _, t := range m.Tasks() {
			if !t.Healthy {
				continue
			}
			s := server{TaskID: t.ID, State: "ready", HAProxy: map[string]any{"status": "UP", "sessions": 0}}
			if drain[t.ID] {
				s.State, s.HAProxy = "drain", map[string]any{"status": "DRAIN", "sessions": sessions}
			}
			servers = append(servers, s)
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"routes": []any{map[string]any{"port": 0, "backend": "web_10000", "servers": servers}}})
}

// runEnv is a fake Marathon, a stub edge and a deploy Config for them.
type runEnv struct {
	fm     *fakemarathon.Server
	edge   *stubEdge
	cfg    Config
	events *bytes.Buffer
}

func newRunEnv(t *testing.T) *runEnv {
	t.Helper()
	fm := fakemarathon.New()
	if err := fm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fm.Close)
	edge := &stubEdge{fm: fm}
	srv := httptest.NewServer(edge)
	t.Cleanup(srv.Close)
	m, err := NewMarathon(MarathonConfig{URLs: []string{fm.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	edges, err := NewEdges([]string{srv.URL}, 0)
	if err != nil {
		t.Fatal(err)
	}
	events := &bytes.Buffer{}
	return &runEnv{fm: fm, edge: edge, events: events, cfg: Config{
		Marathon: m, Edges: edges, Poll: 5 * time.Millisecond,
		Options:  Options{InitialInstances: 1, MaxWait: 10 * time.Second},
		Progress: NewProgress(nil, events, false, nil),
	}}
}

// deployFile plans and runs a deploy of def with env's config.
func (e *runEnv) deploy(t *testing.T, ctx context.Context, def string) (*Plan, error) {
	t.Helper()
	app, err := ParseApp([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanFrom(ctx, e.cfg, app)
	if err != nil {
		t.Fatal(err)
	}
	return plan, Run(ctx, e.cfg, plan)
}

// groupState is each app of group web in the fake Marathon: instances and task ids.
func (e *runEnv) groupState(t *testing.T) map[string]string {
	t.Helper()
	apps, err := e.cfg.Marathon.ListApps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range apps {
		if a.Label(LabelGroup) == "web" {
			n, _ := a.Instances()
			ids := taskIDs(a.Tasks())
			slices.Sort(ids)
			out[a.ID()] = fmt.Sprintf("%d instances, tasks %v", n, ids)
		}
	}
	return out
}

func (e *runEnv) eventKinds(t *testing.T) []string {
	t.Helper()
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(e.events.String()), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event line %q: %v", line, err)
		}
		if ev.Kind != "wait" {
			kinds = append(kinds, ev.Kind)
		}
	}
	e.events.Reset()
	return kinds
}

func webDef(instances int) string {
	return fmt.Sprintf(`{"id": "/web", "instances": %d, "labels": {"HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"},
	  "portDefinitions": [{"port": 10000}], "healthChecks": [{"protocol": "TCP", "portIndex": 0}]}`, instances)
}

// TestRunFirstThenSwap: a first deploy creates blue; the next creates green, moves through
// zdd's steps while the edge drains blue's tasks, and deletes blue once all are drained.
func TestRunFirstThenSwap(t *testing.T) {
	e := newRunEnv(t)
	ctx := context.Background()
	if _, err := e.deploy(t, ctx, webDef(4)); err != nil {
		t.Fatal(err)
	}
	if got := e.eventKinds(t); !slices.Equal(got, []string{"create", "serving", "done"}) {
		t.Errorf("first deploy events %v", got)
	}
	plan, err := e.deploy(t, ctx, webDef(4))
	if err != nil {
		t.Fatal(err)
	}
	if plan.NewID != "/web-green" || plan.NewServicePort != 10001 {
		t.Errorf("plan %s on %d", plan.NewID, plan.NewServicePort)
	}
	st := e.groupState(t)
	if len(st) != 1 || !strings.HasPrefix(st["/web-green"], "4 instances") {
		t.Errorf("group after the swap: %v", st)
	}
	kinds := e.eventKinds(t)
	// 1 → 2 → 4 with the drains between, as Steps plans it.
	want := []string{"create", "remove", "scale", "remove", "scale", "delete", "done"}
	if !slices.Equal(kinds, want) {
		t.Errorf("swap events %v, want %v", kinds, want)
	}
	if !slices.Equal(plan.Steps, []int{1, 2, 4}) {
		t.Errorf("planned steps %v", plan.Steps)
	}
	// And back to blue, on the main port.
	plan, err = e.deploy(t, ctx, webDef(4))
	if err != nil || plan.NewID != "/web-blue" || plan.NewServicePort != 10000 {
		t.Fatalf("third deploy %s on %d: %v", plan.NewID, plan.NewServicePort, err)
	}
}

// TestRunRollsBackNeverHealthy: green's tasks never pass their health checks: after
// --max-wait the deploy deletes green and leaves blue exactly as it was.
func TestRunRollsBackNeverHealthy(t *testing.T) {
	e := newRunEnv(t)
	ctx := context.Background()
	if _, err := e.deploy(t, ctx, webDef(3)); err != nil {
		t.Fatal(err)
	}
	before := e.groupState(t)
	unhealthy := false
	e.fm.SetLaunchHealth(func(appID string) *bool {
		if appID == "/web-green" {
			return &unhealthy
		}
		return nil
	})
	e.cfg.Options.MaxWait = 300 * time.Millisecond
	_, err := e.deploy(t, ctx, webDef(3))
	if err == nil || !strings.Contains(err.Error(), "/web-green: 0 of 1 instance(s) healthy") || !strings.Contains(err.Error(), "rolled back: /web-blue at 3 instance(s), /web-green deleted") {
		t.Errorf("error %v", err)
	}
	if after := e.groupState(t); !equalMaps(before, after) {
		t.Errorf("Marathon after the rollback %v, before %v", after, before)
	}
}

// TestRunRollsBackHookRefusal: a pre-kill hook that exits non-zero stops the deploy before a
// task is removed; blue is back at its instances and green is gone.
func TestRunRollsBackHookRefusal(t *testing.T) {
	e := newRunEnv(t)
	ctx := context.Background()
	if _, err := e.deploy(t, ctx, webDef(2)); err != nil {
		t.Fatal(err)
	}
	before := e.groupState(t)
	dir := t.TempDir()
	hook := filepath.Join(dir, "hook.sh")
	args := filepath.Join(dir, "args")
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" \"$2\" \"$3\" > " + args + "\nexit 3\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.cfg.Options.PreKillHook = hook
	_, err := e.deploy(t, ctx, webDef(2))
	if err == nil || !strings.Contains(err.Error(), "--pre-kill-hook "+hook+" refused removing") || !strings.Contains(err.Error(), "rolled back") {
		t.Errorf("error %v", err)
	}
	if after := e.groupState(t); !equalMaps(before, after) {
		t.Errorf("Marathon after the rollback %v, before %v", after, before)
	}
	got, err := os.ReadFile(args)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"id":"/web-blue"`) || !strings.HasPrefix(lines[1], `["web-blue.`) || !strings.Contains(lines[2], `"id":"/web-green"`) {
		t.Errorf("hook arguments %q, want the old app, the task ids and the new app as JSON", lines)
	}
}

// TestRunWaitsForSessions: old servers that keep sessions are never removed (green still
// grows to its goal, as zdd.py's does, which drains both); past --max-wait the deploy rolls
// back and says how many sessions were left.
func TestRunWaitsForSessions(t *testing.T) {
	e := newRunEnv(t)
	ctx := context.Background()
	if _, err := e.deploy(t, ctx, webDef(2)); err != nil {
		t.Fatal(err)
	}
	before := e.groupState(t)
	e.edge.set(5, false)
	e.cfg.Options.MaxWait = 300 * time.Millisecond
	_, err := e.deploy(t, ctx, webDef(2))
	if err == nil || !strings.Contains(err.Error(), "2 old task(s) draining, 10 session(s) left") {
		t.Errorf("error %v", err)
	}
	if after := e.groupState(t); !equalMaps(before, after) {
		t.Errorf("Marathon after the rollback %v, before %v", after, before)
	}
}

// TestRunPreflight: an edge that cannot be read stops the deploy before anything is written.
func TestRunPreflight(t *testing.T) {
	e := newRunEnv(t)
	ctx := context.Background()
	if _, err := e.deploy(t, ctx, webDef(2)); err != nil {
		t.Fatal(err)
	}
	before := e.groupState(t)
	e.edge.set(0, true)
	_, err := e.deploy(t, ctx, webDef(2))
	if err == nil || !strings.Contains(err.Error(), "nothing was written to Marathon") || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("error %v", err)
	}
	if after := e.groupState(t); !equalMaps(before, after) {
		t.Errorf("Marathon changed: %v, before %v", after, before)
	}
}

// TestRunInterruptedRollsBack: a deploy interrupted (SIGINT cancels its context) rolls back
// all the same.
func TestRunInterruptedRollsBack(t *testing.T) {
	e := newRunEnv(t)
	if _, err := e.deploy(t, context.Background(), webDef(2)); err != nil {
		t.Fatal(err)
	}
	before := e.groupState(t)
	e.edge.set(1, false) // the swap waits on the first drain…
	ctx, cancel := context.WithCancel(context.Background())
	e.cfg.Progress = NewProgress(nil, &cancelOnWait{cancel: cancel}, false, nil) // …and is interrupted there
	_, err := e.deploy(t, ctx, webDef(2))
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "rolled back") {
		t.Errorf("error %v", err)
	}
	if after := e.groupState(t); !equalMaps(before, after) {
		t.Errorf("Marathon after the rollback %v, before %v", after, before)
	}
}

// cancelOnWait is an events writer that cancels the deploy at its first wait event.
type cancelOnWait struct{ cancel context.CancelFunc }

func (c *cancelOnWait) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"event":"wait"`)) && bytes.Contains(p, []byte("session")) {
		c.cancel()
	}
	return len(p), nil
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRunHybridThenComplete: --new-instances splits the group (2 green beside 2 blue, both
// kept); --complete-cur then finishes on green and deletes blue. Another split finished with
// --complete-prev goes back to the older colour and deletes the newer.
func TestRunHybridThenComplete(t *testing.T) {
	e := newRunEnv(t)
	ctx := context.Background()
	if _, err := e.deploy(t, ctx, webDef(4)); err != nil {
		t.Fatal(err)
	}
	e.cfg.Options.NewInstances = 2
	if _, err := e.deploy(t, ctx, webDef(4)); err != nil {
		t.Fatal(err)
	}
	st := e.groupState(t)
	if len(st) != 2 || !strings.HasPrefix(st["/web-green"], "2 instances") || !strings.HasPrefix(st["/web-blue"], "2 instances") {
		t.Fatalf("after the split: %v, want 2 green and 2 blue", st)
	}
	e.cfg.Options = Options{CompleteCur: true, MaxWait: 10 * time.Second}
	if _, err := e.deploy(t, ctx, webDef(4)); err != nil {
		t.Fatal(err)
	}
	if st := e.groupState(t); len(st) != 1 || !strings.HasPrefix(st["/web-green"], "4 instances") {
		t.Fatalf("after --complete-cur: %v, want 4 green alone", st)
	}

	e.cfg.Options = Options{InitialInstances: 1, NewInstances: 1, MaxWait: 10 * time.Second}
	if _, err := e.deploy(t, ctx, webDef(4)); err != nil {
		t.Fatal(err)
	}
	e.cfg.Options = Options{CompletePrev: true, MaxWait: 10 * time.Second}
	plan, err := e.deploy(t, ctx, webDef(4))
	if err != nil || plan.Mode != ModeCompletePrev {
		t.Fatalf("--complete-prev: %v (mode %q)", err, plan.Mode)
	}
	if st := e.groupState(t); len(st) != 1 || !strings.HasPrefix(st["/web-green"], "4 instances") {
		t.Errorf("after --complete-prev: %v, want green (the older colour) alone at 4", st)
	}
}

// TestRunWaitsForOldColourDeployment: while Marathon holds the old colour in a deployment
// (its scale-down after a removal), the swap waits instead of writing to it.
func TestRunWaitsForOldColourDeployment(t *testing.T) {
	e := newRunEnv(t)
	ctx := context.Background()
	if _, err := e.deploy(t, ctx, webDef(2)); err != nil {
		t.Fatal(err)
	}
	e.fm.SetDeployments("/web-blue", []string{"scale-down"})
	w := &onWait{match: "/web-blue: 1 deployment(s) under way", do: func() { e.fm.SetDeployments("/web-blue", nil) }}
	e.cfg.Progress = NewProgress(nil, w, false, nil)
	if _, err := e.deploy(t, ctx, webDef(2)); err != nil {
		t.Fatal(err)
	}
	if !w.seen.Load() {
		t.Error("the swap never waited for /web-blue's deployment")
	}
	if st := e.groupState(t); len(st) != 1 || !strings.HasPrefix(st["/web-green"], "2 instances") {
		t.Errorf("after the swap: %v", st)
	}
}

// onWait is an events writer that runs do at the first wait event whose message holds match.
type onWait struct {
	match string
	do    func()
	seen  atomic.Bool
}

func (o *onWait) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"event":"wait"`)) && bytes.Contains(p, []byte(o.match)) && !o.seen.Swap(true) {
		o.do()
	}
	return len(p), nil
}

// TestRunCreateAnswerLost: Marathon creates the new colour but its answers are lost (a proxy
// turns them into 503s): the app may exist, so the run rolls back and Marathon is as it was.
// A create Marathon refuses outright (422) wrote nothing and needs no rollback.
func TestRunCreateAnswerLost(t *testing.T) {
	e := newRunEnv(t)
	if _, err := e.deploy(t, context.Background(), webDef(2)); err != nil {
		t.Fatal(err)
	}
	before := e.groupState(t)
	target, err := url.Parse(e.fm.URL())
	if err != nil {
		t.Fatal(err)
	}
	var createStatus atomic.Int32
	createStatus.Store(http.StatusServiceUnavailable)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodPost && resp.Request.URL.Path == "/v2/apps" {
			resp.Body.Close()
			resp.StatusCode = int(createStatus.Load())
			resp.Body = io.NopCloser(strings.NewReader(`{"message": "lost"}`))
			resp.ContentLength = -1
			resp.Header.Del("Content-Length")
		}
		return nil
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	if e.cfg.Marathon, err = NewMarathon(MarathonConfig{URLs: []string{front.URL}, Retry: Backoff{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.deploy(t, context.Background(), webDef(2))
	if err == nil || !strings.Contains(err.Error(), "creating /web-green") || !strings.Contains(err.Error(), "rolled back") {
		t.Errorf("error %v, want the create's failure and a rollback", err)
	}
	if after := e.groupState(t); !equalMaps(before, after) {
		t.Errorf("Marathon after the lost create %v, before %v", after, before)
	}
	// A refusal is not rolled back: nothing was created. (The proxy still forwards the
	// create, so the app exists: a rollback would delete it, the run must not.)
	createStatus.Store(http.StatusUnprocessableEntity)
	_, err = e.deploy(t, context.Background(), webDef(2))
	if err == nil || !strings.Contains(err.Error(), "422") || strings.Contains(err.Error(), "rolled back") {
		t.Errorf("error %v, want the refusal without a rollback", err)
	}
}

// TestRunRollbackMarathonDown: Marathon fails as the rollback starts (between the deploy's
// writes and the rollback's): the error says the rollback failed, that both colours are left
// and how to finish; once Marathon is back, --complete-prev returns the group to the old
// colour at its instances.
func TestRunRollbackMarathonDown(t *testing.T) {
	e := newRunEnv(t)
	if _, err := e.deploy(t, context.Background(), webDef(2)); err != nil {
		t.Fatal(err)
	}
	m, err := NewMarathon(MarathonConfig{URLs: []string{e.fm.URL()}, Retry: Backoff{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Marathon = m
	e.edge.set(1, false) // sessions never end: the swap makes no progress…
	e.cfg.Options.MaxWait = 300 * time.Millisecond
	e.cfg.Progress = NewProgress(nil, &onEvent{kind: "rollback", do: func() { e.fm.SetStatus(http.StatusServiceUnavailable) }}, false, nil)
	_, err = e.deploy(t, context.Background(), webDef(2)) // …and Marathon fails as it rolls back
	if err == nil || !strings.Contains(err.Error(), "rollback failed") || !strings.Contains(err.Error(), "/web-green left in place") || !strings.Contains(err.Error(), "--complete-prev") {
		t.Fatalf("error %v, want the failed rollback, what is left and how to finish", err)
	}
	e.fm.SetStatus(0)
	e.edge.set(0, false)
	e.cfg.Options.MaxWait, e.cfg.Options.CompletePrev = 10*time.Second, true
	e.cfg.Progress = nil
	if _, err := e.deploy(t, context.Background(), webDef(2)); err != nil {
		t.Fatalf("--complete-prev after the failed rollback: %v", err)
	}
	after := e.groupState(t)
	if len(after) != 1 || !strings.HasPrefix(after["/web-blue"], "2 instances") {
		t.Errorf("Marathon after --complete-prev: %v, want /web-blue alone at 2 instances", after)
	}
}

// onEvent is an events writer that calls do at the first event of a kind.
type onEvent struct {
	kind string
	do   func()
	done bool
}

func (o *onEvent) Write(p []byte) (int, error) {
	if !o.done && bytes.Contains(p, []byte(`"event":"`+o.kind+`"`)) {
		o.done = true
		o.do()
	}
	return len(p), nil
}
