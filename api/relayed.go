package api

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// The relayed listener serves marathon-lb's endpoints to HAProxy's stats frontend, which
// forwards /_haproxy_get* and /_mlb_signal/* from the stats port (where Marathon health checks,
// DC/OS and zdd.py poll them) to it. Every request on it came from some client through HAProxy,
// so none gets the trust a loopback listener gives: the mutating ones (/_mlb_signal/*) need
// --api-auth's credential, or are refused. The trust is a property of the listener the request
// arrived on, set on the connection's context by the server itself, never of anything in the
// request: no header a client could forge is believed. The listener is a unix socket in the
// run directory, which only lodestar's user (and so HAProxy, its child) can reach.

type relayedKey struct{}

// relayed reports whether r arrived on the relayed listener.
func relayed(r *http.Request) bool {
	v, _ := r.Context().Value(relayedKey{}).(bool)
	return v
}

// relayedPath reports whether path is one the stats frontend forwards: marathon-lb's
// endpoints, nothing else of the API.
func relayedPath(path string) bool {
	switch path {
	case "/_haproxy_getconfig", "/_haproxy_getpids", "/_haproxy_getvhostmap", "/_haproxy_getappmap":
		return true
	}
	return strings.HasPrefix(path, "/_mlb_signal/")
}

// ServeRelayed serves marathon-lb's endpoints on ln (the unix socket HAProxy's stats frontend
// forwards to) until ctx ends; it takes ln over and closes it. Requests on it never get
// loopback trust, and other paths answer 404.
func (s *Server) ServeRelayed(ctx context.Context, ln net.Listener) error {
	srv := s.newHTTPServer(ctx, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !relayedPath(r.URL.Path) {
			writeError(w, http.StatusNotFound, "only marathon-lb's /_haproxy_get* and /_mlb_signal/* are served on the stats port")
			return
		}
		s.router.ServeHTTP(w, r)
	}))
	srv.ConnContext = func(c context.Context, _ net.Conn) context.Context {
		return context.WithValue(c, relayedKey{}, true)
	}
	return s.runHTTP(ctx, srv, ln)
}
