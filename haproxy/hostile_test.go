package haproxy

import (
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// The hostile-input corpus of issue 12: a victim app (a vhost with a path, and a TCP app)
// beside one hostile app. Whatever the hostile app carries, it is left out (or the value
// refused) with a message naming it, and every line the victims see is byte for byte what
// they see without it.

// victimApps are the apps every hostile case runs beside.
func victimApps() []*discovery.App {
	return []*discovery.App{
		app("/victim/web", withPorts(27100),
			withLabel("HAPROXY_0_VHOST", "victim.example.test"),
			withLabel("HAPROXY_0_PATH", "/shop"),
			withLabel("HAPROXY_0_AUTH", "Victim:admin:$6$salt$hash"),
			withHealthCheck("HTTP", "/health", 0),
			withTasks(task("victim-web.1", host("10.0.0.1"), ports(31000), health(true)))),
		app("/victim/db", withPorts(27200),
			withTasks(task("victim-db.1", host("10.0.0.2"), ports(31001)))),
		// A plain vhost: with --haproxy-map the victims use the maps too.
		app("/victim/plain", withPorts(27400), withLabel("HAPROXY_0_VHOST", "plain.victim.test"),
			withTasks(task("victim-plain.1", host("10.0.0.3"), ports(31002)))),
	}
}

// evilID sorts after the victims: backend ids are given in name order before templates
// render, so an app left out at render time on a cold start would move the ids of the apps
// after it (TestHostileAppSortingFirst covers a running edge, where ids are kept).
const evilID = "/x/evil"

// evilApp is the hostile tenant as an honest app: a vhost app with one task. Cases change it.
func evilApp() *discovery.App {
	return app(evilID, withPorts(27300),
		withLabel("HAPROXY_0_VHOST", "evil.example.test"),
		withTasks(task("evil.1", host("10.0.0.9"), ports(31009))))
}

type hostileCase struct {
	name string
	// mutate turns the honest evil app into the hostile one.
	mutate func(a *discovery.App)
	// rule is a routing rule for the evil app (PUT /api/services), "" for none.
	rule string
	// cfg changes the build configuration (map mode).
	cfg func(*Config)
	// want is a substring of the exclusion (or, with task, of the warning) naming the label
	// or field.
	want string
	// task: the value is a task's, the app's last; the task is left out with a warning and
	// the app stays, rendered exactly as without that task.
	task bool
	// absent must not appear in the configuration or the map files.
	absent string
}

func label(k, v string) func(*discovery.App) {
	return func(a *discovery.App) { a.Labels[k] = v }
}

func taskField(f func(*discovery.Task)) func(*discovery.App) {
	return func(a *discovery.App) {
		t := task("evil.2", host("10.0.0.10"), ports(31010))
		f(t)
		a.Tasks = append(a.Tasks, t)
	}
}

const pwned = "\n  http-request return status 200 content-type text/plain string pwned"

var hostileCases = []hostileCase{
	// Item 1: a template that daemonizes HAProxy.
	{name: "1 backend head opens global", mutate: label("HAPROXY_0_BACKEND_HEAD",
		"\nglobal\n  daemon\n\nbackend {backend}\n  balance {balance}\n  mode {mode}\n"), want: "HAPROXY_0_BACKEND_HEAD", absent: "daemon"},
	// Item 2: per-app templates opening sections, admin sockets, programs, shared-frontend rules,
	// a server line at lodestar's API.
	{name: "2 second global with admin socket", mutate: label("HAPROXY_0_BACKEND_HEAD",
		"backend {backend}\n  mode {mode}\nglobal\n  stats socket /tmp/x.sock mode 666 level admin\n"), want: "HAPROXY_0_BACKEND_HEAD", absent: "mode 666"},
	{name: "2 frontend head opens another frontend", mutate: label("HAPROXY_0_FRONTEND_HEAD",
		"frontend {backend}\n  bind {bindAddr}:{servicePort}\n  mode {mode}\nfrontend stolen\n  bind *:27100\n"), want: "HAPROXY_0_FRONTEND_HEAD", absent: "stolen"},
	{name: "2 external-check command", mutate: func(a *discovery.App) {
		withHealthCheck("HTTP", "/", 0)(a)
		a.Labels["HAPROXY_0_BACKEND_HTTP_HEALTHCHECK_OPTIONS"] = "  option external-check\n  external-check command /usr/bin/touch\n"
	}, want: "HAPROXY_0_BACKEND_HTTP_HEALTHCHECK_OPTIONS", absent: "/usr/bin/touch"},
	{name: "2 unconditioned rule in the shared frontend", mutate: label("HAPROXY_0_HTTP_FRONTEND_ACL",
		"  use_backend {backend}\n"), want: "HAPROXY_0_HTTP_FRONTEND_ACL"},
	{name: "2 rule for the victim's host", mutate: label("HAPROXY_0_HTTP_FRONTEND_ACL",
		"  acl host_victim hdr(host) -i victim.example.test\n  use_backend {backend} if host_victim\n"), want: "HAPROXY_0_HTTP_FRONTEND_ACL", absent: "acl host_victim hdr"},
	{name: "2 route to the victim's backend", mutate: label("HAPROXY_0_FRONTEND_BACKEND_GLUE",
		"  use_backend victim_web_27100\n"), want: "HAPROXY_0_FRONTEND_BACKEND_GLUE"},
	{name: "2 server at lodestar's API", mutate: label("HAPROXY_0_BACKEND_SERVER_OPTIONS",
		"  server {serverName} 127.0.0.1:8090{cookieOptions}{healthCheckOptions}{otherOptions}\n"), want: "HAPROXY_0_BACKEND_SERVER_OPTIONS", absent: "127.0.0.1:8090"},
	{name: "2 lua", mutate: label("HAPROXY_0_BACKEND_HTTP_OPTIONS",
		"  http-request lua.pwn\n"), want: "HAPROXY_0_BACKEND_HTTP_OPTIONS", absent: "lua"},
	{name: "2 userlist head adds a user to another list", mutate: func(a *discovery.App) {
		a.Labels["HAPROXY_0_AUTH"] = "Evil:root:$6$s$h"
		a.Labels["HAPROXY_0_USERLIST_HEAD"] = "userlist user_victim_web_27100\n  user root password $6$s$h\n"
	}, want: "HAPROXY_0_USERLIST_HEAD", absent: "userlist user_victim_web_27100\n  user root"},
	{name: "2 app id frontend hijack", mutate: label("HAPROXY_0_HTTP_FRONTEND_APPID_ACL",
		"  acl app__victim_web hdr(x-marathon-app-id) -i /victim/web\n  use_backend {backend} if app__victim_web\n"), want: "HAPROXY_0_HTTP_FRONTEND_APPID_ACL"},
	// Item 3: bind addresses that bind the shared or the victim's port, or a file.
	{name: "3 bind addr list", mutate: label("HAPROXY_0_BIND_ADDR", "127.0.0.1:27080,127.0.0.1:27100,127.0.0.1"), want: "HAPROXY_0_BIND_ADDR", absent: "127.0.0.1:27080"},
	{name: "3 bind addr unix socket", mutate: label("HAPROXY_0_BIND_ADDR", "unix@/some/file,127.0.0.1"), want: "HAPROXY_0_BIND_ADDR", absent: "unix@/some/file"},
	{name: "3 bind options second address", mutate: label("HAPROXY_0_BIND_OPTIONS", "accept-proxy,127.0.0.1:27100"), want: "HAPROXY_0_BIND_OPTIONS", absent: "accept-proxy"},
	{name: "3 bind options user", mutate: label("HAPROXY_0_BIND_OPTIONS", "user root mode 777"), want: "HAPROXY_0_BIND_OPTIONS", absent: "mode 777"},
	// Item 4: lodestar's environment.
	{name: "4 redirect reads env", mutate: label("HAPROXY_0_HTTP_BACKEND_REDIR", "%[env(LODESTAR_API_AUTH)]"), want: "HAPROXY_0_HTTP_BACKEND_REDIR", absent: "env("},
	{name: "4 auth realm expands env", mutate: label("HAPROXY_0_AUTH", "${LODESTAR_API_AUTH}:u:$6$s$h"), want: "HAPROXY_0_AUTH", absent: "${"},
	{name: "4 template sets header from env", mutate: label("HAPROXY_0_BACKEND_HTTP_OPTIONS",
		"  http-response set-header X-Token %[env(LODESTAR_API_AUTH)]\n"), want: "HAPROXY_0_BACKEND_HTTP_OPTIONS", absent: "env("},
	{name: "4 template expands env in quotes", mutate: label("HAPROXY_0_BACKEND_HTTP_OPTIONS",
		"  http-response set-header X-Token \"${LODESTAR_API_AUTH}\"\n"), want: "HAPROXY_0_BACKEND_HTTP_OPTIONS", absent: "${"},
	// Item 5: Marathon data written unescaped.
	{name: "5 task host injects", mutate: taskField(func(t *discovery.Task) { t.Host = "10.0.0.10" + pwned }), task: true, want: "task evil.2 host", absent: "pwned"},
	{name: "5 ip-per-task address injects", mutate: func(a *discovery.App) {
		withContainerPorts(8080)(a)
		a.Ports = a.Ports[1:]
		a.Ports[0].ServicePort = 27300
		a.Tasks = []*discovery.Task{task("evil.1", taskIP("10.1.0.9")), task("evil.2", taskIP("10.1.0.10"+pwned))}
	}, task: true, want: "ipAddresses", absent: "pwned"},
	{name: "5 app id injects", mutate: func(a *discovery.App) { a.ID = evilID + pwned }, want: "app id", absent: "pwned"},
	{name: "5 app id with space and quote", mutate: func(a *discovery.App) { a.ID = evilID + "/a b\"c" }, want: "app id", absent: "a b\""},
	{name: "5 task host injects a map line", mutate: taskField(func(t *discovery.Task) { t.Host = "10.0.0.10\nevil.example.test x_evil_27300" }),
		cfg: func(c *Config) { c.HAProxyMap = true }, task: true, want: "task evil.2 host", absent: "x_evil_27300\nevil"},
	{name: "5 vhost injects a map line", mutate: label("HAPROXY_0_VHOST", "evil.example.test\nvictim.example.test"),
		cfg: func(c *Config) { c.HAProxyMap = true }, want: "HAPROXY_0_VHOST"},
	{name: "5 health check path injects", mutate: func(a *discovery.App) {
		withHealthCheck("HTTP", "/"+pwned, 0)(a)
	}, want: "healthChecks[].path", absent: "pwned"},
	{name: "5 health check path expands env", mutate: func(a *discovery.App) {
		withHealthCheck("HTTP", "/${LODESTAR_API_AUTH}", 0)(a)
	}, want: "healthChecks[].path", absent: "${"},
	{name: "5 service port out of range", mutate: func(a *discovery.App) { a.Ports[0].ServicePort = 70000 }, want: "servicePort", absent: "70000"},
	{name: "5 deployment group key", mutate: label("HAPROXY_DEPLOYMENT_GROUP", "evil\"grp"), want: "HAPROXY_DEPLOYMENT_GROUP", absent: "evil\"grp"},
	// Item 6 and 13: ACL flags in PATH and VHOST read files (a fifo hung haproxy -c).
	{name: "6 path -f fifo", mutate: label("HAPROXY_0_PATH", "-f /path/to/fifo"), want: "HAPROXY_0_PATH", absent: "fifo"},
	{name: "6 path -f /dev/zero", mutate: label("HAPROXY_0_PATH", "-f /dev/zero"), want: "HAPROXY_0_PATH", absent: "/dev/zero"},
	{name: "13 path -f /etc/passwd", mutate: label("HAPROXY_0_PATH", "-f /etc/passwd"), want: "HAPROXY_0_PATH", absent: "/etc/passwd"},
	{name: "13 path with a later flag", mutate: label("HAPROXY_0_PATH", "/a -f /etc/passwd"), want: "HAPROXY_0_PATH", absent: "/etc/passwd"},
	{name: "13 path -m reg", mutate: label("HAPROXY_0_PATH", "-m reg ."), want: "HAPROXY_0_PATH", absent: "-m reg"},
	// Item 8's label shapes.
	{name: "8 vhost with a flag", mutate: label("HAPROXY_0_VHOST", "-f /etc/passwd"), want: "HAPROXY_0_VHOST", absent: "/etc/passwd"},
	{name: "8 port out of range", mutate: label("HAPROXY_0_PORT", "0"), want: "HAPROXY_0_PORT"},
	{name: "8 balance hash of env", mutate: label("HAPROXY_0_BALANCE", "hash env(LODESTAR_API_AUTH)"), want: "HAPROXY_0_BALANCE", absent: "env("},
	{name: "8 mode with a second directive", mutate: label("HAPROXY_0_MODE", "http\n  stats enable"), want: "HAPROXY_0_MODE"},
	// Item 10: a routing rule that broke every later validation.
	{name: "10 rule with a quote", rule: "hdr(host) -i \"a", want: "routing rule", absent: "\"a"},
	{name: "10 rule reads a file", rule: "path_beg -f /etc/passwd", want: "routing rule", absent: "/etc/passwd"},
	{name: "10 rule with env", rule: "hdr(x) -m str %[env(LODESTAR_API_AUTH)]", want: "routing rule", absent: "env("},
	// More of our own.
	{name: "network allowed not a network", mutate: label("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8 -f /etc/hosts"), want: "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", absent: "/etc/hosts"},
	{name: "ssl cert outside", mutate: label("HAPROXY_0_SSL_CERT", "/run/lodestar/../../etc/shadow"), want: "HAPROXY_0_SSL_CERT", absent: "shadow"},
	{name: "proxypass path regex", mutate: label("HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/a(.*)\\1"), want: "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", absent: "/a(.*)"},
	{name: "auth user with a newline", mutate: label("HAPROXY_0_AUTH", "R:u\n  user root insecure-password x:$6$s$h"), want: "HAPROXY_0_AUTH", absent: "insecure-password"},
	{name: "template with a control character", mutate: label("HAPROXY_0_BACKEND_HTTP_OPTIONS", "  option forwardfor\x00\n"), want: "HAPROXY_0_BACKEND_HTTP_OPTIONS", absent: "\x00"},
	{name: "template with a quoted section keyword", mutate: label("HAPROXY_0_BACKEND_HTTP_OPTIONS", "\"global\"\n  daemon\n"), want: "HAPROXY_0_BACKEND_HTTP_OPTIONS", absent: "daemon"},
	{name: "template with a hex escape", mutate: label("HAPROXY_0_BACKEND_HTTP_OPTIONS", "  http-response set-header X %[\\x65nv(LODESTAR_API_AUTH)]\n"), want: "HAPROXY_0_BACKEND_HTTP_OPTIONS", absent: "x65nv"},
	{name: "task endpoint port", mutate: taskField(func(t *discovery.Task) { t.HostPorts = []int{70000} }), task: true, want: "task evil.2", absent: "70000"},
	{name: "task id with a newline", mutate: taskField(func(t *discovery.Task) { t.ID = "evil.2\nforged" }), task: true, want: "task id", absent: "forged"},
}

// buildHostile builds and renders victims with and without the hostile app (and its rule).
func buildHostile(t *testing.T, cfg Config, hostile *discovery.App, rule string) (with, without *Model, rw, rwo *Rendered) {
	t.Helper()
	victims := victimApps()
	snapWith := snapshot(t, append(victimApps(), hostile)...)
	if rule != "" {
		s := *snapWith
		s.Rules = map[string]discovery.ServiceRule{hostile.ID: {AppID: hostile.ID, ACL: rule}}
		snapWith = &s
	}
	with = Build(snapWith, cfg, nil)
	without = Build(snapshot(t, victims...), cfg, nil)
	var err error
	if rw, err = Render(with); err != nil {
		t.Fatalf("render with the hostile app: %v", err)
	}
	if rwo, err = Render(without); err != nil {
		t.Fatalf("render without: %v", err)
	}
	return with, without, rw, rwo
}

// linesNotOwnedBy returns the configuration without the lines owner emitted.
func linesNotOwnedBy(r *Rendered, owner string) string {
	var b strings.Builder
	for i, l := range strings.SplitAfter(string(r.Config), "\n") {
		if l == "" {
			continue
		}
		if r.OwnerOf(i+1) != owner {
			b.WriteString(l)
		}
	}
	return b.String()
}

func TestHostileCorpus(t *testing.T) {
	for _, tc := range hostileCases {
		// Values are data in both modes; template labels are raw text under full.
		modes := []LabelTemplates{LabelTemplatesConfined, LabelTemplatesFull}
		if isTemplateLabel(strings.TrimPrefix(tc.want, "HAPROXY_0_")) {
			modes = modes[:1]
		}
		for _, mode := range modes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) { runHostileCase(t, tc, mode) })
		}
	}
}

func isTemplateLabel(suffix string) bool {
	_, ok := TemplateSection(suffix)
	return ok && suffix != SuffixRedirPath
}

func runHostileCase(t *testing.T, tc hostileCase, mode LabelTemplates) {
	cfg := testConfig()
	cfg.Groups = []string{"*"}
	cfg.LabelTemplates = mode
	if tc.cfg != nil {
		tc.cfg(&cfg)
	}
	evil := evilApp()
	if tc.mutate != nil {
		tc.mutate(evil)
	}
	with, _, rw, rwo := buildHostile(t, cfg, evil, tc.rule)
	key := evil.ID
	if tc.task {
		honest := *evil
		honest.Tasks = evil.Tasks[:len(evil.Tasks)-1]
		_, _, rwh, _ := buildHostile(t, cfg, &honest, tc.rule)
		if string(rw.Config) != string(rwh.Config) {
			t.Errorf("the configuration differs from the one without the hostile task:\n%s", lineDiff(string(rwh.Config), string(rw.Config)))
		}
		if !maps.EqualFunc(rw.Maps, rwh.Maps, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("map files differ from the ones without the hostile task: %q vs %q", rw.Maps, rwh.Maps)
		}
		var named bool
		for _, w := range with.Warnings {
			named = named || w.AppID == key && strings.Contains(w.Message, tc.want)
		}
		if !named {
			t.Errorf("no warning for %s names %q: %+v (excluded %v)", key, tc.want, with.Warnings, excluded(with))
		}
	} else {
		var named bool
		for _, e := range with.Excluded {
			named = named || e.AppID == key && strings.Contains(e.Reason, tc.want)
		}
		if !named {
			t.Errorf("no exclusion of %q names %q: %v", key, tc.want, excluded(with))
		}
		if string(rw.Config) != string(rwo.Config) {
			t.Errorf("the configuration with the hostile app left out differs from the one without it:\n%s", lineDiff(string(rwo.Config), string(rw.Config)))
		}
		if !maps.EqualFunc(rw.Maps, rwo.Maps, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("map files differ: %q vs %q", rw.Maps, rwo.Maps)
		}
	}
	if tc.absent != "" {
		if strings.Contains(string(rw.Config), tc.absent) {
			t.Errorf("%q reached haproxy.cfg", tc.absent)
		}
		for p, m := range rw.Maps {
			if strings.Contains(string(m), tc.absent) {
				t.Errorf("%q reached %s", tc.absent, p)
			}
		}
	}
	for _, e := range with.Excluded {
		if strings.ContainsAny(e.Reason, "\r\n\x00") {
			t.Errorf("exclusion reason %q carries a control character", e.Reason)
		}
	}
}

// TestHostileAppSortingFirst: on a running edge (the previous model holds the victims) an app
// whose name sorts before the victims and that is left out at render time changes nothing of
// theirs either, backend ids included.
func TestHostileAppSortingFirst(t *testing.T) {
	cfg := testConfig()
	cfg.Groups = []string{"*"}
	prev := Build(snapshot(t, victimApps()...), cfg, nil)
	evil := evilApp()
	evil.ID = "/a/evil"
	evil.Labels["HAPROXY_0_BACKEND_HEAD"] = "\nglobal\n  daemon\n\nbackend {backend}\n  balance {balance}\n  mode {mode}\n"
	with := Build(snapshot(t, append(victimApps(), evil)...), cfg, prev)
	without := Build(snapshot(t, victimApps()...), cfg, prev)
	rw, err := Render(with)
	if err != nil {
		t.Fatal(err)
	}
	rwo, err := Render(without)
	if err != nil {
		t.Fatal(err)
	}
	if len(with.Excluded) != 1 || with.Excluded[0].AppID != "/a/evil" || !strings.Contains(with.Excluded[0].Reason, "HAPROXY_0_BACKEND_HEAD") {
		t.Errorf("excluded %v", excluded(with))
	}
	if string(rw.Config) != string(rwo.Config) {
		t.Errorf("configuration differs:\n%s", lineDiff(string(rwo.Config), string(rw.Config)))
	}
}

// TestHonestTemplatesStayConfined: marathon-lb's documented per-app template uses that stay
// inside their app render the same under confined and full.
func TestHonestTemplatesStayConfined(t *testing.T) {
	honest := map[string]string{
		"HAPROXY_0_BACKEND_HEAD":               "backend {backend}\n  balance {balance}\n  mode {mode}\n  timeout server 30m\n",
		"HAPROXY_0_HTTP_FRONTEND_ACL":          "  acl host_{cleanedUpHostname} hdr(host) -i {hostname}\n  acl is_ws_{backend} hdr(upgrade) -i websocket\n  use_backend {backend} if host_{cleanedUpHostname} is_ws_{backend}\n",
		"HAPROXY_0_BACKEND_SERVER_OPTIONS":     "  server {serverName} {host_ipv4}:{port}{cookieOptions}{healthCheckOptions}{otherOptions} maxconn 50\n",
		"HAPROXY_0_FRONTEND_HEAD":              "frontend {backend}\n  bind {bindAddr}:{servicePort}{sslCert}{bindOptions}\n  mode {mode}\n  timeout client 30m\n",
		"HAPROXY_0_BACKEND_HTTP_OPTIONS":       "  option forwardfor\n  http-request set-header X-Forwarded-Port %[dst_port]\n",
		"HAPROXY_0_FRONTEND_BACKEND_GLUE":      "  use_backend {backend}\n",
		"HAPROXY_0_BACKEND_STICKY_OPTIONS":     "  cookie mesosphere_server_id insert indirect nocache\n",
		"HAPROXY_0_HTTP_BACKEND_REVPROXY_GLUE": "  acl hdr_location res.hdr(Location) -m found\n  http-response replace-header Location https?://[^/]*(/.*) \\1 if hdr_location\n",
	}
	for k, v := range honest {
		t.Run(k, func(t *testing.T) {
			var renders [2]string
			for i, mode := range []LabelTemplates{LabelTemplatesConfined, LabelTemplatesFull} {
				cfg := testConfig()
				cfg.Groups = []string{"*"}
				cfg.LabelTemplates = mode
				evil := evilApp()
				evil.Labels[k] = v
				evil.Labels["HAPROXY_0_STICKY"] = "true"
				m := Build(snapshot(t, append(victimApps(), evil)...), cfg, nil)
				if len(m.Excluded) > 0 {
					t.Fatalf("%s: excluded %v", mode, excluded(m))
				}
				r, err := Render(m)
				if err != nil {
					t.Fatal(err)
				}
				renders[i] = string(r.Config)
			}
			if renders[0] != renders[1] {
				t.Errorf("confined and full differ:\n%s", lineDiff(renders[1], renders[0]))
			}
		})
	}
}

var idLine = regexp.MustCompile(`(?m)^  id [0-9]+$`)

// withoutIDs blanks backend ids: see evilID.
func withoutIDs(s string) string { return idLine.ReplaceAllString(s, "  id N") }
