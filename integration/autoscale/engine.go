package autoscale

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Action is what a decision does.
type Action string

// The actions. Every decision has one, and the metrics count them.
const (
	// ActionScale asks Marathon for To instances.
	ActionScale Action = "scale"
	// ActionHold keeps the instances: the app is where it should be, or not far enough off
	// for long enough.
	ActionHold Action = "hold"
	// ActionWait keeps the instances while the policy warms up or cools down after a scale.
	ActionWait Action = "wait"
	// ActionSkip does not decide: the app is in a deployment, its labels are bad, or there is
	// nothing to decide from.
	ActionSkip Action = "skip"
)

// Decision is what was decided for one app at one interval, with what it was decided from.
type Decision struct {
	App    string    `json:"app"`
	Mode   Mode      `json:"mode"`
	At     time.Time `json:"at"`
	Action Action    `json:"action"`
	From   int       `json:"from"`
	To     int       `json:"to"`
	Reason string    `json:"reason"`
	Inputs Inputs    `json:"inputs"`
	// Error is why a scale Marathon was asked for did not happen; DryRun marks a scale only
	// logged.
	Error  string `json:"error,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// Inputs are the figures a decision was made from.
type Inputs struct {
	// RPS is the averaged request rate of the busiest service port (Port), over Samples
	// samples, Incomplete of which lacked an edge or a counter.
	RPS        float64 `json:"rps,omitempty"`
	Port       int     `json:"port,omitempty"`
	Samples    int     `json:"samples,omitempty"`
	Incomplete int     `json:"incomplete,omitempty"`
	// CPU and Mem are the tasks' average use in percent (see Settings); nil when unknown.
	CPU *float64 `json:"cpu,omitempty"`
	Mem *float64 `json:"mem,omitempty"`
	// Tasks is how many tasks the app has, WithStats how many of them the agents reported.
	Tasks     int `json:"tasks,omitempty"`
	WithStats int `json:"with_stats,omitempty"`
}

// PortRate is one service port's request rate over one interval, summed over the edges.
// Complete is false when an edge did not answer or had no counter for the port: the rate is
// then a lower bound.
type PortRate struct {
	Rate     float64
	Complete bool
}

// ResourceSample is the tasks' CPU and memory use over one interval.
type ResourceSample struct {
	// CPU and Mem are averages over the tasks that have a figure; Has* say whether any has.
	CPU, Mem       float64
	HasCPU, HasMem bool
	Tasks          int
	WithStats      int
}

// rateEntry is one interval's rate of a port; ok is false for an interval without one.
type rateEntry struct {
	rate         float64
	ok, complete bool
}

// Policy holds one app's decision state. It is not safe for concurrent use: one goroutine
// (the Scaler's loop) owns it. It never reads a clock: every call is given the time.
type Policy struct {
	app      string
	settings Settings
	interval time.Duration

	windows       map[int][]rateEntry // request rate mode: the last Samples entries per port
	intervals     int                 // intervals seen (request rate mode's warm-up)
	pastThreshold int
	up, down      int // resource mode: intervals in a row above / below the range
	lastScaled    time.Time
}

// NewPolicy returns the policy of an app scaled with s every interval.
func NewPolicy(app string, s Settings, interval time.Duration) *Policy {
	return &Policy{app: app, settings: s, interval: interval, windows: map[int][]rateEntry{}}
}

// Settings returns the settings the policy decides with.
func (p *Policy) Settings() Settings { return p.settings }

// Scaled records that the app was scaled (or, in a dry run, would have been) at now: the
// cooldown starts, the counters restart.
func (p *Policy) Scaled(now time.Time) {
	p.lastScaled = now
	p.pastThreshold, p.up, p.down = 0, 0, 0
}

// clamp bounds x, a count of instances already rounded, to the settings' instance range. It
// bounds the float before converting: a float beyond int's range converts to the most
// negative int on amd64, and a huge rate would have scaled to the fewest instances. NaN,
// which no figure should give, is the fewest too: it never scales out.
func (p *Policy) clamp(x float64) int {
	lo, hi := p.settings.MinInstances, p.settings.MaxInstances
	switch {
	case x >= float64(hi):
		return hi
	case x <= float64(lo) || math.IsNaN(x):
		return lo
	}
	return int(x)
}

func (p *Policy) decision(now time.Time, instances int, a Action, to int, reason string, in Inputs) Decision {
	return Decision{App: p.app, Mode: p.settings.Mode, At: now, Action: a, From: instances, To: to, Reason: reason, Inputs: in}
}

// coolingDown reports whether now is within wait intervals of the last scale.
func (p *Policy) coolingDown(now time.Time, wait int) (bool, time.Duration) {
	if p.lastScaled.IsZero() {
		return false, 0
	}
	left := p.lastScaled.Add(time.Duration(wait) * p.interval).Sub(now)
	return left > 0, left
}

// DecideRate adds one interval's rates (by service port; a port missing from rates had no
// figure at all) and decides as marathon-lb-autoscale does: the target is the busiest port's
// average rate over the last Samples intervals divided by TargetRPS, rounded up and bounded
// by the instance range; the app is scaled when the target differs by ThresholdPercent or
// ThresholdInstances for IntervalsPastThreshold intervals in a row, and not within Cooldown
// plus Samples intervals of the last scale. An incomplete window never scales down: a
// missing edge or counter reads as less traffic than there is.
func (p *Policy) DecideRate(now time.Time, instances int, rates map[int]PortRate, deploying bool) Decision {
	p.addRates(rates)
	in, complete := p.rateInputs()
	s := p.settings
	target := p.clamp(math.Ceil(in.RPS / s.TargetRPS))
	switch {
	case deploying:
		p.pastThreshold = 0
		return p.decision(now, instances, ActionSkip, instances, "in a deployment: never scaled", in)
	case p.intervals < s.Samples:
		return p.decision(now, instances, ActionWait, instances, fmt.Sprintf("warming up: %d of %d samples", p.intervals, s.Samples), in)
	case in.Samples == 0:
		p.pastThreshold = 0
		return p.decision(now, instances, ActionSkip, instances, "no request counts from any edge", in)
	case target == instances:
		p.pastThreshold = 0
		return p.decision(now, instances, ActionHold, instances, "at target", in)
	case target < instances && !complete:
		p.pastThreshold = 0
		return p.decision(now, instances, ActionHold, instances,
			fmt.Sprintf("target %d below %d, but %d of %d samples are incomplete: missing counts never scale down", target, instances, in.Incomplete, s.Samples), in)
	}
	if instances > 0 {
		off := math.Abs(in.RPS/float64(instances)-s.TargetRPS) / s.TargetRPS
		if off < s.ThresholdPercent && absInt(target-instances) < s.ThresholdInstances {
			p.pastThreshold = 0
			return p.decision(now, instances, ActionHold, instances,
				fmt.Sprintf("target %d within thresholds (rate per instance %.0f%% off target)", target, off*100), in)
		}
	}
	p.pastThreshold++
	if p.pastThreshold < s.IntervalsPastThreshold {
		return p.decision(now, instances, ActionHold, instances,
			fmt.Sprintf("target %d past threshold for %d of %d intervals", target, p.pastThreshold, s.IntervalsPastThreshold), in)
	}
	if cooling, left := p.coolingDown(now, s.Cooldown+s.Samples); cooling {
		return p.decision(now, instances, ActionWait, instances,
			fmt.Sprintf("target %d, cooling down for %s more", target, left.Round(time.Millisecond)), in)
	}
	return p.decision(now, instances, ActionScale, target,
		fmt.Sprintf("%.1f req/s on port %d over %d samples, target %.1f req/s per instance", in.RPS, in.Port, in.Samples, s.TargetRPS), in)
}

// addRates pushes one interval's rates into the windows, an empty entry for a port known
// before but missing now.
func (p *Policy) addRates(rates map[int]PortRate) {
	p.intervals++
	for port := range rates {
		if _, ok := p.windows[port]; !ok {
			p.windows[port] = nil
		}
	}
	for port, w := range p.windows {
		e := rateEntry{}
		if r, ok := rates[port]; ok {
			e = rateEntry{rate: r.Rate, ok: true, complete: r.Complete}
		}
		w = append(w, e)
		if len(w) > p.settings.Samples {
			w = w[len(w)-p.settings.Samples:]
		}
		p.windows[port] = w
	}
}

// rateInputs averages each port's window and returns the busiest port's figures; complete
// is true when that port's window is full of complete entries.
func (p *Policy) rateInputs() (Inputs, bool) {
	ports := make([]int, 0, len(p.windows))
	for port := range p.windows {
		ports = append(ports, port)
	}
	slices.Sort(ports) // the lowest port wins a tie, whatever the map order
	best, bestComplete := Inputs{}, false
	for _, port := range ports {
		w := p.windows[port]
		in := Inputs{Port: port}
		sum, complete := 0.0, len(w) == p.settings.Samples
		for _, e := range w {
			if !e.ok || !e.complete {
				in.Incomplete++
				complete = false
			}
			if e.ok {
				sum += e.rate
				in.Samples++
			}
		}
		if in.Samples == 0 {
			continue
		}
		in.RPS = sum / float64(in.Samples)
		if best.Samples == 0 || in.RPS > best.RPS {
			best, bestComplete = in, complete
		}
	}
	return best, bestComplete
}

// DecideResource decides from one interval's CPU and memory use as marathon-autoscale does:
// each of CPU and memory is above its range (+1), below it (-1) or within (0); the mode
// combines them (cpu, mem: that one; and: both agree; or: either above scales out, and
// either below scales in only when neither is above). ScaleUpFactor intervals in a row
// above scale out to ceil(n×Multiplier), CoolDownFactor intervals below scale in to
// floor(n÷Multiplier), both bounded by the instance range; no scale within Cooldown
// intervals of the last. A task without statistics never lets the app scale in.
func (p *Policy) DecideResource(now time.Time, instances int, rs ResourceSample, deploying bool) Decision {
	s := p.settings
	in := Inputs{Tasks: rs.Tasks, WithStats: rs.WithStats}
	if rs.HasCPU {
		in.CPU = ptr(rs.CPU)
	}
	if rs.HasMem {
		in.Mem = ptr(rs.Mem)
	}
	if deploying {
		p.up, p.down = 0, 0
		return p.decision(now, instances, ActionSkip, instances, "in a deployment: never scaled", in)
	}
	dir, known := p.direction(rs)
	if !known {
		p.up, p.down = 0, 0
		return p.decision(now, instances, ActionSkip, instances, "no statistics for the app's tasks yet", in)
	}
	if dir < 0 && rs.WithStats < rs.Tasks {
		dir = 0 // a task the agents did not report may be the busy one
	}
	var target int
	switch dir {
	case 1:
		p.up, p.down = p.up+1, 0
		if p.up < s.ScaleUpFactor {
			return p.decision(now, instances, ActionHold, instances, fmt.Sprintf("above range for %d of %d intervals", p.up, s.ScaleUpFactor), in)
		}
		target = p.clamp(math.Ceil(float64(instances) * s.Multiplier))
	case -1:
		p.up, p.down = 0, p.down+1
		if p.down < s.CoolDownFactor {
			return p.decision(now, instances, ActionHold, instances, fmt.Sprintf("below range for %d of %d intervals", p.down, s.CoolDownFactor), in)
		}
		target = p.clamp(math.Floor(float64(instances) / s.Multiplier))
	default:
		p.up, p.down = 0, 0
		reason := "within range"
		if rs.WithStats < rs.Tasks {
			reason = fmt.Sprintf("within range or below it, with %d of %d tasks reported: missing statistics never scale down", rs.WithStats, rs.Tasks)
		}
		return p.decision(now, instances, ActionHold, instances, reason, in)
	}
	if target == instances {
		return p.decision(now, instances, ActionHold, instances, fmt.Sprintf("at the instance bound %d", instances), in)
	}
	if cooling, left := p.coolingDown(now, s.Cooldown); cooling {
		return p.decision(now, instances, ActionWait, instances, fmt.Sprintf("target %d, cooling down for %s more", target, left.Round(time.Millisecond)), in)
	}
	return p.decision(now, instances, ActionScale, target, fmt.Sprintf("%s use out of range, multiplier %v", s.Mode, s.Multiplier), in)
}

// direction combines CPU's and memory's directions as the mode says; known is false when a
// figure the mode needs is missing.
func (p *Policy) direction(rs ResourceSample) (dir int, known bool) {
	s := p.settings
	cpu := rangeDirection(rs.CPU, s.CPUMin, s.CPUMax)
	mem := rangeDirection(rs.Mem, s.MemMin, s.MemMax)
	switch s.Mode {
	case ModeCPU:
		return cpu, rs.HasCPU
	case ModeMem:
		return mem, rs.HasMem
	case ModeAnd:
		if !rs.HasCPU || !rs.HasMem || cpu != mem {
			return 0, rs.HasCPU && rs.HasMem
		}
		return cpu, true
	}
	// or: marathon-autoscale takes the bitwise or of -1, 0 and 1, which scales in when CPU
	// is below its range and memory above; here the one above wins.
	switch {
	case rs.HasCPU && cpu == 1, rs.HasMem && mem == 1:
		return 1, true
	case !rs.HasCPU || !rs.HasMem:
		return 0, rs.HasCPU || rs.HasMem
	case cpu == -1 || mem == -1:
		return -1, true
	}
	return 0, true
}

func rangeDirection(v, lo, hi float64) int {
	switch {
	case v > hi:
		return 1
	case v < lo:
		return -1
	}
	return 0
}

func absInt(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func ptr[T any](v T) *T { return &v }
