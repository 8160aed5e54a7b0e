package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/api"
)

// Edges reads lodestar's view of a deployment group from each edge's HTTP API
// (GET /v1/apps/{id}: the routes of the app's backends, each server with its task id, the
// state lodestar set and HAProxy's own view, sessions included).
type Edges struct {
	urls []string
	http *http.Client
}

// NewEdges checks the edge URLs (lodestar's API, http://host:8090).
func NewEdges(urls []string, timeout time.Duration) (*Edges, error) {
	if len(urls) == 0 {
		return nil, errors.New("no lodestar edge (--lodestar URL[,URL…]): deploy decides drains from their view of HAProxy")
	}
	e := &Edges{}
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("lodestar URL %q: want http://host:port of its API", u)
		}
		e.urls = append(e.urls, strings.TrimSuffix(u, "/"))
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	e.http = &http.Client{Timeout: timeout}
	return e, nil
}

// ServerView is one HAProxy server of the group's backend as one edge sees it.
type ServerView struct {
	// State is what lodestar set: "ready", "drain" or "maint".
	State string
	// Status is HAProxy's (UP, DOWN, DRAIN, MAINT, "no check", …); "" when the edge does not
	// report HAProxy's view.
	Status   string
	Sessions int
}

// serving reports whether HAProxy sends the server new requests.
func (s ServerView) serving() bool {
	return s.State == "ready" && (s.Status == "UP" || s.Status == "no check")
}

// checkedUp reports whether HAProxy has the server up, whether or not it sends it new
// requests (a drained server passes its checks too).
func (s ServerView) checkedUp() bool {
	return s.State != "maint" && (s.Status == "UP" || s.Status == "DRAIN" || s.Status == "no check")
}

// EdgeView is one edge's view of the group: servers by task id.
type EdgeView struct {
	Edge    string
	Servers map[string]ServerView
	// Err says why the edge could not be read or does not serve the app.
	Err error
}

// appDoc is the part of lodestar's GET /v1/apps/{id} deploy reads.
type appDoc struct {
	Routes []struct {
		Port    int    `json:"port"`
		Backend string `json:"backend"`
		Servers []struct {
			TaskID  string `json:"task_id"`
			State   string `json:"state"`
			HAProxy *struct {
				Status   string `json:"status"`
				Sessions int    `json:"sessions"`
				Error    string `json:"error"`
			} `json:"haproxy"`
		} `json:"servers"`
	} `json:"routes"`
}

// View reads every edge's view of app id's port 0 backend, concurrently.
func (e *Edges) View(ctx context.Context, id string) []EdgeView {
	out := make([]EdgeView, len(e.urls))
	done := make(chan struct{})
	for i, u := range e.urls {
		go func() {
			defer func() { done <- struct{}{} }()
			out[i] = e.view(ctx, u, id)
		}()
	}
	for range e.urls {
		<-done
	}
	return out
}

func (e *Edges) view(ctx context.Context, edge, id string) EdgeView {
	v := EdgeView{Edge: edge}
	var doc appDoc
	err := api.FetchApp(ctx, e.http, edge, id, &doc)
	if errors.Is(err, api.ErrNoApp) {
		v.Err = fmt.Errorf("lodestar %s: no app %s in its registry yet", edge, id)
		return v
	}
	if err != nil {
		v.Err = fmt.Errorf("lodestar %s: %w", edge, err)
		return v
	}
	for _, r := range doc.Routes {
		if r.Port != 0 {
			continue
		}
		v.Servers = map[string]ServerView{}
		for _, s := range r.Servers {
			if s.HAProxy == nil {
				v.Err = fmt.Errorf("lodestar %s: backend %.80q: no HAProxy view of its servers (is lodestar driving HAProxy there?)", edge, r.Backend)
				return v
			}
			// A negative count would read as idle, and an unknown state as not draining: an
			// edge that says either is not trusted with a drain.
			if s.HAProxy.Sessions < 0 {
				v.Err = fmt.Errorf("lodestar %s: backend %.80q: server %.80q: sessions %d: not a count", edge, r.Backend, s.TaskID, s.HAProxy.Sessions)
				return v
			}
			if s.State != "ready" && s.State != "drain" && s.State != "maint" {
				v.Err = fmt.Errorf("lodestar %s: backend %.80q: server %.80q: state %.40q: want ready, drain or maint", edge, r.Backend, s.TaskID, s.State)
				return v
			}
			status := s.HAProxy.Status
			if s.HAProxy.Error != "" {
				status = ""
			}
			v.Servers[s.TaskID] = ServerView{State: s.State, Status: status, Sessions: s.HAProxy.Sessions}
		}
	}
	if v.Servers == nil {
		v.Err = fmt.Errorf("lodestar %s: HAProxy does not serve %s there (another --group, or the app is left out: see its status page)", edge, id)
	}
	return v
}

// Assessment is what the edges say of a swap, decided by Assess.
type Assessment struct {
	// NewServing is the fewest of the new colour's tasks any edge sends traffic to;
	// NewUp the fewest any edge has up, drained or not.
	NewServing, NewUp int
	// Drained are the old tasks that every edge has in "drain" with no session left: they
	// may be removed.
	Drained []string
	// Draining are old tasks some edge drains that still have sessions somewhere, or that
	// the edges do not agree on yet.
	Draining []string
	// Sessions is the sum of the sessions on draining servers, over the edges.
	Sessions int
	// Waiting says, per edge, what is not there yet ("" when nothing).
	Waiting string
}

// Assess decides from the edges' views which old tasks are drained everywhere and how many
// new tasks every edge serves. An old task an edge does not list (gone there already)
// counts as drained on that edge.
func Assess(views []EdgeView, oldTasks, newTasks []string) Assessment {
	var a Assessment
	a.NewServing, a.NewUp = len(newTasks), len(newTasks)
	var waits []string
	for _, v := range views {
		if v.Err != nil {
			a.NewServing, a.NewUp = 0, 0
			waits = append(waits, v.Err.Error())
			continue
		}
		serving, up := 0, 0
		for _, id := range newTasks {
			s, ok := v.Servers[id]
			if ok && s.serving() {
				serving++
			}
			if ok && s.checkedUp() {
				up++
			}
		}
		if serving < len(newTasks) {
			waits = append(waits, fmt.Sprintf("%s: HAProxy serves %d of %d new tasks", v.Edge, serving, len(newTasks)))
		}
		a.NewServing, a.NewUp = min(a.NewServing, serving), min(a.NewUp, up)
	}
	for _, id := range oldTasks {
		drain, idle, seen := true, true, false
		for _, v := range views {
			if v.Err != nil {
				drain = false
				continue
			}
			s, ok := v.Servers[id]
			if !ok {
				continue
			}
			if s.State != "drain" {
				drain = false
			} else {
				seen = true
			}
			if s.Sessions > 0 {
				idle = false
				a.Sessions += s.Sessions
			}
		}
		switch {
		case drain && idle && seen:
			a.Drained = append(a.Drained, id)
		case seen:
			a.Draining = append(a.Draining, id)
		}
	}
	if len(a.Draining) > 0 {
		waits = append(waits, fmt.Sprintf("%d old task(s) draining, %d session(s) left", len(a.Draining), a.Sessions))
	}
	slices.Sort(a.Drained)
	a.Waiting = strings.Join(waits, "; ")
	return a
}
