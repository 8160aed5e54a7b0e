// Package autoscale scales Marathon apps by their request rate through lodestar's HAProxy
// (marathon-lb-autoscale's semantics) or by their tasks' CPU and memory use as the Mesos
// agents report it (marathon-autoscale's semantics). App teams opt in with labels
// (LODESTAR_AUTOSCALE_*); flags give the defaults. It acts on the cluster only through
// Marathon's REST API and reads lodestar's views through the api package's interfaces or
// lodestar's HTTP API, never HAProxy internals.
//
// Deciding is separate from doing: Policy holds one app's decision state and decides from
// samples and the clock it is given (engine.go); the Scaler gathers samples, asks the
// policies and writes to Marathon (scaler.go).
package autoscale

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Mode is what an app is scaled by.
type Mode string

// The modes: request rate (marathon-lb-autoscale), and CPU, memory, both or either
// (marathon-autoscale's trigger modes cpu, mem, and, or).
const (
	ModeRate Mode = "rps"
	ModeCPU  Mode = "cpu"
	ModeMem  Mode = "mem"
	ModeAnd  Mode = "and"
	ModeOr   Mode = "or"
)

// Resource reports whether the mode reads the agents' statistics.
func (m Mode) Resource() bool { return m == ModeCPU || m == ModeMem || m == ModeAnd || m == ModeOr }

// The labels an app opts in with. LabelMode is the opt-in: an app without it is not scaled.
const (
	LabelPrefix             = "LODESTAR_AUTOSCALE_"
	LabelMode               = LabelPrefix + "MODE"
	LabelMinInstances       = LabelPrefix + "MIN_INSTANCES"
	LabelMaxInstances       = LabelPrefix + "MAX_INSTANCES"
	LabelSamples            = LabelPrefix + "SAMPLES"
	LabelCooldown           = LabelPrefix + "COOLDOWN"
	LabelTargetRPS          = LabelPrefix + "TARGET_RPS"
	LabelThresholdPercent   = LabelPrefix + "THRESHOLD_PERCENT"
	LabelThresholdInstances = LabelPrefix + "THRESHOLD_INSTANCES"
	LabelIntervalsPast      = LabelPrefix + "INTERVALS_PAST_THRESHOLD"
	LabelServicePorts       = LabelPrefix + "SERVICE_PORTS"
	LabelCPUMax             = LabelPrefix + "CPU_MAX"
	LabelCPUMin             = LabelPrefix + "CPU_MIN"
	LabelMemMax             = LabelPrefix + "MEM_MAX"
	LabelMemMin             = LabelPrefix + "MEM_MIN"
	LabelMultiplier         = LabelPrefix + "MULTIPLIER"
	LabelScaleUpFactor      = LabelPrefix + "SCALE_UP_FACTOR"
	LabelCoolDownFactor     = LabelPrefix + "COOL_DOWN_FACTOR"
)

// Labels are every label read, LabelMode first.
var Labels = []string{
	LabelMode, LabelMinInstances, LabelMaxInstances, LabelSamples, LabelCooldown, LabelTargetRPS,
	LabelThresholdPercent, LabelThresholdInstances, LabelIntervalsPast, LabelServicePorts, LabelCPUMax,
	LabelCPUMin, LabelMemMax, LabelMemMin, LabelMultiplier, LabelScaleUpFactor, LabelCoolDownFactor,
}

// Settings are how one app is scaled: the flags' defaults overridden by the app's labels.
type Settings struct {
	Mode Mode
	// MinInstances and MaxInstances bound every scale.
	MinInstances, MaxInstances int
	// Samples is how many intervals' rates are averaged (request rate mode).
	Samples int
	// Cooldown is how many intervals to wait after a scale before the next one, on top of
	// Samples intervals in request rate mode (so the average holds only rates seen since).
	Cooldown int
	// TargetRPS is the requests per second one instance should take.
	TargetRPS float64
	// ThresholdPercent (a fraction: 0.5 is 50%) and ThresholdInstances: no scale while the
	// rate per instance is within ThresholdPercent of TargetRPS and the instance count
	// within ThresholdInstances of the target.
	ThresholdPercent   float64
	ThresholdInstances int
	// IntervalsPastThreshold is how many intervals in a row the target must differ before
	// a scale (marathon-lb-autoscale's fixed 3).
	IntervalsPastThreshold int
	// ServicePorts restricts the rates to these service ports; empty means every port.
	ServicePorts []int
	// CPUMax/CPUMin are the average CPU use per task in percent of one CPU (marathon-
	// autoscale's "CPU time": 2 busy CPUs are 200); MemMax/MemMin the average memory use in
	// percent of the task's limit.
	CPUMax, CPUMin, MemMax, MemMin float64
	// Multiplier scales out to ceil(n×Multiplier) and in to floor(n÷Multiplier).
	Multiplier float64
	// ScaleUpFactor and CoolDownFactor are how many intervals in a row the use must be
	// above (below) its range before a scale out (in).
	ScaleUpFactor, CoolDownFactor int
}

// DefaultSettings are marathon-lb-autoscale's and marathon-autoscale's defaults, except
// MaxInstances, which is bounded (see Limits).
func DefaultSettings() Settings {
	return Settings{
		Mode: ModeRate, MinInstances: 1, MaxInstances: 20, Samples: 10, Cooldown: 5,
		TargetRPS: 1000, ThresholdPercent: 0.5, ThresholdInstances: 3, IntervalsPastThreshold: 3,
		CPUMax: 80, CPUMin: 20, MemMax: 80, MemMin: 20, Multiplier: 1.5, ScaleUpFactor: 3, CoolDownFactor: 5,
	}
}

// InstancesLimit is the most instances any app may be scaled to, whatever its labels say:
// labels are written by app teams, and a typo must not ask Marathon for a million tasks.
const InstancesLimit = 1000

// Check reports the first setting out of its range, naming the setting as its label.
func (s Settings) Check() error {
	var errs []error
	bad := func(label, why string) { errs = append(errs, fmt.Errorf("%s %s", label, why)) }
	switch s.Mode {
	case ModeRate, ModeCPU, ModeMem, ModeAnd, ModeOr:
	default:
		bad(LabelMode, fmt.Sprintf("%q: want rps, cpu, mem, and or or", s.Mode))
	}
	if s.MinInstances < 0 || s.MinInstances > InstancesLimit {
		bad(LabelMinInstances, fmt.Sprintf("%d: want 0 to %d", s.MinInstances, InstancesLimit))
	}
	if s.MaxInstances < 1 || s.MaxInstances > InstancesLimit {
		bad(LabelMaxInstances, fmt.Sprintf("%d: want 1 to %d", s.MaxInstances, InstancesLimit))
	}
	if s.MinInstances > s.MaxInstances {
		bad(LabelMinInstances, fmt.Sprintf("%d is above %s %d", s.MinInstances, LabelMaxInstances, s.MaxInstances))
	}
	intIn := func(label string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(label, fmt.Sprintf("%d: want %d to %d", v, lo, hi))
		}
	}
	floatIn := func(label string, v, lo, hi float64) {
		if math.IsNaN(v) || v < lo || v > hi {
			bad(label, fmt.Sprintf("%v: want %v to %v", v, lo, hi))
		}
	}
	intIn(LabelSamples, s.Samples, 1, 1000)
	intIn(LabelCooldown, s.Cooldown, 0, 10000)
	intIn(LabelThresholdInstances, s.ThresholdInstances, 0, InstancesLimit)
	intIn(LabelIntervalsPast, s.IntervalsPastThreshold, 1, 1000)
	intIn(LabelScaleUpFactor, s.ScaleUpFactor, 1, 1000)
	intIn(LabelCoolDownFactor, s.CoolDownFactor, 1, 1000)
	floatIn(LabelTargetRPS, s.TargetRPS, 0.001, 1e9)
	floatIn(LabelThresholdPercent, s.ThresholdPercent, 0, 100)
	floatIn(LabelCPUMax, s.CPUMax, 0, 1e5)
	floatIn(LabelCPUMin, s.CPUMin, 0, 1e5)
	floatIn(LabelMemMax, s.MemMax, 0, 100)
	floatIn(LabelMemMin, s.MemMin, 0, 100)
	floatIn(LabelMultiplier, s.Multiplier, 1.01, 100)
	if s.CPUMin > s.CPUMax {
		bad(LabelCPUMin, fmt.Sprintf("%v is above %s %v", s.CPUMin, LabelCPUMax, s.CPUMax))
	}
	if s.MemMin > s.MemMax {
		bad(LabelMemMin, fmt.Sprintf("%v is above %s %v", s.MemMin, LabelMemMax, s.MemMax))
	}
	for _, p := range s.ServicePorts {
		if p < 1 || p > 65535 {
			bad(LabelServicePorts, fmt.Sprintf("%d: want ports 1 to 65535", p))
		}
	}
	return errors.Join(errs...)
}

// labelValueLimit bounds a label value read: longer values are refused, not cut.
const labelValueLimit = 256

// labelErrorsShown is how many bad labels an error names; labelNameShown how much of a
// label's name.
const (
	labelErrorsShown = 3
	labelNameShown   = 80
)

// shortLabel is a label name cut for an error message.
func shortLabel(k string) string {
	if len(k) <= labelNameShown {
		return k
	}
	return strings.ToValidUTF8(k[:labelNameShown], "") + "…"
}

// SettingsOf returns the app's settings: defaults overridden by its labels. ok is false for
// an app without LabelMode (not opted in). A label that is not a number, out of range or
// unknown (a LODESTAR_AUTOSCALE_ label we do not read, most likely a typo) is an error naming
// the app and the label: that app is not scaled.
func SettingsOf(appID string, labels map[string]string, defaults Settings) (s Settings, ok bool, err error) {
	mode, ok := labels[LabelMode]
	if !ok {
		return Settings{}, false, nil
	}
	s = defaults
	var errs []error
	names := make([]string, 0, len(labels))
	for k := range labels {
		if strings.HasPrefix(k, LabelPrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		v := strings.TrimSpace(labels[k])
		if len(v) > labelValueLimit {
			errs = append(errs, fmt.Errorf("label %s: value of %d bytes, longer than %d", shortLabel(k), len(v), labelValueLimit))
			continue
		}
		if err := s.set(k, v); err != nil {
			errs = append(errs, fmt.Errorf("label %s=%q: %w", shortLabel(k), v, err))
		}
	}
	// The error is logged and shown on the status page: thousands of bad labels make a
	// count, not a page of them.
	if len(errs) > labelErrorsShown {
		errs = append(errs[:labelErrorsShown], fmt.Errorf("%d bad %s labels in all", len(errs), LabelPrefix))
	}
	s.Mode = Mode(strings.ToLower(strings.TrimSpace(mode)))
	if err := errors.Join(errs...); err != nil {
		return Settings{}, true, fmt.Errorf("app %s: %w", appID, err)
	}
	if err := s.Check(); err != nil {
		return Settings{}, true, fmt.Errorf("app %s: %w", appID, err)
	}
	return s, true, nil
}

// set sets the setting of one label from its value.
func (s *Settings) set(label, v string) error {
	ints := map[string]*int{
		LabelMinInstances: &s.MinInstances, LabelMaxInstances: &s.MaxInstances, LabelSamples: &s.Samples,
		LabelCooldown: &s.Cooldown, LabelThresholdInstances: &s.ThresholdInstances,
		LabelIntervalsPast: &s.IntervalsPastThreshold, LabelScaleUpFactor: &s.ScaleUpFactor,
		LabelCoolDownFactor: &s.CoolDownFactor,
	}
	floats := map[string]*float64{
		LabelTargetRPS: &s.TargetRPS, LabelThresholdPercent: &s.ThresholdPercent, LabelCPUMax: &s.CPUMax,
		LabelCPUMin: &s.CPUMin, LabelMemMax: &s.MemMax, LabelMemMin: &s.MemMin, LabelMultiplier: &s.Multiplier,
	}
	switch {
	case label == LabelMode:
		return nil // read by SettingsOf, checked by Check
	case label == LabelServicePorts:
		s.ServicePorts = nil
		for p := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return errors.New("want service ports separated by commas")
			}
			if !slices.Contains(s.ServicePorts, n) {
				s.ServicePorts = append(s.ServicePorts, n)
			}
		}
		return nil
	case ints[label] != nil:
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("want a whole number")
		}
		*ints[label] = n
		return nil
	case floats[label] != nil:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return errors.New("want a number")
		}
		*floats[label] = f
		return nil
	}
	return errors.New("unknown autoscale label (a typo?)")
}
