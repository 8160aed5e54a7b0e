package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// fakeRouting answers for /shop/web only, as the HAProxy front end would for an app it serves.
type fakeRouting struct{}

func (fakeRouting) AppRoutes(id string) []Route {
	if id != "/shop/web" {
		return nil
	}
	return []Route{{Port: 0, ServicePort: 10080, Mode: "http", Backend: "shop_web_10080",
		VHosts:  []string{"shop.example.com"},
		Servers: []RouteServer{{Slot: "shop_web_10080-1", TaskID: "web.1", Address: "10.0.0.1:31001", State: "ready"}}}}
}

func (fakeRouting) AppLabels(id string) any {
	if id != "/shop/web" {
		return nil
	}
	return map[string]any{"app_id": id, "groups": []string{"internal"}}
}

func (fakeRouting) Summary() RoutingSummary { return RoutingSummary{Excluded: []Excluded{}} }

// fakeDNS answers from fixed tables.
type fakeDNS struct {
	records map[string][]DNSRecord
	names   map[string][]string
}

func (f fakeDNS) Records(name string) []DNSRecord {
	return f.records[strings.TrimSuffix(strings.ToLower(name), ".")]
}
func (f fakeDNS) AppNames(id string) []string { return f.names[id] }

// fakeResyncer counts resyncs; handlers run on the server's goroutines, hence the lock.
type fakeResyncer struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *fakeResyncer) Resync(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("resync called without a deadline")
	}
	f.calls++
	return f.err
}

func (f *fakeResyncer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeRules is an in-memory RuleStore. An ACL containing "bogus" is invalid, as HAProxy
// would reject it; err makes every call fail.
type fakeRules struct {
	mu    sync.Mutex
	rules map[string]string
	err   error
}

func (f *fakeRules) List(context.Context) ([]ServiceRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []ServiceRule
	for id, acl := range f.rules {
		out = append(out, ServiceRule{ID: id, ACL: acl})
	}
	slices.SortFunc(out, func(a, b ServiceRule) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (f *fakeRules) Put(_ context.Context, r ServiceRule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if strings.Contains(r.ACL, "bogus") {
		return fmt.Errorf("%w: acl %q of %s: HAProxy rejects it: unknown fetch method 'bogus'", ErrInvalidRule, r.ACL, r.ID)
	}
	f.rules[r.ID] = r.ACL
	return nil
}

func (f *fakeRules) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, ok := f.rules[id]; !ok {
		return fmt.Errorf("zk rules: %s: %w", id, ErrNoRule)
	}
	delete(f.rules, id)
	return nil
}

func (f *fakeRules) get(id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acl, ok := f.rules[id]
	return acl, ok
}

// serveAPI serves s on ln until the test ends and returns the base URL of ln's real address.
func serveAPI(t *testing.T, s *Server, ln net.Listener) string {
	t.Helper()
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := waitRun(t, done); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return base
}

// listenLoopback opens a listener on a free loopback port.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// step is one request and what its answer must hold. fields maps a path in the JSON body
// ("apps.0.id", "Services./shop/web.Acl") to the value's fmt.Sprint; "#" gives a list's or
// object's length; a "!" prefix asserts the key is absent. text is a substring of the body.
type step struct {
	method, path, body string
	header             map[string]string
	code               int
	fields             map[string]string
	text               string
}

// doStep sends the step's request to base and checks the answer.
func doStep(t *testing.T, base string, st step) []byte {
	t.Helper()
	var body io.Reader
	if st.body != "" {
		body = strings.NewReader(st.body)
	}
	req, err := http.NewRequest(st.method, base+st.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range st.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", st.method, st.path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	name := st.method + " " + st.path
	if resp.StatusCode != st.code {
		t.Errorf("%s = %d, want %d: %s", name, resp.StatusCode, st.code, got)
		return got
	}
	if st.text != "" && !strings.Contains(string(got), st.text) {
		t.Errorf("%s: body lacks %q:\n%s", name, st.text, got)
	}
	if len(st.fields) == 0 {
		return got
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", name, ct)
	}
	var doc any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Errorf("%s: body is not JSON: %v\n%s", name, err, got)
		return got
	}
	for path, want := range st.fields {
		absent := strings.HasPrefix(path, "!")
		v, ok := jsonAt(doc, strings.TrimPrefix(path, "!"))
		switch {
		case absent && ok:
			t.Errorf("%s: %s is present (%v), want it absent", name, path[1:], v)
		case absent:
		case !ok:
			t.Errorf("%s: no %s in\n%s", name, path, got)
		case fmt.Sprint(v) != want:
			t.Errorf("%s: %s = %v, want %s", name, path, v, want)
		}
	}
	return got
}

// jsonAt walks a decoded JSON document along a dot-separated path of keys and indices; a
// final "#" is the length.
func jsonAt(doc any, path string) (any, bool) {
	cur := doc
	for _, key := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			if key == "#" {
				return len(v), true
			}
			next, ok := v[key]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			if key == "#" {
				return len(v), true
			}
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// withRules adds bamboo rules to the registry's snapshot, as the zkrules source would.
func withRules(t *testing.T, reg *discovery.Registry, rules map[string]discovery.ServiceRule) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := reg.Send(ctx, discovery.ReplaceRules{Rules: rules}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.WaitFor(ctx, func(s *discovery.Snapshot) bool { return len(s.Rules) == len(rules) }); err != nil {
		t.Fatalf("waiting for the rules: %v", err)
	}
}

// fullAPI is a server with every front end wired to fakes, served on loopback.
type fullAPI struct {
	base   string
	resync *fakeResyncer
	rules  *fakeRules
	ha     *fakeHAProxy
}

func newFullAPI(t *testing.T, cfg Config, ln net.Listener) fullAPI {
	t.Helper()
	reg := fixtureRegistry(t)
	withRules(t, reg, map[string]discovery.ServiceRule{"/shop/web": {AppID: "/shop/web", ACL: "hdr(host) -i shop.internal"}})
	s := newServer(t, cfg, reg)
	f := fullAPI{
		resync: &fakeResyncer{},
		rules:  &fakeRules{rules: map[string]string{"/nginx-green": "hdr(host) -i green.example.com"}},
		ha:     &fakeHAProxy{config: []byte("global\n  daemon\n")},
	}
	s.SetFrontends(Frontends{
		Routing: fakeRouting{},
		DNS: fakeDNS{
			records: map[string][]DNSRecord{"web.marathon.mesos": {
				{Name: "web.marathon.mesos.", Type: "A", TTL: 60, Data: "10.0.0.1"},
				{Name: "web.marathon.mesos.", Type: "A", TTL: 60, Data: "10.0.0.2"},
			}},
			names: map[string][]string{"/shop/web": {"_web._tcp.marathon.mesos.", "web.marathon.mesos."}},
		},
		Resync: f.resync,
		Rules:  f.rules,
	})
	s.MountHAProxy(f.ha)
	s.MountMesosDNS(fakeMesosDNS{
		hosts: map[string][]HostRecord{"web.marathon.mesos": {{Host: "web.marathon.mesos.", IP: "10.0.0.1"}}},
		services: map[string][]ServiceRecord{"_web._tcp.marathon.mesos": {
			{Service: "_web._tcp.marathon.mesos.", Host: "web-a1b2c-s1.marathon.slave.mesos.", IP: "10.0.0.1", Port: "31001"}}},
	})
	s.AddReadyCheck("first sync", reg.Synced)
	f.base = serveAPI(t, s, ln)
	return f
}

// TestEndpoints walks every endpoint of the API over real HTTP on loopback, where mutating
// requests need no credential. The steps run in order: the bamboo steps build on each other.
func TestEndpoints(t *testing.T) {
	f := newFullAPI(t, Config{Version: "1.2.3"}, listenLoopback(t))
	steps := []step{
		// Liveness, readiness, metrics.
		{method: "GET", path: "/healthz", code: 200, fields: map[string]string{"status": "ok", "version": "1.2.3"}},
		{method: "HEAD", path: "/healthz", code: 200},
		{method: "GET", path: "/readyz", code: 200, fields: map[string]string{"ready": "true", "checks.first sync": "ok"}},
		{method: "GET", path: "/metrics", code: 200, text: "lodestar_api_requests_total"},
		{method: "POST", path: "/healthz", code: 405, fields: map[string]string{"error": "method POST is not allowed on /healthz"}},

		// The registry.
		{method: "GET", path: "/v1/apps", code: 200, fields: map[string]string{"apps.#": "3", "apps.2.id": "/shop/web", "sources.0.name": "file"}},
		{method: "GET", path: "/v1/apps/shop/web", code: 200, fields: map[string]string{
			"id": "/shop/web", "labels.HAPROXY_GROUP": "internal", "instances": "3", "network": "host",
			"ports.0.service_port": "10080", "ports.0.name": "http",
			"haproxy_labels.app_id": "/shop/web", "haproxy_labels.groups.0": "internal",
			"routes.#": "1", "routes.0.backend": "shop_web_10080", "routes.0.service_port": "10080",
			"routes.0.vhosts.0": "shop.example.com", "routes.0.servers.0.task_id": "web.1", "routes.0.servers.0.state": "ready",
			"tasks.#": "3", "tasks.0.id": "web.1", "tasks.0.host": "10.0.0.1", "tasks.0.state": "TASK_RUNNING",
			"tasks.0.eligible": "true", "tasks.0.reason": "", "tasks.0.endpoints.0.port": "31001", "tasks.0.health.0.alive": "true",
			"tasks.1.eligible": "false", "tasks.1.reason": "health check failing", "tasks.1.health.0.consecutive_failures": "3",
			"tasks.2.eligible": "false", "tasks.2.draining": "true", "tasks.2.reason": "TASK_KILLING: draining",
			"dns_names.#": "2", "dns_names.1": "web.marathon.mesos.",
		}},
		{method: "GET", path: "/v1/apps/%2Fshop%2Fweb", code: 200, fields: map[string]string{"id": "/shop/web"}},
		{method: "HEAD", path: "/v1/apps/shop/web", code: 200},
		// Routing and DNS run but have nothing for the app: [] rather than absent.
		{method: "GET", path: "/v1/apps/nginx-green", code: 200, fields: map[string]string{
			"id": "/nginx-green", "routes.#": "0", "dns_names.#": "0", "!haproxy_labels": "", "tasks.#": "3"}},
		{method: "GET", path: "/v1/apps/nope", code: 404, fields: map[string]string{"error": "no app /nope in the registry"}},
		{method: "GET", path: "/v1/apps/shop", code: 404, fields: map[string]string{"error": "no app /shop in the registry"}},
		{method: "GET", path: "/v1/apps/shop/web/extra", code: 404, fields: map[string]string{"error": "no app /shop/web/extra in the registry"}},
		{method: "DELETE", path: "/v1/apps/shop/web", code: 405, fields: map[string]string{"error": "method DELETE is not allowed on /v1/apps/shop/web"}},

		// DNS records.
		{method: "GET", path: "/v1/dns/records?name=web.marathon.mesos", code: 200, fields: map[string]string{
			"name": "web.marathon.mesos", "records.#": "2", "records.0.type": "A", "records.0.ttl": "60", "records.1.data": "10.0.0.2"}},
		{method: "GET", path: "/v1/dns/records?name=WEB.marathon.mesos.", code: 200, fields: map[string]string{"records.#": "2"}},
		{method: "GET", path: "/v1/dns/records", code: 400, fields: map[string]string{
			"error": "query parameter name is missing, e.g. /v1/dns/records?name=web.marathon.mesos"}},
		{method: "GET", path: "/v1/dns/records?name=", code: 400},
		{method: "GET", path: "/v1/dns/records?name=nope.marathon.mesos", code: 404, fields: map[string]string{
			"error": "no DNS records for nope.marathon.mesos"}},
		{method: "POST", path: "/v1/dns/records?name=web.marathon.mesos", code: 405},

		// Resync.
		{method: "POST", path: "/v1/resync", code: 200, fields: map[string]string{"status": "resynced"}},
		{method: "GET", path: "/v1/resync", code: 405},

		// HAProxy (MountHAProxy).
		{method: "GET", path: "/v1/haproxy/config", code: 200, text: "global\n  daemon\n"},
		{method: "GET", path: "/v1/haproxy/status", code: 200, fields: map[string]string{"last_apply.kind": "reload"}},
		{method: "GET", path: "/_haproxy_getconfig", code: 200, text: "global"},
		{method: "GET", path: "/_haproxy_health_check", code: 200, text: "OK"},
		{method: "GET", path: "/_haproxy_getpids", code: 200, text: "100 101"},
		{method: "GET", path: "/_haproxy_getvhostmap", code: 200, text: "shop.example.com shop_web_10000"},
		{method: "GET", path: "/_haproxy_getappmap", code: 200, text: "/shop/web shop_web_10000"},
		{method: "GET", path: "/_mlb_signal/hup", code: 200, text: "Resynced"},
		{method: "POST", path: "/_mlb_signal/usr1", code: 200, text: "Reloaded"},
		{method: "PUT", path: "/_mlb_signal/hup", code: 405},
		{method: "POST", path: "/v1/haproxy/config", code: 405},

		// mesos-dns (MountMesosDNS).
		{method: "GET", path: "/v1/version", code: 200, fields: map[string]string{"Version": "1.2.3", "Service": "lodestar (Mesos-DNS compatible)"}},
		{method: "GET", path: "/v1/config", code: 200, fields: map[string]string{"Password": "(redacted)"}},
		{method: "GET", path: "/v1/hosts/web.marathon.mesos", code: 200, fields: map[string]string{"#": "1", "0.ip": "10.0.0.1"}},
		{method: "GET", path: "/v1/hosts/nope.marathon.mesos", code: 404, fields: map[string]string{"#": "0"}},
		{method: "GET", path: "/v1/services/_web._tcp.marathon.mesos", code: 200, fields: map[string]string{"0.port": "31001"}},
		{method: "GET", path: "/v1/services/_nope._tcp.marathon.mesos", code: 404, fields: map[string]string{"#": "0"}},
		{method: "GET", path: "/v1/enumerate", code: 200, fields: map[string]string{"frameworks.0": "marathon"}},
		{method: "GET", path: "/v1/axfr", code: 200, fields: map[string]string{"Domain": "mesos"}},
		{method: "POST", path: "/v1/axfr", code: 405},

		// bamboo: list, create (both field spellings, id without its slash), replace, delete.
		{method: "GET", path: "/api/services", code: 200, fields: map[string]string{
			"#": "1", "/nginx-green.Id": "/nginx-green", "/nginx-green.Acl": "hdr(host) -i green.example.com",
			"/nginx-green.Config.Acl": "hdr(host) -i green.example.com"}},
		{method: "POST", path: "/api/services", body: `{"id":"grp/app","acl":"hdr(host) -i app.example.com"}`, code: 200,
			fields: map[string]string{"Id": "/grp/app", "Acl": "hdr(host) -i app.example.com", "Config.Acl": "hdr(host) -i app.example.com"}},
		{method: "POST", path: "/api/services", body: `{"Id":"/grp/v2","Config":{"Acl":"hdr(host) -i v2.example.com"}}`, code: 200,
			fields: map[string]string{"Id": "/grp/v2", "Acl": "hdr(host) -i v2.example.com"}},
		// POST again replaces, as in bamboo (no 409).
		{method: "POST", path: "/api/services", body: `{"Id":"/grp/v2","Acl":"hdr(host) -i v2.new"}`, code: 200,
			fields: map[string]string{"Acl": "hdr(host) -i v2.new"}},
		{method: "PUT", path: "/api/services/%2Fgrp%2Fapp", body: `{"acl":"hdr(host) -i escaped.example.com"}`, code: 200,
			fields: map[string]string{"Id": "/grp/app", "Acl": "hdr(host) -i escaped.example.com"}},
		{method: "PUT", path: "/api/services/grp/plain", body: `{"Id":"/grp/plain","Acl":"path_beg /plain"}`, code: 200,
			fields: map[string]string{"Id": "/grp/plain"}},
		{method: "GET", path: "/api/services", code: 200, fields: map[string]string{
			"#": "4", "/grp/app.Acl": "hdr(host) -i escaped.example.com", "/grp/v2.Acl": "hdr(host) -i v2.new",
			"/grp/plain.Acl": "path_beg /plain"}},
		{method: "DELETE", path: "/api/services/%2Fgrp%2Fapp", code: 200, fields: map[string]string{"#": "0"}},
		{method: "DELETE", path: "/api/services/grp/app", code: 404, fields: map[string]string{"error": "no rule for app /grp/app"}},
		{method: "DELETE", path: "/api/services/grp/plain", code: 200},
		{method: "GET", path: "/api/services", code: 200, fields: map[string]string{"#": "2", "!/grp/app": ""}},

		// bamboo: bad requests name the field at fault.
		{method: "POST", path: "/api/services", body: `{"id":`, code: 400, text: "request body: not a JSON service"},
		{method: "POST", path: "/api/services", body: `["/grp/app"]`, code: 400, text: "request body: not a JSON service"},
		{method: "POST", path: "/api/services", code: 400, text: "request body: not a JSON service"},
		{method: "POST", path: "/api/services", body: `{"acl":"hdr(host) -i x"}`, code: 400, text: "id: missing"},
		{method: "POST", path: "/api/services", body: `{"id":"/"}`, code: 400, text: "id: / is not an app id"},
		{method: "POST", path: "/api/services", body: `{"id":"/grp/a b","acl":"x"}`, code: 400, text: "id: "},
		{method: "POST", path: "/api/services", body: `{"id":"/grp/app"}`, code: 400, fields: map[string]string{
			"error": "acl: missing for /grp/app (to remove a rule, DELETE /api/services/grp/app)"}},
		{method: "POST", path: "/api/services", body: `{"id":"/grp/app","acl":"hdr(host) -i x\nlisten evil"}`, code: 400,
			fields: map[string]string{"error": "acl: \"hdr(host) -i x\\nlisten evil\" contains a line break or control character"}},
		{method: "POST", path: "/api/services", body: `{"id":"/grp/app","Config":{"Acl":"x","Weight":"3"}}`, code: 400,
			text: "Config.Weight: unsupported"},
		{method: "POST", path: "/api/services", body: `{"id":"/grp/app","acl":"bogus(host) -i x"}`, code: 400,
			fields: map[string]string{"error": "rule of /grp/app: invalid rule: acl \"bogus(host) -i x\" of /grp/app: HAProxy rejects it: unknown fetch method 'bogus'"}},
		{method: "PUT", path: "/api/services/grp/app", body: `{"id":"/grp/other","acl":"x"}`, code: 400,
			fields: map[string]string{"error": "id: the body names /grp/other but the URL names /grp/app"}},
		{method: "POST", path: "/api/services", body: `{"id":"/grp/big","acl":"` + strings.Repeat("a", maxRuleBody) + `"}`, code: 400,
			text: "request body: larger than"},
		{method: "PATCH", path: "/api/services", code: 405},
		{method: "GET", path: "/api/services/grp/app", code: 405},
		{method: "POST", path: "/api/services/grp/app", code: 405},

		// bamboo: the template data, from the registry snapshot and its rules.
		{method: "GET", path: "/api/state", code: 200, fields: map[string]string{
			"Apps.#": "3", "Apps.2.Id": "/shop/web", "Apps.2.EscapedId": "::shop::web", "Apps.2.SplitId.#": "3",
			"Apps.2.SplitId.2": "web", "Apps.2.ServicePort": "10080", "Apps.2.ServicePorts.0": "10080",
			"Apps.2.Labels.HAPROXY_GROUP": "internal",
			"Apps.2.Tasks.#":              "3", "Apps.2.Tasks.0.Host": "10.0.0.1", "Apps.2.Tasks.0.Port": "31001", "Apps.2.Tasks.0.Alive": "true",
			"Apps.2.Tasks.1.Alive": "false", "Apps.2.Tasks.2.State": "TASK_KILLING",
			"Apps.1.Id": "/nginx-green", "Apps.1.HealthCheckPath": "/",
			"Services.#": "1", "Services./shop/web.Acl": "hdr(host) -i shop.internal",
		}},
		{method: "DELETE", path: "/api/state", code: 405},

		{method: "GET", path: "/nope", code: 404, fields: map[string]string{"error": "no such endpoint: /nope"}},
	}
	for _, st := range steps {
		doStep(t, f.base, st)
	}
	if n := f.resync.count(); n != 1 {
		t.Errorf("resyncs = %d, want 1", n)
	}
	if acl, ok := f.rules.get("/grp/v2"); !ok || acl != "hdr(host) -i v2.new" {
		t.Errorf("rule of /grp/v2 in the store = %q %t, want the replaced ACL", acl, ok)
	}
	for _, id := range []string{"/grp/app", "/grp/plain", "/grp/big", "/grp/other"} {
		if acl, ok := f.rules.get(id); ok {
			t.Errorf("rule of %s in the store = %q, want none", id, acl)
		}
	}
}

// TestEndpointsWithoutFrontends: what answers when nothing is wired in.
func TestEndpointsWithoutFrontends(t *testing.T) {
	s := newServer(t, Config{}, fixtureRegistry(t))
	base := serveAPI(t, s, listenLoopback(t))
	for _, st := range []step{
		{method: "GET", path: "/v1/apps/shop/web", code: 200, fields: map[string]string{
			"id": "/shop/web", "tasks.#": "3", "!haproxy_labels": "", "!routes": "", "!dns_names": ""}},
		{method: "GET", path: "/v1/dns/records?name=web.marathon.mesos", code: 503, fields: map[string]string{
			"error": "the DNS server is not running: start lodestar with --dns-listen"}},
		{method: "GET", path: "/v1/dns/records", code: 503},
		{method: "POST", path: "/v1/resync", code: 503, text: "resync is not available"},
		{method: "GET", path: "/api/services", code: 503, fields: map[string]string{"error": "bamboo rules are off: start lodestar with --zk-rules"}},
		{method: "POST", path: "/api/services", body: `{"id":"/a","acl":"x"}`, code: 503, text: "--zk-rules"},
		{method: "PUT", path: "/api/services/a", body: `{"acl":"x"}`, code: 503, text: "--zk-rules"},
		{method: "DELETE", path: "/api/services/a", code: 503, text: "--zk-rules"},
		{method: "GET", path: "/api/state", code: 200, fields: map[string]string{"Apps.#": "3", "Services.#": "0"}},
		// Not mounted: 404.
		{method: "GET", path: "/v1/haproxy/config", code: 404},
		{method: "GET", path: "/_mlb_signal/hup", code: 404},
		{method: "GET", path: "/v1/axfr", code: 404},
	} {
		doStep(t, base, st)
	}
}

// TestEndpointsFailingFrontends: errors of the front ends answer 500 with their text.
func TestEndpointsFailingFrontends(t *testing.T) {
	s := newServer(t, Config{}, newRegistry(t))
	zkDown := errors.New("zk: could not connect to a server")
	s.SetFrontends(Frontends{
		Resync: &fakeResyncer{err: errors.New("marathon: GET /v2/apps: connection refused")},
		Rules:  &fakeRules{rules: map[string]string{}, err: zkDown},
	})
	base := serveAPI(t, s, listenLoopback(t))
	for _, st := range []step{
		{method: "POST", path: "/v1/resync", code: 500, fields: map[string]string{
			"error": "resync: marathon: GET /v2/apps: connection refused"}},
		{method: "GET", path: "/api/services", code: 500, fields: map[string]string{
			"error": "reading the rules: zk: could not connect to a server"}},
		{method: "POST", path: "/api/services", body: `{"id":"/a","acl":"x"}`, code: 500, fields: map[string]string{
			"error": "writing the rule of /a: zk: could not connect to a server"}},
		{method: "DELETE", path: "/api/services/a", code: 500, fields: map[string]string{
			"error": "deleting the rule of /a: zk: could not connect to a server"}},
		// An empty registry: no app, no rules.
		{method: "GET", path: "/v1/apps/a", code: 404},
		{method: "GET", path: "/api/state", code: 200, fields: map[string]string{"Apps.#": "0", "Services.#": "0"}},
	} {
		doStep(t, base, st)
	}
}

func TestRoutesJSONCopiesAndFillsServers(t *testing.T) {
	in := []Route{{Backend: "a_80"}}
	out := routesJSON(in)
	if out[0].Servers == nil || len(out[0].Servers) != 0 {
		t.Errorf("servers = %#v, want []", out[0].Servers)
	}
	if in[0].Servers != nil {
		t.Error("routesJSON changed the front end's routes")
	}
}

func TestAppID(t *testing.T) {
	for raw, want := range map[string]string{"shop/web": "/shop/web", "/shop/web": "/shop/web", "//shop/web": "/shop/web", "": "/"} {
		if got := appID(raw); got != want {
			t.Errorf("appID(%q) = %q, want %q", raw, got, want)
		}
	}
}
