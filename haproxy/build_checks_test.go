package haproxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// TestRuntimePathGetsOnlyCheckedValues: a task that changes at runtime (no reload) reaches
// the Runtime API only through the model's slots, so a hostile host or address is never a
// runtime command either, in ACL and in map mode; the honest change beside it is.
func TestRuntimePathGetsOnlyCheckedValues(t *testing.T) {
	for _, mapMode := range []bool{false, true} {
		cfg := testConfig()
		cfg.Groups = []string{"*"}
		cfg.HAProxyMap = mapMode
		honest := func(extra ...*discovery.Task) *discovery.App {
			a := evilApp()
			a.Tasks = append(a.Tasks, extra...)
			return a
		}
		prev := Build(snapshot(t, append(victimApps(), honest())...), cfg, nil)
		next := Build(snapshot(t, append(victimApps(), honest(
			task("evil.2", host("10.0.0.10"+pwned), ports(31010)),
			task("evil.3", taskIP("10.1.0.10 port 1"), ports(31011)),
			task("evil.4", host("10.0.0.11"), ports(31012))))...), cfg, prev)
		p := MakePlan(prev, next)
		var cmds []string
		for _, c := range p.Runtime {
			cmds = append(cmds, c.String())
		}
		all := strings.Join(cmds, "\n")
		if strings.Contains(all, "pwned") || strings.Contains(all, "port 1 ") || strings.Contains(all, "10.1.0.10") {
			t.Errorf("map %v: a hostile value reached the runtime API: %q", mapMode, cmds)
		}
		if p.Reload || !strings.Contains(all, "addr 10.0.0.11 port 31012") && !strings.Contains(all, " 10.0.0.11:31012") {
			t.Errorf("map %v: plan %+v, want the honest task set at runtime", mapMode, p)
		}
		var warned int
		for _, w := range next.Warnings {
			if w.AppID == evilID && strings.Contains(w.Message, "task left out") {
				warned++
			}
		}
		if warned != 2 {
			t.Errorf("map %v: %d task warnings, want 2: %+v", mapMode, warned, next.Warnings)
		}
	}
}

// TestLabelTemplatesFlagValues: --label-templates takes confined or full; confined is the
// zero value.
func TestLabelTemplatesFlagValues(t *testing.T) {
	for s, want := range map[string]LabelTemplates{"confined": LabelTemplatesConfined, "full": LabelTemplatesFull} {
		got, err := ParseLabelTemplates(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "Full", "raw", "confined\n"} {
		if _, err := ParseLabelTemplates(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if (Config{}).LabelTemplates != LabelTemplatesConfined {
		t.Error("the zero Config does not confine template labels")
	}
}

// templatedApp is an app with the template labels marathon-lb's documentation shows.
func templatedApp(id string, port int) *discovery.App {
	return app(id, withPorts(port),
		withLabel("HAPROXY_0_VHOST", strings.ReplaceAll(id[1:], "/", "-")+".example.test"),
		withLabel("HAPROXY_0_STICKY", "true"),
		withLabel("HAPROXY_0_BACKEND_HEAD", "backend {backend}\n  balance {balance}\n  mode {mode}\n  timeout server 30m\n"),
		withLabel("HAPROXY_0_HTTP_FRONTEND_ACL", "  acl host_{cleanedUpHostname} hdr(host) -i {hostname}\n  acl is_ws_{backend} hdr(upgrade) -i websocket\n  use_backend {backend} if host_{cleanedUpHostname} is_ws_{backend}\n"),
		withLabel("HAPROXY_0_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:{port}{cookieOptions}{healthCheckOptions}{otherOptions} maxconn 50\n"),
		withLabel("HAPROXY_0_FRONTEND_HEAD", "frontend {backend}\n  bind {bindAddr}:{servicePort}{sslCert}{bindOptions}\n  mode {mode}\n  timeout client 30m\n"),
		withTasks(task(id[1:]+".1", host("10.0.0.1"), ports(31000)), task(id[1:]+".2", host("10.0.0.2"), ports(31000))))
}

// BenchmarkBuildTemplatedApps: the cost of confinement for apps with four template labels
// each: 500 of them built from scratch, confined against full (divide by 500 for one app).
// The config-parser verdicts are cached by text (an app that rebuilds renders the same text;
// BenchmarkConfineSnippetCold is a text never seen).
func BenchmarkBuildTemplatedApps(b *testing.B) {
	apps := make([]*discovery.App, 500)
	for i := range apps {
		apps[i] = templatedApp(fmt.Sprintf("/bench/t%03d", i), 27500+i)
	}
	snap := snapshot(b, apps...)
	for _, mode := range []LabelTemplates{LabelTemplatesFull, LabelTemplatesConfined} {
		cfg := testConfig()
		cfg.LabelTemplates = mode
		cfg.Groups = []string{"*"}
		if m := Build(snap, cfg, nil); len(m.Excluded) > 0 || len(m.Backends) != len(apps) {
			b.Fatalf("%d backends, excluded %v", len(m.Backends), excluded(m))
		}
		b.Run(mode.String(), func(b *testing.B) {
			measure(b, func() { Build(snap, cfg, nil) })
		})
	}
}
