package haproxy

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// The property: building on the previous model is only a shortcut. Build(next, cfg, prev)
// must equal, in every exported field and in what Render writes, a build that knows of prev
// only what Build promises to keep (slot positions, backend ids, assigned service ports) and
// can reuse nothing else. A plain Build(next, cfg, nil) cannot be the reference: tasks
// keeping their slots is the point of passing prev.

// history is what Build keeps from prev on purpose, and nothing it could reuse: the backends
// with their ids, slots and whether HAProxy could add servers to them (no head, no server
// options, no owner), the assigned service
// ports, and who holds what (ownership is decided by the running model; see owners): the
// owner and port of each frontend, the owner and acl lines of the shared frontends, the owner
// of each vhost+path route.
func history(prev *Model) *Model {
	h := &Model{autoPorts: prev.autoPorts, routeOwners: prev.routeOwners}
	for _, be := range prev.Backends {
		h.Backends = append(h.Backends, &Backend{Name: be.Name, ID: be.ID, Slots: slices.Clone(be.Slots), DynamicServers: be.DynamicServers})
	}
	for _, f := range prev.Frontends {
		h.Frontends = append(h.Frontends, &Frontend{Name: f.Name, Owner: f.Owner, Port: f.Port})
	}
	held := func(f *SharedFrontend) *SharedFrontend {
		if f == nil {
			return nil
		}
		acls := &SharedFrontend{Name: f.Name}
		for _, r := range f.Rules {
			if firstWord(r.Text) == "acl" {
				acls.Rules = append(acls.Rules, Rule{Owner: r.Owner, Text: r.Text})
			}
		}
		return acls
	}
	h.HTTP, h.HTTPS, h.AppID = held(prev.HTTP), held(prev.HTTPS), held(prev.AppID)
	return h
}

// exportedDiff returns the path of the first difference between the exported fields of two
// values, "" when there is none.
func exportedDiff(path string, a, b reflect.Value) string {
	if a.Kind() != b.Kind() {
		return path + ": kinds differ"
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: %v vs %v", path, a.Interface(), b.Interface())
			}
			return ""
		}
		return exportedDiff(path, a.Elem(), b.Elem())
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: %v vs %v", path, a.Interface(), b.Interface())
			}
			return ""
		}
		if ea, ok := a.Interface().(error); ok {
			if eb, ok := b.Interface().(error); ok && ea.Error() == eb.Error() {
				return ""
			}
			return fmt.Sprintf("%s: %v vs %v", path, a.Interface(), b.Interface())
		}
		return exportedDiff(path, a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if d := exportedDiff(path+"."+f.Name, a.Field(i), b.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d vs %d", path, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if d := exportedDiff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: %d keys vs %d", path, a.Len(), b.Len())
		}
		for _, k := range a.MapKeys() {
			vb := b.MapIndex(k)
			if !vb.IsValid() {
				return fmt.Sprintf("%s[%v]: missing", path, k)
			}
			if d := exportedDiff(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), vb); d != "" {
				return d
			}
		}
		return ""
	}
	if !a.Equal(b) {
		return fmt.Sprintf("%s: %#v vs %#v", path, a.Interface(), b.Interface())
	}
	return ""
}

// modelDiff compares an incremental build with the reference build, and what they render to.
func modelDiff(inc, ref *Model) string {
	if d := exportedDiff("Model", reflect.ValueOf(inc), reflect.ValueOf(ref)); d != "" {
		return d
	}
	if inc.Err != nil {
		return ""
	}
	ri, erri := Render(inc)
	rr, errr := Render(ref)
	switch {
	case erri != nil || errr != nil:
		return fmt.Sprintf("Render: %v vs %v", erri, errr)
	case !bytes.Equal(ri.Config, rr.Config):
		return "rendered config:\n" + lineDiff(string(rr.Config), string(ri.Config))
	case !slices.Equal(ri.Owner, rr.Owner):
		return "rendered owners differ"
	case !maps.EqualFunc(ri.Maps, rr.Maps, bytes.Equal):
		return "rendered maps differ"
	}
	return ""
}

// cloneApp deep-copies an app as a source would decode it again.
func cloneApp(a *discovery.App) *discovery.App {
	c := *a
	c.Labels = maps.Clone(a.Labels)
	c.Ports = slices.Clone(a.Ports)
	for i := range c.Ports {
		c.Ports[i].Labels = maps.Clone(c.Ports[i].Labels)
	}
	c.HealthChecks = slices.Clone(a.HealthChecks)
	c.ReadinessChecks = slices.Clone(a.ReadinessChecks)
	c.Deployments = slices.Clone(a.Deployments)
	c.Tasks = make([]*discovery.Task, len(a.Tasks))
	for i, t := range a.Tasks {
		ct := *t
		ct.IPAddresses = slices.Clone(t.IPAddresses)
		ct.HostPorts = slices.Clone(t.HostPorts)
		ct.Health = slices.Clone(t.Health)
		ct.Endpoints = nil
		if t.Ready != nil {
			r := *t.Ready
			ct.Ready = &r
		}
		c.Tasks[i] = &ct
	}
	return &c
}

// labelPool holds the labels the mutations set: every kind of port label, groups, deployment
// groups, a custom server template and a malformed value.
var labelPool = []struct {
	key    string
	values []string
}{
	{"HAPROXY_GROUP", []string{"external", "internal", "internal,external"}},
	{"HAPROXY_0_VHOST", []string{"a.example.com", "a.example.com,b.example.com", "c.example.com"}},
	{"HAPROXY_1_VHOST", []string{"d.example.com"}},
	{"HAPROXY_0_MODE", []string{"http", "tcp", "htp"}},
	{"HAPROXY_0_PATH", []string{"/api", "/api /v2"}},
	{"HAPROXY_0_STICKY", []string{"true"}},
	{"HAPROXY_0_BACKEND_WEIGHT", []string{"3", "7"}},
	{"HAPROXY_0_REDIRECT_TO_HTTPS", []string{"true"}},
	{"HAPROXY_0_USE_HSTS", []string{"true"}},
	{"HAPROXY_0_AUTH", []string{"realm:alice:$apr1$x$y"}},
	{"HAPROXY_0_BALANCE", []string{"leastconn", "source"}},
	{"HAPROXY_0_PORT", []string{"15000", "15001", "15002"}},
	{"HAPROXY_1_PORT", []string{"15003", "15000"}},
	{"HAPROXY_0_ENABLED", []string{"false", "true"}},
	{"HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", []string{"1"}},
	{"HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", []string{"10.0.0.0/8"}},
	{"HAPROXY_0_BACKEND_SERVER_OPTIONS", []string{"  server {serverName} {host_ipv4}:80{otherOptions}\n"}},
	{"HAPROXY_DEPLOYMENT_GROUP", []string{"bg"}},
	{"HAPROXY_DEPLOYMENT_ALT_PORT", []string{"10099"}},
	{"HAPROXY_DEPLOYMENT_STARTED_AT", []string{"2024-01-01T00:00:00", "2024-02-01T00:00:00"}},
	{"HAPROXY_DEPLOYMENT_TARGET_INSTANCES", []string{"1", "2"}},
}

// mutator changes a list of apps one step at a time.
type mutator struct {
	rng  *rand.Rand
	apps []*discovery.App
	n    int
}

func (m *mutator) pick() *discovery.App {
	if len(m.apps) == 0 {
		return nil
	}
	return m.apps[m.rng.IntN(len(m.apps))]
}

// replace swaps in a changed copy of an app.
func (m *mutator) replace(a *discovery.App, change func(*discovery.App)) {
	c := cloneApp(a)
	change(c)
	for i := range m.apps {
		if m.apps[i] == a {
			m.apps[i] = c
		}
	}
}

func (m *mutator) newTask(a *discovery.App) *discovery.Task {
	m.n++
	t := &discovery.Task{ID: fmt.Sprintf("%s.gen%d", strings.TrimPrefix(a.ID, "/"), m.n), AppID: a.ID,
		Host: fmt.Sprintf("10.7.%d.%d", m.n/200, m.n%200+1), State: discovery.StateRunning}
	for range a.Ports {
		t.HostPorts = append(t.HostPorts, 31000+m.rng.IntN(1000))
	}
	if a.Network != discovery.NetworkHost {
		t.IPAddresses = []string{fmt.Sprintf("10.8.%d.%d", m.n/200, m.n%200+1)}
	}
	return t
}

// swapPorts swaps two ports of an app with at least two, as a user reordering
// portDefinitions would: the tasks' host ports follow.
func swapPorts(a *discovery.App, i, j int) {
	a.Ports[i], a.Ports[j] = a.Ports[j], a.Ports[i]
	for _, t := range a.Tasks {
		if i < len(t.HostPorts) && j < len(t.HostPorts) {
			t.HostPorts[i], t.HostPorts[j] = t.HostPorts[j], t.HostPorts[i]
		}
	}
}

// step applies one random mutation and says which.
func (m *mutator) step() string {
	a := m.pick()
	if a == nil {
		m.apps = append(m.apps, app("/gen/app0", withPorts(10900), withLabel("HAPROXY_GROUP", "external")))
		return "add the first app"
	}
	switch k := m.rng.IntN(14); k {
	case 0:
		if len(a.Ports) < 2 {
			m.replace(a, func(c *discovery.App) {
				c.Ports = append(c.Ports, discovery.Port{ServicePort: 10500 + m.rng.IntN(100), Protocol: "tcp"})
			})
			return "add a port to " + a.ID
		}
		m.replace(a, func(c *discovery.App) { swapPorts(c, 0, 1) })
		return "swap the ports of " + a.ID
	case 1, 2:
		l := labelPool[m.rng.IntN(len(labelPool))]
		v := l.values[m.rng.IntN(len(l.values))]
		m.replace(a, func(c *discovery.App) {
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[l.key] = v
		})
		return fmt.Sprintf("label %s=%q on %s", l.key, v, a.ID)
	case 3:
		keys := slices.Sorted(maps.Keys(a.Labels))
		if len(keys) == 0 {
			return "nothing"
		}
		key := keys[m.rng.IntN(len(keys))]
		m.replace(a, func(c *discovery.App) { delete(c.Labels, key) })
		return "remove label " + key + " of " + a.ID
	case 4:
		m.replace(a, func(c *discovery.App) { c.Tasks = append(c.Tasks, m.newTask(c)) })
		return "add a task to " + a.ID
	case 5, 6:
		if len(a.Tasks) == 0 {
			return "nothing"
		}
		i := m.rng.IntN(len(a.Tasks))
		switch m.rng.IntN(4) {
		case 0:
			m.replace(a, func(c *discovery.App) { c.Tasks = slices.Delete(c.Tasks, i, i+1) })
			return "kill a task of " + a.ID
		case 1:
			m.replace(a, func(c *discovery.App) { c.Tasks[i].State = discovery.StateKilling })
			return "a task of " + a.ID + " is killing"
		case 2:
			m.replace(a, func(c *discovery.App) {
				c.Tasks[i].Health = []discovery.HealthResult{{Alive: m.rng.IntN(2) == 0}}
			})
			return "health of a task of " + a.ID
		default:
			m.replace(a, func(c *discovery.App) {
				moved := m.newTask(c)
				moved.ID = c.Tasks[i].ID
				c.Tasks[i] = moved
			})
			return "move a task of " + a.ID
		}
	case 7:
		if len(a.Ports) == 0 {
			return "nothing"
		}
		i := m.rng.IntN(len(a.Ports))
		p := 10200 + m.rng.IntN(50)
		m.replace(a, func(c *discovery.App) { c.Ports[i].ServicePort = p })
		return fmt.Sprintf("service port %d of %s is %d", i, a.ID, p)
	case 8:
		m.n++
		opts := []appOpt{withPorts(10300+m.n%50, 10400+m.n%50), withLabel("HAPROXY_GROUP", "external")}
		if m.rng.IntN(2) == 0 {
			opts = append(opts, withLabel("HAPROXY_0_VHOST", fmt.Sprintf("gen%d.example.com", m.n%5)))
		}
		n := app(fmt.Sprintf("/gen/app%d", m.n), opts...)
		n.Tasks = []*discovery.Task{m.newTask(n)}
		n.Tasks[0].AppID = n.ID
		m.apps = append(m.apps, n)
		return "add app " + n.ID
	case 9:
		m.apps = slices.DeleteFunc(m.apps, func(x *discovery.App) bool { return x == a })
		return "remove app " + a.ID
	case 10:
		if len(a.Ports) < 2 {
			return "nothing"
		}
		m.replace(a, func(c *discovery.App) {
			c.HealthChecks = []discovery.HealthCheck{{Protocol: "HTTP", Path: "/h", PortIndex: m.rng.IntN(2)}}
		})
		return "health check of " + a.ID
	case 11:
		// A new version may be a configuration change (which ownership reads on a contest
		// nobody holds), or not, or one Marathon gave no time for.
		changed := []time.Time{{}, time.Date(2025, 1, 1, 0, 0, m.rng.IntN(3), 0, time.UTC), a.ConfigChangedAt}[m.rng.IntN(3)]
		m.replace(a, func(c *discovery.App) {
			c.Version = fmt.Sprintf("2025-01-01T00:00:%02d.000Z", m.rng.IntN(60))
			c.ConfigChangedAt = changed
		})
		return fmt.Sprintf("new version of %s (config changed at %v)", a.ID, changed)
	case 12:
		if len(a.Ports) == 0 {
			return "nothing"
		}
		i := m.rng.IntN(len(a.Ports))
		proto := []string{"tcp", "udp", "udp,tcp"}[m.rng.IntN(3)]
		m.replace(a, func(c *discovery.App) { c.Ports[i].Protocol = proto })
		return fmt.Sprintf("port %d of %s is %s", i, a.ID, proto)
	default:
		// Two apps join (or leave) a deployment group.
		b := m.pick()
		group := a.Labels[LabelDeploymentGroup] == ""
		for _, x := range []*discovery.App{a, b} {
			m.replace(x, func(c *discovery.App) {
				if c.Labels == nil {
					c.Labels = map[string]string{}
				}
				if group {
					c.Labels[LabelDeploymentGroup] = "bg"
					c.Labels[LabelDeploymentAltPort] = "10098"
					c.Labels[LabelDeploymentStartedAt] = fmt.Sprintf("2024-01-%02dT00:00:00", 1+m.rng.IntN(28))
				} else {
					delete(c.Labels, LabelDeploymentGroup)
				}
			})
		}
		return fmt.Sprintf("%s and %s in a deployment group: %v", a.ID, b.ID, group)
	}
}

// propertyCases are the starting points: every Marathon fixture, the label scenarios and a
// handful of generated apps.
func propertyCases(t *testing.T) map[string][]*discovery.App {
	cases := map[string][]*discovery.App{}
	for _, file := range fixtureFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		apps, appErrs, err := discovery.DecodeMarathonApps(data)
		if err != nil || len(appErrs) > 0 {
			t.Fatalf("decode %s: %v %v", file, err, appErrs)
		}
		cases[filepath.Base(file)] = apps
	}
	scenario, _ := scenarioApps()
	cases["scenarios"] = scenario
	var gen []*discovery.App
	for i := range 6 {
		gen = append(gen, app("/gen/seed"+strconv.Itoa(i), withPorts(10600+2*i, 10601+2*i), withInstances(2),
			withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_VHOST", fmt.Sprintf("seed%d.example.com", i%3)),
			withTasks(task(fmt.Sprintf("seed%d.1", i), ports(31000+i, 32000+i)), task(fmt.Sprintf("seed%d.2", i), host("10.0.0.2"), ports(31100+i, 32100+i)))))
	}
	cases["generated"] = gen
	return cases
}

// TestIncrementalBuildEqualsReference replays sequences of snapshots (the fixtures, then
// random port swaps, label, task, port, app and group changes) and requires every
// incremental build to equal the reference build (see history) in every exported field and
// in its rendered text. The first step of each sequence swaps the ports of an app with two;
// every fourth build is one for a reload (ShrinkSlots), which drops free slots.
func TestIncrementalBuildEqualsReference(t *testing.T) {
	const steps = 60
	cases := propertyCases(t)
	for ci, name := range slices.Sorted(maps.Keys(cases)) {
		for _, mapMode := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/map=%v", name, mapMode), func(t *testing.T) {
				t.Parallel()
				cfg := goldenConfig()
				cfg.HAProxyMap = mapMode
				cfg.Groups = []string{"external"}
				mu := &mutator{rng: rand.New(rand.NewPCG(uint64(ci), 1)), apps: slices.Clone(cases[name])}
				reg := newTestRegistry(t)
				var clones []*discovery.App
				for _, a := range mu.apps {
					clones = append(clones, cloneApp(a))
				}
				prev := Build(reg.replace(t, clones...), cfg, nil)
				var log []string
				for i := range steps {
					var what string
					if i == 0 {
						what = "nothing"
						for _, a := range mu.apps {
							if len(a.Ports) >= 2 {
								mu.replace(a, func(c *discovery.App) { swapPorts(c, 0, 1) })
								what = "swap the ports of " + a.ID
								break
							}
						}
					} else {
						what = mu.step()
					}
					log = append(log, what)
					clones = clones[:0]
					for _, a := range mu.apps {
						clones = append(clones, cloneApp(a))
					}
					snap := reg.replace(t, clones...)
					cfg := cfg
					cfg.ShrinkSlots = i%4 == 3
					inc := Build(snap, cfg, prev)
					ref := Build(snap, cfg, history(prev))
					if d := modelDiff(inc, ref); d != "" {
						t.Fatalf("after %d steps (the last: %s), the incremental build differs from the reference:\n%s",
							i+1, strings.Join(log[max(0, len(log)-8):], "; "), d)
					}
					prev = inc
				}
			})
		}
	}
}

// TestPortSwapIncremental: an app that swaps the order of its two ports keeps both backends
// (they are named by service port) but each now serves the other port index; an incremental
// build said the old index, and /v1/apps reported the wrong port.
func TestPortSwapIncremental(t *testing.T) {
	cfg := testConfig()
	reg := newTestRegistry(t)
	two := app("/two", withPorts(10000, 10001), withLabel("HAPROXY_GROUP", "external"),
		withTasks(task("two.1", ports(31000, 31001))))
	m1 := Build(reg.replace(t, two), cfg, nil)
	swapped := cloneApp(two)
	swapPorts(swapped, 0, 1)
	m2 := Build(reg.replace(t, swapped), cfg, m1)
	for name, want := range map[string]int{"two_10000": 1, "two_10001": 0} {
		be := m2.Backend(name)
		if be == nil {
			t.Fatalf("no backend %s: %v", name, backendNames(m2))
		}
		if be.PortIndex != want {
			t.Errorf("%s: PortIndex %d, want %d", name, be.PortIndex, want)
		}
		if be.Slots[0].Port != 31000+1-want {
			t.Errorf("%s: server port %d", name, be.Slots[0].Port)
		}
	}
}

// TestShareFrontendComparesEveryField: a shared frontend is handed back from the previous
// model only when it equals the new one in every field; a field added later is covered.
func TestShareFrontendComparesEveryField(t *testing.T) {
	base := SharedFrontend{Name: "marathon_http_in", Head: "frontend marathon_http_in\n", Rules: []Rule{{Owner: "/a", Text: "  acl x"}}}
	prev := base
	prev.Rules = slices.Clone(base.Rules)
	if got := shareFrontend(&base, &prev); got != &prev {
		t.Fatal("an equal frontend is not shared")
	}
	typ := reflect.TypeFor[SharedFrontend]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		changed := base
		changed.Rules = slices.Clone(base.Rules)
		v := reflect.ValueOf(&changed).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.New(f.Type.Elem()).Elem()))
		default:
			t.Fatalf("field %s: teach this test to change a %s", f.Name, v.Kind())
		}
		if got := shareFrontend(&changed, &prev); got != &changed {
			t.Errorf("a frontend that differs in %s is replaced by the previous one", f.Name)
		}
	}
}
