package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Counts are the numbers a progress line shows.
type Counts struct {
	// NewInstances, NewHealthy and NewServing are the new colour's instances in Marathon,
	// healthy tasks, and tasks every edge sends traffic to; Goal its final instances.
	NewInstances int `json:"new_instances"`
	NewHealthy   int `json:"new_healthy"`
	NewServing   int `json:"new_serving"`
	Goal         int `json:"goal"`
	// OldInstances and OldTasks are the old colour's; Drained and Draining its tasks every
	// edge has drained, and those still draining with Sessions left.
	OldInstances int `json:"old_instances"`
	OldTasks     int `json:"old_tasks"`
	Drained      int `json:"drained"`
	Draining     int `json:"draining"`
	Sessions     int `json:"sessions"`
}

// Event is one machine-readable progress event (a JSON line of --events-json).
type Event struct {
	Time    time.Time `json:"time"`
	Elapsed float64   `json:"elapsed_seconds"`
	// Kind is plan, create, serving, scale, remove, delete, hybrid, wait, rollback, done or
	// failed.
	Kind    string  `json:"event"`
	Message string  `json:"message"`
	Counts  *Counts `json:"counts,omitempty"`
	Plan    *Plan   `json:"plan,omitempty"`
}

// Progress reports a run: one line per step with counts and elapsed time, a progress bar
// redrawn in place while waiting (on a terminal), and JSON lines for pipelines.
type Progress struct {
	mu     sync.Mutex
	lines  io.Writer // human lines; nil for none
	events io.Writer // JSON lines; nil for none
	bar    bool
	start  time.Time
	now    func() time.Time
	// barShown says a bar is drawn on the current line (a step line clears it first).
	barShown bool
	lastWait string
	oldStart int
}

// NewProgress writes step lines to lines and JSON events to events (either may be nil);
// bar draws a progress bar on lines, which must then be a terminal.
func NewProgress(lines, events io.Writer, bar bool, now func() time.Time) *Progress {
	if now == nil {
		now = time.Now
	}
	return &Progress{lines: lines, events: events, bar: bar && lines != nil, start: now(), now: now}
}

var discardProgress = NewProgress(nil, nil, false, nil)

func (p *Progress) elapsed() time.Duration { return p.now().Sub(p.start) }

func (p *Progress) emit(kind, msg string, c *Counts, plan *Plan) {
	if p.events == nil {
		return
	}
	ev := Event{Time: p.now().UTC(), Elapsed: p.elapsed().Seconds(), Kind: kind, Message: msg, Counts: c, Plan: plan}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	p.events.Write(append(b, '\n'))
}

// line writes one human line, clearing a bar first.
func (p *Progress) line(s string) {
	if p.lines == nil {
		return
	}
	if p.barShown {
		fmt.Fprint(p.lines, "\r\033[K")
		p.barShown = false
	}
	fmt.Fprintln(p.lines, s)
}

// Plan reports the plan.
func (p *Progress) Plan(plan *Plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.oldStart = plan.OldInstances
	if p.lines != nil {
		var sb strings.Builder
		plan.Write(&sb)
		p.line(strings.TrimRight(sb.String(), "\n"))
	}
	p.emit("plan", string(plan.Mode), nil, plan)
}

// Step reports one step taken.
func (p *Progress) Step(kind, msg string, c Counts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastWait = ""
	p.line(fmt.Sprintf("[%7.1fs] %-8s %s%s", p.elapsed().Seconds(), kind, msg, c.summary()))
	p.emit(kind, msg, &c, nil)
}

// Wait reports what the run waits for: the bar is redrawn; an event is emitted when the
// reason changes.
func (p *Progress) Wait(why string, c Counts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if why != p.lastWait {
		p.lastWait = why
		p.emit("wait", why, &c, nil)
	}
	if !p.bar {
		return
	}
	fmt.Fprintf(p.lines, "\r\033[K%s %s · %.1fs", p.drawBar(c), c.short(), p.elapsed().Seconds())
	p.barShown = true
}

// Done reports success.
func (p *Progress) Done(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line(fmt.Sprintf("[%7.1fs] done     %s", p.elapsed().Seconds(), msg))
	p.emit("done", msg, nil, nil)
}

// Fail reports the end of a failed run.
func (p *Progress) Fail(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line(fmt.Sprintf("[%7.1fs] failed   %s", p.elapsed().Seconds(), msg))
	p.emit("failed", msg, nil, nil)
}

// drawBar is a 30-cell bar of the traffic moved: new tasks served plus old tasks removed,
// out of both goals.
func (p *Progress) drawBar(c Counts) string {
	const width = 30
	total := c.Goal + p.oldStart
	done := c.NewServing + max(0, p.oldStart-c.OldTasks)
	filled := 0
	if total > 0 {
		filled = min(width, done*width/total)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"
}

func (c Counts) summary() string {
	if c == (Counts{}) {
		return ""
	}
	return " · " + c.short()
}

func (c Counts) short() string {
	s := fmt.Sprintf("new %d/%d healthy, %d served", c.NewHealthy, c.NewInstances, c.NewServing)
	if c.OldTasks > 0 || c.OldInstances > 0 {
		s += fmt.Sprintf(" · old %d task(s), %d drained", c.OldTasks, c.Drained)
		if c.Draining > 0 {
			s += fmt.Sprintf(", %d draining (%d session(s))", c.Draining, c.Sessions)
		}
	}
	return s
}
