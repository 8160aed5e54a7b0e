package haproxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const haproxyBin = "/usr/sbin/haproxy"

// goldenRunDir is the run directory golden files are rendered with; checkConfig moves it to a
// temporary directory.
const goldenRunDir = "/run/lodestar"

func goldenConfig() Config {
	cfg := testConfig()
	cfg.RunDir = goldenRunDir
	return cfg
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./haproxy -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./haproxy -update rewrites it):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(wl), len(gl)) && shown < 10; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, w, g)
			shown++
		}
	}
	return b.String()
}

// report lists a model's exclusions and warnings, one per line, then the map files.
func report(m *Model, r *Rendered) []byte {
	var b bytes.Buffer
	for _, e := range m.Excluded {
		fmt.Fprintf(&b, "excluded %s port %d: %s\n", e.AppID, e.Port, e.Reason)
	}
	for _, w := range m.Warnings {
		fmt.Fprintf(&b, "warning %s port %d: %s\n", w.AppID, w.Port, w.Message)
	}
	if b.Len() == 0 {
		b.WriteString("nothing excluded, no warnings\n")
	}
	for _, path := range slices.Sorted(maps.Keys(r.Maps)) {
		fmt.Fprintf(&b, "map %s:\n%s", path, r.Maps[path])
	}
	return b.Bytes()
}

var testCert = sync.OnceValues(func() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lodestar test"},
		DNSNames:     []string{"*.test", "*.example.com", "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
	return b.Bytes(), nil
})

// serverStateHeader is an empty server-state file, so that haproxy -c has nothing to warn about.
const serverStateHeader = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight " +
	"srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state " +
	"srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port " +
	"srv_check_addr srv_agent_addr srv_agent_port\n"

var (
	serverAddrRE = regexp.MustCompile(`(?m)^(\s+server \S+ )(\[[^\]]+\]|[^\s:]+)(:\d+)`)
	certRE       = regexp.MustCompile(`crt (\S+)`)
)

// installConfig writes a rendered configuration into a fresh run directory the way the
// controller will: the golden run directory moved to dir, every server address (fixture
// addresses are not on this machine) rewritten to 127.0.0.x, certificates and map files in
// place. It returns the configuration file's path.
func installConfig(t *testing.T, r *Rendered, runDir string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := strings.ReplaceAll(string(r.Config), runDir+"/", dir+"/")
	n := 0
	cfg = serverAddrRE.ReplaceAllStringFunc(cfg, func(s string) string {
		m := serverAddrRE.FindStringSubmatch(s)
		n++
		return fmt.Sprintf("%s127.0.0.%d%s", m[1], n%250+2, m[3])
	})
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range certRE.FindAllStringSubmatch(cfg, -1) {
		if strings.HasPrefix(m[1], dir+"/") {
			if err := os.WriteFile(m[1], cert, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for path, data := range r.Maps {
		p := filepath.Join(dir, strings.TrimPrefix(path, runDir+"/"))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "server-state"), []byte(serverStateHeader), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func needHAProxy(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(haproxyBin); err != nil {
		t.Fatalf("%s is missing: apt-get install haproxy, or run make test", haproxyBin)
	}
}

// checkConfig runs haproxy -c on the rendered configuration and fails on any alert or warning.
func checkConfig(t *testing.T, r *Rendered, runDir string) {
	t.Helper()
	needHAProxy(t)
	path := installConfig(t, r, runDir)
	out, err := exec.Command(haproxyBin, "-c", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "[WARNING]") || strings.Contains(l, "[ALERT]") {
			t.Errorf("haproxy -c: %s", l)
		}
	}
}

func fixtureFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.json", "ci_backends/*.json", "ci_backends_1.9/*.json"} {
		m, err := filepath.Glob(filepath.Join("testdata", "fixtures", pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found %d fixtures in testdata/fixtures", len(files))
	}
	return files
}

// TestGoldenFixtures renders every Marathon fixture, compares it with its golden file and has
// haproxy -c accept it.
func TestGoldenFixtures(t *testing.T) {
	for _, file := range fixtureFiles(t) {
		rel, _ := filepath.Rel(filepath.Join("testdata", "fixtures"), file)
		name := strings.TrimSuffix(strings.ReplaceAll(rel, "/", "_"), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			apps, appErrs, err := discovery.DecodeMarathonApps(data)
			if err != nil || len(appErrs) > 0 {
				t.Fatalf("decode: %v %v", err, appErrs)
			}
			for _, mapMode := range []bool{false, true} {
				cfg := goldenConfig()
				cfg.HAProxyMap = mapMode
				suffix := ""
				if mapMode {
					suffix = ".map"
				}
				m := Build(snapshot(t, apps...), cfg, nil)
				if m.Err != nil {
					t.Fatal(m.Err)
				}
				r := render(t, m)
				golden(t, name+suffix+".cfg", r.Config)
				golden(t, name+suffix+".report", report(m, r))
				checkConfig(t, r, goldenRunDir)
			}
		})
	}
}

// scenarioApps exercise every label and most templates.
func scenarioApps() ([]*discovery.App, map[string]discovery.ServiceRule) {
	apps := []*discovery.App{
		app("/shop/web", withPorts(10000), withInstances(2), withHealthCheck("HTTP", "/health", 0),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_VHOST", "Shop.example.com,www.shop.example.com"),
			withLabel("HAPROXY_0_PATH", "/api /v2"),
			withLabel("HAPROXY_0_AUTH", "shop realm:admin:$6$salt$hash"),
			withLabel("HAPROXY_0_REDIRECT_TO_HTTPS", "true"),
			withLabel("HAPROXY_0_USE_HSTS", "true"),
			withLabel("HAPROXY_0_STICKY", "yes"),
			withLabel("HAPROXY_0_BACKEND_WEIGHT", "5"),
			withTasks(task("shop.1", ports(31000)), task("shop.2", host("10.0.0.2"), ports(31000)),
				task("shop.3", host("10.0.0.3"), ports(31002), taskState(discovery.StateKilling)))),
		app("/blog", withPorts(10001),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_VHOST", "blog.example.com"),
			withLabel("HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/blog"),
			withLabel("HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", "/blog"),
			withLabel("HAPROXY_0_HTTP_BACKEND_REDIR", "/index.html"),
			withLabel("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8 192.168.1.1"),
			withTasks(task("blog.1", ports(31010)))),
		app("/blog/auth", withPorts(10002),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_VHOST", "private.example.com"),
			withLabel("HAPROXY_0_AUTH", "private:alice:$apr1$x$y"),
			withTasks(task("auth.1", ports(31020)))),
		app("/blog/paths", withPorts(10003),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_VHOST", "blog.example.com"),
			withLabel("HAPROXY_0_PATH", "/static"),
			withLabel("HAPROXY_0_REDIRECT_TO_HTTPS", "true")),
		app("/multi", withPorts(10004),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_VHOST", "a.example.com,b.example.com")),
		app("/db", withPorts(5432), withHealthCheck("TCP", "", 0),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_PORT", "15432"),
			withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
			withLabel("HAPROXY_0_BIND_OPTIONS", "defer-accept"),
			withLabel("HAPROXY_0_BALANCE", "leastconn"),
			withLabel("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.1.0.0/16"),
			withTasks(task("db.1", ports(31030)))),
		app("/two", withPorts(10010, 10011), withHealthCheck("HTTP", "/ping", 1),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_MODE", "http"),
			withLabel("HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "1"),
			withTasks(task("two.1", ports(31040, 31041)), task("two.2", host("10.0.0.2"), ports(31042, 31043)))),
		app("/tls", withPorts(10020),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_VHOST", "tls.example.com"),
			withLabel("HAPROXY_0_SSL_CERT", goldenRunDir+"/tls.pem"),
			withTasks(task("tls.1", ports(31050)))),
		app("/ip-per-task", withContainerPorts(8080),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_VHOST", "ippt.example.com"),
			withTasks(task("ippt.1", taskIP("2001:db8::10")), task("ippt.2", taskIP("10.9.0.2")))),
		app("/custom", withPorts(10030),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_BACKEND_HEAD", "\r\nbackend {backend}\r\n  balance {balance}\r\n  mode {mode}\r\n  timeout server 1h\r\n"),
			withLabel("HAPROXY_0_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:80{otherOptions}\n"),
			withTasks(task("custom.1", ports(31060)))),
		app("/bamboo", withPorts(10040),
			withLabel("HAPROXY_GROUP", "external"),
			withTasks(task("bamboo.1", ports(31070)))),
		app("/internal", withPorts(10050),
			withLabel("HAPROXY_GROUP", "internal"),
			withLabel("HAPROXY_0_VHOST", "internal.example.com")),
		app("/broken", withPorts(10060, 10061),
			withLabel("HAPROXY_GROUP", "external"),
			withLabel("HAPROXY_0_MODE", "htp"),
			withLabel("HAPROXY_1_VHOST", "broken.example.com"),
			withLabel("HAPROXY_1_FRONTEND_HEAD", "frontend {nope}\n"),
			withLabel("HAPROXY_7_VHOST", "nowhere.example.com"),
			withLabel("HAPROXY_0_VHOTS", "typo.example.com")),
	}
	rules := map[string]discovery.ServiceRule{"/bamboo": {AppID: "/bamboo", ACL: "path_beg -i /bamboo"}}
	return apps, rules
}

// TestGoldenScenarios renders apps that use every label, with and without --haproxy-map, and
// has haproxy -c accept the result.
func TestGoldenScenarios(t *testing.T) {
	apps, rules := scenarioApps()
	reg := newTestRegistry(t)
	reg.replace(t, apps...)
	snap := reg.send(t, discovery.ReplaceRules{Rules: rules})
	for _, mapMode := range []bool{false, true} {
		cfg := goldenConfig()
		cfg.HAProxyMap = mapMode
		name := "scenarios"
		if mapMode {
			name += ".map"
		}
		m := Build(snap, cfg, nil)
		if m.Err != nil {
			t.Fatal(m.Err)
		}
		r := render(t, m)
		golden(t, name+".cfg", r.Config)
		golden(t, name+".report", report(m, r))
		checkConfig(t, r, goldenRunDir)
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago (see haproxytest.FreePort).
func freePort(t *testing.T) int { return haproxytest.FreePort(t) }

// upstream is an HTTP server on 127.0.0.1 that answers with its name.
func upstream(t *testing.T, name string) int {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, name)
	}))
	t.Cleanup(s.Close)
	port, _ := strconv.Atoi(s.URL[strings.LastIndexByte(s.URL, ':')+1:])
	return port
}

// liveHAProxy runs haproxy in the foreground on a rendered model in runDir (which must be the
// model's run directory) until the test ends.
func liveHAProxy(t *testing.T, r *Rendered, runDir string, probePort int) {
	t.Helper()
	needHAProxy(t)
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(runDir, "default.pem"), cert, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, data := range r.Maps {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(runDir, "server-state"), []byte(serverStateHeader), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(runDir, "haproxy.cfg")
	if err := os.WriteFile(cfg, r.Config, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxyBin, "-db", "-f", cfg)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(probePort))
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("haproxy exited: %s", out)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %d: %s", probePort, out)
		}
	}
}

// get fetches url and returns the body; sni and host set the TLS server name and Host header.
func get(t *testing.T, url, sni, hostHeader string, header ...string) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = hostHeader
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s (SNI %q, Host %q): %v", url, sni, hostHeader, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}

// adminCommand sends one command to HAProxy's admin socket and returns the answer.
func adminCommand(t *testing.T, socket, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

// TestLiveRouting runs HAProxy on rendered configurations and checks vhost routing on the
// HTTP frontend, SNI routing on the HTTPS frontend, X-Marathon-App-Id routing and the per-app
// frontends, with ACLs and with maps; then that a plan's runtime commands move traffic to a
// task's new address without a reload.
func TestLiveRouting(t *testing.T) {
	for _, mapMode := range []bool{false, true} {
		t.Run(fmt.Sprintf("maps=%v", mapMode), func(t *testing.T) {
			alpha, beta, gamma := upstream(t, "alpha"), upstream(t, "beta"), upstream(t, "gamma")
			runDir, err := os.MkdirTemp("", "lodestar-live-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(runDir) })
			httpPort, httpsPort, alphaPort, betaPort := freePort(t), freePort(t), freePort(t), freePort(t)
			cfg := testConfig()
			cfg.HAProxyMap = mapMode
			cfg.RunDir = runDir
			cfg.HTTPBind = "127.0.0.1:" + strconv.Itoa(httpPort)
			cfg.HTTPSBind = "127.0.0.1:" + strconv.Itoa(httpsPort)
			cfg.StatsBind = "127.0.0.1:" + strconv.Itoa(freePort(t))
			cfg.AppIDBind = "127.0.0.1:" + strconv.Itoa(freePort(t))
			svc := func(id, vhost string, port, upstreamPort int) *discovery.App {
				return app(id, withPorts(port), withLabel("HAPROXY_GROUP", "external"),
					withLabel("HAPROXY_0_VHOST", vhost), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
					withTasks(task(id[1:]+".1", host("127.0.0.1"), ports(upstreamPort))))
			}
			reg := newTestRegistry(t)
			m1 := Build(reg.replace(t, svc("/alpha", "alpha.test", alphaPort, alpha), svc("/beta", "beta.test", betaPort, beta)), cfg, nil)
			if m1.Err != nil || len(m1.Excluded) > 0 {
				t.Fatalf("build: %v %v", m1.Err, excluded(m1))
			}
			liveHAProxy(t, render(t, m1), runDir, httpsPort)

			https := "https://127.0.0.1:" + strconv.Itoa(httpsPort) + "/"
			httpURL := "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/"
			for _, c := range []struct{ url, sni, host, want string }{
				{https, "alpha.test", "alpha.test", "200 alpha"},
				{https, "beta.test", "beta.test", "200 beta"},
				{httpURL, "", "alpha.test", "200 alpha"},
				{httpURL, "", "beta.test:80", "200 beta"},
				{httpURL, "", "nobody.test", "503 "},
				{"http://127.0.0.1:" + strconv.Itoa(betaPort) + "/", "", "whatever", "200 beta"},
			} {
				if got := get(t, c.url, c.sni, c.host); !strings.HasPrefix(got, c.want) {
					t.Errorf("GET %s SNI %q Host %q: %q, want %q", c.url, c.sni, c.host, got, c.want)
				}
			}
			appID := "http://" + cfg.AppIDBind + "/"
			if got := get(t, appID, "", "x", "X-Marathon-App-Id", "/beta"); got != "200 beta" {
				t.Errorf("by app id: %q", got)
			}

			// alpha's task moves to gamma's port: runtime commands only.
			m2 := Build(reg.replace(t, svc("/alpha", "alpha.test", alphaPort, gamma), svc("/beta", "beta.test", betaPort, beta)), cfg, m1)
			p := MakePlan(m1, m2)
			if p.Reload || len(p.Runtime) == 0 {
				t.Fatalf("plan %+v", p)
			}
			for _, c := range p.Runtime {
				if out := adminCommand(t, m2.HeadInfo.StatsSockets[0], c.String()); strings.Contains(out, "No such") || strings.Contains(out, "Unknown") {
					t.Fatalf("%s: %s", c, out)
				}
			}
			if got := get(t, https, "alpha.test", "alpha.test"); got != "200 gamma" {
				t.Errorf("after the runtime update: %q", got)
			}
		})
	}
}

// TestServerLinesFastPath: the built-in server template written directly gives the same
// lines as executing it.
func TestServerLinesFastPath(t *testing.T) {
	apps, rules := scenarioApps()
	reg := newTestRegistry(t)
	reg.replace(t, apps...)
	m := Build(reg.send(t, discovery.ReplaceRules{Rules: rules}), goldenConfig(), nil)
	fast := 0
	for _, b := range m.Backends {
		if b.server.tmpl.Text() != builtinServerOptions {
			continue
		}
		fast++
		got, err := b.server.appendSlotsFast(nil, b.Slots)
		if err != nil {
			t.Fatal(err)
		}
		want, err := b.server.appendSlotsTemplate(nil, b.Slots, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n%s", b.Name, lineDiff(string(want), string(got)))
		}
	}
	if fast < 8 {
		t.Errorf("only %d backends with the built-in server template", fast)
	}
}
