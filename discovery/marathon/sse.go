package marathon

import (
	"io"
	"time"

	"github.com/lodestar-lb/lodestar/discovery/internal/sse"
)

// frame is one server-sent event: its `event:` type and its `data:` lines joined by "\n".
type frame struct {
	Event string
	Data  []byte
}

// size is what a frame holds in memory, for the queue's byte budget.
func (f frame) size() int64 { return int64(len(f.Event) + len(f.Data)) }

// maxEventSize bounds one event as a whole: the bytes of all its lines (fields and the comments
// between them, terminators left out) together. An api_post_event carries a whole app
// definition in one data line, which can be large, but nothing legitimate comes near this. The
// bound is per event, not per line: a stream of 1 MiB data lines that never ends its event
// must not grow lodestar without end.
const maxEventSize = 16 << 20

// maxEventDuration bounds the time from an event's first line to the blank line that ends it.
// Marathon writes an event in one go; even a 16 MiB event over a 4 Mbit/s link takes half of
// this. An event still open after it is a stream that drips lines to hold the reader (and so
// every later event) back; the idle watchdog cannot see it, as each line is a sign of life.
const maxEventDuration = time.Minute

var (
	// errEventTooLarge is returned for an event larger than maxEventSize.
	errEventTooLarge = sse.ErrTooLarge
	// errEventTooSlow is returned for an event not ended within maxEventDuration.
	errEventTooSlow = sse.ErrTooSlow
)

// sseReader parses text/event-stream (the WHATWG format Marathon's /v2/events speaks) strictly
// in order, every event bounded by maxEventSize and maxEventDuration. It is ours rather than
// go-marathon's because go-marathon hands events to a goroutine per event (so they can arrive
// reordered) and its stream cannot be stopped.
type sseReader struct{ *sse.Reader }

func newSSEReader(r io.Reader, onLine func()) *sseReader {
	return &sseReader{sse.NewReader(r, maxEventSize, maxEventDuration, onLine)}
}

// next returns the next complete event (sse.Reader.Next). A frame cut off by the end of the
// stream is dropped, never half-applied.
func (s *sseReader) next() (frame, error) {
	ev, err := s.Next()
	if err != nil {
		return frame{}, err
	}
	return frame{Event: ev.Type, Data: ev.Data}, nil
}
