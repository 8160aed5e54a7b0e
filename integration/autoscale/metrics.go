package autoscale

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the autoscaler (namespace lodestar, subsystem autoscale), registered with the
// default registerer that /metrics serves. Labels are bounded: modes and actions are fixed
// sets; app ids are not labels (there may be thousands).
var (
	decisionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "autoscale", Name: "decisions_total",
		Help: "Autoscale decisions, by mode (rps, cpu, mem, and, or, or none for bad labels) and action (scale, hold, wait, skip).",
	}, []string{"mode", "action"})
	scalesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "autoscale", Name: "scales_total",
		Help: "Scale requests to Marathon, by direction (up, down) and result (ok, error, refused, dry_run).",
	}, []string{"direction", "result"})
	labelErrors = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "autoscale", Name: "apps_with_bad_labels",
		Help: "Apps that opted in to autoscaling with labels that are not valid, and are not scaled.",
	})
	appsScaled = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "autoscale", Name: "apps",
		Help: "Apps that opted in to autoscaling with valid labels.",
	})
	leading = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "lodestar", Subsystem: "autoscale", Name: "leader",
		Help: "1 while this instance holds the autoscale lock (or runs alone) and may scale, else 0.",
	})
)
