package marathon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
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
	if _, err := r.next(); !errors.Is(err, errLineTooLong) {
		t.Fatalf("err = %v, want errLineTooLong", err)
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

// A line of exactly maxLine bytes is not longer than the limit, whatever its terminator.
func TestSSELineAtTheLimit(t *testing.T) {
	for _, nl := range []string{"\n", "\r\n"} {
		data := strings.Repeat("x", maxLine-len("data: "))
		r := newSSEReader(strings.NewReader("event: big\ndata: "+data+nl+nl), nil)
		f, err := r.next()
		if err != nil {
			t.Fatalf("terminator %q: line of exactly %d bytes: %v", nl, maxLine, err)
		}
		if f.Event != "big" || len(f.Data) != len(data) {
			t.Errorf("terminator %q: got event %q with %d bytes of data, want %q with %d", nl, f.Event, len(f.Data), "big", len(data))
		}
	}
}

// The error for a line too long names the event it was in: the operator's only clue to which
// event (an api_post_event carrying a huge app definition, say) was dropped.
func TestSSELineTooLongNamesTheEvent(t *testing.T) {
	r := newSSEReader(io.MultiReader(strings.NewReader("event: api_post_event\ndata: "), &endless{}), nil)
	_, err := r.next()
	if !errors.Is(err, errLineTooLong) || !strings.Contains(fmt.Sprint(err), "api_post_event") {
		t.Fatalf("err = %v, want errLineTooLong naming api_post_event", err)
	}
}
