package dnsserver

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dialFrom opens a TCP connection to addr from the loopback address local. A connection the
// server resets at once (over a cap) may fail already here; it is returned all the same, as a
// connection whose every read and write fails.
func dialFrom(t *testing.T, local, addr string) *dns.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return &dns.Conn{Conn: resetConn{}}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &dns.Conn{Conn: c}
}

// served sends a query on co and reports whether it was answered; false when the server
// closed the connection.
func served(t *testing.T, co *dns.Conn) bool {
	t.Helper()
	co.SetDeadline(time.Now().Add(10 * time.Second))
	if err := co.WriteMsg(newQuery("app-abcde-s1.marathon.mesos.", dns.TypeA, 0)); err != nil {
		return false // reset before the write
	}
	r, err := co.ReadMsg()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("no answer and no close within 10s")
		}
		return false
	}
	return len(r.Answer) == 1
}

// waitClosed waits until the server closes an idle connection (a read ends without data).
func waitConnClosed(t *testing.T, co *dns.Conn) {
	t.Helper()
	co.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b [1]byte
	if _, err := co.Read(b[:]); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection not closed by the server: %v", err)
	}
}

// TestTCPCaps: 50 connections from one client with a cap of 20 a client (30 in all): 20 are
// served, 30 closed at once; the server never holds more than 20 of that client's; another
// client still gets its share, up to the total cap.
func TestTCPCaps(t *testing.T) {
	s := startServer(t, Config{TCP: TCPConfig{MaxConns: 30, MaxConnsPerClient: 20, IdleTimeout: time.Minute}}, testIndex())
	refusedClient := counterValue(t, srvTCPRefused.WithLabelValues("per_client"))
	refusedTotal := counterValue(t, srvTCPRefused.WithLabelValues("total"))

	// Each query is written as soon as its connection is open, so the server reads it within
	// its first-query timeout however slowly the rest goes.
	fdsBefore := openFiles(t)
	var conns []*dns.Conn
	for range 50 {
		co := dialFrom(t, "127.0.0.1", s.Addr())
		co.WriteMsg(newQuery("app-abcde-s1.marathon.mesos.", dns.TypeA, 0))
		conns = append(conns, co)
	}
	answered := 0
	for i, co := range conns {
		co.SetDeadline(time.Now().Add(10 * time.Second))
		r, err := co.ReadMsg()
		switch {
		case err == nil && len(r.Answer) == 1:
			answered++
			if i >= 20 {
				t.Errorf("connection %d answered, want only the first 20", i)
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("connection %d: neither answered nor closed", i)
		}
	}
	if answered != 20 {
		t.Errorf("%d of 50 connections answered, want 20 (the per-client cap)", answered)
	}
	if open, peak := s.tcpLn.counts(); open != 20 || peak != 20 {
		t.Errorf("server holds %d connections (at most %d), want 20", open, peak)
	}
	// The process holds the client's 50 and the server's 20 (and a few of the runtime's),
	// not the server's 50.
	if d := openFiles(t) - fdsBefore; d > 50+20+5 {
		t.Errorf("%d more file descriptors open, want at most %d", d, 50+20+5)
	}
	if d := counterValue(t, srvTCPRefused.WithLabelValues("per_client")) - refusedClient; d != 30 {
		t.Errorf("refused per client: %v, want 30", d)
	}
	// The connections still open keep working: a connection serves any number of queries.
	if !served(t, conns[0]) || !served(t, conns[19]) {
		t.Error("an admitted connection stopped answering")
	}

	// Another client gets the 10 places left of the 30, no more.
	var other []*dns.Conn
	for range 11 {
		co := dialFrom(t, "127.0.0.2", s.Addr())
		co.WriteMsg(newQuery("app-abcde-s1.marathon.mesos.", dns.TypeA, 0))
		other = append(other, co)
	}
	for i, co := range other {
		co.SetDeadline(time.Now().Add(10 * time.Second))
		r, err := co.ReadMsg()
		if ok := err == nil && len(r.Answer) == 1; ok != (i < 10) {
			t.Errorf("second client, connection %d: answered %v, want %v (%v)", i, ok, i < 10, err)
		}
	}
	if d := counterValue(t, srvTCPRefused.WithLabelValues("total")) - refusedTotal; d != 1 {
		t.Errorf("refused over the total: %v, want 1", d)
	}
	// Closing connections gives their places back.
	for _, co := range conns[:5] {
		co.Close()
	}
	waitOpen(t, s, 25)
	if !served(t, dialFrom(t, "127.0.0.2", s.Addr())) {
		t.Error("no place for a new connection after 5 were closed")
	}
}

// waitOpen waits until the server holds n connections (it learns of a client's close on its
// next read, which the close itself ends).
func waitOpen(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, _ := s.tcpLn.counts()
		if open == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server holds %d connections, want %d", open, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTCPIdleTimeout: connections that fill the cap and send nothing are closed after the
// idle timeout; a client is answered again after that.
func TestTCPIdleTimeout(t *testing.T) {
	s := startServer(t, Config{TCP: TCPConfig{MaxConns: 5, MaxConnsPerClient: 5, IdleTimeout: 2 * time.Second}}, testIndex())
	var idle []*dns.Conn
	for range 5 {
		idle = append(idle, dialFrom(t, "127.0.0.1", s.Addr()))
	}
	// Idle connections fill the cap: one more is closed at once.
	if served(t, dialFrom(t, "127.0.0.1", s.Addr())) {
		t.Error("a sixth connection was answered with a cap of 5")
	}
	for _, co := range idle {
		waitConnClosed(t, co)
	}
	waitOpen(t, s, 0)
	if !served(t, dialFrom(t, "127.0.0.1", s.Addr())) {
		t.Error("not answered after the idle connections timed out")
	}
}

// TestTCPConfig: bad caps are refused; the total default comes from the descriptor limit.
func TestTCPConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  TCPConfig
		want string
	}{
		{TCPConfig{}, ""},
		{TCPConfig{MaxConns: -1}, "connection cap -1"},
		{TCPConfig{MaxConnsPerClient: -2}, "per client -2"},
		{TCPConfig{IdleTimeout: -time.Second}, "idle timeout -1s"},
	} {
		_, err := New(Config{ResolvConf: "/nonexistent", TCP: c.cfg})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want one with %q", c.cfg, err, c.want)
		}
	}
	n, ok := fileLimit()
	if !ok {
		t.Fatal("no descriptor limit read")
	}
	if got, want := DefaultTCPMaxConns(), int(min(max(n/4, minTCPMaxConns), maxTCPMaxConns)); got != want || uint64(got) >= n {
		t.Errorf("DefaultTCPMaxConns() = %d with RLIMIT_NOFILE %d, want %d", got, n, want)
	}
	cfg, _ := TCPConfig{IdleTimeout: 500 * time.Millisecond}.withDefaults()
	if cfg.readTimeout() != 500*time.Millisecond {
		t.Errorf("first-query timeout %s with a 500ms idle timeout", cfg.readTimeout())
	}
}

// openFiles counts the process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// resetConn is a connection reset while it was opened.
type resetConn struct{ net.Conn }

func (resetConn) Read([]byte) (int, error)         { return 0, syscall.ECONNRESET }
func (resetConn) Write([]byte) (int, error)        { return 0, syscall.ECONNRESET }
func (resetConn) Close() error                     { return nil }
func (resetConn) SetDeadline(time.Time) error      { return nil }
func (resetConn) SetReadDeadline(time.Time) error  { return nil }
func (resetConn) SetWriteDeadline(time.Time) error { return nil }
