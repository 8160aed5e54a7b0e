package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DNS over TCP holds a file descriptor and a goroutine per connection. Unbounded, one client
// opening connections and leaving them idle takes the process to its descriptor limit, and then
// lodestar can open nothing else (12,000 connections from one client reached 19,803 of 20,000
// descriptors). So the listener admits at most MaxConnsPerClient connections from one address
// and MaxConns in all, closing the others as soon as they are accepted, and a connection is
// closed when idle for IdleTimeout.

// Defaults of TCPConfig.
const (
	DefaultTCPMaxConnsPerClient = 128
	DefaultTCPIdleTimeout       = 10 * time.Second
	// firstQueryTimeout bounds the wait for a new connection's first query (miekg/dns's
	// ReadTimeout), when IdleTimeout is longer.
	firstQueryTimeout = 2 * time.Second
	// The total default is a quarter of the descriptor limit, within these bounds.
	minTCPMaxConns = 64
	maxTCPMaxConns = 16384
)

// TCPConfig bounds the DNS server's TCP connections.
type TCPConfig struct {
	// MaxConns bounds the open connections in all (default DefaultTCPMaxConns()).
	MaxConns int
	// MaxConnsPerClient bounds the open connections from one client address (default 128).
	MaxConnsPerClient int
	// IdleTimeout closes a connection that sends no further query for this long (default 10s).
	// A new connection's first query must come within it too, and within 2s.
	IdleTimeout time.Duration
}

// DefaultTCPMaxConns is the default total cap: a quarter of the process's file descriptor
// limit (RLIMIT_NOFILE), at least 64 and at most 16384.
func DefaultTCPMaxConns() int {
	n, ok := fileLimit()
	if !ok {
		return 1024
	}
	return int(min(max(n/4, minTCPMaxConns), maxTCPMaxConns))
}

func (c TCPConfig) withDefaults() (TCPConfig, error) {
	if c.MaxConns == 0 {
		c.MaxConns = DefaultTCPMaxConns()
	}
	if c.MaxConnsPerClient == 0 {
		c.MaxConnsPerClient = DefaultTCPMaxConnsPerClient
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultTCPIdleTimeout
	}
	var errs []error
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("DNS TCP connection cap %d: want 1 or more", c.MaxConns))
	}
	if c.MaxConnsPerClient < 1 {
		errs = append(errs, fmt.Errorf("DNS TCP connection cap per client %d: want 1 or more", c.MaxConnsPerClient))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("DNS TCP idle timeout %s: want more than 0", c.IdleTimeout))
	}
	return c, errors.Join(errs...)
}

// readTimeout is the wait for a connection's first query.
func (c TCPConfig) readTimeout() time.Duration { return min(c.IdleTimeout, firstQueryTimeout) }

// capListener admits connections within the caps and closes the others on accept.
type capListener struct {
	net.Listener
	total, perClient int

	mu       sync.Mutex
	open     int
	peak     int                // the most open at once
	byClient map[netip.Addr]int // only clients with open connections: at most total entries
}

func newCapListener(ln net.Listener, cfg TCPConfig) *capListener {
	return &capListener{Listener: ln, total: cfg.MaxConns, perClient: cfg.MaxConnsPerClient, byClient: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps. Connections over a cap are closed
// (with a reset, so no TIME_WAIT state piles up) and counted; Accept then waits for the next.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		srvTCPConns.Inc()
		var ip netip.Addr
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip = a.AddrPort().Addr().Unmap()
		}
		if reason := l.admit(ip); reason != "" {
			srvTCPRefused.WithLabelValues(reason).Inc() // before the client can see the close
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		return &cappedConn{Conn: c, l: l, ip: ip}, nil
	}
}

// admit counts a new connection from ip, or says which cap it is over.
func (l *capListener) admit(ip netip.Addr) (overCap string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.total:
		return "total"
	case l.byClient[ip] >= l.perClient:
		return "per_client"
	}
	l.open++
	l.peak = max(l.peak, l.open)
	l.byClient[ip]++
	srvTCPOpen.Set(float64(l.open))
	return ""
}

func (l *capListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byClient[ip]--; l.byClient[ip] <= 0 {
		delete(l.byClient, ip)
	}
	srvTCPOpen.Set(float64(l.open))
}

// counts returns the admitted connections not yet closed, and the most there were at once.
func (l *capListener) counts() (open, peak int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.peak
}

// cappedConn gives its place back when closed (once, however often Close is called).
type cappedConn struct {
	net.Conn
	l    *capListener
	ip   netip.Addr
	once sync.Once
}

// Close closes the connection and frees its place.
func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
