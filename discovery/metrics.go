package discovery

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the registry and its sources (namespace lodestar, subsystem discovery). They are
// registered with the default Prometheus registerer, which the API's /metrics serves.
var (
	snapshotVersion = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "discovery", Name: "snapshot_version",
		Help: "Version of the newest registry snapshot.",
	})
	registryApps = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "discovery", Name: "apps",
		Help: "Apps in the registry.",
	})
	registryTasks = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "discovery", Name: "tasks",
		Help: "Tasks in the registry (all states).",
	})
	updateErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "discovery", Name: "update_errors_total",
		Help: "Updates the registry rejected (for example a task event for an unknown app).",
	})
	lastSync = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "discovery", Name: "last_sync_timestamp_seconds",
		Help: "Unix time of the last successful sync, per source.",
	}, []string{"source"})
	syncErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "discovery", Name: "sync_errors_total",
		Help: "Failed sync attempts, per source.",
	}, []string{"source"})
)
