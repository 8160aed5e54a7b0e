package mesos

import (
	"io"
	"net"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// TestZKSessionExpiry: lodestar cannot reach ZooKeeper for longer than its session timeout, so
// the session expires, and the leader changes meanwhile. On reconnection (a new session) the
// source lists the masters again, follows the new leader without a refresh, and has one watch
// armed, which fires for the next change.
func TestZKSessionExpiry(t *testing.T) {
	t.Parallel()
	z := zktest.Start(t) // its own server: every session in it is the source's
	const path = "/mesos"
	c := cluster(t, 2)
	a, b := c.Masters[0], c.Masters[1]
	reg := registrar(t, z, path)
	// Persistent nodes, so that only the source's session is live once the registrar closes.
	nodeA := register(t, reg, a, false)
	nodeB := register(t, reg, b, false)
	reg.Close()
	px := zktest.StartProxy(t, z.Addr())

	h := start(t, Config{ZK: "zk://" + px.Addr() + path, Refresh: time.Hour, ZKSessionTimeout: 2 * time.Second})
	h.waitLeader(a.HostPort())
	sessions := zkSessions(t, z)
	if len(sessions) == 0 {
		t.Fatalf("no session in ZooKeeper's dump while the source is connected")
	}

	px.Pause()
	ctx := waitCtx(t)
	for live := zkSessions(t, z); slices.ContainsFunc(sessions, func(s string) bool { return slices.Contains(live, s) }); live = zkSessions(t, z) {
		select {
		case <-ctx.Done():
			t.Fatalf("sessions %v never expired; live: %v", sessions, live)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.SetLeader(1)
	reg = registrar(t, z, path)
	if err := reg.Unregister(nodeA); err != nil {
		t.Fatal(err)
	}
	px.Resume()

	h.waitLogs(1, "the expiry", "session expired")
	// The masters a state lists come from ZooKeeper: b alone once it is listed again. (b may
	// lead in the registry earlier: a, asked on a poll, names it.)
	h.waitMesos("the listing on the new session", func(st *discovery.MesosState) bool {
		return st.Leader == b.HostPort() && slices.Equal(addrs(st.Masters), []string{b.HostPort()})
	})
	h.waitWatches(1, "after the session expired")
	c.SetLeader(0)
	register(t, reg, a, false)
	if err := reg.Unregister(nodeB); err != nil {
		t.Fatal(err)
	}
	h.waitMesos("the listing after the watch fired", func(st *discovery.MesosState) bool {
		return st.Leader == a.HostPort() && slices.Equal(addrs(st.Masters), []string{a.HostPort()})
	})
	h.waitWatches(1, "after the next change")
	h.noEmptyState()
}

// zkSessions lists the session ids ZooKeeper's "dump" shows.
func zkSessions(t testing.TB, z *zktest.Server) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", z.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("dump")); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	out := regexp.MustCompile(`(?m)^\s+(0x[0-9a-f]+)\s*$`).FindAllStringSubmatch(string(b), -1)
	ids := make([]string, 0, len(out))
	for _, m := range out {
		ids = append(ids, m[1])
	}
	return ids
}

// waitWatches waits until leader detection has n watches armed. A watch that fires is
// counted off before the next is armed, so the count dips while a change is listed.
func (h *harness) waitWatches(n int64, what string) {
	h.t.Helper()
	ctx := waitCtx(h.t)
	for h.src.det.watches.Load() != n {
		select {
		case <-ctx.Done():
			h.t.Fatalf("%d watches armed %s, want %d", h.src.det.watches.Load(), what, n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
