package discovery

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// naiveDiff is DiffApps from the flat lists: the reference the tree walk must equal.
func naiveDiff(prev, next AppSet) (changed, removed []string) {
	for _, a := range next.All() {
		if prev.Get(a.ID) != a {
			changed = append(changed, a.ID)
		}
	}
	for _, a := range prev.All() {
		if next.Get(a.ID) == nil {
			removed = append(removed, a.ID)
		}
	}
	return changed, removed
}

// DiffApps against the flat reference, over random sequences of inserts, replacements and
// deletions between every pair of versions (near and far apart), with leaves and branches
// shared, split and emptied.
func TestDiffAppsAgainstReference(t *testing.T) {
	for _, fan := range []int{128, 4} {
		t.Run(fmt.Sprintf("fan-out %d", fan), func(t *testing.T) {
			defer func(m, n int) { nodeMax, nodeTarget = m, n }(nodeMax, nodeTarget)
			nodeMax, nodeTarget = fan, max(fan/2, 2)
			rng := rand.New(rand.NewPCG(3, 4))
			var apps []*App
			for i := range 300 {
				apps = append(apps, &App{ID: fmt.Sprintf("/a%04d", i*3)})
			}
			versions := []AppSet{NewAppSet(apps)}
			for range 200 {
				s := versions[len(versions)-1]
				for range 1 + rng.IntN(5) {
					id := fmt.Sprintf("/a%04d", rng.IntN(1000))
					if rng.IntN(3) == 0 {
						s = s.Without(id)
					} else {
						s = s.With(&App{ID: id})
					}
				}
				versions = append(versions, s)
			}
			for k := range 400 {
				i, j := rng.IntN(len(versions)), rng.IntN(len(versions))
				if k%2 == 0 {
					j = min(i+1, len(versions)-1)
				}
				var gotC, gotR []string
				DiffApps(versions[i], versions[j],
					func(a *App) { gotC = append(gotC, a.ID) }, func(id string) { gotR = append(gotR, id) })
				wantC, wantR := naiveDiff(versions[i], versions[j])
				if !slices.Equal(gotC, wantC) || !slices.Equal(gotR, wantR) {
					t.Fatalf("versions %d→%d: changed %v removed %v, want %v and %v", i, j, gotC, gotR, wantC, wantR)
				}
			}
		})
	}
}

// A Mirror applies in one step: a delta adds, replaces and removes apps and sets the other
// parts; a full one replaces every app; parts not set are kept; an unchanged Mirror changes
// nothing.
func TestMirrorApply(t *testing.T) {
	web := application(appID("/web"), withServicePorts(10000), withTasks(task(taskID("web.1"), host("10.0.0.1"), ports(31000))))
	st := newState(t, web, application(appID("/old")))
	st.marathon = &MarathonState{Leader: "m1:8080"}

	api := application(appID("/api"))
	mesos := &MesosState{Leader: "10.0.0.5:5050"}
	changed := mustApply(t, st, Mirror{Apps: []*App{api}, Removed: []string{"/old"}, SetMesos: true, Mesos: mesos})
	if !changed || st.apps.Get("/api") == nil || st.apps.Get("/old") != nil || st.apps.Get("/web") == nil {
		t.Fatalf("delta: changed %v, apps %v", changed, ids(st.apps))
	}
	if st.mesos != mesos || st.marathon == nil || st.marathon.Leader != "m1:8080" {
		t.Errorf("delta: mesos %v marathon %v; want the new Mesos state and the Marathon leader kept", st.mesos, st.marathon)
	}
	if !st.apps.Get("/web").Tasks[0].Eligible {
		t.Error("an app kept by a delta lost its derived fields")
	}
	if mustApply(t, st, Mirror{SetMesos: true, Mesos: &MesosState{Leader: "10.0.0.5:5050"}}) {
		t.Error("an equal Mesos state changed the registry")
	}

	fresh := application(appID("/web"), withServicePorts(10000), withTasks(task(taskID("web.1"), host("10.0.0.1"), ports(31000))))
	changed = mustApply(t, st, Mirror{Full: true, Apps: []*App{fresh}, SetMarathon: true, Marathon: nil, SetRules: true})
	if !changed || st.apps.Len() != 1 || st.marathon != nil {
		t.Fatalf("full: changed %v, apps %v, marathon %v; want only /web and no Marathon state", changed, ids(st.apps), st.marathon)
	}
	if !st.apps.Get("/web").Tasks[0].Eligible {
		t.Error("a full mirror left the task's derived fields unset")
	}
	// A full mirror naming one id twice is corrupt: nothing of it applies.
	if _, err := (Mirror{Full: true, Apps: []*App{application(appID("/x")), application(appID("/x"))}}).apply(st); err == nil {
		t.Error("a full mirror with a duplicate id was accepted")
	}
	if st.apps.Len() != 1 {
		t.Errorf("a rejected full mirror changed the apps: %v", ids(st.apps))
	}
}

func ids(s AppSet) []string {
	var out []string
	for _, a := range s.All() {
		out = append(out, a.ID)
	}
	return out
}

// BenchmarkDiffApps: one app of 10,000 replaced. "tree" is DiffApps, skipping shared leaves
// and branches; "flat" walks both sets whole, as DiffApps would without them.
func BenchmarkDiffApps(b *testing.B) {
	apps := make([]*App, 10000)
	for i := range apps {
		apps[i] = &App{ID: fmt.Sprintf("/app%05d", i)}
	}
	prev := NewAppSet(apps)
	next := prev.With(&App{ID: "/app05000"})
	b.Run("tree", func(b *testing.B) {
		for b.Loop() {
			n := 0
			DiffApps(prev, next, func(*App) { n++ }, func(string) { n++ })
			if n != 1 {
				b.Fatalf("%d changes", n)
			}
		}
	})
	b.Run("flat", func(b *testing.B) {
		for b.Loop() {
			p, q := prev.All(), next.All()
			n := 0
			for i := range p {
				if p[i] != q[i] {
					n++
				}
			}
			if n != 1 {
				b.Fatalf("%d changes", n)
			}
		}
	})
}
