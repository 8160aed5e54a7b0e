package autoscale

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const testInterval = time.Second

// rateSettings are request rate settings for the tests: 100 req/s per instance, 3 samples,
// cooldown 2 intervals, 2 intervals past threshold, instances 1 to 10.
func rateSettings() Settings {
	s := DefaultSettings()
	s.TargetRPS, s.Samples, s.Cooldown, s.IntervalsPastThreshold = 100, 3, 2, 2
	s.MinInstances, s.MaxInstances, s.ThresholdPercent, s.ThresholdInstances = 1, 10, 0.5, 3
	return s
}

// feed gives the policy one complete rate on port 10000 per interval, starting at interval
// *tick, and returns the decisions.
func feed(p *Policy, tick *int, instances int, rates ...float64) []Decision {
	var out []Decision
	for _, r := range rates {
		now := t0.Add(time.Duration(*tick) * testInterval)
		*tick++
		out = append(out, p.DecideRate(now, instances, map[int]PortRate{10000: {Rate: r, Complete: true}}, false))
	}
	return out
}

func actions(ds []Decision) string {
	var s []string
	for _, d := range ds {
		s = append(s, string(d.Action))
	}
	return strings.Join(s, " ")
}

// The average over Samples intervals decides, after the warm-up, and only once the target
// has been off for IntervalsPastThreshold intervals in a row.
func TestRateSmoothingWarmupAndIntervalsPastThreshold(t *testing.T) {
	p := NewPolicy("/web", rateSettings(), testInterval)
	tick := 0
	ds := feed(p, &tick, 1, 500, 500, 500)
	if got := actions(ds); got != "wait wait hold" {
		t.Fatalf("actions %q, want two warm-up waits, then a hold (1 of 2 intervals past threshold)", got)
	}
	d := feed(p, &tick, 1, 500)[0]
	if d.Action != ActionScale || d.To != 5 || d.Inputs.RPS != 500 || d.Inputs.Port != 10000 {
		t.Fatalf("decision %+v, want scale 1 -> 5 at 500 req/s", d)
	}
	// A spike of one interval is smoothed: 3 samples of 100, 100, 1000 average 400.
	p = NewPolicy("/web", rateSettings(), testInterval)
	tick = 0
	ds = feed(p, &tick, 4, 100, 100, 1000)
	last := ds[len(ds)-1]
	if last.Inputs.RPS != 400 || last.Action != ActionHold || last.Reason != "at target" {
		t.Fatalf("decision %+v, want a hold at the target of 400 req/s averaged", last)
	}
}

// Within both thresholds (rate per instance within 50% of target, instances within 3) the
// app is held; past either it scales.
func TestRateThresholds(t *testing.T) {
	cases := []struct {
		name      string
		instances int
		rate      float64
		want      Action
		to        int
	}{
		{"rate per instance 25% above, one instance short: hold", 4, 500, ActionHold, 4},
		{"rate per instance 150% above: scale", 2, 500, ActionScale, 5},
		{"rate per instance 40% below, but 4 instances too many: scale", 10, 600, ActionScale, 6},
		{"no traffic: down to the minimum", 5, 0, ActionScale, 1},
		{"far above the maximum: the maximum", 2, 5000, ActionScale, 10},
		{"zero instances with traffic: up", 0, 150, ActionScale, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPolicy("/web", rateSettings(), testInterval)
			tick := 0
			ds := feed(p, &tick, c.instances, c.rate, c.rate, c.rate, c.rate)
			d := ds[len(ds)-1]
			if d.Action != c.want || d.To != c.to {
				t.Fatalf("decision %s -> %d (%s), want %s -> %d", d.Action, d.To, d.Reason, c.want, c.to)
			}
		})
	}
}

// After a scale the app waits Cooldown + Samples intervals before the next one.
func TestRateCooldown(t *testing.T) {
	p := NewPolicy("/web", rateSettings(), testInterval)
	tick := 0
	ds := feed(p, &tick, 1, 500, 500, 500, 500)
	if ds[3].Action != ActionScale {
		t.Fatalf("no scale: %+v", ds[3])
	}
	p.Scaled(t0.Add(3 * testInterval))
	// Cooldown 2 + Samples 3 = 5 intervals: ticks 4..7 may not scale, tick 8 may. At 4 the
	// average (500, 500, 1000) is within the thresholds of 5 instances; at 5 it is past them
	// for the first interval; at 6 and 7 it waits for the cooldown.
	ds = feed(p, &tick, 5, 1000, 1000, 1000, 1000, 1000)
	if got := actions(ds); got != "hold hold wait wait scale" {
		t.Fatalf("actions %q: want holds, waits until the cooldown ends at interval 8, then a scale", got)
	}
	if !strings.Contains(ds[2].Reason, "cooling down") {
		t.Errorf("reason %q, want it to say the app is cooling down", ds[2].Reason)
	}
}

// Incomplete samples (an edge missing) never scale down, but may scale up: the rate they
// give is a lower bound.
func TestRateMissingSamplesNeverScaleDown(t *testing.T) {
	p := NewPolicy("/web", rateSettings(), testInterval)
	for i := range 8 {
		// Every other sample lacks an edge: every window of 3 holds one.
		d := p.DecideRate(t0.Add(time.Duration(i)*testInterval), 8, map[int]PortRate{10000: {Rate: 50, Complete: i%2 == 0}}, false)
		if d.Action == ActionScale {
			t.Fatalf("interval %d scaled down with an incomplete sample in the window: %+v", i, d)
		}
	}
	// No figure at all for two intervals: still no scale down.
	p = NewPolicy("/web", rateSettings(), testInterval)
	tick := 0
	feed(p, &tick, 8, 50, 50, 50)
	for range 2 {
		d := p.DecideRate(t0.Add(time.Duration(tick)*testInterval), 8, map[int]PortRate{}, false)
		tick++
		if d.Action == ActionScale {
			t.Fatalf("scaled down on missing samples: %+v", d)
		}
	}
	// Incomplete but high: scale up.
	p = NewPolicy("/web", rateSettings(), testInterval)
	var d Decision
	for i := range 4 {
		d = p.DecideRate(t0.Add(time.Duration(i)*testInterval), 1, map[int]PortRate{10000: {Rate: 800, Complete: false}}, false)
	}
	if d.Action != ActionScale || d.To != 8 {
		t.Fatalf("decision %+v, want a scale up to 8 on a lower bound of 800 req/s", d)
	}
	// Nothing from any edge ever: skip.
	p = NewPolicy("/web", rateSettings(), testInterval)
	for i := range 4 {
		d = p.DecideRate(t0.Add(time.Duration(i)*testInterval), 3, nil, false)
	}
	if d.Action != ActionSkip {
		t.Fatalf("decision %+v, want a skip without counts", d)
	}
}

// The busiest port decides; an app in a deployment is skipped and its count restarts.
func TestRateBusiestPortAndDeployment(t *testing.T) {
	p := NewPolicy("/web", rateSettings(), testInterval)
	var d Decision
	for i := range 4 {
		d = p.DecideRate(t0.Add(time.Duration(i)*testInterval), 1,
			map[int]PortRate{10000: {Rate: 150, Complete: true}, 10001: {Rate: 700, Complete: true}}, false)
	}
	if d.Action != ActionScale || d.To != 7 || d.Inputs.Port != 10001 {
		t.Fatalf("decision %+v, want port 10001 to scale to 7", d)
	}
	p = NewPolicy("/web", rateSettings(), testInterval)
	for i := range 6 {
		d = p.DecideRate(t0.Add(time.Duration(i)*testInterval), 1, map[int]PortRate{10000: {Rate: 900, Complete: true}}, true)
		if d.Action != ActionSkip || !strings.Contains(d.Reason, "deployment") {
			t.Fatalf("interval %d: %+v, want a skip for the deployment", i, d)
		}
	}
	d = p.DecideRate(t0.Add(6*testInterval), 1, map[int]PortRate{10000: {Rate: 900, Complete: true}}, false)
	if d.Action != ActionHold {
		t.Fatalf("right after the deployment: %+v, want a hold (intervals past threshold start again)", d)
	}
}

func resourceSettings(mode Mode) Settings {
	s := DefaultSettings()
	s.Mode, s.MinInstances, s.MaxInstances, s.Multiplier = mode, 2, 9, 1.5
	s.CPUMin, s.CPUMax, s.MemMin, s.MemMax = 20, 80, 20, 80
	s.ScaleUpFactor, s.CoolDownFactor, s.Cooldown = 2, 3, 2
	return s
}

func usage(cpu, mem float64) ResourceSample {
	return ResourceSample{CPU: cpu, Mem: mem, HasCPU: true, HasMem: true, Tasks: 4, WithStats: 4}
}

// Resource mode: ScaleUpFactor intervals above the range multiply, CoolDownFactor below
// divide, bounded; the trigger modes combine CPU and memory.
func TestResourceDecisions(t *testing.T) {
	cases := []struct {
		name      string
		mode      Mode
		instances int
		sample    ResourceSample
		rounds    int
		want      Action
		to        int
	}{
		{"cpu high twice: ceil(4x1.5)", ModeCPU, 4, usage(95, 50), 2, ActionScale, 6},
		{"cpu high once: hold", ModeCPU, 4, usage(95, 50), 1, ActionHold, 4},
		{"cpu low three times: floor(4/1.5)", ModeCPU, 4, usage(5, 50), 3, ActionScale, 2},
		{"mem high, up to the maximum", ModeMem, 8, usage(50, 90), 2, ActionScale, 9},
		{"at the minimum: hold", ModeCPU, 2, usage(5, 50), 3, ActionHold, 2},
		{"and: only cpu high", ModeAnd, 4, usage(95, 50), 3, ActionHold, 4},
		{"and: both high", ModeAnd, 4, usage(95, 85), 2, ActionScale, 6},
		{"or: cpu high, mem low: up", ModeOr, 4, usage(95, 5), 2, ActionScale, 6},
		{"or: mem low only: down", ModeOr, 4, usage(50, 5), 3, ActionScale, 2},
		{"cpu unknown: skip", ModeCPU, 4, ResourceSample{Mem: 50, HasMem: true, Tasks: 4, WithStats: 4}, 3, ActionSkip, 4},
		{"a task unreported: never down", ModeCPU, 4, ResourceSample{CPU: 1, HasCPU: true, Tasks: 4, WithStats: 3}, 5, ActionHold, 4},
		{"a task unreported: still up", ModeCPU, 4, ResourceSample{CPU: 99, HasCPU: true, Tasks: 4, WithStats: 3}, 2, ActionScale, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPolicy("/work", resourceSettings(c.mode), testInterval)
			var d Decision
			for i := range c.rounds {
				d = p.DecideResource(t0.Add(time.Duration(i)*testInterval), c.instances, c.sample, false)
			}
			if d.Action != c.want || d.To != c.to {
				t.Fatalf("decision %s -> %d (%s), want %s -> %d", d.Action, d.To, d.Reason, c.want, c.to)
			}
		})
	}
}

// Resource mode honours the cooldown after a scale and never scales in a deployment.
func TestResourceCooldownAndDeployment(t *testing.T) {
	p := NewPolicy("/work", resourceSettings(ModeCPU), testInterval)
	var ds []Decision
	for i := range 7 {
		now := t0.Add(time.Duration(i) * testInterval)
		d := p.DecideResource(now, 4, usage(95, 50), false)
		if d.Action == ActionScale {
			p.Scaled(now)
		}
		ds = append(ds, d)
	}
	// Up at 1; then the count starts again: hold at 2, at 3 (2 above) the cooldown of 2
	// intervals from 1 has ended.
	if got := actions(ds); got != "hold scale hold scale hold scale hold" {
		t.Fatalf("actions %q", got)
	}
	p = NewPolicy("/work", resourceSettings(ModeCPU), testInterval)
	p.Scaled(t0)
	p.DecideResource(t0.Add(testInterval), 4, usage(95, 50), false)
	if d := p.DecideResource(t0.Add(testInterval+testInterval/2), 4, usage(95, 50), false); d.Action != ActionWait {
		t.Fatalf("inside the cooldown: %+v, want a wait", d)
	}
	for i := range 4 {
		if d := p.DecideResource(t0.Add(time.Duration(i+5)*testInterval), 4, usage(99, 99), true); d.Action != ActionSkip {
			t.Fatalf("in a deployment: %+v", d)
		}
	}
}

// Backoff doubles from its base up to its max and starts again after a success.
func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 5 * time.Second}
	var waits []time.Duration
	for range 5 {
		waits = append(waits, b.Failed(t0))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if b.Ready(t0.Add(4*time.Second)) || !b.Ready(t0.Add(5*time.Second)) {
		t.Fatal("Ready before or not after the wait")
	}
	b.Succeeded()
	if !b.Ready(t0) || b.Failed(t0) != time.Second {
		t.Fatal("a success does not restart the backoff")
	}
}

// A rate too big for an int (a counter jump over a tiny time span, a hostile edge) scales
// to the most instances, never to the fewest: converting such a float to int gives the most
// negative int on amd64, which the instance bounds then raised to MinInstances.
func TestRateTooBigForAnIntScalesToMax(t *testing.T) {
	p := NewPolicy("/web", rateSettings(), testInterval)
	tick := 0
	ds := feed(p, &tick, 5, 1e30, 1e30, 1e30, 1e30)
	last := ds[len(ds)-1]
	if last.Action != ActionScale || last.To != 10 {
		t.Fatalf("decision %+v, want a scale 5 -> 10 (the most instances)", last)
	}
}
