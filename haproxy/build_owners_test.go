package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// Ownership tests: a hostile app beside an honest one. The honest app keeps what it owns, the
// hostile one loses only the contested route and is named with the owner, and the honest app's
// rendered lines are byte-identical to a render without the hostile app.

var (
	older   = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	younger = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
)

func changedAt(t time.Time) appOpt { return func(a *discovery.App) { a.ConfigChangedAt = t } }

// portApp is an external app on service port port, with one task.
func portApp(id string, port int, opts ...appOpt) *discovery.App {
	base := []appOpt{withPorts(port), withLabel("HAPROXY_GROUP", "external"),
		withTasks(task(strings.ReplaceAll(id[1:], "/", "-")+".1", ports(31000)))}
	return app(id, append(base, opts...)...)
}

// linesOf returns the rendered lines owned by owner, in order.
func linesOf(t testing.TB, m *Model, owner string) []byte {
	t.Helper()
	r := render(t, m)
	var out bytes.Buffer
	for i, l := range strings.SplitAfter(string(r.Config), "\n") {
		if r.OwnerOf(i+1) == owner {
			out.WriteString(l)
		}
	}
	return out.Bytes()
}

// checkUntouched requires owner's rendered lines (and map entries) to be the same in got as
// in a build of alone (the same apps without the hostile one).
func checkUntouched(t *testing.T, got, alone *Model, owner string) {
	t.Helper()
	g, a := linesOf(t, got, owner), linesOf(t, alone, owner)
	if len(a) == 0 {
		t.Fatalf("%s renders nothing on its own", owner)
	}
	if !bytes.Equal(g, a) {
		t.Errorf("%s's lines differ from a render without the hostile app:\n%s", owner, lineDiff(string(a), string(g)))
	}
	mine := func(m *Model) []MapEntry {
		var out []MapEntry
		for _, e := range slices.Concat(m.DomainMap, m.AppMap) {
			if be := m.Backend(e.Value); be != nil && be.Owner == owner {
				out = append(out, e)
			}
		}
		return out
	}
	if !slices.Equal(mine(got), mine(alone)) {
		t.Errorf("%s's domain map entries %v, alone %v", owner, mine(got), mine(alone))
	}
}

// idsOnly is a running model that holds nothing but backend ids: ownership decides as on a
// cold start, while backends keep their ids (a cold build numbers them in name order, so an
// app sorting first would renumber the others).
func idsOnly(m *Model) *Model {
	h := &Model{}
	for _, be := range m.Backends {
		h.Backends = append(h.Backends, &Backend{Name: be.Name, ID: be.ID})
	}
	return h
}

func warningsOf(m *Model) []string {
	var out []string
	for _, w := range m.Warnings {
		out = append(out, fmt.Sprintf("%s#%d: %s", w.AppID, w.Port, w.Message))
	}
	return out
}

// TestOwnershipColdStartPort: with no running model, a contested service port (or bind
// address and port) goes to the oldest configuration, whatever the app ids; an unknown time
// is the youngest; a tie goes to the first app id. The loser is left out with the owner named.
func TestOwnershipColdStartPort(t *testing.T) {
	cases := []struct {
		name           string
		victim, hostle *discovery.App
		want           string // the hostile app's exclusion
	}{{
		name:   "older wins regardless of id",
		victim: portApp("/z/victim", 27100, changedAt(older)),
		hostle: portApp("/a/evil", 27001, changedAt(younger), withLabel("HAPROXY_0_PORT", "27100")),
		want:   "/a/evil#0: port 27100 is taken by /z/victim (its configuration is older (last changed 2020-01-01T00:00:00Z))",
	}, {
		name:   "unknown time loses to a known one",
		victim: portApp("/z/victim", 27100, changedAt(younger)),
		hostle: portApp("/a/evil", 27100),
		want:   "/a/evil#0: port 27100 is taken by /z/victim (its configuration is older (last changed 2024-06-01T00:00:00Z))",
	}, {
		name:   "a tie goes to the first app id",
		victim: portApp("/a/victim", 27100, changedAt(older)),
		hostle: portApp("/b/evil", 27100, changedAt(older)),
		want:   "/b/evil#0: port 27100 is taken by /a/victim (neither is older: the first app id keeps it)",
	}, {
		name:   "both unknown: the first app id",
		victim: portApp("/a/victim", 27100),
		hostle: portApp("/b/evil", 27100),
		want:   "/b/evil#0: port 27100 is taken by /a/victim (neither is older: the first app id keeps it)",
	}, {
		name:   "a bind address on the owner's wildcard port",
		victim: portApp("/z/victim", 27100, changedAt(older)),
		hostle: portApp("/a/evil", 27100, changedAt(younger), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1")),
		want:   "/a/evil#0: port 27100 is taken by /z/victim (its configuration is older (last changed 2020-01-01T00:00:00Z))",
	}, {
		name:   "the owner's bind address and port",
		victim: portApp("/z/victim", 27100, changedAt(older), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.2")),
		hostle: portApp("/a/evil", 27100, changedAt(younger), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.2")),
		want:   "/a/evil#0: port 27100 is taken by /z/victim (its configuration is older (last changed 2020-01-01T00:00:00Z))",
	}, {
		name:   "a wildcard over the owner's bind address",
		victim: portApp("/z/victim", 27100, changedAt(older), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.2")),
		hostle: portApp("/a/evil", 27100, changedAt(younger)),
		want:   "/a/evil#0: port 27100 is taken by /z/victim (its configuration is older (last changed 2020-01-01T00:00:00Z))",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			victimBackend := backendName(c.victim.ID, 27100)
			alone := build(t, testConfig(), nil, c.victim)
			m := build(t, testConfig(), idsOnly(alone), c.hostle, c.victim)
			if m.Backend(victimBackend) == nil {
				t.Fatalf("the victim lost its port: backends %v, excluded %v", backendNames(m), excluded(m))
			}
			if got := excluded(m); !slices.Equal(got, []string{c.want}) {
				t.Errorf("excluded\n got %q\nwant %q", got, c.want)
			}
			checkUntouched(t, m, alone, c.victim.ID)
		})
	}
	// Honest neighbours: different addresses on one port share it.
	m := build(t, testConfig(), nil,
		portApp("/a", 27100, withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.2")),
		portApp("/b", 27100, withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.3")))
	if len(m.Excluded) != 0 || len(m.Backends) != 2 {
		t.Errorf("two binds on different addresses: backends %v, excluded %v", backendNames(m), excluded(m))
	}
}

// TestOwnershipRunningModel: the app that holds a port or a vhost in the running model keeps
// it when an app with an older configuration asks for it (redeploying an old app takes
// nothing over), and keeps it build after build (no flapping); a build from scratch of the
// same apps follows the cold-start rule instead.
func TestOwnershipRunningModel(t *testing.T) {
	holder := portApp("/z/holder", 27100, changedAt(younger), withLabel("HAPROXY_0_VHOST", "held.example.test"))
	for _, mapMode := range []bool{false, true} {
		t.Run(fmt.Sprintf("map=%v", mapMode), func(t *testing.T) {
			cfg := testConfig()
			cfg.HAProxyMap = mapMode
			old := portApp("/a/old", 27200, changedAt(older), withLabel("HAPROXY_0_PORT", "27100"),
				withLabel("HAPROXY_0_VHOST", "held.example.test,own.example.test"))
			reg := newTestRegistry(t)
			alone := Build(reg.replace(t, holder), cfg, nil)
			m := alone
			for i := range 3 {
				m = Build(reg.replace(t, holder, old), cfg, m)
				if m.Backend("z_holder_27100") == nil {
					t.Fatalf("build %d: the holder lost its port: backends %v", i, backendNames(m))
				}
				want := []string{"/a/old#0: port 27100 is taken by /z/holder (it holds it in the running configuration)"}
				if got := excluded(m); !slices.Equal(got, want) {
					t.Errorf("build %d: excluded\n got %q\nwant %q", i, got, want)
				}
				checkUntouched(t, m, alone, "/z/holder")
			}
			// The old app gets a port of its own: its vhost is still the holder's.
			old2 := portApp("/a/old", 27200, changedAt(older), withLabel("HAPROXY_0_VHOST", "held.example.test,own.example.test"))
			m = Build(reg.replace(t, holder, old2), cfg, m)
			want := []string{"/a/old#0: vhost held.example.test is taken by /z/holder (it holds it in the running configuration); not routed to this app"}
			if got := warningsOf(m); !slices.Equal(got, want) {
				t.Errorf("warnings\n got %q\nwant %q", got, want)
			}
			if m.Backend("a_old_27200") == nil || !routesHost(m, "own.example.test", "a_old_27200") {
				t.Errorf("the old app lost more than the contested vhost: backends %v", backendNames(m))
			}
			checkUntouched(t, m, alone, "/z/holder")
			// From scratch, the older configuration wins.
			cold := Build(reg.replace(t, holder, old), cfg, nil)
			if cold.Backend("a_old_27100") == nil || cold.Backend("z_holder_27100") != nil {
				t.Errorf("cold start: backends %v, want the older app on 27100", backendNames(cold))
			}
		})
	}
}

// routesHost reports whether a shared frontend or the domain map routes host to backend.
func routesHost(m *Model, host, backend string) bool {
	for _, e := range m.DomainMap {
		if e.Key == host && e.Value == backend {
			return true
		}
	}
	for _, r := range m.HTTP.Rules {
		if strings.Contains(r.Text, host) && strings.Contains(r.Text, backend) {
			return true
		}
	}
	return false
}

// TestOwnershipVHostWeight: a higher HAPROXY_{n}_BACKEND_WEIGHT does not put a contender's
// identical vhost+path ahead of the owner's: the contender's route for that vhost is dropped
// (its other vhosts stay) and it is warned, naming the owner. A different path on the same
// host is a different route, ordered by weight as before.
func TestOwnershipVHostWeight(t *testing.T) {
	victim := portApp("/victim/web", 27100, changedAt(older), withLabel("HAPROXY_0_VHOST", "victim.example.test"))
	victimPath := portApp("/victim/web", 27100, changedAt(older), withLabel("HAPROXY_0_VHOST", "victim.example.test"),
		withLabel("HAPROXY_0_PATH", "/api"))
	cases := []struct {
		name         string
		victim, evil *discovery.App
		warn         string
		evilKeeps    string // a host the contender still routes, "" for none
	}{{
		name:   "same vhost, higher weight",
		victim: victim,
		evil: portApp("/a/evil", 27001, withLabel("HAPROXY_0_VHOST", "victim.example.test"),
			withLabel("HAPROXY_0_BACKEND_WEIGHT", "100")),
		warn: "/a/evil#0: vhost victim.example.test is taken by /victim/web (its configuration is older (last changed 2020-01-01T00:00:00Z)); not routed to this app",
	}, {
		name:   "same vhost among others, upper case",
		victim: victim,
		evil: portApp("/a/evil", 27001, changedAt(younger), withLabel("HAPROXY_0_VHOST", "evil.example.test,VICTIM.example.test"),
			withLabel("HAPROXY_0_BACKEND_WEIGHT", "100")),
		warn:      "/a/evil#0: vhost victim.example.test is taken by /victim/web (its configuration is older (last changed 2020-01-01T00:00:00Z)); not routed to this app",
		evilKeeps: "evil.example.test",
	}, {
		name:   "same vhost and path",
		victim: victimPath,
		evil: portApp("/a/evil", 27001, withLabel("HAPROXY_0_VHOST", "victim.example.test"), withLabel("HAPROXY_0_PATH", "/other /api"),
			withLabel("HAPROXY_0_BACKEND_WEIGHT", "100")),
		warn: "/a/evil#0: vhost victim.example.test with path /api is taken by /victim/web (its configuration is older (last changed 2020-01-01T00:00:00Z)); not routed to this app",
	}}
	for _, c := range cases {
		for _, mapMode := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/map=%v", c.name, mapMode), func(t *testing.T) {
				cfg := testConfig()
				cfg.HAProxyMap = mapMode
				alone := build(t, cfg, nil, c.victim)
				m := build(t, cfg, idsOnly(alone), c.evil, c.victim)
				if got := warningsOf(m); !slices.Equal(got, []string{c.warn}) {
					t.Errorf("warnings\n got %q\nwant %q", got, c.warn)
				}
				if len(m.Excluded) != 0 || m.Backend("a_evil_27001") == nil {
					t.Errorf("the contender lost more than its route: backends %v, excluded %v", backendNames(m), excluded(m))
				}
				if c.evilKeeps != "" && !routesHost(m, c.evilKeeps, "a_evil_27001") {
					t.Errorf("the contender's own vhost %s is not routed", c.evilKeeps)
				}
				for _, fe := range []*SharedFrontend{m.HTTP, m.HTTPS} {
					for _, r := range fe.Rules {
						if r.Owner == "/a/evil" && strings.Contains(r.Text, "victim.example.test") {
							t.Errorf("%s routes the victim's host to the contender: %q", fe.Name, r.Text)
						}
					}
				}
				checkUntouched(t, m, alone, "/victim/web")
			})
		}
	}
	// Honest: another path on the owner's host is another route; weight orders the two.
	m := build(t, testConfig(), nil, victim,
		portApp("/b/api", 27002, withLabel("HAPROXY_0_VHOST", "victim.example.test"), withLabel("HAPROXY_0_PATH", "/api")))
	if len(m.Warnings) != 0 || !routesHost(m, "victim.example.test", "b_api_27002") {
		t.Errorf("a path route on another app's host: warnings %q", warningsOf(m))
	}
}

// TestOwnershipDeploymentGroupShares: the apps of one HAPROXY_DEPLOYMENT_GROUP (blue/green)
// share the port and vhost, whatever their ages, and the group keeps them against an older
// outsider once it holds them.
func TestOwnershipDeploymentGroupShares(t *testing.T) {
	member := func(id, started string, at time.Time) *discovery.App {
		return portApp(id, 27100, changedAt(at), withLabel("HAPROXY_0_VHOST", "bg.example.test"),
			withLabel(LabelDeploymentGroup, "bg"), withLabel(LabelDeploymentAltPort, "27101"),
			withLabel(LabelDeploymentStartedAt, started))
	}
	blue := member("/bg-blue", "2024-01-01T00:00:00", younger)
	green := member("/bg-green", "2024-02-01T00:00:00", older)
	reg := newTestRegistry(t)
	m := Build(reg.replace(t, blue), testConfig(), nil)
	m = Build(reg.replace(t, blue, green), testConfig(), m)
	if len(m.Excluded) != 0 || len(m.Warnings) != 0 {
		t.Fatalf("blue/green: excluded %v, warnings %v", excluded(m), warningsOf(m))
	}
	be := m.Backend("bg_27100")
	if be == nil || be.Owner != "/bg" || !routesHost(m, "bg.example.test", "bg_27100") {
		t.Fatalf("blue/green backend %v", backendNames(m))
	}
	outsider := portApp("/a/outsider", 27100, changedAt(older.Add(-time.Hour)), withLabel("HAPROXY_0_VHOST", "bg.example.test"))
	m = Build(reg.replace(t, green, outsider), testConfig(), m)
	want := []string{"/a/outsider#0: port 27100 is taken by /bg (it holds it in the running configuration)"}
	if got := excluded(m); !slices.Equal(got, want) {
		t.Errorf("excluded\n got %q\nwant %q", got, want)
	}
	if !routesHost(m, "bg.example.test", "bg_27100") {
		t.Errorf("the group lost its vhost to the outsider")
	}
}

// TestOwnershipAutoPort: an IP-per-task port keeps the service port it was given even when
// another app asks for that port explicitly; the other app loses it.
func TestOwnershipAutoPort(t *testing.T) {
	cfg := testConfig()
	cfg.MinServPortIPPerTask, cfg.MaxServPortIPPerTask = 10050, 10060
	victim := app("/victim", withContainerPorts(8080), withLabel("HAPROXY_GROUP", "external"),
		withTasks(task("victim.1", taskIP("10.9.0.1"))))
	reg := newTestRegistry(t)
	alone := Build(reg.replace(t, victim), cfg, nil)
	if alone.Backend("victim_10050") == nil {
		t.Fatalf("backends %v", backendNames(alone))
	}
	evil := portApp("/a/evil", 27001, changedAt(older), withLabel("HAPROXY_0_PORT", "10050"))
	m := Build(reg.replace(t, victim, evil), cfg, alone)
	want := []string{"/a/evil#0: port 10050 is taken by /victim (it holds it in the running configuration)"}
	if got := excluded(m); !slices.Equal(got, want) {
		t.Errorf("excluded\n got %q\nwant %q", got, want)
	}
	checkUntouched(t, m, alone, "/victim")
}

// TestOwnershipRules: a bamboo-style rule that matches a host exactly contests that host like
// a vhost; one that loses is dropped (its port stays, unrouted) and named with the owner. A
// rule that names no host exactly claims none.
func TestOwnershipRules(t *testing.T) {
	victim := portApp("/victim/web", 27100, changedAt(older), withLabel("HAPROXY_0_VHOST", "victim.example.test"))
	evil := portApp("/a/evil", 27001, changedAt(younger), withLabel("HAPROXY_0_VHOST", "evil.example.test"))
	for _, c := range []struct {
		acl  string
		warn []string
	}{
		{"hdr(host) -i VICTIM.example.test", []string{"/a/evil#0: routing rule: vhost victim.example.test is taken by /victim/web (its configuration is older (last changed 2020-01-01T00:00:00Z)); not routed to this app"}},
		{"hdr(host) -i mine.example.test", nil},
		{"path_beg -i /evil", nil},
	} {
		t.Run(c.acl, func(t *testing.T) {
			reg := newTestRegistry(t)
			alone := Build(reg.replace(t, victim), testConfig(), nil)
			reg.replace(t, victim, evil)
			snap := reg.send(t, discovery.ReplaceRules{Rules: map[string]discovery.ServiceRule{"/a/evil": {AppID: "/a/evil", ACL: c.acl}}})
			m := Build(snap, testConfig(), idsOnly(alone))
			if got := warningsOf(m); !slices.Equal(got, c.warn) {
				t.Errorf("warnings\n got %q\nwant %q", got, c.warn)
			}
			ruled := slices.ContainsFunc(m.HTTP.Rules, func(r Rule) bool { return strings.Contains(r.Text, c.acl) })
			if ruled == (c.warn != nil) {
				t.Errorf("rule routed: %v", ruled)
			}
			if m.Backend("a_evil_27001") == nil || len(m.Excluded) != 0 {
				t.Errorf("backends %v, excluded %v", backendNames(m), excluded(m))
			}
			checkUntouched(t, m, alone, "/victim/web")
		})
	}
}

// namedACLConfig is testConfig with marathon-lb's own HTTP_FRONTEND_ACL and
// HTTP_FRONTEND_APPID_ACL templates, which name their ACLs (lodestar's built-ins write the
// condition inline: 10,000 named ACLs in one frontend cost HAProxy O(n²) to resolve).
func namedACLConfig() Config {
	named := map[string]string{
		"HAPROXY_HTTP_FRONTEND_ACL":       "  acl host_{cleanedUpHostname} hdr(host) -i {hostname}\n  use_backend {backend} if host_{cleanedUpHostname}\n",
		"HAPROXY_HTTP_FRONTEND_APPID_ACL": "  acl app_{cleanedUpAppId} hdr(x-marathon-app-id) -i {appId}\n  use_backend {backend} if app_{cleanedUpAppId}\n",
	}
	return Config{Getenv: func(k string) string { return named[k] }}
}

// TestOwnershipACLNames: two apps whose acl names collide ("/a/b" and "/a.b" clean up to the
// same name) under templates that name their ACLs: the one that holds the name in the running
// model keeps its route, even against the first app id; from scratch, the first app id keeps
// it. The built-in templates name no ACL, so both keep their routes.
func TestOwnershipACLNames(t *testing.T) {
	dot := portApp("/a.b", 27100, withLabel("HAPROXY_0_MODE", "http"))
	slash := portApp("/a/b", 27101, withLabel("HAPROXY_0_MODE", "http"))
	reg := newTestRegistry(t)
	cfg := namedACLConfig()
	alone := Build(reg.replace(t, slash), cfg, nil)
	m := Build(reg.replace(t, dot, slash), cfg, alone)
	got := warningsOf(m)
	if len(got) != 1 || !strings.HasPrefix(got[0], "/a.b#-1: routes on frontend marathon_http_appid_in left out: acl app__a_b is taken by /a/b (it holds it in the running configuration)") {
		t.Errorf("warnings %q", got)
	}
	checkUntouched(t, m, alone, "/a/b")
	cold := Build(reg.replace(t, dot, slash), cfg, nil)
	if got := warningsOf(cold); len(got) != 1 || !strings.HasPrefix(got[0], "/a/b#-1:") {
		t.Errorf("cold start: warnings %q, want /a/b (the later id) left out", got)
	}
	builtin := Build(reg.replace(t, dot, slash), testConfig(), nil)
	if got := warningsOf(builtin); len(got) != 0 || len(builtin.AppID.Rules) != 2 {
		t.Errorf("built-in templates: warnings %q, app-id rules %v; want both routed", got, builtin.AppID.Rules)
	}
}

// TestTrafficOwnership: with real HAProxy, a victim serves its vhost and port; an attacker
// that asks for the victim's vhost with a higher weight (beside a vhost of its own) and a
// second one that asks for the victim's service port are added while it runs. After the
// reload the victim still answers on both, the attacker on its own vhost only.
func TestTrafficOwnership(t *testing.T) {
	t.Parallel()
	victimBe, evilBe, portBe := haproxytest.BackendNamed(t, "victim"), haproxytest.BackendNamed(t, "evil"), haproxytest.BackendNamed(t, "port")
	victimPort := haproxytest.FreePort(t)
	victim := trafficApp("/victim/web", victimPort, map[string]string{"HAPROXY_0_VHOST": "victim.test"}, victimBe.Port)
	lb := startTraffic(t, victim)
	evil := trafficApp("/a/evil", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "evil.test,victim.test",
		"HAPROXY_0_BACKEND_WEIGHT": "100"}, evilBe.Port)
	evil.ConfigChangedAt = older
	portThief := trafficApp("/a/port", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_PORT": strconv.Itoa(victimPort)}, portBe.Port)
	portThief.ConfigChangedAt = older

	next := Build(lb.reg.replace(t, victim, evil, portThief), lb.cfg, lb.model)
	if next.Err != nil {
		t.Fatal(next.Err)
	}
	if got := excluded(next); len(got) != 1 || !strings.HasPrefix(got[0], "/a/port#0: port "+strconv.Itoa(victimPort)+" is taken by /victim/web") {
		t.Errorf("excluded %q", got)
	}
	if got := warningsOf(next); len(got) != 1 || !strings.HasPrefix(got[0], "/a/evil#0: vhost victim.test is taken by /victim/web") {
		t.Errorf("warnings %q", got)
	}
	lb.model, lb.rendered = next, render(t, next)
	lb.install(lb.rendered)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := lb.proc.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, base := range []string{lb.httpURL, lb.httpsURL} {
		expectBackend(t, trafficReq{url: base + "/", host: "victim.test", sni: "victim.test"}, "victim", 200)
		expectBackend(t, trafficReq{url: base + "/", host: "evil.test", sni: "evil.test"}, "evil", 200)
	}
	for range 10 {
		expectBackend(t, trafficReq{url: servicePortURL(victimPort) + "/"}, "victim", 200)
	}
}
