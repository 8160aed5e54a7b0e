package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HAProxy is what the HAProxy endpoints read and trigger. cmd wires the HAProxy front end (and,
// for Resync, the discovery sources) in; the api package never imports them.
type HAProxy interface {
	// Config returns the configuration HAProxy runs, nil before the first one is applied.
	Config() []byte
	// Status returns the body of GET /v1/haproxy/status: the last apply (runtime or reload, its
	// reason and duration) and every app left out, with the reason.
	Status() any
	// Healthy returns nil while HAProxy runs a configuration lodestar applied.
	Healthy() error
	// PIDs returns the pids of HAProxy's master and workers.
	PIDs() []int
	// VhostMap and AppMap return marathon-lb's domain2backend and app2backend maps
	// ("key backend" lines).
	VhostMap() []byte
	AppMap() []byte
	// Resync fetches every app from the sources again and regenerates the config (SIGHUP in
	// marathon-lb).
	Resync(ctx context.Context) error
	// Reload validates the config file on disk and reloads HAProxy with it (SIGUSR1 in
	// marathon-lb).
	Reload(ctx context.Context) error
}

// signalTimeout bounds what /_mlb_signal/* waits for before answering.
const signalTimeout = 30 * time.Second

// MountHAProxy mounts lodestar's HAProxy endpoints (/v1/haproxy/config, /v1/haproxy/status)
// and marathon-lb's compatibility endpoints, which marathon-lb served from Lua inside HAProxy.
func (s *Server) MountHAProxy(h HAProxy) {
	r := s.router
	get := []string{http.MethodGet, http.MethodHead}
	config := func(w http.ResponseWriter, _ *http.Request) {
		cfg := h.Config()
		if cfg == nil {
			writeError(w, http.StatusServiceUnavailable, "no HAProxy configuration applied yet")
			return
		}
		writeText(w, cfg)
	}
	r.HandleFunc("/v1/haproxy/config", config).Methods(get...)
	r.HandleFunc("/_haproxy_getconfig", config).Methods(get...)
	r.HandleFunc("/v1/haproxy/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, h.Status())
	}).Methods(get...)
	r.HandleFunc("/_haproxy_health_check", func(w http.ResponseWriter, _ *http.Request) {
		if err := h.Healthy(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeText(w, []byte("OK\n"))
	}).Methods(get...)
	r.HandleFunc("/_haproxy_getpids", func(w http.ResponseWriter, _ *http.Request) {
		pids := h.PIDs()
		parts := make([]string, len(pids))
		for i, p := range pids {
			parts[i] = strconv.Itoa(p)
		}
		writeText(w, []byte(strings.Join(parts, " ")+"\n"))
	}).Methods(get...)
	r.HandleFunc("/_haproxy_getvhostmap", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, h.VhostMap())
	}).Methods(get...)
	r.HandleFunc("/_haproxy_getappmap", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, h.AppMap())
	}).Methods(get...)
	signal := func(name, done string, fn func(context.Context) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), signalTimeout)
			defer cancel()
			if err := fn(ctx); err != nil {
				s.log.Warn("signal endpoint failed", "signal", name, "err", err)
				writeError(w, http.StatusInternalServerError, name+": "+err.Error())
				return
			}
			s.log.Info("signal endpoint", "signal", name)
			writeText(w, []byte(done+"\n"))
		}
	}
	// marathon-lb answers GET; POST is accepted too, as it is the right verb for an action.
	r.HandleFunc("/_mlb_signal/hup", signal("hup", "Resynced and regenerated the HAProxy config", h.Resync)).
		Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/_mlb_signal/usr1", signal("usr1", "Reloaded HAProxy with the config on disk", h.Reload)).
		Methods(http.MethodGet, http.MethodPost)
}

func writeText(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
