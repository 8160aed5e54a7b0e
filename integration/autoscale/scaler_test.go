package autoscale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// memMarathon is a Marathon in memory: it counts calls, and fails or refuses as told.
type memMarathon struct {
	mu          sync.Mutex
	instances   map[string]int
	deployments map[string]int
	fail        error
	gets, puts  int
	scaled      []string
	// onGet runs at every GET, as if something happened while Marathon answered.
	onGet func()
}

func (m *memMarathon) App(_ context.Context, id string) (AppState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	if m.onGet != nil {
		m.onGet()
	}
	if m.fail != nil {
		return AppState{}, m.fail
	}
	return AppState{Instances: m.instances[id], Deployments: m.deployments[id]}, nil
}

func (m *memMarathon) Scale(_ context.Context, id string, n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.fail != nil {
		return m.fail
	}
	m.instances[id] = n
	m.scaled = append(m.scaled, id)
	return nil
}

// steadyCounters reports every app's port 10000 growing by rate per second of the clock.
type steadyCounters struct {
	now  func() time.Time
	rate float64
}

func (c steadyCounters) RequestTotals(_ context.Context, ids []string) []EdgeReading {
	now := c.now()
	r := EdgeReading{Edge: "e", Totals: map[RouteKey]Count{}}
	for _, id := range ids {
		r.Totals[RouteKey{id, 10000}] = Count{uint64(c.rate * now.Sub(t0).Seconds()), now}
	}
	return []EdgeReading{r}
}

type flag struct{ on bool }

func (f *flag) Leading() bool { return f.on }

// fixture is a Scaler over apps in a snapshot, a memMarathon, counters at 500 req/s and a
// clock moved by hand.
type fixture struct {
	s    *Scaler
	m    *memMarathon
	now  time.Time
	snap *discovery.Snapshot
	lead *flag
}

func newFixture(t *testing.T, dryRun bool, apps ...*discovery.App) *fixture {
	f := &fixture{m: &memMarathon{instances: map[string]int{}, deployments: map[string]int{}}, now: t0, lead: &flag{true}}
	var set discovery.AppSet
	for _, a := range apps {
		set = set.With(a)
		f.m.instances[a.ID] = a.Instances
	}
	f.snap = &discovery.Snapshot{Apps: set}
	defaults := DefaultSettings()
	defaults.TargetRPS, defaults.Samples, defaults.IntervalsPastThreshold, defaults.Cooldown = 100, 2, 1, 1
	s, err := New(Config{
		Interval: testInterval, Defaults: defaults, Snapshot: func() *discovery.Snapshot { return f.snap },
		Counters: steadyCounters{now: func() time.Time { return f.now }, rate: 500}, Marathon: f.m, Leader: f.lead,
		DryRun: dryRun, RetryBase: 4 * testInterval, RetryMax: 16 * testInterval, Now: func() time.Time { return f.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	return f
}

func (f *fixture) tick(n int) {
	for range n {
		f.now = f.now.Add(testInterval)
		f.s.Tick(context.Background())
	}
}

func rpsApp(id string, instances int, labels map[string]string) *discovery.App {
	l := map[string]string{LabelMode: "rps"}
	for k, v := range labels {
		l[k] = v
	}
	return &discovery.App{ID: id, Instances: instances, Labels: l, Ports: []discovery.Port{{ServicePort: 10000}}}
}

func (f *fixture) decision(t *testing.T, app string) Decision {
	t.Helper()
	for _, d := range f.s.Status().Apps {
		if d.App == app {
			return d
		}
	}
	t.Fatalf("no decision for %s in %+v", app, f.s.Status())
	return Decision{}
}

// An app with bad labels is reported and left alone; the others are scaled; an app in a
// deployment is never scaled; an app that did not opt in is not even shown.
func TestScalerBadLabelsAndDeploymentsLeaveOthersAlone(t *testing.T) {
	deploying := rpsApp("/deploying", 1, nil)
	deploying.Deployments = []string{"d1"}
	f := newFixture(t, false,
		rpsApp("/good", 1, nil),
		rpsApp("/bad", 1, map[string]string{LabelMaxInstances: "many"}),
		deploying,
		&discovery.App{ID: "/plain", Instances: 1})
	f.tick(4)
	if got := f.m.instances["/good"]; got != 5 {
		t.Errorf("/good has %d instances, want 5 (500 req/s at 100 each)", got)
	}
	if f.m.instances["/bad"] != 1 || f.m.instances["/deploying"] != 1 {
		t.Errorf("instances %v: /bad and /deploying were scaled", f.m.instances)
	}
	if d := f.decision(t, "/bad"); d.Action != ActionSkip || !strings.Contains(d.Reason, LabelMaxInstances) {
		t.Errorf("/bad: %+v", d)
	}
	if d := f.decision(t, "/deploying"); d.Action != ActionSkip || !strings.Contains(d.Reason, "deployment") {
		t.Errorf("/deploying: %+v", d)
	}
	if len(f.s.Status().Apps) != 3 {
		t.Errorf("status %+v, want the three apps that opted in", f.s.Status().Apps)
	}
}

// Marathon's own word on deployments wins over a stale registry: no PUT.
func TestScalerAsksMarathonBeforeScaling(t *testing.T) {
	f := newFixture(t, false, rpsApp("/web", 1, nil))
	f.m.deployments["/web"] = 1
	f.tick(4)
	if f.m.puts != 0 {
		t.Fatalf("%d PUTs while Marathon reports a deployment", f.m.puts)
	}
	if d := f.decision(t, "/web"); d.Action != ActionSkip || !strings.Contains(d.Reason, "deployment") {
		t.Fatalf("decision %+v", d)
	}
}

// A Marathon that fails is tried again only after the backoff, which grows: over 20
// intervals with a 4-interval base, at most 4 attempts, never one per interval.
func TestScalerBacksOffFromAFailingMarathon(t *testing.T) {
	f := newFixture(t, false, rpsApp("/web", 1, nil))
	f.m.fail = errors.New("503 Service Unavailable")
	f.tick(22)
	if f.m.gets < 2 || f.m.gets > 4 {
		t.Fatalf("%d attempts over 20 intervals, want 2 to 4 (backoff 4, 8, 16 intervals)", f.m.gets)
	}
	d := f.decision(t, "/web")
	if d.Action != ActionSkip || (d.Error == "" && !strings.Contains(d.Reason, "next attempt")) {
		t.Fatalf("decision %+v, want a skip saying Marathon failed", d)
	}
	f.m.fail = nil
	f.tick(20)
	if f.m.instances["/web"] != 5 {
		t.Fatalf("after Marathon recovered: %d instances, want 5", f.m.instances["/web"])
	}
}

// Dry run decides and logs, never writes; an instance without the lock never writes.
func TestScalerDryRunAndFollowerNeverWrite(t *testing.T) {
	f := newFixture(t, true, rpsApp("/web", 1, nil))
	f.tick(6)
	if f.m.puts != 0 || f.m.gets != 0 {
		t.Fatalf("dry run called Marathon: %d GETs, %d PUTs", f.m.gets, f.m.puts)
	}
	var sawDry bool
	for range 6 {
		f.tick(1)
		sawDry = sawDry || f.decision(t, "/web").DryRun
	}
	if !sawDry {
		t.Fatal("no dry-run scale decision shown")
	}
	f = newFixture(t, false, rpsApp("/web", 1, nil))
	f.lead.on = false
	f.tick(6)
	if f.m.puts != 0 {
		t.Fatalf("a follower wrote %d times", f.m.puts)
	}
	if d := f.decision(t, "/web"); !strings.Contains(d.Reason, "another instance holds the autoscale lock") {
		t.Fatalf("decision %+v", d)
	}
	f.lead.on = true
	f.tick(2)
	if f.m.instances["/web"] != 5 {
		t.Fatalf("after taking the lock: %d instances, want 5", f.m.instances["/web"])
	}
}

// The lock is asked again right before every write, not once per interval: an instance that
// loses it while Marathon answers a GET (a slow Marathon, many apps to scale) writes nothing
// more, while the new holder may already be scaling.
func TestScalerLosingTheLockMidIntervalStopsWriting(t *testing.T) {
	f := newFixture(t, false, rpsApp("/a", 1, nil), rpsApp("/b", 1, nil))
	f.tick(1) // warm up: the next interval scales both
	if f.m.puts != 0 {
		t.Fatalf("%d PUTs while warming up", f.m.puts)
	}
	f.m.onGet = func() { f.lead.on = false }
	f.tick(1)
	if f.m.puts != 0 {
		t.Fatalf("%d PUTs after the lock was lost during the interval (scaled %v)", f.m.puts, f.m.scaled)
	}
	for _, app := range []string{"/a", "/b"} {
		if d := f.decision(t, app); d.Action != ActionSkip || !strings.Contains(d.Reason, "another instance holds the autoscale lock") {
			t.Errorf("%s: %+v, want a skip for the lost lock", app, d)
		}
	}
}

// A Marathon nobody can reach is one outage, not one per app: after the first app's attempt
// fails, the others of the interval are not tried, and the next attempt waits for the
// backoff, whatever the number of apps.
func TestScalerUnreachableMarathonIsTriedOncePerBackoff(t *testing.T) {
	apps := []*discovery.App{rpsApp("/a", 1, nil), rpsApp("/b", 1, nil), rpsApp("/c", 1, nil)}
	f := newFixture(t, false, apps...)
	f.tick(1)
	f.m.fail = fmt.Errorf("GET http://m1:8080/v2/apps/a: timeout: %w", ErrMarathonUnavailable)
	f.tick(1)
	if f.m.gets != 1 {
		t.Fatalf("%d GETs in the interval Marathon was first unreachable, want 1", f.m.gets)
	}
	f.tick(2) // within the 4-interval backoff
	if f.m.gets != 1 {
		t.Fatalf("%d GETs within the backoff, want still 1", f.m.gets)
	}
	for _, a := range apps {
		if d := f.decision(t, a.ID); d.Action != ActionSkip || !strings.Contains(d.Reason, "Marathon") {
			t.Errorf("%s: %+v, want a skip naming Marathon", a.ID, d)
		}
	}
	f.m.fail = nil
	f.tick(20)
	for _, a := range apps {
		if f.m.instances[a.ID] != 5 {
			t.Errorf("after Marathon came back: %s has %d instances, want 5", a.ID, f.m.instances[a.ID])
		}
	}
}

// mapAgents answers each agent's statistics from a map; the figures grow by step per call.
type mapAgents struct {
	mu    sync.Mutex
	calls int
	by    map[string]func(call int) []ExecutorUsage
}

func (m *mapAgents) Statistics(_ context.Context, a discovery.Agent) ([]ExecutorUsage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	return m.by[a.ID](m.calls), nil
}

// An agent's statistics count only for the tasks that agent runs: an agent reporting an
// executor id of a task on another agent (a clash of executor ids, a hostile agent) does not
// replace the figures of the agent that runs it, whatever order the agents are read in.
func TestScalerStatisticsOnlyFromTheTasksAgent(t *testing.T) {
	app := &discovery.App{ID: "/work", Instances: 2, Labels: map[string]string{LabelMode: "cpu"}, Tasks: []*discovery.Task{
		{ID: "work.1", SlaveID: "a1", State: "TASK_RUNNING"}, {ID: "work.2", SlaveID: "a2", State: "TASK_RUNNING"},
	}}
	honest := func(id string, call int) ExecutorUsage {
		// 50% of a CPU: 1 CPU-second per 2 seconds of the agent's clock.
		return ExecutorUsage{ExecutorID: id, CPUSecs: float64(call), MemRSSBytes: 1, MemLimitBytes: 2, Timestamp: float64(2 * call)}
	}
	agents := &mapAgents{by: map[string]func(int) []ExecutorUsage{
		"a1": func(call int) []ExecutorUsage { return []ExecutorUsage{honest("work.1", call)} },
		"a2": func(call int) []ExecutorUsage {
			spoof := ExecutorUsage{ExecutorID: "work.1", CPUSecs: 1e6 * float64(call), MemRSSBytes: 2, MemLimitBytes: 2, Timestamp: float64(2 * call)}
			return []ExecutorUsage{honest("work.2", call), spoof}
		},
	}}
	var now = t0
	snap := &discovery.Snapshot{Apps: discovery.AppSet{}.With(app), Mesos: &discovery.MesosState{Agents: []discovery.Agent{{ID: "a1"}, {ID: "a2"}}}}
	m := &memMarathon{instances: map[string]int{"/work": 2}, deployments: map[string]int{}}
	s, err := New(Config{Interval: testInterval, Defaults: DefaultSettings(), Snapshot: func() *discovery.Snapshot { return snap },
		Agents: agents, Marathon: m, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		now = now.Add(testInterval)
		s.Tick(context.Background())
	}
	d := s.Status().Apps[0]
	if d.Inputs.CPU == nil || d.Inputs.Mem == nil || *d.Inputs.CPU > 51 || *d.Inputs.Mem != 50 {
		t.Fatalf("decision %+v (cpu %v, mem %v): want the honest 50%% CPU and memory of both tasks", d, FormatPercent(d.Inputs.CPU), FormatPercent(d.Inputs.Mem))
	}
}

// termFlag is a Leadership whose writes run under a context that ends when it stops leading.
type termFlag struct {
	mu   sync.Mutex
	on   bool
	term chan struct{}
}

func (f *termFlag) Leading() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on
}

func (f *termFlag) lose() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on = false
	close(f.term)
}

func (f *termFlag) Term(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	f.mu.Lock()
	term := f.term
	f.mu.Unlock()
	go func() {
		select {
		case <-term:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// blockingMarathon answers GETs at once and holds every PUT until its context ends, telling
// when one is in flight.
type blockingMarathon struct {
	memMarathon
	inFlight chan struct{}
}

func (m *blockingMarathon) Scale(ctx context.Context, id string, n int) error {
	m.inFlight <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// A write in flight when the lock is lost is abandoned: a Marathon failing over can hold a
// PUT (and the client then tries the next URL) past the time another instance takes the
// lock, and the old holder's write must not land beside the new one's.
func TestScalerWriteInFlightEndsWithTheLock(t *testing.T) {
	f := newFixture(t, false, rpsApp("/web", 1, nil))
	m := &blockingMarathon{memMarathon: memMarathon{instances: map[string]int{"/web": 1}, deployments: map[string]int{}}, inFlight: make(chan struct{})}
	lead := &termFlag{on: true, term: make(chan struct{})}
	f.s.cfg.Marathon, f.s.cfg.Leader = m, lead
	f.tick(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.tick(1)
	}()
	select {
	case <-m.inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("no PUT was sent")
	}
	lead.lose()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the PUT in flight went on after the lock was lost")
	}
	if d := f.decision(t, "/web"); d.Action != ActionSkip || d.Error == "" {
		t.Fatalf("decision %+v, want a skip with the abandoned write's error", d)
	}
}
