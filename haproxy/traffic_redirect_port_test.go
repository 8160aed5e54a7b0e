package haproxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// TestTrafficRedirectDropsHTTPPort: a Host header with the HTTP port (browsers send it when the
// port is not 80; clients behind some proxies always do) is redirected to the HTTPS URL without
// that port, not to https://host:80/. A Host that smuggles another authority after the port
// ("secure.test:80@evil.test") cannot turn the redirect into one to another site.
func TestTrafficRedirectDropsHTTPPort(t *testing.T) {
	t.Parallel()
	secure := haproxytest.BackendNamed(t, "secure")
	lb := startTraffic(t,
		trafficApp("/secure", haproxytest.FreePort(t), map[string]string{"HAPROXY_0_VHOST": "secure.test", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"}, secure.Port))
	u, err := url.Parse(lb.httpURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"secure.test:80", "secure.test:" + u.Port(), "SECURE.test:443", "secure.test"} {
		r := send(t, trafficReq{url: lb.httpURL + "/a/b?c=1", host: host})
		want := "https://" + strings.Split(host, ":")[0] + "/a/b?c=1"
		if r.code != http.StatusMovedPermanently || r.header.Get("Location") != want {
			t.Errorf("plain HTTP with Host %q: %s, Location %q; want 301 to %s", host, r, r.header.Get("Location"), want)
		}
	}
	r := send(t, trafficReq{url: lb.httpURL + "/a", host: "secure.test:80@evil.test"})
	if loc := r.header.Get("Location"); strings.Contains(loc, "evil") {
		t.Errorf("Host secure.test:80@evil.test redirected to %q", loc)
	}
	if secure.Requests() != 0 {
		t.Errorf("a redirected request reached the backend")
	}
}
