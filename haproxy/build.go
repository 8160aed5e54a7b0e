package haproxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/options"
	"github.com/haproxytech/config-parser/v5/types"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/templates"
)

// Build makes the model of snap under cfg. prev is the model built before (nil the first
// time): tasks keep their slots, backends their ids and IP-per-task ports their assigned
// service ports, and whatever did not change is shared with prev.
//
// A malformed label, a template that does not parse or execute, or a port conflict leaves out
// that app or port (Model.Excluded) and never stops the others. Only a broken global
// template (HEAD, a shared frontend head, …) fails the whole build (Model.Err).
func Build(snap *discovery.Snapshot, cfg Config, prev *Model) *Model {
	cfg = cfg.withDefaults()
	m := &Model{RunDir: cfg.RunDir, HAProxyMap: cfg.HAProxyMap, autoPorts: map[string]int{}}
	set := cfg.Templates
	if set == nil {
		s, err := templates.Load(cfg.TemplatesDir, cfg.Getenv)
		if err != nil {
			m.Err = err
			return m
		}
		set = s
	}
	m.env = buildEnv{runDir: cfg.RunDir, haproxyMap: cfg.HAProxyMap, dontBind: cfg.DontBindHTTPHTTPS,
		noAppID: cfg.NoAppIDFrontend, healthCheck: cfg.HealthCheck, frontendLogs: cfg.FrontendLogs, slotStep: cfg.SlotStep, set: set,
		labelTemplates: cfg.LabelTemplates}
	b := &builder{cfg: cfg, set: set, m: m, prev: prev, reserved: map[int]string{}, bound: map[int][]binding{}, own: newOwners(prev)}
	if prev != nil && prev.env == m.env {
		b.memo = prev.memo
	}
	if err := b.globals(); err != nil {
		m.Err = err
		return m
	}
	if snap != nil {
		m.labels = make(map[*discovery.App]*AppLabels, snap.Apps.Len())
		m.memo = make(map[string]*unitMemo, snap.Apps.Len())
		svcs := b.services(b.units(snap))
		b.assignIDs(svcs)
		m.Frontends = make([]*Frontend, 0, len(svcs))
		m.Backends = make([]*Backend, 0, len(svcs))
		// A unit's ports are contiguous in svcs.
		for i := 0; i < len(svcs); {
			j := i + 1
			for j < len(svcs) && svcs[j].u == svcs[i].u {
				j++
			}
			// A confined template may route to every backend of its own app.
			if j-i > 1 {
				u := svcs[i].u
				for _, s := range svcs[i:j] {
					u.backends = append(u.backends, s.name)
				}
			}
			b.emitUnit(svcs[i:j])
			i = j
		}
	}
	b.emitLeaderProxies(snap)
	b.finish()
	m.routeOwners = b.own.routes
	return m
}

// buildEnv is what, besides an app and its ports, decides how the app renders. Per-app
// results of the previous build are reused only under the same environment.
type buildEnv struct {
	runDir                                     string
	haproxyMap, dontBind, noAppID, healthCheck bool
	frontendLogs                               bool
	slotStep                                   int
	set                                        *templates.Set
	labelTemplates                             LabelTemplates
}

type builder struct {
	cfg  Config
	set  *templates.Set
	m    *Model
	prev *Model

	// reserved are the ports of lodestar's own frontends; bound the ports apps bind so far.
	reserved map[int]string
	bound    map[int][]binding
	// names are the backend names taken so far, with the unit that took each.
	names map[string]string
	// own decides contested ports, routes and names (see owners).
	own *owners

	// leaders are the leader proxies whose ports are reserved.
	leaders []LeaderProxy

	httpRoutes, httpsRoutes, appIDRoutes []route
	domainMap, appMap                    []ownedEntry
	useMapHTTP, useMapHTTPOnly           bool
	useMapHTTPS, useMapAppID             bool
	appIDDone                            map[string]bool
	memo                                 map[string]*unitMemo

	// scratch buffers and values reused by every port's renderer.
	scratch, scratchHTTP, scratchHTTPS []byte
	vals                               templates.Values
	taskBuf                            []slotTask
	fixedCache                         map[[2]*templates.Template][]templates.Field
	shapes                             map[string]string
	keyBuf                             []byte
}

type binding struct {
	addr  string
	owner string
}

// ownedEntry is a map entry, the app that claims it and the claim's backend weight.
type ownedEntry struct {
	MapEntry
	owner  string
	weight int
}

// route is what one service port adds to a shared frontend.
type route struct {
	weight int
	owner  string
	lines  []string
}

// unit is one app, or the apps of one zero-downtime deployment group merged into one.
type unit struct {
	key     string
	base    *discovery.App
	labels  *AppLabels
	members []*discovery.App
	drained map[string]bool
	rule    string
	// backends are the backend names of the unit's ports, when it has more than one.
	backends []string
}

// svc is one service port of a unit that this instance serves.
type svc struct {
	u    *unit
	idx  int
	pl   *PortLabels
	port int
	name string
	id   int
	// lost are the hosts (or "rule:<host>") the port lost to their owners, lostWhy the
	// messages (see ownRoutes).
	lost, lostWhy []string
}

// globals renders HEAD and the shared frontend heads and reserves their ports.
func (b *builder) globals() error {
	var v templates.Values
	v.Set(templates.FieldRunDir, b.cfg.RunDir)
	v.Set(templates.FieldHAProxyDir, b.cfg.RunDir)
	v.Set(templates.FieldMaxConn, strconv.Itoa(b.cfg.MaxConn))
	v.Set(templates.FieldHardStopAfter, haproxyDuration(b.cfg.HardStopAfter))
	v.Set(templates.FieldStatsBind, b.cfg.StatsBind)
	v.Set(templates.FieldHTTPBind, b.cfg.HTTPBind)
	v.Set(templates.FieldHTTPSBind, b.cfg.HTTPSBind)
	v.Set(templates.FieldAppIDBind, b.cfg.AppIDBind)
	certs := make([]string, len(b.cfg.SSLCerts))
	for i, c := range b.cfg.SSLCerts {
		certs[i] = "crt " + c
	}
	v.Set(templates.FieldSSLCerts, strings.Join(certs, " "))

	head, err := b.global(templates.Head, &v)
	if err != nil {
		return err
	}
	b.m.Head = head
	if b.prev != nil && b.prev.Head == head {
		b.m.Head, b.m.HeadInfo = b.prev.Head, b.prev.HeadInfo
	} else if b.m.HeadInfo, err = inspectHead(head); err != nil {
		return err
	}
	b.reserve(b.cfg.StatsBind, "the stats frontend")
	if !b.cfg.DontBindHTTPHTTPS {
		h, err := b.global(templates.HTTPFrontendHead, &v)
		if err != nil {
			return err
		}
		b.m.HTTP = &SharedFrontend{Name: "marathon_http_in", Head: h}
		if h, err = b.global(templates.HTTPSFrontendHead, &v); err != nil {
			return err
		}
		b.m.HTTPS = &SharedFrontend{Name: "marathon_https_in", Head: h}
		b.reserve(b.cfg.HTTPBind, "the shared HTTP frontend")
		b.reserve(b.cfg.HTTPSBind, "the shared HTTPS frontend")
	}
	if !b.cfg.NoAppIDFrontend {
		h, err := b.global(templates.HTTPFrontendAppIDHead, &v)
		if err != nil {
			return err
		}
		b.m.AppID = &SharedFrontend{Name: "marathon_http_appid_in", Head: h}
		b.reserve(b.cfg.AppIDBind, "the X-Marathon-App-Id frontend")
	}
	b.reserveLeaderProxies()
	return nil
}

func (b *builder) global(name string, v *templates.Values) (string, error) {
	t, err := b.set.Get(name)
	if err != nil {
		return "", err
	}
	s, err := t.Execute(v)
	if err != nil {
		return "", err
	}
	return withNewline(s), nil
}

// inspectHead reads the rendered HEAD with config-parser: lodestar runs HAProxy in the
// foreground under its master-worker supervision, so a custom HEAD must not daemonize, and the
// runtime API needs an admin-level stats socket.
func inspectHead(head string) (HeadInfo, error) {
	var info HeadInfo
	// config-parser writes a package variable (DefaultSectionName) while it reads a defaults
	// section: concurrent Builds must not parse at the same time.
	configParserMu.Lock()
	p, err := parser.New(options.String(head))
	configParserMu.Unlock()
	if err != nil {
		return info, fmt.Errorf("template %sHEAD: %w", LabelPrefix, err)
	}
	if _, err := p.Get(parser.Global, parser.GlobalSectionName, "daemon"); err == nil {
		return info, fmt.Errorf("template %sHEAD: remove \"daemon\" from global: lodestar runs HAProxy in master-worker mode in the foreground", LabelPrefix)
	}
	if data, err := p.Get(parser.Global, parser.GlobalSectionName, "stats socket"); err == nil {
		if socks, ok := data.([]types.Socket); ok {
			for _, s := range socks {
				for _, o := range s.Params {
					if o.String() == "level admin" {
						info.StatsSockets = append(info.StatsSockets, s.Path)
					}
				}
			}
		}
	}
	if data, err := p.Get(parser.Global, parser.GlobalSectionName, "server-state-file"); err == nil {
		if s, ok := data.(*types.StringC); ok {
			info.ServerStateFile = s.Value
		}
	}
	return info, nil
}

var configParserMu sync.Mutex

// reserve records the port of one of lodestar's own binds. An app port with the same number
// is refused whatever its bind address: lodestar's binds are usually on every address.
func (b *builder) reserve(bind, what string) {
	if port, ok := bindPort(bind); ok {
		b.reserved[port] = what + " (" + bind + ")"
	}
}

// bindPort returns the port of "addr:port[ options]".
func bindPort(bind string) (int, bool) {
	if i := strings.IndexByte(bind, ' '); i >= 0 {
		bind = bind[:i]
	}
	i := strings.LastIndexByte(bind, ':')
	if i < 0 {
		return 0, false
	}
	port, err := strconv.Atoi(bind[i+1:])
	return port, err == nil
}

func (b *builder) exclude(key string, port int, reason string) {
	b.m.Excluded = append(b.m.Excluded, Exclusion{AppID: key, Port: port, Reason: reason})
}

func (b *builder) warn(key string, port int, msg string) {
	b.m.Warnings = append(b.m.Warnings, Warning{AppID: key, Port: port, Message: msg})
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// haproxyDuration writes d in HAProxy's time format.
func haproxyDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

// validAddr reports whether s is an IP address (what the runtime API's set server addr takes).
func validAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
