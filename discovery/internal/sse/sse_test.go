package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// The readers' own tests (discovery/marathon, discovery/relay) cover the format and the size
// bound through their streams; these cover what only one of them uses.

// An event's id is kept, and the last of several wins.
func TestEventID(t *testing.T) {
	r := NewReader(strings.NewReader("id: 1\nid: h.7\nevent: delta\ndata: {}\n\n"), 1024, 0, nil)
	ev, err := r.Next()
	if err != nil || ev.ID != "h.7" || ev.Type != "delta" || string(ev.Data) != "{}" {
		t.Fatalf("%+v %v, want id h.7, type delta, data {}", ev, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last event: %v, want io.EOF", err)
	}
}

// MaxDuration 0 sets no time bound: an event that takes an hour of the clock is still read;
// with a bound, the same event is dropped with ErrTooSlow.
func TestMaxDuration(t *testing.T) {
	in := "event: slow\ndata: 1\ndata: 2\ndata: 3\n\n"
	for _, bound := range []time.Duration{0, time.Minute} {
		r := NewReader(strings.NewReader(in), 1024, bound, nil)
		now := time.Unix(0, 0)
		r.Now = func() time.Time { now = now.Add(time.Hour); return now }
		_, err := r.Next()
		if bound == 0 && err != nil {
			t.Errorf("no bound: %v", err)
		}
		if bound > 0 && !errors.Is(err, ErrTooSlow) {
			t.Errorf("bound %v: %v, want ErrTooSlow", bound, err)
		}
	}
}
