package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// bambooRulesTemplate is a template in bamboo's template language, written for this test: one
// frontend that routes each app by its bamboo rule ($service.Acl) when ZooKeeper holds one, by
// <MesosDnsId>.bamboo.test otherwise, and one backend per app with its tasks. It calls each
// function bamboo gives templates. %d is the frontend's port.
const bambooRulesTemplate = `global
    maxconn 200

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend bamboo-http
    bind 127.0.0.1:%d
{{- $services := .Services }}
{{- range $app := .Apps }}
{{- $backend := Replace $app.EscapedId "::" "-" -1 }}
{{- if hasKey $services $app.Id }}
{{- $service := getService $services $app.Id }}
    # bamboo rule of {{ $service.Id }}: {{ index $service.Config "Acl" }}
    acl rule{{ $backend }} {{ $service.Acl }}
{{- else }}
    acl rule{{ $backend }} hdr(host) -i {{ ToLower $app.MesosDnsId }}.{{ Join (Split "bamboo/test" "/") "." }}
{{- end }}
    use_backend app{{ $backend }} if rule{{ $backend }}
{{- end }}
{{ range $app := .Apps }}
backend app{{ Replace $app.EscapedId "::" "-" -1 }}
    # {{ ToUpper $app.Id }} in {{ len $app.SplitId }} parts, service port {{ $app.ServicePort }}
{{- if Contains $app.Id "/shop/" }}
    balance roundrobin
{{- end }}
{{- range $task := $app.Tasks }}
    server task-{{ $task.Port }} {{ $task.Host }}:{{ $task.Port }}{{ with index $app.Labels "WEIGHT" }} weight {{ ToInt . }}{{ end }}
{{- end }}
{{ end }}`

// hostStatus sends GET / with Host host to addr and returns the status and the id of the
// backend that answered ("" when HAProxy answered itself).
func hostStatus(c *http.Client, addr, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Backend-Id"), nil
}

// TestBambooTemplateRuleInZooKeeper: serve --bamboo-config with a production.json naming the
// fake Marathon, a ZooKeeper rules path and a bamboo template routes an unlabelled app through
// real HAProxy by the template's default vhost; a rule written into ZooKeeper in bamboo's node
// format then moves it to the rule's Host (the old vhost answers 503), while a hostile rule
// (an ACL that would add a bind line) for another app is left out; deleting the rule brings
// the default vhost back.
func TestBambooTemplateRuleInZooKeeper(t *testing.T) {
	t.Parallel()
	bin := haproxytest.Bin(t)
	zkServer := zktest.Start(t)
	const rulesPath = "/bamboo/services"
	backend := haproxytest.Backend(t)
	// An app as a bamboo cluster has it: no HAPROXY_GROUP label.
	fm := startLBMarathon(t,
		map[string]any{"id": "/shop/web", "instances": 0, "labels": map[string]any{"WEIGHT": "2"},
			"portDefinitions": []any{map[string]any{"port": FreePort(t), "protocol": "tcp"}}},
		map[string]any{"id": "/evil/app", "instances": 0,
			"portDefinitions": []any{map[string]any{"port": FreePort(t), "protocol": "tcp"}}})
	addTask(t, fm, "/shop/web", backend)
	addTask(t, fm, "/evil/app", haproxytest.Backend(t))

	dir := t.TempDir()
	front := loopbackAddr(t)
	_, frontPort, _ := net.SplitHostPort(front)
	port, _ := strconv.Atoi(frontPort)
	tpl := filepath.Join(dir, "haproxy_template.cfg")
	if err := os.WriteFile(tpl, []byte(fmt.Sprintf(bambooRulesTemplate, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	prod := filepath.Join(dir, "production.json")
	prodJSON := fmt.Sprintf(`{
  "Marathon": {"Endpoint": %q, "UseEventStream": true},
  "Bamboo": {"Endpoint": "http://127.0.0.1:8000", "Zookeeper": {"Host": %q, "Path": %q, "ReportingDelay": 5}},
  "HAProxy": {"TemplatePath": %q, "OutputPath": "/etc/haproxy/haproxy.cfg",
    "ReloadCommand": "haproxy -f /etc/haproxy/haproxy.cfg -p /var/run/haproxy.pid -sf $(cat /var/run/haproxy.pid)"},
  "StatsD": {"Enabled": false, "Host": "localhost:8125", "Prefix": "bamboo-server.production."}
}`, fm.URL(), zkServer.Addr(), rulesPath, tpl)
	if err := os.WriteFile(prod, []byte(prodJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	lb := Start(t, "--bamboo-config", prod, "--haproxy-bin", bin,
		"--http-bind", loopbackAddr(t), "--https-bind", loopbackAddr(t), "--stats-bind", loopbackAddr(t),
		"--no-appid-frontend", "--run-dir", haproxytest.SocketDir(t),
		"--reload-min-wait", "20ms", "--reload-max-wait", "200ms")
	lb.WaitReady(t)

	c := lbClient(t, false)
	const oldHost, newHost = "web-shop.bamboo.test", "new.example.test"
	wantRoute := func(what, host string, wantCode int, wantID string) {
		t.Helper()
		Eventually(t, lbTimeout, what, func() error {
			code, id, err := hostStatus(c, front, host)
			if err != nil {
				return err
			}
			if code != wantCode || id != wantID {
				return fmt.Errorf("Host %s: status %d from %q, want %d from %q", host, code, id, wantCode, wantID)
			}
			return nil
		})
	}
	wantRoute("the template's default vhost reaches the task", oldHost, http.StatusOK, backend.ID)
	wantRoute("no rule yet for "+newHost, newHost, http.StatusServiceUnavailable, "")

	// The hostile rule first: once the honest one shows, the hostile one has been read too.
	sneaky := loopbackAddr(t)
	writeRuleNode(t, zkServer, rulesPath, "/evil/app", "hdr(host) -i evil.test\n    bind "+sneaky)
	writeRuleNode(t, zkServer, rulesPath, "/shop/web", "hdr(host) -i "+newHost)
	wantRoute("the ZooKeeper rule's Host reaches the task", newHost, http.StatusOK, backend.ID)
	wantRoute("the old vhost no longer routes", oldHost, http.StatusServiceUnavailable, "")

	// HAProxy's new worker may answer before lodestar publishes the configuration it reloaded.
	var cfg []byte
	Eventually(t, lbTimeout, "the reloaded configuration at /v1/haproxy/config", func() error {
		code, body, err := Get(lb.URL("/v1/haproxy/config"))
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /v1/haproxy/config: %d %v", code, err)
		}
		cfg = body
		if !strings.Contains(string(cfg), "# bamboo rule of /shop/web: hdr(host) -i "+newHost) {
			return fmt.Errorf("no bamboo rule comment in:\n%s", cfg)
		}
		return nil
	})
	for _, want := range []string{"acl rule-shop-web hdr(host) -i " + newHost, "weight 2", "balance roundrobin", "# /SHOP/WEB in 3 parts"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("the running configuration has no %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(string(cfg), sneaky) || strings.Contains(string(cfg), "evil.test") {
		t.Errorf("the hostile rule reached the configuration:\n%s", cfg)
	}
	if conn, err := net.DialTimeout("tcp", sneaky, time.Second); err == nil {
		conn.Close()
		t.Errorf("HAProxy listens on %s, the hostile rule's bind", sneaky)
	}
	checkHAProxyConfig(t, bin, cfg)

	// The rule removed from ZooKeeper: the template's default vhost routes again.
	deleteRuleNode(t, zkServer, rulesPath+"/"+url.QueryEscape("/shop/web"))
	wantRoute("the default vhost once the rule is deleted", oldHost, http.StatusOK, backend.ID)
	wantRoute("the deleted rule's Host no longer routes", newHost, http.StatusServiceUnavailable, "")
}

// deleteRuleNode removes a rule's node from ZooKeeper, as bamboo's DELETE does.
func deleteRuleNode(t *testing.T, server *zktest.Server, node string) {
	t.Helper()
	conn, _, err := zk.Connect([]string{server.Addr()}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Delete(node, -1); err != nil {
		t.Fatalf("deleting %s: %v", node, err)
	}
}

// checkHAProxyConfig runs `haproxy -c` on cfg and fails t with its output when HAProxy rejects it.
func checkHAProxyConfig(t *testing.T, bin string, cfg []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c rejects the rendered configuration: %v\n%s", err, out)
	}
}
