package marathon

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Metrics of the Marathon source (namespace lodestar, subsystem marathon).
var (
	events = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "marathon", Name: "events_total",
		Help: "Events read from Marathon's event stream, by type (other = ignored types).",
	}, []string{"type"})
	eventErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "marathon", Name: "event_errors_total",
		Help: "Events that could not be decoded and were skipped.",
	})
	reconnects = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "marathon", Name: "stream_reconnects_total",
		Help: "Event stream reconnects, by reason (idle, eof, network, event_limit, error, leader).",
	}, []string{"reason"})
	streamConnects = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "marathon", Name: "stream_connects_total",
		Help: "Event streams opened.",
	})
	syncs = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "marathon", Name: "full_syncs_total",
		Help: "Completed full syncs of /v2/apps.",
	})
	syncDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "marathon", Name: "full_sync_duration_seconds",
		Help:    "Time to fetch and decode /v2/apps.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
	leaderChanges = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "marathon", Name: "leader_changes_total",
		Help: "Times /v2/leader named another Marathon leader than before.",
	})
	refetches = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "marathon", Name: "app_refetches_total",
		Help: "Single-app refetches triggered by events.",
	})
)

// eventLabel keeps the type label's cardinality bounded: Marathon's own types we subscribe
// to, else "other".
func eventLabel(t string, ignored bool) string {
	if ignored || !slices.Contains(discovery.MarathonEventTypes, t) {
		return "other"
	}
	return t
}
