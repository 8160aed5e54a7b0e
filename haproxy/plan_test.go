package haproxy

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/templates"
)

func TestRuntimeCmdString(t *testing.T) {
	tests := []struct {
		cmd  RuntimeCmd
		want string
	}{
		{RuntimeCmd{Kind: CmdSetAddr, Backend: "shop_web_10000", Server: "s3", Addr: "10.0.0.5", Port: 31000},
			"set server shop_web_10000/s3 addr 10.0.0.5 port 31000"},
		{RuntimeCmd{Kind: CmdSetAddr, Backend: "b", Server: "s1", Addr: "2001:db8::1", Port: 80},
			"set server b/s1 addr 2001:db8::1 port 80"},
		{RuntimeCmd{Kind: CmdSetState, Backend: "b", Server: "s1", State: StateReady}, "set server b/s1 state ready"},
		{RuntimeCmd{Kind: CmdSetState, Backend: "b", Server: "s1", State: StateDrain}, "set server b/s1 state drain"},
		{RuntimeCmd{Kind: CmdSetState, Backend: "b", Server: "s1", State: StateMaint}, "set server b/s1 state maint"},
		{RuntimeCmd{Kind: CmdSetCheckPort, Backend: "b", Server: "s1", Port: 9001}, "set server b/s1 check-port 9001"},
		{RuntimeCmd{Kind: CmdAddMap, Map: "/run/lodestar/domain2backend.map", Key: "shop.example.com", Value: "shop_web_10000"},
			"add map /run/lodestar/domain2backend.map shop.example.com shop_web_10000"},
		{RuntimeCmd{Kind: CmdDelMap, Map: "/run/lodestar/domain2backend.map", Key: "shop.example.com"},
			"del map /run/lodestar/domain2backend.map shop.example.com"},
	}
	for _, tt := range tests {
		if got := tt.cmd.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func cmdStrings(cmds []RuntimeCmd) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, c.String())
	}
	return out
}

func TestMakePlan(t *testing.T) {
	web := func(opts ...appOpt) *discovery.App {
		base := []appOpt{withPorts(10000), withLabel("HAPROXY_GROUP", "external")}
		return app("/web", append(base, opts...)...)
	}
	vhost := func(h string) appOpt { return withLabel("HAPROXY_0_VHOST", h) }
	two := withTasks(task("a", ports(31000)), task("b", host("10.0.0.2"), ports(31001)))
	nineTasks := func() appOpt {
		var ts []*discovery.Task
		for i := range 9 {
			ts = append(ts, task(string(rune('a'+i)), ports(31000+i)))
		}
		return withTasks(ts...)
	}
	mapCfg := testConfig()
	mapCfg.HAProxyMap = true
	staticCfg := testConfig()
	staticCfg.StaticSlots = true
	hcCfg := testConfig()
	hcCfg.HealthCheck = true
	tests := []struct {
		name          string
		cfg           *Config
		before, after []*discovery.App
		reload        bool
		reason        string
		cmds          []string
	}{
		{name: "nothing changed", before: []*discovery.App{web(two)}, after: []*discovery.App{web(two)}},
		{name: "task added: a server added at runtime",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(withTasks(task("a", ports(31000)), task("b", host("10.0.0.2"), ports(31001)), task("c", host("10.0.0.3"), ports(31002))))},
			reason: "servers of web_10000 changed",
			cmds:   []string{"add server web_10000/s3 10.0.0.3:31002", "set server web_10000/s3 state ready"}},
		{name: "task added: health checks started on the added server", cfg: &hcCfg,
			before: []*discovery.App{web(two, withHealthCheck("HTTP", "/", 0))},
			after: []*discovery.App{web(withHealthCheck("HTTP", "/", 0),
				withTasks(task("a", ports(31000)), task("b", host("10.0.0.2"), ports(31001)), task("c", host("10.0.0.3"), ports(31002))))},
			reason: "servers of web_10000 changed",
			cmds: []string{"add server web_10000/s3 10.0.0.3:31002 check inter 3s fall 3", "enable health web_10000/s3",
				"set server web_10000/s3 state ready"}},
		{name: "task added into a spare slot", cfg: &staticCfg,
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(withTasks(task("a", ports(31000)), task("b", host("10.0.0.2"), ports(31001)), task("c", host("10.0.0.3"), ports(31002))))},
			reason: "servers of web_10000 changed",
			cmds:   []string{"set server web_10000/s3 addr 10.0.0.3 port 31002", "set server web_10000/s3 state ready"}},
		{name: "task gone",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(withTasks(task("b", host("10.0.0.2"), ports(31001))))},
			reason: "servers of web_10000 changed",
			cmds:   []string{"set server web_10000/s1 state maint", "set server web_10000/s1 addr 127.0.0.1 port 1"}},
		{name: "task killing drains",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(withTasks(task("a", ports(31000), taskState(discovery.StateKilling)), task("b", host("10.0.0.2"), ports(31001))))},
			reason: "servers of web_10000 changed",
			cmds:   []string{"set server web_10000/s1 state drain"}},
		{name: "task moved",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(withTasks(task("a", ports(31005)), task("b", host("10.0.0.2"), ports(31001))))},
			reason: "servers of web_10000 changed",
			cmds:   []string{"set server web_10000/s1 addr 10.0.0.1 port 31005"}},
		{name: "check port follows the health check port index",
			before: []*discovery.App{app("/hc", withPorts(10000, 10001), withLabel("HAPROXY_GROUP", "external"), withHealthCheck("HTTP", "/", 1),
				withLabel("HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "1"), withTasks(task("a", ports(31000, 31001))))},
			after: []*discovery.App{app("/hc", withPorts(10000, 10001), withLabel("HAPROXY_GROUP", "external"), withHealthCheck("HTTP", "/", 1),
				withLabel("HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "1"), withTasks(task("a", ports(31000, 31009))))},
			reason: "servers of 2 backends changed",
			cmds: []string{"set server hc_10000/s1 check-port 31009",
				"set server hc_10001/s1 addr 10.0.0.1 port 31009"}},
		{name: "slots grow", cfg: &staticCfg,
			before: []*discovery.App{web(nineTasks())},
			after:  []*discovery.App{web(nineTasks(), withTasks(task("z", ports(32000))))},
			reload: true, reason: "slots of web_10000 grew 10→20",
			cmds: []string{"set server web_10000/s10 addr 10.0.0.1 port 32000", "set server web_10000/s10 state ready"}},
		{name: "backend added",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(two), app("/db", withPorts(15432), withLabel("HAPROXY_GROUP", "external"))},
			reload: true, reason: "backend db_15432 added (and 1 more changes)"},
		{name: "backend removed",
			before: []*discovery.App{web(two), app("/db", withPorts(15432), withLabel("HAPROXY_GROUP", "external"))},
			after:  []*discovery.App{web(two)},
			reload: true, reason: "backend db_15432 removed (and 1 more changes)"},
		{name: "option changed",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(two, withLabel("HAPROXY_0_BALANCE", "leastconn"))},
			reload: true, reason: `backend web_10000 changed: "balance roundrobin" → "balance leastconn"`},
		{name: "bind changed",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(two, withLabel("HAPROXY_0_BIND_OPTIONS", "accept-proxy"))},
			reload: true, reason: `frontend web_10000 changed: "bind *:10000" → "bind *:10000 accept-proxy"`},
		{name: "vhost changed without maps",
			before: []*discovery.App{web(two, vhost("a.example.com"))},
			after:  []*discovery.App{web(two, vhost("b.example.com"))},
			reload: true, reason: "routing rules of frontend marathon_http_in changed (app /web) (and 1 more changes)"},
		{name: "vhost changed with maps", cfg: &mapCfg,
			before: []*discovery.App{web(two, vhost("a.example.com"))},
			after:  []*discovery.App{web(two, vhost("b.example.com"))},
			reason: "map entries changed",
			cmds: []string{"del map /run/lodestar/domain2backend.map a.example.com",
				"add map /run/lodestar/domain2backend.map b.example.com web_10000"}},
		{name: "vhost added with maps", cfg: &mapCfg,
			before: []*discovery.App{web(two, vhost("a.example.com"))},
			after:  []*discovery.App{web(two, vhost("a.example.com,www.example.com"))},
			reason: "map entries changed",
			cmds:   []string{"add map /run/lodestar/domain2backend.map www.example.com web_10000"}},
		{name: "per-app template changed",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(two, withLabel("HAPROXY_0_BACKEND_HEAD", "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  timeout server 5m\n"))},
			reload: true, reason: `backend web_10000 changed: "id 1000" → "timeout server 5m"`},
		{name: "custom server template needs a reload for server changes",
			before: []*discovery.App{web(two, withLabel("HAPROXY_0_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:80{otherOptions}\n"))},
			after: []*discovery.App{web(withTasks(task("a", ports(31000))),
				withLabel("HAPROXY_0_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:80{otherOptions}\n"))},
			reload: true, reason: "servers of web_10000 changed (its server template needs a reload)"},
		{name: "an agent host name cannot be set at runtime",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(withTasks(task("a", host("agent-7.example.com"), ports(31000)), task("b", host("10.0.0.2"), ports(31001))))},
			reload: true, reason: "server web_10000/s1 address agent-7.example.com is a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			reg := newTestRegistry(t)
			old := Build(reg.replace(t, tt.before...), cfg, nil)
			next := Build(reg.replace(t, tt.after...), cfg, old)
			if old.Err != nil || next.Err != nil || len(old.Excluded)+len(next.Excluded) > 0 {
				t.Fatalf("build: %v %v %v %v", old.Err, next.Err, excluded(old), excluded(next))
			}
			p := MakePlan(old, next)
			if p.Reload != tt.reload || p.Reason != tt.reason {
				t.Errorf("reload %v reason %q, want %v %q", p.Reload, p.Reason, tt.reload, tt.reason)
			}
			if tt.cmds != nil || !tt.reload {
				if got := cmdStrings(p.Runtime); !slices.Equal(got, tt.cmds) {
					t.Errorf("commands\n got %q\nwant %q", got, tt.cmds)
				}
			}
			// Applying the runtime commands to the old model's slots gives the new slots.
			if !p.Reload {
				checkRuntimeReachesNew(t, old, next, p)
			}
		})
	}
}

// checkRuntimeReachesNew replays the plan's set server commands on the old slots and compares
// them with the new ones.
func checkRuntimeReachesNew(t *testing.T, old, next *Model, p Plan) {
	t.Helper()
	slots := map[string][]Slot{}
	for _, b := range old.Backends {
		slots[b.Name] = slices.Clone(b.Slots)
	}
	for _, c := range p.Runtime {
		if c.Kind == CmdAddMap || c.Kind == CmdDelMap {
			continue
		}
		ss := slots[c.Backend]
		i := slices.IndexFunc(ss, func(s Slot) bool { return s.Name == c.Server })
		if i < 0 && c.Kind == CmdAddServer {
			// HAProxy adds it in maintenance, with the address of its line.
			host, port, err := net.SplitHostPort(strings.Fields(c.Line)[0])
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			p, _ := strconv.Atoi(port)
			slots[c.Backend] = append(ss, Slot{Name: c.Server, Addr: host, Port: p, State: StateMaint})
			continue
		}
		if i < 0 {
			t.Fatalf("%s: no such server", c)
		}
		switch c.Kind {
		case CmdAddServer:
			t.Fatalf("%s: the server exists", c)
		case CmdSetAddr:
			ss[i].Addr, ss[i].Port = c.Addr, c.Port
		case CmdSetState:
			ss[i].State = c.State
		case CmdSetCheckPort:
			ss[i].CheckPort = c.Port
		}
	}
	for _, b := range next.Backends {
		if len(slots[b.Name]) < len(b.Slots) {
			t.Errorf("%s after the plan: %d servers, want %d", b.Name, len(slots[b.Name]), len(b.Slots))
			continue
		}
		for i, s := range b.Slots {
			o := slots[b.Name][i]
			if o.Addr != s.Addr || o.Port != s.Port || o.State != s.State || o.CheckPort != s.CheckPort {
				t.Errorf("%s/%s after the plan: %+v, want %+v", b.Name, s.Name, o, s)
			}
		}
	}
}

func TestMakePlanEdges(t *testing.T) {
	m := build(t, testConfig(), nil, app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external")))
	if p := MakePlan(nil, m); !p.Reload || p.Reason != "initial configuration" {
		t.Errorf("from nothing: %+v", p)
	}
	if p := MakePlan(m, m); !p.Empty() {
		t.Errorf("same model: %+v", p)
	}
	broken := &Model{Err: templatesErr}
	if p := MakePlan(m, broken); p.Reload || len(p.Runtime) > 0 {
		t.Errorf("to a broken model: %+v", p)
	}
	cfg := testConfig()
	cfg.HAProxyMap = true
	m2 := Build(snapshot(t, app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"))), cfg, m)
	if p := MakePlan(m, m2); !p.Reload || p.Reason != "--haproxy-map changed" {
		t.Errorf("map toggled: %+v", p)
	}
	env := map[string]string{"HAPROXY_HEAD": "global\n  maxconn 100\n"}
	m3 := Build(snapshot(t), Config{Getenv: func(k string) string { return env[k] }}, m)
	if p := MakePlan(m, m3); !p.Reload || p.Reason != `global section (HEAD) changed: "log stdout format raw local0" → "maxconn 100" (and 2 more changes)` {
		t.Errorf("HEAD changed: %+v", p)
	}
}

var templatesErr = func() error {
	_, err := templates.Parse(templates.BackendHead, "{", templates.SourceEnv)
	return err
}()

// TestRuntimePart: while a structural change waits for its reload, what the Runtime API can
// set in the backends HAProxy runs is split off (runtimePart) and applied at once. For every
// case: the split-off part needs no reload and its commands reach its slots; what remains
// needs the reload and holds no command for the slots already moved (remain); running is not
// modified; and rebuilding the new snapshot on the split-off model places every task where the
// reload's model has it, so the reload carries the move instead of reverting it.
func TestRuntimePart(t *testing.T) {
	web := func(opts ...appOpt) *discovery.App {
		return app("/web", append([]appOpt{withPorts(10000), withLabel("HAPROXY_GROUP", "external")}, opts...)...)
	}
	db := func(opts ...appOpt) *discovery.App {
		return app("/db", append([]appOpt{withPorts(15432), withLabel("HAPROXY_GROUP", "external")}, opts...)...)
	}
	two := withTasks(task("a", ports(31000)), task("b", host("10.0.0.2"), ports(31001)))
	moved := withTasks(task("a", ports(31005)), task("b", host("10.0.0.2"), ports(31001)))
	nine := func(extra ...*discovery.Task) appOpt {
		var ts []*discovery.Task
		for i := range 9 {
			ts = append(ts, task(string(rune('a'+i)), ports(31000+i)))
		}
		ts[0] = task("a", ports(31100))
		return withTasks(append(ts, extra...)...)
	}
	fixedPort := withLabel("HAPROXY_0_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:80{otherOptions}\n")
	tests := []struct {
		name          string
		before, after []*discovery.App
		// cmds are the runtime part's commands; remain the reason of what waits for the reload.
		cmds   []string
		remain string
		static bool
	}{
		{name: "a new app and a task move in another",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(moved), db()},
			cmds:   []string{"set server web_10000/s1 addr 10.0.0.1 port 31005"},
			remain: "backend db_15432 added (and 1 more changes)"},
		{name: "a task move in a backend whose options change",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(moved, withLabel("HAPROXY_0_BALANCE", "leastconn"))},
			cmds:   []string{"set server web_10000/s1 addr 10.0.0.1 port 31005"},
			remain: `backend web_10000 changed: "balance roundrobin" → "balance leastconn"`},
		{name: "slots grow: the slots HAProxy has move, the new ones wait", static: true,
			before: []*discovery.App{web(nine())},
			after:  []*discovery.App{web(nine(task("y", ports(32000)), task("z", ports(32001))))},
			cmds:   []string{"set server web_10000/s10 addr 10.0.0.1 port 32000", "set server web_10000/s10 state ready"},
			remain: "slots of web_10000 grew 10→20"},
		{name: "servers added at once while a new app waits",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(withTasks(task("a", ports(31000)), task("b", host("10.0.0.2"), ports(31001)), task("c", host("10.0.0.3"), ports(31002)))), db()},
			cmds:   []string{"add server web_10000/s3 10.0.0.3:31002", "set server web_10000/s3 state ready"},
			remain: "backend db_15432 added (and 1 more changes)"},
		{name: "a removed backend stays until the reload",
			before: []*discovery.App{web(two), db(withTasks(task("d", ports(31500))))},
			after:  []*discovery.App{web(moved)},
			cmds:   []string{"set server web_10000/s1 addr 10.0.0.1 port 31005"},
			remain: "backend db_15432 removed (and 1 more changes)"},
		{name: "nothing to split off from a new app alone",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(two), db()},
			remain: "backend db_15432 added (and 1 more changes)"},
		{name: "a server template the Runtime API cannot follow waits",
			before: []*discovery.App{web(two, fixedPort)},
			after:  []*discovery.App{web(moved, fixedPort), db()},
			remain: "backend db_15432 added (and 2 more changes)"},
		{name: "an agent host name waits, an IP in the same backend moves",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(withTasks(task("a", host("agent-7.example.com"), ports(31000)), task("b", host("10.0.0.3"), ports(31001)))), db()},
			cmds:   []string{"set server web_10000/s2 addr 10.0.0.3 port 31001"},
			remain: "backend db_15432 added (and 2 more changes)"},
		{name: "a server template that changes shape waits",
			before: []*discovery.App{web(two)},
			after:  []*discovery.App{web(moved, withLabel("HAPROXY_0_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:{port} weight 5{otherOptions}\n"))},
			remain: "server options of web_10000 changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.StaticSlots = tt.static
			reg := newTestRegistry(t)
			running := Build(reg.replace(t, tt.before...), cfg, nil)
			snap := reg.replace(t, tt.after...)
			next := Build(snap, cfg, running)
			if running.Err != nil || next.Err != nil || len(running.Excluded)+len(next.Excluded) > 0 {
				t.Fatalf("build: %v %v %v %v", running.Err, next.Err, excluded(running), excluded(next))
			}
			before := render(t, running).Config
			live := runtimePart(running, next)
			if got := render(t, running).Config; !slices.Equal(got, before) {
				t.Fatal("runtimePart modified the running model")
			}
			part := MakePlan(running, live)
			if part.Reload {
				t.Fatalf("the runtime part needs a reload: %s", part.Reason)
			}
			if got := cmdStrings(part.Runtime); !slices.Equal(got, tt.cmds) {
				t.Errorf("runtime part\n got %q\nwant %q", got, tt.cmds)
			}
			if len(tt.cmds) == 0 && live != running {
				t.Error("nothing to split off, but runtimePart made a new model")
			}
			checkRuntimeReachesNew(t, running, live, part)
			render(t, live)
			rest := MakePlan(live, next)
			if !rest.Reload || rest.Reason != tt.remain {
				t.Errorf("what remains: reload %v %q, want a reload for %q", rest.Reload, rest.Reason, tt.remain)
			}
			for _, c := range rest.Runtime {
				for _, done := range tt.cmds {
					if c.String() == done {
						t.Errorf("what remains repeats %q", done)
					}
				}
			}
			again := Build(snap, cfg, live)
			for _, nb := range next.Backends {
				ab := again.Backend(nb.Name)
				if ab == nil || !slices.Equal(ab.Slots, nb.Slots) {
					t.Errorf("built on the runtime part, %s differs from the reload's model", nb.Name)
				}
			}
		})
	}
}
