package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
)

// The apps and tasks of testdata/zdd_apps.json.
const (
	green  = "/nginx-green"
	blue   = "/nginx-blue"
	green1 = "nginx-green.0dbabba6-c931-11e5-9836-026ee08d9f6f"
	green2 = "nginx-green.1883a887-c931-11e5-9836-026ee08d9f6f"
	green3 = "nginx-green.23532518-c931-11e5-9836-026ee08d9f6f"
	blue1  = "nginx-blue.3a58a46a-c937-11e5-9836-026ee08d9f6f"
)

var lb = fakemarathon.LoopbackFor

func TestInitialFullSync(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	// Marathon answers 503 first: the source reports the failure and is not synced.
	fake.SetStatus(http.StatusServiceUnavailable)
	h := start(t, testConfig(), fake)
	h.waitReport(0, "the 503", isErr("503"))
	if err := h.reg.Synced(); err == nil {
		t.Fatal("Synced() = nil after a failed sync only")
	}

	fake.SetStatus(0)
	s := h.waitSynced()
	if err := h.reg.Synced(); err != nil {
		t.Fatalf("Synced() = %v after the full sync", err)
	}
	type ep struct {
		host string
		port int
	}
	want := map[string]map[string]ep{
		green: {
			green1: {lb("10.0.6.25"), 31184},
			green2: {lb("10.0.6.25"), 16916},
			green3: {lb("10.0.6.25"), 23336},
		},
		blue: {blue1: {lb("10.0.1.147"), 25724}},
	}
	if s.Apps.Len() != len(want) || s.Tasks != 4 {
		t.Fatalf("snapshot has %d apps and %d tasks, want 2 and 4: %s", s.Apps.Len(), s.Tasks, dump(s))
	}
	for appID, tasks := range want {
		a := s.App(appID)
		if a == nil {
			t.Fatalf("app %s missing: %s", appID, dump(s))
		}
		if a.Network != discovery.NetworkBridge || len(a.Ports) != 1 || a.Ports[0].ContainerPort != 8080 {
			t.Errorf("app %s: network %q ports %+v, want bridge with container port 8080", appID, a.Network, a.Ports)
		}
		if len(a.Tasks) != len(tasks) {
			t.Errorf("app %s: tasks %v, want %d", appID, taskIDs(a), len(tasks))
		}
		for id, e := range tasks {
			tk := a.Task(id)
			if tk == nil {
				t.Errorf("app %s: task %s missing", appID, id)
				continue
			}
			wantEP := []discovery.Endpoint{{Host: e.host, Port: e.port}}
			if !tk.Eligible || tk.State != discovery.StateRunning || !slices.Equal(tk.Endpoints, wantEP) ||
				!slices.Equal(tk.Health, []discovery.HealthResult{{Alive: true}}) {
				t.Errorf("task %s: state %s eligible=%t (%s) endpoints %v health %v; want running, eligible, %v, alive",
					id, tk.State, tk.Eligible, tk.Reason, tk.Endpoints, tk.Health, wantEP)
			}
		}
	}
	filters := fake.EventFilters()
	if len(filters) == 0 {
		t.Fatal("the fake saw no event stream")
	}
	for i, f := range filters {
		if !slices.Equal(f, discovery.MarathonEventTypes) {
			t.Errorf("event stream %d asked for event_type %v, want %v", i, f, discovery.MarathonEventTypes)
		}
	}
	if n := fake.Requests("/v2/apps"); n != 1 {
		t.Errorf("GET /v2/apps %d times, want 1", n)
	}
	// Connected is set just after the sync is reported.
	waitUntil(t, "Connected() to name the member", func() bool { return h.src.Connected() == fake.URL() })
}

// TestStatusBurstAppliedAsDeltas emits 2,000 events in one burst and checks the registry ends in
// the state they imply, computed here from the operations alone, without any refetch.
func TestStatusBurstAppliedAsDeltas(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	h := start(t, testConfig(), fake)
	h.waitSynced()
	appsBefore := fake.Requests("/v2/apps")

	type model struct {
		host  string
		port  int
		alive *bool // nil: no health result yet
	}
	want := map[string]map[string]*model{}
	for _, appID := range []string{green, blue} {
		want[appID] = map[string]*model{}
		for _, tk := range fake.Tasks(appID) {
			m := &model{host: tk["host"].(string), port: int(tk["ports"].([]any)[0].(float64))}
			if rs, _ := tk["healthCheckResults"].([]any); len(rs) > 0 {
				alive := rs[0].(map[string]any)["alive"].(bool)
				m.alive = &alive
			}
			want[appID][tk["id"].(string)] = m
		}
	}
	pick := func(rng *rand.Rand) (string, string) {
		var all [][2]string
		for _, appID := range []string{green, blue} {
			for _, id := range slices.Sorted(func(yield func(string) bool) {
				for id := range want[appID] {
					if !yield(id) {
						return
					}
				}
			}) {
				all = append(all, [2]string{appID, id})
			}
		}
		p := all[rng.IntN(len(all))]
		return p[0], p[1]
	}
	count := func() int {
		n := 0
		for _, ts := range want {
			n += len(ts)
		}
		return n
	}

	const burst = 2000
	rng := rand.New(rand.NewPCG(7, 11))
	events, port, adds, kills, flips := 0, 40000, 0, 0, 0
	for events < burst {
		op := rng.IntN(10)
		switch {
		case burst-events >= 2 && op < 4: // a new task: TASK_STAGING, TASK_RUNNING
			appID := []string{green, blue}[rng.IntN(2)]
			id, err := fake.AddTask(appID, fakemarathon.TaskSpec{Ports: []int{port}})
			if err != nil {
				t.Fatal(err)
			}
			want[appID][id] = &model{host: "127.0.0.1", port: port}
			port++
			events += 2
			adds++
		case burst-events >= 2 && op < 6 && count() > 4: // TASK_KILLING, TASK_KILLED
			appID, id := pick(rng)
			if err := fake.KillTask(id); err != nil {
				t.Fatal(err)
			}
			delete(want[appID], id)
			events += 2
			kills++
		default: // health flip
			appID, id := pick(rng)
			m := want[appID][id]
			alive := m.alive != nil && !*m.alive // healthy (or no result yet) → failing
			if err := fake.SetHealth(id, alive); err != nil {
				t.Fatal(err)
			}
			m.alive = &alive
			events++
			flips++
		}
	}
	t.Logf("%d events: %d new tasks, %d kills, %d health flips; %d tasks at the end", events, adds, kills, flips, count())

	s := h.flush(fake)
	for appID, tasks := range want {
		// The model must agree with the fake, or it checks nothing.
		var fakeIDs []string
		for _, tk := range fake.Tasks(appID) {
			fakeIDs = append(fakeIDs, tk["id"].(string))
		}
		if len(fakeIDs) != len(tasks) {
			t.Fatalf("test model has %d tasks for %s, the fake %d", len(tasks), appID, len(fakeIDs))
		}
		a := s.App(appID)
		if !sameIDs(a, fakeIDs) {
			t.Errorf("app %s: registry has %d tasks, want %d", appID, len(taskIDs(a)), len(fakeIDs))
		}
		for id, m := range tasks {
			tk := a.Task(id)
			if tk == nil {
				t.Errorf("app %s: task %s missing", appID, id)
				continue
			}
			eligible := m.alive == nil || *m.alive
			wantEP := []discovery.Endpoint{{Host: m.host, Port: m.port}}
			var wantHealth []discovery.HealthResult
			if m.alive != nil {
				wantHealth = []discovery.HealthResult{{Alive: *m.alive}}
			}
			if tk.State != discovery.StateRunning || tk.Eligible != eligible || !slices.Equal(tk.Endpoints, wantEP) ||
				len(tk.Health) != len(wantHealth) || (len(wantHealth) == 1 && tk.Health[0].Alive != wantHealth[0].Alive) {
				t.Errorf("task %s: %s eligible=%t (%s) endpoints %v health %v; want running eligible=%t %v health %v",
					id, tk.State, tk.Eligible, tk.Reason, tk.Endpoints, tk.Health, eligible, wantEP, wantHealth)
			}
		}
	}
	if s.Tasks != count() {
		t.Errorf("snapshot counts %d tasks, want %d", s.Tasks, count())
	}
	if n := fake.Requests("/v2/apps"); n != appsBefore {
		t.Errorf("GET /v2/apps went from %d to %d during the burst: deltas must not need a full sync", appsBefore, n)
	}
	for _, appID := range []string{green, blue} {
		if n := fake.Requests("/v2/apps" + appID); n != 0 {
			t.Errorf("GET /v2/apps%s %d times: task events of a known app must not refetch it", appID, n)
		}
	}
	if n := fake.StreamConnects(); n != 1 {
		t.Errorf("%d stream connects, want 1", n)
	}
}

// TestCutStreamReconnectsAndResyncs cuts the stream while Marathon answers 503, so that changes
// made before it answers again can reach lodestar only through the resync after the reconnect.
func TestCutStreamReconnectsAndResyncs(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	h := start(t, testConfig(), fake)
	h.waitSynced()
	connects, appsReqs := fake.StreamConnects(), fake.Requests("/v2/apps")
	reports, sent := h.sink.ReportCount(), len(h.sink.Sent())

	fake.SetStatus(http.StatusServiceUnavailable)
	fake.CutStreams()
	h.waitReport(reports, "the end of the stream", isErr("event stream", "EOF"))
	h.waitReport(reports, "a refused reconnect", isErr("503"))
	ids, err := fake.ScaleApp(blue, 3) // its events reach no stream
	if err != nil {
		t.Fatal(err)
	}
	fake.SetStatus(0)

	s := h.waitFor("the scaled app after the reconnect", func(s *discovery.Snapshot) bool {
		return sameIDs(s.App(blue), ids) && len(eligibleIDs(s.App(blue))) == 3
	})
	if err := fake.WaitSubscribers(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	if n := fake.StreamConnects(); n <= connects {
		t.Errorf("stream connects %d, want more than %d", n, connects)
	}
	if n := fake.Requests("/v2/apps"); n <= appsReqs {
		t.Errorf("GET /v2/apps %d times, want more than %d (a resync)", n, appsReqs)
	}
	for _, u := range h.sink.Sent()[sent:] {
		if ts, ok := u.(discovery.TaskStatus); ok {
			t.Errorf("status event %s %s reached the source though it was emitted with no stream open", ts.TaskID, ts.State)
		}
	}
	if !slices.Equal(taskIDs(s.App(green)), []string{green1, green2, green3}) {
		t.Errorf("green changed: %v", taskIDs(s.App(green)))
	}

	// The new stream carries events again.
	if err := fake.SetHealth(ids[2], false); err != nil {
		t.Fatal(err)
	}
	h.waitFor("a health event on the new stream", func(s *discovery.Snapshot) bool {
		tk := task(s, blue, ids[2])
		return tk != nil && !tk.Eligible
	})
}

// TestStalledStreamIsDetectedByWatchdog stalls the stream (no byte, no keepalive) and checks the
// idle watchdog ends it; the changes made while stalled arrive through the resync.
func TestStalledStreamIsDetectedByWatchdog(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json") // keepalive every 50 ms
	cfg := testConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	h := start(t, cfg, fake)
	h.waitSynced()
	connects, appsReqs, reports := fake.StreamConnects(), fake.Requests("/v2/apps"), h.sink.ReportCount()

	fake.StallStreams(true)
	ids, err := fake.ScaleApp(blue, 2) // emitted while stalled: lost
	if err != nil {
		t.Fatal(err)
	}
	h.waitReport(reports, "the idle watchdog", isErr("event stream idle"))
	// Un-stall only now: a reconnect made before this waits for response headers, which come
	// as soon as the stall ends.
	fake.StallStreams(false)
	h.waitFor("the scaled app after the reconnect", func(s *discovery.Snapshot) bool {
		return sameIDs(s.App(blue), ids) && len(eligibleIDs(s.App(blue))) == 2
	})
	if n := fake.StreamConnects(); n <= connects {
		t.Errorf("stream connects %d, want more than %d", n, connects)
	}
	if n := fake.Requests("/v2/apps"); n <= appsReqs {
		t.Errorf("GET /v2/apps %d times, want more than %d (a resync)", n, appsReqs)
	}
	h.waitLog("Marathon connection lost", "event stream idle")
}

// TestFailoverToSecondMemberAndBackToLeader starts with the first member down, syncs from the
// second, then moves back to the first once it is up and leads.
func TestFailoverToSecondMemberAndBackToLeader(t *testing.T) {
	t.Parallel()
	fake1 := newFake(t, "zdd_apps.json")
	fake2 := newFake(t, "zdd_apps.json")
	fake1.GoDown()
	h := start(t, testConfig(), fake1, fake2)
	s := h.waitSynced()
	if !sameIDs(s.App(green), []string{green1, green2, green3}) || !sameIDs(s.App(blue), []string{blue1}) {
		t.Fatalf("sync from the second member: %s", dump(s))
	}
	if err := fake2.WaitSubscribers(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "Connected() to name the second member", func() bool { return h.src.Connected() == fake2.URL() })

	if err := fake1.Restart(); err != nil {
		t.Fatal(err)
	}
	fake1.SetLeader(hostPort(fake1))
	fake2.SetLeader(hostPort(fake1))
	if err := fake1.WaitSubscribers(waitCtx(t), 1); err != nil {
		t.Fatalf("the source never moved to the leader: %v (second member has %d streams)", err, fake2.Subscribers())
	}
	waitUntil(t, "the stream on the second member to close", func() bool { return fake2.Subscribers() == 0 })
	waitUntil(t, "Connected() to name the leader", func() bool { return h.src.Connected() == fake1.URL() })
	if n := fake1.Subscribers(); n != 1 {
		t.Errorf("leader has %d streams, want 1", n)
	}

	// A change only the leader knows reaches the registry.
	ids, err := fake1.ScaleApp(blue, 2)
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor("the leader's change", func(s *discovery.Snapshot) bool {
		return sameIDs(s.App(blue), ids) && len(eligibleIDs(s.App(blue))) == 2
	})
}

// TestHealthFlipRemovesExactlyThatTask checks a health delta touches only its task.
func TestHealthFlipRemovesExactlyThatTask(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	h := start(t, testConfig(), fake)
	s0 := h.waitSynced()

	if err := fake.SetHealth(green2, false); err != nil {
		t.Fatal(err)
	}
	s1 := h.waitFor("green2 out", func(s *discovery.Snapshot) bool {
		tk := task(s, green, green2)
		return tk != nil && !tk.Eligible
	})
	if got := eligibleIDs(s1.App(green)); !slices.Equal(got, []string{green1, green3}) {
		t.Errorf("eligible green tasks %v, want %v", got, []string{green1, green3})
	}
	if tk := task(s1, green, green2); tk.Reason != "health check failing" || tk.State != discovery.StateRunning {
		t.Errorf("green2: state %s reason %q, want running and failing its health check", tk.State, tk.Reason)
	}
	if s1.App(blue) != s0.App(blue) {
		t.Error("blue is a new *App though nothing of it changed")
	}
	for _, id := range []string{green1, green3} {
		if task(s1, green, id) != task(s0, green, id) {
			t.Errorf("task %s is a new *Task though it did not change", id)
		}
	}
	if s1.Version != s0.Version+1 {
		t.Errorf("version %d after one change from %d", s1.Version, s0.Version)
	}

	if err := fake.SetHealth(green2, true); err != nil {
		t.Fatal(err)
	}
	s2 := h.waitFor("green2 back", func(s *discovery.Snapshot) bool {
		tk := task(s, green, green2)
		return tk != nil && tk.Eligible
	})
	if got := eligibleIDs(s2.App(green)); !slices.Equal(got, []string{green1, green2, green3}) {
		t.Errorf("eligible green tasks %v, want all three", got)
	}
	if s2.App(blue) != s0.App(blue) || task(s2, green, green1) != task(s0, green, green1) {
		t.Error("an unchanged app or task got a new pointer")
	}
}

// TestNewLeaderWithoutHealthResultsKeepsTasks: a fresh Marathon leader has no health results
// yet; that must not take tasks out (traefik#653), not even one that was failing before.
func TestNewLeaderWithoutHealthResultsKeepsTasks(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	h := start(t, testConfig(), fake)
	h.waitSynced()
	if err := fake.SetHealth(green1, false); err != nil {
		t.Fatal(err)
	}
	h.waitFor("green1 out", func(s *discovery.Snapshot) bool {
		tk := task(s, green, green1)
		return tk != nil && !tk.Eligible
	})

	fake.ClearHealth(green)
	fake.ClearHealth(blue)
	reports := h.sink.ReportCount()
	h.src.Resync(context.Background())
	s := h.waitFor("every task without results and eligible", func(s *discovery.Snapshot) bool {
		n := 0
		for _, a := range s.Apps.All() {
			for _, tk := range a.Tasks {
				if len(tk.Health) != 0 || !tk.Eligible {
					return false
				}
				n++
			}
		}
		return n == 4
	})
	h.waitReport(reports, "the resync", isSuccess)
	for _, a := range s.Apps.All() {
		if len(a.HealthChecks) != 1 {
			t.Errorf("app %s has %d health checks, want 1: the test needs apps with checks", a.ID, len(a.HealthChecks))
		}
	}
}

// replayStep is what the Marathon side looks like after each event of testdata/events.sse: a
// mutation of the fake's /pywebserver (nil: none).
type replayStep struct {
	event  string
	mutate func(app map[string]any, tasks map[string]map[string]any)
}

// TestEventsFixtureReplay replays testdata/events.sse frame by frame against marathon15_apps.json,
// keeping the fake's /pywebserver in step with what each event says happened, so every refetch
// sees consistent data.
func TestEventsFixtureReplay(t *testing.T) {
	t.Parallel()
	const (
		py     = "/pywebserver"
		oldID  = "pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc"
		newID  = "pywebserver.1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc"
		oldVer = "2017-07-19T17:34:41.967Z"
		newVer = "2017-07-19T17:42:00.000Z"
	)
	fake := newFake(t, "marathon15_apps.json", "zdd_apps.json")
	h := start(t, testConfig(), fake)
	s0 := h.waitSynced()
	if !sameIDs(s0.App(py), []string{oldID}) || !task(s0, py, oldID).Eligible {
		t.Fatalf("initial sync: %s", dump(s0))
	}

	raw, err := os.ReadFile("testdata/events.sse")
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's addresses are moved onto loopback the way RewriteAddresses moves the apps'.
	ip := regexp.MustCompile(`\b(10|172)\.\d+\.\d+\.\d+\b`)
	text := ip.ReplaceAllStringFunc(string(raw), lb)
	frames := strings.SplitAfter(text, "\n\n")

	// The Marathon-side state, as the fake will serve it.
	var fixture struct{ Apps []map[string]any }
	fixtureJSON, err := os.ReadFile("testdata/marathon15_apps.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fixtureJSON, &fixture); err != nil {
		t.Fatal(err)
	}
	app := fixture.Apps[0]
	oldTask := app["tasks"].([]any)[0].(map[string]any)
	oldTask["host"] = lb("10.0.2.148")
	oldTask["ipAddresses"] = []any{map[string]any{"ipAddress": lb("172.17.0.2"), "protocol": "IPv4"}}
	tasks := map[string]map[string]any{oldID: oldTask}
	var apiPost map[string]any // the api_post_event's appDefinition

	steps := []replayStep{
		{"event_stream_attached", nil},
		{"deployment_info", func(app map[string]any, _ map[string]map[string]any) {
			app["instances"] = 2
			app["deployments"] = []any{map[string]any{"id": "5f4c1a3e-0b1d-4a61-9d3c-6b1d2a0f9e11"}}
		}},
		{"status_update_event", func(_ map[string]any, ts map[string]map[string]any) {
			ts[newID] = map[string]any{
				"id": newID, "appId": py, "host": lb("10.0.2.149"), "slaveId": "db7b40e2-791c-445f-b373-183e2a648a86-S2",
				"state": "TASK_STAGING", "stagedAt": "2017-07-19T17:40:01.500Z", "version": oldVer,
				"ports": []any{}, "ipAddresses": []any{},
			}
		}},
		{"status_update_event", func(_ map[string]any, ts map[string]map[string]any) {
			ts[newID]["state"] = "TASK_RUNNING"
			ts[newID]["startedAt"] = "2017-07-19T17:40:03.200Z"
			ts[newID]["ports"] = []any{2117}
			ts[newID]["ipAddresses"] = []any{map[string]any{"ipAddress": lb("172.17.0.3"), "protocol": "IPv4"}}
		}},
		{"health_status_changed_event", func(_ map[string]any, ts map[string]map[string]any) {
			ts[newID]["healthCheckResults"] = []any{map[string]any{"alive": true, "consecutiveFailures": 0, "taskId": newID}}
		}},
		{"deployment_success", func(app map[string]any, _ map[string]map[string]any) { app["deployments"] = []any{} }},
		{"health_status_changed_event", func(_ map[string]any, ts map[string]map[string]any) {
			ts[oldID]["healthCheckResults"] = []any{map[string]any{"alive": false, "consecutiveFailures": 1, "taskId": oldID}}
		}},
		{"status_update_event", func(_ map[string]any, ts map[string]map[string]any) { ts[oldID]["state"] = "TASK_KILLING" }},
		{"status_update_event", func(_ map[string]any, ts map[string]map[string]any) { delete(ts, oldID) }},
		{"api_post_event", func(app map[string]any, _ map[string]map[string]any) {
			for k, v := range apiPost {
				app[k] = v
			}
		}},
		{"instance_changed_event", nil},
		{"app_terminated_event", nil}, // /old-service: never in this Marathon, so 404
	}

	step := 0
	for _, f := range frames {
		typ := ""
		for _, line := range strings.Split(f, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				typ = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && typ == "api_post_event" {
				var ev struct{ AppDefinition map[string]any }
				if err := json.Unmarshal([]byte(v), &ev); err != nil {
					t.Fatal(err)
				}
				apiPost = ev.AppDefinition
			}
		}
		if typ != "" {
			if step >= len(steps) || steps[step].event != typ {
				t.Fatalf("events.sse changed: event %d is %q, the test expects %v", step, typ, steps[min(step, len(steps)-1)])
			}
			if m := steps[step].mutate; m != nil {
				m(app, tasks)
				var ts []any
				for _, id := range slices.Sorted(func(yield func(string) bool) {
					for id := range tasks {
						if !yield(id) {
							return
						}
					}
				}) {
					ts = append(ts, tasks[id])
				}
				app["tasks"] = ts
				body, err := json.Marshal(map[string]any{"app": app})
				if err != nil {
					t.Fatal(err)
				}
				if err := fake.LoadApps(body); err != nil {
					t.Fatal(err)
				}
			}
			step++
		}
		fake.EmitRaw(f) // comments and keepalives too, verbatim
	}
	if step != len(steps) {
		t.Fatalf("events.sse has %d events, the test expects %d", step, len(steps))
	}

	s := h.flush(fake)
	a := s.App(py)
	if a == nil {
		t.Fatalf("%s vanished: %s", py, dump(s))
	}
	if !sameIDs(a, []string{newID}) {
		t.Errorf("%s tasks %v, want only the new one %s", py, taskIDs(a), newID)
	}
	if tk := a.Task(newID); tk == nil || !tk.Eligible ||
		!slices.Equal(tk.Endpoints, []discovery.Endpoint{{Host: lb("10.0.2.149"), Port: 2117}}) {
		t.Errorf("new task: %+v; want eligible on %s:2117", tk, lb("10.0.2.149"))
	}
	if got := a.Labels["HAPROXY_0_VHOST"]; got != "myvhost.com,www.myvhost.com" {
		t.Errorf("HAPROXY_0_VHOST = %q, want the api_post_event's", got)
	}
	if a.Version != newVer || a.Instances != 1 || len(a.Ports) != 1 || a.Ports[0].ServicePort != 10101 || len(a.Deployments) != 0 {
		t.Errorf("%s: version %s instances %d ports %+v deployments %v", py, a.Version, a.Instances, a.Ports, a.Deployments)
	}
	if s.App("/old-service") != nil {
		t.Error("/old-service appeared")
	}
	for _, id := range []string{green, blue} {
		if s.App(id) != s0.App(id) {
			t.Errorf("%s changed: the replay concerns only %s", id, py)
		}
	}
	if n := fake.Requests("/v2/apps/old-service"); n != 1 {
		t.Errorf("GET /v2/apps/old-service %d times, want 1 (the app_terminated_event's refetch)", n)
	}
	if n := fake.Requests("/v2/apps" + py); n < 2 {
		t.Errorf("GET /v2/apps%s %d times, want a refetch for deployment_info and api_post_event", py, n)
	}
	if n := fake.StreamConnects(); n != 1 {
		t.Errorf("%d stream connects: the replay must not break the stream", n)
	}

	// The task deltas were sent in the stream's order.
	var got []string
	for _, u := range h.sink.Sent() {
		switch u := u.(type) {
		case discovery.TaskStatus:
			got = append(got, u.TaskID[12:20]+" "+u.State)
		case discovery.TaskHealth:
			got = append(got, fmt.Sprintf("%s alive=%t", u.TaskID[12:20], u.Alive))
		}
	}
	wantDeltas := []string{
		"1f0c2d4e TASK_STAGING", "1f0c2d4e TASK_RUNNING", "1f0c2d4e alive=true",
		"8cad6a69 alive=false", "8cad6a69 TASK_KILLING", "8cad6a69 TASK_KILLED",
	}
	if !slices.Equal(got, wantDeltas) {
		t.Errorf("task deltas sent %q, want %q", got, wantDeltas)
	}
}

// TestBadInputKeepsLastGoodSnapshot feeds the source broken data of every kind.
func TestBadInputKeepsLastGoodSnapshot(t *testing.T) {
	t.Parallel()

	// unchanged checks the snapshot is still s0, pointer for pointer.
	unchanged := func(t *testing.T, h *harness, s0 *discovery.Snapshot) {
		t.Helper()
		s := h.reg.Snapshot()
		if s.Version != s0.Version || s.App(green) != s0.App(green) || s.App(blue) != s0.App(blue) {
			t.Errorf("snapshot changed from version %d to %d: %s", s0.Version, s.Version, dump(s))
		}
	}

	t.Run("malformed apps JSON on resync", func(t *testing.T) {
		t.Parallel()
		fake := newFake(t, "zdd_apps.json")
		h := start(t, testConfig(), fake)
		s0 := h.waitSynced()
		reports := h.sink.ReportCount()
		fake.SetAppsBody([]byte(`{"apps":[{"id":"/nginx-green","instances":`))
		h.src.Resync(context.Background())
		h.waitReport(reports, "the bad body", isErr("full sync", "malformed Marathon apps JSON"))
		h.waitLog("Marathon connection lost; keeping the last good state", "malformed Marathon apps JSON")
		unchanged(t, h, s0)
		if err := h.reg.Synced(); err != nil {
			t.Errorf("Synced() = %v: a failed resync must not undo the first sync", err)
		}
		if st := h.reg.Sources(); len(st) != 1 || !strings.Contains(st[0].LastError, "malformed") {
			t.Errorf("source status %+v, want the error", st)
		}

		reports = h.sink.ReportCount()
		fake.SetAppsBody(nil)
		h.waitReport(reports, "recovery", isSuccess)
		unchanged(t, h, s0)
	})

	t.Run("body over MaxBody", func(t *testing.T) {
		t.Parallel()
		fake := newFake(t, "zdd_apps.json")
		cfg := testConfig()
		cfg.MaxBody = 1 << 20
		h := start(t, cfg, fake)
		s0 := h.waitSynced()
		reports := h.sink.ReportCount()
		// 50 MB of valid JSON: only its size is wrong.
		huge := slices.Concat([]byte(`{"apps":[`), bytes.Repeat([]byte(" "), 50<<20), []byte(`]}`))
		fake.SetAppsBody(huge)
		h.src.Resync(context.Background())
		h.waitReport(reports, "the size limit", isErr("larger than 1048576 bytes"))
		h.waitLog("Marathon connection lost", "larger than 1048576 bytes", "marathon-max-body")
		fake.SetAppsBody(nil)
		unchanged(t, h, s0)
	})

	// A frame cut off by the end of the stream is never applied. The complete health event in
	// front of it, sent in the same write, shows when the cut-off part has been read.
	for _, c := range []struct {
		name string
		cut  func(frame string) string
	}{
		{"SSE frame cut mid-line", func(f string) string { return f[:len(f)/2] }},
		{"SSE frame cut before its blank line", func(f string) string { return f[:len(f)-1] }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t, "zdd_apps.json")
			// No keepalives: one written after the cut-off part would complete its line or
			// dispatch it, which is a corrupt stream, not a truncated one.
			fake.SetKeepAlive(0)
			h := start(t, testConfig(), fake)
			h.waitSynced()
			health := fmt.Sprintf("event: health_status_changed_event\ndata: {\"appId\":%q,\"taskId\":%q,\"alive\":false}\n\n", blue, blue1)
			killed := fmt.Sprintf("event: status_update_event\ndata: {\"appId\":%q,\"taskId\":%q,\"taskStatus\":\"TASK_KILLED\",\"host\":\"127.0.0.1\",\"ports\":[]}\n\n", green, green1)
			fake.EmitRaw(health + c.cut(killed))
			h.waitFor("the health event before the cut frame", func(s *discovery.Snapshot) bool {
				tk := task(s, blue, blue1)
				return tk != nil && !tk.Eligible
			})
			reports := h.sink.ReportCount()
			fake.CutStreams()
			h.waitReport(reports, "the cut frame", isErr("event stream ended inside an event", "unexpected EOF"))
			h.waitLog("Marathon connection lost", `event stream ended inside an event (\"status_update_event\")`)
			// The resync restores blue1's health from Marathon, and green1 was never killed.
			s := h.waitFor("the resync", func(s *discovery.Snapshot) bool {
				tk := task(s, blue, blue1)
				return tk != nil && tk.Eligible
			})
			if tk := task(s, green, green1); tk == nil || !tk.Eligible {
				t.Errorf("green1 after the cut frame: %+v", tk)
			}
			for _, u := range h.sink.Sent() {
				if ts, ok := u.(discovery.TaskStatus); ok && ts.TaskID == green1 {
					t.Errorf("the cut frame was applied: %+v", ts)
				}
			}
		})
	}

	t.Run("event with garbage JSON", func(t *testing.T) {
		t.Parallel()
		fake := newFake(t, "zdd_apps.json")
		h := start(t, testConfig(), fake)
		h.waitSynced()
		fake.EmitRaw("event: status_update_event\ndata: {\"appId\": /nginx-green, taskId\n\n")
		if err := fake.SetHealth(green3, false); err != nil {
			t.Fatal(err)
		}
		h.waitFor("the event after the garbage", func(s *discovery.Snapshot) bool {
			tk := task(s, green, green3)
			return tk != nil && !tk.Eligible
		})
		if ls := h.logs.Lines("bad Marathon event skipped", "type=status_update_event", "invalid character"); len(ls) != 1 {
			t.Errorf("log lines about the garbage event: %q, want one naming the type and the JSON error", ls)
		}
		if n := fake.StreamConnects(); n != 1 {
			t.Errorf("%d stream connects: a bad event must not drop the stream", n)
		}
	})

	t.Run("status event for an unknown app", func(t *testing.T) {
		t.Parallel()
		fake := newFake(t, "zdd_apps.json")
		h := start(t, testConfig(), fake)
		s0 := h.waitSynced()
		err := fake.Emit("status_update_event", map[string]any{
			"appId": "/ghost", "taskId": "ghost.1", "taskStatus": "TASK_RUNNING", "host": "127.0.0.1", "ports": []int{31999},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := fake.SetHealth(green3, false); err != nil {
			t.Fatal(err)
		}
		s := h.waitFor("the event after the ghost's", func(s *discovery.Snapshot) bool {
			tk := task(s, green, green3)
			return tk != nil && !tk.Eligible
		})
		if s.Version != s0.Version+1 || s.App("/ghost") != nil || s.App(blue) != s0.App(blue) || s.Apps.Len() != 2 {
			t.Errorf("the ghost's event changed the snapshot (version %d → %d): %s", s0.Version, s.Version, dump(s))
		}
		if n := fake.Requests("/v2/apps/ghost"); n != 1 {
			t.Errorf("GET /v2/apps/ghost %d times, want 1", n)
		}
		h.waitLog("registry update rejected", "unknown app /ghost")
	})

	t.Run("one bad app among good ones", func(t *testing.T) {
		t.Parallel()
		fake := newFake(t, "zdd_apps.json")
		h := start(t, testConfig(), fake)
		s0 := h.waitSynced()

		// A consumer reading the published snapshot the whole time, as a front end does: the
		// race detector fails the test if the resync writes to anything already published.
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, a := range h.reg.Snapshot().Apps.All() {
					for _, tk := range a.Tasks {
						_ = fmt.Sprint(tk.Eligible, tk.Reason, tk.Endpoints, tk.Draining)
					}
				}
			}
		}()
		defer func() { close(stop); <-stopped }()

		resp, err := http.Get(fake.URL() + "/v2/apps" + appsQuery)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Apps []map[string]any }
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		for _, a := range doc.Apps {
			a["labels"].(map[string]any)["HAPROXY_0_VHOST"] = "changed.example"
			if a["id"] == blue {
				a["instances"] = "three" // not a number: this app cannot be decoded
			}
		}
		body, err = json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		fake.SetAppsBody(body)
		reports := h.sink.ReportCount()
		h.src.Resync(context.Background())
		s := h.waitFor("green's new label", func(s *discovery.Snapshot) bool {
			a := s.App(green)
			return a != nil && a.Labels["HAPROXY_0_VHOST"] == "changed.example"
		})
		h.waitReport(reports, "the resync", isSuccess)
		if s.App(blue) != s0.App(blue) {
			t.Errorf("blue changed; want its last good version kept: %s", dump(s))
		}
		if !sameIDs(s.App(green), []string{green1, green2, green3}) {
			t.Errorf("green tasks %v", taskIDs(s.App(green)))
		}
		h.waitLog("Marathon app skipped", "app /nginx-blue", "instances")
	})
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	t.Run("right credentials", func(t *testing.T) {
		t.Parallel()
		fake := newFake(t, "zdd_apps.json")
		fake.SetBasicAuth("lodestar", "s3cret")
		cfg := testConfig()
		cfg.Username, cfg.Password = "lodestar", "s3cret"
		h := start(t, cfg, fake)
		s := h.waitSynced()
		if s.Apps.Len() != 2 || s.Tasks != 4 {
			t.Errorf("synced %d apps, %d tasks; want 2, 4", s.Apps.Len(), s.Tasks)
		}
		if err := fake.WaitSubscribers(waitCtx(t), 1); err != nil {
			t.Errorf("the event stream did not authenticate: %v", err)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		fake := newFake(t, "zdd_apps.json")
		fake.SetBasicAuth("lodestar", "s3cret")
		cfg := testConfig()
		cfg.Username, cfg.Password = "lodestar", "guess"
		h := start(t, cfg, fake)
		h.waitReport(0, "the 401", isErr("401"))
		if err := h.reg.Synced(); err == nil {
			t.Error("Synced() = nil with wrong credentials")
		}
		if s := h.reg.Snapshot(); s.Apps.Len() != 0 {
			t.Errorf("apps arrived with wrong credentials: %s", dump(s))
		}
		if n := fake.StreamConnects(); n != 0 {
			t.Errorf("%d event streams accepted", n)
		}
	})
}

func TestCancelStopsRun(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	h := start(t, testConfig(), fake)
	h.waitSynced()
	if err := fake.WaitSubscribers(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	h.stop()
	if err := h.wait(); err != nil {
		t.Errorf("Run returned %v after cancel, want nil", err)
	}
	waitUntil(t, "the event stream to close", func() bool { return fake.Subscribers() == 0 })
	if got := h.src.Connected(); got != "" {
		t.Errorf("Connected() = %q after Run returned", got)
	}
}

// TestCancelWhileRetrying: cancel during the backoff between failed attempts.
func TestCancelWhileRetrying(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	fake.SetStatus(http.StatusServiceUnavailable)
	h := start(t, testConfig(), fake)
	h.waitReport(0, "a failure", isErr("503"))
	h.stop()
	if err := h.wait(); err != nil {
		t.Errorf("Run returned %v after cancel, want nil", err)
	}
}

// TestAppLifecycleRefetches: a new app, a changed app and a destroyed app reach the registry by
// refetching that one app, never by a full sync.
func TestAppLifecycleRefetches(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	h := start(t, testConfig(), fake)
	s0 := h.waitSynced()
	appsReqs := fake.Requests("/v2/apps")

	err := fake.AddApp(map[string]any{
		"id": "/shop/web", "instances": 0, "labels": map[string]string{"HAPROXY_GROUP": "external"},
		"portDefinitions": []any{map[string]any{"port": 10500, "protocol": "tcp"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := fake.ScaleApp("/shop/web", 2)
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor("the new app with its tasks", func(s *discovery.Snapshot) bool {
		a := s.App("/shop/web")
		return a != nil && len(eligibleIDs(a)) == 2 && sameIDs(a, ids)
	})
	if n := fake.Requests("/v2/apps/shop/web"); n != 1 {
		t.Errorf("GET /v2/apps/shop/web %d times, want 1", n)
	}

	// A task of an app created since the last sync whose api_post_event was missed: the source
	// fetches the app first, then applies the event.
	err = fake.LoadApps([]byte(`{"id":"/late","instances":1,"portDefinitions":[{"port":10600}],"tasks":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	lateID, err := fake.AddTask("/late", fakemarathon.TaskSpec{Ports: []int{31600}})
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor("the late app", func(s *discovery.Snapshot) bool {
		tk := task(s, "/late", lateID)
		return tk != nil && tk.Eligible
	})

	fake.RemoveApp("/shop/web")
	s := h.waitFor("the app's removal", func(s *discovery.Snapshot) bool { return s.App("/shop/web") == nil })
	if s.App(green) != s0.App(green) || s.App(blue) != s0.App(blue) {
		t.Error("apps that did not change got new pointers")
	}
	if n := fake.Requests("/v2/apps"); n != appsReqs {
		t.Errorf("GET /v2/apps went from %d to %d: app events must refetch only their app", appsReqs, n)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no URL"},
		{Config{URLs: []string{"m1:8080"}}, "bad URL"},
		{Config{URLs: []string{"ftp://m1:8080"}}, "bad URL"},
		{Config{URLs: []string{"http://"}}, "bad URL"},
		{Config{URLs: []string{"http://m1:8080"}, CACertFile: filepath.Join(dir, "missing.pem")}, "CA bundle"},
		{Config{URLs: []string{"http://m1:8080"}, CACertFile: notPEM}, "no PEM certificate"},
	} {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", c.cfg, err, c.want)
		}
	}
	s, err := New(Config{URLs: []string{" http://m1:8080/ ", "https://m2:8443"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{s.members[0].String(), s.members[1].String()}; !slices.Equal(got, []string{"http://m1:8080", "https://m2:8443"}) {
		t.Errorf("members %v", got)
	}
	if s.cfg.IdleTimeout != 15*time.Second || s.cfg.MaxBody != 32<<20 || s.cfg.BackoffMax != 30*time.Second {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
}

// After an app is deleted in Marathon, its tasks still report while Mesos kills them
// (TASK_KILLING before TASK_KILLED, and health results in between). Those events name an app
// that is gone: the source must not fetch it again for each one, nor hand the registry updates
// it can only reject.
func TestRemovedAppTasksStillReporting(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	h := start(t, testConfig(), fake)
	h.waitSynced()
	fake.RemoveApp(blue)
	h.waitFor("the app's removal", func(s *discovery.Snapshot) bool { return s.App(blue) == nil })
	path := "/v2/apps" + blue
	reqs := fake.Requests(path)

	status := func(state string) {
		t.Helper()
		err := fake.Emit("status_update_event", map[string]any{
			"appId": blue, "taskId": blue1, "taskStatus": state, "host": lb("10.0.1.147"),
			"slaveId": "1f09399d-0cb0-4484-afd7-f08e99d2acbb-S3", "ports": []int{25724},
			"version": "2016-02-01T22:57:54.370Z",
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	status("TASK_KILLING")
	if err := fake.Emit("health_status_changed_event", map[string]any{
		"appId": blue, "instanceId": fakemarathon.InstanceID(blue1), "alive": false,
	}); err != nil {
		t.Fatal(err)
	}
	status("TASK_KILLING")
	status("TASK_KILLED")
	s := h.flush(fake)

	if s.App(blue) != nil {
		t.Errorf("the removed app is back: %s", dump(s))
	}
	if n := fake.Requests(path); n > reqs+1 {
		t.Errorf("GET %s %d more times for events of the removed app's tasks, want at most once", path, n-reqs)
	}
	if lines := h.logs.Lines("registry update rejected"); len(lines) > 0 {
		t.Errorf("events of the removed app's tasks reached the registry, which rejected them:\n%s", strings.Join(lines, "\n"))
	}
}

// A full sync that takes longer than IdleTimeout while events pile up is not idleness: the
// stream reader stops reading because the session has not taken its frames yet, not because
// Marathon went quiet. A proxy in front of the fake holds GET /v2/apps for two idle timeouts
// while events fill the reader's queue; the session must carry on with the stream afterwards,
// not drop it (a reconnect and one more full sync, each time Marathon is slow and busy). The
// watchdog and the queued frames are ready together after the sync, and select picks one at
// random: several rounds make a false idle all but certain to show.
func TestSlowSyncDuringEventBurstIsNotIdle(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	fake.SetKeepAlive(20 * time.Millisecond)
	target, err := url.Parse(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	// Generous against a starved runner under -race: a stall this long would also reconnect.
	const idle = 600 * time.Millisecond
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/apps" && hold.CompareAndSwap(true, false) {
			held <- struct{}{}
			slow := time.NewTimer(2 * idle) // a slow Marathon, not a wait for anything
			defer slow.Stop()
			select {
			case <-slow.C:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	cfg := testConfig()
	cfg.URLs = []string{proxy.URL}
	cfg.IdleTimeout = idle
	h := start(t, cfg)
	h.waitSynced()
	ev := map[string]any{
		"appId": green, "taskId": green1, "taskStatus": "TASK_RUNNING", "host": lb("10.0.6.25"),
		"slaveId": "1f09399d-0cb0-4484-afd7-f08e99d2acbb-S1", "ports": []int{31184},
		"version": "2016-02-01T22:13:42.538Z",
	}
	for round := range 4 {
		hold.Store(true)
		h.src.Resync(context.Background())
		select {
		case <-held:
		case <-waitCtx(t).Done():
			t.Fatalf("round %d: the resync never asked for /v2/apps", round)
		}
		for range 1500 { // more than the reader's queue holds
			if err := fake.Emit("status_update_event", ev); err != nil {
				t.Fatal(err)
			}
		}
		h.flush(fake)
		if n := fake.StreamConnects(); n != 1 {
			t.Fatalf("round %d: %d stream connects, want 1: the slow sync was taken for an idle stream", round, n)
		}
	}
	if lines := h.logs.Lines("Marathon connection lost"); len(lines) > 0 {
		t.Errorf("connection dropped:\n%s", strings.Join(lines, "\n"))
	}
}

// Marathon runs each health check on its own and sends health_status_changed_event when one of
// them flips, without saying which. For an app with two checks, alive=true from one check says
// nothing about the other: a task still failing the other check must stay out.
func TestHealthUpFromOneOfTwoChecks(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	const taskID = "multi.1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc"
	app := func(first, second bool) []byte {
		return fmt.Appendf(nil, `{"id":"/multi","instances":1,"portDefinitions":[{"port":10700}],
			"healthChecks":[{"protocol":"HTTP","path":"/a","portIndex":0},{"protocol":"TCP","portIndex":0}],
			"tasks":[{"id":%q,"appId":"/multi","host":"127.0.0.1","ports":[31700],"state":"TASK_RUNNING",
				"startedAt":"2020-01-01T00:00:00.000Z","version":"2020-01-01T00:00:00.000Z",
				"healthCheckResults":[{"alive":%t,"consecutiveFailures":0},{"alive":%t,"consecutiveFailures":3}]}]}`,
			taskID, first, second)
	}
	if err := fake.LoadApps(app(false, false)); err != nil {
		t.Fatal(err)
	}
	h := start(t, testConfig(), fake)
	s := h.waitSynced()
	if tk := task(s, "/multi", taskID); tk == nil || tk.Eligible {
		t.Fatalf("task failing both checks is in: %s", dump(s))
	}

	// The HTTP check passes again; the TCP check still fails.
	if err := fake.LoadApps(app(true, false)); err != nil {
		t.Fatal(err)
	}
	if err := fake.Emit("health_status_changed_event", map[string]any{
		"appId": "/multi", "instanceId": fakemarathon.InstanceID(taskID), "alive": true,
		"version": "2020-01-01T00:00:00.000Z",
	}); err != nil {
		t.Fatal(err)
	}
	s = h.flush(fake)
	if tk := task(s, "/multi", taskID); tk == nil || tk.Eligible || tk.Reason != "health check failing" {
		t.Errorf("task failing one of its two checks after alive=true from the other: %s", dump(s))
	}

	// Both pass: the task is back.
	if err := fake.LoadApps(app(true, true)); err != nil {
		t.Fatal(err)
	}
	if err := fake.Emit("health_status_changed_event", map[string]any{
		"appId": "/multi", "instanceId": fakemarathon.InstanceID(taskID), "alive": true,
		"version": "2020-01-01T00:00:00.000Z",
	}); err != nil {
		t.Fatal(err)
	}
	s = h.flush(fake)
	if tk := task(s, "/multi", taskID); tk == nil || !tk.Eligible {
		t.Errorf("task passing both checks is out: %s", dump(s))
	}
}

// Marathon 1.7+ members that do not lead answer GET /v2/events with a 302 to the leader (REST
// they still proxy). When the leader cannot be matched to a configured member (members
// configured by address, leader named by host name), the source stays on the standby and
// follows that redirect; the leader wants the same credentials, which Go's client drops on a
// redirect to another host. Here the standby is configured as "localhost" and redirects to the
// leader at "127.0.0.1".
func TestStandbyRedirectsEventsToLeaderWithAuth(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	fake.SetBasicAuth("lodestar", "s3cret")
	target, err := url.Parse(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "lodestar" || p != "s3cret" {
			http.Error(w, "Invalid username or password.", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/v2/events" {
			http.Redirect(w, r, fake.URL()+r.URL.RequestURI(), http.StatusFound)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(standby.Close)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(standby.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.URLs = []string{"http://localhost:" + port}
	cfg.Username, cfg.Password = "lodestar", "s3cret"
	h := start(t, cfg)
	h.waitSynced()
	if err := fake.WaitSubscribers(waitCtx(t), 1); err != nil {
		t.Fatalf("the redirected event stream never reached the leader: %v; sync reports: %s", err, h.sink.Summary(0))
	}
	if err := fake.SetHealth(green2, false); err != nil {
		t.Fatal(err)
	}
	h.waitFor("green2 out through the redirected stream", func(s *discovery.Snapshot) bool {
		tk := task(s, green, green2)
		return tk != nil && !tk.Eligible
	})
}
