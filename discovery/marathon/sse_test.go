package marathon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, in string) ([]frame, error) {
	t.Helper()
	lines := 0
	r := newSSEReader(strings.NewReader(in), func() { lines++ })
	var out []frame
	for {
		f, err := r.next()
		if err != nil {
			if lines == 0 && in != "" {
				t.Errorf("onLine never called")
			}
			return out, err
		}
		out = append(out, f)
	}
}

func TestSSEFixtureInOrder(t *testing.T) {
	b, err := os.ReadFile("testdata/events.sse")
	if err != nil {
		t.Fatal(err)
	}
	frames, err := readAll(t, string(b))
	if !errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("end of fixture: got %v, want a clean io.EOF", err)
	}
	want := []string{
		"event_stream_attached", "deployment_info", "status_update_event", "status_update_event",
		"health_status_changed_event", "deployment_success", "health_status_changed_event",
		"status_update_event", "status_update_event", "api_post_event", "instance_changed_event",
		"app_terminated_event",
	}
	if len(frames) != len(want) {
		t.Fatalf("got %d frames, want %d", len(frames), len(want))
	}
	for i, f := range frames {
		if f.Event != want[i] {
			t.Errorf("frame %d: event %q, want %q", i, f.Event, want[i])
		}
		if !strings.HasPrefix(string(f.Data), "{") || !strings.HasSuffix(string(f.Data), "}") {
			t.Errorf("frame %d: data is not one JSON object: %q", i, f.Data)
		}
	}
}

func TestSSEWireDetails(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []frame
		wantErr error
	}{
		{"crlf and multi-line data", "event: a\r\ndata: x\r\ndata: y\r\n\r\n", []frame{{"a", []byte("x\ny")}}, io.EOF},
		{"no space after colon", "event:a\ndata:{}\n\n", []frame{{"a", []byte("{}")}}, io.EOF},
		{"keepalives only", ":\n\n:\n\n", nil, io.EOF},
		{"id and retry ignored", "id: 7\nretry: 10\nevent: a\ndata: 1\n\n", []frame{{"a", []byte("1")}}, io.EOF},
		{"event without data is not dispatched", "event: a\n\nevent: b\ndata: 2\n\n", []frame{{"b", []byte("2")}}, io.EOF},
		{"frame cut after data line", "event: a\ndata: 1\n\nevent: b\ndata: {\"trunc", []frame{{"a", []byte("1")}}, io.ErrUnexpectedEOF},
		{"frame cut before blank line", "event: a\ndata: 1\n", nil, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readAll(t, c.in)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d frames %q, want %d", len(got), got, len(c.want))
			}
			for i := range got {
				if got[i].Event != c.want[i].Event || string(got[i].Data) != string(c.want[i].Data) {
					t.Errorf("frame %d = %q/%q, want %q/%q", i, got[i].Event, got[i].Data, c.want[i].Event, c.want[i].Data)
				}
			}
		})
	}
}

func TestSSELineTooLong(t *testing.T) {
	r := newSSEReader(io.MultiReader(strings.NewReader("data: "), &endless{}), nil)
	if _, err := r.next(); !errors.Is(err, errEventTooLarge) {
		t.Fatalf("err = %v, want errEventTooLarge", err)
	}
}

// endless yields 'x' forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// An event of exactly maxEventSize bytes (its lines together, terminators left out) is not
// over the limit, whatever its terminator; one byte more is.
func TestSSEEventAtTheLimit(t *testing.T) {
	for _, nl := range []string{"\n", "\r\n"} {
		head := "event: big"
		data := strings.Repeat("x", maxEventSize-len(head)-len("data: "))
		r := newSSEReader(strings.NewReader(head+nl+"data: "+data+nl+nl), nil)
		f, err := r.next()
		if err != nil {
			t.Fatalf("terminator %q: event of exactly %d bytes: %v", nl, maxEventSize, err)
		}
		if f.Event != "big" || len(f.Data) != len(data) {
			t.Errorf("terminator %q: got event %q with %d bytes of data, want %q with %d", nl, f.Event, len(f.Data), "big", len(data))
		}
		r = newSSEReader(strings.NewReader(head+nl+"data: "+data+"x"+nl+nl), nil)
		if _, err := r.next(); !errors.Is(err, errEventTooLarge) {
			t.Errorf("terminator %q: event of %d bytes: err = %v, want errEventTooLarge", nl, maxEventSize+1, err)
		}
	}
}

// The error for an event too large names the event it was: the operator's only clue to which
// event (an api_post_event carrying a huge app definition, say) was dropped.
func TestSSELineTooLongNamesTheEvent(t *testing.T) {
	r := newSSEReader(io.MultiReader(strings.NewReader("event: api_post_event\ndata: "), &endless{}), nil)
	_, err := r.next()
	if !errors.Is(err, errEventTooLarge) || !strings.Contains(fmt.Sprint(err), "api_post_event") {
		t.Fatalf("err = %v, want errEventTooLarge naming api_post_event", err)
	}
}

// endlessLines yields "data: xxx…\n" lines of lineSize bytes forever, counting what was read.
type endlessLines struct {
	lineSize int
	read     int
	pos      int
}

func (e *endlessLines) Read(p []byte) (int, error) {
	for i := range p {
		switch {
		case e.pos < len("data: "):
			p[i] = "data: "[e.pos]
		case e.pos == e.lineSize-1:
			p[i] = '\n'
		default:
			p[i] = 'x'
		}
		e.pos = (e.pos + 1) % e.lineSize
	}
	e.read += len(p)
	return len(p), nil
}

// Issue 12, item 7: an event of endless 1 MiB data lines, no line over any per-line limit and
// never a blank line, is refused once its lines together pass maxEventSize. The reader stops
// reading there (so memory stays bounded) and says which event and how big.
func TestSSEEndlessEventOfShortLinesIsRefused(t *testing.T) {
	lines := &endlessLines{lineSize: 1 << 20}
	r := newSSEReader(io.MultiReader(strings.NewReader("event: status_update_event\n"), lines), nil)
	_, err := r.next()
	if !errors.Is(err, errEventTooLarge) {
		t.Fatalf("err = %v, want errEventTooLarge", err)
	}
	for _, want := range []string{"status_update_event", "dropped after"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	// At most the limit, the line being read and one read-ahead buffer.
	if bound := maxEventSize + 2*lines.lineSize + 64<<10; lines.read > bound {
		t.Errorf("read %d bytes of the endless event, want at most %d", lines.read, bound)
	}
}

// An event whose lines keep coming but which never ends is dropped once it has been open for
// maxDuration, measured from its first field line on the reader's clock; keepalives before an
// event do not start that clock, and an event that ends in time is delivered.
func TestSSEEventTimeLimit(t *testing.T) {
	var clock time.Time
	tick := func() time.Time { clock = clock.Add(time.Second); return clock }
	in := ":\n:\n:\n:\n:\nevent: a\ndata: 1\ndata: 2\n\n" +
		"event: slow\ndata: 1\n:\n:\n:\n:\n:\n:\n:\n:\n:\n:\ndata: 2\n\n"
	r := newSSEReader(strings.NewReader(in), nil)
	r.Now, r.MaxDuration = tick, 5*time.Second
	f, err := r.next()
	if err != nil || f.Event != "a" || string(f.Data) != "1\n2" {
		t.Fatalf("first event = %q/%q, %v; want a/\"1\\n2\"", f.Event, f.Data, err)
	}
	_, err = r.next()
	if !errors.Is(err, errEventTooSlow) || !strings.Contains(err.Error(), `"slow"`) {
		t.Fatalf("err = %v, want errEventTooSlow naming the event", err)
	}
}
