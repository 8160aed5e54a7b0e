package marathon

import (
	"path/filepath"

	"context"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// leaderUpdates returns the SetMarathonLeader updates the source sent, in order.
func (h *harness) leaderUpdates() []discovery.SetMarathonLeader {
	var out []discovery.SetMarathonLeader
	for _, u := range h.sink.Sent() {
		if l, ok := u.(discovery.SetMarathonLeader); ok {
			out = append(out, l)
		}
	}
	return out
}

// waitMarathonLeader waits until the registry's Marathon leader is leader, at addr.
func (h *harness) waitMarathonLeader(leader, addr string) *discovery.Snapshot {
	h.t.Helper()
	return h.waitFor("Marathon leader "+leader, func(s *discovery.Snapshot) bool {
		return s.Marathon != nil && s.Marathon.Leader == leader && s.Marathon.LeaderAddr == addr
	})
}

// TestLeaderReachesTheRegistry: the leader is in the snapshot once the source synced, a
// leader change reaches it through the periodic leader check, and an unchanged leader is not
// sent again on every check.
func TestLeaderReachesTheRegistry(t *testing.T) {
	t.Parallel()
	fake1 := newFake(t, "zdd_apps.json")
	fake2 := newFake(t, "zdd_apps.json")
	fake1.SetLeader(hostPort(fake1))
	fake2.SetLeader(hostPort(fake1))
	h := start(t, testConfig(), fake1, fake2)
	s := h.waitSynced()
	if s.Marathon == nil || s.Marathon.Leader != hostPort(fake1) || s.Marathon.LeaderAddr != hostPort(fake1) {
		t.Fatalf("Marathon state after the first sync: %+v, want leader %s", s.Marathon, hostPort(fake1))
	}
	// Several leader checks (every 100 ms here) with the same answer send nothing new.
	checks := fake1.Requests("/v2/leader")
	waitUntil(t, "three more leader checks", func() bool { return fake1.Requests("/v2/leader") >= checks+3 })
	if n := len(h.leaderUpdates()); n != 1 {
		t.Errorf("%d leader updates sent for one leader, want 1: %+v", n, h.leaderUpdates())
	}

	fake1.SetLeader(hostPort(fake2))
	fake2.SetLeader(hostPort(fake2))
	h.waitMarathonLeader(hostPort(fake2), hostPort(fake2))
	waitUntil(t, "the stream to move to the new leader", func() bool { return h.src.Connected() == fake2.URL() })
	want := []discovery.SetMarathonLeader{
		{Leader: hostPort(fake1), Addr: hostPort(fake1)},
		{Leader: hostPort(fake2), Addr: hostPort(fake2)},
	}
	if got := h.leaderUpdates(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("leader updates %+v, want %+v", got, want)
	}
}

// TestLeaderHostNameIsResolved: /v2/leader names Marathon's --hostname; the registry gets the
// address a proxy can connect to as well.
func TestLeaderHostNameIsResolved(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	_, port, err := net.SplitHostPort(hostPort(fake))
	if err != nil {
		t.Fatal(err)
	}
	// localhost is in /etc/hosts: no query leaves the machine.
	fake.SetLeader(net.JoinHostPort("localhost", port))
	h := start(t, testConfig(), fake)
	h.waitMarathonLeader(net.JoinHostPort("localhost", port), net.JoinHostPort("127.0.0.1", port))
}

// TestUnresolvableLeaderIsNotLookedUpOnEveryCheck: a leader whose host name does not resolve
// (Marathon's --hostname unknown to this host's DNS, or DNS down) must not be looked up again
// on every leader check. Each lookup blocks the session (up to resolveTimeout while DNS does
// not answer) and queries DNS twice a second forever.
func TestUnresolvableLeaderIsNotLookedUpOnEveryCheck(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	_, port, err := net.SplitHostPort(hostPort(fake))
	if err != nil {
		t.Fatal(err)
	}
	leader := net.JoinHostPort("marathon-1.unresolvable.test", port)
	fake.SetLeader(leader)
	var lookups atomic.Int32
	cfg := testConfig()
	cfg.LeaderCheck = 5 * time.Millisecond
	h := startWith(t, cfg, func(s *Source) {
		s.lookupIP = func(ctx context.Context, network, host string) ([]netip.Addr, error) {
			lookups.Add(1)
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
	}, fake)
	h.waitMarathonLeader(leader, "")
	checks := fake.Requests("/v2/leader")
	waitUntil(t, "30 more leader checks", func() bool { return fake.Requests("/v2/leader") >= checks+30 })
	if n := lookups.Load(); n > 3 {
		t.Errorf("%s looked up %d times in about 30 leader checks, want it retried far less often", leader, n)
	}
	h.waitLog("cannot resolve the Marathon leader", "marathon-1.unresolvable.test")
}

// newLeaderlessFake is newFake behind a proxy that passes only /v2/apps and /v2/events.
func newLeaderlessFake(t *testing.T) *fakemarathon.Server {
	t.Helper()
	f := fakemarathon.New()
	f.KeepAlive = 50 * time.Millisecond
	f.NoLeaderEndpoints = true
	if err := f.LoadAppsFile(filepath.Join("testdata", "zdd_apps.json")); err != nil {
		t.Fatal(err)
	}
	f.RewriteAddresses()
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// TestNoMemberServesLeader: with no member serving /v2/leader (nor /v2/info), the source syncs
// from the first member that answers /v2/apps — the first configured one is down — and says so
// in a debug line; the session then follows events without a leader check ending it.
func TestNoMemberServesLeader(t *testing.T) {
	t.Parallel()
	down := newLeaderlessFake(t)
	down.GoDown()
	up := newLeaderlessFake(t)
	h := start(t, testConfig(), down, up)
	s := h.waitSynced()
	if s.Apps.Len() == 0 {
		t.Fatalf("no apps after the sync: %s", dump(s))
	}
	h.waitLog("no Marathon member serves /v2/leader", "member="+up.URL())
	// The stream connects after the first sync: wait for it, as the other tests do.
	waitUntil(t, "Connected() to name the member that answers /v2/apps", func() bool { return h.src.Connected() == up.URL() })
	// Several leader-check periods pass (100 ms each here) while events flow; the stream stays up.
	for range 5 {
		h.flush(up)
	}
	if n := up.StreamConnects(); n != 1 {
		t.Errorf("%d stream connections, want 1 (a leader check must not end the session)", n)
	}
	if n := up.Requests("/v2/leader"); n > 2 {
		t.Errorf("/v2/leader asked %d times, want only while choosing a member", n)
	}
}
