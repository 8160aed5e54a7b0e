package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// seedApps builds n apps of three running tasks each: /app-0000 … with tasks app-0000.0 … .
func seedApps(n int) []*App {
	apps := make([]*App, n)
	for i := range apps {
		id := fmt.Sprintf("/app-%04d", i)
		var ts []*Task
		for j := range 3 {
			ts = append(ts, task(taskID(fmt.Sprintf("app-%04d.%d", i, j)), host(fmt.Sprintf("10.0.%d.%d", i/250, i%250)),
				ports(31000+j), stagedAt("s")))
		}
		apps[i] = application(appID(id), withServicePorts(10000+i), withLabel("HAPROXY_GROUP", "external"), withTasks(ts...))
	}
	return apps
}

// Readers walk every app and task of whatever snapshot they load while 10,000 updates are
// applied; run with -race. Each reader checks that what it sees is consistent and that
// versions only move forward.
func TestRegistryConcurrentReaders(t *testing.T) {
	const (
		nApps    = 50
		nUpdates = 10_000
		nReaders = 4
	)
	// An unbuffered queue publishes every update as its own version (no batching), so the
	// readers race against 10,000 publications.
	r := startRegistry(t, WithQueue(0))
	send(t, r, ReplaceApps{Apps: seedApps(nApps)})
	if _, err := r.WaitFor(testContext(t), func(s *Snapshot) bool { return s.Apps.Len() == nApps }); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	reads := make([]int, nReaders)    // snapshots loaded
	versions := make([]int, nReaders) // distinct versions loaded
	for n := range nReaders {
		wg.Go(func() {
			var prev *Snapshot
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := r.Snapshot()
				if prev != nil && s != prev && s.Version <= prev.Version {
					t.Errorf("reader %d: version went from %d to %d", n, prev.Version, s.Version)
					return
				}
				if prev != nil && s == prev && s.Version != prev.Version {
					t.Errorf("reader %d: a published snapshot changed its version", n)
					return
				}
				if err := walkSnapshot(s); err != nil {
					t.Errorf("reader %d, version %d: %v", n, s.Version, err)
					return
				}
				if s != prev {
					versions[n]++
				}
				prev = s
				reads[n]++
			}
		})
	}

	// Every update is a real change: task j of app i alternates KILLING, RUNNING, ….
	final := map[string]string{}
	for i := range nUpdates {
		app := i % nApps
		tk := (i / nApps) % 3
		st := StateKilling
		if (i/(nApps*3))%2 == 1 {
			st = StateRunning
		}
		id := fmt.Sprintf("app-%04d.%d", app, tk)
		final[id] = st
		send(t, r, TaskStatus{AppID: fmt.Sprintf("/app-%04d", app), TaskID: id, State: st})
	}
	last, err := r.WaitFor(testContext(t), func(s *Snapshot) bool {
		for id, st := range final {
			app, _, _ := strings.Cut(id, ".")
			if tk := s.App("/" + app).Task(id); tk == nil || tk.State != st {
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("final state never reached: %v", err)
	}
	if last.Version != nUpdates+1 {
		t.Errorf("final version %d, want %d: one per update", last.Version, nUpdates+1)
	}
	if err := walkSnapshot(last); err != nil {
		t.Error(err)
	}
	t.Logf("readers loaded %v snapshots, %v distinct versions; final version %d", reads, versions, last.Version)
}

// walkSnapshot reads every app and task and checks the snapshot's invariants.
func walkSnapshot(s *Snapshot) error {
	tasks := 0
	prevID := ""
	var err error
	s.Apps.Each(func(a *App) bool {
		if a.ID <= prevID {
			err = fmt.Errorf("apps out of order: %s after %s", a.ID, prevID)
			return false
		}
		prevID = a.ID
		for i, tk := range a.Tasks {
			if tk.AppID != a.ID {
				err = fmt.Errorf("task %s has AppID %s in app %s", tk.ID, tk.AppID, a.ID)
				return false
			}
			if i > 0 && a.Tasks[i-1].ID >= tk.ID {
				err = fmt.Errorf("tasks of %s out of order", a.ID)
				return false
			}
			if tk.Eligible != (tk.State == StateRunning) || tk.Draining != (tk.State == StateKilling) {
				err = fmt.Errorf("task %s: state %s eligible %t draining %t", tk.ID, tk.State, tk.Eligible, tk.Draining)
				return false
			}
			if tk.Eligible && len(tk.Endpoints) != len(a.Ports) {
				err = fmt.Errorf("task %s: %d endpoints for %d ports", tk.ID, len(tk.Endpoints), len(a.Ports))
				return false
			}
			tasks++
		}
		return true
	})
	if err != nil {
		return err
	}
	if tasks != s.Tasks {
		return fmt.Errorf("Tasks = %d, but the apps hold %d", s.Tasks, tasks)
	}
	if n := len(s.Apps.All()); n != s.Apps.Len() {
		return fmt.Errorf("Len %d, All has %d", s.Apps.Len(), n)
	}
	return nil
}

// A subscriber that reads every notification sees strictly increasing versions.
func TestRegistrySubscriberVersionsIncrease(t *testing.T) {
	r := startRegistry(t)
	sub := r.Subscribe()
	defer sub.Close()
	send(t, r, ReplaceApps{Apps: seedApps(5)})
	const n = 500
	done := make(chan error, 1)
	seen := 0 // distinct versions the subscriber loaded; read after done
	ctx := testContext(t)
	go func() {
		var last uint64
		for {
			select {
			case <-sub.C():
			case <-ctx.Done():
				done <- fmt.Errorf("gave up at version %d: %w", last, ctx.Err())
				return
			}
			// Latest wins: a signal may announce a version this reader already loaded (it was
			// published between the previous signal and the reader's load), so the version
			// may repeat; it must never go back.
			s := sub.Snapshot()
			if s.Version < last {
				done <- fmt.Errorf("notified, but version %d is older than %d", s.Version, last)
				return
			}
			if s.Version > last {
				seen++
			}
			last = s.Version
			if s.Rules["/marker"].ACL == "end" {
				done <- nil
				return
			}
		}
	}()
	for i := range n {
		send(t, r, TaskHealth{AppID: "/app-0001", TaskID: "app-0001.1", Alive: i%2 == 1})
	}
	send(t, r, ReplaceRules{Rules: map[string]ServiceRule{"/marker": {AppID: "/marker", ACL: "end"}}})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("no new version seen")
	}
}

// No-op updates publish nothing: same snapshot pointer, same version, no notification.
func TestRegistryNoOpUpdates(t *testing.T) {
	// Unbuffered: once Send of the next update returns, the previous one has been handled.
	r := startRegistry(t, WithQueue(0))
	mesos, err := DecodeMesosState(readFixture(t, "state_fake.json"))
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]ServiceRule{"/app-0000": {AppID: "/app-0000", ACL: "path_beg /x"}}
	// Task app-0002.2 has a health result, so that a repeated verdict is a no-op.
	seed := func() []*App {
		apps := seedApps(3)
		apps[2].Tasks[2].Health = []HealthResult{{Alive: true}}
		return apps
	}
	send(t, r, ReplaceApps{Apps: seed()})
	send(t, r, ReplaceMesosState{State: mesos})
	send(t, r, ReplaceRules{Rules: rules})
	before, err := r.WaitFor(testContext(t), func(s *Snapshot) bool { return s.Rules != nil })
	if err != nil {
		t.Fatal(err)
	}
	if before.Version != 3 {
		t.Errorf("three changes made version %d, want 3", before.Version)
	}
	sub := r.Subscribe()
	defer sub.Close()

	mesos2, _ := DecodeMesosState(readFixture(t, "state_fake.json"))
	noops := []Update{
		ReplaceApps{Apps: seed()},
		UpsertApp{App: seed()[2]},
		RemoveApp{ID: "/missing"},
		TaskStatus{AppID: "/app-0000", TaskID: "app-0000.0", State: StateRunning},
		TaskStatus{AppID: "/app-0000", TaskID: "app-0000.7", State: "TASK_KILLED"},
		TaskHealth{AppID: "/app-0002", TaskID: "app-0002.2", Alive: true},
		TaskStatus{AppID: "/missing", TaskID: "missing.1", State: StateRunning}, // rejected
		ReplaceMesosState{State: mesos2},
		ReplaceRules{Rules: map[string]ServiceRule{"/app-0000": {AppID: "/app-0000", ACL: "path_beg /x"}}},
		RemoveApp{ID: "/missing"}, // flushes the one before
	}
	for _, u := range noops {
		send(t, r, u)
		if s := r.Snapshot(); s != before {
			t.Errorf("after %s: version %d, want %d unchanged", describe(u), s.Version, before.Version)
		}
	}
	select {
	case <-sub.C():
		t.Error("a subscriber was notified of a no-op")
	default:
	}
	// And a real change after them is exactly one version up.
	send(t, r, TaskHealth{AppID: "/app-0002", TaskID: "app-0002.2", Alive: false})
	send(t, r, RemoveApp{ID: "/missing"})
	if s := r.Snapshot(); s.Version != before.Version+1 {
		t.Errorf("version %d after one change, want %d", s.Version, before.Version+1)
	}
}

// A subscriber that never reads does not delay the next snapshot, nor another subscriber.
func TestRegistryBlockedSubscriber(t *testing.T) {
	r := startRegistry(t, WithQueue(0))
	blocked := r.Subscribe() // never read below, until the end
	defer blocked.Close()
	active := r.Subscribe()
	closed := r.Subscribe()
	closed.Close()

	send(t, r, ReplaceApps{Apps: seedApps(2)})
	ctx := testContext(t)
	const n = 200
	var base uint64
	for i := range n {
		if i > 0 {
			send(t, r, TaskHealth{AppID: "/app-0000", TaskID: "app-0000.0", Alive: i%2 == 0})
		}
		select {
		case <-active.C():
		case <-ctx.Done():
			t.Fatalf("update %d: active subscriber never notified", i)
		}
		s := active.Snapshot()
		if i == 0 {
			base = s.Version
		} else if s.Version != base+uint64(i) {
			t.Fatalf("update %d: active subscriber sees version %d, want %d", i, s.Version, base+uint64(i))
		}
	}
	// The blocked one holds exactly one pending signal and then reads the newest snapshot.
	if len(blocked.C()) != 1 {
		t.Errorf("blocked subscriber has %d pending signals, want 1", len(blocked.C()))
	}
	<-blocked.C()
	if s := blocked.Snapshot(); s.Version != base+n-1 {
		t.Errorf("blocked subscriber reads version %d, want the newest %d", s.Version, base+n-1)
	}
	if len(closed.C()) != 0 {
		t.Error("a closed subscription was notified")
	}
}

func TestRegistrySendAndWaitForHonourContext(t *testing.T) {
	r := NewRegistry(WithLogger(quietLogger()), WithQueue(0)) // not running: Send cannot complete
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Send(ctx, RemoveApp{ID: "/x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Send on a cancelled context: %v", err)
	}
	s, err := r.WaitFor(ctx, func(s *Snapshot) bool { return s.Version > 0 })
	if !errors.Is(err, context.Canceled) || s == nil || s.Version != 0 {
		t.Errorf("WaitFor on a cancelled context: %v, %+v", err, s)
	}
	// A condition already true returns at once, even with a cancelled context.
	if s, err := r.WaitFor(ctx, func(*Snapshot) bool { return true }); err != nil || s != r.Snapshot() {
		t.Errorf("WaitFor with a true condition: %v", err)
	}

	// Run returns nil when its context ends.
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRegistrySources(t *testing.T) {
	r := NewRegistry(WithLogger(quietLogger()))
	clock := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }

	if err := r.Synced(); err != nil {
		t.Errorf("no sources registered: Synced = %v", err)
	}
	r.RegisterSource("mesos")
	r.RegisterSource("marathon")
	r.RegisterSource("marathon") // twice is harmless
	err := r.Synced()
	if err == nil || !strings.Contains(err.Error(), "marathon") || !strings.Contains(err.Error(), "mesos") {
		t.Errorf("before any sync: Synced = %v, want both sources named", err)
	}

	r.ReportSync("marathon", errors.New("connection refused"))
	want := []SourceStatus{
		{Name: "marathon", LastError: "connection refused", ErrorAt: clock},
		{Name: "mesos"},
	}
	if got := r.Sources(); !slices.Equal(got, want) {
		t.Errorf("after a failed sync:\n got %+v\nwant %+v", got, want)
	}
	if r.Synced() == nil {
		t.Error("a failed first sync counts as synced")
	}
	if err := r.Failing(); err != nil {
		t.Errorf("a source that never synced is failing (Synced says it): %v", err)
	}

	clock = clock.Add(time.Minute)
	r.ReportSync("marathon", nil)
	if err := r.Synced(); err == nil || strings.Contains(err.Error(), "marathon") || !strings.Contains(err.Error(), "mesos") {
		t.Errorf("marathon synced: Synced = %v, want only mesos named", err)
	}
	want = []SourceStatus{
		{Name: "marathon", Synced: true, LastSync: clock, ErrorAt: clock.Add(-time.Minute)},
		{Name: "mesos"},
	}
	if got := r.Sources(); !slices.Equal(got, want) {
		t.Errorf("after a successful sync (error cleared):\n got %+v\nwant %+v", got, want)
	}
	r.ReportSync("mesos", nil)
	if err := r.Synced(); err != nil {
		t.Errorf("all synced: %v", err)
	}

	// A later failure is recorded, but the source stays synced (it has data).
	errAt := clock.Add(time.Minute)
	clock = errAt
	r.ReportSync("marathon", errors.New("timeout"))
	// A source that reports without registering is added.
	r.ReportSync("file", nil)
	syncedAt := errAt.Add(-time.Minute)
	want = []SourceStatus{
		{Name: "file", Synced: true, LastSync: errAt},
		{Name: "marathon", Synced: true, LastSync: syncedAt, LastError: "timeout", ErrorAt: errAt},
		{Name: "mesos", Synced: true, LastSync: syncedAt},
	}
	if got := r.Sources(); !slices.Equal(got, want) {
		t.Errorf("later:\n got %+v\nwant %+v", got, want)
	}
	if err := r.Synced(); err != nil {
		t.Errorf("a failure after a sync unsynced the registry: %v", err)
	}
	if err := r.Failing(); err == nil || err.Error() != "serving the last sync of 1 source(s) whose latest attempt failed: marathon: timeout" {
		t.Errorf("Failing = %v, want marathon named with its error", err)
	}
	r.ReportSync("marathon", nil)
	if err := r.Failing(); err != nil {
		t.Errorf("after marathon synced again: Failing = %v", err)
	}
	// Sources returns copies.
	r.Sources()[0].Synced = false
	if !r.Sources()[0].Synced {
		t.Error("Sources exposes the registry's own records")
	}
}

// modelTask is the reference model of one task for TestRegistryBurst.
type modelTask struct {
	state, host, stagedAt, startedAt string
	port                             int
}

// A burst of 2,000 random TaskStatus updates ends in exactly the state the sequence implies.
func TestRegistryBurst(t *testing.T) {
	const nApps, nUpdates = 20, 2000
	r := startRegistry(t)
	apps := seedApps(nApps)
	model := map[string]map[string]*modelTask{}
	for _, a := range apps {
		model[a.ID] = map[string]*modelTask{}
		for _, tk := range a.Tasks {
			model[a.ID][tk.ID] = &modelTask{state: StateRunning, host: tk.Host, stagedAt: "s", port: tk.HostPorts[0]}
		}
	}
	send(t, r, ReplaceApps{Apps: apps})

	rng := rand.New(rand.NewPCG(7, 11))
	states := []string{StateStaging, StateStarting, StateRunning, StateRunning, StateKilling, "TASK_KILLED", "TASK_FAILED"}
	for i := range nUpdates {
		a := rng.IntN(nApps)
		appID := fmt.Sprintf("/app-%04d", a)
		id := fmt.Sprintf("app-%04d.%d", a, rng.IntN(6)) // 3 seeded ids and 3 new ones
		u := TaskStatus{
			AppID: appID, TaskID: id, State: states[rng.IntN(len(states))],
			Host: fmt.Sprintf("10.1.0.%d", rng.IntN(250)), Ports: []int{32000 + rng.IntN(1000)},
			Timestamp: fmt.Sprintf("ts-%05d", i),
		}
		send(t, r, u)

		m := model[appID]
		switch {
		case IsTerminal(u.State):
			delete(m, id)
		default:
			mt := m[id]
			if mt == nil {
				mt = &modelTask{stagedAt: u.Timestamp}
				m[id] = mt
			}
			mt.state, mt.host, mt.port = u.State, u.Host, u.Ports[0]
			if u.State == StateRunning && mt.startedAt == "" {
				mt.startedAt = u.Timestamp
			}
		}
	}
	send(t, r, ReplaceRules{Rules: map[string]ServiceRule{"/burst": {AppID: "/burst", ACL: "done"}}})
	s, err := r.WaitFor(testContext(t), func(s *Snapshot) bool { return s.Rules["/burst"].ACL == "done" })
	if err != nil {
		t.Fatal(err)
	}
	if err := walkSnapshot(s); err != nil {
		t.Fatal(err)
	}
	total := 0
	for appID, m := range model {
		a := s.App(appID)
		got := map[string]modelTask{}
		for _, tk := range a.Tasks {
			port := 0
			if len(tk.HostPorts) > 0 {
				port = tk.HostPorts[0]
			}
			got[tk.ID] = modelTask{tk.State, tk.Host, tk.StagedAt, tk.StartedAt, port}
			if tk.Eligible && (tk.Endpoints[0] != Endpoint{tk.Host, port}) {
				t.Errorf("task %s: endpoint %v", tk.ID, tk.Endpoints[0])
			}
		}
		want := map[string]modelTask{}
		for id, mt := range m {
			want[id] = *mt
			total++
		}
		for id, w := range want {
			if g, ok := got[id]; !ok {
				t.Errorf("%s: task %s missing, want %+v", appID, id, w)
			} else if g != w {
				t.Errorf("%s: task %s\n got %+v\nwant %+v", appID, id, g, w)
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				t.Errorf("%s: task %s should be gone", appID, id)
			}
		}
	}
	if s.Tasks != total {
		t.Errorf("Tasks = %d, want %d", s.Tasks, total)
	}
	t.Logf("%d updates published as %d versions", nUpdates+2, s.Version)
}
