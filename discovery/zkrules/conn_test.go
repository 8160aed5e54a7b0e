package zkrules

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/logtest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// A restarting ZooKeeper that accepts a connection and never answers its connect request
// must not hold the Source's calls: the connection is abandoned after the handshake timeout,
// and once ZooKeeper serves, a write succeeds within a few new connections. (go-zookeeper
// alone waits ten times its receive timeout, 66 s at the default 10 s session, and the calls
// queued behind it then fail with "could not connect to a server".)
func TestUnansweredConnectionIsAbandoned(t *testing.T) {
	srv := zktest.Start(t)
	logger, logs := logtest.New()
	src, err := New(Config{URL: srv.URL(testPath(t)), SessionTimeout: DefaultSessionTimeout, ConnectWait: waitTimeout, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int64
	src.sess.dial = func(network, address string, timeout time.Duration) (net.Conn, error) {
		dials.Add(1)
		return net.DialTimeout(network, address, timeout)
	}
	t.Cleanup(func() {
		_ = src.Close()
		if t.Failed() {
			t.Logf("log of the source:\n%s", logs.Tail(6000))
		}
	})
	if err := src.Put(waitCtx(t), rule("/a", "hdr(host) -i a")); err != nil {
		t.Fatal(err)
	}

	// ZooKeeper goes; on its port, something accepts connections and never answers, as a
	// ZooKeeper did while it restarted under load.
	srv.Stop()
	silent, err := net.Listen("tcp", srv.Addr())
	if err != nil {
		t.Fatalf("taking ZooKeeper's port: %v", err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var held net.Conn
	select {
	case held = <-accepted:
		defer held.Close()
	case <-waitCtx(t).Done():
		t.Fatal("the Source never connected to the silent listener")
	}
	silent.Close()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	before := dials.Load()

	if err := src.Put(waitCtx(t), rule("/b", "hdr(host) -i b")); err != nil {
		t.Fatalf("Put once ZooKeeper is back: %v", err)
	}
	// The client gave the unanswered connection up: it closed it (EOF), no deadline of ours.
	_ = held.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.Copy(io.Discard, held); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the Source still holds the connection ZooKeeper never answered")
	}
	// One connection suffices once ZooKeeper serves; a few more if one reached it while it
	// was still starting.
	if n := dials.Load() - before; n > 4 {
		t.Errorf("%d connections before a write succeeded once ZooKeeper was back, want at most 4", n)
	}
}

// handshakeTimeout: half the session, at most 5 s.
func TestHandshakeTimeout(t *testing.T) {
	for session, want := range map[time.Duration]time.Duration{
		time.Second: 500 * time.Millisecond, 4 * time.Second: 2 * time.Second, 10 * time.Second: 5 * time.Second, time.Minute: 5 * time.Second,
	} {
		if got := handshakeTimeout(session); got != want {
			t.Errorf("handshakeTimeout(%s) = %s, want %s", session, got, want)
		}
	}
}

// handshakeConn holds go-zookeeper's deadlines to the handshake's until the whole answer (one
// length-prefixed packet, however the reads split it) has been read, and then leaves them be.
// An answer that announces more than the server sends keeps the handshake's deadline.
func TestHandshakeConnDeadlines(t *testing.T) {
	answer := []byte{0, 0, 0, 3, 'a', 'b', 'c'}
	for name, tc := range map[string]struct {
		reads [][]byte
		done  bool
	}{
		"one read":                 {[][]byte{answer}, true},
		"header split":             {[][]byte{answer[:2], answer[2:5], answer[5:]}, true},
		"byte by byte":             {[][]byte{answer[:1], answer[1:2], answer[2:3], answer[3:4], answer[4:5], answer[5:6], answer[6:]}, true},
		"body short":               {[][]byte{answer[:6]}, false},
		"announces 4 GiB, sends 3": {[][]byte{{0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c'}}, false},
	} {
		deadline := time.Now().Add(time.Hour)
		end, other := net.Pipe()
		defer end.Close()
		defer other.Close()
		c := &handshakeConn{Conn: end, deadline: deadline}
		go func() {
			for _, r := range tc.reads {
				if _, err := other.Write(r); err != nil {
					return
				}
			}
		}()
		for _, r := range tc.reads {
			if _, err := io.ReadFull(c, make([]byte, len(r))); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if c.done.Load() != tc.done {
			t.Errorf("%s: done = %v, want %v", name, c.done.Load(), tc.done)
		}
		later := deadline.Add(time.Hour)
		want := map[bool][2]time.Time{false: {deadline, deadline}, true: {{}, later}}[tc.done]
		if got := c.clamp(time.Time{}); !got.Equal(want[0]) {
			t.Errorf("%s: clamp(no deadline) = %v, want %v", name, got, want[0])
		}
		if got := c.clamp(later); !got.Equal(want[1]) {
			t.Errorf("%s: clamp(later) = %v, want %v", name, got, want[1])
		}
		if sooner := deadline.Add(-time.Minute); !c.clamp(sooner).Equal(sooner) {
			t.Errorf("%s: a deadline sooner than the handshake's was moved", name)
		}
	}
}
