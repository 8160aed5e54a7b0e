package autoscale

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lodestar-lb/lodestar/api"
)

// RouteKey names one service port of an app.
type RouteKey struct {
	App         string
	ServicePort int
}

// Count is one of HAProxy's cumulative request counters (see api.Route.Requests) and when
// HAProxy was read for it.
type Count struct {
	Total uint64
	At    time.Time
}

// EdgeReading is one edge's request counts of the routes asked for; Err says why the edge
// could not be read, and then Totals is nil.
type EdgeReading struct {
	Edge   string
	Totals map[RouteKey]Count
	Err    error
}

// RequestCounters reads the request totals of apps' routes from every edge it knows.
type RequestCounters interface {
	RequestTotals(ctx context.Context, appIDs []string) []EdgeReading
}

// LocalCounters reads the HAProxy lodestar runs next to, through the api package's
// interfaces (what GET /v1/apps/{id} shows): serve --autoscale.
type LocalCounters struct {
	Routing api.Routing
	Live    api.LiveServers
}

// RequestTotals reads HAProxy once for every app.
func (l LocalCounters) RequestTotals(ctx context.Context, appIDs []string) []EdgeReading {
	r := EdgeReading{Edge: "local"}
	states, err := l.Live.ServerStates(ctx)
	if err == nil && states == nil {
		err = errors.New("HAProxy's server states are not available")
	}
	if err != nil {
		r.Err = fmt.Errorf("reading HAProxy's request counters: %w", err)
		return []EdgeReading{r}
	}
	backends, ok := states.(api.BackendStates)
	if !ok {
		r.Err = errors.New("HAProxy's reading has no backend counters")
		return []EdgeReading{r}
	}
	r.Totals = map[RouteKey]Count{}
	at := backends.ReadAt()
	for _, id := range appIDs {
		for _, rt := range l.Routing.AppRoutes(id) {
			if n, ok := backends.BackendRequests(rt.Backend); ok {
				r.Totals[RouteKey{id, rt.ServicePort}] = Count{n, at}
			}
		}
	}
	return []EdgeReading{r}
}

// EdgeCounters reads the request totals from other lodestars' HTTP API (--lodestar): one
// GET /v1/requests per edge and reading, or, from an edge without that endpoint (an older
// lodestar), GET /v1/apps/{id} of each app.
type EdgeCounters struct {
	URLs   []string
	Client *http.Client
	// Timeout bounds each request, whatever Client's own; default 10s.
	Timeout time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// RequestTotals reads every edge, one after the other; an edge that fails (for one app, when
// read app by app) is failed for this reading.
func (e EdgeCounters) RequestTotals(ctx context.Context, appIDs []string) []EdgeReading {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	out := make([]EdgeReading, len(e.URLs))
	for i, edge := range e.URLs {
		r := EdgeReading{Edge: edge, Totals: map[RouteKey]Count{}}
		err := e.readEdge(ctx, edge, appIDs, now, r.Totals)
		if errors.Is(err, api.ErrNoRequestTotals) {
			err = e.readApps(ctx, edge, appIDs, now, r.Totals)
		}
		if err != nil {
			r.Totals, r.Err = nil, err
		}
		out[i] = r
	}
	return out
}

// readEdge adds the route totals of the apps asked for from one edge's GET /v1/requests to
// totals; the edge's other apps are not counted.
func (e EdgeCounters) readEdge(ctx context.Context, edge string, appIDs []string, now func() time.Time, totals map[RouteKey]Count) error {
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(e.Timeout))
	defer cancel()
	doc, err := api.FetchRequestTotals(ctx, e.client(), edge)
	if errors.Is(err, api.ErrNoRequestTotals) {
		return err
	}
	if err != nil {
		return fmt.Errorf("edge %s: %w", edge, err)
	}
	asked := make(map[string]bool, len(appIDs))
	for _, id := range appIDs {
		asked[id] = true
	}
	at := readAt(doc.RequestsAt, now())
	for _, rt := range doc.Routes {
		if asked[rt.AppID] && validPort(rt.ServicePort) {
			totals[RouteKey{rt.AppID, rt.ServicePort}] = Count{rt.Requests, at}
		}
	}
	return nil
}

// readApps adds the route totals of the apps asked for from one edge to totals, one GET
// /v1/apps/{id} each: the edges older than GET /v1/requests.
func (e EdgeCounters) readApps(ctx context.Context, edge string, appIDs []string, now func() time.Time, totals map[RouteKey]Count) error {
	for _, id := range appIDs {
		if err := e.readApp(ctx, edge, id, now, totals); err != nil {
			return fmt.Errorf("edge %s, app %s: %w", edge, id, err)
		}
	}
	return nil
}

func (e EdgeCounters) client() *http.Client {
	if e.Client == nil {
		return http.DefaultClient
	}
	return e.Client
}

// readAt is when an edge read HAProxy: what it says, or when it answered if it does not say
// (or says a time in the future, its clock off ours).
func readAt(said *time.Time, answered time.Time) time.Time {
	if said != nil && !said.After(answered) {
		return *said
	}
	return answered
}

func validPort(p int) bool { return p > 0 && p <= 65535 }

// readApp adds one app's route totals from one edge to totals. An app the edge does not
// know (404) has no routes there.
func (e EdgeCounters) readApp(ctx context.Context, edge, id string, now func() time.Time, totals map[RouteKey]Count) error {
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(e.Timeout))
	defer cancel()
	var doc struct {
		Routes []struct {
			ServicePort int        `json:"service_port"`
			Requests    *uint64    `json:"requests"`
			RequestsAt  *time.Time `json:"requests_at"`
		} `json:"routes"`
	}
	err := api.FetchApp(ctx, e.client(), edge, id, &doc)
	if errors.Is(err, api.ErrNoApp) {
		return nil
	}
	if err != nil {
		return err
	}
	answered := now()
	for _, rt := range doc.Routes {
		if rt.Requests != nil && validPort(rt.ServicePort) {
			totals[RouteKey{id, rt.ServicePort}] = Count{*rt.Requests, readAt(rt.RequestsAt, answered)}
		}
	}
	return nil
}

// counterPoint is a counter's last reading and the rate it gave.
type counterPoint struct {
	Count
	rate    float64
	hasRate bool
}

// RateTracker turns successive readings of cumulative counters into rates. A counter that
// went down was restarted (HAProxy reloaded): the requests since the restart are its new
// value, a lower bound of the interval's, never a negative rate.
type RateTracker struct {
	last map[string]map[RouteKey]counterPoint // by edge
}

// NewRateTracker returns a tracker with no readings yet.
func NewRateTracker() *RateTracker {
	return &RateTracker{last: map[string]map[RouteKey]counterPoint{}}
}

// Rates adds one round of readings and returns each route's rate summed over the edges. A
// route is complete when every edge that had it before answered with it again; a failed
// edge, or a route first seen, makes it incomplete. A reading HAProxy took at the same time
// as the last (an edge shares one reading for about a second) gives the last rate again. A
// route no edge gave a rate for is absent.
func (t *RateTracker) Rates(readings []EdgeReading) map[RouteKey]PortRate {
	out := map[RouteKey]PortRate{}
	incomplete := map[RouteKey]bool{}
	for _, r := range readings {
		prev := t.last[r.Edge]
		if r.Err != nil {
			for k := range prev {
				incomplete[k] = true
			}
			continue // the last good reading stays: the next rate spans the gap
		}
		next := make(map[RouteKey]counterPoint, len(r.Totals))
		for k, c := range r.Totals {
			p, seen := prev[k]
			point := counterPoint{Count: c}
			switch {
			case !seen:
				incomplete[k] = true
			case !c.At.After(p.At):
				// The same reading again (or a clock step back): the last rate holds.
				point = p
				if !p.hasRate {
					incomplete[k] = true
				}
			default:
				delta := c.Total - p.Total
				if c.Total < p.Total {
					delta = c.Total // restarted: counted from 0 since
				}
				point.rate, point.hasRate = float64(delta)/c.At.Sub(p.At).Seconds(), true
			}
			if point.hasRate {
				pr := out[k]
				pr.Rate += point.rate
				out[k] = pr
			}
			next[k] = point
		}
		for k := range prev {
			if _, ok := r.Totals[k]; !ok {
				incomplete[k] = true
			}
		}
		t.last[r.Edge] = next
	}
	for k, pr := range out {
		pr.Complete = !incomplete[k]
		out[k] = pr
	}
	return out
}
