package discovery

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// twoApps is /api (two tasks, health checked) and /web (one task).
func twoApps() []*App {
	return []*App{
		application(appID("/api"), withServicePorts(10000), withHealthCheck(), withLabel("HAPROXY_GROUP", "internal"),
			withTasks(
				task(taskID("api.1"), host("10.0.0.1"), ports(31001), health(true), stagedAt("s1")),
				task(taskID("api.2"), host("10.0.0.2"), ports(31002), health(true)),
			)),
		application(appID("/web"), withServicePorts(10001), withLabel("HAPROXY_GROUP", "external"),
			withTasks(task(taskID("web.1"), host("10.0.0.3"), ports(31003)))),
	}
}

func TestTaskStatus(t *testing.T) {
	tests := []struct {
		name        string
		u           TaskStatus
		wantChanged bool
		wantErr     error
		// check inspects the app afterwards; nil when the state must be unchanged.
		check func(t *testing.T, a *App)
		tasks int
	}{
		{
			name: "new task is added, staged",
			u: TaskStatus{AppID: "/web", TaskID: "web.0", State: StateStaging, Host: "10.0.0.9", SlaveID: "S9",
				Version: "v2", Timestamp: "t0"},
			wantChanged: true, tasks: 4,
			check: func(t *testing.T, a *App) {
				tk := a.Task("web.0")
				want := &Task{ID: "web.0", AppID: "/web", Host: "10.0.0.9", SlaveID: "S9", State: StateStaging,
					StagedAt: "t0", Version: "v2", Reason: "state TASK_STAGING"}
				if !reflect.DeepEqual(tk, want) {
					t.Errorf("new task\n got %+v\nwant %+v", tk, want)
				}
				if a.Tasks[0].ID != "web.0" || a.Tasks[1].ID != "web.1" {
					t.Errorf("tasks not kept sorted: %s, %s", a.Tasks[0].ID, a.Tasks[1].ID)
				}
			},
		},
		{
			name:        "new task arrives running with ports",
			u:           TaskStatus{AppID: "/web", TaskID: "web.2", State: StateRunning, Host: "10.0.0.9", Ports: []int{31009}, Timestamp: "t1"},
			wantChanged: true, tasks: 4,
			check: func(t *testing.T, a *App) {
				tk := a.Task("web.2")
				if !tk.Eligible || tk.StagedAt != "t1" || tk.StartedAt != "t1" ||
					!reflect.DeepEqual(tk.Endpoints, []Endpoint{{"10.0.0.9", 31009}}) {
					t.Errorf("task %+v", tk)
				}
			},
		},
		{
			name:        "existing task updated, fields not in the event kept",
			u:           TaskStatus{AppID: "/api", TaskID: "api.1", State: StateKilling, Timestamp: "t2"},
			wantChanged: true, tasks: 3,
			check: func(t *testing.T, a *App) {
				tk := a.Task("api.1")
				if tk.State != StateKilling || !tk.Draining || tk.Eligible || tk.Host != "10.0.0.1" ||
					!slices.Equal(tk.HostPorts, []int{31001}) || !slices.Equal(tk.Health, []HealthResult{{Alive: true}}) {
					t.Errorf("task %+v", tk)
				}
				if tk.StagedAt != "s1" {
					t.Errorf("StagedAt %q, want s1: only a new task takes the event's time", tk.StagedAt)
				}
			},
		},
		{
			name:        "terminal removes",
			u:           TaskStatus{AppID: "/api", TaskID: "api.2", State: "TASK_FAILED"},
			wantChanged: true, tasks: 2,
			check: func(t *testing.T, a *App) {
				if a.Task("api.2") != nil || len(a.Tasks) != 1 || a.Tasks[0].ID != "api.1" {
					t.Errorf("tasks %v", a.Tasks)
				}
			},
		},
		{
			name: "terminal for a task already gone is a no-op", tasks: 3,
			u: TaskStatus{AppID: "/api", TaskID: "api.9", State: "TASK_KILLED"},
		},
		{
			name: "same status again is a no-op", tasks: 3,
			u: TaskStatus{AppID: "/web", TaskID: "web.1", State: StateRunning, Host: "10.0.0.3", Ports: []int{31003}},
		},
		{
			name: "unknown app", tasks: 3,
			u:       TaskStatus{AppID: "/nope", TaskID: "nope.1", State: StateRunning},
			wantErr: ErrUnknownApp,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(t, twoApps()...)
			before := *st
			beforeApps := st.apps.All()
			changed, err := tt.u.apply(st)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), tt.u.AppID) || !strings.Contains(err.Error(), tt.u.TaskID)) {
				t.Errorf("error %q names neither app %s nor task %s", err, tt.u.AppID, tt.u.TaskID)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %t, want %t", changed, tt.wantChanged)
			}
			if st.tasks != tt.tasks {
				t.Errorf("task count %d, want %d", st.tasks, tt.tasks)
			}
			if countTasks(st.apps) != st.tasks {
				t.Errorf("task count %d does not match the apps (%d)", st.tasks, countTasks(st.apps))
			}
			if !tt.wantChanged {
				if !reflect.DeepEqual(*st, before) {
					t.Errorf("state changed by a no-op or rejected update")
				}
				return
			}
			// Copy on write: the apps held before are untouched.
			if !reflect.DeepEqual(beforeApps, twoAppsPrepared()) {
				t.Errorf("an app of the previous state was mutated")
			}
			tt.check(t, st.apps.Get(tt.u.AppID))
		})
	}
}

func twoAppsPrepared() []*App {
	apps := twoApps()
	for _, a := range apps {
		prepare(a)
	}
	return apps
}

func countTasks(s AppSet) int {
	n := 0
	s.Each(func(a *App) bool { n += len(a.Tasks); return true })
	return n
}

func TestTaskStatusUnknownAppKeepsSnapshot(t *testing.T) {
	// An unbuffered queue: Send returns once the owner took the update, so when the second
	// Send returns the first one has been fully handled.
	r := startRegistry(t, WithQueue(0))
	send(t, r, ReplaceApps{Apps: twoApps()})
	before, err := r.WaitFor(testContext(t), func(s *Snapshot) bool { return s.Apps.Len() == 2 })
	if err != nil {
		t.Fatal(err)
	}
	send(t, r, TaskStatus{AppID: "/nope", TaskID: "nope.1", State: StateRunning})
	send(t, r, TaskHealth{AppID: "/nope", TaskID: "nope.1", Alive: true})
	send(t, r, TaskHealth{AppID: "/web", TaskID: "web.404", Alive: true})
	send(t, r, RemoveApp{ID: "/nope"})
	if after := r.Snapshot(); after != before || after.Version != before.Version {
		t.Errorf("rejected updates published version %d (was %d)", after.Version, before.Version)
	}
}

func TestTaskHealthChangesOneTask(t *testing.T) {
	st := newState(t, twoApps()...)
	api, web := st.apps.Get("/api"), st.apps.Get("/web")
	if !mustApply(t, st, TaskHealth{AppID: "/api", TaskID: "api.2", Alive: false}) {
		t.Fatal("health flip changed nothing")
	}
	api2 := st.apps.Get("/api")
	if api2 == api {
		t.Fatal("app pointer kept although a task changed")
	}
	if st.apps.Get("/web") != web {
		t.Error("the other app was replaced")
	}
	if api2.Tasks[0] != api.Tasks[0] {
		t.Error("the other task of the app was replaced")
	}
	if got := api2.Task("api.2"); got.Eligible || got.Reason != "health check failing" ||
		!slices.Equal(got.Health, []HealthResult{{Alive: false}}) {
		t.Errorf("flipped task %+v", got)
	}
	if old := api.Task("api.2"); !old.Eligible || !old.Health[0].Alive {
		t.Errorf("the published task was mutated: %+v", old)
	}
	// The same verdict again is a no-op.
	if mustApply(t, st, TaskHealth{AppID: "/api", TaskID: "api.2", Alive: false}) {
		t.Error("repeating the verdict counted as a change")
	}
	if st.apps.Get("/api") != api2 {
		t.Error("no-op replaced the app")
	}
	// A task without results gets one per health check; consecutive failures are kept while
	// the verdict holds.
	st2 := newState(t, application(appID("/h"), withServicePorts(1), withHealthCheck(), withHealthCheck(),
		withTasks(task(taskID("h.1"), host("h"), ports(2)))))
	mustApply(t, st2, TaskHealth{AppID: "/h", TaskID: "h.1", Alive: true})
	if h := st2.apps.Get("/h").Task("h.1").Health; !slices.Equal(h, []HealthResult{{Alive: true}, {Alive: true}}) {
		t.Errorf("health %v, want two alive results", h)
	}
}

func TestTaskHealthErrors(t *testing.T) {
	st := newState(t, twoApps()...)
	_, err := TaskHealth{AppID: "/nope", TaskID: "x", Alive: true}.apply(st)
	if !errors.Is(err, ErrUnknownApp) {
		t.Errorf("unknown app: err = %v", err)
	}
	_, err = TaskHealth{AppID: "/web", TaskID: "web.404", Alive: true}.apply(st)
	if err == nil || !strings.Contains(err.Error(), "web.404") || !strings.Contains(err.Error(), "unknown task") {
		t.Errorf("unknown task: err = %v", err)
	}
}

func TestReplaceApps(t *testing.T) {
	st := newState(t, twoApps()...)
	api, web := st.apps.Get("/api"), st.apps.Get("/web")

	// Equal content in new values: nothing changes and the old pointers stay.
	if mustApply(t, st, ReplaceApps{Apps: twoApps()}) {
		t.Error("equal full sync counted as a change")
	}
	if st.apps.Get("/api") != api || st.apps.Get("/web") != web {
		t.Error("equal full sync replaced app pointers")
	}

	// One app changed: only that one is new.
	apps := twoApps()
	apps[1].Labels["HAPROXY_0_VHOST"] = "web.example"
	if !mustApply(t, st, ReplaceApps{Apps: apps}) {
		t.Fatal("changed label not seen")
	}
	if st.apps.Get("/api") != api {
		t.Error("unchanged app got a new pointer")
	}
	if got := st.apps.Get("/web"); got == web || got.Labels["HAPROXY_0_VHOST"] != "web.example" {
		t.Errorf("changed app %+v", got)
	}

	// Same count, different ids: the old app goes.
	apps = twoApps()
	apps[1] = application(appID("/zzz"), withTasks(task(taskID("z.1"), host("h"))))
	if !mustApply(t, st, ReplaceApps{Apps: apps}) {
		t.Fatal("renamed app not seen")
	}
	if st.apps.Get("/web") != nil || st.apps.Get("/zzz") == nil || st.tasks != 3 {
		t.Errorf("apps %v, tasks %d", appIDs(st.apps), st.tasks)
	}

	// Fewer apps.
	if !mustApply(t, st, ReplaceApps{Apps: twoApps()[:1]}) {
		t.Fatal("shrink not seen")
	}
	if st.apps.Len() != 1 || st.tasks != 2 {
		t.Errorf("apps %v, tasks %d", appIDs(st.apps), st.tasks)
	}

	// Empty.
	if !mustApply(t, st, ReplaceApps{}) || st.apps.Len() != 0 || st.tasks != 0 {
		t.Errorf("empty sync: apps %v, tasks %d", appIDs(st.apps), st.tasks)
	}

	// Duplicate ids in a changed sync are rejected.
	_, err := ReplaceApps{Apps: []*App{application(appID("/d")), application(appID("/d"))}}.apply(st)
	if err == nil || !strings.Contains(err.Error(), "listed more than once: [/d]") {
		t.Errorf("duplicate ids: err = %v", err)
	}
}

func TestReplaceAppsThroughRegistry(t *testing.T) {
	r := startRegistry(t, WithQueue(0))
	send(t, r, ReplaceApps{Apps: decodeFixture(t, "marathon/zdd_apps.json")})
	first, err := r.WaitFor(testContext(t), func(s *Snapshot) bool { return s.Apps.Len() == 2 })
	if err != nil {
		t.Fatal(err)
	}
	if first.Version != 1 || first.Tasks != 4 {
		t.Errorf("version %d tasks %d, want 1 and 4", first.Version, first.Tasks)
	}
	// The same payload decoded again: no new version, same app pointers.
	send(t, r, ReplaceApps{Apps: decodeFixture(t, "marathon/zdd_apps.json")})
	send(t, r, ReplaceApps{Apps: decodeFixture(t, "marathon/zdd_apps.json")})
	if s := r.Snapshot(); s != first {
		t.Errorf("equal full sync published version %d", s.Version)
	}
}

func appIDs(s AppSet) []string {
	var ids []string
	for _, a := range s.All() {
		ids = append(ids, a.ID)
	}
	return ids
}

func TestUpsertAndRemoveApp(t *testing.T) {
	st := newState(t, twoApps()...)
	web := st.apps.Get("/web")

	if mustApply(t, st, UpsertApp{App: twoApps()[1]}) {
		t.Error("upsert of an equal app counted as a change")
	}
	if st.apps.Get("/web") != web {
		t.Error("equal upsert replaced the pointer")
	}

	newApp := application(appID("/new"), withServicePorts(10002),
		withTasks(task(taskID("new.2"), host("h"), ports(1)), task(taskID("new.1"), host("h"), ports(2))))
	if !mustApply(t, st, UpsertApp{App: newApp}) {
		t.Fatal("new app not added")
	}
	if got := appIDs(st.apps); !slices.Equal(got, []string{"/api", "/new", "/web"}) {
		t.Errorf("apps %v", got)
	}
	if a := st.apps.Get("/new"); a.Tasks[0].ID != "new.1" || !a.Tasks[0].Eligible {
		t.Errorf("upserted app not prepared: first task %+v", a.Tasks[0])
	}
	if st.tasks != 5 {
		t.Errorf("tasks %d, want 5", st.tasks)
	}

	replacement := application(appID("/web"), withServicePorts(10001))
	if !mustApply(t, st, UpsertApp{App: replacement}) || st.apps.Get("/web") != replacement || st.tasks != 4 {
		t.Errorf("replacement: tasks %d", st.tasks)
	}

	if !mustApply(t, st, RemoveApp{ID: "/api"}) {
		t.Fatal("remove did nothing")
	}
	if got := appIDs(st.apps); !slices.Equal(got, []string{"/new", "/web"}) || st.tasks != 2 {
		t.Errorf("apps %v tasks %d", got, st.tasks)
	}
	if mustApply(t, st, RemoveApp{ID: "/api"}) {
		t.Error("removing a missing app counted as a change")
	}
}

func TestReplaceMesosState(t *testing.T) {
	decode := func() *MesosState {
		st, err := DecodeMesosState(readFixture(t, "state_fake.json"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := &state{}
	if !mustApply(t, st, ReplaceMesosState{State: decode()}) {
		t.Fatal("first state not taken")
	}
	held := st.mesos
	if mustApply(t, st, ReplaceMesosState{State: decode()}) {
		t.Error("equal Mesos state counted as a change")
	}
	if st.mesos != held {
		t.Error("equal Mesos state replaced the held one")
	}
	next := decode()
	next.Frameworks[3].Tasks[0].State = "TASK_LOST"
	if !mustApply(t, st, ReplaceMesosState{State: next}) || st.mesos != next {
		t.Error("changed task state not seen")
	}

	// Through the registry: no version bump for an equal state.
	r := startRegistry(t, WithQueue(0))
	send(t, r, ReplaceMesosState{State: decode()})
	s1, err := r.WaitFor(testContext(t), func(s *Snapshot) bool { return s.Mesos != nil })
	if err != nil {
		t.Fatal(err)
	}
	send(t, r, ReplaceMesosState{State: decode()})
	send(t, r, ReplaceMesosState{State: decode()})
	if s := r.Snapshot(); s != s1 {
		t.Errorf("equal Mesos state published version %d after %d", s.Version, s1.Version)
	}
}

func TestReplaceRules(t *testing.T) {
	st := &state{}
	rules := map[string]ServiceRule{"/web": {AppID: "/web", ACL: "hdr(host) -i web.example"}}
	if !mustApply(t, st, ReplaceRules{Rules: rules}) {
		t.Fatal("rules not taken")
	}
	rules["/api"] = ServiceRule{AppID: "/api"}
	if len(st.rules) != 1 {
		t.Error("the state shares the caller's map")
	}
	if mustApply(t, st, ReplaceRules{Rules: map[string]ServiceRule{"/web": {AppID: "/web", ACL: "hdr(host) -i web.example"}}}) {
		t.Error("equal rules counted as a change")
	}
	if !mustApply(t, st, ReplaceRules{Rules: nil}) || len(st.rules) != 0 {
		t.Error("clearing rules not seen")
	}
}

// AppSet against a sorted reference: ~1,000 random ids inserted, replaced and deleted, in
// random order so leaves split and empty everywhere. Every old set is kept and re-checked at
// the end: With and Without must never change a set that was already returned.
func TestAppSetRandomAgainstReference(t *testing.T) {
	t.Run("fan-out 128", testAppSetRandom)
	// A fan-out of 4 makes branches split and empty too, not only leaves.
	t.Run("fan-out 4", func(t *testing.T) {
		defer func(m, n int) { nodeMax, nodeTarget = m, n }(nodeMax, nodeTarget)
		nodeMax, nodeTarget = 4, 2
		testAppSetRandom(t)
	})
}

func testAppSetRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("/app-%06d", rng.IntN(1_000_000))
	}

	type version struct {
		set  AppSet
		want []*App // sorted by id
	}
	var history []version
	var s AppSet
	var ref []*App
	apply := func(op string, id string) {
		switch op {
		case "with":
			a := &App{ID: id, Version: fmt.Sprint(len(history))}
			s = s.With(a)
			i, found := slices.BinarySearchFunc(ref, id, func(a *App, id string) int { return strings.Compare(a.ID, id) })
			if found {
				ref = slices.Clone(ref)
				ref[i] = a
			} else {
				ref = slices.Insert(slices.Clone(ref), i, a)
			}
		case "without":
			s = s.Without(id)
			if i, found := slices.BinarySearchFunc(ref, id, func(a *App, id string) int { return strings.Compare(a.ID, id) }); found {
				ref = slices.Delete(slices.Clone(ref), i, i+1)
			}
		}
		history = append(history, version{s, ref})
		checkAppSet(t, fmt.Sprintf("after %s %s (op %d)", op, id, len(history)), s, ref)
	}

	// Ascending inserts first (splits of the last leaf), then random ones.
	sorted := slices.Sorted(slices.Values(ids[:300]))
	for _, id := range sorted {
		apply("with", id)
	}
	for _, id := range ids[300:] {
		apply("with", id)
	}
	// Replacements and deletes mixed with more inserts, including ids never present.
	for range 1500 {
		id := ids[rng.IntN(len(ids))]
		switch rng.IntN(4) {
		case 0:
			apply("with", id)
		case 1:
			apply("without", fmt.Sprintf("/absent-%d", rng.IntN(100)))
		default:
			apply("without", id)
		}
	}
	// Empty it completely.
	for _, a := range slices.Clone(ref) {
		apply("without", a.ID)
	}
	if s.Len() != 0 || len(s.All()) != 0 {
		t.Fatalf("set not empty: %d", s.Len())
	}
	apply("with", "/again")

	for i, v := range history {
		if !appSetMatches(v.set, v.want) {
			t.Fatalf("set %d of %d changed after later operations", i, len(history))
		}
	}
}

func TestNewAppSet(t *testing.T) {
	var apps []*App
	for i := range 500 {
		apps = append(apps, &App{ID: fmt.Sprintf("/a%04d", (i*7919)%500)})
	}
	dup := &App{ID: "/a0007", Version: "later"}
	apps = append(apps, dup)
	s := NewAppSet(apps)
	if s.Len() != 500 || s.Get("/a0007") != dup {
		t.Errorf("len %d, /a0007 = %+v: later duplicates must win", s.Len(), s.Get("/a0007"))
	}
	ref := slices.Clone(apps[:500])
	slices.SortFunc(ref, func(a, b *App) int { return strings.Compare(a.ID, b.ID) })
	ref[7] = dup
	checkAppSet(t, "NewAppSet", s, ref)
	// The input slice is not reordered.
	if apps[1].ID != fmt.Sprintf("/a%04d", 7919%500) {
		t.Error("NewAppSet sorted its argument")
	}
	// Insert into a built set, then check again (a leaf of a built set must not be appended to
	// in place).
	s2 := s.With(&App{ID: "/a0001x"})
	checkAppSet(t, "NewAppSet then With", s, ref)
	if s2.Get("/a0001x") == nil || s2.Len() != 501 {
		t.Error("insert into a built set failed")
	}
}

func checkAppSet(t *testing.T, what string, s AppSet, ref []*App) {
	t.Helper()
	if !appSetMatches(s, ref) {
		t.Fatalf("%s: set %v, want %v", what, appIDs(s), idsOf(ref))
	}
	for _, a := range ref {
		if s.Get(a.ID) != a {
			t.Fatalf("%s: Get(%s) = %p, want %p", what, a.ID, s.Get(a.ID), a)
		}
	}
	if s.Get("/zzzz-not-there") != nil || s.Get("") != nil {
		t.Fatalf("%s: Get of a missing id returned an app", what)
	}
	for bi, b := range s.root {
		if len(b.leaves) == 0 || len(b.leaves) > nodeMax {
			t.Fatalf("%s: branch %d has %d leaves", what, bi, len(b.leaves))
		}
		for i, l := range b.leaves {
			if len(l) == 0 || len(l) > nodeMax {
				t.Fatalf("%s: branch %d leaf %d has %d apps", what, bi, i, len(l))
			}
		}
	}
	var each []*App
	s.Each(func(a *App) bool { each = append(each, a); return len(each) < 10 })
	if want := min(10, len(ref)); len(each) != want || (want > 0 && each[want-1] != ref[want-1]) {
		t.Fatalf("%s: Each visited %d apps before stopping, want %d", what, len(each), want)
	}
}

func appSetMatches(s AppSet, ref []*App) bool {
	all := s.All()
	if s.Len() != len(ref) || len(all) != len(ref) {
		return false
	}
	for i := range all {
		if all[i] != ref[i] {
			return false
		}
	}
	return true
}

func idsOf(apps []*App) []string {
	var ids []string
	for _, a := range apps {
		ids = append(ids, a.ID)
	}
	return ids
}

// A full sync listing an id twice must be rejected without touching the state, whatever else
// is batched with it, and a duplicate must not hide that another app is gone.
func TestReplaceAppsDuplicateIDs(t *testing.T) {

	// 1. Duplicate of an unchanged app, same count as held: /web silently stays.
	st := newState(t, twoApps()...)
	changed, err := ReplaceApps{Apps: []*App{twoApps()[0], twoApps()[0]}}.apply(st)
	if err == nil {
		t.Errorf("duplicate ids accepted (changed=%t); apps now %v", changed, appIDs(st.apps))
	}

	// 2. The error path has already replaced st.apps (but not st.tasks).
	st = newState(t, twoApps()...)
	before := *st
	if _, err := (ReplaceApps{Apps: []*App{application(appID("/d")), application(appID("/d"))}}).apply(st); err == nil {
		t.Error("duplicate ids accepted")
	}
	if !reflect.DeepEqual(*st, before) {
		t.Errorf("rejected full sync changed the state: apps %v, tasks %d", appIDs(st.apps), st.tasks)
	}

	// 3. Through the registry, batched with a real change: the half-applied sync is published.
	r := NewRegistry(WithLogger(quietLogger()))
	ctx := testContext(t)
	for _, u := range []Update{
		ReplaceApps{Apps: twoApps()},
		ReplaceApps{Apps: []*App{application(appID("/d")), application(appID("/d"))}},
		ReplaceRules{Rules: map[string]ServiceRule{"/x": {AppID: "/x"}}},
	} {
		if err := r.Send(ctx, u); err != nil { // queued before Run: applied as one batch
			t.Fatal(err)
		}
	}
	go func() { _ = r.Run(ctx) }()
	s, err := r.WaitFor(ctx, func(s *Snapshot) bool { return s.Rules != nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := appIDs(s.Apps); !slices.Equal(got, []string{"/api", "/web"}) || s.Tasks != 3 {
		t.Errorf("published apps %v with Tasks=%d; want the last good apps [/api /web] and 3", got, s.Tasks)
	}
}

// A full sync that could not decode an app keeps the registry's own current version of it,
// including deltas applied after the snapshot the source could have read.
func TestReplaceAppsKeep(t *testing.T) {
	st := newState(t, twoApps()...)
	before := st.apps.Get("/api")
	if !mustApply(t, st, TaskStatus{AppID: "/api", TaskID: "api.new", State: StateRunning, Host: "10.0.0.9", Ports: []int{31999}}) {
		t.Fatal("delta changed nothing")
	}
	withDelta := st.apps.Get("/api")
	if withDelta == before || withDelta.Task("api.new") == nil {
		t.Fatal("delta not applied")
	}
	// The sync lists only /web (changed) and keeps /api and an id the registry never had.
	web := application(appID("/web"), withLabel("HAPROXY_GROUP", "internal"))
	if !mustApply(t, st, ReplaceApps{Apps: []*App{web}, Keep: []string{"/api", "/never-seen"}}) {
		t.Fatal("sync changed nothing")
	}
	if got := appIDs(st.apps); !slices.Equal(got, []string{"/api", "/web"}) {
		t.Fatalf("apps %v, want [/api /web]", got)
	}
	if st.apps.Get("/api") != withDelta {
		t.Error("kept app is not the registry's current version (pointer changed or delta lost)")
	}
	if st.tasks != len(withDelta.Tasks) {
		t.Errorf("tasks = %d, want %d", st.tasks, len(withDelta.Tasks))
	}
}

// The end of a task of an app that is already gone is not an error (Marathon sends the
// kills after the app is destroyed).
func TestTerminalStatusOfRemovedApp(t *testing.T) {
	st := newState(t, twoApps()...)
	changed, err := TaskStatus{AppID: "/gone", TaskID: "gone.1", State: "TASK_KILLED"}.apply(st)
	if changed || err != nil {
		t.Errorf("changed=%t err=%v, want a quiet no-op", changed, err)
	}
	if _, err := (TaskStatus{AppID: "/gone", TaskID: "gone.1", State: StateRunning}).apply(st); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("running task of unknown app: err = %v, want ErrUnknownApp", err)
	}
}

// Marathon 1.6+ names tasks after their instance: instance "shop_web.instance-UUID" runs task
// "shop_web.instance-UUID._app.1", and a resident task relaunched by such a Marathon keeps its
// old "marathon-" instance id. health_status_changed_event names only the instance, which no
// rewriting turns into the task id: the health verdict must still reach the task.
func TestTaskHealthFindsTheInstancesTask(t *testing.T) {
	const (
		modern    = "shop_web.instance-6c6a1a3a-2ec3-11ea-8db4-2e3e3cb1e0f4._app.1"
		resident  = "shop_web.marathon-01bf22d4-68a7-11e7-a229-e6a514ca0c21._app.2"
		neighbour = "shop_web.instance-6c6a1a3a-2ec3-11ea-8db4-2e3e3cb1e0f5._app.1"
	)
	st := newState(t, application(appID("/shop/web"), withServicePorts(10000), withHealthCheck(), withTasks(
		task(taskID(modern), host("10.0.0.1"), ports(31000)),
		task(taskID(resident), host("10.0.0.2"), ports(31001)),
		task(taskID(neighbour), host("10.0.0.3"), ports(31002)),
	)))
	for _, c := range []struct{ instance, task string }{
		{"shop_web.instance-6c6a1a3a-2ec3-11ea-8db4-2e3e3cb1e0f4", modern},
		{"shop_web.marathon-01bf22d4-68a7-11e7-a229-e6a514ca0c21", resident},
	} {
		data := fmt.Sprintf(`{"appId":"/shop/web","instanceId":%q,"version":"2020-01-01T00:00:00.000Z","alive":false,"eventType":"health_status_changed_event"}`, c.instance)
		ev, err := DecodeMarathonEvent("health_status_changed_event", []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		changed, err := ev.Update.apply(st)
		if err != nil || !changed {
			t.Errorf("instance %s: changed %t, err %v; want the health of task %s applied", c.instance, changed, err, c.task)
			continue
		}
		if tk := st.apps.Get("/shop/web").Task(c.task); tk.Eligible || tk.Reason != "health check failing" {
			t.Errorf("task %s after alive=false for its instance: eligible %t, reason %q", c.task, tk.Eligible, tk.Reason)
		}
	}
	if tk := st.apps.Get("/shop/web").Task(neighbour); !tk.Eligible {
		t.Errorf("task %s of another instance lost eligibility: %q", neighbour, tk.Reason)
	}
}
