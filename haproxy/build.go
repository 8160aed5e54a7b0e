package haproxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
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
		noAppID: cfg.NoAppIDFrontend, healthCheck: cfg.HealthCheck, slotStep: cfg.SlotStep, set: set}
	b := &builder{cfg: cfg, set: set, m: m, prev: prev, reserved: map[int]string{}, bound: map[int][]binding{}}
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
			b.emitUnit(svcs[i:j])
			i = j
		}
	}
	b.emitLeaderProxies(snap)
	b.finish()
	return m
}

// buildEnv is what, besides an app and its ports, decides how the app renders. Per-app
// results of the previous build are reused only under the same environment.
type buildEnv struct {
	runDir                                     string
	haproxyMap, dontBind, noAppID, healthCheck bool
	slotStep                                   int
	set                                        *templates.Set
}

// unitMemo is what one unit rendered to: the next build reuses it as it is when the unit's
// apps, routing rule and ports are the same (see emitUnit).
type unitMemo struct {
	members []*discovery.App
	rule    string
	svcs    []svcKey
	outs    []*out
	errs    []error
	// Most units have one port: their slices live here.
	svcs1 [1]svcKey
	outs1 [1]*out
	errs1 [1]error
}

type svcKey struct {
	idx, port, id int
	name          string
}

// emitUnit renders the ports of one unit, or reuses what the previous build rendered for it.
func (b *builder) emitUnit(group []*svc) {
	u := group[0].u
	memo := &unitMemo{members: u.members, rule: u.rule}
	if len(group) == 1 {
		memo.svcs, memo.outs, memo.errs = memo.svcs1[:], memo.outs1[:], memo.errs1[:]
	} else {
		memo.svcs, memo.outs, memo.errs = make([]svcKey, len(group)), make([]*out, len(group)), make([]error, len(group))
	}
	for k, s := range group {
		memo.svcs[k] = svcKey{idx: s.idx, port: s.port, id: s.id, name: s.name}
	}
	// This is the one place that decides a unit is unchanged, from everything it renders
	// from: its apps (the registry keeps an unchanged app's pointer, so Equal is usually a
	// pointer comparison), its routing rule, its ports (index, service port, backend id and
	// name) and, through b.memo, the build environment.
	if old := b.memo[u.key]; old != nil && old.rule == u.rule && slices.EqualFunc(old.members, u.members, (*discovery.App).Equal) &&
		slices.Equal(old.svcs, memo.svcs) {
		b.m.memo[u.key] = old
		for k, s := range group {
			b.commit(s, old.outs[k], old.errs[k])
		}
		return
	}
	b.m.memo[u.key] = memo
	for k, s := range group {
		o, err := b.render(s)
		memo.outs[k], memo.errs[k] = o, err
		b.commit(s, o, err)
	}
}

// labelsOf parses an app's labels, or reuses the previous build's result for the same app.
func (b *builder) labelsOf(a *discovery.App) *AppLabels {
	al, ok := b.prev.cachedLabels(a)
	if !ok {
		al = ParseLabels(a)
	}
	b.m.labels[a] = al
	return al
}

func (m *Model) cachedLabels(a *discovery.App) (*AppLabels, bool) {
	if m == nil {
		return nil, false
	}
	al, ok := m.labels[a]
	return al, ok
}

type builder struct {
	cfg  Config
	set  *templates.Set
	m    *Model
	prev *Model

	// reserved are the ports of lodestar's own frontends; bound the ports apps bind so far.
	reserved map[int]string
	bound    map[int][]binding
	names    map[string]string
	ids      map[string]int

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
}

// svc is one service port of a unit that this instance serves.
type svc struct {
	u    *unit
	idx  int
	pl   *PortLabels
	port int
	name string
	id   int
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

// units groups the snapshot's apps: zero-downtime deployment groups are merged.
func (b *builder) units(snap *discovery.Snapshot) []*unit {
	var out []*unit
	groups := map[string][]*unit{}
	snap.Apps.Each(func(a *discovery.App) bool {
		if reason, ok := b.cfg.Exclude[a.ID]; ok {
			b.exclude(a.ID, -1, reason)
			return true
		}
		u := &unit{key: a.ID, base: a, labels: b.labelsOf(a), members: []*discovery.App{a}}
		if g := u.labels.Deployment.Group; g != "" && u.labels.Err == nil {
			key := g
			if !strings.HasPrefix(key, "/") {
				key = "/" + key
			}
			groups[key] = append(groups[key], u)
			return true
		}
		out = append(out, u)
		return true
	})
	for key, members := range groups {
		if reason, ok := b.cfg.Exclude[key]; ok {
			b.exclude(key, -1, reason)
			continue
		}
		out = append(out, mergeDeployment(key, members))
	}
	slices.SortFunc(out, func(x, y *unit) int { return strings.Compare(x.key, y.key) })
	for _, u := range out {
		if r, ok := snap.Rules[u.key]; ok {
			u.rule = r.ACL
		} else if r, ok := snap.Rules[u.base.ID]; ok {
			u.rule = r.ACL
		}
	}
	return out
}

// mergeDeployment merges the apps of one deployment group as marathon-lb did: the oldest app
// (by HAPROXY_DEPLOYMENT_STARTED_AT) defines the backend, every member's tasks serve it, and
// for each healthy task of the newest app one old task is drained, never more than the
// target instance count allows.
func mergeDeployment(key string, members []*unit) *unit {
	slices.SortFunc(members, func(x, y *unit) int {
		if c := x.labels.Deployment.StartedAt.Compare(y.labels.Deployment.StartedAt); c != 0 {
			return c
		}
		if c := strings.Compare(x.base.Version, y.base.Version); c != 0 {
			return c
		}
		return strings.Compare(x.base.ID, y.base.ID)
	})
	base := members[0]
	u := &unit{key: key, base: base.base, labels: base.labels}
	for _, m := range members {
		u.members = append(u.members, m.base)
	}
	if len(members) < 2 {
		return u
	}
	newest := members[len(members)-1]
	healthyNew := 0
	for _, t := range newest.base.Tasks {
		if t.Eligible && (len(newest.base.HealthChecks) == 0 || len(t.Health) > 0) {
			healthyNew++
		}
	}
	oldInstances := 0
	var oldTasks []*discovery.Task
	for _, m := range members[:len(members)-1] {
		oldInstances += m.base.Instances
		oldTasks = append(oldTasks, m.base.Tasks...)
	}
	slices.SortFunc(oldTasks, func(x, y *discovery.Task) int { return strings.Compare(x.ID, y.ID) })
	target := newest.labels.Deployment.TargetInstances
	if target < 0 {
		target = 1
	}
	n := min(len(oldTasks), healthyNew, max(0, healthyNew+oldInstances-target))
	if n > 0 {
		u.drained = make(map[string]bool, n)
		for _, t := range oldTasks[:n] {
			u.drained[t.ID] = true
		}
	}
	return u
}

// serves reports whether this instance serves an app port with these groups.
func (b *builder) serves(groups []string) bool {
	for _, g := range b.cfg.Groups {
		if g == "*" || slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

// services selects the ports this instance serves, gives each its service port and backend
// name, and leaves out ports with bad labels or conflicting binds.
func (b *builder) services(units []*unit) []*svc {
	nports := 0
	for _, u := range units {
		nports += len(u.labels.Ports)
	}
	slab := make([]svc, 0, nports)
	out := make([]*svc, 0, nports)
	var auto, served []*svc
	for _, u := range units {
		al := u.labels
		served = served[:0]
		for i := range al.Ports {
			pl := &al.Ports[i]
			groups := al.Groups
			if pl.GroupSet {
				groups = pl.Groups
			}
			if !b.serves(groups) {
				continue
			}
			// A port with malformed labels is reported rather than silently not enabled.
			if pl.Err == nil && (b.cfg.StrictMode && !(pl.EnabledSet && pl.Enabled) || !b.cfg.StrictMode && pl.EnabledSet && !pl.Enabled) {
				continue
			}
			slab = append(slab, svc{u: u, idx: i, pl: pl})
			served = append(served, &slab[len(slab)-1])
		}
		if len(served) == 0 {
			continue
		}
		b.m.Warnings = append(b.m.Warnings, al.Warnings...)
		if al.Err != nil {
			b.exclude(u.key, -1, al.Err.Error())
			continue
		}
		for _, s := range served {
			switch {
			case s.pl.Err != nil:
				b.exclude(u.key, s.idx, s.pl.Err.Error())
				continue
			case !proxiedProtocol(u.base.Ports[s.idx].Protocol):
				b.exclude(u.key, s.idx, fmt.Sprintf("protocol %q: HAProxy proxies TCP only", u.base.Ports[s.idx].Protocol))
				continue
			case s.pl.Port > 0:
				s.port = s.pl.Port
			case u.base.Ports[s.idx].ServicePort > 0:
				s.port = u.base.Ports[s.idx].ServicePort
			case u.base.Network == discovery.NetworkContainer:
				auto = append(auto, s)
			default:
				b.exclude(u.key, s.idx, "no service port (set servicePort or "+PortLabel(s.idx, SuffixPort)+")")
				continue
			}
			out = append(out, s)
		}
	}
	b.assignAutoPorts(out, auto)
	kept := make([]*svc, 0, len(out))
	b.names = make(map[string]string, len(out))
	for _, s := range out {
		if s.port == 0 {
			continue
		}
		if b.bind(s) {
			kept = append(kept, s)
		}
	}
	return kept
}

// proxiedProtocol reports whether HAProxy can serve a port of this Marathon protocol: "tcp"
// (also when left out) or a list that holds it, such as "udp,tcp". HAProxy proxies no UDP, so
// a "udp" port would get a TCP frontend nobody's datagrams reach.
func proxiedProtocol(protocol string) bool {
	if strings.TrimSpace(protocol) == "" {
		return true
	}
	for p := range strings.SplitSeq(protocol, ",") {
		if strings.EqualFold(strings.TrimSpace(p), "tcp") {
			return true
		}
	}
	return false
}

// assignAutoPorts gives IP-per-task ports without a service port one from the configured
// range, as marathon-lb did; a port keeps what it had in prev.
func (b *builder) assignAutoPorts(all, auto []*svc) {
	if len(auto) == 0 {
		return
	}
	lo, hi := b.cfg.MinServPortIPPerTask, b.cfg.MaxServPortIPPerTask
	taken := map[int]bool{}
	for _, s := range all {
		if s.port > 0 {
			taken[s.port] = true
		}
	}
	for p := range b.reserved {
		taken[p] = true
	}
	var fresh []*svc
	for _, s := range auto {
		key := s.u.key + "#" + strconv.Itoa(s.idx)
		if b.prev != nil {
			if p, ok := b.prev.autoPorts[key]; ok && p >= lo && p <= hi && !taken[p] {
				s.port = p
				taken[p] = true
				b.m.autoPorts[key] = p
				continue
			}
		}
		fresh = append(fresh, s)
	}
	next := lo
	for _, s := range fresh {
		for next <= hi && taken[next] {
			next++
		}
		if next > hi {
			b.exclude(s.u.key, s.idx, fmt.Sprintf("no service port: every port of --min-serv-port-ip-per-task..--max-serv-port-ip-per-task (%d-%d) is taken", lo, hi))
			continue
		}
		s.port = next
		taken[next] = true
		b.m.autoPorts[s.u.key+"#"+strconv.Itoa(s.idx)] = next
	}
}

// bind names the service's backend and claims its frontend port; the first app (by id)
// keeps a contested port.
func (b *builder) bind(s *svc) bool {
	if what, ok := b.reserved[s.port]; ok {
		b.exclude(s.u.key, s.idx, fmt.Sprintf("port %d is taken by %s", s.port, what))
		return false
	}
	addr := s.pl.BindAddr
	for _, other := range b.bound[s.port] {
		if wildcard(addr) || wildcard(other.addr) || addr == other.addr {
			b.exclude(s.u.key, s.idx, fmt.Sprintf("port %d is taken by %s", s.port, other.owner))
			return false
		}
	}
	s.name = backendName(s.u.key, s.port)
	if other, ok := b.names[s.name]; ok {
		b.exclude(s.u.key, s.idx, fmt.Sprintf("backend name %s is taken by %s", s.name, other))
		return false
	}
	b.names[s.name] = s.u.key
	b.bound[s.port] = append(b.bound[s.port], binding{addr: addr, owner: s.u.key})
	return true
}

func wildcard(addr string) bool {
	return addr == "*" || addr == "" || addr == "0.0.0.0" || addr == "::"
}

// backendName is marathon-lb's: the app id without its leading "/", "/" → "_", then
// "_<port>"; characters HAProxy does not allow in names become "_".
func backendName(key string, port int) string {
	var sb strings.Builder
	sb.Grow(len(key) + 6)
	for _, c := range []byte(strings.TrimPrefix(key, "/")) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == ':':
			sb.WriteByte(c)
		default:
			sb.WriteByte('_')
		}
	}
	sb.WriteByte('_')
	sb.WriteString(strconv.Itoa(port))
	return sb.String()
}

// cleanedUp is marathon-lb's identifier cleaning: [^a-zA-Z0-9-] → "_".
func cleanedUp(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// assignIDs gives every backend its id from prev, or the next unused one in name order.
func (b *builder) assignIDs(svcs []*svc) {
	next := 999
	if b.prev != nil {
		for _, be := range b.prev.Backends {
			next = max(next, be.ID)
		}
	}
	byName := slices.Clone(svcs)
	slices.SortFunc(byName, func(x, y *svc) int { return strings.Compare(x.name, y.name) })
	for _, s := range byName {
		if b.prev != nil {
			if pb := b.prev.Backend(s.name); pb != nil {
				s.id = pb.ID
				continue
			}
		}
		next++
		s.id = next
	}
}

func (b *builder) exclude(key string, port int, reason string) {
	b.m.Excluded = append(b.m.Excluded, Exclusion{AppID: key, Port: port, Reason: reason})
}

func (b *builder) warn(key string, port int, msg string) {
	b.m.Warnings = append(b.m.Warnings, Warning{AppID: key, Port: port, Message: msg})
}

// out is what one service port adds to the model; it is committed only when every template
// of the port rendered.
type out struct {
	frontend    *Frontend
	backend     *Backend
	userlist    *Userlist
	http, https []string
	appID       []string
	weight      int
	domain      []MapEntry
	app         *MapEntry
	mapHTTP     bool
	mapHTTPOnly bool
	mapHTTPS    bool
	mapAppID    bool
	warnings    []string
}

// commit adds one rendered service port to the model, or excludes it.
func (b *builder) commit(s *svc, o *out, err error) {
	if err != nil {
		b.exclude(s.u.key, s.idx, err.Error())
		return
	}
	for _, w := range o.warnings {
		b.warn(s.u.key, s.idx, w)
	}
	m := b.m
	m.Frontends = append(m.Frontends, o.frontend)
	m.Backends = append(m.Backends, o.backend)
	if o.userlist != nil {
		m.Userlists = append(m.Userlists, o.userlist)
	}
	if len(o.http) > 0 {
		b.httpRoutes = append(b.httpRoutes, route{weight: o.weight, owner: s.u.key, lines: o.http})
	}
	if len(o.https) > 0 {
		b.httpsRoutes = append(b.httpsRoutes, route{weight: o.weight, owner: s.u.key, lines: o.https})
	}
	if len(o.appID) > 0 {
		b.appIDRoutes = append(b.appIDRoutes, route{owner: s.u.key, lines: o.appID})
	}
	for _, e := range o.domain {
		b.domainMap = append(b.domainMap, ownedEntry{MapEntry: e, owner: s.u.key, weight: o.weight})
	}
	if o.app != nil {
		b.appMap = append(b.appMap, ownedEntry{MapEntry: *o.app, owner: s.u.key})
	}
	b.useMapHTTP = b.useMapHTTP || o.mapHTTP
	b.useMapHTTPOnly = b.useMapHTTPOnly || o.mapHTTPOnly
	b.useMapHTTPS = b.useMapHTTPS || o.mapHTTPS
	b.useMapAppID = b.useMapAppID || o.mapAppID
}

// renderer executes the templates of one service port into a scratch buffer.
type renderer struct {
	b   *builder
	s   *svc
	v   *templates.Values
	buf []byte
}

func (r *renderer) tmpl(name string) (*templates.Template, error) {
	if text, ok := r.s.pl.Templates[name]; ok {
		t, err := r.b.set.Override(name, text)
		if err != nil {
			return nil, fmt.Errorf("label %s: %w", PortLabel(r.s.idx, name), err)
		}
		return t, nil
	}
	return r.b.set.Get(name)
}

// exec appends the named template, ending with a newline when it produced anything.
func (r *renderer) exec(name string) error {
	t, err := r.tmpl(name)
	if err != nil {
		return err
	}
	n := len(r.buf)
	r.buf, err = t.Append(r.buf, r.v)
	if err != nil {
		return err
	}
	if len(r.buf) > n && r.buf[len(r.buf)-1] != '\n' {
		r.buf = append(r.buf, '\n')
	}
	return nil
}

// take returns the buffer as a string and empties it.
func (r *renderer) take() string {
	s := string(r.buf)
	r.buf = r.buf[:0]
	return s
}

// lines returns the buffer as non-blank lines and empties it. A repeated acl line (multiple
// vhosts render the same auth acl once per vhost) is kept once.
func (r *renderer) lines() []string {
	text := r.take()
	out := make([]string, 0, strings.Count(text, "\n")+1)
	for text != "" {
		l, rest, _ := strings.Cut(text, "\n")
		text = rest
		if strings.TrimSpace(l) == "" || firstWord(l) == "acl" && slices.Contains(out, l) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// healthCheck returns the Marathon health check of port idx as marathon-lb chose it: the first
// with an explicit port, or the first for that port index. Command checks say nothing about
// the port and are skipped.
func healthCheck(app *discovery.App, idx int) *discovery.HealthCheck {
	for i := range app.HealthChecks {
		hc := &app.HealthChecks[i]
		switch strings.ToUpper(hc.Protocol) {
		case "COMMAND", "MESOS_COMMAND":
			continue
		}
		if hc.Port != 0 || hc.PortIndex == idx {
			return hc
		}
	}
	return nil
}

func tcpCheck(mode string, hc *discovery.HealthCheck) bool {
	p := strings.ToUpper(hc.Protocol)
	return mode == ModeTCP || p == "TCP" || p == "MESOS_TCP"
}

func (b *builder) render(s *svc) (*out, error) {
	u, pl := s.u, s.pl
	o := &out{}
	b.vals.Reset()
	r := &renderer{b: b, s: s, v: &b.vals, buf: b.scratch[:0]}
	defer func() { b.scratch = r.buf[:0] }()
	v := r.v
	hc := healthCheck(u.base, s.idx)
	if pl.HealthCheckPortIndexSet {
		// The port's checks go to another port: use that port's Marathon health check.
		if other := healthCheck(u.base, pl.HealthCheckPortIndex); other != nil {
			hc = other
		}
	}
	rule := ""
	if s.idx == 0 {
		rule = u.rule
	}
	if strings.ContainsAny(rule, "\r\n") {
		return nil, fmt.Errorf("routing rule %q: want a single line", rule)
	}
	mode := pl.Mode
	if mode == "" {
		mode = ModeTCP
		if len(pl.VHosts) > 0 || rule != "" || hc != nil && strings.ToUpper(hc.Protocol) == "HTTP" {
			mode = ModeHTTP
		}
	}
	http := mode == ModeHTTP
	firstHost, acl := "", ""
	if len(pl.VHosts) > 0 {
		firstHost = pl.VHosts[0]
		acl = cleanedUp(firstHost) + "_" + s.name
	}
	v.Set(templates.FieldBackend, s.name)
	v.Set(templates.FieldAppID, u.key)
	v.Set(templates.FieldCleanedUpAppID, cleanedUp(u.key))
	v.Set(templates.FieldServicePort, strconv.Itoa(s.port))
	v.Set(templates.FieldMode, mode)
	v.Set(templates.FieldBalance, pl.Balance)
	v.Set(templates.FieldBindAddr, pl.BindAddr)
	v.Set(templates.FieldBindOptions, prefixed(" ", pl.BindOptions))
	v.Set(templates.FieldSSLCert, prefixed(" ssl crt ", pl.SSLCert))
	v.Set(templates.FieldHostname, firstHost)
	v.Set(templates.FieldHostnames, strings.Join(pl.VHosts, " "))
	v.Set(templates.FieldCleanedUpHostname, acl)
	v.Set(templates.FieldPath, pl.Path)
	v.Set(templates.FieldProxyPath, pl.ProxyPassPath)
	v.Set(templates.FieldRootPath, pl.RevProxyPath)
	v.Set(templates.FieldRedirPath, pl.RedirPath)
	v.Set(templates.FieldHAProxyDir, b.cfg.RunDir)
	var realm, user, passwd string
	if pl.Auth != nil {
		realm, user, passwd = pl.Auth.Realm, pl.Auth.User, pl.Auth.Password
	}
	v.Set(templates.FieldRealm, realm)
	v.Set(templates.FieldUser, user)
	v.Set(templates.FieldPasswd, passwd)
	staticCheckPort := 0
	if hc != nil {
		setHealthCheck(v, hc)
		staticCheckPort = hc.Port
		if staticCheckPort > 0 {
			v.Set(templates.FieldHealthCheckPort, strconv.Itoa(staticCheckPort))
			v.Set(templates.FieldHealthCheckPortOptions, " port "+strconv.Itoa(staticCheckPort))
		}
	}

	// The port's own frontend.
	if err := r.exec(templates.FrontendHead); err != nil {
		return nil, err
	}
	if !http {
		// The defaults enable idle-close-on-response, which HAProxy warns about on TCP frontends.
		r.buf = append(r.buf, "  no option idle-close-on-response\n"...)
	}
	if err := r.exec(templates.FrontendBackendGlue); err != nil {
		return nil, err
	}
	o.frontend = &Frontend{Name: s.name, Owner: u.key, Port: s.port, BindAddr: pl.BindAddr, Mode: mode, Text: r.take()}

	// The backend up to its servers.
	if err := r.exec(templates.BackendHead); err != nil {
		return nil, err
	}
	r.buf = append(r.buf, "  id "...)
	r.buf = strconv.AppendInt(r.buf, int64(s.id), 10)
	r.buf = append(r.buf, '\n')
	needHost := func(label string) bool {
		if firstHost == "" {
			o.warnings = append(o.warnings, fmt.Sprintf("label %s needs %s, ignored", PortLabel(s.idx, label), PortLabel(s.idx, SuffixVHost)))
			return false
		}
		return true
	}
	if http {
		if pl.UseHSTS {
			if err := r.exec(templates.BackendHSTSOptions); err != nil {
				return nil, err
			}
		}
		if err := r.exec(templates.BackendHTTPOptions); err != nil {
			return nil, err
		}
		if pl.ProxyPassPath != "" && needHost(SuffixProxyPassPath) {
			if err := r.exec(templates.HTTPBackendProxypassGlue); err != nil {
				return nil, err
			}
		}
		if pl.RevProxyPath != "" && needHost(SuffixRevProxyPath) {
			if err := r.exec(templates.HTTPBackendRevproxyGlue); err != nil {
				return nil, err
			}
		}
		if pl.RedirPath != "" && needHost(SuffixRedirPath) {
			if err := r.exec(templates.HTTPBackendRedir); err != nil {
				return nil, err
			}
		}
	} else {
		for _, l := range []struct {
			set  bool
			name string
		}{{pl.UseHSTS, SuffixUseHSTS}, {pl.ProxyPassPath != "", SuffixProxyPassPath},
			{pl.RevProxyPath != "", SuffixRevProxyPath}, {pl.RedirPath != "", SuffixRedirPath},
			{pl.Sticky, SuffixSticky}} {
			if l.set {
				o.warnings = append(o.warnings, fmt.Sprintf("label %s needs http mode, ignored", PortLabel(s.idx, l.name)))
			}
		}
	}
	if len(pl.NetworkAllowed) > 0 {
		aclName, allowDeny := templates.TCPBackendNetworkAllowedACL, templates.TCPBackendACLAllowDeny
		if http {
			aclName, allowDeny = templates.HTTPBackendNetworkAllowedACL, templates.HTTPBackendACLAllowDeny
		}
		for _, n := range pl.NetworkAllowed {
			v.Set(templates.FieldNetworkAllowed, n)
			if err := r.exec(aclName); err != nil {
				return nil, err
			}
		}
		v.Unset(templates.FieldNetworkAllowed)
		if err := r.exec(allowDeny); err != nil {
			return nil, err
		}
	}
	sticky := http && pl.Sticky
	if sticky {
		if err := r.exec(templates.BackendStickyOptions); err != nil {
			return nil, err
		}
	}
	var serverHC *templates.Template
	if hc != nil {
		backendHC, srvHC := templates.BackendHTTPHealthcheckOptions, templates.BackendServerHTTPHealthcheckOptions
		if tcpCheck(mode, hc) {
			backendHC, srvHC = templates.BackendTCPHealthcheckOptions, templates.BackendServerTCPHealthcheckOptions
		}
		if err := r.exec(backendHC); err != nil {
			return nil, err
		}
		t, err := r.tmpl(srvHC)
		if err != nil {
			return nil, err
		}
		serverHC = t
	}
	head := r.take()

	srvTmpl, err := r.tmpl(templates.BackendServerOptions)
	if err != nil {
		return nil, err
	}
	sr := &serverRender{tmpl: srvTmpl, hc: serverHC, sticky: sticky,
		perSlotCheckPort: hc != nil && pl.HealthCheckPortIndexSet}
	sr.keep(b.fixedFields(srvTmpl, serverHC), r.v)
	shape, err := b.shapeOf(sr)
	if err != nil {
		return nil, err
	}
	be := &Backend{Name: s.name, ID: s.id, Owner: u.key, PortIndex: s.idx, ServicePort: s.port, Mode: mode, Head: head,
		shape: shape, server: sr, RuntimeServers: runtimeSafe(shape, sr)}
	if !sr.perSlotCheckPort {
		sr.checkPort = staticCheckPort
		if serverHC != nil {
			vals := sr.values()
			hc, err := serverHC.Execute(&vals)
			if err != nil {
				return nil, err
			}
			sr.hcOptions = prefixed(" ", strings.TrimSpace(hc))
		}
	}
	var prevBackend *Backend
	if b.prev != nil {
		prevBackend = b.prev.Backend(s.name)
	}
	be.Slots = b.slots(s, sr, prevBackend)
	o.backend = shareBackend(be, prevBackend)
	if pf := b.prevFrontend(s.name); pf != nil && *pf == *o.frontend {
		o.frontend = pf
	}

	if pl.Auth != nil {
		if firstHost == "" && rule == "" {
			o.warnings = append(o.warnings, fmt.Sprintf("label %s protects the shared HTTP and HTTPS frontends only, and the app has no %s",
				PortLabel(s.idx, SuffixAuth), PortLabel(s.idx, SuffixVHost)))
		}
		if err := r.exec(templates.UserlistHead); err != nil {
			return nil, err
		}
		o.userlist = &Userlist{Name: "user_" + s.name, Owner: u.key, Text: r.take()}
	}
	if err := b.routes(r, o, http, rule); err != nil {
		return nil, err
	}
	return o, nil
}

func setHealthCheck(v *templates.Values, hc *discovery.HealthCheck) {
	orDefault := func(n, d int) string {
		if n <= 0 {
			n = d
		}
		return strconv.Itoa(n)
	}
	// Marathon's defaults, for definitions that leave the fields out.
	maxFail := hc.MaxConsecutiveFailures
	if maxFail <= 0 {
		maxFail = 3
	}
	path := hc.Path
	if path == "" {
		path = "/"
	}
	v.Set(templates.FieldHealthCheckPortIndex, strconv.Itoa(hc.PortIndex))
	v.Set(templates.FieldHealthCheckPort, "")
	v.Set(templates.FieldHealthCheckPortOptions, "")
	v.Set(templates.FieldHealthCheckProtocol, hc.Protocol)
	v.Set(templates.FieldHealthCheckPath, path)
	v.Set(templates.FieldHealthCheckTimeoutSeconds, orDefault(hc.TimeoutSeconds, 20))
	v.Set(templates.FieldHealthCheckIntervalSeconds, orDefault(hc.IntervalSeconds, 60))
	v.Set(templates.FieldHealthCheckGracePeriodSeconds, orDefault(hc.GracePeriodSeconds, 300))
	v.Set(templates.FieldHealthCheckMaxConsecutiveFailures, strconv.Itoa(maxFail))
	v.Set(templates.FieldHealthCheckFalls, strconv.Itoa(maxFail+1))
}

// routes adds the port's lines to the shared frontends and its map entries, choosing
// marathon-lb's templates for single and multiple vhosts, paths, auth and redirects.
func (b *builder) routes(r *renderer, o *out, http bool, rule string) error {
	s, pl := r.s, r.s.pl
	if http && !b.cfg.NoAppIDFrontend {
		if b.appIDDone == nil {
			b.appIDDone = map[string]bool{}
		}
		// Only the app's first HTTP port is reachable by app id, as in marathon-lb.
		if !b.appIDDone[s.u.key] {
			b.appIDDone[s.u.key] = true
			if b.cfg.HAProxyMap {
				o.mapAppID = true
				o.app = &MapEntry{Key: strings.ToLower(s.u.key), Value: s.name}
			} else {
				if err := r.exec(templates.HTTPFrontendAppIDACL); err != nil {
					return err
				}
				o.appID = r.lines()
			}
		}
	}
	if b.cfg.DontBindHTTPHTTPS || len(pl.VHosts) == 0 && rule == "" {
		for _, l := range []struct {
			set    bool
			suffix string
		}{{pl.Path != "", SuffixPath}, {pl.RedirectToHTTPS, SuffixRedirectToHTTPS}} {
			if l.set && !b.cfg.DontBindHTTPHTTPS {
				o.warnings = append(o.warnings, fmt.Sprintf("label %s needs %s, ignored", PortLabel(s.idx, l.suffix), PortLabel(s.idx, SuffixVHost)))
			}
		}
		return nil
	}
	if !http {
		o.warnings = append(o.warnings, fmt.Sprintf("%s is in tcp mode: not routed on the shared HTTP and HTTPS frontends",
			PortLabel(s.idx, SuffixVHost)))
		return nil
	}
	o.weight = pl.BackendWeight
	if o.weight == 0 && pl.Path != "" {
		o.weight = 1
	}
	if rule != "" {
		// A bamboo-style rule replaces the vhost ACLs, in bamboo's form.
		lines := []string{"  acl rule_" + s.name + " " + rule, "  use_backend " + s.name + " if rule_" + s.name}
		o.http, o.https = lines, lines
		return nil
	}
	http1, https1 := b.scratchHTTP[:0], b.scratchHTTPS[:0]
	defer func() { b.scratchHTTP, b.scratchHTTPS = http1[:0], https1[:0] }()
	// The HTTP and HTTPS lines are built in two buffers; exec appends to r.buf.
	to := func(dst *[]byte, names ...string) error {
		r.buf, *dst = *dst, r.buf
		defer func() { r.buf, *dst = *dst, r.buf }()
		for _, n := range names {
			if err := r.exec(n); err != nil {
				return err
			}
		}
		return nil
	}
	domain := func(h string) {
		for _, e := range o.domain {
			if e.Key == h {
				return
			}
		}
		o.domain = append(o.domain, MapEntry{Key: h, Value: s.name})
	}
	useMap := b.cfg.HAProxyMap
	path, auth, redirect := pl.Path != "", pl.Auth != nil, pl.RedirectToHTTPS
	v := r.v
	var err error
	if len(pl.VHosts) == 1 {
		h := pl.VHosts[0]
		switch {
		case path && redirect:
			err = to(&http1, templates.HTTPFrontendACLOnly, templates.HTTPFrontendACLOnlyWithPath, templates.BackendRedirectHTTPToHTTPSWithPath)
		case path && auth:
			err = to(&http1, templates.HTTPFrontendACLWithAuthAndPath)
		case path:
			err = to(&http1, templates.HTTPFrontendACLWithPath)
		case redirect:
			err = to(&http1, templates.HTTPFrontendACLOnly, templates.BackendRedirectHTTPToHTTPS)
		case auth:
			err = to(&http1, templates.HTTPFrontendACLWithAuth)
		case useMap:
			o.mapHTTP = true
			domain(h)
		default:
			err = to(&http1, templates.HTTPFrontendACL)
		}
		if err != nil {
			return err
		}
		switch {
		case path && auth:
			err = to(&https1, templates.HTTPSFrontendACLOnlyWithPath, templates.HTTPSFrontendACLWithAuthAndPath)
		case path:
			err = to(&https1, templates.HTTPSFrontendACLOnlyWithPath, templates.HTTPSFrontendACLWithPath)
		case auth:
			err = to(&https1, templates.HTTPSFrontendACLWithAuth)
		case useMap:
			o.mapHTTPS = true
			domain(h)
		default:
			err = to(&https1, templates.HTTPSFrontendACL)
		}
		if err != nil {
			return err
		}
	} else {
		if path {
			only := templates.HTTPFrontendACLOnlyWithPath
			if auth {
				only = templates.HTTPFrontendACLOnlyWithPathAndAuth
			}
			if err := to(&http1, only); err != nil {
				return err
			}
			if err := to(&https1, templates.HTTPSFrontendACLOnlyWithPath); err != nil {
				return err
			}
		}
		for _, h := range pl.VHosts {
			v.Set(templates.FieldHostname, h)
			if useMap && !path && !auth && !redirect {
				o.mapHTTPOnly = true
				domain(h)
			} else if err := to(&http1, templates.HTTPFrontendACLOnly); err != nil {
				return err
			}
			switch {
			case path && auth:
				err = to(&https1, templates.HTTPSFrontendACLWithAuthAndPath)
			case path:
				err = to(&https1, templates.HTTPSFrontendACLWithPath)
			case auth:
				err = to(&https1, templates.HTTPSFrontendACLWithAuth)
			case useMap:
				o.mapHTTPS = true
				domain(h)
			default:
				err = to(&https1, templates.HTTPSFrontendACL)
			}
			if err != nil {
				return err
			}
		}
		v.Set(templates.FieldHostname, pl.VHosts[0])
		switch {
		case redirect && path:
			err = to(&http1, templates.BackendRedirectHTTPToHTTPSWithPath)
		case redirect:
			err = to(&http1, templates.BackendRedirectHTTPToHTTPS)
		case path && auth:
			err = to(&http1, templates.HTTPFrontendRoutingOnlyWithPathAuth)
		case path:
			err = to(&http1, templates.HTTPFrontendRoutingOnlyWithPath)
		case auth:
			err = to(&http1, templates.HTTPFrontendRoutingOnlyWithAuth)
		case !useMap:
			err = to(&http1, templates.HTTPFrontendRoutingOnly)
		}
		if err != nil {
			return err
		}
	}
	scratch := r.buf
	r.buf = http1
	o.http = r.lines()
	r.buf = https1
	o.https = r.lines()
	r.buf = scratch
	return nil
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

// slotTask is a task that gets a slot.
type slotTask struct {
	id, host, addr string
	port           int
	checkPort      int
	state          ServerState
	// placed is set once the task has its slot from the previous build.
	placed bool
}

// slots places the service's tasks: each keeps its slot from prev, new tasks take the lowest
// free ones (in task id order); capacity grows in SlotStep steps to keep at least one spare,
// and shrinks only once no more than half of it would be needed and the smaller capacity
// leaves at least half a step free. Without that margin an app of 10 instances (step 10)
// shrank to 10 slots when a task died and grew back to 20 when Marathon replaced it: two
// reloads for every replacement.
func (b *builder) slots(s *svc, sr *serverRender, prev *Backend) []Slot {
	n := 0
	for _, app := range s.u.members {
		n += len(app.Tasks)
	}
	tasks := b.taskBuf[:0]
	defer func() { b.taskBuf = tasks[:0] }()
	for _, app := range s.u.members {
		for _, t := range app.Tasks {
			state, ok := b.taskState(t, s.u.drained[t.ID])
			if !ok || s.idx >= len(t.Endpoints) {
				continue
			}
			ep := t.Endpoints[s.idx]
			st := slotTask{id: t.ID, host: t.Host, addr: ep.Host, port: ep.Port, state: state, checkPort: sr.checkPort}
			if sr.perSlotCheckPort {
				st.checkPort = 0
				if i := s.pl.HealthCheckPortIndex; i < len(t.Endpoints) {
					st.checkPort = t.Endpoints[i].Port
				}
			}
			tasks = append(tasks, st)
		}
	}
	slices.SortFunc(tasks, func(x, y slotTask) int { return strings.Compare(x.id, y.id) })

	step := b.cfg.SlotStep
	need := (len(tasks)/step + 1) * step
	capacity := need
	if prev != nil {
		capacity = len(prev.Slots)
		if need > capacity || need*2 <= capacity && need-len(tasks) >= (step+1)/2 {
			capacity = need
		}
	}
	slots := make([]Slot, capacity)
	for i := range slots {
		slots[i] = Slot{Name: slotName(i), Addr: spareAddr, Port: sparePort, State: StateMaint}
		if !sr.perSlotCheckPort {
			slots[i].CheckPort = sr.checkPort
		}
	}
	// Where a task was: a scan for the usual handful of slots, a map for big backends.
	var prevIndex map[string]int
	prevSlot := func(id string) (int, bool) {
		if prevIndex != nil {
			i, ok := prevIndex[id]
			return i, ok
		}
		if prev != nil {
			for i := range prev.Slots {
				if prev.Slots[i].TaskID == id {
					return i, true
				}
			}
		}
		return 0, false
	}
	if prev != nil && len(prev.Slots) > 64 {
		prevIndex = make(map[string]int, len(prev.Slots))
		for i, ps := range prev.Slots {
			if ps.TaskID != "" {
				prevIndex[ps.TaskID] = i
			}
		}
	}
	fill := func(i int, t slotTask) {
		slots[i] = Slot{Name: slots[i].Name, TaskID: t.id, Host: t.host, Addr: t.addr, Port: t.port, CheckPort: t.checkPort, State: t.state}
	}
	for k := range tasks {
		t := &tasks[k]
		if i, ok := prevSlot(t.id); ok && i < capacity && slots[i].TaskID == "" {
			fill(i, *t)
			t.placed = true
		}
	}
	free := 0
	for _, t := range tasks {
		if t.placed {
			continue
		}
		for slots[free].TaskID != "" {
			free++
		}
		fill(free, t)
	}
	if prev != nil && slices.Equal(slots, prev.Slots) {
		return prev.Slots
	}
	return slots
}

// taskState says whether a task gets a slot, and in which state.
func (b *builder) taskState(t *discovery.Task, drained bool) (ServerState, bool) {
	switch {
	case t.Draining:
		return StateDrain, len(t.Endpoints) > 0
	case t.Eligible:
	case !b.cfg.HealthCheck && t.State == discovery.StateRunning && len(t.Endpoints) > 0 && (t.Ready == nil || *t.Ready):
		// Without --health-check, Marathon's failing results do not take a task out.
	default:
		return 0, false
	}
	if drained {
		return StateDrain, true
	}
	return StateReady, true
}

var slotNames = func() []string {
	names := make([]string, 256)
	for i := range names {
		names[i] = "s" + strconv.Itoa(i+1)
	}
	return names
}()

func slotName(i int) string {
	if i < len(slotNames) {
		return slotNames[i]
	}
	return "s" + strconv.Itoa(i+1)
}

// shareBackend points be's parts that equal prev's at prev's memory: Plan compares heads,
// shapes and slots, which is fastest on the same memory. It never hands back prev itself: a
// backend that is rendered again is the new one in every field, so no field can be left out
// of a comparison and keep a stale value (a swapped port order kept the old PortIndex that
// way). Whether an app is unchanged as a whole is decided once, from its inputs, in emitUnit.
func shareBackend(be, prev *Backend) *Backend {
	if prev == nil {
		return be
	}
	if be.Head == prev.Head {
		be.Head = prev.Head
	}
	if be.shape == prev.shape {
		be.shape = prev.shape
	}
	return be
}

// sameSlices reports whether two slices share their backing array and length.
func sameSlices[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (b *builder) prevFrontend(name string) *Frontend {
	if b.prev == nil {
		return nil
	}
	return b.prev.Frontend(name)
}

// finish sorts the model and assembles the shared frontends and maps.
func (b *builder) finish() {
	m := b.m
	slices.SortFunc(m.Frontends, func(x, y *Frontend) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(m.Backends, func(x, y *Backend) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(m.Userlists, func(x, y *Userlist) int { return strings.Compare(x.Name, y.Name) })
	slices.SortStableFunc(m.Excluded, func(x, y Exclusion) int {
		if c := strings.Compare(x.AppID, y.AppID); c != 0 {
			return c
		}
		return x.Port - y.Port
	})
	slices.SortStableFunc(m.Warnings, func(x, y Warning) int {
		if c := strings.Compare(x.AppID, y.AppID); c != 0 {
			return c
		}
		return x.Port - y.Port
	})

	m.DomainMap = b.mapEntries(b.domainMap, "vhost")
	m.AppMap = b.mapEntries(b.appMap, "app id")
	var mapLines func(names ...string) []Rule
	mapLines = func(names ...string) []Rule {
		var v templates.Values
		v.Set(templates.FieldHAProxyDir, b.cfg.RunDir)
		var rules []Rule
		for _, n := range names {
			text, err := b.global(n, &v)
			if err != nil {
				m.Err = err
				return nil
			}
			for _, l := range strings.Split(text, "\n") {
				if strings.TrimSpace(l) != "" && !slices.ContainsFunc(rules, func(r Rule) bool { return r.Text == l }) {
					rules = append(rules, Rule{Text: l})
				}
			}
		}
		return rules
	}
	b.httpRoutes = b.dropACLClashes(b.httpRoutes, m.HTTP)
	b.httpsRoutes = b.dropACLClashes(b.httpsRoutes, m.HTTPS)
	b.appIDRoutes = b.dropACLClashes(b.appIDRoutes, m.AppID)
	if m.HTTP != nil {
		var names []string
		if b.useMapHTTP {
			names = append(names, templates.MapHTTPFrontendACL)
		}
		if b.useMapHTTPOnly {
			names = append(names, templates.MapHTTPFrontendACLOnly)
		}
		m.HTTP.Rules = assemble(b.httpRoutes, mapLines(names...))
		names = nil
		if b.useMapHTTPS {
			names = append(names, templates.MapHTTPSFrontendACL)
		}
		m.HTTPS.Rules = assemble(b.httpsRoutes, mapLines(names...))
	}
	if m.AppID != nil {
		var names []string
		if b.useMapAppID {
			names = append(names, templates.MapHTTPFrontendAppIDACL)
		}
		m.AppID.Rules = assemble(b.appIDRoutes, mapLines(names...))
	}
	if b.prev != nil {
		m.HTTP = shareFrontend(m.HTTP, b.prev.HTTP)
		m.HTTPS = shareFrontend(m.HTTPS, b.prev.HTTPS)
		m.AppID = shareFrontend(m.AppID, b.prev.AppID)
	}
}

// dropACLClashes leaves out the routes that declare an acl another app declared first with a
// different definition on the same frontend: HAProxy ORs every acl line of one name, so the
// two apps would share each other's traffic. Names are made from cleaned-up app ids and host
// names ("/a/b" and "/a.b" both clean up to "_a_b"), or written by custom templates. Routes
// are in app order, so the first app by id keeps its route.
func (b *builder) dropACLClashes(routes []route, fe *SharedFrontend) []route {
	if fe == nil || len(routes) < 2 {
		return routes
	}
	type decl struct {
		owner string
		defs  []string
	}
	seen := map[string]*decl{}
	out := routes[:0]
	for _, r := range routes {
		clash := ""
		for _, l := range r.lines {
			name, def, ok := aclLine(l)
			if !ok {
				continue
			}
			if d := seen[name]; d != nil && d.owner != r.owner && !slices.Contains(d.defs, def) {
				clash = fmt.Sprintf("routes on frontend %s left out: acl %s is declared by app %s already (%q); rename the app or its %s",
					fe.Name, name, d.owner, d.defs[0], "host, or change the template that names the acl")
				break
			}
		}
		if clash != "" {
			b.warn(r.owner, -1, clash)
			continue
		}
		for _, l := range r.lines {
			if name, def, ok := aclLine(l); ok {
				d := seen[name]
				if d == nil {
					d = &decl{owner: r.owner}
					seen[name] = d
				}
				if d.owner == r.owner && !slices.Contains(d.defs, def) {
					d.defs = append(d.defs, def)
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// aclLine splits "acl <name> <criterion...>" into the name and the rest.
func aclLine(l string) (name, def string, ok bool) {
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != "acl" {
		return "", "", false
	}
	return f[1], strings.Join(f[2:], " "), true
}

// mapEntries sorts entries by key and keeps the first backend of a key that several claim,
// in frontend order (weight, then app id).
func (b *builder) mapEntries(entries []ownedEntry, what string) []MapEntry {
	if len(entries) == 0 {
		return nil
	}
	slices.SortStableFunc(entries, func(x, y ownedEntry) int { return y.weight - x.weight })
	seen := make(map[string]string, len(entries))
	out := make([]MapEntry, 0, len(entries))
	for _, e := range entries {
		if first, ok := seen[e.Key]; ok {
			if first != e.Value {
				b.warn(e.owner, -1, fmt.Sprintf("%s %s is routed to %s already; not routed to %s", what, e.Key, first, e.Value))
			}
			continue
		}
		seen[e.Key] = e.Value
		out = append(out, e.MapEntry)
	}
	slices.SortFunc(out, func(x, y MapEntry) int { return strings.Compare(x.Key, y.Key) })
	return out
}

// assemble orders a shared frontend's lines: routes by weight (highest first, then app order),
// and within that every acl line first, then http-request and redirect rules, then
// use_backend and the rest. HAProxy evaluates rules by kind anyway; grouping them keeps its
// "rule placed after a use_backend rule" warnings away.
func assemble(routes []route, mapRules []Rule) []Rule {
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].weight > routes[j].weight })
	bucket := func(l string) int {
		switch firstWord(l) {
		case "acl":
			return 0
		case "use_backend", "default_backend":
			return 2
		}
		return 1
	}
	var start [4]int
	for _, r := range routes {
		for _, l := range r.lines {
			start[bucket(l)+1]++
		}
	}
	n := start[1] + start[2] + start[3] + len(mapRules)
	if n == 0 {
		return nil
	}
	start[2] += start[1]
	start[3] += start[2]
	out := make([]Rule, n)
	for _, r := range routes {
		for _, l := range r.lines {
			k := bucket(l)
			out[start[k]] = Rule{Owner: r.owner, Text: l}
			start[k]++
		}
	}
	copy(out[start[2]:], mapRules)
	return out
}

func firstWord(l string) string {
	i := 0
	for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
		i++
	}
	j := i
	for j < len(l) && l[j] != ' ' && l[j] != '\t' {
		j++
	}
	return l[i:j]
}

func shareFrontend(f, prev *SharedFrontend) *SharedFrontend {
	if f == nil || prev == nil {
		return f
	}
	if f.Name == prev.Name && f.Head == prev.Head && slices.Equal(f.Rules, prev.Rules) {
		return prev
	}
	return f
}

// validAddr reports whether s is an IP address (what the runtime API's set server addr takes).
func validAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
