package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// excludedApps returns the app ids an instance's /v1/haproxy/status lists as left out, with
// their reasons.
func excludedApps(t *testing.T, s *lbStack) map[string]string {
	t.Helper()
	var st struct {
		Excluded []struct {
			AppID  string `json:"app_id"`
			Reason string `json:"reason"`
		} `json:"excluded"`
	}
	GetJSON(t, s.URL("/v1/haproxy/status"), &st)
	out := map[string]string{}
	for _, e := range st.Excluded {
		out[e.AppID] = e.Reason
	}
	return out
}

// writeRuleNode stores a rule in ZooKeeper as bamboo (or an older lodestar) would, with no
// check: path is the rules path, the node is the query-escaped app id.
func writeRuleNode(t *testing.T, server *zktest.Server, path, appID, acl string) {
	t.Helper()
	conn, _, err := zk.Connect([]string{server.Addr()}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			if _, err := conn.Create(path[:i], nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
				t.Fatalf("creating %s: %v", path[:i], err)
			}
		}
	}
	if _, err := conn.Create(path, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
		t.Fatalf("creating %s: %v", path, err)
	}
	data, err := json.Marshal(map[string]any{"version": "2", "config": map[string]string{"Acl": acl}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Create(path+"/"+url.QueryEscape(appID), data, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("writing the rule of %s: %v", appID, err)
	}
}

// TestBadRuleRefusedAndDeleteRestores: a rule that would not validate is refused with 400
// (the parse error, or HAProxy's own alert) and nothing is stored; a bad rule already in
// ZooKeeper (written by an older instance) leaves its app out on every instance, and DELETE of
// it through one instance brings the app back on both.
func TestBadRuleRefusedAndDeleteRestores(t *testing.T) {
	t.Parallel()
	server := zktest.Start(t)
	const rulesPath = "/lodestar/services"
	rules := server.URL(rulesPath)
	backend := haproxytest.Backend(t)
	evilPort := FreePort(t)
	fm := startLBMarathon(t, lbApp("/evil/app", evilPort, map[string]string{"HAPROXY_0_VHOST": "evil.rules.test"}))
	addTask(t, fm, "/evil/app", backend)
	a := startLB(t, fm, "--zk-rules", rules)
	b := startLB(t, fm, "--zk-rules", rules)
	evilBackend := "backend " + backendName("/evil/app", evilPort)

	for acl, want := range map[string]string{
		`hdr(host) -i "a`:               "quotes",
		"no_such_fetch(host) -i a.test": "no_such_fetch",
	} {
		code, body := send(t, http.MethodPut, a.URL("/api/services/evil/app"), map[string]string{"acl": acl})
		if code != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("PUT of %q: %d %s, want 400 naming %q", acl, code, body, want)
		}
	}
	code, body := send(t, http.MethodGet, a.URL("/api/services"), nil)
	if code != http.StatusOK || strings.Contains(string(body), "evil") {
		t.Errorf("GET /api/services after the refused PUTs: %d %s, want no rule stored", code, body)
	}

	writeRuleNode(t, server, rulesPath, "/evil/app", `hdr(host) -i "a`)
	for name, s := range map[string]*lbStack{"a": a, "b": b} {
		Eventually(t, lbTimeout, "instance "+name+" leaves the app with the bad rule out", func() error {
			if _, out := excludedApps(t, s)["/evil/app"]; !out {
				return fmt.Errorf("excluded %v", excludedApps(t, s))
			}
			return nil
		})
	}
	code, body = send(t, http.MethodDelete, b.URL("/api/services/evil/app"), nil)
	if code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	for name, s := range map[string]*lbStack{"a": a, "b": b} {
		Eventually(t, lbTimeout, "instance "+name+" brings the app back", func() error {
			code, cfg, err := Get(s.URL("/v1/haproxy/config"))
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("config: %d %v", code, err)
			}
			if ex := excludedApps(t, s); len(ex) != 0 || !strings.Contains(string(cfg), evilBackend) {
				return fmt.Errorf("excluded %v; %q in the config: %v", ex, evilBackend, strings.Contains(string(cfg), evilBackend))
			}
			return nil
		})
	}
}
