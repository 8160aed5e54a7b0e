package mesos

import (
	"context"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// On failover the source may ask a master that does not lead. Like a Mesos 0.2x master, such
// a master answers /master/state with the leader named and no frameworks or agents. These
// tests hold the source to the rule: that partial state is never sent as the cluster's state
// (it would replace the full one and every Mesos task would vanish from DNS); the source asks
// the leader it names and sends only the leader's own state; while that leader cannot be
// reached, the last good state stays and the sync error names both masters.

// TestFallbackMasterNamesAnUnreachableLeader: the only master listed does not lead, and the
// leader it names is down. Nothing is sent, and the error names both; once the leader is back
// its state is.
func TestFallbackMasterNamesAnUnreachableLeader(t *testing.T) {
	t.Parallel()
	c := cluster(t, 2)
	a, b := c.Masters[0], c.Masters[1] // a leads
	a.GoDown()
	h := start(t, Config{Masters: []string{b.HostPort()}, Refresh: time.Hour})
	down := h.waitReport(0, "the leader down", isErr(b.HostPort()+" does not lead", "names "+a.HostPort(), a.HostPort()+": "))
	if sent := h.sink.Sent(); len(sent) != 0 {
		t.Fatalf("%d states sent while the leader was down, the first %s", len(sent), describe(sent[0].(discovery.ReplaceMesosState).State))
	}

	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	h.src.Resync(context.Background())
	h.waitReport(down+1, "the leader back", isSuccess)
	h.waitLeader(a.HostPort())
	h.noEmptyState()
}

// TestFallbackKeepsTheStateWhileTheLeaderIsDown: after a good state, the leader goes down and
// the listed master still names it. The state stays as it was, and each failed sync names
// the master asked and the leader it names.
func TestFallbackKeepsTheStateWhileTheLeaderIsDown(t *testing.T) {
	t.Parallel()
	c := cluster(t, 2)
	a, b := c.Masters[0], c.Masters[1] // a leads
	h := start(t, Config{Masters: []string{b.HostPort()}, Refresh: time.Hour})
	h.waitLeader(a.HostPort())
	up := h.waitReport(0, "the first sync", isSuccess)
	version := h.reg.Snapshot().Version

	a.GoDown()
	asked := b.Requests("")
	h.src.Resync(context.Background())
	if err := b.WaitRequests(waitCtx(t), "", asked+1); err != nil {
		t.Fatal(err)
	}
	h.waitReport(up+1, "the leader down", isErr(b.HostPort()+" does not lead", "names "+a.HostPort(), a.HostPort()+": "))
	if s := h.reg.Snapshot(); s.Version != version || s.Mesos.Leader != a.HostPort() || len(s.Mesos.Frameworks) != seedFrameworks {
		t.Fatalf("state changed while the leader was down: version %d → %d, %s", version, s.Version, describe(s.Mesos))
	}
	h.noEmptyState()
}

// TestZKDownLeaderMovesToAnUnlistedMaster: ZooKeeper goes down, and the leadership moves to
// a master that neither ZooKeeper's last listing nor the static list has. The masters the
// source knows answer without frameworks or agents and name the new leader; the source asks
// it, and sends its state only. When the new leader goes down too, the state stays and the
// error names the master asked and the leader it names.
func TestZKDownLeaderMovesToAnUnlistedMaster(t *testing.T) {
	t.Parallel()
	z := zktest.Start(t)
	const path = "/mesos"
	c := cluster(t, 3)
	a, b, n := c.Masters[0], c.Masters[1], c.Masters[2]
	reg := registrar(t, z, path)
	register(t, reg, a, false)
	register(t, reg, b, false)
	reg.Close()

	h := start(t, Config{ZK: z.URL(path), Masters: []string{b.HostPort()}, Refresh: time.Hour, ZKSessionTimeout: 2 * time.Second})
	h.waitLeader(a.HostPort())
	failing := len(h.logs.Lines("Mesos leader detection through ZooKeeper failing"))
	z.Stop()
	h.waitLogs(failing+1, "ZooKeeper going down", "Mesos leader detection through ZooKeeper failing")

	c.SetLeader(2)
	reports := h.sink.ReportCount()
	h.src.Resync(context.Background())
	h.waitReport(reports, "the poll after the leader moved", isSuccess)
	st := h.waitLeader(n.HostPort())
	if h.src.Leader() != n.HostPort() {
		t.Errorf("Leader() = %q, want %q", h.src.Leader(), n.HostPort())
	}
	if len(st.Agents) == 0 {
		t.Errorf("state from the new leader without agents: %s", describe(st))
	}
	version := h.reg.Snapshot().Version

	n.GoDown()
	reports = h.sink.ReportCount()
	h.src.Resync(context.Background())
	h.waitReport(reports, "the new leader down", isErr(" does not lead", "names "+n.HostPort(), n.HostPort()+": "))
	if s := h.reg.Snapshot(); s.Version != version || s.Mesos.Leader != n.HostPort() || len(s.Mesos.Frameworks) != seedFrameworks {
		t.Fatalf("state changed while the leader was down: version %d → %d, %s", version, s.Version, describe(s.Mesos))
	}
	h.noEmptyState()
}
