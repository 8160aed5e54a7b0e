package zkrules

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the ZooKeeper rules source (namespace lodestar, subsystem zkrules).
var (
	rulesGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "zkrules", Name: "rules",
		Help: "Routing rules last sent to the registry.",
	})
	badNodes = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "zkrules", Name: "bad_nodes",
		Help: "Nodes under the rules path that hold no usable rule and are left out.",
	})
	watchEvents = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "zkrules", Name: "watch_events_total",
		Help: "ZooKeeper watch events acted on, by watch (children, data) and event.",
	}, []string{"watch", "event"})
	armedWatches = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "zkrules", Name: "watches",
		Help: "ZooKeeper watches armed and not yet fired (one per rule node, plus the children watch).",
	})
	zkUp = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "zkrules", Name: "zookeeper_up",
		Help: "1 while the rules' ZooKeeper session is up, else 0.",
	})
	writes = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "zkrules", Name: "writes_total",
		Help: "Rule writes, by op (put, delete) and result (ok, invalid, absent, error).",
	}, []string{"op", "result"})
)
