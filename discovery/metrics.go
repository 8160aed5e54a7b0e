package discovery

import (
	"time"

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

// syncAgeDesc describes lodestar_discovery_sync_age_seconds, computed at scrape time.
var syncAgeDesc = prometheus.NewDesc("lodestar_discovery_sync_age_seconds",
	"Seconds since the last successful sync, per source (absent before the first one).",
	[]string{"source"}, nil)

// syncAgeCollector computes every source's sync age when scraped, so the age grows while a
// source is stuck instead of standing at the value of the last update.
type syncAgeCollector struct{ r *Registry }

func (c syncAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- syncAgeDesc }

func (c syncAgeCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, s := range c.r.Sources() {
		if s.LastSync.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(syncAgeDesc, prometheus.GaugeValue, now.Sub(s.LastSync).Seconds(), s.Name)
	}
}

// SyncAgeCollector returns a collector of lodestar_discovery_sync_age_seconds for r. The
// process registers the one registry it serves (several registries would collide).
func (r *Registry) SyncAgeCollector() prometheus.Collector { return syncAgeCollector{r} }
