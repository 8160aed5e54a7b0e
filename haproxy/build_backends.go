package haproxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/templates"
)

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
	o   *out

	// What decide worked out for the port.
	hc        *discovery.HealthCheck
	rule      string
	mode      string
	http      bool
	firstHost string
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
	if r.confined(name) {
		if err := r.confine(name, string(r.buf[n:])); err != nil {
			return err
		}
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

// render renders one service port: its frontend, its backend and userlist, and its routes
// on the shared frontends.
func (b *builder) render(s *svc) (*out, error) {
	b.vals.Reset()
	r := &renderer{b: b, s: s, v: &b.vals, buf: b.scratch[:0], o: &out{}}
	defer func() { b.scratch = r.buf[:0] }()
	if err := r.decide(); err != nil {
		return nil, err
	}
	r.setValues()
	if err := r.frontend(); err != nil {
		return nil, err
	}
	if err := r.backend(); err != nil {
		return nil, err
	}
	if err := r.userlist(); err != nil {
		return nil, err
	}
	if err := b.routes(r); err != nil {
		return nil, err
	}
	return r.o, nil
}

// decide works out the port's Marathon health check, routing rule, mode and first vhost.
func (r *renderer) decide() error {
	u, pl := r.s.u, r.s.pl
	r.hc = healthCheck(u.base, r.s.idx)
	if pl.HealthCheckPortIndexSet {
		// The port's checks go to another port: use that port's Marathon health check.
		if other := healthCheck(u.base, pl.HealthCheckPortIndex); other != nil {
			r.hc = other
		}
	}
	if r.s.idx == 0 {
		r.rule = u.rule
	}
	if r.rule != "" {
		if err := CheckRuleACL("routing rule of "+u.key, r.rule); err != nil {
			return err
		}
	}
	if r.hc != nil {
		if err := checkHealthCheck(u.base.ID, r.hc); err != nil {
			return err
		}
	}
	r.mode = pl.Mode
	if r.mode == "" {
		r.mode = ModeTCP
		if len(pl.VHosts) > 0 || r.rule != "" || r.hc != nil && strings.ToUpper(r.hc.Protocol) == "HTTP" {
			r.mode = ModeHTTP
		}
	}
	r.http = r.mode == ModeHTTP
	if len(pl.VHosts) > 0 {
		r.firstHost = pl.VHosts[0]
	}
	return nil
}

// setValues sets the template fields of the port.
func (r *renderer) setValues() {
	s, pl, v := r.s, r.s.pl, r.v
	acl := ""
	if len(pl.VHosts) > 0 {
		acl = cleanedUp(r.firstHost) + "_" + s.name
	}
	v.Set(templates.FieldBackend, s.name)
	v.Set(templates.FieldAppID, s.u.key)
	v.Set(templates.FieldCleanedUpAppID, cleanedUp(s.u.key))
	v.Set(templates.FieldServicePort, strconv.Itoa(s.port))
	v.Set(templates.FieldMode, r.mode)
	v.Set(templates.FieldBalance, pl.Balance)
	v.Set(templates.FieldBindAddr, pl.BindAddr)
	v.Set(templates.FieldBindOptions, prefixed(" ", pl.BindOptions))
	v.Set(templates.FieldSSLCert, prefixed(" ssl crt ", pl.SSLCert))
	v.Set(templates.FieldHostname, r.firstHost)
	v.Set(templates.FieldHostnames, strings.Join(pl.VHosts, " "))
	v.Set(templates.FieldCleanedUpHostname, acl)
	v.Set(templates.FieldPath, pl.Path)
	v.Set(templates.FieldProxyPath, pl.ProxyPassPath)
	v.Set(templates.FieldRootPath, pl.RevProxyPath)
	v.Set(templates.FieldRedirPath, pl.RedirPath)
	v.Set(templates.FieldHAProxyDir, r.b.cfg.RunDir)
	var realm, user, passwd string
	if pl.Auth != nil {
		realm, user, passwd = pl.Auth.Realm, pl.Auth.User, pl.Auth.Password
	}
	v.Set(templates.FieldRealm, realm)
	v.Set(templates.FieldUser, user)
	v.Set(templates.FieldPasswd, passwd)
	if r.hc != nil {
		setHealthCheck(v, r.hc)
		if p := r.hc.Port; p > 0 {
			v.Set(templates.FieldHealthCheckPort, strconv.Itoa(p))
			v.Set(templates.FieldHealthCheckPortOptions, " port "+strconv.Itoa(p))
		}
	}
}

// setsLogFormat reports whether a rendered frontend head chooses its log format itself.
func setsLogFormat(text []byte) bool {
	for _, l := range strings.Split(string(text), "\n") {
		f := strings.Fields(l)
		if len(f) >= 1 && (f[0] == "log-format" || f[0] == "log-format-sd") ||
			len(f) >= 2 && f[0] == "option" && (f[1] == "httplog" || f[1] == "tcplog" || f[1] == "httpslog") {
			return true
		}
	}
	return false
}

// frontend renders the port's own frontend.
func (r *renderer) frontend() error {
	if err := r.exec(templates.FrontendHead); err != nil {
		return err
	}
	if r.b.cfg.FrontendLogs && !setsLogFormat(r.buf) {
		r.buf = append(r.buf, "  option "...)
		r.buf = append(r.buf, r.mode...)
		r.buf = append(r.buf, "log\n"...)
	}
	if !r.http {
		// The defaults enable idle-close-on-response, which HAProxy warns about on TCP frontends.
		r.buf = append(r.buf, "  no option idle-close-on-response\n"...)
	}
	if err := r.exec(templates.FrontendBackendGlue); err != nil {
		return err
	}
	s := r.s
	r.o.frontend = &Frontend{Name: s.name, Owner: s.u.key, Port: s.port, BindAddr: s.pl.BindAddr, Mode: r.mode, Text: r.take()}
	if pf := r.b.prevFrontend(s.name); pf != nil && *pf == *r.o.frontend {
		r.o.frontend = pf
	}
	return nil
}

// httpOnlyLabels are the port labels that mean something in http mode only. The ones with a
// template add it to the backend, and need a vhost as in marathon-lb; HSTS and sticky
// sessions have a place of their own in the backend.
var httpOnlyLabels = []struct {
	suffix   string
	set      func(*PortLabels) bool
	template string
}{
	{SuffixUseHSTS, func(pl *PortLabels) bool { return pl.UseHSTS }, ""},
	{SuffixProxyPassPath, func(pl *PortLabels) bool { return pl.ProxyPassPath != "" }, templates.HTTPBackendProxypassGlue},
	{SuffixRevProxyPath, func(pl *PortLabels) bool { return pl.RevProxyPath != "" }, templates.HTTPBackendRevproxyGlue},
	{SuffixRedirPath, func(pl *PortLabels) bool { return pl.RedirPath != "" }, templates.HTTPBackendRedir},
	{SuffixSticky, func(pl *PortLabels) bool { return pl.Sticky }, ""},
}

// backend renders the port's backend: its head, then its server slots.
func (r *renderer) backend() error {
	serverHC, serverHCName, err := r.backendHead()
	if err != nil {
		return err
	}
	head := r.take()
	s := r.s
	srvTmpl, err := r.tmpl(templates.BackendServerOptions)
	if err != nil {
		return err
	}
	sr := &serverRender{tmpl: srvTmpl, hc: serverHC, sticky: r.http && s.pl.Sticky,
		perSlotCheckPort: r.hc != nil && s.pl.HealthCheckPortIndexSet}
	sr.keep(r.b.fixedFields(srvTmpl, serverHC), r.v)
	shape, err := r.b.shapeOf(sr)
	if err != nil {
		return err
	}
	be := &Backend{Name: s.name, ID: s.id, Owner: s.u.key, PortIndex: s.idx, ServicePort: s.port, Mode: r.mode, Head: head,
		shape: shape, server: sr, RuntimeServers: runtimeSafe(shape, sr)}
	be.DynamicServers = !r.b.cfg.StaticSlots && be.RuntimeServers && !sr.sticky &&
		dynamicShape(shape) && dynamicBalance(r.b.m.Head, head)
	if !sr.perSlotCheckPort {
		if r.hc != nil {
			sr.checkPort = r.hc.Port
		}
		if serverHC != nil {
			vals := sr.values()
			hc, err := serverHC.Execute(&vals)
			if err != nil {
				return err
			}
			sr.hcOptions = prefixed(" ", strings.TrimSpace(hc))
		}
	}
	if err := r.confineServers(sr, serverHCName); err != nil {
		return err
	}
	var prev *Backend
	if r.b.prev != nil {
		prev = r.b.prev.Backend(s.name)
	}
	be.Slots = r.b.slots(s, sr, prev, be.DynamicServers, &r.o.warnings)
	shareBackendParts(be, prev)
	r.o.backend = be
	return nil
}

// backendHead renders the backend up to its servers into the buffer, and returns the
// template of the servers' health check options and its name (nil and "" without a health
// check).
func (r *renderer) backendHead() (*templates.Template, string, error) {
	s, pl := r.s, r.s.pl
	if err := r.exec(templates.BackendHead); err != nil {
		return nil, "", err
	}
	r.buf = append(r.buf, "  id "...)
	r.buf = strconv.AppendInt(r.buf, int64(s.id), 10)
	r.buf = append(r.buf, '\n')
	if err := r.httpOptions(); err != nil {
		return nil, "", err
	}
	if len(pl.NetworkAllowed) > 0 {
		aclName, allowDeny := templates.TCPBackendNetworkAllowedACL, templates.TCPBackendACLAllowDeny
		if r.http {
			aclName, allowDeny = templates.HTTPBackendNetworkAllowedACL, templates.HTTPBackendACLAllowDeny
		}
		for _, n := range pl.NetworkAllowed {
			r.v.Set(templates.FieldNetworkAllowed, n)
			if err := r.exec(aclName); err != nil {
				return nil, "", err
			}
		}
		r.v.Unset(templates.FieldNetworkAllowed)
		if err := r.exec(allowDeny); err != nil {
			return nil, "", err
		}
	}
	if r.http && pl.Sticky {
		if err := r.exec(templates.BackendStickyOptions); err != nil {
			return nil, "", err
		}
	}
	if r.hc == nil {
		return nil, "", nil
	}
	backendHC, srvHC := templates.BackendHTTPHealthcheckOptions, templates.BackendServerHTTPHealthcheckOptions
	if tcpCheck(r.mode, r.hc) {
		backendHC, srvHC = templates.BackendTCPHealthcheckOptions, templates.BackendServerTCPHealthcheckOptions
	}
	if err := r.exec(backendHC); err != nil {
		return nil, "", err
	}
	t, err := r.tmpl(srvHC)
	return t, srvHC, err
}

// httpOptions renders the backend's http options, or warns about the http-only labels of a
// tcp port.
func (r *renderer) httpOptions() error {
	s, pl := r.s, r.s.pl
	if !r.http {
		for _, l := range httpOnlyLabels {
			if l.set(pl) {
				r.o.warnings = append(r.o.warnings, fmt.Sprintf("label %s needs http mode, ignored", PortLabel(s.idx, l.suffix)))
			}
		}
		return nil
	}
	if pl.UseHSTS {
		if err := r.exec(templates.BackendHSTSOptions); err != nil {
			return err
		}
	}
	if err := r.exec(templates.BackendHTTPOptions); err != nil {
		return err
	}
	for _, l := range httpOnlyLabels {
		if l.template == "" || !l.set(pl) {
			continue
		}
		if r.firstHost == "" {
			r.o.warnings = append(r.o.warnings, fmt.Sprintf("label %s needs %s, ignored", PortLabel(s.idx, l.suffix), PortLabel(s.idx, SuffixVHost)))
			continue
		}
		if err := r.exec(l.template); err != nil {
			return err
		}
	}
	return nil
}

// userlist renders the port's basic-auth users.
func (r *renderer) userlist() error {
	s, pl := r.s, r.s.pl
	if pl.Auth == nil {
		return nil
	}
	if r.firstHost == "" && r.rule == "" {
		r.o.warnings = append(r.o.warnings, fmt.Sprintf("label %s protects the shared HTTP and HTTPS frontends only, and the app has no %s",
			PortLabel(s.idx, SuffixAuth), PortLabel(s.idx, SuffixVHost)))
	}
	if err := r.exec(templates.UserlistHead); err != nil {
		return err
	}
	r.o.userlist = &Userlist{Name: "user_" + s.name, Owner: s.u.key, Text: r.take()}
	return nil
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
// free ones (in task id order). How many slots there are is slotCapacity's decision.
//
// A task whose fields fail CheckTask gets no slot; warnings gets a line naming it.
func (b *builder) slots(s *svc, sr *serverRender, prev *Backend, dynamic bool, warnings *[]string) []Slot {
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
			if err := CheckTask(t); err != nil {
				*warnings = append(*warnings, fmt.Sprintf("task left out: %v", err))
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

	capacity := slotCapacity(len(tasks), b.cfg.SlotStep, prev, dynamic, b.cfg.ShrinkSlots)
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
