package zktest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a ZooKeeper. It can cut its connections and
// refuse new ones, to take ZooKeeper away from one client while ZooKeeper keeps running (and
// keeps the client's session, unless it is kept away for longer than the session timeout).
// Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	paused bool
	conns  []net.Conn
}

// StartProxy starts a Proxy to target ("host:port") and closes it when t ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("zktest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.Pause()
	})
	return p
}

// Addr is the proxy's "127.0.0.1:port", to give clients instead of ZooKeeper's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// serve pipes c to the target, or closes it while paused.
func (p *Proxy) serve(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.conns = append(p.conns, c, up)
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	go func() { _, _ = io.Copy(c, up); c.Close() }()
}

// Pause closes every connection and refuses new ones until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	p.closeLocked()
}

// Resume accepts connections again after Pause.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
}

// Cut closes every connection and keeps accepting new ones: clients reconnect at once, to
// the same session.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
}

func (p *Proxy) closeLocked() {
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
