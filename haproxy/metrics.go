package haproxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Metrics of the HAProxy front end (namespace lodestar, subsystem haproxy), registered with the
// default Prometheus registerer that the API's /metrics serves. The supervisor records process
// restarts itself; reloads, runtime commands and validations are recorded by the controller that
// decides them, through ObserveReload, ObserveRuntime and ObserveValidation, so that each is
// counted once with its reason.
var (
	metricReloads = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "reloads_total",
		Help: "HAProxy reloads, by reason and result (ok or error).",
	}, []string{"reason", "result"})
	metricReloadDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "reload_duration_seconds",
		Help:    "Time from asking the master to reload to the new worker answering.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	})
	metricRuntimeCommands = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "runtime_commands_total",
		Help: "Commands sent over the HAProxy Runtime API, by result (ok or error).",
	}, []string{"result"})
	metricValidations = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "validations_total",
		Help: "Configuration checks with haproxy -c, by result (ok or error).",
	}, []string{"result"})
	metricProcessRestarts = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "process_restarts_total",
		Help: "Times the supervisor started HAProxy again after it exited on its own.",
	})
	metricBuildDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "build_duration_seconds",
		Help:    "Time to turn a registry snapshot into a configuration model (labels parsed, servers placed).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 10),
	})
	metricRenderDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "render_duration_seconds",
		Help:    "Time to write a configuration model as haproxy.cfg and map files.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 10),
	})
	metricOldWorkers = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "old_workers",
		Help: "HAProxy workers of earlier generations still finishing their connections after a reload (bounded by hard-stop-after and mworker-max-reloads).",
	})
	metricProcessUp = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "haproxy", Name: "process_up",
		Help: "1 while the supervised HAProxy master answers on its master socket, else 0.",
	})
)

func resultLabel(ok bool) string {
	if ok {
		return "ok"
	}
	return "error"
}

// ObserveReload records one reload with its reason (for example "structure", "usr1", "retry")
// and whether it was confirmed; d is how long it took.
func ObserveReload(reason string, ok bool, d time.Duration) {
	metricReloads.WithLabelValues(reason, resultLabel(ok)).Inc()
	metricReloadDuration.Observe(d.Seconds())
}

// ObserveRuntime records n Runtime API commands that all succeeded (ok) or did not.
func ObserveRuntime(n int, ok bool) {
	metricRuntimeCommands.WithLabelValues(resultLabel(ok)).Add(float64(n))
}

// ObserveValidation records one `haproxy -c` run.
func ObserveValidation(ok bool) {
	metricValidations.WithLabelValues(resultLabel(ok)).Inc()
}

// timedBuild is Build, timed into lodestar_haproxy_build_duration_seconds.
func timedBuild(snap *discovery.Snapshot, cfg Config, prev *Model) *Model {
	start := time.Now()
	m := Build(snap, cfg, prev)
	metricBuildDuration.Observe(time.Since(start).Seconds())
	return m
}

// timedRender is Render, timed into lodestar_haproxy_render_duration_seconds.
func timedRender(m *Model) (*Rendered, error) {
	start := time.Now()
	r, err := Render(m)
	metricRenderDuration.Observe(time.Since(start).Seconds())
	return r, err
}
