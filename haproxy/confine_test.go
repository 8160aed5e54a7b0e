package haproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/templates"
)

// confineValues are representative values of one HTTP service port, set the way the builder
// sets them (build.go render): a vhost, a path, auth, rewrite paths, a health check, one slot.
func confineValues() *templates.Values {
	var v templates.Values
	for f, s := range map[templates.Field]string{
		templates.FieldBackend:                           "shop_web_10000",
		templates.FieldAppID:                             "/shop/web",
		templates.FieldCleanedUpAppID:                    cleanedUp("/shop/web"),
		templates.FieldServicePort:                       "10000",
		templates.FieldMode:                              "http",
		templates.FieldBalance:                           "roundrobin",
		templates.FieldBindAddr:                          "*",
		templates.FieldBindOptions:                       " accept-proxy",
		templates.FieldSSLCert:                           " ssl crt /etc/ssl/shop.pem",
		templates.FieldHostname:                          "shop.example.com",
		templates.FieldHostnames:                         "shop.example.com www.shop.example.com",
		templates.FieldCleanedUpHostname:                 cleanedUp("shop.example.com") + "_shop_web_10000",
		templates.FieldPath:                              "/api",
		templates.FieldRealm:                             "shop",
		templates.FieldUser:                              "admin",
		templates.FieldPasswd:                            "$6$salt$hash",
		templates.FieldProxyPath:                         "/api",
		templates.FieldRootPath:                          "/shop",
		templates.FieldRedirPath:                         "/home",
		templates.FieldHAProxyDir:                        "/run/lodestar",
		templates.FieldNetworkAllowed:                    "10.0.0.0/8",
		templates.FieldHealthCheckPortIndex:              "0",
		templates.FieldHealthCheckPort:                   "31001",
		templates.FieldHealthCheckProtocol:               "HTTP",
		templates.FieldHealthCheckPath:                   "/health",
		templates.FieldHealthCheckTimeoutSeconds:         "20",
		templates.FieldHealthCheckIntervalSeconds:        "60",
		templates.FieldHealthCheckGracePeriodSeconds:     "300",
		templates.FieldHealthCheckMaxConsecutiveFailures: "3",
		templates.FieldHealthCheckFalls:                  "4",
		templates.FieldHealthCheckPortOptions:            " port 31001",
		templates.FieldServerName:                        "s1",
		templates.FieldServerID:                          "1",
		templates.FieldHost:                              "agent1.example.com",
		templates.FieldHostIPv4:                          "10.0.0.5",
		templates.FieldPort:                              "31000",
		templates.FieldCookieOptions:                     " cookie s1",
		templates.FieldHealthCheckOptions:                " check inter 60s fall 4 port 31001",
		templates.FieldOtherOptions:                      "",
	} {
		v.Set(f, s)
	}
	return &v
}

func confineScope(label string) AppScope {
	s := NewAppScope(label, "/shop/web", "shop_web_10000", []string{"shop.example.com", "www.shop.example.com"})
	s.ServicePort = 10000
	s.SSLCert = "/etc/ssl/shop.pem"
	s.ServerName, s.ServerAddr, s.ServerHost = "s1", "10.0.0.5", "agent1.example.com"
	return s
}

// TestConfineBuiltinTemplates: every built-in per-app template, rendered with representative
// values, passes the confined check of the section it renders into.
func TestConfineBuiltinTemplates(t *testing.T) {
	n := 0
	for _, spec := range templates.Specs() {
		if !spec.PerApp {
			continue
		}
		kind, ok := TemplateSection(spec.Name)
		if !ok {
			t.Errorf("per-app template %s has no section kind", spec.Name)
			continue
		}
		tmpl, err := templates.Builtin().Get(spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		text, err := tmpl.Execute(confineValues())
		if err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		if err := ConfineSnippet(kind, text, confineScope("HAPROXY_0_"+spec.Name)); err != nil {
			t.Errorf("built-in %s (%s):\n%s\n%v", spec.Name, kind, text, err)
		}
		n++
	}
	if n < 30 {
		t.Errorf("checked %d per-app templates, want every one (over 30)", n)
	}
}

const (
	own    = "shop_web_10000"
	ownACL = "host_shop_example_com_shop_web_10000"
)

// confineCases hold an honest snippet next to each hostile one, per section kind. want is ""
// for a snippet that passes, else a part of the refusal.
var confineCases = []struct {
	name string
	kind SectionKind
	text string
	want string
}{
	// BACKEND_HEAD opens exactly its own backend.
	{"backend head honest", SectionBackendHead, "\nbackend " + own + "\n  balance roundrobin\n  mode http\n  timeout server 5m\n", ""},
	{"backend head with comment", SectionBackendHead, "backend " + own + "\n  mode tcp\n  # from label\n", ""},
	{"issue 1: global daemon before the backend", SectionBackendHead, "\nglobal\n  daemon\n\nbackend " + own + "\n  balance roundrobin\n  mode http\n", `section keyword "global" refused`},
	{"issue 2: second global with stats socket", SectionBackendHead, "backend " + own + "\n  mode http\nglobal\n  stats socket /tmp/a.sock mode 666 level admin\n", `section keyword "global" refused`},
	{"another backend's name", SectionBackendHead, "backend victim_web_80\n  mode http\n", `want "backend shop_web_10000"`},
	{"second backend", SectionBackendHead, "backend " + own + "\n  mode http\nbackend evil_1\n  mode http\n", `section keyword "backend" refused`},
	{"listen section", SectionBackendHead, "backend " + own + "\nlisten evil\n  bind :27100\n", `section keyword "listen"`},
	{"defaults section", SectionBackendHead, "backend " + own + "\ndefaults\n  mode tcp\n", `section keyword "defaults"`},
	{"peers section", SectionBackend, "peers p\n  peer a 127.0.0.1:1\n", `section keyword "peers"`},
	{"program section", SectionBackend, "program evil\n  command /usr/bin/touch /tmp/x\n", `section keyword "program"`},
	{"quoted section keyword", SectionBackend, "  \"global\"\n  daemon\n", `reads as the section keyword "global"`},
	{"escaped section keyword", SectionBackend, "gl\\obal\n", `reads as the section keyword "global"`},
	{"directive before the header", SectionBackendHead, "  mode http\nbackend " + own + "\n", "directive before the section header"},
	{"no header", SectionBackendHead, "  # only a comment\n", "must open its section"},

	// Backend body.
	{"backend options honest", SectionBackend, "  option forwardfor\n  http-response set-header X-Template per-app\n", ""},
	{"built-in style http options", SectionBackend, "  http-request set-header X-Forwarded-Port %[dst_port]\n  http-request add-header X-Forwarded-Proto https if { ssl_fc }\n", ""},
	{"set-var without a name", SectionBackend, "  http-request set-var( 0\n", "want set-var(<name>)"},
	{"set-var txn", SectionBackend, "  http-request set-var(txn.path) path\n", ""},
	{"comment after a rule", SectionBackend, "  http-request set-header X a # why\n", ""},
	{"issue 2: stats socket", SectionBackend, "  stats socket /tmp/a.sock mode 666 level admin\n", `"stats" refused`},
	{"stats page", SectionBackend, "  stats enable\n", `"stats" refused`},
	{"issue 2: external-check command", SectionBackend, "  external-check command /usr/bin/touch\n", `"external-check" refused`},
	{"option external-check", SectionBackend, "  option external-check\n", "option external-check refused"},
	{"issue 2: server line in the body", SectionBackend, "  server evil 127.0.0.1:27080\n", `"server" refused`},
	{"server-template", SectionBackend, "  server-template s 3 127.0.0.1:27080\n", `"server-template" refused`},
	{"use-server", SectionBackend, "  use-server s1 if TRUE\n", `"use-server" refused`},
	{"dispatch", SectionBackend, "  dispatch 127.0.0.1:27080\n", `"dispatch" refused`},
	{"source usesrc", SectionBackend, "  source 0.0.0.0 usesrc clientip\n", `"source" refused`},
	{"daemon", SectionBackend, "  daemon\n", `"daemon" refused`},
	{"setenv", SectionBackend, "  setenv X y\n", `"setenv" refused`},
	{"chroot", SectionBackend, "  chroot /\n", `"chroot" refused`},
	{"lua-load", SectionBackend, "  lua-load /tmp/x.lua\n", `"lua-load" refused`},
	{"lua action", SectionBackend, "  http-request lua.evil\n", "Lua"},
	{"lua tcp action", SectionBackend, "  tcp-request content lua.evil\n", "Lua"},
	{"lua fetch", SectionBackend, "  http-request set-header X %[lua.secret]\n", "Lua"},
	{"issue 4: env fetch", SectionBackend, "  http-request redirect location %[env(LODESTAR_API_AUTH)]\n", "env()"},
	{"env fetch upper case", SectionBackend, "  http-request set-header X %[ENV(LODESTAR_API_AUTH)]\n", "env()"},
	{"env fetch in a comment", SectionBackend, "  mode http # %[env(LODESTAR_API_AUTH)]\n", "env()"},
	{"issue 4: ${} expansion", SectionBackend, "  http-request set-header X ${LODESTAR_API_AUTH}\n", "environment expansion"},
	{"$ in double quotes", SectionBackend, "  http-request set-header X \"$LODESTAR_API_AUTH\"\n", "'$' after a double quote"},
	{"env hidden by quotes", SectionBackend, "  http-request set-header X %[e'nv'(LODESTAR_API_AUTH)]\n", "env() fetch is refused"},
	{"hex escape", SectionBackend, "  http-request set-header X \\x25[foo]\n", `escape \x`},
	{"httpchk with escaped CRLF (marathon-lb idiom)", SectionBackend, "  option httpchk GET /health HTTP/1.1\\r\\nHost:\\ shop.example.com\n", ""},
	{"escaped newline stays in its argument", SectionBackend, "  http-request set-header X a\\nglobal\n", ""},
	{"conditional block", SectionBackend, ".if defined(LODESTAR_API_AUTH)\n  mode http\n.endif\n", "plain lower-case word"},
	{"diagnostic", SectionBackend, ".alert x\n", "plain lower-case word"},
	{"set-map on the shared map", SectionBackend, "  http-request set-map(/run/lodestar/domain2backend.map) %[req.hdr(host)] evil_80\n", "set-map refused"},
	{"add-acl", SectionBackend, "  http-request add-acl(/etc/x) a\n", "add-acl refused"},
	{"issue 6: acl -f fifo", SectionBackend, "  acl x path -f /path/to/fifo\n", "-f refused"},
	{"issue 13: acl -f passwd", SectionBackend, "  acl x hdr(host) -f /etc/passwd\n", "-f refused"},
	{"acl -M", SectionBackend, "  acl x hdr(host) -M -f /etc/passwd\n", "-M refused"},
	{"map converter", SectionBackend, "  acl x hdr(host),map(/etc/shadow) -m found\n", "map converters"},
	{"map_beg converter", SectionBackend, "  http-request set-header X %[path,map_beg(/etc/shadow)]\n", "map converters"},
	{"anonymous acl -f", SectionBackend, "  http-request deny if { path -f /etc/passwd }\n", "-f refused"},
	{"return file", SectionBackend, "  http-request return status 200 file /etc/shadow\n", `"file" refused`},
	{"return lf-file", SectionBackend, "  http-request return status 200 lf-file /etc/shadow\n", `"lf-file" refused`},
	{"return string", SectionBackend, "  http-request return status 200 content-type text/plain string ok\n", ""},
	{"errorfile", SectionBackend, "  errorfile 503 /etc/shadow\n", `"errorfile" refused`},
	{"http-error errorfile", SectionBackend, "  http-error status 503 errorfile /etc/shadow\n", `"errorfile" refused`},
	{"use-service", SectionBackend, "  http-request use-service prometheus-exporter\n", "use-service refused"},
	{"option http_proxy", SectionBackend, "  option http_proxy\n", "http_proxy refused"},
	{"option transparent", SectionBackend, "  option transparent\n", "transparent refused"},
	{"proc variable", SectionBackend, "  http-request set-var(proc.x) str(1)\n", "proc variables"},
	{"set-dst", SectionBackend, "  http-request set-dst ipv4(127.0.0.1)\n", "set-dst refused"},
	{"log to a socket file", SectionBackend, "  log /dev/log local0\n", "log global"},
	{"log to a host", SectionBackend, "  log 127.0.0.1:514 local0\n", "log global"},
	{"log global", SectionBackend, "  log global\n", ""},
	{"fixed id", SectionBackend, "  id 1234\n", `"id" refused`},
	{"spoe filter", SectionBackend, "  filter spoe engine x config /etc/x.cfg\n", "filter compression"},
	{"compression filter", SectionBackend, "  filter compression\n  compression algo gzip\n", ""},
	{"stick-table peers", SectionBackend, "  stick-table type ip size 1m peers mypeers\n", "peers refused"},
	{"stick on another table", SectionBackend, "  stick on src table victim_web_80\n", "table"},
	{"track-sc another table", SectionBackend, "  http-request track-sc0 src table victim_web_80\n", "table"},
	{"http-check addr", SectionBackend, "  http-check connect addr 127.0.0.1 port 27080\n", "addr"},
	{"default-server addr", SectionBackend, "  default-server addr 127.0.0.1\n", "addr"},
	{"balance hash", SectionBackend, "  balance hash req.hdr(x)\n", "hash"},
	{"unknown directive", SectionBackend, "  frobnicate\n", "not in the allow-list"},
	{"frontend-only directive in a backend", SectionBackend, "  capture request header Host len 32\n", "not allowed in a backend"},
	{"unterminated quote", SectionBackend, "  http-request set-header X \"a\n", "unterminated quote"},
	{"lone CR", SectionBackend, "  mode http\r\n", "control characters"},
	{"NUL", SectionBackend, "  mode http\x00\n", "control characters"},
	{"non-ASCII", SectionBackend, "  http-request set-header X \u00e9\n", "printable ASCII"},

	// BACKEND_SERVER_OPTIONS: one server line for the slot.
	{"server honest", SectionServer, "  server s1 10.0.0.5:31000 cookie s1 check inter 60s fall 4 port 31001\n", ""},
	{"server on the container port (ucr_ippc fixture)", SectionServer, "  server s1 10.0.0.5:80 check inter 60s fall 4\n", ""},
	{"server by agent host", SectionServer, "  server s1 agent1.example.com:31000\n", ""},
	{"issue 2: server at lodestar's API", SectionServer, "  server s1 127.0.0.1:27080\n", "task's address"},
	{"second server", SectionServer, "  server s1 10.0.0.5:31000\n  server s1 127.0.0.1:27080\n", "task's address"},
	{"server renamed", SectionServer, "  server evil 10.0.0.5:31000\n", "named s1"},
	{"server check addr", SectionServer, "  server s1 10.0.0.5:31000 check addr 127.0.0.1 port 27080\n", `"addr" refused`},
	{"server crt", SectionServer, "  server s1 10.0.0.5:31000 ssl crt /etc/shadow\n", `"crt" refused`},
	{"server source", SectionServer, "  server s1 10.0.0.5:31000 source 127.0.0.1\n", `"source" refused`},
	{"server track", SectionServer, "  server s1 10.0.0.5:31000 track victim_web_80/s1\n", `"track" refused`},
	{"server with a backend line", SectionServer, "  server s1 10.0.0.5:31000\n  http-request deny\n", "one server line"},
	{"no server", SectionServer, "  # nothing\n", "exactly one server line"},
	{"server options honest", SectionServerOptions, "  check inter 60s fall 4 port 31001\n", ""},
	{"server options addr", SectionServerOptions, "  check addr 127.0.0.1 port 27080\n", `"addr" refused`},
	{"server options new section", SectionServerOptions, "  check\nglobal\n  daemon\n", `section keyword "global"`},
	{"server options on two lines", SectionServerOptions, "  check\n  weight 10\n", "want one line"},
	{"server option argument as flag", SectionServerOptions, "  inter -1\n", "must not start with '-'"},

	// FRONTEND_HEAD: its own frontend and one bind on its own address and port.
	{"frontend head honest", SectionFrontendHead, "\nfrontend " + own + "\n  bind *:10000 ssl crt /etc/ssl/shop.pem accept-proxy\n  mode http\n", ""},
	{"frontend head plain", SectionFrontendHead, "frontend " + own + "\n  bind *:10000\n  mode tcp\n  no option idle-close-on-response\n", ""},
	{"shared frontend's name", SectionFrontendHead, "frontend marathon_http_in\n  bind *:80\n", `want "frontend shop_web_10000"`},
	{"issue 3: second bind", SectionFrontendHead, "frontend " + own + "\n  bind *:10000\n  bind *:80\n", "own address and service port"},
	{"issue 3: bind list", SectionFrontendHead, "frontend " + own + "\n  bind 127.0.0.1:27080,127.0.0.1:10000\n", "own address and service port"},
	{"issue 3: unix socket", SectionFrontendHead, "frontend " + own + "\n  bind unix@/some/file\n", "own address and service port"},
	{"bind user and mode", SectionFrontendHead, "frontend " + own + "\n  bind *:10000 user root mode 666\n", `"user" refused`},
	{"bind another cert", SectionFrontendHead, "frontend " + own + "\n  bind *:10000 ssl crt /etc/ssl/victim.pem\n", `"ssl" refused`},
	{"no bind", SectionFrontendHead, "frontend " + own + "\n  mode http\n", "exactly one bind"},
	{"frontend routes to another app", SectionFrontendHead, "frontend " + own + "\n  bind *:10000\n  use_backend victim_web_80\n", "own backend"},

	// FRONTEND_BACKEND_GLUE: the app's own frontend.
	{"glue honest", SectionFrontend, "  use_backend " + own + "\n", ""},
	{"glue default_backend", SectionFrontend, "  default_backend " + own + "\n", ""},
	{"glue to another app", SectionFrontend, "  use_backend victim_web_80\n", "own backend"},
	{"glue dynamic", SectionFrontend, "  use_backend %[req.hdr(x-backend)]\n", "own backend"},
	{"glue adds a bind", SectionFrontend, "  bind *:80\n", `"bind" refused`},

	// Shared frontends: own ACLs, rules conditioned on the app's own host.
	{"shared acl and route", SectionSharedFrontend, "  acl " + ownACL + " hdr(host),field(1,:) -i shop.example.com\n  use_backend " + own + " if " + ownACL + "\n", ""},
	{"shared anonymous sni", SectionSharedFrontend, "  use_backend " + own + " if { ssl_fc_sni shop.example.com } path_" + own + "\n", ""},
	{"shared renamed acl with own host", SectionSharedFrontend, "  acl is_ws_" + own + " hdr(upgrade) -i websocket\n  use_backend " + own + " if is_ws_" + own + " { hdr(host),field(1,:) -i shop.example.com }\n", ""},
	{"shared auth", SectionSharedFrontend, "  acl auth_x_" + own + " http_auth(user_" + own + ")\n  http-request auth realm \"shop\" if " + ownACL + " !auth_x_" + own + "\n", ""},
	{"shared double negation", SectionSharedFrontend, "  use_backend " + own + " if !!" + ownACL + "\n", ""},
	{"shared acl outside the app's names (marathon-lb's is_ws)", SectionSharedFrontend, "  acl is_ws hdr(upgrade) -i websocket\n", "ACL names end in _shop_web_10000"},
	{"issue 2: unconditioned use_backend", SectionSharedFrontend, "  use_backend " + own + "\n", "needs \"if <condition>\""},
	{"issue 2: rule in :80 without a host", SectionSharedFrontend, "  http-request return status 200 content-type text/plain string pwned\n", "needs \"if <condition>\""},
	{"path alone", SectionSharedFrontend, "  use_backend " + own + " if { path_beg / }\n", "every alternative"},
	{"or without own host", SectionSharedFrontend, "  use_backend " + own + " if " + ownACL + " || { path_beg / }\n", "every alternative"},
	{"or keyword without own host", SectionSharedFrontend, "  use_backend " + own + " if " + ownACL + " or TRUE\n", "every alternative"},
	{"unless", SectionSharedFrontend, "  use_backend " + own + " unless " + ownACL + "\n", "needs \"if <condition>\""},
	{"negated own host", SectionSharedFrontend, "  use_backend " + own + " if !" + ownACL + "\n", "every alternative"},
	{"negated own host, lone !", SectionSharedFrontend, "  use_backend " + own + " if ! " + ownACL + "\n", "every alternative"},
	{"negated anonymous host", SectionSharedFrontend, "  use_backend " + own + " if !{ hdr(host) -i shop.example.com }\n", "every alternative"},
	{"issue 8: selector on the victim's host", SectionSharedFrontend, "  acl " + ownACL + " hdr(host) -i victim.example.test\n", "stands for the app's own hosts"},
	{"selector OR-ed with a path", SectionSharedFrontend, "  acl " + ownACL + " path_beg /\n", "stands for the app's own hosts"},
	{"anonymous acl on another host", SectionSharedFrontend, "  use_backend " + own + " if { hdr(host) -i victim.example.test }\n", "every alternative"},
	{"prefix match on the host", SectionSharedFrontend, "  use_backend " + own + " if { hdr(host) -m beg shop }\n", "every alternative"},
	{"domain match on the host", SectionSharedFrontend, "  use_backend " + own + " if { hdr_dom(host) -i example.com }\n", "every alternative"},
	{"own-named acl with own host does not count", SectionSharedFrontend, "  acl foo_" + own + " hdr(host) -i shop.example.com\n  use_backend " + own + " if foo_" + own + "\n", "every alternative"},
	{"victim's acl name", SectionSharedFrontend, "  acl host_victim_example_test_victim_web_80 hdr(host) -i shop.example.com\n", "ACL names end in"},
	{"route to the victim", SectionSharedFrontend, "  use_backend victim_web_80 if " + ownACL + "\n", "own backend"},
	{"default_backend in a shared frontend", SectionSharedFrontend, "  default_backend " + own + "\n", "shared frontend takes only"},
	{"victim's userlist", SectionSharedFrontend, "  acl auth_x_" + own + " http_auth(user_victim_web_80)\n", "own userlist"},
	{"issue 5: host with an injected line", SectionSharedFrontend, "  acl " + ownACL + " hdr(host),field(1,:) -i shop.example.com\n  http-request return status 200 content-type text/plain string pwned\n", "needs \"if <condition>\""},
	{"shared frontend bind", SectionSharedFrontend, "  bind *:27100\n", `"bind" refused`},
	{"shared frontend option", SectionSharedFrontend, "  option http_proxy\n", "shared frontend takes only"},
	{"shared use-service", SectionSharedFrontend, "  http-request use-service prometheus-exporter if " + ownACL + "\n", "use-service refused"},

	// USERLIST_HEAD: the app's own userlist.
	{"userlist honest", SectionUserlistHead, "\nuserlist user_" + own + "\n  user admin password $6$salt$hash\n", ""},
	{"another userlist", SectionUserlistHead, "userlist user_victim_web_80\n  user a password x\n", `want "userlist user_shop_web_10000"`},
	{"userlist then global", SectionUserlistHead, "userlist user_" + own + "\n  user a password x\nglobal\n  daemon\n", `section keyword "global"`},
	{"userlist other directive", SectionUserlistHead, "userlist user_" + own + "\n  mode http\n", "only user and group"},
}

func TestConfineSnippet(t *testing.T) {
	for _, tc := range confineCases {
		t.Run(tc.name, func(t *testing.T) {
			err := ConfineSnippet(tc.kind, tc.text, confineScope("HAPROXY_0_TEST"))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("honest snippet refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("hostile snippet accepted:\n%s", tc.text)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			case err != nil && !errors.Is(err, ErrConfined):
				t.Errorf("error %v does not wrap ErrConfined", err)
			case err != nil && !strings.Contains(err.Error(), "label HAPROXY_0_TEST"):
				t.Errorf("error %q does not name the label", err)
			}
		})
	}
}

// TestConfineErrorNamesLineAndDirective: a refusal names the label, the line of the rendered
// snippet and the offending line, quoted and cut short.
func TestConfineErrorNamesLineAndDirective(t *testing.T) {
	long := "  stats socket /tmp/" + strings.Repeat("a", 200) + ".sock mode 666 level admin"
	err := ConfineSnippet(SectionBackend, "  mode http\n\n"+long+"\n", confineScope("HAPROXY_1_BACKEND_HTTP_OPTIONS"))
	var ce *ConfineError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *ConfineError", err)
	}
	if ce.Line != 3 || ce.Label != "HAPROXY_1_BACKEND_HTTP_OPTIONS" {
		t.Errorf("line %d label %s, want 3 HAPROXY_1_BACKEND_HTTP_OPTIONS", ce.Line, ce.Label)
	}
	msg := err.Error()
	if !strings.Contains(msg, `line 3 "stats socket /tmp/aaa`) || !strings.Contains(msg, "…") || len(msg) > 300 {
		t.Errorf("message %q: want line 3, the quoted start of the line, cut short", msg)
	}
}

// TestConfineCrossCheck: the config-parser pass refuses a second section, a wrong section and
// anything that lands in global, and accepts the one expected section.
func TestConfineCrossCheck(t *testing.T) {
	for _, tc := range []struct {
		text, want string
		ok         bool
	}{
		{"backend a\n  mode http\n", "a", true},
		{"backend a\n  mode http\nbackend b\n", "a", false},
		{"frontend a\n  mode http\n", "a", false},
		{"backend b\n  mode http\n", "a", false},
		{"global\n  daemon\nbackend a\n", "a", false},
		{"backend a\nglobal\n  stats socket /tmp/x level admin\n", "a", false},
		{"backend a\nprogram p\n  command /bin/true\n", "a", false},
		// config-parser panics on this line; the panic becomes a refusal.
		{"backend a\n  http-request set-var( 0\n", "a", false},
	} {
		err := parseOneSection(tc.text, "backend", tc.want)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.text, err, tc.ok)
		}
	}
}

// TestConfineConcurrent: ConfineSnippet may run from several builds at once (the cache is
// shared), and a cached verdict is the same as a fresh one.
func TestConfineConcurrent(t *testing.T) {
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for _, tc := range confineCases[i%4 : i%4+20] {
				got := ConfineSnippet(tc.kind, tc.text, confineScope("HAPROXY_0_TEST"))
				if (got == nil) != (tc.want == "") {
					err = fmt.Errorf("%s: %v", tc.name, got)
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// repoOverrides are the honest template labels the repository's other tests use, beside the
// ones in testdata fixtures (TestConfineFixtureOverrides). The marathon-lb uses that need
// --label-templates full are in docs/label-confinement.md.
var repoOverrides = map[string]string{
	templates.BackendHead:          "\r\nbackend {backend}\r\n  balance {balance}\r\n  mode {mode}\r\n  timeout server 1h\r\n",
	templates.BackendServerOptions: "  server {serverName} {host_ipv4}:80{otherOptions}\n",
	templates.BackendHTTPOptions:   "  option forwardfor\r\n  http-response set-header X-Template per-app\r\n",
}

func confineOverride(t *testing.T, name, text string) error {
	t.Helper()
	kind, ok := TemplateSection(name)
	if !ok {
		t.Fatalf("%s is not a per-app template", name)
	}
	tmpl, err := templates.Parse(name, text, templates.SourceLabel)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out, err := tmpl.Execute(confineValues())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ConfineSnippet(kind, out, confineScope("HAPROXY_0_"+name))
}

func TestConfineRepoOverrides(t *testing.T) {
	for name, text := range repoOverrides {
		if err := confineOverride(t, name, text); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, text := range []string{"\r\nbackend {backend}\r\n  mode {mode}\r\n  # from label\r\n", "backend {backend}\n  mode {mode}\n",
		"\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  timeout server 5m\n"} {
		if err := confineOverride(t, templates.BackendHead, text); err != nil {
			t.Errorf("%q: %v", text, err)
		}
	}
}

// TestConfineFixtureOverrides: every template label in the Marathon fixtures passes.
func TestConfineFixtureOverrides(t *testing.T) {
	n := 0
	err := filepath.WalkDir("testdata/fixtures", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`"HAPROXY_\d+_([A-Z_]+)":\s*("(?:[^"\\]|\\.)*")`).FindAllStringSubmatch(string(b), -1) {
			if _, ok := TemplateSection(m[1]); !ok {
				continue
			}
			var text string
			if err := json.Unmarshal([]byte(m[2]), &text); err != nil {
				return err
			}
			n++
			if err := confineOverride(t, m[1], text); err != nil {
				t.Errorf("%s: %s: %v", path, m[1], err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("found no template labels in testdata/fixtures (ucr_ippc.json has one)")
	}
}

// TestConfineDocsListEveryName: docs/label-confinement.md names every entry of the allow- and
// deny-lists, so the README's copy cannot drift from the code.
func TestConfineDocsListEveryName(t *testing.T) {
	b, err := os.ReadFile("../docs/label-confinement.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var names []string
	for _, m := range []map[string]string{sectionKeywords, refusedDirectives, refusedOptions, allowedOptions,
		refusedActions, refusedArgs, refusedServerOptions, refusedBindOptions, aclFlags, refusedACLFlags} {
		for k := range m {
			names = append(names, k)
		}
	}
	for k := range proxyDirectives {
		names = append(names, k)
	}
	for _, m := range []map[string]bool{httpActions, tcpActions} {
		for k := range m {
			names = append(names, k)
		}
	}
	for k := range serverOptions {
		names = append(names, k)
	}
	for k := range bindOptions {
		names = append(names, k)
	}
	names = append(names, timeouts...)
	names = append(names, aclMatchMethods...)
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/label-confinement.md does not list `%s`", n)
		}
	}
}

// TestConfineTemplate: by template name, with the section looked up; a template an app cannot
// override is refused.
func TestConfineTemplate(t *testing.T) {
	scope := confineScope("HAPROXY_0_BACKEND_HEAD")
	if err := ConfineTemplate(templates.BackendHead, "backend "+own+"\n  mode http\n", scope); err != nil {
		t.Errorf("honest BACKEND_HEAD: %v", err)
	}
	if err := ConfineTemplate(templates.BackendHead, "backend "+own+"\n  daemon\n", scope); err == nil {
		t.Error("daemon in BACKEND_HEAD accepted")
	}
	if err := ConfineTemplate(templates.Head, "global\n  daemon\n", scope); !errors.Is(err, ErrConfined) {
		t.Errorf("HEAD by label: %v, want a refusal", err)
	}
}

// TestConfineHonestCasesPassHAProxy: every honest snippet of the table is a configuration that
// HAProxy 2.6 itself accepts in its section, so the allow-lists allow real directives.
func TestConfineHonestCasesPassHAProxy(t *testing.T) {
	needHAProxy(t)
	const prelude = "global\n  log stdout format raw local0\ndefaults\n  mode http\n  timeout connect 1s\n" +
		"  timeout client 1s\n  timeout server 1s\n  default-server init-addr last,libc,none\n" +
		"listen probe\n  bind 127.0.0.1:1\n  server x 127.0.0.1:1\n"
	const userlist = "userlist user_" + own + "\n  user admin password $6$salt$hash\n"
	const backend = "backend " + own + "\n  server s1 127.0.0.1:1\n"
	const shared = "frontend marathon_http_in\n  bind 127.0.0.1:1\n  acl path_" + own + " path_beg /api\n" +
		"  acl " + ownACL + " hdr(host) -i shop.example.com\n"
	dir := t.TempDir()
	checked := 0
	for i, tc := range confineCases {
		if tc.want != "" || strings.Contains(tc.text, "ssl crt") {
			continue // refused, or names a certificate file this machine does not have
		}
		checked++
		var cfg string
		switch tc.kind {
		case SectionBackendHead:
			cfg = tc.text + "  server s1 127.0.0.1:1\n"
		case SectionBackend:
			cfg = "backend " + own + "\n" + tc.text + "  server s1 127.0.0.1:1\n"
		case SectionServer:
			cfg = "backend " + own + "\n  cookie SRV insert\n" + tc.text
		case SectionServerOptions:
			cfg = "backend " + own + "\n  server s1 127.0.0.1:1 " + tc.text
		case SectionFrontendHead:
			cfg = tc.text + backend
		case SectionFrontend:
			cfg = "frontend x\n  bind 127.0.0.1:1\n" + tc.text + backend
		case SectionSharedFrontend:
			cfg = shared + tc.text + backend + userlist
		case SectionUserlistHead:
			cfg = tc.text
		}
		path := filepath.Join(dir, fmt.Sprintf("case%d.cfg", i))
		if err := os.WriteFile(path, []byte(prelude+cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(haproxyBin, "-c", "-f", path).CombinedOutput(); err != nil {
			t.Errorf("%s: haproxy -c: %v\n%s\n%s", tc.name, err, prelude+cfg, out)
		}
	}
	if checked < 20 {
		t.Errorf("checked %d honest snippets, want every one of the table (over 20)", checked)
	}
}
