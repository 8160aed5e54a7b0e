package haproxy

// Traffic tests: every label of LABELS.md that changes how requests are routed or answered is
// put on apps, built and rendered by Build and Render, and run by a real HAProxy (under
// Process) in front of real Go HTTP servers on 127.0.0.1. Each test asserts on what a client
// sees, so a label whose generated configuration HAProxy accepts but does not act on fails
// here. On failure the test logs the app-owned lines of the rendered configuration.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
	"github.com/lodestar-lb/lodestar/templates"
)

// trafficLB is one HAProxy running a configuration built from apps.
type trafficLB struct {
	t        *testing.T
	cfg      Config
	reg      *testRegistry
	model    *Model
	rendered *Rendered
	proc     *Process
	admin    *RuntimeClient
	// httpURL and httpsURL are the shared frontends' base URLs, without a trailing slash.
	httpURL, httpsURL string
}

// startTraffic builds apps under a configuration that binds every frontend on a free
// 127.0.0.1 port, renders it, and runs it in HAProxy until the test ends. A label that was
// ignored (a warning) or an app left out fails the test: every label here must take effect.
func startTraffic(t *testing.T, apps ...*discovery.App) *trafficLB {
	t.Helper()
	return startTrafficWith(t, nil, apps...)
}

// startTrafficWith is startTraffic with the build configuration changed by edit first.
func startTrafficWith(t *testing.T, edit func(*Config), apps ...*discovery.App) *trafficLB {
	t.Helper()
	bin := haproxytest.Bin(t)
	dir := haproxytest.SocketDir(t)
	bind := func() string { return "127.0.0.1:" + strconv.Itoa(haproxytest.FreePort(t)) }
	cfg := Config{
		Groups:    []string{"*"},
		Templates: templates.Builtin(),
		RunDir:    dir,
		HTTPBind:  bind(), HTTPSBind: bind(), StatsBind: bind(), AppIDBind: bind(),
		// An old worker kept alive by a test's open connection goes away soon after a reload.
		HardStopAfter: 30 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	lb := &trafficLB{t: t, cfg: cfg, reg: newTestRegistry(t),
		httpURL: "http://" + cfg.HTTPBind, httpsURL: "https://" + cfg.HTTPSBind}
	lb.model = lb.build(nil, apps...)
	lb.rendered = render(t, lb.model)
	if _, err := EnsureSelfSignedCert(filepath.Join(dir, "default.pem")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "server-state"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lb.install(lb.rendered)

	log, logs := logtest.New()
	p, err := NewProcess(ProcessConfig{Bin: bin, ConfigPath: filepath.Join(dir, "haproxy.cfg"), RunDir: dir,
		Logger: log, StopTimeout: 5 * time.Second, RestartBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lb.proc = p
	lb.admin = NewRuntimeClient(lb.model.HeadInfo.StatsSockets[0])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after its context ended")
		}
		if t.Failed() {
			t.Logf("rendered app lines:\n%s", lb.appLines())
			t.Logf("haproxy log:\n%s", logs.Tail(4000))
		}
	})
	select {
	case <-p.Started():
	case err := <-done:
		t.Fatalf("Run returned before HAProxy started: %v\n%s\nrendered app lines:\n%s", err, logs.Tail(3000), lb.appLines())
	case <-time.After(20 * time.Second):
		t.Fatalf("HAProxy did not start\n%s", logs.Tail(3000))
	}
	haproxytest.WaitFor(t, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", cfg.HTTPBind, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "HAProxy listening on "+cfg.HTTPBind)
	return lb
}

// build runs apps through the registry (which derives task endpoints and eligibility) and
// builds the model.
func (lb *trafficLB) build(prev *Model, apps ...*discovery.App) *Model {
	lb.t.Helper()
	m := Build(lb.reg.replace(lb.t, apps...), lb.cfg, prev)
	if m.Err != nil {
		lb.t.Fatalf("Build: %v", m.Err)
	}
	if len(m.Excluded) > 0 {
		lb.t.Fatalf("Build left out %v", excluded(m))
	}
	for _, w := range m.Warnings {
		lb.t.Errorf("Build warned: %s port %d: %s", w.AppID, w.Port, w.Message)
	}
	return m
}

// install writes the map files and the configuration HAProxy loads.
func (lb *trafficLB) install(r *Rendered) {
	lb.t.Helper()
	for path, data := range r.Maps {
		if err := WriteFileAtomic(path, data, 0o644); err != nil {
			lb.t.Fatal(err)
		}
	}
	if err := WriteFileAtomic(filepath.Join(lb.cfg.RunDir, "haproxy.cfg"), r.Config, 0o644); err != nil {
		lb.t.Fatal(err)
	}
}

// appLines returns the numbered lines of the running configuration that an app emitted.
func (lb *trafficLB) appLines() string {
	var sb strings.Builder
	for i, l := range strings.Split(string(lb.rendered.Config), "\n") {
		if owner := lb.rendered.OwnerOf(i + 1); owner != "" {
			fmt.Fprintf(&sb, "%4d %-14s %s\n", i+1, owner, l)
		}
	}
	return sb.String()
}

// statRows returns the `show stat` rows of backend's servers, by server address.
func (lb *trafficLB) statRows(backend string) map[string]StatRow {
	lb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := lb.admin.ShowStat(ctx)
	if err != nil {
		lb.t.Fatal(err)
	}
	out := map[string]StatRow{}
	for _, r := range rows {
		if r.Proxy == backend && r.Server != "BACKEND" {
			out[r.Addr] = r
		}
	}
	return out
}

// trafficApp is an app with one port (service port servicePort, frontend bound to 127.0.0.1)
// and one running task on 127.0.0.1 per backend port.
func trafficApp(id string, servicePort int, labels map[string]string, backendPorts ...int) *discovery.App {
	opts := []appOpt{withPorts(servicePort), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"), withInstances(len(backendPorts))}
	for k, v := range labels {
		opts = append(opts, withLabel(k, v))
	}
	for i, p := range backendPorts {
		opts = append(opts, withTasks(task(fmt.Sprintf("%s.%d", strings.TrimPrefix(id, "/"), i+1), host("127.0.0.1"), ports(p))))
	}
	return app(id, opts...)
}

// echoBackend is a Go HTTP server on 127.0.0.1 that says who it is and what it saw, in
// headers: X-Backend-Id, X-Seen-Uri (path and query), X-Seen-Host and X-Seen-Xff
// (X-Forwarded-For). GET /redirect answers 302 with "Location: /foo", GET /redirect-abs with
// "Location: http://<Host>/foo", and GET /redirect-away with "Location: http://elsewhere.test/foo".
func echoBackend(t *testing.T, id string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Backend-Id", id)
		h.Set("X-Seen-Uri", r.URL.RequestURI())
		h.Set("X-Seen-Host", r.Host)
		h.Set("X-Seen-Xff", r.Header.Get("X-Forwarded-For"))
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "/foo", http.StatusFound)
		case "/redirect-abs":
			h.Set("Location", "http://"+r.Host+"/foo")
			w.WriteHeader(http.StatusFound)
		case "/redirect-away":
			h.Set("Location", "http://elsewhere.test/foo")
			w.WriteHeader(http.StatusFound)
		default:
			fmt.Fprintln(w, id)
		}
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr).Port
}

// trafficReq is one request sent through HAProxy on a fresh connection.
type trafficReq struct {
	url string
	// host is the Host header ("" keeps the URL's), sni the TLS server name.
	host, sni string
	// from is the client's source address ("" lets the kernel choose 127.0.0.1).
	from   string
	header http.Header
}

// trafficResp is what the client saw. Redirects are not followed.
type trafficResp struct {
	code   int
	header http.Header
	body   string
}

// id is the answering backend's id.
func (r trafficResp) id() string { return r.header.Get("X-Backend-Id") }

func (r trafficResp) String() string {
	return fmt.Sprintf("%d backend=%q location=%q body=%q", r.code, r.id(), r.header.Get("Location"), strings.TrimSpace(r.body))
}

func trySend(q trafficReq) (trafficResp, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if q.from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(q.from)}
	}
	tr := &http.Transport{
		DialContext:       d.DialContext,
		TLSClientConfig:   &tls.Config{ServerName: q.sni, InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(http.MethodGet, q.url, nil)
	if err != nil {
		return trafficResp{}, err
	}
	if q.host != "" {
		req.Host = q.host
	}
	for k, vs := range q.header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return trafficResp{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return trafficResp{code: resp.StatusCode, header: resp.Header, body: string(body)}, err
}

func send(t *testing.T, q trafficReq) trafficResp {
	t.Helper()
	r, err := trySend(q)
	if err != nil {
		t.Fatalf("GET %s (Host %q, SNI %q, from %q): %v", q.url, q.host, q.sni, q.from, err)
	}
	return r
}

// expectBackend checks that q is answered with wantCode by backend id; id "" means HAProxy
// answered itself (401, 403, 503, …).
func expectBackend(t *testing.T, q trafficReq, id string, wantCode int) {
	t.Helper()
	r := send(t, q)
	if r.code != wantCode || r.id() != id {
		t.Errorf("GET %s (Host %q, SNI %q, from %q): %s, want %d from %q", q.url, q.host, q.sni, q.from, r, wantCode, id)
	}
}

func servicePortURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// TestTrafficVHost: HAPROXY_{n}_VHOST routes by Host header on the shared HTTP frontend; the
// comparison ignores case and a port, every name of a comma-separated list routes, and an
// unknown host reaches no app.
func TestTrafficVHost(t *testing.T) {
	t.Parallel()
	alpha, beta := haproxytest.BackendNamed(t, "alpha"), haproxytest.BackendNamed(t, "beta")
	alphaPort := haproxytest.FreePort(t)
	lb := startTraffic(t,
		trafficApp("/alpha", alphaPort, map[string]string{"HAPROXY_0_VHOST": "alpha.test, WWW.Alpha.test"}, alpha.Port),
		trafficApp("/beta", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "beta.test"}, beta.Port))
	for _, c := range []struct {
		host, id string
		code     int
	}{
		{"alpha.test", "alpha", 200},
		{"www.alpha.test", "alpha", 200},
		{"ALPHA.TEST:80", "alpha", 200},
		{"beta.test", "beta", 200},
		{"gamma.test", "", 503},
		{"alpha.test.evil", "", 503},
	} {
		expectBackend(t, trafficReq{url: lb.httpURL + "/", host: c.host}, c.id, c.code)
	}
	// The app's own frontend on its service port serves it whatever the host.
	expectBackend(t, trafficReq{url: servicePortURL(alphaPort) + "/", host: "anything.test"}, "alpha", 200)
}

// TestTrafficSNI: HAPROXY_{n}_VHOST routes by the TLS server name on the shared HTTPS
// frontend; the SNI decides, not the Host header.
func TestTrafficSNI(t *testing.T) {
	t.Parallel()
	alpha, beta := haproxytest.BackendNamed(t, "alpha"), haproxytest.BackendNamed(t, "beta")
	lb := startTraffic(t,
		trafficApp("/alpha", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "alpha.test,www.alpha.test"}, alpha.Port),
		trafficApp("/beta", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "beta.test"}, beta.Port))
	for _, c := range []struct {
		sni, host, id string
		code          int
	}{
		{"alpha.test", "alpha.test", "alpha", 200},
		{"www.alpha.test", "www.alpha.test", "alpha", 200},
		{"beta.test", "beta.test", "beta", 200},
		{"beta.test", "alpha.test", "beta", 200},
		{"gamma.test", "gamma.test", "", 503},
	} {
		expectBackend(t, trafficReq{url: lb.httpsURL + "/", sni: c.sni, host: c.host}, c.id, c.code)
	}
}

// TestTrafficPath: HAPROXY_{n}_PATH sends the prefix to one app and the rest of the same vhost
// to another, on both shared frontends.
func TestTrafficPath(t *testing.T) {
	t.Parallel()
	api, web := haproxytest.BackendNamed(t, "api"), haproxytest.BackendNamed(t, "web")
	lb := startTraffic(t,
		trafficApp("/shop/api", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "shop.test", "HAPROXY_0_PATH": "/api"}, api.Port),
		trafficApp("/shop/web", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "shop.test"}, web.Port))
	for _, base := range []string{lb.httpURL, lb.httpsURL} {
		for _, c := range []struct{ path, id string }{
			{"/api/items?x=1", "api"},
			{"/api", "api"},
			{"/", "web"},
			{"/catalog/api", "web"},
		} {
			expectBackend(t, trafficReq{url: base + c.path, host: "shop.test", sni: "shop.test"}, c.id, 200)
		}
	}
	// Another host with the same path reaches neither.
	expectBackend(t, trafficReq{url: lb.httpURL + "/api/items", host: "other.test"}, "", 503)
}

// TestTrafficTCPMode: HAPROXY_{n}_MODE=tcp makes the service port's frontend a TCP proxy:
// bytes pass through unparsed (no X-Forwarded-For is added, which http mode's backend options
// do), and one connection carries several requests to the same backend.
func TestTrafficTCPMode(t *testing.T) {
	t.Parallel()
	rawPort := echoBackend(t, "raw")
	svcPort := haproxytest.FreePort(t)
	lb := startTraffic(t, trafficApp("/raw", svcPort, map[string]string{"HAPROXY_0_MODE": "tcp"}, rawPort))
	if f := lb.model.Frontend(backendName("/raw", svcPort)); f == nil || f.Mode != ModeTCP {
		t.Fatalf("frontend %+v, want mode tcp", f)
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(svcPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 {
		fmt.Fprintf(c, "GET /round/%d HTTP/1.1\r\nHost: raw.test\r\n\r\n", i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d over one TCP connection: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend-Id") != "raw" {
			t.Errorf("request %d: %d from %q", i, resp.StatusCode, resp.Header.Get("X-Backend-Id"))
		}
		if got, want := resp.Header.Get("X-Seen-Uri"), fmt.Sprintf("/round/%d", i); got != want {
			t.Errorf("request %d: backend saw %q, want %q", i, got, want)
		}
		if xff := resp.Header.Get("X-Seen-Xff"); xff != "" {
			t.Errorf("request %d: the backend saw X-Forwarded-For %q: HAProxy parsed HTTP on a tcp-mode port", i, xff)
		}
	}
}

// TestTrafficRedirectToHTTPS: HAPROXY_{n}_REDIRECT_TO_HTTPS answers plain HTTP for the vhost
// with a 301 to the same URL over https, serves the vhost over HTTPS, and leaves other vhosts
// alone.
func TestTrafficRedirectToHTTPS(t *testing.T) {
	t.Parallel()
	secure, plain := haproxytest.BackendNamed(t, "secure"), haproxytest.BackendNamed(t, "plain")
	lb := startTraffic(t,
		trafficApp("/secure", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "secure.test", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"}, secure.Port),
		trafficApp("/plain", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "plain.test"}, plain.Port))
	r := send(t, trafficReq{url: lb.httpURL + "/a/b?c=1", host: "secure.test"})
	if r.code != http.StatusMovedPermanently || r.header.Get("Location") != "https://secure.test/a/b?c=1" {
		t.Errorf("plain HTTP to secure.test: %s, want 301 to https://secure.test/a/b?c=1", r)
	}
	if secure.Requests() != 0 {
		t.Errorf("the redirected request reached the backend")
	}
	expectBackend(t, trafficReq{url: lb.httpsURL + "/a/b", sni: "secure.test", host: "secure.test"}, "secure", 200)
	expectBackend(t, trafficReq{url: lb.httpURL + "/a/b", host: "plain.test"}, "plain", 200)
}

// trafficAuthHash is the SHA-512 crypt(3) hash of "s3cret", made with
// `openssl passwd -6 -salt lodestarsalt s3cret`.
const trafficAuthHash = "$6$lodestarsalt$pTNB8r8E8IG9E/Ox3zVZMSm85..kd01at.pnEWSOvk.jAeqK6HFkynv1L841fHKKzgXn.5.xAuyzD2lwekMnV/"

// TestTrafficBasicAuth: HAPROXY_{n}_AUTH asks for credentials on both shared frontends, turns
// away wrong ones, and lets the right user through; other vhosts need none.
func TestTrafficBasicAuth(t *testing.T) {
	t.Parallel()
	private, open := haproxytest.BackendNamed(t, "private"), haproxytest.BackendNamed(t, "open")
	lb := startTraffic(t,
		trafficApp("/private", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "private.test",
			"HAPROXY_0_AUTH": "Private area:alice:" + trafficAuthHash}, private.Port),
		trafficApp("/open", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "open.test"}, open.Port))
	for _, base := range []string{lb.httpURL, lb.httpsURL} {
		q := trafficReq{url: base + "/", host: "private.test", sni: "private.test"}
		r := send(t, q)
		if r.code != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Basic realm="Private area"` {
			t.Errorf("%s without credentials: %s, WWW-Authenticate %q; want 401 with realm \"Private area\"", base, r, r.header.Get("WWW-Authenticate"))
		}
		q.header = basicAuth("alice", "wrong")
		expectBackend(t, q, "", http.StatusUnauthorized)
		q.header = basicAuth("bob", "s3cret")
		expectBackend(t, q, "", http.StatusUnauthorized)
		q.header = basicAuth("alice", "s3cret")
		expectBackend(t, q, "private", 200)
		expectBackend(t, trafficReq{url: base + "/", host: "open.test", sni: "open.test"}, "open", 200)
	}
}

// TestTrafficSticky: HAPROXY_{n}_STICKY sets the mesosphere_server_id cookie, and a request
// carrying it goes to that cookie's backend every time while requests without it are balanced.
func TestTrafficSticky(t *testing.T) {
	t.Parallel()
	var ports []int
	for _, id := range []string{"one", "two", "three"} {
		ports = append(ports, haproxytest.BackendNamed(t, id).Port)
	}
	lb := startTraffic(t, trafficApp("/sticky", haproxytest.FreePort(t),
		map[string]string{"HAPROXY_0_VHOST": "sticky.test", "HAPROXY_0_STICKY": "true"}, ports...))
	cookies := map[string]string{} // backend id → cookie
	for range 3 {
		r := send(t, trafficReq{url: lb.httpURL + "/", host: "sticky.test"})
		var cookie string
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == "mesosphere_server_id" {
				cookie = c.Name + "=" + c.Value
			}
		}
		if r.code != 200 || cookie == "" {
			t.Fatalf("first request: %s, Set-Cookie %q; want 200 with a mesosphere_server_id cookie", r, r.header.Values("Set-Cookie"))
		}
		cookies[r.id()] = cookie
	}
	if len(cookies) != 3 {
		t.Fatalf("three requests without a cookie reached %v; want all three backends (roundrobin)", cookies)
	}
	for id, cookie := range cookies {
		for range 4 {
			r := send(t, trafficReq{url: lb.httpURL + "/", host: "sticky.test", header: http.Header{"Cookie": {cookie}}})
			if r.code != 200 || r.id() != id {
				t.Errorf("with %s: %s, want backend %s", cookie, r, id)
			}
		}
	}
}

// TestTrafficNetworkAllowed: HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL lets only the listed
// sources in: an http-mode port answers others 403 (on the shared frontend and its own), a
// tcp-mode port closes their connection.
func TestTrafficNetworkAllowed(t *testing.T) {
	t.Parallel()
	web, raw := haproxytest.BackendNamed(t, "web"), haproxytest.BackendNamed(t, "raw")
	webPort, rawPort := haproxytest.FreePort(t), haproxytest.FreePort(t)
	lb := startTraffic(t,
		trafficApp("/web", webPort, map[string]string{"HAPROXY_0_VHOST": "acl.test",
			"HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "127.0.0.2/32 127.0.0.3"}, web.Port),
		trafficApp("/raw", rawPort, map[string]string{"HAPROXY_0_MODE": "tcp",
			"HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "127.0.0.2/32"}, raw.Port))
	for _, url := range []string{lb.httpURL + "/", servicePortURL(webPort) + "/"} {
		expectBackend(t, trafficReq{url: url, host: "acl.test", from: "127.0.0.1"}, "", http.StatusForbidden)
		expectBackend(t, trafficReq{url: url, host: "acl.test", from: "127.0.0.2"}, "web", 200)
		expectBackend(t, trafficReq{url: url, host: "acl.test", from: "127.0.0.3"}, "web", 200)
	}
	if web.Requests() != 4 {
		t.Errorf("the web backend served %d requests, want the 4 allowed ones", web.Requests())
	}
	if r, err := trySend(trafficReq{url: servicePortURL(rawPort) + "/", from: "127.0.0.1"}); err == nil {
		t.Errorf("tcp mode from 127.0.0.1: %s, want the connection rejected", r)
	}
	expectBackend(t, trafficReq{url: servicePortURL(rawPort) + "/", from: "127.0.0.2"}, "raw", 200)
	if raw.Requests() != 1 {
		t.Errorf("the raw backend served %d requests, want 1", raw.Requests())
	}
}

// TestTrafficProxyPassPath: HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH strips the prefix before
// the request reaches the backend (query kept) and sets the Host header to the vhost.
func TestTrafficProxyPassPath(t *testing.T) {
	t.Parallel()
	port := echoBackend(t, "pp")
	svcPort := haproxytest.FreePort(t)
	lb := startTraffic(t, trafficApp("/pp", svcPort, map[string]string{"HAPROXY_0_VHOST": "pp.test",
		"HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/api"}, port))
	for _, c := range []struct{ url, host, want string }{
		{lb.httpURL + "/api/x", "pp.test", "/x"},
		{lb.httpURL + "/api/x/y?q=1", "pp.test", "/x/y?q=1"},
		{lb.httpURL + "/api", "pp.test", "/"},
		{lb.httpURL + "/api/", "pp.test", "/"},
		{lb.httpURL + "/other", "pp.test", "/other"},
		{lb.httpURL + "/apiary", "pp.test", "/apiary"}, // only the whole prefix segment is stripped
		{servicePortURL(svcPort) + "/api/z", "whatever.test:8080", "/z"},
	} {
		r := send(t, trafficReq{url: c.url, host: c.host})
		if r.code != 200 || r.header.Get("X-Seen-Uri") != c.want || r.header.Get("X-Seen-Host") != "pp.test" {
			t.Errorf("GET %s (Host %q): %s, backend saw %q Host %q; want %q Host pp.test",
				c.url, c.host, r, r.header.Get("X-Seen-Uri"), r.header.Get("X-Seen-Host"), c.want)
		}
	}
}

// TestTrafficRevProxyPath: HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH puts the prefix in front of
// the path of a Location the backend answers, relative or absolute on the vhost; a Location to
// another host is left alone.
func TestTrafficRevProxyPath(t *testing.T) {
	t.Parallel()
	port := echoBackend(t, "rp")
	lb := startTraffic(t, trafficApp("/rp", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "rp.test",
		"HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/app/"}, port)) // a trailing slash must not give "//"
	for _, c := range []struct{ path, want string }{
		{"/redirect", "/app/foo"},
		{"/redirect-abs", "/app/foo"},
		{"/redirect-away", "http://elsewhere.test/foo"},
	} {
		r := send(t, trafficReq{url: lb.httpURL + c.path, host: "rp.test"})
		if r.code != http.StatusFound || r.id() != "rp" || r.header.Get("Location") != c.want {
			t.Errorf("GET %s: %s, want 302 from rp with Location %q", c.path, r, c.want)
		}
	}
}

// TestTrafficHSTS: HAPROXY_{n}_USE_HSTS adds Strict-Transport-Security to the app's responses
// and only to them.
func TestTrafficHSTS(t *testing.T) {
	t.Parallel()
	strict, plain := haproxytest.BackendNamed(t, "strict"), haproxytest.BackendNamed(t, "plain")
	lb := startTraffic(t,
		trafficApp("/strict", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "strict.test", "HAPROXY_0_USE_HSTS": "true"}, strict.Port),
		trafficApp("/plain", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "plain.test"}, plain.Port))
	for _, base := range []string{lb.httpsURL, lb.httpURL} {
		r := send(t, trafficReq{url: base + "/", sni: "strict.test", host: "strict.test"})
		if r.code != 200 || r.id() != "strict" || r.header.Get("Strict-Transport-Security") != "max-age=15768000" {
			t.Errorf("%s strict.test: %s, Strict-Transport-Security %q; want max-age=15768000", base, r, r.header.Get("Strict-Transport-Security"))
		}
		r = send(t, trafficReq{url: base + "/", sni: "plain.test", host: "plain.test"})
		if r.code != 200 || r.id() != "plain" || r.header.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s plain.test: %s, Strict-Transport-Security %q; want none", base, r, r.header.Get("Strict-Transport-Security"))
		}
	}
}

// trafficConn is one client connection kept open through HAProxy.
type trafficConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialTraffic(t *testing.T, addr string) *trafficConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &trafficConn{c: c, br: bufio.NewReader(c)}
}

// get sends one keep-alive request on the connection and returns the status and backend id.
func (tc *trafficConn) get(path string) (int, string, error) {
	_ = tc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(tc.c, "GET %s HTTP/1.1\r\nHost: shop.test\r\n\r\n", path); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(tc.br, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, resp.Header.Get("X-Backend-Id"), nil
}

// TestTrafficDeploymentGroupDrains: a blue/green deployment (HAPROXY_DEPLOYMENT_GROUP,
// _ALT_PORT, _COLOUR, _STARTED_AT, _TARGET_INSTANCES). Blue serves alone; green comes up with
// as many healthy tasks as the target, so both blue tasks are drained: the change is applied
// with the runtime API (no reload), HAProxy reports the blue servers DRAIN, new connections
// reach green only, and a connection already open to a blue task keeps being served. The same
// then holds after a reload onto the rendered configuration.
func TestTrafficDeploymentGroupDrains(t *testing.T) {
	t.Parallel()
	servicePort, altPort := haproxytest.FreePort(t), haproxytest.FreePort(t)
	backends := map[string]*haproxytest.HTTPBackend{}
	for _, id := range []string{"blue-1", "blue-2", "green-1", "green-2"} {
		backends[id] = haproxytest.BackendNamed(t, id)
	}
	deployment := func(colour, startedAt string, port int) *discovery.App {
		labels := map[string]string{
			"HAPROXY_DEPLOYMENT_GROUP":            "shop",
			"HAPROXY_DEPLOYMENT_ALT_PORT":         strconv.Itoa(altPort),
			"HAPROXY_DEPLOYMENT_COLOUR":           colour,
			"HAPROXY_DEPLOYMENT_STARTED_AT":       startedAt,
			"HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "2",
			"HAPROXY_0_PORT":                      strconv.Itoa(servicePort),
		}
		a := trafficApp("/shop-"+colour, port, labels, backends[colour+"-1"].Port, backends[colour+"-2"].Port)
		a.HealthChecks = []discovery.HealthCheck{{Protocol: "TCP", PortIndex: 0, IntervalSeconds: 2, TimeoutSeconds: 1, MaxConsecutiveFailures: 2}}
		for _, task := range a.Tasks {
			task.Health = []discovery.HealthResult{{Alive: true}}
		}
		return a
	}
	blue := deployment("blue", "2024-01-01T10:00:00", servicePort)
	lb := startTraffic(t, blue)
	be := backendName("/shop", servicePort)
	if lb.model.Backend(be) == nil {
		t.Fatalf("no backend %s; backends %v", be, backendNames(lb.model))
	}
	frontend := "127.0.0.1:" + strconv.Itoa(servicePort)
	served := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			code, id, err := dialTraffic(t, frontend).get("/")
			switch {
			case err != nil:
				got["error: "+err.Error()]++
			case code != 200:
				got[strconv.Itoa(code)]++
			default:
				got[id]++
			}
		}
		return got
	}
	if got := served(4); got["blue-1"] != 2 || got["blue-2"] != 2 {
		t.Fatalf("before green: %v, want blue-1 and blue-2 twice each", got)
	}
	open := dialTraffic(t, frontend)
	code, openID, err := open.get("/before")
	if err != nil || code != 200 || !strings.HasPrefix(openID, "blue-") {
		t.Fatalf("open connection: %d %q %v", code, openID, err)
	}

	green := deployment("green", "2024-01-02T10:00:00", altPort)
	next := lb.build(lb.model, blue, green)
	plan := MakePlan(lb.model, next)
	if plan.Reload {
		t.Errorf("adding green needs a reload (%s); want runtime commands only", plan.Reason)
	}
	var cmds []string
	for _, c := range plan.Runtime {
		cmds = append(cmds, c.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lb.admin.ExecAll(ctx, cmds); err != nil {
		t.Fatalf("runtime commands %q: %v", cmds, err)
	}
	checkDrained := func(when string, blueStatus ...string) {
		t.Helper()
		rows := lb.statRows(be)
		for _, id := range []string{"blue-1", "blue-2", "green-1", "green-2"} {
			r, ok := rows[backends[id].Addr]
			if !ok {
				t.Errorf("%s: no server for %s (%s) in backend %s", when, id, backends[id].Addr, be)
				continue
			}
			if strings.HasPrefix(id, "blue") {
				if st, _, _ := strings.Cut(r.Status, " "); !slices.Contains(blueStatus, st) {
					t.Errorf("%s: %s is %s/%s, want %v", when, id, r.Server, r.Status, blueStatus)
				}
				t.Logf("%s: %s is %s/%s check %s weight %d", when, id, r.Server, r.Status, r.CheckStatus, r.Weight)
			} else if !strings.HasPrefix(r.Status, "UP") {
				t.Errorf("%s: %s is %s/%s, want UP", when, id, r.Server, r.Status)
			}
		}
		if got := served(6); got["green-1"] != 3 || got["green-2"] != 3 {
			t.Errorf("%s: new connections reached %v, want green-1 and green-2 three times each", when, got)
		}
		code, id, err := open.get("/during")
		if err != nil || code != 200 || id != openID {
			t.Errorf("%s: the open connection to %s: %d %q %v; want it still served by %s", when, openID, code, id, err, openID)
		}
	}
	checkDrained("after the runtime commands", "DRAIN")
	if t.Failed() {
		return
	}

	// The same model through a reload: the server state saved first (as the Applier does), the
	// old worker keeps the open connection, the new one starts with blue out of rotation.
	if err := lb.admin.SaveServerState(ctx, filepath.Join(lb.cfg.RunDir, "server-state")); err != nil {
		t.Fatal(err)
	}
	lb.rendered = render(t, next)
	lb.model = next
	lb.install(lb.rendered)
	if err := lb.proc.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	checkDrained("after a reload", "DRAIN", "MAINT")
}

// TestTrafficBackendRedir: HAPROXY_{n}_HTTP_BACKEND_REDIR redirects the vhost's root, and
// only the root, to the given path.
func TestTrafficBackendRedir(t *testing.T) {
	t.Parallel()
	be := haproxytest.BackendNamed(t, "redir")
	lb := startTraffic(t, trafficApp("/redir", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "redir.test",
		"HAPROXY_0_HTTP_BACKEND_REDIR": "/landing"}, be.Port))
	for _, host := range []string{"redir.test", "REDIR.test:80"} {
		r := send(t, trafficReq{url: lb.httpURL + "/", host: host})
		if r.code != http.StatusMovedPermanently || r.header.Get("Location") != "/landing" {
			t.Errorf("GET / (Host %q): %s, want 301 to /landing", host, r)
		}
	}
	expectBackend(t, trafficReq{url: lb.httpURL + "/landing", host: "redir.test"}, "redir", 200)
	expectBackend(t, trafficReq{url: lb.httpURL + "/x", host: "redir.test"}, "redir", 200)
}

// TestTrafficPortAndSSLCert: HAPROXY_{n}_PORT binds the app's frontend on that port instead of
// the service port, and HAPROXY_{n}_SSL_CERT terminates TLS on it.
func TestTrafficPortAndSSLCert(t *testing.T) {
	t.Parallel()
	be := haproxytest.BackendNamed(t, "tls")
	cert := filepath.Join(t.TempDir(), "app.pem")
	if _, err := EnsureSelfSignedCert(cert); err != nil {
		t.Fatal(err)
	}
	servicePort, labelPort := haproxytest.FreePort(t), haproxytest.FreePort(t)
	startTraffic(t, trafficApp("/tls", servicePort, map[string]string{"HAPROXY_0_VHOST": "tls.test",
		"HAPROXY_0_PORT": strconv.Itoa(labelPort), "HAPROXY_0_SSL_CERT": cert}, be.Port))
	expectBackend(t, trafficReq{url: "https://127.0.0.1:" + strconv.Itoa(labelPort) + "/", sni: "tls.test"}, "tls", 200)
	if _, err := trySend(trafficReq{url: servicePortURL(labelPort) + "/"}); err == nil {
		t.Errorf("plain HTTP on the TLS port %d was answered", labelPort)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(servicePort), time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on the service port %d; HAPROXY_0_PORT should have replaced it", servicePort)
	}
}

// TestTrafficBackendWeight: of two routes on one vhost (the whole host, and a path prefix that
// covers it), the one with the higher HAPROXY_{n}_BACKEND_WEIGHT wins on both shared
// frontends, whatever the app order. (An identical vhost+path is not shared at all: see
// TestOwnershipVHostWeight.)
func TestTrafficBackendWeight(t *testing.T) {
	t.Parallel()
	a, z := haproxytest.BackendNamed(t, "a"), haproxytest.BackendNamed(t, "z")
	lb := startTraffic(t,
		trafficApp("/a", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "same.test"}, a.Port),
		trafficApp("/z", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "same.test", "HAPROXY_0_PATH": "/",
			"HAPROXY_0_BACKEND_WEIGHT": "10"}, z.Port))
	for _, base := range []string{lb.httpURL, lb.httpsURL} {
		expectBackend(t, trafficReq{url: base + "/", host: "same.test", sni: "same.test"}, "z", 200)
	}
}

// TestTrafficBalance: HAPROXY_{n}_BALANCE changes the algorithm: with "first" every request
// goes to the first server, where the default roundrobin spreads them.
func TestTrafficBalance(t *testing.T) {
	t.Parallel()
	var first, rr []int
	for i := range 3 {
		first = append(first, haproxytest.BackendNamed(t, fmt.Sprintf("first-%d", i+1)).Port)
		rr = append(rr, haproxytest.BackendNamed(t, fmt.Sprintf("rr-%d", i+1)).Port)
	}
	lb := startTraffic(t,
		trafficApp("/first", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "first.test", "HAPROXY_0_BALANCE": "first"}, first...),
		trafficApp("/rr", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "rr.test"}, rr...))
	count := func(host string) map[string]int {
		got := map[string]int{}
		for range 6 {
			got[send(t, trafficReq{url: lb.httpURL + "/", host: host}).id()]++
		}
		return got
	}
	if got := count("first.test"); len(got) != 1 || got["first-1"] != 6 {
		t.Errorf("balance first: %v, want every request on first-1", got)
	}
	if got := count("rr.test"); len(got) != 3 {
		t.Errorf("balance roundrobin: %v, want all three backends", got)
	}
}

// TestTrafficBindOptions: HAPROXY_{n}_BIND_OPTIONS reach the app's bind line: with
// accept-proxy the frontend takes the client address from a PROXY protocol header, which the
// backend then sees in X-Forwarded-For.
func TestTrafficBindOptions(t *testing.T) {
	t.Parallel()
	port := echoBackend(t, "proxied")
	svcPort := haproxytest.FreePort(t)
	startTraffic(t, trafficApp("/proxied", svcPort, map[string]string{"HAPROXY_0_VHOST": "proxied.test",
		"HAPROXY_0_BIND_OPTIONS": "accept-proxy"}, port))
	c := dialTraffic(t, "127.0.0.1:"+strconv.Itoa(svcPort))
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c.c, "PROXY TCP4 127.0.0.9 127.0.0.1 40000 %d\r\nGET / HTTP/1.1\r\nHost: proxied.test\r\nConnection: close\r\n\r\n", svcPort)
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("request after a PROXY header: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Xff") != "127.0.0.9" {
		t.Errorf("after PROXY from 127.0.0.9: %d, backend saw X-Forwarded-For %q", resp.StatusCode, resp.Header.Get("X-Seen-Xff"))
	}
	// Without the header the connection is refused by the frontend.
	if _, err := trySend(trafficReq{url: servicePortURL(svcPort) + "/", host: "proxied.test"}); err == nil {
		t.Errorf("a request without a PROXY header was answered")
	}
}

// basicAuth returns the Authorization header of user:pass.
func basicAuth(user, pass string) http.Header {
	r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header
}

// TestTrafficMultiVHostCombinations: with several vhosts per port, marathon-lb's
// multiple-vhost templates apply: every name routes, with a path, basic auth and the redirect
// to https.
func TestTrafficMultiVHostCombinations(t *testing.T) {
	t.Parallel()
	api, web, red := haproxytest.BackendNamed(t, "api"), haproxytest.BackendNamed(t, "web"), haproxytest.BackendNamed(t, "red")
	lb := startTraffic(t,
		trafficApp("/multi/api", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "m1.test,m2.test",
			"HAPROXY_0_PATH": "/api", "HAPROXY_0_AUTH": "api:alice:" + trafficAuthHash}, api.Port),
		trafficApp("/multi/web", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "m1.test,m2.test"}, web.Port),
		trafficApp("/multi/red", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "r1.test,r2.test",
			"HAPROXY_0_REDIRECT_TO_HTTPS": "true"}, red.Port))
	creds := basicAuth("alice", "s3cret")
	for _, h := range []string{"m1.test", "m2.test"} {
		for _, base := range []string{lb.httpURL, lb.httpsURL} {
			expectBackend(t, trafficReq{url: base + "/api/x", host: h, sni: h}, "", http.StatusUnauthorized)
			expectBackend(t, trafficReq{url: base + "/api/x", host: h, sni: h, header: creds}, "api", 200)
			expectBackend(t, trafficReq{url: base + "/", host: h, sni: h}, "web", 200)
		}
	}
	for _, h := range []string{"r1.test", "r2.test"} {
		r := send(t, trafficReq{url: lb.httpURL + "/p", host: h})
		if r.code != http.StatusMovedPermanently || r.header.Get("Location") != "https://"+h+"/p" {
			t.Errorf("plain HTTP to %s: %s, want 301 to https://%s/p", h, r, h)
		}
		expectBackend(t, trafficReq{url: lb.httpsURL + "/p", host: h, sni: h}, "red", 200)
	}
}

// TestTrafficPathWithRedirect: HAPROXY_{n}_PATH with several prefixes and
// HAPROXY_{n}_REDIRECT_TO_HTTPS: plain HTTP under a prefix is redirected, other paths of the
// vhost are not; HTTPS under either prefix reaches the app.
func TestTrafficPathWithRedirect(t *testing.T) {
	t.Parallel()
	api, web := haproxytest.BackendNamed(t, "api"), haproxytest.BackendNamed(t, "web")
	lb := startTraffic(t,
		trafficApp("/pr/api", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "pr.test",
			"HAPROXY_0_PATH": "/api /v2", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"}, api.Port),
		trafficApp("/pr/web", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "pr.test"}, web.Port))
	for _, p := range []string{"/api/x", "/v2/y"} {
		r := send(t, trafficReq{url: lb.httpURL + p, host: "pr.test"})
		if r.code != http.StatusMovedPermanently || r.header.Get("Location") != "https://pr.test"+p {
			t.Errorf("plain HTTP %s: %s, want 301 to https://pr.test%s", p, r, p)
		}
		expectBackend(t, trafficReq{url: lb.httpsURL + p, host: "pr.test", sni: "pr.test"}, "api", 200)
	}
	expectBackend(t, trafficReq{url: lb.httpURL + "/", host: "pr.test"}, "web", 200)
}

// TestTrafficProxyPassWithRevProxy: marathon-lb's usual pairing of PATH, PROXYPASS_PATH and
// REVPROXY_PATH on one prefix: the backend sees the path without the prefix, and its
// redirects come back under the prefix.
func TestTrafficProxyPassWithRevProxy(t *testing.T) {
	t.Parallel()
	svc, web := echoBackend(t, "svc"), echoBackend(t, "web")
	lb := startTraffic(t,
		trafficApp("/mounted/svc", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "mount.test", "HAPROXY_0_PATH": "/svc",
			"HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/svc", "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/svc"}, svc),
		trafficApp("/mounted/web", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "mount.test"}, web))
	r := send(t, trafficReq{url: lb.httpURL + "/svc/items?x=1", host: "mount.test"})
	if r.code != 200 || r.id() != "svc" || r.header.Get("X-Seen-Uri") != "/items?x=1" {
		t.Errorf("GET /svc/items?x=1: %s, backend saw %q; want svc to see /items?x=1", r, r.header.Get("X-Seen-Uri"))
	}
	r = send(t, trafficReq{url: lb.httpURL + "/svc/redirect", host: "mount.test"})
	if r.code != http.StatusFound || r.id() != "svc" || r.header.Get("Location") != "/svc/foo" {
		t.Errorf("GET /svc/redirect: %s, want 302 from svc to /svc/foo", r)
	}
	r = send(t, trafficReq{url: lb.httpURL + "/redirect", host: "mount.test"})
	if r.code != http.StatusFound || r.id() != "web" || r.header.Get("Location") != "/foo" {
		t.Errorf("GET /redirect (the other app): %s, want 302 from web to /foo, untouched", r)
	}
}

// TestTrafficMapMode: with --haproxy-map the vhosts route through domain2backend.map (and
// SNI too), while the ports with a path, auth or redirect keep their ACLs, evaluated first.
func TestTrafficMapMode(t *testing.T) {
	t.Parallel()
	ids := []string{"alpha", "beta", "api", "private", "secure"}
	port := map[string]int{}
	for _, id := range ids {
		port[id] = haproxytest.BackendNamed(t, id).Port
	}
	lb := startTrafficWith(t, func(c *Config) { c.HAProxyMap = true },
		trafficApp("/alpha", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "alpha.test,www.alpha.test"}, port["alpha"]),
		trafficApp("/beta", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "beta.test"}, port["beta"]),
		trafficApp("/api", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "alpha.test", "HAPROXY_0_PATH": "/api"}, port["api"]),
		trafficApp("/private", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "private.test",
			"HAPROXY_0_AUTH": "p:alice:" + trafficAuthHash}, port["private"]),
		trafficApp("/secure", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "secure.test",
			"HAPROXY_0_REDIRECT_TO_HTTPS": "true"}, port["secure"]))
	if len(lb.model.DomainMap) == 0 {
		t.Fatalf("no domain map entries")
	}
	for _, base := range []string{lb.httpURL, lb.httpsURL} {
		for _, c := range []struct {
			host, path, id string
			code           int
		}{
			{"alpha.test", "/", "alpha", 200},
			{"www.alpha.test", "/", "alpha", 200},
			{"alpha.test", "/api/x", "api", 200},
			{"beta.test", "/", "beta", 200},
			{"private.test", "/", "", 401},
			{"gamma.test", "/", "", 503},
		} {
			expectBackend(t, trafficReq{url: base + c.path, host: c.host, sni: c.host}, c.id, c.code)
		}
		expectBackend(t, trafficReq{url: base + "/", host: "private.test", sni: "private.test", header: basicAuth("alice", "s3cret")}, "private", 200)
	}
	expectBackend(t, trafficReq{url: lb.httpURL + "/", host: "BETA.test:80"}, "beta", 200)
	r := send(t, trafficReq{url: lb.httpURL + "/s", host: "secure.test"})
	if r.code != http.StatusMovedPermanently || r.header.Get("Location") != "https://secure.test/s" {
		t.Errorf("plain HTTP to secure.test: %s, want 301 to https://secure.test/s", r)
	}
	expectBackend(t, trafficReq{url: lb.httpsURL + "/s", host: "secure.test", sni: "secure.test"}, "secure", 200)
}

// TestTrafficHealthCheckPortIndex: HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX sends port 0's
// HAProxy checks to the task's port 1 (with port 1's Marathon health check): when port 1
// fails its check, port 0 stops getting traffic although it answers, and gets it back when port
// 1 recovers.
func TestTrafficHealthCheckPortIndex(t *testing.T) {
	t.Parallel()
	main, admin := haproxytest.BackendNamed(t, "main"), haproxytest.BackendNamed(t, "admin")
	svc0, svc1 := haproxytest.FreePort(t), haproxytest.FreePort(t)
	a := app("/checked", withPorts(svc0, svc1), withInstances(1),
		withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"), withLabel("HAPROXY_1_BIND_ADDR", "127.0.0.1"),
		withLabel("HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "1"),
		withTasks(task("checked.1", host("127.0.0.1"), ports(main.Port, admin.Port))))
	a.HealthChecks = []discovery.HealthCheck{{Protocol: "HTTP", Path: haproxytest.HealthPath, PortIndex: 1,
		IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: 1}}
	startTraffic(t, a)
	url := servicePortURL(svc0) + "/"
	waitCode := func(code int, id, what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			r, err := trySend(trafficReq{url: url})
			if err == nil && r.code == code && r.id() == id {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: last answer %s %v", what, r, err)
			}
			<-tick.C
		}
	}
	waitCode(200, "main", "port 0 served while port 1 is healthy")
	admin.SetHealthy(false)
	waitCode(http.StatusServiceUnavailable, "", "port 0 taken out when port 1 fails its check")
	admin.SetHealthy(true)
	waitCode(200, "main", "port 0 back when port 1 recovers")
}

// TestTrafficTemplateOverride: a per-app template label (HAPROXY_{n}_BACKEND_HTTP_OPTIONS,
// written with CRLF line ends) replaces the built-in template for that app only.
func TestTrafficTemplateOverride(t *testing.T) {
	t.Parallel()
	custom, plain := haproxytest.BackendNamed(t, "custom"), haproxytest.BackendNamed(t, "plain")
	lb := startTraffic(t,
		trafficApp("/custom", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "custom.test",
			"HAPROXY_0_BACKEND_HTTP_OPTIONS": "  option forwardfor\r\n  http-response set-header X-Template per-app\r\n"}, custom.Port),
		trafficApp("/plain", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "plain.test"}, plain.Port))
	r := send(t, trafficReq{url: lb.httpURL + "/", host: "custom.test"})
	if r.code != 200 || r.id() != "custom" || r.header.Get("X-Template") != "per-app" {
		t.Errorf("custom.test: %s, X-Template %q; want per-app", r, r.header.Get("X-Template"))
	}
	r = send(t, trafficReq{url: lb.httpURL + "/", host: "plain.test"})
	if r.code != 200 || r.id() != "plain" || r.header.Get("X-Template") != "" {
		t.Errorf("plain.test: %s, X-Template %q; want none", r, r.header.Get("X-Template"))
	}
}
