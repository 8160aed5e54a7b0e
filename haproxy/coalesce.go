package haproxy

import "time"

// clock is where the reload coalescing reads the time and gets its timers: the system clock
// in production, a fake one in tests, so the window is tested without waiting for real time.
type clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a function that stops it.
	Timer(d time.Duration) (<-chan time.Time, func())
}

// systemClock is the real time.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// reloadCoalescer is the timing policy of structural reloads (consul-template's quiescence):
// a structural change opens a window that closes once no further change came for minWait,
// but never later than maxWait after the change that opened it. It only keeps times: the
// loop that owns the running model tells it what it saw (Change), asks it when to look again
// (Next) and whether the reload is due (Due), and takes the reason when it reloads (Take).
type reloadCoalescer struct {
	minWait, maxWait time.Duration

	pending bool
	// first is when the pending window opened; quietSince the latest change that restarted
	// its quiet period.
	first, quietSince time.Time
	// reason is the first structural change's: what the reload is for.
	reason string
}

func newReloadCoalescer(minWait, maxWait time.Duration) *reloadCoalescer {
	return &reloadCoalescer{minWait: minWait, maxWait: maxWait}
}

// Change notes a change seen at now. A structural change (one that needs a reload) opens a
// window when none is pending, and restarts the quiet period of the pending one, bounded by
// maxWait from the first. A runtime-only change (a task move the Runtime API applies at once)
// neither opens a window nor moves the pending reload: under a steady churn of task changes
// the reload would otherwise wait for maxWait every time.
func (c *reloadCoalescer) Change(now time.Time, structural bool, reason string) {
	switch {
	case !structural:
	case c.pending:
		c.quietSince = now
	default:
		c.pending, c.first, c.quietSince, c.reason = true, now, now, reason
	}
}

// Next returns when the pending reload is due; false when none is pending.
func (c *reloadCoalescer) Next() (time.Time, bool) {
	if !c.pending {
		return time.Time{}, false
	}
	quiet, deadline := c.quietSince.Add(c.minWait), c.first.Add(c.maxWait)
	if deadline.Before(quiet) {
		return deadline, true
	}
	return quiet, true
}

// Due reports whether a reload is pending and due at now.
func (c *reloadCoalescer) Due(now time.Time) bool {
	at, ok := c.Next()
	return ok && !now.Before(at)
}

// Take closes the pending window and returns the reason of the change that opened it.
func (c *reloadCoalescer) Take() string {
	reason := c.reason
	*c = reloadCoalescer{minWait: c.minWait, maxWait: c.maxWait}
	return reason
}

// reloadTimer is Run's one timer, armed for the reload coalescer's next deadline.
type reloadTimer struct {
	clock  clock
	c      <-chan time.Time
	at     time.Time
	cancel func()
}

// set arms the timer for at (ok), or disarms it; a timer armed for at already is kept.
func (t *reloadTimer) set(at time.Time, ok bool) {
	if ok && t.c != nil && at.Equal(t.at) {
		return
	}
	t.stop()
	if ok {
		t.c, t.cancel = t.clock.Timer(at.Sub(t.clock.Now()))
		t.at = at
	}
}

// fired notes that the timer's channel was read: it must be armed again.
func (t *reloadTimer) fired() { t.c, t.cancel = nil, nil }

func (t *reloadTimer) stop() {
	if t.cancel != nil {
		t.cancel()
	}
	t.c, t.cancel = nil, nil
}
