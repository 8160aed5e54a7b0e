package dnsserver

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the DNS server (namespace lodestar, subsystem dnsserver). They are registered with
// the default Prometheus registerer, which the API's /metrics serves.
var (
	srvQueries = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "queries_total",
		Help: "DNS queries answered, by query type and response code.",
	}, []string{"qtype", "rcode"})
	srvQueryDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "query_duration_seconds",
		Help:    "Time from reading a DNS query to writing its answer, by how it was answered (authoritative or forwarded).",
		Buckets: []float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 2.5},
	}, []string{"answer"})
	srvUpstreamDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "upstream_duration_seconds",
		Help:    "Time an upstream resolver took to answer a forwarded query (or to fail), per upstream.",
		Buckets: []float64{5e-4, 1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"upstream"})
	srvUpstreamFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "upstream_failures_total",
		Help: "Forwarded queries an upstream failed, per upstream and reason (timeout, error, rcode: SERVFAIL/REFUSED/NOTIMP/FORMERR, malformed: an answer that does not parse). Answers for another question are dropped, not failures (upstream_stray_answers_total).",
	}, []string{"upstream", "reason"})
	srvDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "queries_dropped_total",
		Help: "UDP packets not answered, by reason (malformed, overload: too many forwarded queries waiting).",
	}, []string{"reason"})
	srvWriteErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "write_errors_total",
		Help: "UDP answers the socket refused to send.",
	})
	srvTCPConns = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "tcp_connections_total",
		Help: "TCP connections accepted (each serves any number of queries), those then closed over a cap included.",
	})
	srvRRLDropped = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "rrl_dropped_total",
		Help: "In-zone UDP answers to clients outside --dns-forward-allow that response-rate limiting dropped.",
	})
	srvRRLSlipped = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "rrl_slipped_total",
		Help: "In-zone UDP answers response-rate limiting sent truncated (TC, no records) instead of dropping them.",
	})
	srvRRLEvicted = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "rrl_evicted_total",
		Help: "Response-rate limiting accounts reused because the table was full (--dns-rrl-table-size).",
	})
	srvOutsideTruncated = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "outside_truncated_total",
		Help: "In-zone UDP answers to clients outside --dns-forward-allow truncated (TC) because they were over a few times the query's size.",
	})
	srvTCPOpen = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "tcp_connections_open",
		Help: "TCP connections open now (within --dns-tcp-max-conns).",
	})
	srvTCPRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "tcp_connections_refused_total",
		Help: "TCP connections closed on accept because a cap was reached: total (--dns-tcp-max-conns) or per_client (--dns-tcp-max-conns-per-client).",
	}, []string{"reason"})
	srvZoneNames = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "zone_names",
		Help: "Owner names of the record index being served.",
	})
	srvZoneRecords = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "zone_records",
		Help: "A, AAAA and SRV records of the record index being served.",
	})
	srvZoneSerial = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "zone_serial",
		Help: "SOA serial of the record index being served.",
	})
	srvZoneUpdated = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "zone_updated_timestamp_seconds",
		Help: "Unix time the served record index was last swapped (staleness: time() minus this).",
	})
	srvZoneCompileSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "dnsserver", Name: "zone_compile_seconds",
		Help:    "Time to compile a record index into wire-format answers.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
	})
)

var (
	authDuration    = srvQueryDuration.WithLabelValues("authoritative")
	forwardDuration = srvQueryDuration.WithLabelValues("forwarded")
)

// qtypeLabels and rcodeLabels are the label values of queries_total; anything else is "other".
var (
	qtypeLabels = [...]string{"A", "AAAA", "SRV", "SOA", "NS", "ANY", "PTR", "MX", "TXT", "other"}
	rcodeLabels = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other"}
)

// queryCounters caches the queries_total counter of each (qtype, rcode), resolved on first use,
// so counting a query on the hot path is an atomic load and an atomic add.
var queryCounters [len(qtypeLabels)][len(rcodeLabels)]atomic.Pointer[prometheus.Counter]

func qtypeSlot(t uint16) int {
	switch t {
	case typeA:
		return 0
	case typeAAAA:
		return 1
	case typeSRV:
		return 2
	case typeSOA:
		return 3
	case typeNS:
		return 4
	case typeANY:
		return 5
	case 12: // PTR
		return 6
	case 15: // MX
		return 7
	case 16: // TXT
		return 8
	}
	return len(qtypeLabels) - 1
}

// observeQuery counts an answered query and its latency.
func observeQuery(qtype uint16, rcode int, start time.Time, forwarded bool) {
	i, j := qtypeSlot(qtype), len(rcodeLabels)-1
	if rcode >= 0 && rcode < j {
		j = rcode
	}
	c := queryCounters[i][j].Load()
	if c == nil {
		cc := srvQueries.WithLabelValues(qtypeLabels[i], rcodeLabels[j])
		c = &cc
		queryCounters[i][j].Store(c)
	}
	(*c).Inc()
	if forwarded {
		forwardDuration.Observe(time.Since(start).Seconds())
	} else {
		authDuration.Observe(time.Since(start).Seconds())
	}
}
