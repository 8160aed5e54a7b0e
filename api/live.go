package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// HAProxy's own view of its servers beside Marathon's: a task Marathon reports healthy can
// still fail HAProxy's health check (another host, port or path), and then gets no traffic.

// liveWait bounds how long a request waits for HAProxy's server states: a hung socket makes
// the servers "unknown", never a slow page.
const liveWait = 2 * time.Second

// liveReading is HAProxy's server states as one request sees them.
type liveReading struct {
	// wired is false when no LiveServers is wired in: nothing is shown then.
	wired bool
	// states is nil when they could not be read, and reason says why.
	states ServerStates
	reason string
}

// readLive reads HAProxy's server states once for a request; a failure is kept as the
// reason, never returned: the servers are then "unknown".
func readLive(ctx context.Context, live LiveServers) liveReading {
	if live == nil {
		return liveReading{}
	}
	ctx, cancel := context.WithTimeout(ctx, liveWait)
	defer cancel()
	states, err := live.ServerStates(ctx)
	switch {
	case err != nil:
		return liveReading{wired: true, reason: err.Error()}
	case states == nil:
		return liveReading{wired: true, reason: "HAProxy's server states are not available"}
	}
	return liveReading{wired: true, states: states}
}

// server is HAProxy's view of slot of backend, or "unknown" with why; nil when not wired.
func (l liveReading) server(backend, slot string) *LiveServer {
	switch {
	case !l.wired:
		return nil
	case l.states == nil:
		return &LiveServer{Status: "unknown", Error: l.reason}
	}
	s, ok := l.states.Server(backend, slot)
	if !ok {
		return &LiveServer{Status: "unknown", Error: fmt.Sprintf("HAProxy has no server %s/%s (not applied yet?)", backend, slot)}
	}
	return &s
}

// annotateServers fills in what Marathon and HAProxy say of every server of routes, and each
// route's request total. HAProxy is read once, and only when a route has a server.
func annotateServers(ctx context.Context, routes []Route, a *discovery.App, live LiveServers) {
	hasServer := false
	for _, rt := range routes {
		hasServer = hasServer || len(rt.Servers) > 0
	}
	if !hasServer {
		return
	}
	reading := readLive(ctx, live)
	for i := range routes {
		if b, ok := reading.states.(BackendStates); ok {
			if total, ok := b.BackendRequests(routes[i].Backend); ok {
				at := b.ReadAt().UTC()
				routes[i].Requests, routes[i].RequestsAt = &total, &at
			}
		}
		for j := range routes[i].Servers {
			srv := &routes[i].Servers[j]
			srv.MarathonHealth, _ = taskHealth(a, a.Task(srv.TaskID))
			srv.HAProxy = reading.server(routes[i].Backend, srv.Slot)
		}
	}
}

// liveClass is the colour class of HAProxy's status of a server.
func liveClass(status string) string {
	switch {
	case status == "UP" || status == "no check":
		return "ok"
	case strings.HasPrefix(status, "DOWN"), strings.HasPrefix(status, "MAINT"):
		// "DOWN 1/2" is down, its checks passing again: still no traffic.
		return "bad"
	}
	// UP n/m (checks failing), DRAIN, NOLB, unknown.
	return "warn"
}

// liveCheck describes a server's last health check for the page: "" for a server HAProxy
// has up, the check's result and detail otherwise, or why HAProxy could not be read.
func liveCheck(s *LiveServer) string {
	if s.Error != "" {
		return s.Error
	}
	if liveClass(s.Status) == "ok" || s.Check == "" {
		return ""
	}
	check := s.Check
	if s.CheckCode != "" {
		check += " " + s.CheckCode
	}
	if detail := s.LastCheck; detail != "" {
		return check + ": " + detail
	}
	if s.CheckDesc != "" {
		return check + ": " + s.CheckDesc
	}
	return check
}

// classRank orders colour classes from good to bad.
var classRank = map[string]int{"ok": 0, "warn": 1, "bad": 2}

// worseClass returns the worse of two colour classes.
func worseClass(a, b string) string {
	if classRank[b] > classRank[a] {
		return b
	}
	return a
}
