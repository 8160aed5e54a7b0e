package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// GET /v1/requests answers every routed app's per-route request totals from one reading of
// HAProxy, so that a reader of many apps (the autoscaler of other edges) makes one request
// per edge rather than one GET /v1/apps/{id} per app.

// RequestTotals is the /v1/requests document.
type RequestTotals struct {
	// RequestsAt is when HAProxy was read for every total below; absent when nothing is
	// routed (HAProxy was then not read).
	RequestsAt *time.Time `json:"requests_at,omitempty"`
	// Routes are the routes HAProxy has a request total for, by app id and port index;
	// never null.
	Routes []RouteRequests `json:"routes"`
}

// RouteRequests is one route's cumulative request total, as Route.Requests counts it.
type RouteRequests struct {
	AppID       string `json:"app_id"`
	ServicePort int    `json:"service_port"`
	Requests    uint64 `json:"requests"`
}

// routedBackend is one route of an app and the backend that serves it.
type routedBackend struct {
	appID       string
	servicePort int
	backend     string
}

// requestTotals serves GET /v1/requests.
func (s *Server) requestTotals(w http.ResponseWriter, r *http.Request) {
	res, err := s.readRequestTotals(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// readRequestTotals lists the routes of every app of the registry, then reads HAProxy once
// for all of their backends. Nothing routed (or no HAProxy front end) is an empty list, and
// HAProxy is not read; a reading that fails is the error.
func (s *Server) readRequestTotals(ctx context.Context) (RequestTotals, error) {
	res := RequestTotals{Routes: []RouteRequests{}}
	f := s.frontends()
	routes := routedBackends(s.reg, f.Routing)
	if len(routes) == 0 {
		return res, nil
	}
	if f.Live == nil {
		return res, errors.New("HAProxy's request counters cannot be read: its admin socket is not wired in")
	}
	ctx, cancel := context.WithTimeout(ctx, liveWait)
	defer cancel()
	states, err := f.Live.ServerStates(ctx)
	if err == nil && states == nil {
		err = errors.New("HAProxy's server states are not available")
	}
	if err != nil {
		return res, fmt.Errorf("reading HAProxy's request counters: %w", err)
	}
	backends, ok := states.(BackendStates)
	if !ok {
		return res, errors.New("reading HAProxy's request counters: its reading has no backend counters")
	}
	at := backends.ReadAt().UTC()
	res.RequestsAt = &at
	for _, rb := range routes {
		if n, ok := backends.BackendRequests(rb.backend); ok {
			res.Routes = append(res.Routes, RouteRequests{AppID: rb.appID, ServicePort: rb.servicePort, Requests: n})
		}
	}
	return res, nil
}

// BackendLister is a Routing that also lists every app's backends in one pass; GET
// /v1/requests uses it when the front end has it, rather than AppRoutes app by app (each of
// which may scan every backend).
type BackendLister interface {
	// AppBackends returns the backend of every service port of every app HAProxy serves (a
	// deployment group's for each of its apps; ids that are no app of the registry are
	// ignored).
	AppBackends() []AppBackend
}

// AppBackend names the backend serving one service port of an app.
type AppBackend struct {
	AppID       string
	ServicePort int
	Backend     string
}

// routedBackends is every route of every app of the registry's snapshot (in app id and port
// order when read app by app); nil without a snapshot or a HAProxy front end.
func routedBackends(reg Registry, routing Routing) []routedBackend {
	snap := reg.Snapshot()
	if snap == nil || routing == nil {
		return nil
	}
	var out []routedBackend
	if bl, ok := routing.(BackendLister); ok {
		for _, b := range bl.AppBackends() {
			if snap.App(b.AppID) != nil {
				out = append(out, routedBackend{appID: b.AppID, servicePort: b.ServicePort, backend: b.Backend})
			}
		}
		return out
	}
	snap.Apps.Each(func(a *discovery.App) bool {
		for _, rt := range routing.AppRoutes(a.ID) {
			out = append(out, routedBackend{appID: a.ID, servicePort: rt.ServicePort, backend: rt.Backend})
		}
		return true
	})
	return out
}
