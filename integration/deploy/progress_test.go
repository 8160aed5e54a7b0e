package deploy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(c.step)
	return c.t
}

// TestProgressLinesAndBar: a step is one line with elapsed time and counts; on a terminal a
// wait redraws a bar in place, and the next step line clears it first.
func TestProgressLinesAndBar(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC), step: 500 * time.Millisecond}
	p := NewProgress(&out, nil, true, clock.now)
	p.Plan(&Plan{Mode: ModeSwap, Source: "/web", NewID: "/web-green", OldID: "/web-blue", OldInstances: 10, Target: 10, Goal: 10})
	out.Reset()
	p.Wait("lodestar to drain", Counts{NewInstances: 5, NewHealthy: 5, NewServing: 5, Goal: 10, OldTasks: 10, OldInstances: 10})
	bar := out.String()
	if !strings.HasPrefix(bar, "\r\033[K["+strings.Repeat("#", 7)+strings.Repeat("-", 23)+"] new 5/5 healthy, 5 served · old 10 task(s), 0 drained · 0.5s") {
		t.Errorf("bar %q: 5 of 20 moves done is a quarter", bar)
	}
	out.Reset()
	p.Step("remove", "removed 5 drained task(s) of /web-blue", Counts{NewInstances: 5, NewHealthy: 5, NewServing: 5, Goal: 10, OldTasks: 5, OldInstances: 5})
	line := out.String()
	if !strings.HasPrefix(line, "\r\033[K[    1.0s] remove   removed 5 drained task(s) of /web-blue · new 5/5 healthy, 5 served · old 5 task(s)") || !strings.HasSuffix(line, "\n") {
		t.Errorf("step line %q", line)
	}
}

// TestProgressEvents: --events-json gets one JSON object per line; a wait is emitted only
// when its reason changes, and no human line or bar is mixed in.
func TestProgressEvents(t *testing.T) {
	var events bytes.Buffer
	p := NewProgress(nil, &events, true, nil)
	p.Wait("a", Counts{})
	p.Wait("a", Counts{})
	p.Wait("b", Counts{Draining: 1, Sessions: 3})
	p.Step("scale", "scaled", Counts{NewInstances: 2})
	p.Done("ok")
	var kinds []string
	for _, l := range strings.Split(strings.TrimSpace(events.String()), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		kinds = append(kinds, ev.Kind+":"+ev.Message)
	}
	if got := strings.Join(kinds, " "); got != "wait:a wait:b scale:scaled done:ok" {
		t.Errorf("events %s", got)
	}
	if !strings.Contains(events.String(), `"counts":{"new_instances":0,"new_healthy":0,"new_serving":0,"goal":0,"old_instances":0,"old_tasks":0,"drained":0,"draining":1,"sessions":3}`) {
		t.Errorf("events lack the counts:\n%s", events.String())
	}
}
