package zktest

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

func TestMain(m *testing.M) { Main(m) }

// TestStopStartKeepsData writes a node, stops ZooKeeper, starts it again on the same port and
// reads the node back.
func TestStopStartKeepsData(t *testing.T) {
	s := Start(t)
	if !s.Ready() {
		t.Fatal("ZooKeeper does not answer ruok after Start")
	}
	conn := connect(t, s)
	if _, err := conn.Create("/kept", []byte("v1"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create: %v", err)
	}
	conn.Close()

	s.Stop()
	if s.Ready() {
		t.Fatal("ZooKeeper still answers ruok after Stop")
	}
	s.Stop() // idempotent
	if err := s.Start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start of a running server: want an error")
	}
	conn = connect(t, s)
	defer conn.Close()
	data, _, err := conn.Get("/kept")
	if err != nil || string(data) != "v1" {
		t.Fatalf("after restart: get /kept = %q, %v; want v1", data, err)
	}
}

// TestSharedIsOneInstance: every caller gets the same running server.
func TestSharedIsOneInstance(t *testing.T) {
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatalf("Shared returned two servers: %s and %s", a.Addr(), b.Addr())
	}
	if !a.Ready() {
		t.Fatal("shared ZooKeeper does not answer ruok")
	}
	if got, want := a.URL("/mesos"), "zk://"+a.Addr()+"/mesos"; got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
}

func connect(t *testing.T, s *Server) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(s.Servers(), 5*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-timeout:
			conn.Close()
			t.Fatalf("no ZooKeeper session with %s", s.Addr())
		}
	}
}

// TestStartIsReadyForSessions: once Start (and Start after Stop) returns, the first connection
// a client makes gets a session. ZooKeeper answers ruok before it serves sessions, so
// readiness cannot be ruok alone.
func TestStartIsReadyForSessions(t *testing.T) {
	s := Start(t)
	firstAttemptSession(t, s.Addr())
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
	firstAttemptSession(t, s.Addr())
}

// TestEnsembleIsReadyForSessions: once StartEnsemble returns, each member gives a session on
// the first connection.
func TestEnsembleIsReadyForSessions(t *testing.T) {
	e := StartEnsemble(t, 3)
	for _, addr := range e.Servers() {
		firstAttemptSession(t, addr)
	}
}

// firstAttemptSession connects to addr alone and fails t unless the first connection gets a
// session: a connection that is dropped (and retried) before one is a failure.
func firstAttemptSession(t *testing.T, addr string) {
	t.Helper()
	var dials atomic.Int32
	dialer := func(network, address string, timeout time.Duration) (net.Conn, error) {
		dials.Add(1)
		return net.DialTimeout(network, address, timeout)
	}
	conn, events, err := zk.Connect([]string{addr}, 5*time.Second, zk.WithDialer(dialer), zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			switch ev.State {
			case zk.StateHasSession:
				if n := dials.Load(); n != 1 {
					t.Fatalf("%s: a session on connection %d, want on the first", addr, n)
				}
				return
			case zk.StateDisconnected, zk.StateExpired:
				t.Fatalf("%s: first connection %s before a session (%d dials)", addr, ev.State, dials.Load())
			}
		case <-timeout:
			t.Fatalf("%s: no session (%d dials)", addr, dials.Load())
		}
	}
}
