package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

const testHub = "0123456789abcdef0123456789abcdef"

// fixtureApps decodes Marathon fixtures: apps with every networking shape, health and
// readiness checks, port labels and deployments.
func fixtureApps(t testing.TB) []*discovery.App {
	t.Helper()
	var all []*discovery.App
	for _, name := range []string{"marathon15_apps.json", "zdd_apps.json"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "marathon", name))
		if err != nil {
			t.Fatal(err)
		}
		apps, _, err := discovery.DecodeMarathonApps(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		all = append(all, apps...)
	}
	if len(all) < 3 {
		t.Fatalf("only %d fixture apps", len(all))
	}
	return all
}

// startTestRegistry runs a registry until the test ends.
func startTestRegistry(t testing.TB) *discovery.Registry {
	t.Helper()
	reg := discovery.NewRegistry(discovery.WithLogger(quietLogger()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return reg
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apply sends u and waits until the registry has applied it.
func apply(t testing.TB, reg *discovery.Registry, u discovery.Update) *discovery.Snapshot {
	t.Helper()
	ctx := ctxFor(t)
	if err := reg.Send(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := reg.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	return reg.Snapshot()
}

// decodeFrame parses one encoded frame back into a change, as a replica would.
func decodeFrame(t testing.TB, frame []byte) *change {
	t.Helper()
	r := newSSEReader(strings.NewReader(string(frame)), DefaultMaxEventSize, nil)
	ev, err := r.next()
	if err != nil {
		t.Fatalf("reading the frame back: %v", err)
	}
	c, err := decodeEvent(ev.Type, ev.Data)
	if err != nil {
		t.Fatalf("decoding the frame back: %v", err)
	}
	if want := eventID(c.Hub, c.Version); ev.ID != want {
		t.Errorf("event id %q, want %q", ev.ID, want)
	}
	return c
}

// sameApps fails t unless both snapshots hold equal apps (derived fields included) and equal
// Mesos, Marathon and rules.
func sameApps(t testing.TB, got, want *discovery.Snapshot) {
	t.Helper()
	if got.Apps.Len() != want.Apps.Len() {
		t.Fatalf("%d apps, want %d", got.Apps.Len(), want.Apps.Len())
	}
	want.Apps.Each(func(a *discovery.App) bool {
		if g := got.App(a.ID); !g.Equal(a) {
			t.Fatalf("app %s differs:\n got %+v\nwant %+v", a.ID, g, a)
		}
		return true
	})
	gm, _ := json.Marshal([]any{got.Mesos, got.Marathon, got.Rules})
	wm, _ := json.Marshal([]any{want.Mesos, want.Marathon, want.Rules})
	if string(gm) != string(wm) {
		t.Fatalf("other parts differ:\n got %s\nwant %s", gm, wm)
	}
}

// A snapshot of fixture apps, Mesos and Marathon state and rules decodes into a Mirror that
// gives a fresh registry the same state, derived fields included.
func TestSnapshotRoundTrip(t *testing.T) {
	hub := startTestRegistry(t)
	apply(t, hub, discovery.ReplaceApps{Apps: fixtureApps(t)})
	apply(t, hub, discovery.ReplaceMesosState{State: &discovery.MesosState{
		Leader: "10.0.0.5:5050", Frameworks: []discovery.Framework{{ID: "f1", Name: "marathon",
			Tasks: []discovery.MesosTask{{ID: "t1", Ports: []int{31000}, Labels: []discovery.Label{{Key: "k", Value: "v"}}}}}},
		Masters: []discovery.Master{{ID: "m1", IP: "10.0.0.5", Port: 5050}},
	}})
	apply(t, hub, discovery.SetMarathonLeader{Leader: "m1:8080", Addr: "10.0.0.9:8080"})
	want := apply(t, hub, discovery.ReplaceRules{Rules: map[string]discovery.ServiceRule{"/app": {AppID: "/app", ACL: "hdr(host) -i a.b"}}})

	frame, err := encodeSnapshot(testHub, want)
	if err != nil {
		t.Fatal(err)
	}
	c := decodeFrame(t, frame)
	if !c.Snapshot || c.Version != want.Version || c.Hub != testHub || !c.Time.Equal(want.Time) || len(c.AppErrors) > 0 {
		t.Fatalf("decoded %+v", c)
	}
	replica := startTestRegistry(t)
	sameApps(t, apply(t, replica, c.Mirror), want)
}

// Deltas between random versions of a registry, applied in turn to a replica that started
// from a snapshot, always leave it equal to the hub: incremental equals from scratch.
func TestDeltasReplayEqualHub(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	hub := startTestRegistry(t)
	apps := fixtureApps(t)
	prev := apply(t, hub, discovery.ReplaceApps{Apps: apps[:len(apps)/2]})
	frame, err := encodeSnapshot(testHub, prev)
	if err != nil {
		t.Fatal(err)
	}
	replica := startTestRegistry(t)
	apply(t, replica, decodeFrame(t, frame).Mirror)
	for step := range 150 {
		for range 1 + rng.IntN(4) {
			apply(t, hub, randomUpdate(rng, hub.Snapshot(), apps))
		}
		next := hub.Snapshot()
		if next.Version == prev.Version {
			continue
		}
		frame, err := encodeDelta(testHub, prev, next)
		if err != nil {
			t.Fatal(err)
		}
		c := decodeFrame(t, frame)
		if c.Snapshot || c.From != prev.Version || c.Version != next.Version {
			t.Fatalf("step %d: decoded %d→%d snapshot=%v, want %d→%d", step, c.From, c.Version, c.Snapshot, prev.Version, next.Version)
		}
		sameApps(t, apply(t, replica, c.Mirror), next)
		prev = next
	}
}

// randomUpdate is one of the changes Marathon and Mesos sources make.
func randomUpdate(rng *rand.Rand, snap *discovery.Snapshot, pool []*discovery.App) discovery.Update {
	all := snap.Apps.All()
	switch rng.IntN(7) {
	case 0:
		a := *pool[rng.IntN(len(pool))]
		a.Tasks = nil
		return discovery.UpsertApp{App: &a}
	case 1:
		if len(all) > 0 {
			return discovery.RemoveApp{ID: all[rng.IntN(len(all))].ID}
		}
	case 2:
		return discovery.SetMarathonLeader{Leader: fmt.Sprintf("m%d:8080", rng.IntN(3))}
	case 3:
		return discovery.ReplaceMesosState{State: &discovery.MesosState{Leader: fmt.Sprintf("10.0.0.%d:5050", rng.IntN(3))}}
	case 4:
		return discovery.ReplaceRules{Rules: map[string]discovery.ServiceRule{"/r": {AppID: "/r", ACL: fmt.Sprint(rng.IntN(3))}}}
	}
	if len(all) == 0 {
		return discovery.SetMarathonLeader{}
	}
	a := all[rng.IntN(len(all))]
	states := []string{discovery.StateRunning, discovery.StateKilling, "TASK_KILLED", discovery.StateStaging}
	if len(a.Tasks) > 0 && rng.IntN(2) == 0 {
		return discovery.TaskHealth{AppID: a.ID, TaskID: a.Tasks[0].ID, Alive: rng.IntN(2) == 0}
	}
	return discovery.TaskStatus{
		AppID: a.ID, TaskID: fmt.Sprintf("%s.t%d", strings.Trim(a.ID, "/"), rng.IntN(4)),
		State: states[rng.IntN(len(states))], Host: "10.0.0.1", Ports: []int{31000 + rng.IntN(100), 32000}, Timestamp: "2026-01-01T00:00:00Z",
	}
}

// Events a hub would never send, and apps a replica must refuse: the whole event, or only the
// bad app (the others are applied and the replica keeps its own version of the bad one).
func TestDecodeEventHostile(t *testing.T) {
	good := `{"id":"/ok","instances":1,"tasks":[{"id":"ok.1","state":"TASK_RUNNING","host":"10.0.0.1","host_ports":[31000]}]}`
	snapshot := func(apps ...string) string {
		return fmt.Sprintf(`{"format":1,"hub":%q,"version":5,"apps":[%s]}`, testHub, strings.Join(apps, ","))
	}
	wholeEvent := []struct{ name, typ, data, want string }{
		{"unknown event type", "hello", snapshot(good), "event type"},
		{"not JSON", EventSnapshot, `{"format":1,`, "unexpected EOF"},
		{"data after the object", EventSnapshot, snapshot(good) + `{}`, "data after"},
		{"unknown field", EventSnapshot, `{"format":1,"hub":"` + testHub + `","version":5,"evil":1}`, "unknown field"},
		{"unknown app field", EventSnapshot, snapshot(`{"id":"/a","endpoints":[]}`), "unknown field"},
		{"other format", EventSnapshot, `{"format":2,"hub":"` + testHub + `","version":5}`, "format 2"},
		{"bad hub id", EventSnapshot, `{"format":1,"hub":"../../etc","version":5}`, "hub id"},
		{"delta to version 0", EventDelta, `{"format":1,"hub":"` + testHub + `","version":0}`, "delta from version 0 to 0"},
		{"delta going back", EventDelta, `{"format":1,"hub":"` + testHub + `","from":5,"version":5}`, "delta from version 5 to 5"},
		{"snapshot removing", EventSnapshot, `{"format":1,"hub":"` + testHub + `","version":5,"removed":["/a"]}`, "removed"},
		{"removed bad id", EventDelta, `{"format":1,"hub":"` + testHub + `","from":4,"version":5,"removed":["a\nb"]}`, "not a Marathon app id"},
		{"rule under another id", EventDelta, `{"format":1,"hub":"` + testHub + `","from":4,"version":5,"rules":{"/a":{"AppID":"/b","ACL":"x"}}}`, "names app"},
		{"mesos of the wrong type", EventDelta, `{"format":1,"hub":"` + testHub + `","from":4,"version":5,"mesos":{"Leader":5}}`, "mesos"},
		{"wrong typed version", EventSnapshot, `{"format":1,"hub":"` + testHub + `","version":"5"}`, "version"},
	}
	for _, tc := range wholeEvent {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeEvent(tc.typ, []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	badApps := []struct{ name, app, want string }{
		{"no leading slash", `{"id":"evil"}`, "not a Marathon app id"},
		{"control character", `{"id":"/a\u0000b"}`, "not a Marathon app id"},
		{"network mode", `{"id":"/a","network":"overlay"}`, "network mode"},
		{"port out of range", `{"id":"/a","ports":[{"ServicePort":70000}]}`, "out of 0-65535"},
		{"negative instances", `{"id":"/a","instances":-1}`, "instances"},
		{"task without id", `{"id":"/a","tasks":[{"id":"","state":"TASK_RUNNING"}]}`, "task id"},
		{"task twice", `{"id":"/a","tasks":[{"id":"t","state":"x"},{"id":"t","state":"y"}]}`, "listed twice"},
		{"host port out of range", `{"id":"/a","tasks":[{"id":"t","host_ports":[-1]}]}`, "host port"},
		{"app twice", `{"id":"/ok"}`, "listed twice"},
	}
	for _, tc := range badApps {
		t.Run(tc.name, func(t *testing.T) {
			c, err := decodeEvent(EventSnapshot, []byte(snapshot(good, tc.app)))
			if err != nil {
				t.Fatalf("the whole event was refused: %v", err)
			}
			if len(c.AppErrors) != 1 || !strings.Contains(c.AppErrors[0].Error(), tc.want) {
				t.Fatalf("app errors %v, want one containing %q", c.AppErrors, tc.want)
			}
			if len(c.Mirror.Apps) != 1 || c.Mirror.Apps[0].ID != "/ok" {
				t.Fatalf("apps %v, want only /ok", c.Mirror.Apps)
			}
		})
	}
	// The honest case beside them: the good app alone, its task bound to it.
	c, err := decodeEvent(EventSnapshot, []byte(snapshot(good)))
	if err != nil || len(c.AppErrors) > 0 || len(c.Mirror.Apps) != 1 || c.Mirror.Apps[0].Tasks[0].AppID != "/ok" {
		t.Fatalf("honest snapshot: %+v, %v", c, err)
	}
}

// A replica keeps its own version of an app the hub sent bad data for, in a snapshot too,
// and an app sent twice (right, then wrong; or wrong twice) never makes the registry refuse
// the whole snapshot.
func TestSnapshotKeepsRefusedApp(t *testing.T) {
	replica := startTestRegistry(t)
	apply(t, replica, discovery.ReplaceApps{Apps: []*discovery.App{{ID: "/a", Instances: 1}, {ID: "/b"}, {ID: "/d", Instances: 4}}})
	data := fmt.Sprintf(`{"format":1,"hub":%q,"version":9,"apps":[{"id":"/a","network":"overlay"},{"id":"/a","instances":-1},`+
		`{"id":"/c"},{"id":"/c","instances":7},{"id":"/d","instances":5}]}`, testHub)
	c, err := decodeEvent(EventSnapshot, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	snap := apply(t, replica, c.Mirror)
	if a := snap.App("/a"); a == nil || a.Instances != 1 || snap.App("/c") == nil || snap.App("/c").Instances != 0 ||
		snap.App("/b") != nil || snap.App("/d").Instances != 5 {
		t.Fatalf("apps after the snapshot: %v; want /a kept as it was, /c added (its first copy), /d replaced, /b removed", ids(snap))
	}
}

func ids(s *discovery.Snapshot) []string {
	var out []string
	s.Apps.Each(func(a *discovery.App) bool { out = append(out, a.ID); return true })
	return out
}

func TestParseEventID(t *testing.T) {
	for _, tc := range []struct {
		in  string
		ok  bool
		ver uint64
	}{
		{testHub + ".42", true, 42},
		{testHub + ".0", true, 0},
		{testHub + ".-1", false, 0},
		{testHub + ".18446744073709551616", false, 0}, // overflows uint64
		{testHub, false, 0},
		{"ABCDEF0123456789abcdef0123456789.1", false, 0},
		{"x.1", false, 0},
		{"", false, 0},
	} {
		hub, ver, ok := parseEventID(tc.in)
		if ok != tc.ok || ver != tc.ver || (ok && hub != testHub) {
			t.Errorf("parseEventID(%q) = %q, %d, %v; want ok %v version %d", tc.in, hub, ver, ok, tc.ok, tc.ver)
		}
	}
}
