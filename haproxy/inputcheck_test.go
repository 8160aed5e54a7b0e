package haproxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// inputCases hold an honest value next to each hostile one for every validator. want is ""
// for a value that passes, else a part of the refusal.
var inputCases = []struct {
	name  string
	check func() error
	want  string
}{
	// Marathon and Mesos fields.
	{"host ipv4", func() error { return CheckHostAddr("task host", "10.0.0.5") }, ""},
	{"host ipv6", func() error { return CheckHostAddr("task host", "2001:db8::5") }, ""},
	{"host name", func() error { return CheckHostAddr("task host", "agent-1.example.com") }, ""},
	{"host name trailing dot", func() error { return CheckHostAddr("task host", "agent-1.example.com.") }, ""},
	{"issue 5: host with an injected directive", func() error {
		return CheckHostAddr("task host", "10.0.0.5\n  http-request return status 200 content-type text/plain string pwned")
	}, "want an IP address or an RFC 1123 host name"},
	{"host with a space", func() error { return CheckHostAddr("task host", "10.0.0.5 check") }, "RFC 1123"},
	{"host with an ipv6 zone", func() error { return CheckHostAddr("ipAddresses[].ipAddress", "fe80::1%eth0") }, "without a zone"},
	{"host label too long", func() error { return CheckHostAddr("task host", strings.Repeat("a", 64)+".com") }, "RFC 1123"},
	{"host leading hyphen", func() error { return CheckHostAddr("task host", "-f") }, "RFC 1123"},
	{"host empty", func() error { return CheckHostAddr("task host", "") }, "RFC 1123"},
	{"port", func() error { return CheckPort("task port", 31000) }, ""},
	{"port 0", func() error { return CheckPort("task port", 0) }, "1-65535"},
	{"port too big", func() error { return CheckPort("task port", 65536) }, "1-65535"},
	{"app id", func() error { return CheckAppID("app id", "/shop/web-1.v2") }, ""},
	{"relative app id", func() error { return CheckAppID("app id", "nginx") }, ""},
	{"issue 5: app id with a newline", func() error { return CheckAppID("app id", "/shop\n  http-request return status 200") }, "control character"},
	{"app id upper case", func() error { return CheckAppID("app id", "/Shop") }, "Marathon's rule"},
	{"app id space", func() error { return CheckAppID("app id", "/shop web") }, "Marathon's rule"},
	{"app id empty segment", func() error { return CheckAppID("app id", "/shop//web") }, "Marathon's rule"},
	{"app id quote", func() error { return CheckAppID("app id", `/shop"`) }, "Marathon's rule"},
	{"app id root", func() error { return CheckAppID("app id", "/") }, "Marathon's rule"},
	{"task id", func() error { return CheckTaskID("task id", "shop_web.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc") }, ""},
	{"task id newline", func() error { return CheckTaskID("task id", "a\nb") }, "task id"},
	{"text", func() error { return CheckText("field", "plain text") }, ""},
	{"text NUL", func() error { return CheckText("field", "a\x00b") }, `control character '\x00' at byte 1`},
	{"text CR", func() error { return CheckText("field", "a\rb") }, "control character"},
	{"text DEL", func() error { return CheckText("field", "a\x7fb") }, "control character"},

	// BIND_ADDR: one IP.
	{"bind addr", func() error { return CheckBindAddr("HAPROXY_0_BIND_ADDR", "127.0.0.1") }, ""},
	{"bind addr v6", func() error { return CheckBindAddr("HAPROXY_0_BIND_ADDR", "::1") }, ""},
	{"bind addr wildcard", func() error { return CheckBindAddr("HAPROXY_0_BIND_ADDR", "*") }, ""},
	{"issue 3: bind addr list", func() error {
		return CheckBindAddr("HAPROXY_0_BIND_ADDR", "127.0.0.1:27080,127.0.0.1:27100,127.0.0.1")
	}, "want one IP address"},
	{"issue 3: unix socket", func() error { return CheckBindAddr("HAPROXY_0_BIND_ADDR", "unix@/some/file,127.0.0.1") }, "want one IP address"},
	{"bind addr with port", func() error { return CheckBindAddr("HAPROXY_0_BIND_ADDR", "127.0.0.1:80") }, "want one IP address"},
	{"bind addr abns", func() error { return CheckBindAddr("HAPROXY_0_BIND_ADDR", "abns@x") }, "want one IP address"},
	{"bind addr zone", func() error { return CheckBindAddr("HAPROXY_0_BIND_ADDR", "fe80::1%eth0") }, "want one IP address"},
	{"bind addr host name", func() error { return CheckBindAddr("HAPROXY_0_BIND_ADDR", "localhost") }, "want one IP address"},

	// BIND_OPTIONS: allow-list.
	{"bind options", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "accept-proxy") }, ""},
	{"bind options several", func() error {
		return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "defer-accept maxconn 100 alpn h2,http/1.1")
	}, ""},
	{"bind options user", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "user root") }, `"user" refused`},
	{"bind options mode", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "mode 666") }, `"mode" refused`},
	{"bind options namespace", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "namespace host") }, `"namespace" refused`},
	{"bind options interface", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "interface lo") }, `"interface" refused`},
	{"bind options crt", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "ssl crt /etc/ssl/victim.pem") }, `"ssl" refused`},
	{"bind options ca-file", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "ca-file /etc/shadow") }, `"ca-file" refused`},
	{"bind options expose-fd", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "expose-fd listeners") }, `"expose-fd" refused`},
	{"bind options a second address", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", ",127.0.0.1:27100") }, "not in the allow-list"},
	{"bind options unknown", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "no-such-bind-keyword") }, "not in the allow-list"},
	{"bind options missing argument", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "maxconn") }, "takes 1 argument"},
	{"bind options flag argument", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "maxconn -1") }, "must not start with '-'"},
	{"bind options env", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", `alpn "${SECRET}"`) }, "quotes"},
	{"bind options newline", func() error { return CheckBindOptions("HAPROXY_0_BIND_OPTIONS", "accept-proxy\nglobal") }, "control character"},

	// VHOST and PATH: ACL values, never flags.
	{"vhost", func() error { return CheckVHost("HAPROXY_0_VHOST", "shop.example.com") }, ""},
	{"vhost wildcard", func() error { return CheckVHost("HAPROXY_0_VHOST", "*.example.com") }, ""},
	{"vhost underscore", func() error { return CheckVHost("HAPROXY_0_VHOST", "my_app.example.com") }, ""},
	{"vhost flag", func() error { return CheckVHost("HAPROXY_0_VHOST", "-f") }, "want a host name"},
	{"vhost space", func() error { return CheckVHost("HAPROXY_0_VHOST", "a -f /etc/passwd") }, "want a host name"},
	{"issue 5: vhost newline", func() error { return CheckVHost("HAPROXY_0_VHOST", "a\n  http-request return status 200") }, "want a host name"},
	{"vhost hash", func() error { return CheckVHost("HAPROXY_0_VHOST", "a#b") }, "want a host name"},
	{"path", func() error { return CheckPathACL("HAPROXY_0_PATH", "/api") }, ""},
	{"paths", func() error { return CheckPathACL("HAPROXY_0_PATH", "/api /v2/x:y@z") }, ""},
	{"issue 6: path -f fifo", func() error { return CheckPathACL("HAPROXY_0_PATH", "-f /path/to/fifo") }, "ACL flags"},
	{"issue 13: path -f passwd", func() error { return CheckPathACL("HAPROXY_0_PATH", "-f /etc/passwd") }, "ACL flags"},
	{"path -m", func() error { return CheckPathACL("HAPROXY_0_PATH", "-m reg .*") }, "ACL flags"},
	{"path -i", func() error { return CheckPathACL("HAPROXY_0_PATH", "-i /api") }, "ACL flags"},
	{"path then flag", func() error { return CheckPathACL("HAPROXY_0_PATH", "/api -f /etc/passwd") }, "ACL flags"},
	{"path quote", func() error { return CheckPathACL("HAPROXY_0_PATH", `/a"b`) }, "not allowed"},
	{"path hash", func() error { return CheckPathACL("HAPROXY_0_PATH", "/a#b") }, "not allowed"},
	{"path dollar", func() error { return CheckPathACL("HAPROXY_0_PATH", "/${SECRET}") }, "not allowed"},
	{"path empty", func() error { return CheckPathACL("HAPROXY_0_PATH", " ") }, "want path prefixes"},

	// AUTH.
	{"auth", func() error { return CheckAuth("HAPROXY_0_AUTH", "Shop admin area", "admin", "$6$salt$Hash./0") }, ""},
	{"issue 4: auth realm env", func() error { return CheckAuth("HAPROXY_0_AUTH", "${LODESTAR_API_AUTH}", "admin", "$6$x") }, "realm"},
	{"auth realm quote", func() error { return CheckAuth("HAPROXY_0_AUTH", `a" if TRUE`, "admin", "$6$x") }, "realm"},
	{"auth realm percent", func() error { return CheckAuth("HAPROXY_0_AUTH", "%[env(X)]", "admin", "$6$x") }, "realm"},
	{"auth user space", func() error { return CheckAuth("HAPROXY_0_AUTH", "r", "a b", "$6$x") }, "user"},
	{"auth password space", func() error { return CheckAuth("HAPROXY_0_AUTH", "r", "a", "x groups admin") }, "password"},
	{"auth password flag", func() error { return CheckAuth("HAPROXY_0_AUTH", "r", "a", "-x") }, "password"},

	// Paths of the HTTP backend labels.
	{"redir path", func() error { return CheckRedirPath("HAPROXY_0_HTTP_BACKEND_REDIR", "/home?x=1") }, ""},
	{"redir url", func() error { return CheckRedirPath("HAPROXY_0_HTTP_BACKEND_REDIR", "https://shop.example.com/home") }, ""},
	{"issue 4: redir env", func() error {
		return CheckRedirPath("HAPROXY_0_HTTP_BACKEND_REDIR", "%[env(LODESTAR_API_AUTH)]")
	}, "want a path"},
	{"redir path with a fetch", func() error { return CheckRedirPath("HAPROXY_0_HTTP_BACKEND_REDIR", "/%[env(X)]") }, `'%'`},
	{"redir path with space", func() error { return CheckRedirPath("HAPROXY_0_HTTP_BACKEND_REDIR", "/a if TRUE") }, "not allowed"},
	{"redir javascript", func() error { return CheckRedirPath("HAPROXY_0_HTTP_BACKEND_REDIR", "javascript:x") }, "want a path"},
	{"proxypass path", func() error { return CheckRewritePath("HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/api/v1") }, ""},
	{"proxypass regex", func() error { return CheckRewritePath("HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/(.*)") }, "not allowed"},
	{"revproxy backreference", func() error { return CheckRewritePath("HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", `/a\1`) }, "not allowed"},
	{"revproxy relative", func() error { return CheckRewritePath("HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", "a") }, "starting with /"},

	// BACKEND_NETWORK_ALLOWED_ACL, BALANCE, MODE, SSL_CERT.
	{"networks", func() error { return CheckNetworkAllowed("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8 ::1") }, ""},
	{"networks word", func() error {
		return CheckNetworkAllowed("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8 everyone")
	}, "CIDR"},
	{"networks flag", func() error { return CheckNetworkAllowed("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "-f /etc/passwd") }, "CIDR"},
	{"networks newline", func() error {
		return CheckNetworkAllowed("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8\nglobal")
	}, "CIDR"},
	{"balance", func() error { return CheckBalance("HAPROXY_0_BALANCE", "leastconn") }, ""},
	{"balance hdr", func() error { return CheckBalance("HAPROXY_0_BALANCE", "hdr(x-user)") }, ""},
	{"balance url_param", func() error { return CheckBalance("HAPROXY_0_BALANCE", "url_param user check_post") }, ""},
	{"balance uri len", func() error { return CheckBalance("HAPROXY_0_BALANCE", "uri len 10") }, ""},
	{"balance unknown", func() error { return CheckBalance("HAPROXY_0_BALANCE", "fastest") }, "want one of"},
	{"balance hash env", func() error { return CheckBalance("HAPROXY_0_BALANCE", "hash env(X)") }, "want one of"},
	{"balance hdr env", func() error { return CheckBalance("HAPROXY_0_BALANCE", "hdr(env(X))") }, "plain name"},
	{"balance extra", func() error { return CheckBalance("HAPROXY_0_BALANCE", "roundrobin\n  server x 127.0.0.1:1") }, "control character"},
	{"balance with a second word", func() error { return CheckBalance("HAPROXY_0_BALANCE", "roundrobin x") }, "no further arguments"},
	{"balance hdr without name", func() error { return CheckBalance("HAPROXY_0_BALANCE", "hdr") }, "header name"},
	{"mode", func() error { return CheckMode("HAPROXY_0_MODE", "tcp") }, ""},
	{"mode other", func() error { return CheckMode("HAPROXY_0_MODE", "health") }, "http or tcp"},
	{"ssl cert", func() error { return CheckSSLCert("HAPROXY_0_SSL_CERT", "/etc/ssl/shop.pem") }, ""},
	{"ssl cert relative", func() error { return CheckSSLCert("HAPROXY_0_SSL_CERT", "shop.pem") }, "absolute"},
	{"ssl cert with options", func() error { return CheckSSLCert("HAPROXY_0_SSL_CERT", "/a.pem ca-file /etc/shadow") }, "not allowed"},
	{"ssl cert dotdot", func() error { return CheckSSLCert("HAPROXY_0_SSL_CERT", "/etc/ssl/../shadow") }, "absolute"},

	// Bamboo-style rules.
	{"rule", func() error { return CheckRuleACL("rule /shop/web", "hdr(host) -i shop.example.com") }, ""},
	{"rule path", func() error { return CheckRuleACL("rule /shop/web", "path_beg -i /api /v2") }, ""},
	{"rule -m", func() error { return CheckRuleACL("rule /shop/web", "hdr(host) -m end .example.com") }, ""},
	{"issue 10: rule with a stray quote", func() error { return CheckRuleACL("rule /shop/web", `hdr(host) -i "a`) }, "quotes"},
	{"rule -f", func() error { return CheckRuleACL("rule /shop/web", "hdr(host) -f /etc/passwd") }, "-f refused"},
	{"rule -M", func() error { return CheckRuleACL("rule /shop/web", "hdr(host) -M -f /etc/x.map") }, "-M refused"},
	{"rule env", func() error { return CheckRuleACL("rule /shop/web", "env(LODESTAR_API_AUTH) -m found") }, "env()"},
	{"rule map", func() error { return CheckRuleACL("rule /shop/web", "hdr(host),map(/etc/shadow) -m found") }, "map converters"},
	{"rule newline", func() error { return CheckRuleACL("rule /shop/web", "hdr(host) -i a\nglobal") }, "control character"},
	{"rule comment", func() error { return CheckRuleACL("rule /shop/web", "hdr(host) -i a # b") }, "'#'"},
	{"rule bad method", func() error { return CheckRuleACL("rule /shop/web", "hdr(host) -m frob x") }, "match method"},
	{"rule flag first", func() error { return CheckRuleACL("rule /shop/web", "-f /etc/passwd") }, "not the flag"},
	{"rule empty", func() error { return CheckRuleACL("rule /shop/web", "  ") }, "want <fetch>"},
}

func TestInputCheck(t *testing.T) {
	for _, tc := range inputCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("honest value refused: %v", err)
			case tc.want != "" && err == nil:
				t.Error("hostile value accepted")
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			case err != nil && !errors.Is(err, ErrBadInput):
				t.Errorf("error %v does not wrap ErrBadInput", err)
			}
		})
	}
}

// TestInputCheckErrorQuotesAndTruncates: a refusal names the field and quotes the value, cut to
// 64 bytes, so that a megabyte label does not become a megabyte log line.
func TestInputCheckErrorQuotesAndTruncates(t *testing.T) {
	v := "10.0.0.5\n" + strings.Repeat("x", 1<<20)
	err := CheckHostAddr("task host", v)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `task host "10.0.0.5\nxxx`) || !strings.Contains(msg, `"…:`) || len(msg) > 200 {
		t.Errorf("message %q: want the field, the quoted value cut short", msg)
	}
	var ie *InputError
	if !errors.As(err, &ie) || ie.Field != "task host" || ie.Value != v {
		t.Errorf("got %#v, want an *InputError with the field and the whole value", err)
	}
	if err := CheckAuth("HAPROXY_0_AUTH", "r", "u", "secret with space"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("password refusal %v: must not quote the password", err)
	}
}

// TestCheckTask: a task's id, host, IP addresses and endpoints are checked; the error names
// the task and the field.
func TestCheckTask(t *testing.T) {
	honest := func() *discovery.Task {
		return &discovery.Task{ID: "shop_web.8cad6a69-6ca8-11e7", Host: "agent-1.example.com",
			IPAddresses: []string{"10.1.0.5"}, Endpoints: []discovery.Endpoint{{Host: "10.1.0.5", Port: 31000}}}
	}
	if err := CheckTask(honest()); err != nil {
		t.Fatalf("honest task refused: %v", err)
	}
	inject := "10.1.0.5\n  http-request return status 200 content-type text/plain string pwned"
	for _, tc := range []struct {
		name  string
		edit  func(*discovery.Task)
		field string
	}{
		{"issue 5: host", func(tk *discovery.Task) { tk.Host = inject }, "host"},
		{"issue 5: ip-per-task address", func(tk *discovery.Task) { tk.IPAddresses = []string{inject} }, "ipAddresses[].ipAddress"},
		{"endpoint host", func(tk *discovery.Task) { tk.Endpoints[0].Host = inject }, "endpoint 0 host"},
		{"endpoint port", func(tk *discovery.Task) { tk.Endpoints[0].Port = 70000 }, "endpoint 0 port"},
		{"task id", func(tk *discovery.Task) { tk.ID = "a\nb" }, "task id"},
	} {
		tk := honest()
		tc.edit(tk)
		err := CheckTask(tk)
		if err == nil || !strings.Contains(err.Error(), tc.field) || !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: %v, want a refusal naming %q", tc.name, err, tc.field)
		}
	}
}

// TestCheckPortLabels: the parsed labels of a port are held to their types, naming the label.
func TestCheckPortLabels(t *testing.T) {
	honest := func() *PortLabels {
		return &PortLabels{Index: 0, VHosts: []string{"shop.example.com"}, Path: "/api", Mode: "http",
			Balance: "roundrobin", BindAddr: "*", BindOptions: "accept-proxy", Port: 10000,
			Auth: &Auth{Realm: "shop", User: "admin", Password: "$6$x$y"}, ProxyPassPath: "/api",
			RevProxyPath: "/shop", RedirPath: "/home", NetworkAllowed: []string{"10.0.0.0/8"}, SSLCert: "/etc/ssl/a.pem"}
	}
	if err := CheckPortLabels(honest()); err != nil {
		t.Fatalf("honest labels refused: %v", err)
	}
	for _, tc := range []struct {
		edit  func(*PortLabels)
		label string
	}{
		{func(p *PortLabels) { p.BindAddr = "127.0.0.1:27080,127.0.0.1" }, "HAPROXY_0_BIND_ADDR"},
		{func(p *PortLabels) { p.BindOptions = "user root" }, "HAPROXY_0_BIND_OPTIONS"},
		{func(p *PortLabels) { p.Path = "-f /path/to/fifo" }, "HAPROXY_0_PATH"},
		{func(p *PortLabels) { p.VHosts = []string{"-f"} }, "HAPROXY_0_VHOST"},
		{func(p *PortLabels) { p.Auth.Realm = "${LODESTAR_API_AUTH}" }, "HAPROXY_0_AUTH"},
		{func(p *PortLabels) { p.RedirPath = "%[env(LODESTAR_API_AUTH)]" }, "HAPROXY_0_HTTP_BACKEND_REDIR"},
		{func(p *PortLabels) { p.ProxyPassPath = "/(.*)" }, "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH"},
		{func(p *PortLabels) { p.RevProxyPath = `/\1` }, "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH"},
		{func(p *PortLabels) { p.NetworkAllowed = []string{"everyone"} }, "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL"},
		{func(p *PortLabels) { p.Balance = "hash env(X)" }, "HAPROXY_0_BALANCE"},
		{func(p *PortLabels) { p.Mode = "health" }, "HAPROXY_0_MODE"},
		{func(p *PortLabels) { p.SSLCert = "/a.pem ca-file /etc/shadow" }, "HAPROXY_0_SSL_CERT"},
		{func(p *PortLabels) { p.Port = 70000 }, "HAPROXY_0_PORT"},
	} {
		p := honest()
		tc.edit(p)
		if err := CheckPortLabels(p); err == nil || !strings.Contains(err.Error(), "label "+tc.label) {
			t.Errorf("%s: %v, want a refusal naming the label", tc.label, err)
		}
	}
}
