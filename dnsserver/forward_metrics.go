package dnsserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of forwarding and its cache (namespace lodestar, subsystem dnsserver).
var (
	cacheHits = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "cache_hits_total",
		Help: "Forwarded queries answered from the cache of forwarded answers.",
	})
	cacheMisses = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "cache_misses_total",
		Help: "Forwarded queries the cache of forwarded answers had no live answer for.",
	})
	cacheEvictions = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "cache_evictions_total",
		Help: "Answers dropped from a full cache to make room (--dns-cache-size).",
	})
	cacheEntries = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "cache_entries",
		Help: "Answers in the cache of forwarded answers, expired ones not yet replaced included.",
	})
	srvUpstreamStray = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "upstream_stray_answers_total",
		Help: "Upstream answers dropped unmatched, per upstream and reason (unknown_id: late or spoofed; question: the ID of a query waiting, another question; malformed).",
	}, []string{"upstream", "reason"})
)
