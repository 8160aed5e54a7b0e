package api

import (
	"context"
	"errors"
	"time"
)

// The interfaces below are what the API reads from and triggers in the rest of lodestar. cmd
// wires adapters over the HAProxy front end, the DNS front end, the sources and the
// ZooKeeper rule writer in with Server.SetFrontends; the api package never imports them. Each
// field of Frontends may be nil when that part is not running (no HAProxy, no DNS, no
// --zk-rules): the endpoints that need it then answer 404 or 503 with a message saying which
// flag turns it on, and the status page leaves that part out.

// Frontends bundles what cmd wires in.
type Frontends struct {
	// Routing is the HAProxy front end: how each app is routed, the last apply, apps left out.
	Routing Routing
	// Live is HAProxy's own view of its servers (its health checks), read from its admin
	// socket; the app document and the status page show it beside Marathon's health.
	Live LiveServers
	// DNS is the DNS front end: records by name, names by app.
	DNS DNSRecords
	// Resync asks every source for a full resync (POST /v1/resync, /_mlb_signal/hup).
	Resync Resyncer
	// Rules reads and writes bamboo-style routing rules (/api/services).
	Rules RuleStore
	// RuleCheck checks a rule before Rules stores it; nil stores what Rules accepts.
	RuleCheck RuleChecker
	// Autoscale is the autoscaler (serve --autoscale): its last decisions, shown on the status
	// page.
	Autoscale Autoscaler
}

// Autoscaler is what the status page shows of the autoscaler.
type Autoscaler interface {
	AutoscaleStatus() AutoscaleStatus
}

// AutoscaleStatus is the autoscaler at a glance.
type AutoscaleStatus struct {
	// Leading is true while this instance may scale (it holds the lock, or runs alone).
	Leading bool
	DryRun  bool
	// Lock says how the instances agree on who scales ("ZooKeeper lock zk://…", "alone").
	Lock     string
	Interval time.Duration
	// Decisions are the last decision of every app that opted in, by app id.
	Decisions []AutoscaleDecision
}

// AutoscaleDecision is one app's last autoscale decision.
type AutoscaleDecision struct {
	AppID string
	Mode  string
	// Action is "scale", "hold", "wait" or "skip"; From and To the instances.
	Action   string
	From, To int
	Reason   string
	// Inputs are the figures decided from, as text ("rps 812.5 on port 10000 over 3 samples").
	Inputs string
	Error  string
	At     time.Time
}

// Routing is what the API reads from the HAProxy front end.
type Routing interface {
	// AppRoutes returns how HAProxy serves each service port of the app, in port order; nil
	// when HAProxy does not serve the app (other group, no ports, left out).
	AppRoutes(appID string) []Route
	// AppLabels returns the app's HAProxy labels as parsed (marathon-lb's HAPROXY_* set, JSON
	// encodable), nil for an unknown app.
	AppLabels(appID string) any
	// Summary returns the last apply, the last reload and every app left out.
	Summary() RoutingSummary
}

// Route is how HAProxy serves one service port of an app.
type Route struct {
	// Port is the port index (the n of HAPROXY_{n}_*), ServicePort the port HAProxy binds.
	Port        int    `json:"port"`
	ServicePort int    `json:"service_port"`
	Mode        string `json:"mode"`
	Backend     string `json:"backend"`
	// Frontend is the app's own frontend (its service port); VHosts and Path route the shared
	// HTTP/HTTPS frontends to it; Rule is a bamboo-style ACL replacing the vhost ACLs.
	Frontend string   `json:"frontend,omitempty"`
	VHosts   []string `json:"vhosts,omitempty"`
	Path     string   `json:"path,omitempty"`
	Rule     string   `json:"rule,omitempty"`
	// Servers are the backend's servers that hold a task (spare slots are left out).
	Servers []RouteServer `json:"servers"`
	// Requests is the backend's cumulative request total as HAProxy counts it (HTTP requests,
	// or sessions in TCP mode), since its worker started: it restarts from 0 at a reload, so
	// a client that makes rates of it takes a decrease for a restart. The api fills it in
	// from Live; absent when HAProxy could not be read or has no such backend.
	Requests *uint64 `json:"requests,omitempty"`
	// RequestsAt is when HAProxy was read for Requests: the reading is shared for about a
	// second, so two requests a moment apart can see the same one.
	RequestsAt *time.Time `json:"requests_at,omitempty"`
}

// RouteServer is one HAProxy server of a backend.
type RouteServer struct {
	Slot    string `json:"slot"`
	TaskID  string `json:"task_id"`
	Address string `json:"address"`
	// State is what lodestar set: "ready", "drain" or "maint".
	State string `json:"state"`
	// The api fills the two fields below itself; the Routing leaves them empty.
	//
	// MarathonHealth is what Marathon says of the task: "healthy", "healthy (no health
	// results yet)", or why the task gets no traffic.
	MarathonHealth string `json:"marathon_health,omitempty"`
	// HAProxy is HAProxy's own view of the server, absent when Live is not wired in.
	HAProxy *LiveServer `json:"haproxy,omitempty"`
}

// LiveServers reads HAProxy's own view of its servers.
type LiveServers interface {
	// ServerStates returns HAProxy's server states, at most about a second old, or why they
	// cannot be read (HAProxy not running, its socket failing).
	ServerStates(ctx context.Context) (ServerStates, error)
}

// ServerStates is one reading of HAProxy's servers.
type ServerStates interface {
	// Server returns HAProxy's view of server slot of backend; ok is false when HAProxy has
	// no such server.
	Server(backend, slot string) (s LiveServer, ok bool)
}

// BackendStates is implemented by a ServerStates that also reads HAProxy's BACKEND rows.
// It is a separate interface so that a ServerStates without backends keeps working.
type BackendStates interface {
	// BackendRequests returns the backend's cumulative request total (see Route.Requests);
	// ok is false when HAProxy has no such backend.
	BackendRequests(backend string) (total uint64, ok bool)
	// ReadAt is when HAProxy was read.
	ReadAt() time.Time
}

// LiveServer is HAProxy's own view of one server, from its admin socket.
type LiveServer struct {
	// Status is HAProxy's: UP, DOWN, MAINT, DRAIN, NOLB, "no check" (up, not checked), a
	// transition such as "UP 1/3" (up, checks failing); "unknown" when it could not be
	// read, with Error saying why.
	Status string `json:"status"`
	// Check is the last health check's result (L4OK, L4CON, L7STS, …) and CheckCode its L7
	// response code; CheckDesc says what Check means and LastCheck gives the detail
	// ("Connection refused", the server's HTTP reason phrase).
	Check     string `json:"check,omitempty"`
	CheckCode string `json:"check_code,omitempty"`
	CheckDesc string `json:"check_desc,omitempty"`
	LastCheck string `json:"last_check,omitempty"`
	Weight    int    `json:"weight"`
	Sessions  int    `json:"sessions"`
	Error     string `json:"error,omitempty"`
}

// RoutingSummary is the HAProxy front end at a glance.
type RoutingSummary struct {
	// LastApply is the newest change applied (runtime or reload); LastReload the newest
	// reload. Nil before there was one.
	LastApply  *Apply `json:"last_apply,omitempty"`
	LastReload *Apply `json:"last_reload,omitempty"`
	Reloads    int    `json:"reloads"`
	// Excluded are the apps or ports left out of HAProxy's configuration, with why.
	Excluded []Excluded `json:"excluded"`
	// Warnings are labels ignored and routes an app did not get (another app owns them).
	Warnings []Warning `json:"warnings"`
	// Healthy is "" while HAProxy runs lodestar's configuration, else why not.
	Unhealthy string `json:"unhealthy,omitempty"`
}

// Apply is one change applied to HAProxy.
type Apply struct {
	// Kind is "runtime", "reload", "write" or "failed".
	Kind     string        `json:"kind"`
	Reason   string        `json:"reason"`
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
}

// Warning is a label ignored, or a route an app did not get, with why.
type Warning struct {
	AppID string `json:"app_id"`
	// Port is the port index, -1 for the app.
	Port    int    `json:"port"`
	Message string `json:"message"`
}

// Excluded is an app or one of its ports left out of HAProxy's configuration.
type Excluded struct {
	AppID string `json:"app_id"`
	// Port is the port index, -1 for the whole app.
	Port   int    `json:"port"`
	Reason string `json:"reason"`
	// HAProxy holds HAProxy's alert lines when `haproxy -c` rejected the app.
	HAProxy []string `json:"haproxy,omitempty"`
}

// DNSRecords is what the API reads from the DNS front end.
type DNSRecords interface {
	// Records returns every record of a name (any case, trailing dot optional), nil when the
	// name has none.
	Records(name string) []DNSRecord
	// AppNames returns the DNS names (A and SRV) the app's tasks have, sorted.
	AppNames(appID string) []string
}

// DNSRecord is one resource record.
type DNSRecord struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	// Data is the record's data in zone-file form ("10.0.0.1", "0 0 31000 host.mesos.").
	Data string `json:"data"`
}

// Resyncer triggers a full resync of every source.
type Resyncer interface {
	Resync(ctx context.Context) error
}

// RuleStore reads and writes bamboo-style routing rules (kept in ZooKeeper).
type RuleStore interface {
	// List returns every rule, sorted by app id.
	List(ctx context.Context) ([]ServiceRule, error)
	// Put creates or replaces the rule of rule.ID.
	Put(ctx context.Context, rule ServiceRule) error
	// Delete removes the rule of an app; ErrNoRule when there is none.
	Delete(ctx context.Context, id string) error
}

// RuleChecker checks a bamboo-style rule before it is stored, so that a rule HAProxy would not
// take never reaches ZooKeeper (where every instance would drop the app for it).
type RuleChecker interface {
	// CheckRule returns nil when the rule would validate; an error wrapping ErrInvalidRule
	// with the parse error or HAProxy's alert when it would not; another error when it could
	// not be checked.
	CheckRule(ctx context.Context, rule ServiceRule) error
}

// ServiceRule is one bamboo-style rule: the app id and the HAProxy ACL that replaces its vhost
// ACLs.
type ServiceRule struct {
	ID  string `json:"id"`
	ACL string `json:"acl"`
}

// ErrNoRule is returned by RuleStore.Delete for an app without a rule.
var ErrNoRule = errors.New("no rule for that app")

// SetFrontends wires the front ends in. Call it before Run; the endpoints that need a front
// end read it on every request.
func (s *Server) SetFrontends(f Frontends) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.front = f
}

// frontends returns what SetFrontends wired in.
func (s *Server) frontends() Frontends {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.front
}
