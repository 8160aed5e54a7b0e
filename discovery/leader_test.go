package discovery

import "testing"

// TestSetMarathonLeader: the leader is recorded in its own state, the same leader again
// changes nothing (no new version), and apps and Mesos state are untouched by it.
func TestSetMarathonLeader(t *testing.T) {
	r := startRegistry(t)
	send := func(t *testing.T, r *Registry, u Update) {
		t.Helper()
		send(t, r, u)
		if err := r.Barrier(testContext(t)); err != nil {
			t.Fatal(err)
		}
	}
	send(t, r, ReplaceApps{Apps: seedApps(2)})
	send(t, r, ReplaceMesosState{State: &MesosState{Leader: "127.0.0.1:5050"}})
	before := r.Snapshot()

	send(t, r, SetMarathonLeader{Leader: "m1:8080", Addr: "127.0.0.2:8080"})
	s1 := r.Snapshot()
	if s1.Version != before.Version+1 {
		t.Fatalf("version %d after a new leader, want %d", s1.Version, before.Version+1)
	}
	if s1.Marathon == nil || *s1.Marathon != (MarathonState{Leader: "m1:8080", LeaderAddr: "127.0.0.2:8080"}) {
		t.Fatalf("Marathon state %+v", s1.Marathon)
	}
	if s1.Apps.Len() != 2 || s1.App("/app-0000") != before.App("/app-0000") || s1.Mesos != before.Mesos {
		t.Errorf("a leader update changed the apps or the Mesos state")
	}

	send(t, r, SetMarathonLeader{Leader: "m1:8080", Addr: "127.0.0.2:8080"})
	if s := r.Snapshot(); s.Version != s1.Version {
		t.Errorf("the same leader again made version %d, want %d kept", s.Version, s1.Version)
	}

	send(t, r, SetMarathonLeader{})
	s2 := r.Snapshot()
	if s2.Version != s1.Version+1 || s2.Marathon == nil || *s2.Marathon != (MarathonState{}) {
		t.Errorf("no leader: version %d, state %+v; want version %d and an empty leader", s2.Version, s2.Marathon, s1.Version+1)
	}
	if s1.Marathon.Leader != "m1:8080" {
		t.Errorf("a published Marathon state was modified: %+v", s1.Marathon)
	}
}
