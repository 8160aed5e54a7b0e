package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// mlbLab is a fake Marathon with one app in group external (vhost app.example.test) whose task
// is a live backend, and the free ports lodestar's HAProxy binds.
type mlbLab struct {
	fake                          *fakemarathon.Server
	backend                       *haproxytest.HTTPBackend
	http, https, stats, appID, sp int
}

func newMLBLab(t testing.TB) *mlbLab {
	return newMLBLabApps(t, 0)
}

// newMLBLabApps is newMLBLab with extra more apps (vhost appN.example.test, the same backend),
// each with a service port of its own.
func newMLBLabApps(t testing.TB, extra int) *mlbLab {
	t.Helper()
	haproxytest.Bin(t)
	l := &mlbLab{backend: haproxytest.BackendNamed(t, "app"),
		http: haproxytest.FreePort(t), https: haproxytest.FreePort(t), stats: haproxytest.FreePort(t),
		appID: haproxytest.FreePort(t), sp: haproxytest.FreePort(t)}
	l.fake = fakemarathon.New()
	apps := fmt.Sprintf(`{"apps":[{"id":"/app","instances":1,
		"labels":{"HAPROXY_GROUP":"external","HAPROXY_0_VHOST":"app.example.test"},
		"portDefinitions":[{"port":%d,"protocol":"tcp"}],"version":"2026-11-01T10:00:00.000Z",
		"tasks":[{"id":"app.1","appId":"/app","host":"127.0.0.1","ports":[%d],"state":"TASK_RUNNING",
		"stagedAt":"2026-11-01T10:00:01.000Z","startedAt":"2026-11-01T10:00:03.000Z","version":"2026-11-01T10:00:00.000Z"}]}]}`,
		l.sp, l.backend.Port)
	if err := l.fake.LoadApps([]byte(apps)); err != nil {
		t.Fatal(err)
	}
	for i := range extra {
		app := map[string]any{"id": fmt.Sprintf("/bench/app%d", i), "instances": 1,
			"labels":          map[string]any{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": fmt.Sprintf("app%d.example.test", i)},
			"portDefinitions": []any{map[string]any{"port": haproxytest.FreePort(t), "protocol": "tcp"}},
			"tasks": []any{map[string]any{"id": fmt.Sprintf("bench_app%d.1", i), "appId": fmt.Sprintf("/bench/app%d", i),
				"host": "127.0.0.1", "ports": []any{l.backend.Port}, "state": "TASK_RUNNING", "startedAt": "2026-11-01T10:00:03.000Z"}}}
		if err := l.fake.AddApp(app); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.fake.Close)
	return l
}

// lodestarFlags are serve's flags the tests add after marathon-lb's: the binds on free
// loopback ports, the API on one, a run directory of the test's own.
func (l *mlbLab) lodestarFlags(t testing.TB) []string {
	return []string{
		"--http-bind", "127.0.0.1:" + strconv.Itoa(l.http), "--https-bind", "127.0.0.1:" + strconv.Itoa(l.https),
		"--stats-bind", "127.0.0.1:" + strconv.Itoa(l.stats), "--appid-bind", "127.0.0.1:" + strconv.Itoa(l.appID),
		"--api-listen", "127.0.0.1:0", "--run-dir", t.TempDir(), "--haproxy-bin", haproxytest.Bin(t),
	}
}

// startMarathonLB runs lodestar with args (as main would) and env, and returns the API's base
// URL and the log once it serves. It stops when the test ends.
func startMarathonLB(t testing.TB, env map[string]string, args ...string) (string, *logtest.Buffer) {
	t.Helper()
	return runUntilServing(t, args, func(k string) string { return env[k] })
}

// get fetches url with Host host (empty: the URL's), failing the test on a transport error.
func get(t testing.TB, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// servedSubject is the subject CN of the certificate HAProxy serves at addr for SNI name.
func servedSubject(t *testing.T, addr, name string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to %s (SNI %s): %v", addr, name, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// checkMarathonLBServes: the app answers through the shared HTTP frontend, the HTTPS frontend
// serves the certificate given in HAPROXY_SSL_CERT, and the stats port answers marathon-lb's
// health check.
func (l *mlbLab) checkServes(t *testing.T, certCN string) {
	t.Helper()
	base := "http://127.0.0.1:" + strconv.Itoa(l.http)
	var code int
	var body string
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		code, body = get(t, base+"/", "app.example.test")
		return code == http.StatusOK
	}, "the app to answer through HAProxy")
	if strings.TrimSpace(body) != "app" {
		t.Errorf("GET / for app.example.test: %d %q, want the app's answer", code, body)
	}
	if cn := servedSubject(t, "127.0.0.1:"+strconv.Itoa(l.https), "app.example.test"); cn != certCN {
		t.Errorf("HTTPS serves a certificate for %q, want HAPROXY_SSL_CERT's %q", cn, certCN)
	}
	stats := "http://127.0.0.1:" + strconv.Itoa(l.stats)
	if code, _ := get(t, stats+"/_haproxy_health_check", ""); code != http.StatusOK {
		t.Errorf("stats port /_haproxy_health_check: %d", code)
	}
	if code, body := get(t, stats+"/_haproxy_getconfig", ""); code != http.StatusOK || !strings.Contains(body, "app.example.test") {
		t.Errorf("stats port /_haproxy_getconfig: %d, not the running configuration:\n%s", code, body)
	}
	if code, body := get(t, stats+"/_haproxy_getpids", ""); code != http.StatusOK || strings.TrimSpace(body) == "" {
		t.Errorf("stats port /_haproxy_getpids: %d %q", code, body)
	}
}

// signal sends GET /_mlb_signal/<name> to the stats port with header and returns the status.
func (l *mlbLab) signal(t *testing.T, name string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(l.stats)+"/_mlb_signal/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMarathonLBImageForm: lodestar started as marathon-lb's image is (sse -m URL --group
// external), with HAPROXY_SSL_CERT and PORTS set, against a fake Marathon and real HAProxy.
func TestMarathonLBImageForm(t *testing.T) {
	l := newMLBLab(t)
	certPath := t.TempDir() + "/cert.pem"
	env := map[string]string{"HAPROXY_SSL_CERT": testCertPEM(t, "image.example.test"), "PORTS": "80,443,9090",
		"HAPROXY_SYSCTL_PARAMS": "net.ipv4.tcp_tw_reuse=1"}
	args := append([]string{"sse", "-m", l.fake.URL(), "--group", "external", "--haproxy-ssl-cert-path", certPath,
		"--api-auth", "token:s3cret"}, l.lodestarFlags(t)...)
	_, logs := startMarathonLB(t, env, args...)
	l.checkServes(t, "image.example.test")
	// /_mlb_signal/hup through the stats port resyncs (/v2/apps is fetched again) with the
	// API's credential, and is refused without it.
	before := l.fake.Requests("/v2/apps")
	if code := l.signal(t, "hup", http.Header{"X-Forwarded-For": {"127.0.0.1"}}); code != http.StatusUnauthorized {
		t.Errorf("/_mlb_signal/hup without the credential: %d, want 401", code)
	}
	if n := l.fake.Requests("/v2/apps"); n != before {
		t.Errorf("a refused hup fetched /v2/apps (%d → %d)", before, n)
	}
	if code := l.signal(t, "hup", http.Header{"Authorization": {"Bearer s3cret"}}); code != http.StatusOK {
		t.Errorf("/_mlb_signal/hup with the credential: %d, want 200", code)
	}
	// The resync is asked for, not waited on: the refetch follows the answer.
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return l.fake.Requests("/v2/apps") > before },
		fmt.Sprintf("/_mlb_signal/hup to resync (/v2/apps fetched %d times before)", before))
	b, err := os.ReadFile(certPath)
	if err != nil || string(b) != env["HAPROXY_SSL_CERT"] {
		t.Errorf("HAPROXY_SSL_CERT not written to %s (%v)", certPath, err)
	}
	if fi, err := os.Stat(certPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v (%v), want 0600", certPath, fi.Mode().Perm(), err)
	}
	for _, w := range []string{"warning: PORTS=80,443,9090:", "warning: HAPROXY_SYSCTL_PARAMS is set:", "HAProxy maxconn"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("the log lacks %q:\n%s", w, logs)
		}
	}
}

// TestMarathonLBScriptForm: marathon_lb.py's own form, with several --marathon members as
// separate words (the first one down) and the image's usual flags.
func TestMarathonLBScriptForm(t *testing.T) {
	l := newMLBLab(t)
	down := fakemarathon.New()
	if err := down.Start(); err != nil {
		t.Fatal(err)
	}
	down.GoDown()
	certPath := t.TempDir() + "/cert.pem"
	env := map[string]string{"HAPROXY_SSL_CERT": testCertPEM(t, "script.example.test")}
	args := append([]string{"marathon-lb", "--marathon", down.URL(), l.fake.URL(), "--group", "external",
		"--sse", "--syslog-socket", "/dev/null", "--command", "/marathon-lb/reload_haproxy.sh",
		"--haproxy-ssl-cert-path", certPath}, l.lodestarFlags(t)...)
	_, logs := startMarathonLB(t, env, args...)
	l.checkServes(t, "script.example.test")
	// Without --api-auth, a signal that came through HAProxy is refused (the API is on
	// loopback, where it would be trusted).
	if code := l.signal(t, "hup", nil); code != http.StatusForbidden {
		t.Errorf("/_mlb_signal/hup through the stats port without --api-auth: %d, want 403", code)
	}
	if !strings.Contains(logs.String(), "warning: --command:") {
		t.Errorf("no warning for --command:\n%s", logs)
	}
}

// TestMarathonLBDry: --dry prints the configuration on stdout and exits 0, like render.
func TestMarathonLBDry(t *testing.T) {
	l := newMLBLab(t)
	code, out, errOut := runCmd(t, nil, "marathon-lb", "-m", l.fake.URL(), "--group", "external", "--dry",
		"--run-dir", t.TempDir(), "--haproxy-ssl-cert-path", t.TempDir()+"/cert.pem")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "app.example.test") || !strings.Contains(out, "maxconn ") {
		t.Errorf("--dry output is not the configuration:\n%s", out)
	}
}

// BenchmarkMarathonLBFirstRoute is marathon-lb mode's start, in the image's form, to the first
// request routed through HAProxy, against a fake Marathon with 1,000 apps.
func BenchmarkMarathonLBFirstRoute(b *testing.B) {
	l := newMLBLabApps(b, 999)
	for b.Loop() {
		b.StopTimer()
		ctx, cancel := context.WithCancel(context.Background())
		args := append([]string{"sse", "-m", l.fake.URL(), "--group", "external", "--haproxy-ssl-cert-path", b.TempDir() + "/cert.pem"}, l.lodestarFlags(b)...)
		done := make(chan int, 1)
		logs := &logtest.Buffer{}
		deadline := time.Now().Add(2 * time.Minute)
		b.StartTimer()
		go func() { done <- run(ctx, args, io.Discard, logs, func(string) string { return "" }) }()
		for {
			if time.Now().After(deadline) {
				b.Fatalf("no route after 2 minutes; log:\n%s", logs.Tail(4000))
			}
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(l.http)+"/", nil)
			req.Host = "app.example.test"
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		cancel()
		if code := <-done; code != 0 {
			b.Fatalf("lodestar exited %d", code)
		}
		b.StartTimer()
	}
}

// TestMarathonLBConfinesTemplateLabels: marathon-lb mode confines per-app template labels by
// default, as serve does (a shared edge), and --label-templates full is the explicit way back
// to marathon-lb's raw templates.
func TestMarathonLBConfinesTemplateLabels(t *testing.T) {
	l := newMLBLab(t)
	hostile := map[string]any{"id": "/evil", "instances": 1,
		"labels": map[string]any{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "evil.example.test",
			"HAPROXY_0_BACKEND_HEAD": "\nglobal\n  daemon\nbackend {backend}\n  balance {balance}\n  mode {mode}\n"},
		"portDefinitions": []any{map[string]any{"port": haproxytest.FreePort(t), "protocol": "tcp"}},
		"tasks": []any{map[string]any{"id": "evil.1", "appId": "/evil", "host": "127.0.0.1",
			"ports": []any{l.backend.Port}, "state": "TASK_RUNNING", "startedAt": "2026-11-01T10:00:03.000Z"}}}
	if err := l.fake.AddApp(hostile); err != nil {
		t.Fatal(err)
	}
	dry := func(extra ...string) string {
		args := append([]string{"marathon-lb", "-m", l.fake.URL(), "--group", "external", "--dry",
			"--run-dir", t.TempDir(), "--haproxy-ssl-cert-path", t.TempDir() + "/cert.pem"}, extra...)
		code, out, errOut := runCmd(t, nil, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", extra, code, errOut)
		}
		return out
	}
	if out := dry(); strings.Contains(out, "daemon") || strings.Contains(out, "evil.example.test") || !strings.Contains(out, "app.example.test") {
		t.Errorf("default (confined): the /evil app's global section, or the app itself, is in the output, or /app is not:\n%s", out)
	}
	if out := dry("--label-templates", "full"); !strings.Contains(out, "  daemon") {
		t.Errorf("--label-templates full: the label's template is not written as given:\n%s", out)
	}
}
