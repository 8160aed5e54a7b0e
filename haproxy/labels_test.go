package haproxy

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

func TestParsePortLabelErrors(t *testing.T) {
	tests := []struct {
		label, value string
		err          string
	}{
		{"HAPROXY_0_MODE", "htp", `app /shop/web: label HAPROXY_0_MODE="htp": want http or tcp`},
		{"HAPROXY_0_STICKY", "maybe", `app /shop/web: label HAPROXY_0_STICKY="maybe": want true or false`},
		{"HAPROXY_0_ENABLED", "", `app /shop/web: label HAPROXY_0_ENABLED="": want true or false`},
		{"HAPROXY_0_REDIRECT_TO_HTTPS", "sure", `app /shop/web: label HAPROXY_0_REDIRECT_TO_HTTPS="sure": want true or false`},
		{"HAPROXY_0_USE_HSTS", "2", `app /shop/web: label HAPROXY_0_USE_HSTS="2": want true or false`},
		{"HAPROXY_0_PORT", "80a", `app /shop/web: label HAPROXY_0_PORT="80a": want a port number (1-65535)`},
		{"HAPROXY_0_PORT", "70000", `app /shop/web: label HAPROXY_0_PORT="70000": want a port number (1-65535)`},
		{"HAPROXY_0_BACKEND_WEIGHT", "heavy", `app /shop/web: label HAPROXY_0_BACKEND_WEIGHT="heavy": want an integer`},
		{"HAPROXY_0_AUTH", "realm:user", `app /shop/web: label HAPROXY_0_AUTH="realm:user": want realm:user:password (a crypt(3) hash)`},
		{"HAPROXY_0_AUTH", `re"alm:user:pw`, `app /shop/web: label HAPROXY_0_AUTH="re\"alm:user:pw": want realm:user:password (a crypt(3) hash)`},
		{"HAPROXY_0_VHOST", "shop example.com", `app /shop/web: label HAPROXY_0_VHOST="shop example.com": want comma-separated host names`},
		{"HAPROXY_0_VHOST", " , ", `app /shop/web: label HAPROXY_0_VHOST=" , ": want comma-separated host names`},
		{"HAPROXY_0_BALANCE", "fastest", `app /shop/web: label HAPROXY_0_BALANCE="fastest": want a balance algorithm (first, hash, hdr, leastconn, random, rdp-cookie, roundrobin, source, static-rr, uri, url_param)`},
		{"HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8 everyone", `app /shop/web: label HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL="10.0.0.0/8 everyone": want space-separated IP addresses or CIDR networks`},
		{"HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "2", `app /shop/web: label HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX="2": want a port index from 0 to 1`},
		{"HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "api", `app /shop/web: label HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH="api": want a path starting with /`},
		{"HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", "/a b", `app /shop/web: label HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH="/a b": want a path starting with /`},
		{"HAPROXY_0_HTTP_BACKEND_REDIR", "", `app /shop/web: label HAPROXY_0_HTTP_BACKEND_REDIR="": want a path or URL`},
		{"HAPROXY_0_SSL_CERT", "/a b.pem", `app /shop/web: label HAPROXY_0_SSL_CERT="/a b.pem": want a certificate file path`},
		{"HAPROXY_0_BIND_ADDR", "", `app /shop/web: label HAPROXY_0_BIND_ADDR="": want an address or *`},
		{"HAPROXY_0_PATH", "  ", `app /shop/web: label HAPROXY_0_PATH="  ": want path prefixes (path_beg arguments)`},
		{"HAPROXY_0_BIND_OPTIONS", "a\nb", `app /shop/web: label HAPROXY_0_BIND_OPTIONS="a\nb": want a single line`},
	}
	for _, tt := range tests {
		t.Run(tt.label+"="+tt.value, func(t *testing.T) {
			a := app("/shop/web", withPorts(10000, 10001), withLabel("HAPROXY_GROUP", "external"), withLabel(tt.label, tt.value))
			al := ParseLabels(a)
			if al.Err != nil {
				t.Fatalf("app error %v", al.Err)
			}
			if al.Ports[1].Err != nil {
				t.Errorf("port 1 error %v", al.Ports[1].Err)
			}
			err := al.Ports[0].Err
			if err == nil || err.Error() != tt.err {
				t.Fatalf("error\n got %v\nwant %s", err, tt.err)
			}
			if m := Build(snapshot(t, a), testConfig(), nil); len(m.Excluded) != 1 || m.Excluded[0].Reason != tt.err || m.Excluded[0].Port != 0 {
				t.Errorf("excluded %v", excluded(m))
			}
		})
	}
}

func TestParseAppLabelErrors(t *testing.T) {
	tests := []struct {
		label, value string
		err          string
	}{
		{"HAPROXY_DEPLOYMENT_STARTED_AT", "yesterday", `app /shop/web: label HAPROXY_DEPLOYMENT_STARTED_AT="yesterday": want a timestamp (RFC 3339)`},
		{"HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "-1", `app /shop/web: label HAPROXY_DEPLOYMENT_TARGET_INSTANCES="-1": want a non-negative integer`},
		{"HAPROXY_DEPLOYMENT_ALT_PORT", "0", `app /shop/web: label HAPROXY_DEPLOYMENT_ALT_PORT="0": want a port number (1-65535)`},
		{"HAPROXY_DEPLOYMENT_GROUP", "a b", `app /shop/web: label HAPROXY_DEPLOYMENT_GROUP="a b": want a group name`},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			a := app("/shop/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withLabel(tt.label, tt.value))
			al := ParseLabels(a)
			if al.Err == nil || al.Err.Error() != tt.err {
				t.Fatalf("error\n got %v\nwant %s", al.Err, tt.err)
			}
			m := Build(snapshot(t, a), testConfig(), nil)
			if len(m.Excluded) != 1 || m.Excluded[0].Port != -1 || m.Excluded[0].Reason != tt.err {
				t.Errorf("excluded %v", excluded(m))
			}
		})
	}
}

func TestParseLabelsValues(t *testing.T) {
	a := app("/shop/web", withPorts(10000, 10001),
		withLabel("HAPROXY_GROUP", "external, internal,"),
		withLabel("HAPROXY_DEPLOYMENT_GROUP", "shop"),
		withLabel("HAPROXY_DEPLOYMENT_STARTED_AT", "2016-02-01T14:13:42.499089"),
		withLabel("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "20"),
		withLabel("HAPROXY_DEPLOYMENT_ALT_PORT", "10001"),
		withLabel("HAPROXY_DEPLOYMENT_COLOUR", "blue"),
		withLabel("HAPROXY_APP_ID", "shop"),
		withLabel("HAPROXY_0_GROUP", "edge"),
		withLabel("HAPROXY_0_ENABLED", "Yes"),
		withLabel("HAPROXY_0_VHOST", "Shop.Example.com, www.shop.example.com"),
		withLabel("HAPROXY_0_PATH", "/api /v2"),
		withLabel("HAPROXY_0_MODE", "HTTP"),
		withLabel("HAPROXY_0_BALANCE", "hdr(host)"),
		withLabel("HAPROXY_0_STICKY", "t"),
		withLabel("HAPROXY_0_REDIRECT_TO_HTTPS", "y"),
		withLabel("HAPROXY_0_USE_HSTS", "true"),
		withLabel("HAPROXY_0_SSL_CERT", "/etc/ssl/shop.pem"),
		withLabel("HAPROXY_0_BIND_OPTIONS", "accept-proxy"),
		withLabel("HAPROXY_0_BIND_ADDR", "10.0.0.42"),
		withLabel("HAPROXY_0_PORT", "8080"),
		withLabel("HAPROXY_0_BACKEND_WEIGHT", "-3"),
		withLabel("HAPROXY_0_AUTH", "Shop:admin:$6$s$h"),
		withLabel("HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/shop"),
		withLabel("HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", "/shop"),
		withLabel("HAPROXY_0_HTTP_BACKEND_REDIR", "/index.html"),
		withLabel("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8 ::1"),
		withLabel("HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "1"),
		withLabel("HAPROXY_0_BACKEND_HEAD", "backend {backend}\r\n  mode {mode}\r\n"),
		withLabel("HAPROXY_1_ENABLED", "false"),
	)
	al := ParseLabels(a)
	if al.Err != nil || al.Ports[0].Err != nil || al.Ports[1].Err != nil {
		t.Fatalf("errors %v %v %v", al.Err, al.Ports[0].Err, al.Ports[1].Err)
	}
	if len(al.Warnings) != 0 {
		t.Errorf("warnings %v", al.Warnings)
	}
	if !slices.Equal(al.Groups, []string{"external", "internal"}) {
		t.Errorf("groups %q", al.Groups)
	}
	wantDeploy := Deployment{Group: "shop", AltPort: 10001, Colour: "blue", TargetInstances: 20,
		StartedAt: time.Date(2016, 2, 1, 14, 13, 42, 499089000, time.UTC)}
	if al.Deployment != wantDeploy {
		t.Errorf("deployment %+v, want %+v", al.Deployment, wantDeploy)
	}
	want := PortLabels{Index: 0, Groups: []string{"edge"}, GroupSet: true, Enabled: true, EnabledSet: true,
		VHosts: []string{"shop.example.com", "www.shop.example.com"}, Path: "/api /v2", Mode: "http",
		Balance: "hdr(host)", Sticky: true, RedirectToHTTPS: true, UseHSTS: true, SSLCert: "/etc/ssl/shop.pem",
		BindOptions: "accept-proxy", BindAddr: "10.0.0.42", Port: 8080, BackendWeight: -3,
		Auth: &Auth{Realm: "Shop", User: "admin", Password: "$6$s$h"}, ProxyPassPath: "/shop", RevProxyPath: "/shop",
		RedirPath: "/index.html", NetworkAllowed: []string{"10.0.0.0/8", "::1"}, HealthCheckPortIndex: 1,
		HealthCheckPortIndexSet: true, Templates: map[string]string{"BACKEND_HEAD": "backend {backend}\n  mode {mode}\n"}}
	if !reflect.DeepEqual(al.Ports[0], want) {
		t.Errorf("port 0\n got %+v\nwant %+v", al.Ports[0], want)
	}
	if p := al.Ports[1]; !p.EnabledSet || p.Enabled || p.Balance != "roundrobin" || p.BindAddr != "*" || p.Mode != "" {
		t.Errorf("port 1 defaults %+v", p)
	}
}

func TestParseLabelsWarnings(t *testing.T) {
	a := app("/x", withPorts(10000),
		withLabel("HAPROXY_0_VHOTS", "typo"),
		withLabel("HAPROXY_3_VHOST", "x.example.com"),
		withLabel("HAPROXY_0_HEAD", "global\n"),
		withLabel("HAPROXY_SOMETHING", "1"),
		withLabel("OTHER", "not ours"))
	al := ParseLabels(a)
	var got []string
	for _, w := range al.Warnings {
		got = append(got, w.Message)
	}
	want := []string{
		"label HAPROXY_0_HEAD: template HAPROXY_HEAD cannot be overridden per app, ignored",
		"label HAPROXY_0_VHOTS: unknown, ignored",
		"label HAPROXY_3_VHOST: the app has 1 ports, ignored",
		"label HAPROXY_SOMETHING: unknown, ignored",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n got %q\nwant %q", got, want)
	}
}

// TestOneBadAppAmongMany: a malformed label leaves out that app (or port) only.
func TestOneBadAppAmongMany(t *testing.T) {
	var apps []*discovery.App
	for i := range 50 {
		apps = append(apps, app("/app/"+string(rune('a'+i%26))+string(rune('a'+i/26)), withPorts(11000+i),
			withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_VHOST", "app.example.com"),
			withTasks(task("t", ports(31000)))))
	}
	apps[17].Labels["HAPROXY_0_MODE"] = "htp"
	apps[33].Ports = append(apps[33].Ports, discovery.Port{ServicePort: 12033})
	apps[33].Labels["HAPROXY_1_STICKY"] = "sometimes"
	m := build(t, testConfig(), nil, apps...)
	if len(m.Backends) != 49 {
		t.Fatalf("%d backends, want 49 (every app but one, and the good port of the app with a bad port): %v", len(m.Backends), excluded(m))
	}
	wantExcluded := []Exclusion{
		{AppID: apps[33].ID, Port: 1, Reason: `app /app/hb: label HAPROXY_1_STICKY="sometimes": want true or false`},
		{AppID: apps[17].ID, Port: 0, Reason: `app /app/ra: label HAPROXY_0_MODE="htp": want http or tcp`},
	}
	if !slices.Equal(m.Excluded, wantExcluded) {
		t.Errorf("excluded %v", excluded(m))
	}
	if m.Backend(backendName(apps[17].ID, 11017)) != nil {
		t.Error("the bad app has a backend")
	}
	if m.Backend(backendName(apps[33].ID, 11033)) == nil {
		t.Error("the good port of the app with a bad port has no backend")
	}
	checkConfig(t, render(t, m), DefaultRunDir)
}
