package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Forwarded queries share a few connected UDP sockets per upstream. Each socket has one reader
// goroutine, which matches an answer to its query by the random ID the query went out with and
// its question, and hands it on; the deadlines of all queries (the stagger before asking the
// next upstream, the timeout) are kept by one sweeper goroutine on a wheel of 5 ms slots. So a
// forwarded query costs no socket, goroutine or timer of its own.

// maxPendingPerSocket bounds the queries waiting on one upstream socket: IDs stay easy to draw
// and hard to guess.
const maxPendingPerSocket = 16384

// upstreamReadBuffer is the receive buffer asked for each upstream socket.
const upstreamReadBuffer = 1 << 20

// wheelTick is the resolution of forwarding deadlines.
const wheelTick = 5 * time.Millisecond

var (
	errUpstreamBusy   = errors.New("too many queries waiting for this upstream")
	errUpstreamClosed = errors.New("forwarder stopped")
	errUpstreamTime   = errors.New("no usable answer in time")
)

// upstreamSocketsPer is how many sockets each upstream gets: one per CPU, within [2, 8].
func upstreamSocketsPer() int { return min(max(runtime.NumCPU(), 2), 8) }

// upstreamPool is the sockets to one upstream, dialled on first use.
type upstreamPool struct {
	addr string
	// duration is the upstream's upstream_duration_seconds, looked up once.
	duration prometheus.Observer
	socks    atomic.Pointer[[]*upstreamSocket]
	next     atomic.Uint32
	// rotateAfter is how many queries a socket sends before a fresh one (a new source port)
	// takes its place; retireAfter is how long the old one still reads answers.
	rotateAfter uint32
	retireAfter time.Duration

	mu     sync.Mutex // dialling, rotating and closing
	closed bool
}

// upstreamSocket is one connected UDP socket and the queries waiting for answers on it.
type upstreamSocket struct {
	addr    string
	conn    *net.UDPConn
	sent    atomic.Uint32
	mu      sync.Mutex
	pending map[uint16]pendingSend
}

// rotateAfter's default. A spoofed answer must hit the source port as well as the ID and the
// question; a port that lasts a bounded number of queries bounds what an attacker can learn
// of it and try against it.
const defaultRotateAfter = 20000

// pendingSend is a query sent to upstream number up of fq.
type pendingSend struct {
	fq *fwdQuery
	up int
}

// newUpstreamPool returns the pool of addr; its sockets are retired timeout after their last
// query could have been sent.
func newUpstreamPool(addr string, timeout time.Duration) *upstreamPool {
	return &upstreamPool{addr: addr, duration: srvUpstreamDuration.WithLabelValues(addr),
		rotateAfter: defaultRotateAfter, retireAfter: timeout + time.Second}
}

// socket returns one of the pool's sockets, in turn, dialling them first.
func (p *upstreamPool) socket() (*upstreamSocket, error) {
	socks := p.socks.Load()
	if socks == nil {
		var err error
		if socks, err = p.dial(); err != nil {
			return nil, err
		}
	}
	i := p.next.Add(1) % uint32(len(*socks))
	s := (*socks)[i]
	if s.sent.Add(1) == p.rotateAfter {
		p.rotate(int(i), s)
	}
	return s, nil
}

// rotate puts a fresh socket in place of old, at index i. The old one keeps reading answers
// to what was sent on it until retireAfter, then closes. A rotation that cannot dial keeps the
// old socket.
func (p *upstreamPool) rotate(i int, old *upstreamSocket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.socks.Load()
	if p.closed || cur == nil || (*cur)[i] != old {
		return
	}
	fresh, err := p.open()
	if err != nil {
		old.sent.Store(0) // try again later
		return
	}
	socks := slices.Clone(*cur)
	socks[i] = fresh
	go fresh.read()
	p.socks.Store(&socks)
	time.AfterFunc(p.retireAfter, func() { old.conn.Close() })
}

// open dials one socket to the upstream.
func (p *upstreamPool) open() (*upstreamSocket, error) {
	c, err := net.Dial("udp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("opening a socket to upstream %s: %w", p.addr, err)
	}
	uc := c.(*net.UDPConn)
	// Answers to a burst of queries arrive together: room for them, not drops.
	uc.SetReadBuffer(upstreamReadBuffer)
	return &upstreamSocket{addr: p.addr, conn: uc, pending: map[uint16]pendingSend{}}, nil
}

func (p *upstreamPool) dial() (*[]*upstreamSocket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errUpstreamClosed
	}
	if socks := p.socks.Load(); socks != nil {
		return socks, nil
	}
	var socks []*upstreamSocket
	for range upstreamSocketsPer() {
		s, err := p.open()
		if err != nil {
			for _, s := range socks {
				s.conn.Close()
			}
			return nil, err
		}
		socks = append(socks, s)
	}
	for _, s := range socks {
		go s.read()
	}
	p.socks.Store(&socks)
	return &socks, nil
}

// close closes the sockets; their readers end, and queries still waiting are failed by the
// sweeper, which calls this.
func (p *upstreamPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if socks := p.socks.Load(); socks != nil {
		for _, s := range *socks {
			s.conn.Close()
		}
	}
}

// send sends fq's query to the upstream under a fresh random ID. The caller holds fq.mu.
func (s *upstreamSocket) send(fq *fwdQuery, up int) error {
	s.mu.Lock()
	if len(s.pending) >= maxPendingPerSocket {
		s.mu.Unlock()
		return errUpstreamBusy
	}
	var id uint16
	for {
		id = uint16(rand.Uint32())
		if _, used := s.pending[id]; !used {
			break
		}
	}
	s.pending[id] = pendingSend{fq: fq, up: up}
	s.mu.Unlock()
	binary.BigEndian.PutUint16(fq.pkt, id)
	if _, err := s.conn.Write(fq.pkt); err != nil {
		s.forget(id, fq)
		return err
	}
	fq.out = append(fq.out, sendRef{sock: s, id: id, up: up, at: time.Now()})
	return nil
}

// forget drops the pending query id, if it is still fq's: a late answer is then ignored.
func (s *upstreamSocket) forget(id uint16, fq *fwdQuery) {
	s.mu.Lock()
	if p, ok := s.pending[id]; ok && p.fq == fq {
		delete(s.pending, id)
	}
	s.mu.Unlock()
}

// read is the socket's reader: it takes answers, matches each to its query by ID and
// question, and hands it over. An answer whose ID is not pending, or whose question is not
// the query's, is dropped and the query waits on (a spoofed or stray answer cannot end it).
func (s *upstreamSocket) read() {
	buf := make([]byte, maxTCPSize)
	var info answerInfo
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				// ICMP port unreachable: nothing listens there. It names no query: every
				// query waiting on this socket fails over to its next upstream.
				s.failAll(err)
			}
			continue
		}
		msg := buf[:n]
		if n < headerLen {
			srvUpstreamStray.WithLabelValues(s.addr, "malformed").Inc()
			continue
		}
		id := binary.BigEndian.Uint16(msg)
		s.mu.Lock()
		p, ok := s.pending[id]
		match := ok && questionIs(msg, &p.fq.q)
		if match {
			delete(s.pending, id)
		}
		s.mu.Unlock()
		switch {
		case !ok:
			srvUpstreamStray.WithLabelValues(s.addr, "unknown_id").Inc()
		case !match:
			srvUpstreamStray.WithLabelValues(s.addr, "question").Inc()
		default:
			p.fq.answered(p.up, msg, &info)
		}
	}
}

// failAll fails every query waiting on the socket.
func (s *upstreamSocket) failAll(err error) {
	s.mu.Lock()
	pending := s.pending
	s.pending = make(map[uint16]pendingSend, len(pending))
	s.mu.Unlock()
	for _, p := range pending {
		p.fq.failed(p.up, "error", fmt.Errorf("upstream %s: %w", s.addr, err))
	}
}

// fwdWheel keeps the deadlines of forwarded queries in slots of wheelTick; one sweeper
// goroutine (run) fires them. A query sits in one slot at a time, at or before its next
// deadline; firing it decides what is due and puts it back.
type fwdWheel struct {
	base  time.Time
	mu    sync.Mutex
	slots [][]*fwdQuery
	cur   int64 // the next tick to fire
	count int
	// closed: the forwarder stopped; nothing more is scheduled.
	closed bool
	wake   chan struct{}
}

// maxWheelSlots bounds the wheel (20 s at wheelTick): a later deadline fires at the last slot
// and is put back, so a long --dns-upstream-timeout costs a few more sweeps, not memory.
const maxWheelSlots = 4096

// newFwdWheel returns a wheel for deadlines up to horizon ahead.
func newFwdWheel(horizon time.Duration) *fwdWheel {
	n := min(int(horizon/wheelTick)+2, maxWheelSlots)
	return &fwdWheel{base: time.Now(), slots: make([][]*fwdQuery, n), wake: make(chan struct{}, 1)}
}

func (w *fwdWheel) tick(t time.Time) int64 { return int64(t.Sub(w.base) / wheelTick) }

// schedule fires fq at about at (not before). It returns false once the wheel is closed.
func (w *fwdWheel) schedule(fq *fwdQuery, at time.Time) bool {
	t := w.tick(at) + 1
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	// Past the horizon: fire early; the query is put back.
	t = min(max(t, w.cur), w.cur+int64(len(w.slots))-1)
	i := t % int64(len(w.slots))
	fq.wheelTick, fq.wheelIdx = t, len(w.slots[i])
	w.slots[i] = append(w.slots[i], fq)
	if w.count++; w.count == 1 {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// cancel takes fq, which has ended, off the wheel: a query answered in a millisecond is not
// kept until its deadline (two seconds of queries, at 100,000 a second, would be 200,000).
func (w *fwdWheel) cancel(fq *fwdQuery) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if fq.wheelTick < w.cur {
		return // its slot was taken: it is being fired, or was
	}
	slot := w.slots[fq.wheelTick%int64(len(w.slots))]
	if fq.wheelIdx < len(slot) && slot[fq.wheelIdx] == fq {
		slot[fq.wheelIdx] = nil
		w.count--
	}
}

// run fires due queries until done is closed, then closes the wheel and stops every query
// still on it.
func (w *fwdWheel) run(done <-chan struct{}) {
	timer := time.NewTimer(wheelTick)
	defer timer.Stop()
	var due []*fwdQuery
	for {
		w.mu.Lock()
		idle := w.count == 0
		if idle {
			w.cur = w.tick(time.Now())
		}
		w.mu.Unlock()
		wait := w.wake
		if !idle {
			timer.Reset(wheelTick)
			wait = nil
		}
		select {
		case <-done:
			w.stopAll()
			return
		case <-wait:
			continue
		case <-timer.C:
		}
		now := time.Now()
		due = w.takeDue(due[:0], w.tick(now))
		for i, fq := range due {
			fq.fire(now)
			due[i] = nil
		}
	}
}

// takeDue appends the queries of every slot up to tick now.
func (w *fwdWheel) takeDue(due []*fwdQuery, now int64) []*fwdQuery {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ; w.cur <= now; w.cur++ {
		i := w.cur % int64(len(w.slots))
		for _, fq := range w.slots[i] {
			if fq != nil {
				due = append(due, fq)
				w.count--
			}
		}
		clear(w.slots[i])
		w.slots[i] = w.slots[i][:0]
	}
	return due
}

func (w *fwdWheel) stopAll() {
	w.mu.Lock()
	w.closed = true
	var all []*fwdQuery
	for i, s := range w.slots {
		for _, fq := range s {
			if fq != nil {
				all = append(all, fq)
			}
		}
		w.slots[i] = nil
	}
	w.count = 0
	w.mu.Unlock()
	for _, fq := range all {
		fq.stop()
	}
}
