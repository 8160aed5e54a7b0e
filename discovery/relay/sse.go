package relay

import (
	"io"

	"github.com/lodestar-lb/lodestar/discovery/internal/sse"
)

// sseEvent is one server-sent event of a hub's stream.
type sseEvent = sse.Event

// errEventTooLarge is returned for an event over the reader's size limit: the stream cannot be
// trusted past it.
var errEventTooLarge = sse.ErrTooLarge

// sseReader reads a hub's stream strictly in order, bounding every event (all its lines
// together) to maxSize bytes, so a hub that never ends an event cannot grow a replica without
// end. A hub's event has no time bound of its own: the follower's idle watchdog ends a stream
// that stops, and a snapshot of a large registry may take long on a slow link.
type sseReader struct{ *sse.Reader }

func newSSEReader(r io.Reader, maxSize int, onLine func()) *sseReader {
	return &sseReader{sse.NewReader(r, maxSize, 0, onLine)}
}

// next returns the next complete event (sse.Reader.Next).
func (s *sseReader) next() (sseEvent, error) { return s.Next() }
