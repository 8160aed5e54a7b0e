package haproxy

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// heldTCP is a TCP frontend whose connections stay open as long as the client keeps them:
// each one pins the worker that accepted it, which stays as an old worker after a reload.
// $MAXRELOADS is an mworker-max-reloads line, or nothing.
const heldTCP = `
global
    $MAXRELOADS

frontend fe
    mode tcp
    bind 127.0.0.1:$PORT
    timeout client 2m
    default_backend be

backend be
    mode tcp
    timeout server 2m
    server s1 $B1
`

// startHeld runs heldTCP with hard-stop-after raised above the test's length (testGlobal's 5s
// would end old workers on their own) and returns the backend's accepted connections.
func startHeld(t *testing.T, maxReloads string) (*testHAProxy, <-chan net.Conn) {
	t.Helper()
	l := listenLoopback(t)
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			accepted <- c
		}
	}()
	h := startHAProxy(t, heldTCP, map[string]string{
		"$B1": l.Addr().String(), "$MAXRELOADS": maxReloads,
		"hard-stop-after 5s": "hard-stop-after 2m",
	})
	return h, accepted
}

// hold opens a client connection through HAProxy and returns once the backend has it, so the
// current worker is known to hold it.
func (h *testHAProxy) hold(accepted <-chan net.Conn) net.Conn {
	h.t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(h.port)))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	select {
	case <-accepted:
	case <-h.ctx().Done():
		h.t.Fatal("HAProxy did not pass the held connection on")
	}
	return c
}

// Issue 12, item 9: lodestar_haproxy_old_workers counts the workers a reload left behind. A
// connection held on each generation keeps two old workers after two reloads.
func TestOldWorkersMetricCountsHeldGenerations(t *testing.T) {
	h, accepted := startHeld(t, "")
	for i := range 2 {
		h.hold(accepted)
		if err := h.proc.Reload(h.ctx()); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
	}
	n, err := h.proc.OldWorkers(h.ctx())
	if err != nil || n != 2 {
		t.Fatalf("OldWorkers = %d, %v; want 2", n, err)
	}
	// The supervisor counts again after each reload, on its own goroutine.
	haproxytest.WaitFor(t, 15*time.Second, func() bool {
		return gathered(t, "lodestar_haproxy_old_workers", nil) == 2
	}, "lodestar_haproxy_old_workers at 2")
}

// mworker-max-reloads (the default template sets 10) bounds old workers by count whatever
// they hold: with 1, the first generation is ended at the second reload and its connection
// closed, and one old worker is left.
func TestMaxReloadsBoundsOldWorkers(t *testing.T) {
	h, accepted := startHeld(t, "mworker-max-reloads 1")
	first := h.hold(accepted)
	if err := h.proc.Reload(h.ctx()); err != nil {
		t.Fatal(err)
	}
	h.hold(accepted)
	if err := h.proc.Reload(h.ctx()); err != nil {
		t.Fatal(err)
	}
	haproxytest.WaitFor(t, 15*time.Second, func() bool {
		n, err := h.proc.OldWorkers(h.ctx())
		return err == nil && n == 1
	}, "one old worker left")
	first.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err == nil {
		t.Fatal("the first generation's connection still carries data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the first generation's connection is still open: its worker was not ended")
	}
}
