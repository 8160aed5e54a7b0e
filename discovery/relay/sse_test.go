package relay

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestSSEReader(t *testing.T) {
	in := ": hello\n\nid: a.1\nevent: snapshot\ndata: {\"x\":1}\n\n" +
		": keepalive\n\n" +
		"id: a.2\r\nevent: delta\r\ndata: one\r\ndata: two\r\n\r\n" +
		"event: delta\ndata: cut"
	lines := 0
	r := newSSEReader(strings.NewReader(in), 1024, func() { lines++ })
	ev, err := r.next()
	if err != nil || ev.Type != "snapshot" || ev.ID != "a.1" || string(ev.Data) != `{"x":1}` {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	ev, err = r.next()
	if err != nil || ev.Type != "delta" || ev.ID != "a.2" || string(ev.Data) != "one\ntwo" {
		t.Fatalf("second event %+v, %v", ev, err)
	}
	if _, err := r.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("an event cut off by the end of the stream: %v, want io.ErrUnexpectedEOF", err)
	}
	if lines < 9 {
		t.Errorf("onLine called %d times, want every line (keepalives included)", lines)
	}
}

// The size limit covers an event as a whole: one huge line, and many lines that never end
// the event, are both refused.
func TestSSEReaderLimit(t *testing.T) {
	for name, in := range map[string]string{
		"one long line":      "event: delta\ndata: " + strings.Repeat("x", 2000) + "\n\n",
		"lines without end":  "event: delta\n" + strings.Repeat("data: xxxxxxxxxxxxxxxxxxxx\n", 100),
		"long line, no data": strings.Repeat("y", 5000),
	} {
		t.Run(name, func(t *testing.T) {
			r := newSSEReader(strings.NewReader(in), 1024, nil)
			if _, err := r.next(); !errors.Is(err, errEventTooLarge) {
				t.Fatalf("err %v, want errEventTooLarge", err)
			}
		})
	}
	// The honest case: an event just under the limit passes, and the count restarts with
	// the next event.
	ev := "event: delta\ndata: " + strings.Repeat("x", 900) + "\n\n"
	r := newSSEReader(strings.NewReader(ev+ev), 1024, nil)
	for i := range 2 {
		if _, err := r.next(); err != nil {
			t.Fatalf("event %d under the limit: %v", i, err)
		}
	}
}
