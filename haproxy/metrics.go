package haproxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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
