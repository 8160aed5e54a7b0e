package deploy

import (
	"context"
	"time"
)

// Backoff is the retry policy for Marathon: Attempts tries in all, the n-th retry after
// Base·2ⁿ, at most Max. Sleep waits (injected so tests run without real time).
type Backoff struct {
	Attempts  int
	Base, Max time.Duration
	Sleep     func(ctx context.Context, d time.Duration) error
}

// DefaultBackoff retries for about 12 seconds: long enough to ride out a Marathon leader
// election, short enough that a Marathon that is down is reported while the operator waits.
var DefaultBackoff = Backoff{Attempts: 6, Base: 250 * time.Millisecond, Max: 5 * time.Second}

func (b Backoff) withDefaults() Backoff {
	if b.Attempts <= 0 {
		b.Attempts = DefaultBackoff.Attempts
	}
	if b.Base <= 0 {
		b.Base = DefaultBackoff.Base
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.Sleep == nil {
		b.Sleep = sleepCtx
	}
	return b
}

// Delay is the wait before retry n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for range n {
		d *= 2
		if d >= b.Max {
			return b.Max
		}
	}
	return min(d, b.Max)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
