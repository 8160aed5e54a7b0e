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
