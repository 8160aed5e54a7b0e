package haproxy

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// labelCombos are label sets an app team may write, alone and together.
var labelCombos = []map[string]string{
	{"HAPROXY_0_VHOST": "a.test,b.test,c.test", "HAPROXY_0_PATH": "/api /v2", "HAPROXY_0_AUTH": "realm:user:$6$x$y", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"},
	{"HAPROXY_0_VHOST": "a.test,b.test", "HAPROXY_0_PATH": "/api", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"},
	{"HAPROXY_0_VHOST": "a.test,b.test", "HAPROXY_0_AUTH": "My Realm:user:$6$x$y"},
	{"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_PATH": "/api", "HAPROXY_0_AUTH": "realm:user:$6$x$y", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"},
	{"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_AUTH": "realm:user:$6$x$y", "HAPROXY_0_REDIRECT_TO_HTTPS": "true", "HAPROXY_0_USE_HSTS": "true"},
	{"HAPROXY_0_VHOST": "*.a.test,a.test", "HAPROXY_0_STICKY": "true", "HAPROXY_0_BALANCE": "leastconn"},
	{"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_MODE": "tcp", "HAPROXY_0_STICKY": "true", "HAPROXY_0_USE_HSTS": "true"},
	{"HAPROXY_0_MODE": "http", "HAPROXY_0_BALANCE": "hdr(host)", "HAPROXY_0_STICKY": "true"},
	{"HAPROXY_0_BALANCE": "url_param userid", "HAPROXY_0_MODE": "http"},
	{"HAPROXY_0_BALANCE": "random(2)"},
	{"HAPROXY_0_BALANCE": "source", "HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_BIND_OPTIONS": "accept-proxy"},
	{"HAPROXY_0_SSL_CERT": "/run/lodestar/default.pem", "HAPROXY_0_MODE": "http", "HAPROXY_0_VHOST": "a.test"},
	{"HAPROXY_0_SSL_CERT": "/run/lodestar/default.pem"},
	{"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/app/", "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/app/", "HAPROXY_0_HTTP_BACKEND_REDIR": "/app"},
	{"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8 192.168.1.1"},
	{"HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8 ::1"},
	{"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_BACKEND_WEIGHT": "-5", "HAPROXY_0_PATH": "/x"},
	{"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_PORT": "12345", "HAPROXY_1_MODE": "http", "HAPROXY_1_VHOST": "a.test"},
	{"HAPROXY_0_VHOST": "a.test", "HAPROXY_1_VHOST": "a.test", "HAPROXY_1_PATH": "/admin", "HAPROXY_1_BACKEND_WEIGHT": "5"},
	{"HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX": "1", "HAPROXY_1_MODE": "tcp"},
	{"HAPROXY_0_VHOST": "A.Test", "HAPROXY_0_PATH": "/", "HAPROXY_0_AUTH": "r:u:p", "HAPROXY_1_AUTH": "r:u:p"},
}

// TestLabelCombosPassHAProxyCheck: every combination renders, with and without maps, to a
// configuration `haproxy -c` accepts, and no app is left out.
func TestLabelCombosPassHAProxyCheck(t *testing.T) {
	needHAProxy(t)
	for _, mapMode := range []bool{false, true} {
		var apps []*discovery.App
		for i, labels := range labelCombos {
			opts := []appOpt{withPorts(20000+2*i, 20001+2*i), withLabel("HAPROXY_GROUP", "external"),
				withHealthCheck("HTTP", "/health", 0),
				withTasks(task(fmt.Sprintf("t%d", i), ports(31000+2*i, 31001+2*i)))}
			for k, v := range labels {
				opts = append(opts, withLabel(k, v))
			}
			apps = append(apps, app(fmt.Sprintf("/combo/c%d", i), opts...))
		}
		cfg := testConfig()
		cfg.HAProxyMap = mapMode
		m := build(t, cfg, nil, apps...)
		if len(m.Excluded) > 0 {
			t.Errorf("maps=%v: excluded %v", mapMode, excluded(m))
		}
		r := render(t, m)
		path := installConfig(t, r, cfg.withDefaults().RunDir)
		out, err := exec.Command(haproxyBin, "-c", "-f", path).CombinedOutput()
		if err != nil {
			t.Errorf("maps=%v: haproxy -c: %v\n%s", mapMode, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "[WARNING]") {
				t.Logf("maps=%v: %s", mapMode, l)
			}
		}
	}
}
