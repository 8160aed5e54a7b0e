package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// statusRouting is a Routing with fixed answers.
type statusRouting struct {
	routes  map[string][]Route
	summary RoutingSummary
}

func (f statusRouting) AppRoutes(appID string) []Route { return f.routes[appID] }
func (f statusRouting) AppLabels(appID string) any     { return nil }
func (f statusRouting) Summary() RoutingSummary        { return f.summary }

// statusDNS is a DNSRecords with fixed names per app.
type statusDNS map[string][]string

func (f statusDNS) Records(name string) []DNSRecord { return nil }
func (f statusDNS) AppNames(appID string) []string  { return f[appID] }

// shopRouting routes /shop/web on a vhost and leaves /bad/app out with HAProxy's alert.
func shopRouting() statusRouting {
	at := time.Now().Add(-42 * time.Second)
	return statusRouting{
		routes: map[string][]Route{
			"/shop/web": {{
				Port: 0, ServicePort: 10080, Mode: "http", Backend: "shop_web_10080",
				VHosts: []string{"shop.example.com", "the-checkout-service-with-a-long-name.eu-west-1.shop.example.com"}, Path: "/cart",
				Servers: []RouteServer{
					{Slot: "s1", TaskID: "web.1", Address: "10.0.0.1:31001", State: "ready"},
					{Slot: "s2", TaskID: "web.2", Address: "10.0.0.2:31002", State: "maint"},
					{Slot: "s3", TaskID: "web.3", Address: "10.0.0.3:31003", State: "drain"},
				},
			}},
		},
		summary: RoutingSummary{
			LastApply:  &Apply{Kind: "runtime", Reason: "task web.3 draining", At: at, Duration: 3 * time.Millisecond},
			LastReload: &Apply{Kind: "reload", Reason: "app /shop/web added", At: at.Add(-time.Hour), Duration: 120 * time.Millisecond},
			Reloads:    7,
			Excluded: []Excluded{{
				AppID: "/bad/app", Port: 0, Reason: `HAPROXY_0_BACKEND_HEAD: haproxy -c rejected the backend`,
				HAProxy: []string{`[ALERT] parsing [x.cfg:12] : unknown keyword 'bogus<b>' in 'backend' section`},
			}},
			Warnings: []Warning{{
				AppID: "/a/evil", Port: 0,
				Message: "vhost shop.example.com is taken by /shop/web (it holds it in the running configuration); not routed to this app",
			}},
		},
	}
}

// statusServer is a server over the fixture registry with the status page mounted.
func statusServer(t *testing.T, reg Registry, front Frontends) *Server {
	t.Helper()
	s := newServer(t, Config{Version: "1.2.3-test"}, reg)
	s.SetFrontends(front)
	s.MountStatusPage()
	return s
}

// statusGet requests the page and checks the response's headers.
func statusGet(t *testing.T, s *Server, target string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", target, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q, want text/html; charset=utf-8", target, ct)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'none'", target, csp)
	}
	return rec.Body.String()
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func mustNotContain(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(body, u) {
			t.Errorf("page contains %q", u)
		}
	}
}

func TestStatusPage(t *testing.T) {
	reg := fixtureRegistry(t)
	reg.RegisterSource("marathon")
	reg.ReportSync("marathon", errors.New("GET http://marathon:8080/v2/apps: connection refused"))
	s := statusServer(t, reg, Frontends{
		Routing: shopRouting(),
		DNS:     statusDNS{"/shop/web": {"_web-shop._tcp.marathon.mesos.", "web-shop.marathon.mesos."}},
	})
	s.AddReadyCheck("first sync", reg.Synced)
	body := statusGet(t, s, "/")

	mustContain(t, body,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<noscript><meta http-equiv="refresh" content="5"></noscript>`,
		`<link rel="icon" href="data:,">`,
		"1.2.3-test",
		fmt.Sprintf("snapshot <strong>v%d</strong>", reg.Snapshot().Version),
		// Readiness: the check /readyz runs, failing on the marathon source.
		`<strong class="bad">not ready</strong>`, "<strong>first sync</strong>: waiting for the first sync of [marathon]",
		// Sources: file synced, marathon failing.
		`<strong>file</strong></td>`+"\n"+`<td data-label="State" class="ok">synced</td>`,
		`<strong>marathon</strong></td>`+"\n"+`<td data-label="State" class="bad">error</td>`,
		"connection refused", "s ago",
		// HAProxy summary.
		`<td data-label="Kind" class="ok">runtime</td>`, "task web.3 draining", "app /shop/web added",
		"3ms", "120ms", "<p>7 reloads since start.</p>",
		// The app left out, with its reason and HAProxy's alert escaped.
		`<a href="?q=%2fbad%2fapp"><code>/bad/app</code></a>`, "HAPROXY_0_BACKEND_HEAD: haproxy -c rejected the backend",
		"unknown keyword &#39;bogus&lt;b&gt;&#39; in &#39;backend&#39; section",
		// The route an app did not get, naming the owner.
		"<h3>Warnings (1)</h3>", `<a href="?q=%2fa%2fevil"><code>/a/evil</code></a></td>`+"\n"+`<td data-label="Port">#0</td>`,
		"vhost shop.example.com is taken by /shop/web (it holds it in the running configuration); not routed to this app",
		// The app, its route and its servers coloured by health.
		`<code>/shop/web</code>`, "instances 3 · tasks 3 · running 2 ·", `<span class="warn">in service 1</span>`,
		`<strong>10080</strong>`, `<code class="vhost">shop.example.com</code>`, "path <code>/cart</code>",
		"<code>shop_web_10080</code>",
		`<li class="ok"><code>10.0.0.1:31001</code> ready · healthy <span class="mute">web.1</span></li>`,
		`<li class="bad"><code>10.0.0.2:31002</code> maint · health check failing <span class="mute">web.2</span></li>`,
		`<li class="warn"><code>10.0.0.3:31003</code> drain · TASK_KILLING: draining <span class="mute">web.3</span></li>`,
		"2 tasks out of service", `<li class="warn"><code>web.3</code> TASK_KILLING: TASK_KILLING: draining</li>`,
		// DNS names.
		"DNS: <code>_web-shop._tcp.marathon.mesos.</code> <code>web-shop.marathon.mesos.</code>",
		// The fixture apps HAProxy does not route here.
		`<code>/nginx-blue</code>`, `<code>/nginx-green</code>`, "HAProxy does not serve this app",
	)
	mustNotContain(t, body, "Showing the first", `<strong class="ok">ready</strong>`)
	// Apps are sorted by id.
	if b, g, w := strings.Index(body, "<code>/nginx-blue</code>"), strings.Index(body, "<code>/nginx-green</code>"),
		strings.Index(body, "<code>/shop/web</code>"); !(b < g && g < w) {
		t.Errorf("apps out of id order: nginx-blue at %d, nginx-green at %d, shop/web at %d", b, g, w)
	}

	reg.ReportSync("marathon", nil)
	body = statusGet(t, s, "/")
	mustContain(t, body, `<strong class="ok">ready</strong>`,
		`<strong>marathon</strong></td>`+"\n"+`<td data-label="State" class="ok">synced</td>`)
	mustNotContain(t, body, "not ready", "connection refused")
}

func TestStatusPageFilter(t *testing.T) {
	s := statusServer(t, fixtureRegistry(t), Frontends{Routing: shopRouting()})
	for _, q := range []string{"shop", "SHOP/W", "%20shop%20"} {
		body := statusGet(t, s, "/?q="+q)
		mustContain(t, body, "<code>/shop/web</code>", "1 of 3 match", `value="`+strings.TrimSpace(strings.ReplaceAll(q, "%20", " "))+`"`)
		mustNotContain(t, body, "/nginx-green", "/nginx-blue", "/bad/app")
	}
	body := statusGet(t, s, "/?q=nginx")
	mustContain(t, body, "<code>/nginx-blue</code>", "<code>/nginx-green</code>", "2 of 3 match")
	mustNotContain(t, body, "<code>/shop/web</code>")

	body = statusGet(t, s, "/?q=bad")
	mustContain(t, body, "<code>/bad/app</code>", "0 of 3 match", "No app id contains “bad”.")

	body = statusGet(t, s, "/?q=nothing-like-it")
	mustContain(t, body, "<h3>Apps left out</h3>\n", `<p class="ok">None.</p>`)
}

func TestStatusPageEscapesHostileInput(t *testing.T) {
	const evil = `/x"><script>alert(1)</script><img src=x onerror=alert(2)>`
	reg := newRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := reg.Send(ctx, discovery.UpsertApp{App: &discovery.App{
		ID: evil, Instances: 1, Network: discovery.NetworkHost,
		Ports: []discovery.Port{{ServicePort: 10001, Protocol: "tcp"}},
		Tasks: []*discovery.Task{{ID: "t<b>1", Host: "127.0.0.1", State: "<i>RUNNING", HostPorts: []int{31000}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.WaitFor(ctx, func(s *discovery.Snapshot) bool { return s.Apps.Len() == 1 }); err != nil {
		t.Fatal(err)
	}
	reg.ReportSync(`<script>src</script>`, errors.New(`<script>err</script>`))
	s := statusServer(t, reg, Frontends{
		Routing: statusRouting{
			routes: map[string][]Route{evil: {{ServicePort: 10001, Mode: "<u>", Backend: "<b>", VHosts: []string{"<v>"},
				Rule: `hdr(host) -i "<r>"`, Servers: []RouteServer{{TaskID: "t<b>1", Address: "<a>", State: "<s>"}}}}},
			summary: RoutingSummary{Unhealthy: "<script>down</script>", LastApply: &Apply{Kind: "<k>", Reason: "<script>why</script>"},
				Excluded: []Excluded{{AppID: evil, Port: -1, Reason: "<r>", HAProxy: []string{"</pre><script>alert(3)</script>"}}},
				Warnings: []Warning{{AppID: evil, Port: 0, Message: "vhost <v> is taken by <script>alert(5)</script>"}}},
		},
		DNS: statusDNS{evil: {"<script>name</script>"}},
	})
	for _, target := range []string{"/", "/?q=" + url.QueryEscape(evil), "/?q=" + url.QueryEscape(`"><script>alert(4)</script>`)} {
		body := statusGet(t, s, target)
		if n := strings.Count(body, "<script"); n != 1 {
			t.Errorf("GET %s: %d <script elements, want only the page's own", target, n)
		}
		mustNotContain(t, body, "<img", "<b>", "<i>", "<u>", "<a>", "<s>", "<v>", "<r>")
	}
	body := statusGet(t, s, "/")
	mustContain(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;down&lt;/script&gt;",
		"&lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;", "whole app", "vhost &lt;v&gt; is taken by &lt;script&gt;alert(5)&lt;/script&gt;")
}

func TestStatusPageWithoutFrontends(t *testing.T) {
	reg := fixtureRegistry(t)
	s := statusServer(t, reg, Frontends{})
	body := statusGet(t, s, "/")
	mustContain(t, body, "The HAProxy front end is not running.", "<code>/shop/web</code>",
		// Without HAProxy the app's ports show the task endpoints serving them.
		`<strong>10080</strong> <span class="mute">#0 tcp</span>`,
		`<li class="ok"><code>10.0.0.1:31001</code> in · healthy <span class="mute">web.1</span></li>`,
		`<li class="bad"><code>10.0.0.2:31002</code> out · health check failing <span class="mute">web.2</span></li>`,
		`<li class="warn"><code>10.0.0.3:31003</code> draining · TASK_KILLING: draining <span class="mute">web.3</span></li>`,
		`<strong class="ok">ready</strong>`)
	mustNotContain(t, body, "DNS:", "Apps left out", "HAProxy does not serve")
}

func TestStatusPageEmptyRegistry(t *testing.T) {
	s := statusServer(t, newRegistry(t), Frontends{})
	body := statusGet(t, s, "/")
	mustContain(t, body, "snapshot <strong>v0</strong>", "No sources registered.", "No apps.", "0 apps · 0 tasks")
}

func TestStatusPageLimit(t *testing.T) {
	reg := newRegistry(t)
	const n = statusPageLimit + 20
	apps := make([]*discovery.App, n)
	for i := range apps {
		apps[i] = &discovery.App{ID: fmt.Sprintf("/many/app-%04d", i), Instances: 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := reg.Send(ctx, discovery.ReplaceApps{Apps: apps}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.WaitFor(ctx, func(s *discovery.Snapshot) bool { return s.Apps.Len() == n }); err != nil {
		t.Fatal(err)
	}
	s := statusServer(t, reg, Frontends{})
	body := statusGet(t, s, "/")
	if got := strings.Count(body, `<article class="app">`); got != statusPageLimit {
		t.Errorf("%d apps rendered, want %d", got, statusPageLimit)
	}
	mustContain(t, body, fmt.Sprintf("Showing the first %d of %d apps", statusPageLimit, n),
		"/many/app-0000", fmt.Sprintf("/many/app-%04d<", statusPageLimit-1))
	mustNotContain(t, body, fmt.Sprintf("/many/app-%04d<", statusPageLimit))

	body = statusGet(t, s, "/?q=app-051")
	if got := strings.Count(body, `<article class="app">`); got != 10 {
		t.Errorf("?q=app-051: %d apps rendered, want 10", got)
	}
	mustNotContain(t, body, "Showing the first")
}

func TestStatusPageRefresh(t *testing.T) {
	s := statusServer(t, fixtureRegistry(t), Frontends{})
	body := statusGet(t, s, "/?q=shop&refresh=off")
	mustNotContain(t, body, "<script", "http-equiv")
	mustContain(t, body, "refresh paused", `<a href="?q=shop">resume</a>`,
		`<input type="hidden" name="refresh" value="off">`, `<a href="?q=%2fshop%2fweb&amp;refresh=off">`)
	body = statusGet(t, s, "/?q=shop")
	mustContain(t, body, "<script>", `http-equiv="refresh"`, `<a href="?q=shop&amp;refresh=off">pause</a>`)
}

// TestStatusPageCSP checks that the Content-Security-Policy allows exactly the inline style
// and script the page carries: a browser would refuse them otherwise.
func TestStatusPageCSP(t *testing.T) {
	s := statusServer(t, fixtureRegistry(t), Frontends{})
	rec := httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body, csp := rec.Body.String(), rec.Header().Get("Content-Security-Policy")
	for _, tag := range []string{"style", "script"} {
		m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(body, -1)
		if len(m) != 1 {
			t.Fatalf("%d <%s> elements, want 1", len(m), tag)
		}
		if want := tag + "-src '" + cspHash(m[0][1]) + "'"; !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
}

func TestStatusPageMethods(t *testing.T) {
	s := statusServer(t, fixtureRegistry(t), Frontends{})
	s.MountStatusPage() // a second mount changes nothing
	rec := httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
		rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD / = %d, %d body bytes, headers %v", rec.Code, rec.Body.Len(), rec.Header())
	}
	for method, want := range map[string]int{http.MethodPost: http.StatusMethodNotAllowed, http.MethodDelete: http.StatusMethodNotAllowed} {
		rec := httptest.NewRecorder()
		s.Router().ServeHTTP(rec, httptest.NewRequest(method, "/", nil))
		if rec.Code != want {
			t.Errorf("%s / = %d, want %d", method, rec.Code, want)
		}
	}
	rec = httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/index.html", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /index.html = %d, want 404 (the page is only at /)", rec.Code)
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now.Add(time.Second), "just now"},
		{now, "0s ago"},
		{now.Add(-3*time.Second - 900*time.Millisecond), "3s ago"},
		{now.Add(-59 * time.Second), "59s ago"},
		{now.Add(-4*time.Minute - 10*time.Second), "4m10s ago"},
		{now.Add(-2*time.Hour - 5*time.Minute - 59*time.Second), "2h5m ago"},
		{now.Add(-76 * time.Hour), "3d4h ago"},
	} {
		if got := ago(now, tc.t); got != tc.want {
			t.Errorf("ago(%v) = %q, want %q", now.Sub(tc.t), got, tc.want)
		}
	}
}

// BenchmarkStatusPage renders the page over 10,000 apps of 3 tasks each: the first
// statusPageLimit apps are rendered, every app is matched against the (empty) filter.
func BenchmarkStatusPage(b *testing.B) {
	reg := discovery.NewRegistry(discovery.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go reg.Run(ctx)
	apps := make([]*discovery.App, 10000)
	for i := range apps {
		a := &discovery.App{ID: fmt.Sprintf("/team-%02d/app-%05d", i%50, i), Instances: 3, Network: discovery.NetworkHost,
			Ports: []discovery.Port{{ServicePort: 10000 + i, Protocol: "tcp"}}}
		for j := range 3 {
			a.Tasks = append(a.Tasks, &discovery.Task{ID: fmt.Sprintf("app-%05d.%d", i, j), Host: fmt.Sprintf("10.0.%d.%d", j, i%250),
				State: discovery.StateRunning, HostPorts: []int{31000 + j}})
		}
		apps[i] = a
	}
	if err := reg.Send(ctx, discovery.ReplaceApps{Apps: apps}); err != nil {
		b.Fatal(err)
	}
	if _, err := reg.WaitFor(ctx, func(s *discovery.Snapshot) bool { return s.Apps.Len() == len(apps) }); err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Logger: slog.New(slog.DiscardHandler)}, reg)
	if err != nil {
		b.Fatal(err)
	}
	s.MountStatusPage()
	for _, target := range []string{"/", "/?q=app-0999"} {
		b.Run(target, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.Router().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s = %d", target, rec.Code)
				}
				b.SetBytes(int64(rec.Body.Len()))
			}
		})
	}
}

func TestApplyView(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if v := applyViewOf(nil, now); v != nil {
		t.Errorf("applyViewOf(nil) = %+v, want nil", v)
	}
	for _, tc := range []struct {
		in                    Apply
		class, duration, when string
	}{
		{Apply{Kind: "reload", At: now.Add(-90 * time.Second), Duration: 1234567 * time.Microsecond}, "ok", "1.235s", "1m30s ago"},
		{Apply{Kind: "runtime", At: now, Duration: 850 * time.Microsecond}, "ok", "850µs", "0s ago"},
		{Apply{Kind: "failed", At: now, Error: "haproxy -c: [ALERT] line 3"}, "bad", "0s", "0s ago"},
		{Apply{Kind: "write", At: now, Error: "rename: permission denied"}, "bad", "0s", "0s ago"},
	} {
		v := applyViewOf(&tc.in, now)
		if v.Class != tc.class || v.Duration != tc.duration || v.When != tc.when || v.Error != tc.in.Error {
			t.Errorf("applyViewOf(%+v) = %+v, want class %s, duration %s, when %s", tc.in, v, tc.class, tc.duration, tc.when)
		}
	}
}
