package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// send makes one API request with a JSON body and returns the status and body.
func send(t *testing.T, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// ruleLine is the ACL line a bamboo rule renders to in the shared HTTP frontend.
func hasRule(cfg []byte, acl string) bool {
	for _, l := range strings.Split(string(cfg), "\n") {
		if strings.Contains(l, "acl rule_") && strings.HasSuffix(strings.TrimSpace(l), acl) {
			return true
		}
	}
	return false
}

// TestRulesThroughZooKeeper: two lodestar instances watch one ZooKeeper path. A bamboo rule
// PUT on one reaches the other's HAProxy (and routes traffic there); with ZooKeeper down both
// keep the rules they have and say ZooKeeper is gone; when it is back, changes flow again.
func TestRulesThroughZooKeeper(t *testing.T) {
	t.Parallel()
	zk := zktest.Start(t)
	rules := zk.URL("/lodestar/services")
	backend := haproxytest.Backend(t)
	fm := startLBMarathon(t, lbApp("/shop/web", FreePort(t), nil))
	addTask(t, fm, "/shop/web", backend)
	a := startLB(t, fm, "--zk-rules", rules)
	b := startLB(t, fm, "--zk-rules", rules)

	config := func(s *lbStack) []byte {
		code, body, err := Get(s.URL("/v1/haproxy/config"))
		if err != nil || code != http.StatusOK {
			return nil
		}
		return body
	}
	const acl = "hdr(host) -i shop.rules.test"
	start := time.Now()
	code, body := send(t, http.MethodPut, a.URL("/api/services/"+url.PathEscape("/shop/web")), map[string]string{"id": "/shop/web", "acl": acl})
	if code/100 != 2 {
		t.Fatalf("PUT /api/services: %d %s", code, body)
	}
	Eventually(t, lbTimeout, "the rule in the other instance's HAProxy config", func() error {
		if !hasRule(config(b), acl) {
			return fmt.Errorf("no %q in instance b's config", acl)
		}
		return nil
	})
	t.Logf("rule PUT on instance a to instance b's HAProxy config: %v", time.Since(start).Round(time.Millisecond))
	// Instance a learns its own write through its ZooKeeper watch too, not necessarily first.
	Eventually(t, lbTimeout, "the rule in the writing instance's own HAProxy config", func() error {
		if !hasRule(config(a), acl) {
			return fmt.Errorf("no %q in instance a's config", acl)
		}
		return nil
	})
	c := lbClient(t, false)
	Eventually(t, lbTimeout, "traffic for shop.rules.test through instance b", func() error {
		id, err := askBackend(c, http.MethodGet, "http://"+b.HTTPAddr+"/", "shop.rules.test")
		if err != nil {
			return err
		}
		if id != backend.ID {
			return fmt.Errorf("answered by %q, want %q", id, backend.ID)
		}
		return nil
	})

	// The rule as bamboo lists it, on the other instance.
	code, body = send(t, http.MethodGet, b.URL("/api/services"), nil)
	if code != http.StatusOK || !strings.Contains(string(body), "shop.rules.test") {
		t.Errorf("GET /api/services on b: %d %s", code, body)
	}

	// ZooKeeper down: both keep the rule and report the source's trouble.
	zk.Stop()
	for name, s := range map[string]*lbStack{"a": a, "b": b} {
		Eventually(t, lbTimeout, "instance "+name+" reports ZooKeeper down", func() error {
			var apps struct {
				Sources []struct {
					Name      string `json:"name"`
					LastError string `json:"last_error"`
				} `json:"sources"`
			}
			GetJSON(t, s.URL("/v1/apps"), &apps)
			for _, src := range apps.Sources {
				if src.Name == "zkrules" && src.LastError != "" {
					return nil
				}
			}
			return fmt.Errorf("sources %+v: no zkrules error", apps.Sources)
		})
		if !hasRule(config(s), acl) {
			t.Errorf("instance %s dropped the rule while ZooKeeper is down", name)
		}
	}
	code, body = send(t, http.MethodPut, a.URL("/api/services/"+url.PathEscape("/shop/web")), map[string]string{"id": "/shop/web", "acl": "hdr(host) -i other.test"})
	if code/100 == 2 {
		t.Errorf("PUT with ZooKeeper down answered %d %s, want an error", code, body)
	}

	// Back: a deletion on b reaches a.
	if err := zk.Start(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, lbTimeout, "DELETE on b once ZooKeeper is back", func() error {
		code, body := send(t, http.MethodDelete, b.URL("/api/services/"+url.PathEscape("/shop/web")), nil)
		if code/100 != 2 {
			return fmt.Errorf("DELETE: %d %s", code, body)
		}
		return nil
	})
	Eventually(t, lbTimeout, "the rule gone from instance a's config", func() error {
		if hasRule(config(a), acl) {
			return fmt.Errorf("instance a still routes by %q", acl)
		}
		return nil
	})
}
