package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// sseEvent is one server-sent event of a hub's stream.
type sseEvent struct {
	Type string
	ID   string
	Data []byte
}

// errEventTooLarge is returned for an event over the reader's size limit: the stream cannot be
// trusted past it.
var errEventTooLarge = errors.New("registry stream event over its size limit")

// sseReader reads text/event-stream strictly in order, bounding every event (all its lines
// together) to maxSize bytes, so a hub that never ends an event cannot grow a replica without
// end.
type sseReader struct {
	r       *bufio.Reader
	maxSize int
	// onLine is called for every line read, keepalive comments included, for the idle watchdog.
	onLine func()
}

func newSSEReader(r io.Reader, maxSize int, onLine func()) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), maxSize: maxSize, onLine: onLine}
}

// next returns the next complete event. An event cut off by the end of the stream is never
// returned: next returns io.ErrUnexpectedEOF for it (io.EOF between events).
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data bytes.Buffer
	size, open, hasData := 0, false, false
	for {
		line, err := s.readLine(s.maxSize - size)
		if err != nil {
			if errors.Is(err, errEventTooLarge) {
				return sseEvent{}, fmt.Errorf("%w (%d bytes): event %q", err, s.maxSize, ev.Type)
			}
			if err == io.EOF && open {
				err = io.ErrUnexpectedEOF
			}
			return sseEvent{}, err
		}
		if s.onLine != nil {
			s.onLine()
		}
		if len(line) == 0 {
			if hasData {
				ev.Data = bytes.Clone(data.Bytes())
				return ev, nil
			}
			ev, size, open = sseEvent{}, 0, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		open = true
		size += len(line)
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
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
		}
	}
}

// readLine returns one line without its terminator, refusing one longer than limit.
func (s *sseReader) readLine(limit int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > limit+len("\r\n") {
			return nil, errEventTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf = bytes.TrimSuffix(buf[:len(buf)-1], []byte{'\r'})
		if len(buf) > limit {
			return nil, errEventTooLarge
		}
		return buf, nil
	}
}
