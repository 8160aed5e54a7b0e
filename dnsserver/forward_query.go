package dnsserver

import (
	"fmt"
	"sync"
	"time"
)

// fwdQuery is one forwarded query on its way through the upstreams: asked of the first, of
// the next when one fails or the stagger passes (see forwarder), until a usable answer comes
// back or the timeout passes. Its events come from the upstream sockets' readers (answers,
// refusals) and the wheel's sweeper (deadlines); mu orders them, and finish is called once.
type fwdQuery struct {
	f   *forwarder
	q   query  // the question: q.qname points into pkt
	pkt []byte // the query as sent upstream; its ID is rewritten per send
	ups []string
	// finish gets the winning answer (valid only during the call; info as readAnswer read
	// it) and the upstream's index, or an error. It is called once, with no lock held.
	finish func(msg []byte, info *answerInfo, up int, err error)

	stagger   time.Duration
	deadline  time.Time
	staggerAt time.Time

	// wheelTick and wheelIdx are where the query sits on the wheel (guarded by the wheel's
	// lock).
	wheelTick int64
	wheelIdx  int

	mu      sync.Mutex
	done    bool
	next    int       // the next upstream to ask
	out     []sendRef // queries out and not answered
	lastErr error
}

// sendRef is a query out to upstream number up, on sock under id, since at.
type sendRef struct {
	sock *upstreamSocket
	id   uint16
	up   int
	at   time.Time
}

// start asks the first upstream and puts the query on the wheel.
func (fq *fwdQuery) start(now time.Time) {
	fq.ups = fq.f.ordered(fq.ups)
	fq.deadline = now.Add(fq.f.timeout)
	fq.stagger = min(maxStagger, fq.f.timeout/time.Duration(len(fq.ups)+1))
	fq.mu.Lock()
	fq.launch(now)
	if fq.endIfExhausted() {
		return
	}
	if !fq.f.wheel.schedule(fq, fq.nextEvent()) {
		fq.end(-1, errUpstreamClosed)
		return
	}
	fq.mu.Unlock()
}

// launch asks the next upstream that takes the query. The caller holds mu.
func (fq *fwdQuery) launch(now time.Time) {
	for fq.next < len(fq.ups) {
		up := fq.next
		fq.next++
		fq.staggerAt = now.Add(fq.stagger)
		sock, err := fq.f.pools[fq.ups[up]].socket()
		if err == nil {
			err = sock.send(fq, up)
		}
		if err == nil {
			return
		}
		srvUpstreamFailures.WithLabelValues(fq.ups[up], "error").Inc()
		fq.f.demote(fq.ups[up])
		fq.lastErr = fmt.Errorf("upstream %s: %w", fq.ups[up], err)
	}
}

// nextEvent is when the query must next be looked at.
func (fq *fwdQuery) nextEvent() time.Time {
	if fq.next < len(fq.ups) && fq.staggerAt.Before(fq.deadline) {
		return fq.staggerAt
	}
	return fq.deadline
}

// endIfExhausted ends the query when no upstream is left to ask or to wait for. The caller
// holds mu; it is released when the query ends.
func (fq *fwdQuery) endIfExhausted() bool {
	if len(fq.out) > 0 || fq.next < len(fq.ups) {
		return false
	}
	fq.end(-1, fq.lastErr)
	return true
}

// end marks the query done, forgets what is still out, releases mu and calls finish with an
// error (up < 0) or nothing (the winner calls finish itself).
func (fq *fwdQuery) end(up int, err error) {
	fq.done = true
	out := fq.out
	fq.out = nil
	fq.mu.Unlock()
	fq.f.wheel.cancel(fq)
	for _, o := range out {
		if o.up != up {
			o.sock.forget(o.id, fq)
		}
	}
	if up < 0 {
		fq.finish(nil, nil, -1, err)
	}
}

// takeOut removes and returns the query out to upstream up.
func (fq *fwdQuery) takeOut(up int) (sendRef, bool) {
	for i, o := range fq.out {
		if o.up == up {
			fq.out = append(fq.out[:i], fq.out[i+1:]...)
			return o, true
		}
	}
	return sendRef{}, false
}

// answered takes upstream up's answer msg (its ID and question already matched). A failure
// rcode or a malformed answer moves on to the next upstream; anything else wins.
func (fq *fwdQuery) answered(up int, msg []byte, info *answerInfo) {
	err := readAnswer(msg, &fq.q, info)
	fq.mu.Lock()
	if fq.done {
		fq.mu.Unlock()
		return
	}
	ref, ok := fq.takeOut(up)
	if !ok {
		fq.mu.Unlock()
		return
	}
	addr := fq.ups[up]
	fq.f.pools[addr].duration.Observe(time.Since(ref.at).Seconds())
	reason := ""
	switch {
	case err != nil:
		reason, err = "malformed", fmt.Errorf("upstream %s: %w", addr, err)
	case info.rcode == rcodeFail || info.rcode == rcodeRefuse || info.rcode == 4 || info.rcode == 1 || info.rcode > 15:
		// SERVFAIL, REFUSED, NOTIMP, FORMERR, an extended rcode: ask the next upstream.
		reason, err = "rcode", fmt.Errorf("upstream %s: rcode %d", addr, info.rcode)
	}
	if reason != "" {
		fq.failedLocked(up, reason, err)
		return
	}
	for _, o := range fq.out {
		fq.f.demote(fq.ups[o.up]) // outrun
	}
	fq.end(up, nil)
	fq.finish(msg, info, up, nil)
}

// failed takes the failure of upstream up (a refused socket).
func (fq *fwdQuery) failed(up int, reason string, err error) {
	fq.mu.Lock()
	if fq.done {
		fq.mu.Unlock()
		return
	}
	if _, ok := fq.takeOut(up); !ok {
		fq.mu.Unlock()
		return
	}
	fq.failedLocked(up, reason, err)
}

// failedLocked counts upstream up's failure, demotes it and asks the next upstream at once.
// The caller holds mu, which is released.
func (fq *fwdQuery) failedLocked(up int, reason string, err error) {
	srvUpstreamFailures.WithLabelValues(fq.ups[up], reason).Inc()
	fq.f.demote(fq.ups[up])
	fq.lastErr = err
	fq.launch(time.Now())
	if !fq.endIfExhausted() {
		fq.mu.Unlock()
	}
}

// fire is the wheel's call at a deadline: at the timeout the query fails; at the stagger the
// next upstream is asked as well. The query goes back on the wheel for its next deadline.
func (fq *fwdQuery) fire(now time.Time) {
	fq.mu.Lock()
	if fq.done {
		fq.mu.Unlock()
		return
	}
	if !now.Before(fq.deadline) {
		for _, o := range fq.out {
			srvUpstreamFailures.WithLabelValues(fq.ups[o.up], "timeout").Inc()
			srvUpstreamDuration.WithLabelValues(fq.ups[o.up]).Observe(now.Sub(o.at).Seconds())
			fq.f.demote(fq.ups[o.up])
		}
		fq.end(-1, fmt.Errorf("%w (%s)", errUpstreamTime, fq.f.timeout))
		return
	}
	if !now.Before(fq.staggerAt) && fq.next < len(fq.ups) {
		fq.launch(now)
		if fq.endIfExhausted() {
			return
		}
	}
	if !fq.f.wheel.schedule(fq, fq.nextEvent()) {
		fq.end(-1, errUpstreamClosed)
		return
	}
	fq.mu.Unlock()
}

// stop ends the query because the forwarder stops.
func (fq *fwdQuery) stop() {
	fq.mu.Lock()
	if fq.done {
		fq.mu.Unlock()
		return
	}
	fq.end(-1, errUpstreamClosed)
}
