package relay

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the registry stream (namespace lodestar, subsystem relay): the hub's side and the
// replica's side.
var (
	subscribers = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "subscribers",
		Help: "Replicas (and other clients) connected to GET /v1/stream.",
	})
	sent = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "sent_total",
		Help: "Events sent on GET /v1/stream, by type (snapshot, delta).",
	}, []string{"type"})
	dropped = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "subscribers_dropped_total",
		Help: "Streams ended by the hub because a write failed or timed out (a slow or gone replica).",
	})
	historyEvents = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "history_events",
		Help: "Deltas the hub keeps for replicas that reconnect.",
	})
	historyBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "history_bytes",
		Help: "Bytes of the deltas the hub keeps for replicas that reconnect.",
	})
	encodeSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "encode_duration_seconds",
		Help:    "Time to encode one delta or snapshot (once for every subscriber).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
	})

	received = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "received_total",
		Help: "Events a replica applied from its hub, by type (snapshot, delta).",
	}, []string{"type"})
	rejectedApps = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "rejected_apps_total",
		Help: "Apps from a hub a replica refused (invalid data); it keeps its own version of each.",
	})
	connects = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "connects_total",
		Help: "Streams a replica opened to its hubs, by outcome (resumed: the hub sent only what was missed; snapshot: it sent everything; failed).",
	}, []string{"outcome"})
	connected = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "connected",
		Help: "1 while a replica follows a hub, 0 while it serves its last state with no hub reachable.",
	})
	lagSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "relay", Name: "propagation_seconds",
		Help:    "Time from a hub's registry version to the replica applying it (clocks of both hosts).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 1.5, 24),
	})
)
