package haproxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The shared frontends (HTTP, HTTPS, X-Marathon-App-Id) hold every app's routes: a confined
// snippet there declares ACLs only under the app's own names and adds rules only for the app's
// own hosts.

// isSelector reports whether an ACL definition matches only the app's own hosts (a Host
// header or SNI compared exactly with Hosts) or its own app id (X-Marathon-App-Id).
func (c *confiner) isSelector(words []string) bool {
	if len(words) < 2 {
		return false
	}
	parts := splitTopLevel(strings.ToLower(words[0]))
	var own []string
	switch parts[0] {
	case "hdr(host)", "req.hdr(host)", "ssl_fc_sni", "req.ssl_sni":
		own = c.scope.Hosts
	case "hdr(x-marathon-app-id)", "req.hdr(x-marathon-app-id)":
		own = []string{c.scope.AppID}
	default:
		return false
	}
	for _, conv := range parts[1:] {
		if conv != "lower" && conv != "field(1,:)" {
			return false
		}
	}
	vals := words[1:]
	for len(vals) > 0 && strings.HasPrefix(vals[0], "-") {
		switch vals[0] {
		case "-i", "--":
			vals = vals[1:]
		case "-m":
			if len(vals) < 2 || vals[1] != "str" {
				return false
			}
			vals = vals[2:]
		default:
			return false
		}
	}
	if len(vals) == 0 {
		return false
	}
	for _, v := range vals {
		if !slices.ContainsFunc(own, func(o string) bool { return strings.EqualFold(o, v) }) {
			return false
		}
	}
	return true
}

// splitTopLevel splits a fetch with converters at the commas outside parentheses.
func splitTopLevel(expr string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, expr[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, expr[start:])
}

// sharedLine checks a line added to a shared frontend: acl declarations in the app's own
// namespace, and use_backend, http-request and redirect rules conditioned on the app's own
// host.
func (c *confiner) sharedLine(args []string) error {
	switch args[0] {
	case "acl":
		return c.sharedACL(args)
	case "use_backend":
		if len(args) < 2 || !c.ownBackend(args[1]) {
			return fmt.Errorf("use_backend may only name the app's own backend (%s)", c.scope.Backend)
		}
		return c.ownCondition(args[2:])
	case "http-request":
		if err := c.httpRule(args); err != nil {
			return err
		}
		return c.ownCondition(args)
	case "redirect":
		if err := checkRefusedArgs(args, "redirect"); err != nil {
			return err
		}
		return c.ownCondition(args)
	}
	if why, ok := refusedDirectives[args[0]]; ok {
		return fmt.Errorf("%q refused: %s", args[0], why)
	}
	return fmt.Errorf("%q refused: a shared frontend takes only the app's acl, use_backend, http-request and redirect lines", args[0])
}

// sharedACL checks "acl <name> <definition>" in a shared frontend, where every app's ACLs
// meet: the name is the app's own (a selector, or ending in "_<backend>"), and a selector's
// definition matches only the app's own hosts.
func (c *confiner) sharedACL(args []string) error {
	if len(args) < 3 {
		return errors.New("want acl <name> <fetch> [flags] [values]")
	}
	name := args[1]
	selector := slices.Contains(c.scope.SelectorACLs, name)
	if !selector && !strings.HasSuffix(name, "_"+c.scope.Backend) {
		return fmt.Errorf("acl %s: in a shared frontend an app's ACL names end in _%s (or are its host_/app_ selectors): another app's ACL of the same name would be changed", quoteTrunc(name), c.scope.Backend)
	}
	if err := c.checkACLDef(args[2:]); err != nil {
		return err
	}
	if selector && !c.isSelector(args[2:]) {
		return fmt.Errorf("acl %s stands for the app's own hosts: its definition must compare the Host header or SNI with them only (%s)", name, strings.Join(c.scope.Hosts, " "))
	}
	return nil
}

// ownCondition requires "if <condition>" in args where every alternative (|| or "or") has a
// positive term that matches only the app's own hosts: a selector ACL (AppScope.SelectorACLs,
// whose every confined declaration is checked to match only them) or an anonymous ACL
// comparing the Host header or SNI with them. An ACL the snippet names otherwise does not
// count, even when this line's declaration is a selector: another snippet of the app may add
// a definition to the same name, and HAProxy ORs them. A path alone is not enough: it matches
// on every host.
func (c *confiner) ownCondition(args []string) error {
	i := slices.IndexFunc(args, func(a string) bool { return a == "if" || a == "unless" })
	if i < 0 || args[i] == "unless" || i == len(args)-1 {
		return errors.New("a rule in a shared frontend needs \"if <condition>\" on the app's own host (host_… ACL or { hdr(host) -i <vhost> })")
	}
	cond := args[i+1:]
	own, neg := false, false
	for k := 0; k <= len(cond); k++ {
		if k == len(cond) || cond[k] == "||" || cond[k] == "or" {
			if !own {
				return errors.New("every alternative of the condition must include the app's own host (a host_… selector ACL or { hdr(host) -i <vhost> }), not negated")
			}
			own, neg = false, false
			continue
		}
		// HAProxy strips any number of leading '!', each negating, and a lone "!" negates
		// the next word.
		t := cond[k]
		for strings.HasPrefix(t, "!") {
			t, neg = t[1:], !neg
		}
		switch {
		case t == "":
			continue
		case t == "{":
			j := slices.Index(cond[k+1:], "}")
			if j < 0 {
				return errors.New("anonymous ACL without '}'")
			}
			if !neg && c.isSelector(cond[k+1:k+1+j]) {
				own = true
			}
			k += j + 1
		case !neg && slices.Contains(c.scope.SelectorACLs, t):
			own = true
		}
		neg = false
	}
	return nil
}
