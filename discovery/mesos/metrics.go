package mesos

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the Mesos source (namespace lodestar, subsystem mesos).
var (
	polls = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "mesos", Name: "polls_total",
		Help: "State polls, by result (ok, error: no master answered as leader).",
	}, []string{"result"})
	pollDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "mesos", Name: "poll_duration_seconds",
		Help:    "Time to find the leader and fetch and decode its state.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	lastSuccess = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "mesos", Name: "last_success_timestamp_seconds",
		Help: "Unix time of the last successful state poll.",
	})
	leaderChanges = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "mesos", Name: "leader_changes_total",
		Help: "Times the master whose state is polled changed.",
	})
	zkUp = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "mesos", Name: "zookeeper_up",
		Help: "1 while leader detection through ZooKeeper works, else 0.",
	})
	zkMasters = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "mesos", Name: "zookeeper_masters",
		Help: "Mesos masters registered in ZooKeeper (readable json.info_ nodes).",
	})
	zkWatches = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "mesos", Name: "zookeeper_watches",
		Help: "ZooKeeper watches armed by leader detection and not fired yet (at most 1).",
	})
	masterInfoErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "mesos", Name: "masterinfo_errors_total",
		Help: "json.info_ nodes in ZooKeeper that could not be read as MasterInfo and were skipped.",
	})
)
