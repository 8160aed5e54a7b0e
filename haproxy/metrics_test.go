package haproxy

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gathered returns the value of the counter or gauge (or the sample count of the histogram) name with
// the given labels from the default registry.
func gathered(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestObserveFunctions(t *testing.T) {
	reloadsOK := gathered(t, "lodestar_haproxy_reloads_total", map[string]string{"reason": "structure", "result": "ok"})
	reloadsErr := gathered(t, "lodestar_haproxy_reloads_total", map[string]string{"reason": "structure", "result": "error"})
	durations := gathered(t, "lodestar_haproxy_reload_duration_seconds", nil)
	runtimeOK := gathered(t, "lodestar_haproxy_runtime_commands_total", map[string]string{"result": "ok"})
	validErr := gathered(t, "lodestar_haproxy_validations_total", map[string]string{"result": "error"})

	ObserveReload("structure", true, 120*time.Millisecond)
	ObserveReload("structure", false, time.Second)
	ObserveRuntime(7, true)
	ObserveValidation(false)

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lodestar_haproxy_reloads_total", map[string]string{"reason": "structure", "result": "ok"}, reloadsOK + 1},
		{"lodestar_haproxy_reloads_total", map[string]string{"reason": "structure", "result": "error"}, reloadsErr + 1},
		{"lodestar_haproxy_reload_duration_seconds", nil, durations + 2},
		{"lodestar_haproxy_runtime_commands_total", map[string]string{"result": "ok"}, runtimeOK + 7},
		{"lodestar_haproxy_validations_total", map[string]string{"result": "error"}, validErr + 1},
	} {
		if got := gathered(t, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
