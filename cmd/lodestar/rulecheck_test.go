package main

import (
	"context"
	"errors"
	"testing"

	"github.com/lodestar-lb/lodestar/api"
)

// TestRuleCheckerParsesTheACL: without HAProxy, a rule is still parsed before it is stored: a
// quote, a second line's worth of words or a file-reading flag is an invalid rule (400), an
// honest ACL passes.
func TestRuleCheckerParsesTheACL(t *testing.T) {
	c := ruleChecker{}
	for acl, valid := range map[string]bool{
		"hdr(host) -i shop.example.test": true,
		"path_beg /shop":                 true,
		`hdr(host) -i "a`:                false,
		"hdr(host) -f /etc/passwd":       false,
		"hdr(host) -i a.test }{":         false,
	} {
		err := c.CheckRule(context.Background(), api.ServiceRule{ID: "/evil/app", ACL: acl})
		if valid && err != nil {
			t.Errorf("CheckRule(%q) = %v, want nil", acl, err)
		}
		if !valid && !errors.Is(err, api.ErrInvalidRule) {
			t.Errorf("CheckRule(%q) = %v, want an invalid rule", acl, err)
		}
	}
}
