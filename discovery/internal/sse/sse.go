// Package sse reads text/event-stream (server-sent events, WHATWG) strictly in order, with every
// event bounded as a whole: the Marathon source reads Marathon's /v2/events with it, and the
// relay follower a hub's /v1/stream. Both streams come from elsewhere, so an event that never
// ends — by size or by time — must not hold or grow the reader.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// Event is one server-sent event: its `event:` type, its last `id:`, and its `data:` lines
// joined by "\n".
type Event struct {
	Type string
	ID   string
	Data []byte
}

var (
	// ErrTooLarge is returned for an event over the reader's MaxSize.
	ErrTooLarge = errors.New("event stream event over its size limit")
	// ErrTooSlow is returned for an event not ended within the reader's MaxDuration.
	ErrTooSlow = errors.New("event stream event not ended within its time limit")
)

// Reader reads events one at a time.
type Reader struct {
	r *bufio.Reader
	// OnLine is called after every line read, comments (keepalives) included, so the caller's
	// idle watchdog sees any sign of life.
	OnLine func()
	// MaxSize bounds one event: the bytes of all its lines (fields and the comments between
	// them, terminators left out) together.
	MaxSize int
	// MaxDuration bounds the time from an event's first line to the blank line that ends it
	// (0: no bound); Now is the clock it is measured with.
	MaxDuration time.Duration
	Now         func() time.Time
}

// NewReader reads events from r.
func NewReader(r io.Reader, maxSize int, maxDuration time.Duration, onLine func()) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), OnLine: onLine, MaxSize: maxSize, MaxDuration: maxDuration, Now: time.Now}
}

// budget is what one event may still take, in bytes and time.
type budget struct {
	open  bool      // a field was seen since the last dispatch
	size  int       // bytes of the event's lines so far
	began time.Time // when its first field line was read
}

// Next returns the next complete event. An event cut off by the end of the stream is never
// returned: Next returns io.ErrUnexpectedEOF for it (io.EOF between events). An event over
// MaxSize or open longer than MaxDuration is dropped with ErrTooLarge or ErrTooSlow, naming
// its type and size; the stream cannot be trusted past it, so the caller ends it.
func (s *Reader) Next() (Event, error) {
	var ev Event
	var data bytes.Buffer
	var b budget
	hasData := false
	for {
		line, err := s.readLine(&b)
		if err != nil {
			switch {
			case errors.Is(err, ErrTooLarge), errors.Is(err, ErrTooSlow):
				return Event{}, fmt.Errorf("%w: event %q dropped after %d bytes", err, ev.Type, b.size)
			// A line cut off by the end of the stream (io.ErrUnexpectedEOF from readLine) is
			// inside an event too, even when it is the event's first line.
			case errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && b.open):
				return Event{}, fmt.Errorf("event stream ended inside an event (%q): %w", ev.Type, io.ErrUnexpectedEOF)
			}
			return Event{}, err
		}
		if s.OnLine != nil {
			s.OnLine()
		}
		if len(line) == 0 { // blank line: dispatch
			if !hasData {
				ev, b = Event{}, budget{}
				continue
			}
			ev.Data = bytes.Clone(data.Bytes())
			return ev, nil
		}
		if line[0] == ':' { // a comment: keepalives
			continue
		}
		field, value, found := bytes.Cut(line, []byte{':'})
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if !b.open {
			b.open, b.size, b.began = true, len(line), s.Now()
		}
		switch string(field) {
		case "event":
			ev.Type = string(value)
		case "id":
			ev.ID = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		default: // retry and unknown fields carry nothing for us
		}
	}
}

// readLine returns one line without its terminator (\n or \r\n), counted into b when an event
// is open. A line outside an event (a keepalive, the first field of the next one) may have up
// to MaxSize bytes; inside one, what the event has left. The event's time limit is checked
// with every chunk read, so a line dripped byte by byte cannot hold an open event past it.
func (s *Reader) readLine(b *budget) ([]byte, error) {
	limit := s.MaxSize
	if b.open {
		limit -= b.size
	}
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if b.open && s.MaxDuration > 0 && s.Now().Sub(b.began) > s.MaxDuration {
			b.size += len(buf)
			return nil, fmt.Errorf("%w (%v)", ErrTooSlow, s.MaxDuration)
		}
		if len(buf) > limit+len("\r\n") {
			b.size += len(buf)
			return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, s.MaxSize)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				// A line without its newline at the end of the stream is incomplete.
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf = bytes.TrimSuffix(buf[:len(buf)-1], []byte{'\r'})
		if len(buf) > limit {
			b.size += len(buf)
			return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, s.MaxSize)
		}
		if b.open {
			b.size += len(buf)
		}
		return buf, nil
	}
}
