package haproxy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// bambooTestTemplate is a template in bamboo's language, written for these tests, that uses
// every field of bamboo's template data and every function bamboo gives templates. %d is the
// frontend's port.
const bambooTestTemplate = `global
    maxconn 1000

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
{{- $service := getService $services $app.Id }}
    # rule of {{ $service.Id }}: {{ index $service.Config "Acl" }}
    acl {{ $app.EscapedId }}-aclrule {{ $service.Acl }}
{{- else }}
    acl {{ $app.EscapedId }}-aclrule hdr_dom(host) -i {{ $app.MesosDnsId }}.{{ ToLower (Join (Split "APPS.EXAMPLE" ".") ".") }}
{{- end }}
    use_backend {{ Replace $app.EscapedId "::" "_" -1 }} if {{ $app.EscapedId }}-aclrule
{{- end }}
{{ range $app := .Apps }}
backend {{ Replace $app.EscapedId "::" "_" -1 }}
    # id {{ $app.Id }} parts {{ Join $app.SplitId "|" }} service port {{ $app.ServicePort }} ports {{ range $app.ServicePorts }}{{ . }} {{ end }}
    # env {{ len $app.Env }} owner {{ ToUpper (index $app.Labels "OWNER") }} readiness {{ $app.ReadinessCheckPath }}
{{- range $app.HealthChecks }}
    # health check {{ .Protocol }} {{ .Path }} index {{ .PortIndex }}
{{- end }}
{{- range $app.IpAddress.Discovery.Ports }}
    # discovery port {{ .Number }} {{ .Name }} {{ .Protocol }}
{{- end }}
{{- if $app.HealthCheckPath }}
    option httpchk GET {{ $app.HealthCheckPath }}
{{- end }}
{{- if Contains $app.Id "weighted" }}
    balance roundrobin
{{- end }}
{{- range $task := $app.Tasks }}
    # task {{ $task.Id }} {{ $task.State }} alive {{ $task.Alive }} ready {{ $task.Ready }} ports {{ range $task.Ports }}{{ . }} {{ end }}
    server {{ $task.Host }}-{{ $task.Port }} {{ $task.Host }}:{{ $task.Port }}{{ with index $app.Labels "WEIGHT" }} weight {{ ToInt . }}{{ end }}{{ if $app.HealthCheckPath }} check{{ end }}{{ if eq $app.HealthCheckProtocol "HTTPS" }} ssl verify none{{ end }}{{ if not $task.Ready }} disabled{{ end }}
{{- end }}
{{ end }}`

func bambooFixture(t *testing.T) *discovery.Snapshot {
	t.Helper()
	notReady := false
	web := app("/shop/web", withPorts(10001), withLabel("OWNER", "team-a"), withLabel("WEIGHT", "3"),
		withLabel("EVIL", "x\n    bind :1"), withHealthCheck("HTTP", "/health", 0),
		withTasks(task("web.1", host("127.0.0.11"), ports(31001), health(true)),
			task("web.2", host("127.0.0.12"), ports(31002), health(false))))
	web.ReadinessChecks = []discovery.ReadinessCheck{{Name: "ready", Protocol: "HTTP", Path: "/ready"}}
	api := app("/shop/api", withContainerPorts(8080), withHealthCheck("TCP", "", 0),
		withTasks(task("api.1", taskIP("127.0.0.21"), func(t *discovery.Task) { t.Ready = &notReady })))
	api.Ports[0].Name = "http"
	weighted := app("/weighted/app", withPorts(10003), withLabel("HAPROXY_GROUP", "internal"),
		withTasks(task("w.1", host("127.0.0.31"), ports(31003))))
	snap := *snapshot(t, web, api, weighted)
	snap.Rules = map[string]discovery.ServiceRule{
		"/shop/web":  {AppID: "/shop/web", ACL: "hdr(host) -i shop.example.com"},
		"/shop/evil": {AppID: "/shop/evil", ACL: "path_beg /\n    bind :2"},
	}
	return &snap
}

// TestBambooTemplateData: bamboo's template data, field by field, from lodestar's snapshot.
func TestBambooTemplateData(t *testing.T) {
	d := NewBambooData(bambooFixture(t), []string{"*"})
	if len(d.Apps) != 3 || d.Apps[0].Id != "/shop/api" || d.Apps[1].Id != "/shop/web" || d.Apps[2].Id != "/weighted/app" {
		t.Fatalf("apps %+v, want /shop/api, /shop/web, /weighted/app in id order", d.Apps)
	}
	web := d.Apps[1]
	if web.MesosDnsId != "web-shop" || web.EscapedId != "::shop::web" || strings.Join(web.SplitId, "|") != "|shop|web" ||
		web.ServicePort != 10001 || web.HealthCheckPath != "/health" || web.HealthCheckProtocol != "HTTP" ||
		web.ReadinessCheckPath != "/ready" || web.Labels["OWNER"] != "team-a" || len(web.Env) != 0 {
		t.Errorf("web %+v", web)
	}
	if _, ok := web.Labels["EVIL"]; ok {
		t.Errorf("a label with a line break reached the template: %q", web.Labels["EVIL"])
	}
	if len(web.Tasks) != 2 || web.Tasks[0].Host != "127.0.0.11" || web.Tasks[0].Port != 31001 || !web.Tasks[0].Alive ||
		web.Tasks[1].Alive || web.Tasks[0].State != discovery.StateRunning || web.Tasks[0].Ports[0] != 31001 {
		t.Errorf("web tasks %+v", web.Tasks)
	}
	api := d.Apps[0]
	if len(api.IpAddress.Discovery.Ports) != 1 || api.IpAddress.Discovery.Ports[0] != (BambooPort{Number: 8080, Name: "http", Protocol: "tcp"}) ||
		len(api.Tasks) != 1 || api.Tasks[0].Host != "127.0.0.21" || api.Tasks[0].Port != 8080 || api.Tasks[0].Ready ||
		api.HealthCheckPath != "" || len(api.HealthChecks) != 1 {
		t.Errorf("api %+v", api)
	}
	if s, ok := d.Services["/shop/web"]; !ok || s.Acl != "hdr(host) -i shop.example.com" || s.Config["Acl"] != s.Acl {
		t.Errorf("services %+v", d.Services)
	}
	if _, ok := d.Services["/shop/evil"]; ok {
		t.Error("a rule with a line break reached the template")
	}
	if d := NewBambooData(bambooFixture(t), []string{"internal"}); len(d.Apps) != 1 || d.Apps[0].Id != "/weighted/app" {
		t.Errorf("--group internal: apps %+v, want /weighted/app only", d.Apps)
	}
}

// TestBambooTemplateRendersValidConfig: the test template over the fixture renders every field
// and passes haproxy -c.
func TestBambooTemplateRendersValidConfig(t *testing.T) {
	bin := haproxytest.Bin(t)
	tpl, err := ParseBambooTemplate("test.cfg", fmt.Sprintf(bambooTestTemplate, haproxytest.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Render(bambooFixture(t), []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"acl ::shop::web-aclrule hdr(host) -i shop.example.com",
		"# rule of /shop/web: hdr(host) -i shop.example.com",
		"acl ::shop::api-aclrule hdr_dom(host) -i api-shop.apps.example",
		"use_backend _shop_web if ::shop::web-aclrule",
		"# id /shop/web parts |shop|web service port 10001 ports 10001 ",
		"# env 0 owner TEAM-A readiness /ready",
		"# health check HTTP /health index 0",
		"# discovery port 8080 http tcp",
		"option httpchk GET /health",
		"server 127.0.0.11-31001 127.0.0.11:31001 weight 3 check",
		"# task web.2 TASK_RUNNING alive false ready",
		"server 127.0.0.21-8080 127.0.0.21:8080 disabled",
		"balance roundrobin",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "bind :1") || strings.Contains(text, "bind :2") {
		t.Errorf("a value with a line break wrote its own line:\n%s", text)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, msg, text)
	}
}

func TestBambooTemplateErrors(t *testing.T) {
	if _, err := ParseBambooTemplate("bad.cfg", "{{ range .Apps }}"); err == nil || !strings.Contains(err.Error(), "bad.cfg") {
		t.Errorf("unclosed range: error %v", err)
	}
	if _, err := ParseBambooTemplate("bad.cfg", "{{ noSuchFunc }}"); err == nil {
		t.Error("unknown function: no error")
	}
	tpl, err := ParseBambooTemplate("toint.cfg", `{{ range .Apps }}{{ ToInt (index .Labels "OWNER") }}{{ end }}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Render(bambooFixture(t), []string{"*"}); err == nil || !strings.Contains(err.Error(), "toint.cfg") {
		t.Errorf("ToInt of a word: error %v, want one naming the template", err)
	}
	if _, err := LoadBambooTemplate(filepath.Join(t.TempDir(), "missing.cfg")); err == nil {
		t.Error("a missing file: no error")
	}
}
