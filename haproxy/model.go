// Package haproxy turns registry snapshots into HAProxy configuration and keeps a running
// HAProxy on it.
//
// The pure half (labels.go, model.go, build*.go, render.go, plan.go) decides: Build reads a
// discovery.Snapshot and the marathon-lb labels of its apps into a Model; Render writes the
// Model as haproxy.cfg (plus map files), every line tagged with the app that emitted it; Plan
// compares two Models and says whether HAProxy's runtime API can apply the difference or a
// reload is needed, and why. None of them does I/O (Build reads the templates directory only
// when Config.Templates is nil).
//
// # Servers: slots
//
// Every backend's server lines are named s1…sN ("slots"). A task keeps its slot for as long
// as it lives (Build is given the previous Model for that), and a free slot sits at
// 127.0.0.1:1 in maintenance ("disabled"). Slot names, server ids (the slots' positions) and
// backend ids never change while a backend exists, so HAProxy's server-state file and health
// state survive reloads, and a task starting, stopping or moving is three runtime commands
// (addr, check-port, state) instead of a reload.
//
// How many slots a backend has depends on whether HAProxy can add servers to it at run time
// (Backend.DynamicServers: HAProxy 2.4+'s `add server`, which refuses per-server cookies and
// backends whose balance algorithm is not dynamic). Such a backend has as many slots as it
// has tasks, and grows at run time: the new slots are added with `add server` and written to
// the file, so the next reload keeps them. A slot whose task is gone stays, in maintenance,
// for the next task (Marathon's replacement takes its predecessor's slot), so a scale-down or
// the end of a rolling deployment is runtime commands too; the spares are dropped by the
// next reload that happens anyway (Config.ShrinkSlots, which the applier sets for the build
// it reloads onto). Every other backend keeps
// spare slots in steps of Config.SlotStep, and growing it is a reload. At 10,000 apps × 3
// tasks that is 30,000 server lines instead of 100,000; each checked line costs HAProxy
// memory and an open file, checked or not, spare or not.
//
// A draining task (TASK_KILLING, or an old task of a zero-downtime deployment) is "disabled"
// in the file, as marathon-lb wrote it, and `state drain` at runtime: it finishes what it has
// and gets nothing new. A task whose address is an agent host name rather than an IP is
// written as the name (HAProxy resolves it when it starts); the runtime API cannot set a name,
// so a change to one is a reload.
//
// # Shared frontends
//
// marathon_http_in routes on the Host header (without its port) and marathon_https_in
// terminates TLS with Config.SSLCerts and routes on SNI (ssl_fc_sni), both by marathon-lb's
// ACL templates, or through domain2backend.map with Config.HAProxyMap. marathon_http_appid_in
// routes on X-Marathon-App-Id. A bamboo-style rule from ZooKeeper (Snapshot.Rules) replaces the
// vhost ACLs of the app's first port.
//
// # Owners
//
// Every rendered line knows the app that emitted it (Rendered.Owner): the app id, or "/<group>"
// for the merged backend of a zero-downtime deployment group. Config.Exclude takes the same
// keys, so the app that `haproxy -c` blames can be left out and the rest retried.
package haproxy

import (
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/templates"
)

// Config is what Build needs besides the snapshot. The zero value of every field has a
// documented default.
type Config struct {
	// Groups are the HAPROXY_GROUP values this instance serves (--group); "*" serves every
	// app, grouped or not. Default ["external"].
	Groups []string
	// StrictMode exposes only ports labelled HAPROXY_{n}_ENABLED=true (--strict-mode).
	StrictMode bool
	// HAProxyMap routes vhosts and app ids through map files (--haproxy-map): one use_backend
	// line per shared frontend, entries changed at runtime with add/del map.
	HAProxyMap bool
	// HTTPBind, HTTPSBind and StatsBind are the binds of the shared HTTP and HTTPS frontends
	// and of the stats frontend. Defaults "*:80", "*:443", "*:9090".
	HTTPBind, HTTPSBind, StatsBind string
	// AppIDBind is the bind of marathon-lb's X-Marathon-App-Id frontend, default "*:9091".
	AppIDBind string
	// NoAppIDFrontend leaves out the X-Marathon-App-Id frontend.
	NoAppIDFrontend bool
	// DontBindHTTPHTTPS leaves out the shared HTTP and HTTPS frontends (--dont-bind-http-https).
	DontBindHTTPHTTPS bool
	// RunDir holds HAProxy's sockets, server-state file and map files. Default "/run/lodestar".
	RunDir string
	// Templates are the resolved global templates. When nil, Build loads them from
	// TemplatesDir and Getenv (see templates.Load) on every call; pass a loaded Set instead so
	// that builds do no I/O and reuse what unchanged apps rendered to last time.
	Templates *templates.Set
	// TemplatesDir (--templates-dir) and Getenv (os.Getenv in production) are where template
	// overrides come from when Templates is nil.
	TemplatesDir string
	Getenv       func(string) string
	// SSLCerts are the certificates of the shared HTTPS frontend (--ssl-certs). When empty,
	// <RunDir>/default.pem is used: the caller must create it (a self-signed certificate).
	SSLCerts []string
	// MaxConn is HAProxy's global and default maxconn. Default 4096, which starts under a
	// 20,000 open-files limit.
	MaxConn int
	// HardStopAfter bounds how long an old worker may keep connections after a reload.
	// Default 15 minutes.
	HardStopAfter time.Duration
	// MinServPortIPPerTask and MaxServPortIPPerTask bound the service ports assigned to
	// IP-per-task ports that have none (marathon-lb's flags). Defaults 10050 and 10100.
	MinServPortIPPerTask, MaxServPortIPPerTask int
	// HealthCheck respects Marathon's health check results (--health-check): a task whose
	// check fails gets no traffic. When false, only HAProxy's own checks decide, as in
	// marathon-lb without the flag.
	HealthCheck bool
	// LabelTemplates is how per-app template labels are trusted (--label-templates): the
	// zero value confines them to the app's own sections; LabelTemplatesFull writes them as
	// they render. Operator templates (Templates, TemplatesDir, Getenv) are always trusted.
	LabelTemplates LabelTemplates
	// SlotStep is how many server slots a backend grows by when HAProxy cannot add servers
	// to it at run time (sticky apps, a balance algorithm that is not dynamic,
	// StaticSlots). Default 10.
	SlotStep int
	// StaticSlots gives every backend spare slots in steps of SlotStep, as before HAProxy
	// 2.4 could add servers at run time (--haproxy-static-slots).
	StaticSlots bool
	// FrontendLogs gives each app's own frontend HAProxy's request log format (`option
	// httplog`, or tcplog in tcp mode) after its FRONTEND_HEAD, unless that sets a log format
	// itself. serve sets it when --haproxy-access-log is on: each such frontend costs HAProxy
	// about 3 KiB, 30 MB at 10,000 apps, for log lines that are thrown away when it is off.
	FrontendLogs bool
	// ShrinkSlots drops the free slots of backends HAProxy can add servers to, moving the
	// tasks beyond their count into the freed ones. The applier sets it for the build of a
	// reload, which rewrites every server line anyway; without it a free slot stays as a
	// spare, so that taking a task out is never a reload.
	ShrinkSlots bool
	// Exclude leaves apps out, by app id or, for a zero-downtime deployment group, by
	// "/<group>"; the value is the reason reported in Model.Excluded. The caller uses it to
	// drop an app that `haproxy -c` blamed.
	Exclude map[string]string
	// LeaderProxies are HTTP frontends whose backend holds only the current Mesos or
	// Marathon leader (--leader-proxy); see LeaderProxy. Their lines are owned by
	// LeaderProxyOwner(name), which Exclude also takes.
	LeaderProxies []LeaderProxy
}

// Defaults of Config.
const (
	DefaultGroup         = "external"
	DefaultHTTPBind      = "*:80"
	DefaultHTTPSBind     = "*:443"
	DefaultStatsBind     = "*:9090"
	DefaultAppIDBind     = "*:9091"
	DefaultRunDir        = "/run/lodestar"
	DefaultMaxConn       = 4096
	DefaultHardStopAfter = 15 * time.Minute
	DefaultSlotStep      = 10
	DefaultMinServPort   = 10050
	DefaultMaxServPort   = 10100
)

func (c Config) withDefaults() Config {
	if len(c.Groups) == 0 {
		c.Groups = []string{DefaultGroup}
	}
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&c.HTTPBind, DefaultHTTPBind)
	def(&c.HTTPSBind, DefaultHTTPSBind)
	def(&c.StatsBind, DefaultStatsBind)
	def(&c.AppIDBind, DefaultAppIDBind)
	def(&c.RunDir, DefaultRunDir)
	c.RunDir = strings.TrimSuffix(c.RunDir, "/")
	if c.MaxConn <= 0 {
		c.MaxConn = DefaultMaxConn
	}
	if c.HardStopAfter <= 0 {
		c.HardStopAfter = DefaultHardStopAfter
	}
	if c.SlotStep <= 0 {
		c.SlotStep = DefaultSlotStep
	}
	if c.MinServPortIPPerTask == 0 && c.MaxServPortIPPerTask == 0 {
		c.MinServPortIPPerTask, c.MaxServPortIPPerTask = DefaultMinServPort, DefaultMaxServPort
	}
	if len(c.SSLCerts) == 0 {
		c.SSLCerts = []string{c.RunDir + "/default.pem"}
	}
	return c
}

// Model is one built HAProxy configuration. Build makes it; Render writes it; Plan compares
// two. A Model is never modified after Build returns, and parts that did not change are
// shared with the previous Model (Plan relies on that to be fast).
type Model struct {
	// RunDir and HAProxyMap are the Config values the model was built with.
	RunDir     string
	HAProxyMap bool
	// Head is the rendered HEAD template (global, defaults, stats frontend).
	Head string
	// HeadInfo is what Build read from Head.
	HeadInfo HeadInfo
	// HTTP, HTTPS and AppID are the shared frontends marathon_http_in, marathon_https_in and
	// marathon_http_appid_in; nil when not bound.
	HTTP, HTTPS, AppID *SharedFrontend
	// Userlists hold basic-auth users, sorted by name.
	Userlists []*Userlist
	// Frontends are the per-port frontends, sorted by name.
	Frontends []*Frontend
	// Backends are sorted by name.
	Backends []*Backend
	// DomainMap (vhost → backend) and AppMap (app id → backend) are marathon-lb's
	// domain2backend.map and app2backend.map, sorted by key (MapEntry.Value is the backend).
	// They are filled only with HAProxyMap, as marathon-lb's map files were.
	DomainMap []MapEntry
	AppMap    []MapEntry
	// Excluded lists apps and ports left out because of a label, template or port error,
	// sorted by app and port.
	Excluded []Exclusion
	// Warnings are labels that were ignored, sorted by app and port.
	Warnings []Warning
	// Err is set when no configuration can be built at all (a global template is broken):
	// Render fails with it and the caller keeps the running configuration.
	Err error

	// routeOwners are the apps holding each vhost+path route: the next build keeps each with
	// its holder (see owners; ports and acl names are read from Frontends and the shared
	// frontends' rules).
	routeOwners map[routeKey]string
	// autoPorts keeps the service ports given to IP-per-task ports ("<key>#<index>" → port)
	// so they stay put across builds.
	autoPorts map[string]int
	// env, labels and memo let the next build reuse what did not change.
	env    buildEnv
	labels map[*discovery.App]*AppLabels
	memo   map[string]*unitMemo
}

// HeadInfo is read from the rendered HEAD with config-parser.
type HeadInfo struct {
	// StatsSockets are the paths of the admin-level `stats socket` lines.
	StatsSockets []string
	// ServerStateFile is the global server-state-file, "" when none.
	ServerStateFile string
}

// SharedFrontend is one of the frontends every app with a vhost (or, for AppID, in http mode)
// routes through.
type SharedFrontend struct {
	// Name is the frontend's name (marathon_http_in, …).
	Name string
	// Head is the rendered *_FRONTEND_HEAD template.
	Head string
	// Rules are the routing lines, in the order HAProxy reads them: every acl line first, then
	// http-request/redirect rules, then use_backend, each group in backend-weight order.
	Rules []Rule
}

// Rule is one line of a shared frontend and the app (key) that emitted it; Owner is "" for
// lines shared by all apps (the map use_backend lines).
type Rule struct {
	Owner string
	Text  string
}

// Userlist is one app port's basic-auth users.
type Userlist struct {
	Name  string
	Owner string
	Text  string
}

// Frontend is the frontend of one service port.
type Frontend struct {
	Name  string
	Owner string
	// Port is the bound port; BindAddr the address ("*" by default).
	Port     int
	BindAddr string
	Mode     string
	// Text is the rendered section.
	Text string
}

// Backend is the backend of one service port.
type Backend struct {
	// Name is <app id without the leading "/", "/" → "_">_<service port>.
	Name string
	// ID is HAProxy's numeric proxy id; it stays the same for as long as the backend exists.
	ID int
	// Owner is the app id, or "/<group>" for a zero-downtime deployment group.
	Owner string
	// PortIndex is the app's port index (the n of HAPROXY_{n}_*) this backend serves.
	PortIndex   int
	ServicePort int
	Mode        string
	// Head is the rendered section up to the server lines.
	Head string
	// Slots are the server lines, s1…sN.
	Slots []Slot
	// RuntimeServers says whether a slot's address, port, check port and state may be
	// changed with the runtime API. False when a custom BACKEND_SERVER_OPTIONS template writes
	// them in a way the runtime API cannot reproduce (a fixed port, the agent host name, …).
	RuntimeServers bool
	// DynamicServers says whether HAProxy can add slots to the backend at run time (`add
	// server`): RuntimeServers, no per-server cookie, a dynamic balance algorithm and server
	// options `add server` takes. Such a backend has no spare slots to start with.
	DynamicServers bool

	// shape is every server line with the runtime fields replaced by markers: two backends
	// with the same shape differ only in what the runtime API can change.
	shape  string
	server *serverRender
}

// Slot is one server line of a backend.
type Slot struct {
	// Name is s1…sN.
	Name string
	// TaskID is the task in the slot, "" for a spare.
	TaskID string
	// Host is the agent's host name ("" for a spare); Addr the address HAProxy connects to
	// (an IP, or a host name HAProxy resolves when it starts); Port its port.
	Host string
	Addr string
	Port int
	// CheckPort is the health check port, 0 for the server port.
	CheckPort int
	State     ServerState
}

// Spare reports whether no task is in the slot.
func (s Slot) Spare() bool { return s.TaskID == "" }

// Spare slots point at a closed local port and stay in maintenance.
const (
	spareAddr = "127.0.0.1"
	sparePort = 1
)

// ServerState is a slot's administrative state.
type ServerState uint8

// Server states, as the runtime API's `set server … state` names them.
const (
	StateMaint ServerState = iota
	StateReady
	StateDrain
)

func (s ServerState) String() string {
	switch s {
	case StateReady:
		return "ready"
	case StateDrain:
		return "drain"
	}
	return "maint"
}

// MapEntry is one line of a map file: a vhost or app id and the backend it routes to.
type MapEntry struct {
	Key string
	// Value is the backend name.
	Value string
}

// Exclusion is an app or one of its ports left out of the configuration.
type Exclusion struct {
	// AppID is the app id, or "/<group>" for a zero-downtime deployment group.
	AppID string
	// Port is the port index, -1 for the whole app.
	Port   int
	Reason string
}

// Warning is a label lodestar ignored, or a route an app did not get because another app owns
// it (the message names the owner).
type Warning struct {
	AppID string `json:"app_id"`
	// Port is the port index, -1 for the app.
	Port    int    `json:"port"`
	Message string `json:"message"`
}

// Backend returns the named backend, or nil.
func (m *Model) Backend(name string) *Backend {
	i, ok := searchByName(m.Backends, name, func(b *Backend) string { return b.Name })
	if !ok {
		return nil
	}
	return m.Backends[i]
}

// Frontend returns the named per-port frontend, or nil.
func (m *Model) Frontend(name string) *Frontend {
	i, ok := searchByName(m.Frontends, name, func(f *Frontend) string { return f.Name })
	if !ok {
		return nil
	}
	return m.Frontends[i]
}

func searchByName[T any](s []T, name string, key func(T) string) (int, bool) {
	lo, hi := 0, len(s)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if key(s[mid]) < name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(s) && key(s[lo]) == name
}

// DomainMapFile and AppMapFile are the map files' paths.
func (m *Model) DomainMapFile() string { return m.RunDir + "/domain2backend.map" }

// AppMapFile is the path of app2backend.map.
func (m *Model) AppMapFile() string { return m.RunDir + "/app2backend.map" }
