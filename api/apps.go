package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/lodestar-lb/lodestar/discovery"
)

// The /v1/apps document. Field names are snake_case; lists and maps are never null, so
// clients can iterate without checks.
type appsResponse struct {
	// Version is the registry snapshot's version.
	Version uint64                   `json:"version"`
	Time    time.Time                `json:"time,omitzero"`
	Apps    []appJSON                `json:"apps"`
	Sources []discovery.SourceStatus `json:"sources"`
}

type appJSON struct {
	ID          string            `json:"id"`
	Labels      map[string]string `json:"labels"`
	Instances   int               `json:"instances"`
	Version     string            `json:"version,omitempty"`
	Network     string            `json:"network"`
	Ports       []portJSON        `json:"ports"`
	Deployments []string          `json:"deployments"`
	Tasks       []taskJSON        `json:"tasks"`
}

type portJSON struct {
	ServicePort   int               `json:"service_port"`
	ContainerPort int               `json:"container_port"`
	HostPort      int               `json:"host_port"`
	Protocol      string            `json:"protocol"`
	Name          string            `json:"name"`
	Labels        map[string]string `json:"labels,omitempty"`
}

type taskJSON struct {
	ID          string         `json:"id"`
	Host        string         `json:"host"`
	SlaveID     string         `json:"slave_id"`
	State       string         `json:"state"`
	IPAddresses []string       `json:"ip_addresses"`
	HostPorts   []int          `json:"host_ports"`
	Endpoints   []endpointJSON `json:"endpoints"`
	// Eligible says whether the task receives traffic; Reason says why not ("" when it does).
	Eligible bool         `json:"eligible"`
	Reason   string       `json:"reason"`
	Draining bool         `json:"draining"`
	Health   []healthJSON `json:"health"`
	// Ready is the readiness check result during a deployment, absent when none was reported.
	Ready     *bool  `json:"ready,omitempty"`
	StagedAt  string `json:"staged_at,omitempty"`
	StartedAt string `json:"started_at,omitempty"`
	Version   string `json:"version,omitempty"`
}

type endpointJSON struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

type healthJSON struct {
	Alive               bool `json:"alive"`
	ConsecutiveFailures int  `json:"consecutive_failures"`
}

// appsResponseOf renders every app of the snapshot, whatever its group, in id order.
func appsResponseOf(snap *discovery.Snapshot, sources []discovery.SourceStatus) appsResponse {
	res := appsResponse{Apps: []appJSON{}, Sources: sources}
	if res.Sources == nil {
		res.Sources = []discovery.SourceStatus{}
	}
	if snap == nil {
		return res
	}
	res.Version, res.Time = snap.Version, snap.Time
	res.Apps = make([]appJSON, 0, snap.Apps.Len())
	snap.Apps.Each(func(a *discovery.App) bool {
		res.Apps = append(res.Apps, appJSONOf(a))
		return true
	})
	return res
}

func appJSONOf(a *discovery.App) appJSON {
	out := appJSON{
		ID:          a.ID,
		Labels:      a.Labels,
		Instances:   a.Instances,
		Version:     a.Version,
		Network:     string(a.Network),
		Ports:       make([]portJSON, len(a.Ports)),
		Deployments: nonNil(a.Deployments),
		Tasks:       make([]taskJSON, len(a.Tasks)),
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for i, p := range a.Ports {
		out.Ports[i] = portJSON{ServicePort: p.ServicePort, ContainerPort: p.ContainerPort, HostPort: p.HostPort,
			Protocol: p.Protocol, Name: p.Name, Labels: p.Labels}
	}
	for i, t := range a.Tasks {
		tj := taskJSON{
			ID: t.ID, Host: t.Host, SlaveID: t.SlaveID, State: t.State,
			IPAddresses: nonNil(t.IPAddresses), HostPorts: nonNil(t.HostPorts),
			Endpoints: make([]endpointJSON, len(t.Endpoints)),
			Eligible:  t.Eligible, Reason: t.Reason, Draining: t.Draining,
			Health: make([]healthJSON, len(t.Health)),
			Ready:  t.Ready, StagedAt: t.StagedAt, StartedAt: t.StartedAt, Version: t.Version,
		}
		for j, e := range t.Endpoints {
			tj.Endpoints[j] = endpointJSON(e)
		}
		for j, h := range t.Health {
			tj.Health[j] = healthJSON(h)
		}
		out.Tasks[i] = tj
	}
	return out
}

// nonNil turns a nil slice into an empty one, so it encodes as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// appDetail is the /v1/apps/{id} document: the app as in /v1/apps, plus how the front ends
// serve it. The front-end fields are absent when that front end is not running, and [] when
// it runs but has nothing for the app.
type appDetail struct {
	appJSON
	// HAProxyLabels are the app's HAProxy labels as the HAProxy front end parsed them.
	HAProxyLabels any `json:"haproxy_labels,omitempty"`
	// Routes are how HAProxy serves each service port.
	Routes []Route `json:"routes,omitzero"`
	// DNSNames are the A/AAAA and SRV names the app's tasks have.
	DNSNames []string `json:"dns_names,omitzero"`
}

// app serves one app of the registry. The id is the rest of the path, so /v1/apps/shop/web is
// the app /shop/web; an escaped id (%2Fshop%2Fweb) works too.
func (s *Server) app(w http.ResponseWriter, r *http.Request) {
	id := appID(mux.Vars(r)["id"])
	snap := s.reg.Snapshot()
	var a *discovery.App
	if snap != nil {
		a = snap.App(id)
	}
	if a == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no app %s in the registry", id))
		return
	}
	res := appDetail{appJSON: appJSONOf(a)}
	f := s.frontends()
	if f.Routing != nil {
		res.HAProxyLabels = f.Routing.AppLabels(id)
		res.Routes = routesJSON(f.Routing.AppRoutes(id))
		annotateServers(r.Context(), res.Routes, a, f.Live)
	}
	if f.DNS != nil {
		res.DNSNames = nonNil(f.DNS.AppNames(id))
	}
	writeJSON(w, http.StatusOK, res)
}

// appID turns the id part of a URL into a Marathon app id: exactly one leading slash, as
// Marathon and bamboo accept ids without it.
func appID(raw string) string {
	return "/" + strings.TrimLeft(raw, "/")
}

// routesJSON copies the routes and their servers (the front end's own slices are not ours
// to change) with their server lists never null.
func routesJSON(routes []Route) []Route {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		rt.Servers = append([]RouteServer{}, rt.Servers...)
		out[i] = rt
	}
	return out
}
