package file

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the file source (namespace lodestar, subsystem file), registered with the default
// Prometheus registerer.
var (
	loads = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "file", Name: "loads_total",
		Help: "Changed files read, by kind (apps, mesos_state) and result (ok, error).",
	}, []string{"kind", "result"})
	loadSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "file", Name: "load_duration_seconds",
		Help:    "Time to decode a file and hand it to the registry, by kind.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
	}, []string{"kind"})
	appErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "file", Name: "app_errors_total",
		Help: "Apps skipped because their definition in the apps file is invalid.",
	})
)

// metric is the kind as a metric label value.
func (k kind) metric() string {
	if k == kindApps {
		return "apps"
	}
	return "mesos_state"
}
