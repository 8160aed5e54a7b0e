package relay

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait between rounds of failed connects: it doubles from min to max, each wait
// drawn from its upper half so that replicas that lost the same hub do not all come back at
// the same instant.
type backoff struct {
	min, max, cur time.Duration
	rand          func(n int64) int64
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, rand: rand.Int64N}
}

// next returns the next wait.
func (b *backoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.min
	case b.cur < b.max:
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + time.Duration(b.rand(int64(b.cur-half)+1))
}

// reset starts over from min.
func (b *backoff) reset() { b.cur = 0 }
