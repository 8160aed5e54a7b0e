package haproxy

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t.c, func() {}
	}
	c.timers = append(c.timers, t)
	return t.c, func() { c.remove(t) }
}

func (c *fakeClock) remove(t *fakeTimer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return
		}
	}
}

// Advance moves the clock by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- c.now
	}
	c.timers = kept
}

// Armed returns the deadlines of the timers not fired or stopped yet.
func (c *fakeClock) Armed() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, len(c.timers))
	for i, t := range c.timers {
		out[i] = t.at
	}
	return out
}

// coalescerStep is one event of a coalescer sequence: at offset `at`, a change (structural or
// runtime-only) or only a look at the clock, and what the coalescer must answer after it.
type coalescerStep struct {
	at         time.Duration
	change     bool
	structural bool
	reason     string
	// wantNext is the offset of the pending reload's deadline, -1 for none pending.
	wantNext time.Duration
	wantDue  bool
}

func runCoalescer(t *testing.T, minWait, maxWait time.Duration, steps []coalescerStep) {
	t.Helper()
	clk := newFakeClock()
	start := clk.Now()
	c := newReloadCoalescer(minWait, maxWait)
	for i, s := range steps {
		if s.at < clk.Now().Sub(start) {
			t.Fatalf("step %d goes back in time to %v", i, s.at)
		}
		clk.Advance(s.at - clk.Now().Sub(start))
		if s.change {
			c.Change(clk.Now(), s.structural, s.reason)
		}
		next, ok := c.Next()
		switch {
		case s.wantNext < 0 && ok:
			t.Fatalf("step %d (%v): a reload is pending for %v, want none", i, s.at, next.Sub(start))
		case s.wantNext >= 0 && !ok:
			t.Fatalf("step %d (%v): no reload pending, want one at %v", i, s.at, s.wantNext)
		case ok && next.Sub(start) != s.wantNext:
			t.Fatalf("step %d (%v): reload due at %v, want %v", i, s.at, next.Sub(start), s.wantNext)
		}
		if due := c.Due(clk.Now()); due != s.wantDue {
			t.Fatalf("step %d (%v): due %v, want %v", i, s.at, due, s.wantDue)
		}
	}
}

// TestReloadCoalescerQuietAndDeadline: a structural change waits for minWait of quiet; every
// further structural change restarts the quiet period, but never past maxWait after the first.
func TestReloadCoalescerQuietAndDeadline(t *testing.T) {
	const ms = time.Millisecond
	runCoalescer(t, 500*ms, 2000*ms, []coalescerStep{
		{at: 0, wantNext: -1},
		{at: 100 * ms, change: true, structural: true, reason: "backend a added", wantNext: 600 * ms},
		{at: 399 * ms, wantNext: 600 * ms},
		{at: 400 * ms, change: true, structural: true, reason: "backend b added", wantNext: 900 * ms},
		{at: 899 * ms, wantNext: 900 * ms},
		{at: 900 * ms, wantNext: 900 * ms, wantDue: true},
	})
	// A change every 400 ms keeps the quiet period from ever ending: the max wait closes it.
	var steps []coalescerStep
	for at := time.Duration(0); at <= 1600*ms; at += 400 * ms {
		steps = append(steps, coalescerStep{at: at, change: true, structural: true, reason: "churn", wantNext: min(at+500*ms, 2000*ms)})
	}
	steps = append(steps, coalescerStep{at: 1999 * ms, wantNext: 2000 * ms}, coalescerStep{at: 2000 * ms, wantNext: 2000 * ms, wantDue: true})
	runCoalescer(t, 500*ms, 2000*ms, steps)
}

// TestReloadCoalescerTakeKeepsFirstReason: the reload is for the change that opened the
// window, and taking it closes the window; the next change opens a new one.
func TestReloadCoalescerTakeKeepsFirstReason(t *testing.T) {
	clk := newFakeClock()
	c := newReloadCoalescer(time.Second, 5*time.Second)
	c.Change(clk.Now(), true, "backend a added")
	c.Change(clk.Now(), true, "backend b added")
	clk.Advance(time.Second)
	if !c.Due(clk.Now()) {
		t.Fatal("not due after the min wait")
	}
	if got := c.Take(); got != "backend a added" {
		t.Errorf("reason %q, want the first change's", got)
	}
	if _, ok := c.Next(); ok || c.Due(clk.Now()) {
		t.Fatal("still pending after Take")
	}
	c.Change(clk.Now(), true, "backend c added")
	if next, ok := c.Next(); !ok || !next.Equal(clk.Now().Add(time.Second)) {
		t.Errorf("a new change after Take: next %v %v, want a new window of the min wait", next, ok)
	}
}

// TestReloadCoalescerNoMinWait: --reload-min-wait 0 is no wait: a structural change is due
// the moment it is seen.
func TestReloadCoalescerNoMinWait(t *testing.T) {
	runCoalescer(t, 0, DefaultReloadMaxWait, []coalescerStep{
		{at: time.Second, change: true, structural: true, reason: "backend a added", wantNext: time.Second, wantDue: true},
	})
}

// TestReloadCoalescerRuntimeOnlyOpensNothing: a runtime-only change with no reload pending
// needs no reload.
func TestReloadCoalescerRuntimeOnlyOpensNothing(t *testing.T) {
	runCoalescer(t, time.Second, 5*time.Second, []coalescerStep{
		{at: 0, change: true, reason: "servers of a changed", wantNext: -1},
		{at: 10 * time.Second, change: true, reason: "servers of a changed", wantNext: -1},
	})
}

// TestReloadTimerFollowsDeadline: the loop's timer is armed for the deadline, kept while the
// deadline stays, re-armed when it moves, and disarmed when none is pending.
func TestReloadTimerFollowsDeadline(t *testing.T) {
	clk := newFakeClock()
	rt := reloadTimer{clock: clk}
	at := clk.Now().Add(time.Second)
	rt.set(at, true)
	first := rt.c
	rt.set(at, true)
	if rt.c != first || len(clk.Armed()) != 1 {
		t.Fatalf("the same deadline re-armed the timer (%d armed)", len(clk.Armed()))
	}
	rt.set(at.Add(time.Second), true)
	if armed := clk.Armed(); len(armed) != 1 || !armed[0].Equal(at.Add(time.Second)) {
		t.Fatalf("armed %v, want only the moved deadline", armed)
	}
	clk.Advance(2 * time.Second)
	select {
	case <-rt.c:
		rt.fired()
	default:
		t.Fatal("the timer did not fire at its deadline")
	}
	rt.set(at.Add(time.Second), true)
	if len(clk.Armed()) != 0 {
		t.Fatal("a deadline already past was armed as a future timer")
	}
	select {
	case <-rt.c:
	default:
		t.Fatal("a timer set again after it fired, for a past deadline, does not fire")
	}
	rt.set(time.Time{}, false)
	if rt.c != nil || len(clk.Armed()) != 0 {
		t.Fatal("nothing pending, but the timer is armed")
	}
}

// TestReloadCoalescerRuntimeOnlyKeepsDeadline: task changes every 250 ms while a structural
// change waits do not restart its quiet period (they are applied at once, through the Runtime
// API): the reload is due minWait after the structural change, not maxWait after it.
func TestReloadCoalescerRuntimeOnlyKeepsDeadline(t *testing.T) {
	const ms = time.Millisecond
	steps := []coalescerStep{{at: 0, change: true, structural: true, reason: "backend a added", wantNext: 1000 * ms}}
	for at := 250 * ms; at < 1000*ms; at += 250 * ms {
		steps = append(steps, coalescerStep{at: at, change: true, reason: "servers of b changed", wantNext: 1000 * ms})
	}
	steps = append(steps, coalescerStep{at: 1000 * ms, wantNext: 1000 * ms, wantDue: true})
	runCoalescer(t, 1000*ms, 5000*ms, steps)
}
