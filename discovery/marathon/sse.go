package marathon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
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
	errEventTooLarge = errors.New("event stream event over its size limit")
	// errEventTooSlow is returned for an event not ended within maxEventDuration.
	errEventTooSlow = errors.New("event stream event not ended within its time limit")
)

// sseReader parses text/event-stream (the WHATWG format Marathon's /v2/events speaks) strictly
// in order. It is ours rather than go-marathon's because go-marathon hands events to a goroutine
// per event (so they can arrive reordered) and its stream cannot be stopped.
type sseReader struct {
	r *bufio.Reader
	// onLine is called after every line read, comments (keepalives) included, so the caller's
	// idle watchdog sees any sign of life.
	onLine func()
	// maxSize and maxDuration bound one event (maxEventSize and maxEventDuration unless a test
	// sets them); now is the clock maxDuration is measured with.
	maxSize     int
	maxDuration time.Duration
	now         func() time.Time
}

func newSSEReader(r io.Reader, onLine func()) *sseReader {
	return &sseReader{
		r: bufio.NewReaderSize(r, 64<<10), onLine: onLine,
		maxSize: maxEventSize, maxDuration: maxEventDuration, now: time.Now,
	}
}

// eventBudget is what one event may still take, in bytes and time.
type eventBudget struct {
	open  bool      // a field was seen since the last dispatch
	size  int       // bytes of the event's lines so far
	began time.Time // when its first field line was read
}

// next returns the next complete event. A frame cut off by the end of the stream is dropped,
// never half-applied: next returns io.ErrUnexpectedEOF for it (io.EOF at a frame boundary).
// An event over maxSize or open longer than maxDuration is dropped with errEventTooLarge or
// errEventTooSlow, naming its type and size; the stream cannot be trusted past it, so the
// caller ends it (and resyncs when it reconnects).
func (s *sseReader) next() (frame, error) {
	var f frame
	var data bytes.Buffer
	var ev eventBudget
	hasData := false
	for {
		line, err := s.readLine(&ev)
		if err != nil {
			switch {
			case errors.Is(err, errEventTooLarge), errors.Is(err, errEventTooSlow):
				return frame{}, fmt.Errorf("%w: event %q dropped after %d bytes", err, f.Event, ev.size)
			// A line cut off by the end of the stream (io.ErrUnexpectedEOF from readLine) is
			// inside an event too, even when it is the event's first line.
			case errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && ev.open):
				return frame{}, fmt.Errorf("event stream ended inside an event (%q): %w", f.Event, io.ErrUnexpectedEOF)
			}
			return frame{}, err
		}
		if s.onLine != nil {
			s.onLine()
		}
		if len(line) == 0 { // blank line: dispatch
			if !hasData {
				f, ev = frame{}, eventBudget{}
				continue
			}
			f.Data = bytes.Clone(data.Bytes())
			return f, nil
		}
		if line[0] == ':' { // comment; Marathon's keepalive
			continue
		}
		field, value, found := bytes.Cut(line, []byte{':'})
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if !ev.open {
			ev.open, ev.size, ev.began = true, len(line), s.now()
		}
		switch string(field) {
		case "event":
			f.Event = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		default: // id, retry and unknown fields carry nothing for us
		}
	}
}

// readLine returns one line without its terminator (\n or \r\n; Marathon never sends a bare
// \r), counted into ev when an event is open. A line outside an event (a keepalive, the first
// field of the next one) may have up to maxSize bytes; inside one, what the event has left.
// The event's time limit is checked with every chunk read, so a line dripped byte by byte
// cannot hold an open event past it either.
func (s *sseReader) readLine(ev *eventBudget) ([]byte, error) {
	limit := s.maxSize
	if ev.open {
		limit -= ev.size
	}
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if ev.open && s.now().Sub(ev.began) > s.maxDuration {
			ev.size += len(buf)
			return nil, fmt.Errorf("%w (%v)", errEventTooSlow, s.maxDuration)
		}
		if len(buf) > limit+len("\r\n") {
			ev.size += len(buf)
			return nil, fmt.Errorf("%w (%d bytes)", errEventTooLarge, s.maxSize)
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
			ev.size += len(buf)
			return nil, fmt.Errorf("%w (%d bytes)", errEventTooLarge, s.maxSize)
		}
		if ev.open {
			ev.size += len(buf)
		}
		return buf, nil
	}
}
