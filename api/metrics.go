package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// HTTP metrics of the API (namespace lodestar, subsystem api), registered with the default
// Prometheus registerer that /metrics serves. The route label is the mux path template, never
// the raw path, so ids in URLs do not explode the series count.
var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lodestar", Subsystem: "api", Name: "requests_total",
		Help: "HTTP requests served, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	requestSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "lodestar", Subsystem: "api", Name: "request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route template, method and status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method", "code"})
)

// instrument is the router's middleware: it counts, times and logs (debug) every matched
// request under its route template.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := "(unnamed)"
		if cur := mux.CurrentRoute(r); cur != nil {
			if tpl, err := cur.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		s.observe(route, next, w, r)
	})
}

// instrumentAs does what instrument does for handlers mux calls without middleware (404, 405).
func (s *Server) instrumentAs(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.observe(route, next, w, r)
	})
}

func (s *Server) observe(route string, next http.Handler, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	if sw.code == 0 {
		sw.code = http.StatusOK
	}
	elapsed := time.Since(start)
	code, method := strconv.Itoa(sw.code), methodLabel(r.Method)
	requests.WithLabelValues(route, method, code).Inc()
	requestSeconds.WithLabelValues(route, method, code).Observe(elapsed.Seconds())
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("API request", "method", r.Method, "path", r.URL.Path, "route", route,
			"code", sw.code, "bytes", sw.bytes, "duration", elapsed, "remote", r.RemoteAddr)
	}
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// statusWriter records the status code and body size. Unwrap lets http.ResponseController
// reach the underlying writer (Flush for streaming handlers, Hijack, deadlines).
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx are informational; the final code follows
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += n
	return n, err
}

// Flush implements http.Flusher for handlers that assert it directly.
func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
