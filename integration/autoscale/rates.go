package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/api"
)

// RouteKey names one service port of an app.
type RouteKey struct {
	App         string
	ServicePort int
}

// EdgeReading is one edge's request totals (HAProxy's cumulative counters, see
// api.Route.Requests) of the routes asked for, at one time; Err says why the edge could not
// be read, and then Totals is nil.
type EdgeReading struct {
	Edge   string
	At     time.Time
	Totals map[RouteKey]uint64
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
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// RequestTotals reads HAProxy once for every app.
func (l LocalCounters) RequestTotals(ctx context.Context, appIDs []string) []EdgeReading {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	r := EdgeReading{Edge: "local", At: now()}
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
	r.Totals = map[RouteKey]uint64{}
	for _, id := range appIDs {
		for _, rt := range l.Routing.AppRoutes(id) {
			if n, ok := backends.BackendRequests(rt.Backend); ok {
				r.Totals[RouteKey{id, rt.ServicePort}] = n
			}
		}
	}
	return []EdgeReading{r}
}

// EdgeCounters reads the request totals from other lodestars' HTTP API (GET /v1/apps/{id}
// of each edge, --lodestar).
type EdgeCounters struct {
	URLs   []string
	Client *http.Client
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// edgeBodyLimit bounds one app document read from an edge.
const edgeBodyLimit = 8 << 20

// RequestTotals reads every edge, one app at a time; an edge that fails for one app is
// failed for this reading.
func (e EdgeCounters) RequestTotals(ctx context.Context, appIDs []string) []EdgeReading {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	out := make([]EdgeReading, len(e.URLs))
	for i, edge := range e.URLs {
		r := EdgeReading{Edge: edge, Totals: map[RouteKey]uint64{}}
		for _, id := range appIDs {
			if err := e.readApp(ctx, edge, id, r.Totals); err != nil {
				r.Totals, r.Err = nil, fmt.Errorf("edge %s, app %s: %w", edge, id, err)
				break
			}
		}
		r.At = now()
		out[i] = r
	}
	return out
}

// readApp adds one app's route totals from one edge to totals. An app the edge does not
// know (404) has no routes there.
func (e EdgeCounters) readApp(ctx context.Context, edge, id string, totals map[RouteKey]uint64) error {
	u := strings.TrimRight(edge, "/") + "/v1/apps/" + url.PathEscape(strings.TrimPrefix(id, "/"))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	client := e.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var doc struct {
		Routes []struct {
			ServicePort int     `json:"service_port"`
			Requests    *uint64 `json:"requests"`
		} `json:"routes"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, edgeBodyLimit+1))
	if err != nil {
		return err
	}
	if len(body) > edgeBodyLimit {
		return fmt.Errorf("GET %s: answer longer than %d bytes", u, edgeBodyLimit)
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	for _, rt := range doc.Routes {
		if rt.Requests != nil && rt.ServicePort > 0 && rt.ServicePort <= 65535 {
			totals[RouteKey{id, rt.ServicePort}] = *rt.Requests
		}
	}
	return nil
}

// counterPoint is a counter's last value and when it was read.
type counterPoint struct {
	total uint64
	at    time.Time
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
// edge, or a route first seen, makes it incomplete. A route no edge gave a rate for is
// absent.
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
		for k, total := range r.Totals {
			p, seen := prev[k]
			if !seen || !r.At.After(p.at) {
				incomplete[k] = true
				continue
			}
			delta := total - p.total
			if total < p.total {
				delta = total // restarted
			}
			pr := out[k]
			pr.Rate += float64(delta) / r.At.Sub(p.at).Seconds()
			out[k] = pr
		}
		for k := range prev {
			if _, ok := r.Totals[k]; !ok {
				incomplete[k] = true
			}
		}
		next := make(map[RouteKey]counterPoint, len(r.Totals))
		for k, total := range r.Totals {
			next[k] = counterPoint{total, r.At}
		}
		t.last[r.Edge] = next
	}
	for k, pr := range out {
		pr.Complete = !incomplete[k]
		out[k] = pr
	}
	return out
}
