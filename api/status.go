package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// The status page at /: one server-rendered HTML page (html/template, embedded with the CSS
// and a few lines of script) showing what lodestar knows and does. It needs no build step and
// no external resource, works without JavaScript (a <noscript> meta refresh), and stacks its
// tables on narrow screens.

// statusPageLimit bounds how many apps the page renders: with thousands of apps a full page
// would be megabytes, re-fetched every few seconds. The ?q= filter narrows the list.
const statusPageLimit = 500

//go:embed statuspage
var statusFiles embed.FS

var (
	statusTemplate = template.Must(template.ParseFS(statusFiles, "statuspage/status.html"))
	statusCSS      = mustReadStatusFile("statuspage/status.css")
	statusJS       = mustReadStatusFile("statuspage/status.js")
	// statusCSP allows nothing but the page's own inline style and script (by hash), the
	// data: favicon and the filter form: an app id or a label that slipped past escaping
	// still could not run a script or load anything.
	statusCSP = fmt.Sprintf("default-src 'none'; style-src '%s'; script-src '%s'; img-src data:; "+
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'", cspHash(statusCSS), cspHash(statusJS))
)

func mustReadStatusFile(name string) string {
	b, err := statusFiles.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("api: embedded status page file %s: %v", name, err))
	}
	return string(b)
}

// cspHash is the Content-Security-Policy source for an inline element whose text is s.
func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// statusRoute names the page's route on the router, so that mounting it twice is a no-op.
const statusRoute = "status-page"

// MountStatusPage registers the status page on GET and HEAD /. The query parameter q keeps
// only the apps whose id contains it (case-insensitive); refresh=off stops the automatic
// refresh. Calling it again does nothing.
func (s *Server) MountStatusPage() {
	if s.router.Get(statusRoute) != nil {
		return
	}
	s.router.HandleFunc("/", s.statusPage).Methods(http.MethodGet, http.MethodHead).Name(statusRoute)
}

// statusPage renders the page into a buffer first, so that a template error becomes a 500
// instead of half a page.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := s.statusData(r.Context(), time.Now(), strings.TrimSpace(q.Get("q")), q.Get("refresh") != "off")
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, data); err != nil {
		s.log.Error("Rendering the status page failed", "err", err)
		http.Error(w, "api: rendering the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// statusView is everything the template shows, already formatted: the template only lays it
// out.
type statusView struct {
	Version  string
	Now      string
	Snapshot snapshotView
	Ready    bool
	Checks   []checkView
	Sources  []sourceView
	// Routing is nil when no HAProxy front end is wired in; DNS is false without DNS.
	Routing *routingView
	// Autoscale is nil when no autoscaler is wired in.
	Autoscale *autoscaleView
	DNS       bool
	Query     string
	Refresh   bool
	Apps      []appView
	// Matched counts the apps matching Query (all apps without one); Apps holds at most
	// statusPageLimit of them.
	Matched int
	CSS     template.CSS
	JS      template.JS
}

type snapshotView struct {
	Version     uint64
	Time        string
	Age         string
	Apps        int
	Tasks       int
	MesosLeader string
}

type checkView struct {
	Name  string
	Error string
	// Class is "bad" for a failing check, "warn" for a degraded one.
	Class string
}

type sourceView struct {
	Name  string
	State string
	Class string
	// LastSync is the age of the last successful sync, "never" before the first.
	LastSync  string
	Error     string
	ErrorWhen string
}

type routingView struct {
	// Applies are the last apply and the last reload.
	Applies   []applyRow
	Reloads   int
	Unhealthy string
	// LiveUnknown says why HAProxy's own server states could not be read, when they could not.
	LiveUnknown string
	Excluded    []excludedView
	// ExcludedMatched counts the left-out entries matching the query; Excluded holds at most
	// statusPageLimit of them.
	ExcludedMatched int
	// Warnings and WarningsMatched are the same for ignored labels and routes not given.
	Warnings        []warningView
	WarningsMatched int
}

type warningView struct {
	AppID   string
	Port    string
	Message string
}

type applyRow struct {
	Name  string
	Apply *applyView
}

type applyView struct {
	Kind     string
	Class    string
	Reason   string
	When     string
	At       string
	Duration string
	Error    string
}

type excludedView struct {
	AppID   string
	Port    string
	Reason  string
	HAProxy []string
}

type appView struct {
	ID        string
	Instances int
	Tasks     int
	Running   int
	Healthy   int
	Deploying bool
	// Routes are HAProxy's routes of the app, or the app's ports and task endpoints when
	// HAProxy is not wired in (Routed false).
	Routes []routeView
	Routed bool
	// NotRouted says why HAProxy serves none of the app's ports, when it does not.
	NotRouted string
	// Out are the tasks that get no traffic, with why.
	Out      []taskOutView
	DNSNames []string
}

type routeView struct {
	ServicePort int
	Port        int
	Mode        string
	VHosts      []string
	Path        string
	Rule        string
	Frontend    string
	Backend     string
	Servers     []serverView
}

type serverView struct {
	TaskID  string
	Address string
	State   string
	// HAProxy is HAProxy's own view of the server, nil when it is not wired in; Health is
	// Marathon's.
	HAProxy *liveServerView
	Health  string
	Class   string
}

type liveServerView struct {
	Status string
	// Check is the failing check's result and detail, or why HAProxy could not be read.
	Check string
	Class string
}

type taskOutView struct {
	ID     string
	State  string
	Reason string
	Class  string
}

// statusData gathers the page's content at now; ctx bounds the reading of HAProxy's server
// states.
func (s *Server) statusData(ctx context.Context, now time.Time, query string, refresh bool) statusView {
	front := s.frontends()
	v := statusView{
		Version: s.cfg.Version,
		Now:     now.UTC().Format(time.RFC3339),
		Query:   query,
		Refresh: refresh,
		DNS:     front.DNS != nil,
		CSS:     template.CSS(statusCSS),
		JS:      template.JS(statusJS),
	}
	query = strings.ToLower(query)
	v.Ready, v.Checks = s.readiness()
	if front.Autoscale != nil {
		v.Autoscale = autoscaleViewOf(front.Autoscale.AutoscaleStatus(), now, query)
	}
	for _, src := range s.reg.Sources() {
		v.Sources = append(v.Sources, sourceViewOf(src, now))
	}
	var live liveReading
	if front.Routing != nil {
		v.Routing = routingViewOf(front.Routing.Summary(), now, query)
		live = readLive(ctx, front.Live)
		v.Routing.LiveUnknown = live.reason
	}
	snap := s.reg.Snapshot()
	if snap == nil {
		return v
	}
	v.Snapshot = snapshotView{Version: snap.Version, Apps: snap.Apps.Len(), Tasks: snap.Tasks}
	if !snap.Time.IsZero() {
		v.Snapshot.Time = snap.Time.UTC().Format(time.RFC3339)
		v.Snapshot.Age = ago(now, snap.Time)
	}
	if snap.Mesos != nil {
		v.Snapshot.MesosLeader = snap.Mesos.Leader
	}
	snap.Apps.Each(func(a *discovery.App) bool {
		if !matches(a.ID, query) {
			return true
		}
		v.Matched++
		if len(v.Apps) < statusPageLimit {
			v.Apps = append(v.Apps, appViewOf(a, front, live))
		}
		return true
	})
	return v
}

// autoscaleView is the autoscaler's section of the page.
type autoscaleView struct {
	Role      string
	RoleClass string
	Interval  string
	Decisions []autoscaleRow
}

type autoscaleRow struct {
	AppID, Mode, Action, Class, Change, Reason, Inputs, Error, When string
}

func autoscaleViewOf(st AutoscaleStatus, now time.Time, query string) *autoscaleView {
	v := &autoscaleView{Interval: st.Interval.String(), Role: "scales (" + st.Lock + ")", RoleClass: "ok"}
	if !st.Leading {
		v.Role, v.RoleClass = "decides only: another instance holds the lock ("+st.Lock+")", "warn"
	}
	if st.DryRun {
		v.Role += "; dry run: logs scales, writes none"
	}
	for _, d := range st.Decisions {
		if !matches(d.AppID, query) || len(v.Decisions) >= statusPageLimit {
			continue
		}
		row := autoscaleRow{AppID: d.AppID, Mode: d.Mode, Action: d.Action, Reason: d.Reason, Inputs: d.Inputs,
			Error: d.Error, When: ago(now, d.At), Change: strconv.Itoa(d.From)}
		if d.To != d.From {
			row.Change += " → " + strconv.Itoa(d.To)
		}
		switch {
		case d.Error != "" || strings.HasPrefix(d.Reason, "bad labels"):
			row.Class = "bad"
		case d.Action == "scale":
			row.Class = "ok"
		case d.Action == "skip":
			row.Class = "warn"
		}
		v.Decisions = append(v.Decisions, row)
	}
	return v
}

// readiness runs the checks /readyz runs, sorted by name; it returns only the failing and the
// degraded ones (these do not make it unready).
func (s *Server) readiness() (bool, []checkView) {
	s.mu.Lock()
	checks := maps.Clone(s.checks)
	s.mu.Unlock()
	var shown []checkView
	ready := true
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		if err := checks[name](); err != nil {
			class := "bad"
			if isDegraded(err) {
				class = "warn"
			} else {
				ready = false
			}
			shown = append(shown, checkView{Name: name, Error: err.Error(), Class: class})
		}
	}
	return ready, shown
}

// matches reports whether id contains query, ignoring case; an empty query matches all.
// query must be lower case already.
func matches(id, query string) bool {
	return query == "" || strings.Contains(strings.ToLower(id), query)
}

func sourceViewOf(src discovery.SourceStatus, now time.Time) sourceView {
	v := sourceView{Name: src.Name, LastSync: "never"}
	if !src.LastSync.IsZero() {
		v.LastSync = ago(now, src.LastSync)
	}
	switch {
	case src.LastError != "":
		v.State, v.Class = "error", "bad"
		v.Error, v.ErrorWhen = src.LastError, ago(now, src.ErrorAt)
	case src.Synced:
		v.State, v.Class = "synced", "ok"
	default:
		v.State, v.Class = "waiting for the first sync", "warn"
	}
	return v
}

func routingViewOf(sum RoutingSummary, now time.Time, query string) *routingView {
	v := &routingView{
		Applies: []applyRow{
			{"Last apply", applyViewOf(sum.LastApply, now)},
			{"Last reload", applyViewOf(sum.LastReload, now)},
		},
		Reloads:   sum.Reloads,
		Unhealthy: sum.Unhealthy,
	}
	excluded := slices.Clone(sum.Excluded)
	slices.SortStableFunc(excluded, func(a, b Excluded) int {
		if c := strings.Compare(a.AppID, b.AppID); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	for _, e := range excluded {
		if !matches(e.AppID, query) {
			continue
		}
		v.ExcludedMatched++
		if len(v.Excluded) >= statusPageLimit {
			continue
		}
		v.Excluded = append(v.Excluded, excludedView{AppID: e.AppID, Port: portOf(e.Port), Reason: e.Reason, HAProxy: e.HAProxy})
	}
	warnings := slices.Clone(sum.Warnings)
	slices.SortStableFunc(warnings, func(a, b Warning) int {
		if c := strings.Compare(a.AppID, b.AppID); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	for _, w := range warnings {
		if !matches(w.AppID, query) {
			continue
		}
		v.WarningsMatched++
		if len(v.Warnings) < statusPageLimit {
			v.Warnings = append(v.Warnings, warningView{AppID: w.AppID, Port: portOf(w.Port), Message: w.Message})
		}
	}
	return v
}

// portOf shows a port index, -1 being the whole app.
func portOf(i int) string {
	if i < 0 {
		return "whole app"
	}
	return "#" + strconv.Itoa(i)
}

func applyViewOf(a *Apply, now time.Time) *applyView {
	if a == nil {
		return nil
	}
	v := &applyView{
		Kind:     a.Kind,
		Class:    "ok",
		Reason:   a.Reason,
		When:     ago(now, a.At),
		At:       a.At.UTC().Format(time.RFC3339),
		Duration: a.Duration.Round(time.Millisecond).String(),
		Error:    a.Error,
	}
	if a.Kind == "failed" || a.Error != "" {
		v.Class = "bad"
	}
	if a.Duration > 0 && a.Duration < time.Millisecond {
		v.Duration = a.Duration.Round(time.Microsecond).String()
	}
	return v
}

func appViewOf(a *discovery.App, front Frontends, live liveReading) appView {
	v := appView{ID: a.ID, Instances: a.Instances, Tasks: len(a.Tasks), Deploying: len(a.Deployments) > 0}
	for _, t := range a.Tasks {
		if t.State == discovery.StateRunning {
			v.Running++
		}
		if t.Eligible {
			v.Healthy++
			continue
		}
		class := "bad"
		if t.Draining || t.State == discovery.StateStaging || t.State == discovery.StateStarting {
			class = "warn"
		}
		v.Out = append(v.Out, taskOutView{ID: t.ID, State: t.State, Reason: t.Reason, Class: class})
	}
	if front.Routing != nil {
		v.Routed = true
		for _, r := range front.Routing.AppRoutes(a.ID) {
			v.Routes = append(v.Routes, routeViewOf(a, r, live))
		}
		if len(v.Routes) == 0 {
			v.NotRouted = "HAProxy does not serve this app (another group, no service ports, or left out)"
		}
	} else {
		v.Routes = portRoutes(a)
	}
	if front.DNS != nil {
		v.DNSNames = front.DNS.AppNames(a.ID)
	}
	return v
}

func routeViewOf(a *discovery.App, r Route, live liveReading) routeView {
	v := routeView{
		ServicePort: r.ServicePort, Port: r.Port, Mode: r.Mode, VHosts: r.VHosts, Path: r.Path,
		Rule: r.Rule, Frontend: r.Frontend, Backend: r.Backend,
	}
	for _, srv := range r.Servers {
		health, class := taskHealth(a, a.Task(srv.TaskID))
		switch {
		case srv.State == "maint":
			class = "bad"
		case srv.State == "drain" && class == "ok":
			class = "warn"
		}
		sv := serverView{TaskID: srv.TaskID, Address: srv.Address, State: srv.State, Health: health, Class: class}
		if ls := live.server(r.Backend, srv.Slot); ls != nil {
			sv.HAProxy = &liveServerView{Status: ls.Status, Check: liveCheck(ls), Class: liveClass(ls.Status)}
			sv.Class = worseClass(class, sv.HAProxy.Class)
		}
		v.Servers = append(v.Servers, sv)
	}
	return v
}

// portRoutes shows, without HAProxy, each app port with the task endpoints serving it.
func portRoutes(a *discovery.App) []routeView {
	routes := make([]routeView, len(a.Ports))
	for i, p := range a.Ports {
		routes[i] = routeView{ServicePort: p.ServicePort, Port: i, Mode: p.Protocol}
		for _, t := range a.Tasks {
			if i >= len(t.Endpoints) {
				continue
			}
			ep := t.Endpoints[i]
			health, class := taskHealth(a, t)
			state := "out"
			switch {
			case t.Eligible:
				state = "in"
			case t.Draining:
				state = "draining"
			}
			routes[i].Servers = append(routes[i].Servers, serverView{
				TaskID: t.ID, Address: net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)), State: state, Health: health, Class: class,
			})
		}
	}
	return routes
}

// taskHealth describes whether a task gets traffic, and its colour class.
func taskHealth(a *discovery.App, t *discovery.Task) (string, string) {
	switch {
	case t == nil:
		return "task not in the registry", "warn"
	case t.Eligible && len(a.HealthChecks) > 0 && len(t.Health) == 0:
		return "healthy (no health results yet)", "ok"
	case t.Eligible:
		return "healthy", "ok"
	case t.Draining:
		return t.Reason, "warn"
	}
	return t.Reason, "bad"
}

// ago formats how long before now t was, coarsely: "3s ago", "4m10s ago", "2h5m ago",
// "3d4h ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "just now"
	}
	return formatAge(d) + " ago"
}

func formatAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
