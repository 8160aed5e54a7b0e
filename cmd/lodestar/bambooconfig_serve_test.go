package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// bambooServeTemplate is a small template in bamboo's language, written for this test: one
// frontend routing each app by its bamboo rule or by its MesosDnsId, one backend per app.
const bambooServeTemplate = `global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http-in
    bind 127.0.0.1:%d
{{- $services := .Services }}
{{- range $app := .Apps }}
{{- if hasKey $services $app.Id }}
    acl {{ $app.EscapedId }}-aclrule {{ (getService $services $app.Id).Acl }}
{{- else }}
    acl {{ $app.EscapedId }}-aclrule hdr(host) -i {{ $app.MesosDnsId }}.test
{{- end }}
    use_backend {{ $app.EscapedId }}-cluster if {{ $app.EscapedId }}-aclrule
{{- end }}
{{ range $app := .Apps }}
backend {{ $app.EscapedId }}-cluster
{{- range $app.Tasks }}
    server {{ .Host }}-{{ .Port }} {{ .Host }}:{{ .Port }}
{{- end }}
{{ end }}`

// idServer answers every request with its id.
func idServer(t *testing.T, id string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, id)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func writeBambooApps(t *testing.T, path string, taskPort int) {
	t.Helper()
	apps := fmt.Sprintf(`{"apps": [{"id": "/shop/web", "instances": 1, "ports": [10001],
  "tasks": [{"id": "web.1", "appId": "/shop/web", "host": "127.0.0.1", "ports": [%d], "state": "TASK_RUNNING",
    "startedAt": "2026-11-01T10:00:03.000Z", "version": "2026-11-01T10:00:00.000Z"}]}]}`, taskPort)
	if err := os.WriteFile(path+".tmp", []byte(apps), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestServeBambooConfig: serve --bamboo-config with a production.json naming a bamboo template
// serves every app (no HAPROXY_GROUP needed) through the template's configuration in real
// HAProxy, and a change in the apps reloads it.
func TestServeBambooConfig(t *testing.T) {
	haproxytest.Bin(t)
	dir := t.TempDir()
	front := haproxytest.FreePort(t)
	tplPath := filepath.Join(dir, "haproxy_template.cfg")
	if err := os.WriteFile(tplPath, []byte(fmt.Sprintf(bambooServeTemplate, front)), 0o600); err != nil {
		t.Fatal(err)
	}
	appsPath := filepath.Join(dir, "apps.json")
	writeBambooApps(t, appsPath, idServer(t, "web-1"))
	prod := writeJSON(t, fmt.Sprintf(`{"HAProxy": {"TemplatePath": %q, "ReloadCommand": "haproxy -f /etc/haproxy/haproxy.cfg -sf $(cat /run/haproxy.pid)"},
  "StatsD": {"Enabled": true, "Host": "localhost:8125"}}`, tplPath))
	bind := func() string { return "127.0.0.1:" + strconv.Itoa(haproxytest.FreePort(t)) }
	_, logs := runServe(t, "--api-listen", "127.0.0.1:0", "--bamboo-config", prod, "--haproxy=true",
		"--apps-file", appsPath, "--file-poll-interval", "50ms", "--reload-min-wait", "0s",
		"--http-bind", bind(), "--https-bind", bind(), "--stats-bind", bind(), "--appid-bind", bind())
	for _, want := range []string{"--group '*'", "ReloadCommand", "/metrics", "bamboo template mode"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}
	get := func() string {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(front)+"/", nil)
		req.Host = "web-shop.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return get() == "web-1" }, "web-shop.test answered by web-1 through HAProxy")
	writeBambooApps(t, appsPath, idServer(t, "web-2"))
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return get() == "web-2" }, "web-shop.test answered by web-2 after the task moved")
	// HAProxy's new worker may answer before lodestar logs the reload.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := logs.Wait(ctx, `msg="HAProxy reloaded"`, `reason="the bamboo template's output changed"`); err != nil {
		t.Errorf("no reload for the template's output in the log (%v):\n%s", err, logs)
	}
}
