package zkrules

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// session is the one ZooKeeper connection that Run and the writer methods share. It is
// opened on first use (zk.Connect returns at once and connects in the background; calls
// wait for the connection) and opened again on the next use after close.
type session struct {
	target  target
	timeout time.Duration
	log     *slog.Logger
	// dial opens the TCP connections (net.DialTimeout; tests count them).
	dial zk.Dialer

	mu   sync.Mutex
	conn *zk.Conn
	// gen counts connections; the session events of a connection that is no longer the
	// current one are ignored.
	gen uint64
	up  bool
	// down says why the connection is down, nil while up or before the first attempt.
	down error
	// sessions counts the sessions established, one per (re)connection: a change tells Run
	// to read everything again.
	sessions uint64
	// changed holds one pending signal (latest wins) that up, down or sessions changed.
	changed chan struct{}

	// authMu serialises digest authentication; authed is the gen of the connection that
	// has the credentials (go-zookeeper sends them again on every reconnection).
	authMu sync.Mutex
	authed uint64
}

func newSession(t target, timeout time.Duration, log *slog.Logger) *session {
	return &session{target: t, timeout: timeout, log: log, dial: net.DialTimeout, changed: make(chan struct{}, 1)}
}

// get returns the connection, opening it if there is none (unless ctx has ended), and its
// gen. ctx is checked under the lock that close takes: Run closes the connection once its
// context has ended, so a call of Run's that races that close fails rather than opening a
// new session on Run's way out.
func (s *session) get(ctx context.Context) (*zk.Conn, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return s.conn, s.gen, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	s.gen++
	gen := s.gen
	conn, _, err := zk.Connect(s.target.servers, s.timeout,
		zk.WithHostProvider(&serverRing{}),
		zk.WithDialer(s.dialHandshake),
		zk.WithLogInfo(false),
		zk.WithLogger(zkLogger{s.log}),
		// The callback, unlike the event channel, never drops an event.
		zk.WithEventCallback(func(ev zk.Event) { s.event(gen, ev) }))
	if err != nil {
		return nil, 0, err
	}
	s.conn = conn
	return conn, gen, nil
}

// ready returns the connection, authenticated when the URL carries credentials. It blocks
// while the connection is being established (a failure to reach any server ends it). It
// opens no connection once ctx has ended.
func (s *session) ready(ctx context.Context) (*zk.Conn, error) {
	conn, gen, err := s.get(ctx)
	if err != nil || s.target.auth == "" {
		return conn, err
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.authed == gen {
		return conn, nil
	}
	if err := conn.AddAuth("digest", []byte(s.target.auth)); err != nil {
		return nil, fmt.Errorf("digest authentication as %q: %w", s.target.user, err)
	}
	s.authed = gen
	return conn, nil
}

// dialHandshake is go-zookeeper's dialer: a connection whose connect handshake must be done
// within handshakeTimeout(s.timeout) (see handshakeConn).
func (s *session) dialHandshake(network, address string, timeout time.Duration) (net.Conn, error) {
	c, err := s.dial(network, address, timeout)
	if err != nil {
		return nil, err
	}
	hc := &handshakeConn{Conn: c, deadline: time.Now().Add(handshakeTimeout(s.timeout))}
	// The handshake starts with a write: bound it as well.
	if err := hc.Conn.SetDeadline(hc.deadline); err != nil {
		c.Close()
		return nil, err
	}
	return hc, nil
}

// close closes the connection, if one is open. Calls in flight on it fail at once.
func (s *session) close() {
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.gen++
	wasUp := s.up
	s.up = false
	s.mu.Unlock()
	if wasUp {
		zkUp.Set(0)
	}
	if conn != nil {
		conn.Close()
	}
}

// status returns whether a session is up, why not, and how many sessions there were.
func (s *session) status() (up bool, sessions uint64, down error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up, s.sessions, s.down
}

// event is go-zookeeper's event callback. It must not block.
func (s *session) event(gen uint64, ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	s.mu.Lock()
	if gen != s.gen {
		s.mu.Unlock()
		return
	}
	switch ev.State {
	case zk.StateHasSession:
		s.up, s.down = true, nil
		s.sessions++
	case zk.StateDisconnected:
		s.up, s.down = false, errors.New("connection lost")
	case zk.StateExpired:
		s.up, s.down = false, errors.New("session expired")
		// Its watches are gone with it: the next session reads every rule again.
		s.log.Info("ZooKeeper session expired; starting a new one", "zk", s.target.where())
	case zk.StateAuthFailed:
		s.up, s.down = false, errors.New("authentication failed")
	default:
		s.mu.Unlock()
		return
	}
	up := s.up
	s.mu.Unlock()
	zkUp.Set(boolFloat(up))
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// handshakeTimeout bounds how long ZooKeeper may take to answer a connect request: half the
// session timeout, at most 5 s. A server answers in milliseconds (a new session costs it one
// log write); one that has not answered by then is abandoned for a new connection.
func handshakeTimeout(session time.Duration) time.Duration {
	return min(session/2, 5*time.Second)
}

// handshakeConn is a connection to ZooKeeper whose connect handshake (the connect request and
// its answer, one length-prefixed packet) must be done by deadline; its deadlines are
// go-zookeeper's once the answer has been read.
//
// go-zookeeper waits ten times its receive timeout for that answer: 66 s at a 10 s session.
// A ZooKeeper restarting under load accepted a connection it then never answered, so every
// call made meanwhile, queued behind that connection, waited over a minute and then failed
// with zk.ErrNoServer, although ZooKeeper had been serving new clients all along.
//
// Read and the deadline setters are called by go-zookeeper's connection loop, then (once done)
// by its receive and send loops, which it starts after the handshake.
type handshakeConn struct {
	net.Conn
	deadline time.Time
	done     atomic.Bool
	header   [4]byte // the answer's length prefix
	read     int     // bytes of the answer read
}

// Read counts the bytes of the handshake's answer; once it has been read, the connection
// gets go-zookeeper's deadlines only.
func (c *handshakeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.done.Load() {
		c.count(p[:n])
	}
	return n, err
}

func (c *handshakeConn) count(b []byte) {
	for len(b) > 0 && c.read < len(c.header) {
		c.header[c.read] = b[0]
		c.read++
		b = b[1:]
	}
	if c.read < len(c.header) {
		return
	}
	c.read += len(b)
	if c.read-len(c.header) >= int(binary.BigEndian.Uint32(c.header[:])) {
		c.done.Store(true)
		// go-zookeeper cleared its deadlines after the handshake: clear the handshake's.
		_ = c.Conn.SetDeadline(time.Time{})
	}
}

// clamp holds a deadline go-zookeeper sets during the handshake to the handshake's.
func (c *handshakeConn) clamp(t time.Time) time.Time {
	if !c.done.Load() && (t.IsZero() || t.After(c.deadline)) {
		return c.deadline
	}
	return t
}

func (c *handshakeConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }

func (c *handshakeConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *handshakeConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

// serverRing is a zk.HostProvider that tries the servers in turn and leaves name resolution
// to the dialer. go-zookeeper's default provider resolves every name once, in zk.Connect,
// and fails there if any one does not resolve; with this one such a member counts as down
// and is tried again on the next round.
type serverRing struct {
	mu      sync.Mutex
	servers []string
	next    int
	tried   int // servers tried since the last connection or the last full round
}

// Init implements zk.HostProvider.
func (r *serverRing) Init(servers []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(servers) == 0 {
		return errors.New("no ZooKeeper server")
	}
	r.servers = slices.Clone(servers)
	return nil
}

// Len implements zk.HostProvider.
func (r *serverRing) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.servers)
}

// Next implements zk.HostProvider. retryStart is true when every server has been tried
// without a connection; go-zookeeper then fails the calls waiting to be sent (with
// zk.ErrNoServer) and pauses a second.
func (r *serverRing) Next() (server string, retryStart bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	server = r.servers[r.next]
	r.next = (r.next + 1) % len(r.servers)
	r.tried++
	if r.tried > len(r.servers) {
		r.tried = 1
		retryStart = true
	}
	return server, retryStart
}

// Connected implements zk.HostProvider.
func (r *serverRing) Connected() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tried = 0
}

// zkLogger sends go-zookeeper's own log lines (connection chatter) to debug level.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug("zookeeper: " + fmt.Sprintf(format, args...))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
