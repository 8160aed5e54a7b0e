package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeRuleChecker refuses an ACL with a double quote as HAProxy would ("unmatched quote"),
// cannot check an ACL containing "unreachable", and remembers what it was asked.
type fakeRuleChecker struct {
	mu    sync.Mutex
	asked []ServiceRule
}

func (f *fakeRuleChecker) CheckRule(_ context.Context, r ServiceRule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, r)
	switch {
	case strings.Contains(r.ACL, `"`):
		return fmt.Errorf("%w: HAProxy rejects the rule: parsing [haproxy.cfg:42]: unmatched quote", ErrInvalidRule)
	case strings.Contains(r.ACL, "unreachable"):
		return errors.New("haproxy -c could not run")
	}
	return nil
}

// TestRulesCheckedBeforeStored: PUT and POST of a rule HAProxy would not take answer 400 with
// HAProxy's alert and store nothing; a rule that cannot be checked is not stored either (503);
// an honest rule is checked, then stored; DELETE is not checked.
func TestRulesCheckedBeforeStored(t *testing.T) {
	s := newServer(t, Config{}, fixtureRegistry(t))
	rules := &fakeRules{rules: map[string]string{"/evil/app": "hdr(host) -i evil.test"}}
	check := &fakeRuleChecker{}
	s.SetFrontends(Frontends{Rules: rules, RuleCheck: check})
	base := serveAPI(t, s, listenLoopback(t))
	for _, st := range []step{
		{method: "PUT", path: "/api/services/evil/app", body: `{"acl":"hdr(host) -i \"a"}`, code: 400, fields: map[string]string{
			"error": "rule of /evil/app: invalid rule: HAProxy rejects the rule: parsing [haproxy.cfg:42]: unmatched quote"}},
		{method: "POST", path: "/api/services", body: `{"id":"/evil/new","acl":"hdr(host) -i \"a"}`, code: 400, text: "unmatched quote"},
		{method: "PUT", path: "/api/services/evil/app", body: `{"acl":"hdr(host) -i unreachable.test"}`, code: 503,
			text: "checking the rule of /evil/app: haproxy -c could not run"},
		{method: "GET", path: "/api/services", code: 200, fields: map[string]string{"#": "1", "/evil/app.Acl": "hdr(host) -i evil.test"}},
		{method: "PUT", path: "/api/services/shop/web", body: `{"acl":"hdr(host) -i shop.test"}`, code: 200, fields: map[string]string{"Acl": "hdr(host) -i shop.test"}},
		{method: "DELETE", path: "/api/services/evil/app", code: 200},
	} {
		doStep(t, base, st)
	}
	if _, ok := rules.get("/evil/new"); ok {
		t.Error("the rule HAProxy rejects was stored")
	}
	if acl, _ := rules.get("/shop/web"); acl != "hdr(host) -i shop.test" {
		t.Errorf("the honest rule is stored as %q", acl)
	}
	check.mu.Lock()
	defer check.mu.Unlock()
	if len(check.asked) != 4 || check.asked[3] != (ServiceRule{ID: "/shop/web", ACL: "hdr(host) -i shop.test"}) {
		t.Errorf("the checker was asked %v, want the four PUT and POST rules", check.asked)
	}
}
