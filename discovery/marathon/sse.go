package marathon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// frame is one server-sent event: its `event:` type and its `data:` lines joined by "\n".
type frame struct {
	Event string
	Data  []byte
}

// maxLine bounds one SSE line. An api_post_event carries a whole app definition, which can be
// large, but nothing legitimate comes near this.
const maxLine = 16 << 20

// errLineTooLong is returned for a line longer than maxLine.
var errLineTooLong = errors.New("event stream line longer than 16 MiB")

// sseReader parses text/event-stream (the WHATWG format Marathon's /v2/events speaks) strictly
// in order. It is ours rather than go-marathon's because go-marathon hands events to a goroutine
// per event (so they can arrive reordered) and its stream cannot be stopped.
type sseReader struct {
	r *bufio.Reader
	// onLine is called after every line read, comments (keepalives) included, so the caller's
	// idle watchdog sees any sign of life.
	onLine func()
}

func newSSEReader(r io.Reader, onLine func()) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), onLine: onLine}
}

// next returns the next complete event. A frame cut off by the end of the stream is dropped,
// never half-applied: next returns io.ErrUnexpectedEOF for it (io.EOF at a frame boundary).
func (s *sseReader) next() (frame, error) {
	var f frame
	var data bytes.Buffer
	pending := false // a field was seen since the last dispatch
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			// A line cut off by the end of the stream (io.ErrUnexpectedEOF from readLine) is
			// inside an event too, even when it is the event's first line.
			if errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && pending) {
				return frame{}, fmt.Errorf("event stream ended inside an event (%q): %w", f.Event, io.ErrUnexpectedEOF)
			}
			if errors.Is(err, errLineTooLong) {
				return frame{}, fmt.Errorf("%w, in an event %q (dropped)", err, f.Event)
			}
			return frame{}, err
		}
		if s.onLine != nil {
			s.onLine()
		}
		if len(line) == 0 { // blank line: dispatch
			if !hasData {
				f, pending = frame{}, false
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
		pending = true
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
// \r).
func (s *sseReader) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine+len("\r\n") {
			return nil, errLineTooLong
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
		if len(buf) > maxLine {
			return nil, errLineTooLong
		}
		return buf, nil
	}
}
