package haproxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// liveConfig is a configuration on free loopback ports in a fresh run directory.
func liveConfig(t *testing.T) (Config, string) {
	t.Helper()
	runDir, err := os.MkdirTemp("", "lodestar-review-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	cfg := testConfig()
	cfg.RunDir = runDir
	cfg.HTTPBind = "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.HTTPSBind = "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.StatsBind = "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.AppIDBind = "127.0.0.1:" + strconv.Itoa(freePort(t))
	return cfg, runDir
}

// TestAppIDRoutesOfSimilarIDsDoNotMix: /a/b and /a.b clean up to the same ACL stem (_a_b).
// HAProxy ORs acl lines of one name, so under templates that name their ACLs (marathon-lb's)
// sharing it sent /a/b's X-Marathon-App-Id requests to /a.b: there the first app by id keeps
// the name and the other's app-id route is left out with a warning naming it. With the
// built-in templates (inline conditions) and with maps each app is reached by its own id.
func TestAppIDRoutesOfSimilarIDsDoNotMix(t *testing.T) {
	for _, mode := range []string{"named", "inline", "maps"} {
		t.Run(mode, func(t *testing.T) {
			slash, dot := upstream(t, "slash"), upstream(t, "dot")
			cfg, runDir := liveConfig(t)
			mapMode := mode == "maps"
			cfg.HAProxyMap = mapMode
			if mode == "named" {
				cfg.Templates, cfg.Getenv = nil, namedACLConfig().Getenv
			}
			svc := func(id string, up int) *discovery.App {
				return app(id, withPorts(freePort(t)), withLabel("HAPROXY_GROUP", "external"),
					withLabel("HAPROXY_0_MODE", "http"), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
					withTasks(task(strings.ReplaceAll(id[1:], "/", "_")+".1", host("127.0.0.1"), ports(up))))
			}
			m := build(t, cfg, nil, svc("/a/b", slash), svc("/a.b", dot))
			if len(m.Excluded) > 0 {
				t.Fatalf("excluded: %v", excluded(m))
			}
			r := render(t, m)
			probe, _ := bindPort(cfg.AppIDBind)
			liveHAProxy(t, r, runDir, probe)
			url := "http://" + cfg.AppIDBind + "/"
			want := map[string]string{"/a/b": "200 slash", "/a.b": "200 dot"}
			if mode == "named" {
				want["/a/b"] = "503 "
				var warned bool
				for _, w := range m.Warnings {
					warned = warned || w.AppID == "/a/b" && strings.Contains(w.Message, "acl app__a_b") &&
						strings.Contains(w.Message, "marathon_http_appid_in") && strings.Contains(w.Message, "/a.b")
				}
				if !warned {
					t.Errorf("no warning names /a/b, the acl and /a.b: %+v", m.Warnings)
				}
			} else if len(m.Warnings) > 0 {
				t.Errorf("warnings %+v, want none", m.Warnings)
			}
			for id, w := range want {
				if got := get(t, url, "", "x", "X-Marathon-App-Id", id); !strings.HasPrefix(got, w) {
					t.Errorf("X-Marathon-App-Id %s: %q, want %q\n%s", id, got, w, r.Config)
				}
			}
		})
	}
}

// TestSameACLOnTwoAppsIsNotAClash: two apps whose templates declare the same acl with the
// same definition keep both their routes (ORing identical conditions changes nothing). A
// shared acl name is what --label-templates full allows (confined, each app names its own).
func TestSameACLOnTwoAppsIsNotAClash(t *testing.T) {
	tmpl := "  acl is_ws hdr(upgrade) -i websocket\n  use_backend {backend} if is_ws {{ hdr(host),field(1,:) -i {hostname} }}\n"
	cfg := testConfig()
	cfg.LabelTemplates = LabelTemplatesFull
	m := build(t, cfg, nil,
		app("/one", withPorts(10001), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_VHOST", "one.test"),
			withLabel("HAPROXY_0_HTTP_FRONTEND_ACL", tmpl)),
		app("/two", withPorts(10002), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_VHOST", "two.test"),
			withLabel("HAPROXY_0_HTTP_FRONTEND_ACL", tmpl)))
	var owners []string
	for _, r := range m.HTTP.Rules {
		if strings.HasPrefix(r.Text, "  use_backend") {
			owners = append(owners, r.Owner)
		}
	}
	if strings.Join(owners, " ") != "/one /two" {
		t.Errorf("use_backend owners %v, warnings %+v", owners, m.Warnings)
	}
}

// TestLiveSeveralVHosts: every host of a comma-separated HAPROXY_{n}_VHOST is routed, on HTTP
// (any case, with or without a port in Host) and on HTTPS (SNI), with a path, with a redirect
// to HTTPS, and plain; with ACLs and with maps.
func TestLiveSeveralVHosts(t *testing.T) {
	for _, mapMode := range []bool{false, true} {
		t.Run("maps="+strconv.FormatBool(mapMode), func(t *testing.T) {
			multi, plain, redir := upstream(t, "multi"), upstream(t, "plain"), upstream(t, "redir")
			cfg, runDir := liveConfig(t)
			cfg.HAProxyMap = mapMode
			svc := func(id string, up int, labels ...string) *discovery.App {
				opts := []appOpt{withPorts(freePort(t)), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
					withTasks(task(id[1:]+".1", host("127.0.0.1"), ports(up)))}
				for i := 0; i+1 < len(labels); i += 2 {
					opts = append(opts, withLabel(labels[i], labels[i+1]))
				}
				return app(id, opts...)
			}
			m := build(t, cfg, nil,
				svc("/multi", multi, "HAPROXY_0_VHOST", "a.test,B.test, c.test", "HAPROXY_0_PATH", "/api"),
				svc("/plain", plain, "HAPROXY_0_VHOST", "d.test,e.test"),
				svc("/redir", redir, "HAPROXY_0_VHOST", "r.test,s.test", "HAPROXY_0_REDIRECT_TO_HTTPS", "true"))
			if len(m.Excluded) > 0 || len(m.Warnings) > 0 {
				t.Fatalf("excluded %v, warnings %+v", excluded(m), m.Warnings)
			}
			probe, _ := bindPort(cfg.HTTPSBind)
			liveHAProxy(t, render(t, m), runDir, probe)
			httpURL, httpsURL := "http://"+cfg.HTTPBind, "https://"+cfg.HTTPSBind
			for _, c := range []struct{ url, sni, host, want string }{
				{httpURL + "/api/x", "", "a.test", "200 multi"},
				{httpURL + "/api/x", "", "b.test:80", "200 multi"},
				{httpURL + "/api", "", "C.TEST", "200 multi"},
				{httpURL + "/other", "", "c.test", "503 "},
				{httpsURL + "/api/x", "c.test", "c.test", "200 multi"},
				{httpsURL + "/other", "b.test", "b.test", "503 "},
				{httpURL + "/", "", "d.test", "200 plain"},
				{httpURL + "/", "", "E.Test:8080", "200 plain"},
				{httpsURL + "/", "e.test", "e.test", "200 plain"},
				{httpURL + "/", "", "s.test", "301 "},
				{httpURL + "/", "", "r.test", "301 "},
				{httpsURL + "/", "s.test", "s.test", "200 redir"},
				{httpsURL + "/", "r.test", "r.test", "200 redir"},
			} {
				if got := getNoRedirect(t, c.url, c.sni, c.host); !strings.HasPrefix(got, c.want) {
					t.Errorf("GET %s SNI %q Host %q: %q, want %q", c.url, c.sni, c.host, got, c.want)
				}
			}
		})
	}
}

// getNoRedirect is get without following redirects.
func getNoRedirect(t *testing.T, url, sni, hostHeader string) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = hostHeader
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s (SNI %q, Host %q): %v", url, sni, hostHeader, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}
