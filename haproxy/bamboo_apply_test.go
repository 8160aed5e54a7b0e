package haproxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// TestBambooTemplateModeReloadsOnChange: in bamboo template mode HAProxy runs the template's
// configuration, traffic reaches the task through it, and a task moving in Marathon or a
// bamboo rule changing reloads HAProxy (no Runtime API), after which traffic follows.
func TestBambooTemplateModeReloadsOnChange(t *testing.T) {
	frontPort := haproxytest.FreePort(t)
	tpl, err := ParseBambooTemplate("bamboo.cfg", fmt.Sprintf(bambooTestTemplate, frontPort))
	if err != nil {
		t.Fatal(err)
	}
	cfg := applierConfig(t)
	s := newApplierStack(t, cfg, false)
	s.a.UseBambooTemplate(tpl)
	webApp := func(backendPort int) *discovery.App {
		return app("/shop/web", withPorts(10001), withTasks(task("web.1", host("127.0.0.1"), ports(backendPort))))
	}
	s.start(webApp(echoBackend(t, "web-1")))
	if text := s.onDisk(); !strings.Contains(text, "acl ::shop::web-aclrule hdr_dom(host) -i web-shop.apps.example") {
		t.Fatalf("HAProxy does not run the template's configuration:\n%s", text)
	}
	url := servicePortURL(frontPort)
	waitBackend := func(host, id string) {
		t.Helper()
		haproxytest.WaitFor(t, 20*time.Second, func() bool {
			r, err := trySend(trafficReq{url: url, host: host})
			return err == nil && r.id() == id
		}, fmt.Sprintf("Host %s answered by %s", host, id))
	}
	waitBackend("web-shop.apps.example", "web-1")
	reloads := s.a.Status().Reloads

	s.reg.replace(t, webApp(echoBackend(t, "web-2")))
	waitBackend("web-shop.apps.example", "web-2")
	// HAProxy's new worker may answer before the Applier has recorded the reload.
	haproxytest.WaitFor(t, 20*time.Second, func() bool { return s.a.Status().Reloads > reloads }, "the reload recorded")
	st := s.a.Status()
	if st.Reloads <= reloads || st.RuntimeApplies != 0 || st.LastReload == nil || !strings.Contains(st.LastReload.Reason, "bamboo") {
		t.Errorf("status %+v, last apply %+v: want a reload for the bamboo template's output (from %d), and no Runtime API apply", st, st.LastApply, reloads)
	}

	s.reg.send(t, discovery.ReplaceRules{Rules: map[string]discovery.ServiceRule{
		"/shop/web": {AppID: "/shop/web", ACL: "hdr(host) -i shop.example.com"},
	}})
	waitBackend("shop.example.com", "web-2")
	if !strings.Contains(s.onDisk(), "acl ::shop::web-aclrule hdr(host) -i shop.example.com") {
		t.Errorf("the rule did not reach the configuration:\n%s", s.onDisk())
	}
}

// TestBambooTemplateModeKeepsRunningConfigOnInvalidOutput: output HAProxy rejects is never
// installed; HAProxy keeps the previous configuration, and the failure is recorded.
func TestBambooTemplateModeKeepsRunningConfigOnInvalidOutput(t *testing.T) {
	frontPort := haproxytest.FreePort(t)
	text := fmt.Sprintf(bambooTestTemplate, frontPort) + "\n{{ range .Apps }}{{ if index .Labels \"BREAK\" }}no-such-section here{{ end }}{{ end }}\n"
	tpl, err := ParseBambooTemplate("bamboo.cfg", text)
	if err != nil {
		t.Fatal(err)
	}
	s := newApplierStack(t, applierConfig(t), false)
	s.a.UseBambooTemplate(tpl)
	port := echoBackend(t, "web-1")
	s.start(app("/shop/web", withPorts(10001), withTasks(task("web.1", host("127.0.0.1"), ports(port)))))
	before := s.onDisk()
	s.reg.replace(t, app("/shop/web", withPorts(10001), withLabel("BREAK", "1"), withTasks(task("web.1", host("127.0.0.1"), ports(port)))))
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		la := s.a.Status().LastApply
		return la != nil && la.Kind == "failed"
	}, "the invalid configuration recorded as failed")
	if s.onDisk() != before {
		t.Errorf("a configuration HAProxy rejects was installed:\n%s", s.onDisk())
	}
	if r, err := trySend(trafficReq{url: servicePortURL(frontPort), host: "web-shop.apps.example"}); err != nil || r.id() != "web-1" {
		t.Errorf("HAProxy stopped serving the previous configuration: %v %v", r, err)
	}
}
