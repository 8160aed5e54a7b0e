package haproxy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/lodestar-lb/lodestar/templates"
)

// finish sorts the model and assembles the shared frontends and maps.
func (b *builder) finish() {
	m := b.m
	slices.SortFunc(m.Frontends, func(x, y *Frontend) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(m.Backends, func(x, y *Backend) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(m.Userlists, func(x, y *Userlist) int { return strings.Compare(x.Name, y.Name) })
	slices.SortStableFunc(m.Excluded, func(x, y Exclusion) int {
		if c := strings.Compare(x.AppID, y.AppID); c != 0 {
			return c
		}
		return x.Port - y.Port
	})
	slices.SortStableFunc(m.Warnings, func(x, y Warning) int {
		if c := strings.Compare(x.AppID, y.AppID); c != 0 {
			return c
		}
		return x.Port - y.Port
	})

	m.DomainMap = b.mapEntries(b.domainMap, "vhost")
	m.AppMap = b.mapEntries(b.appMap, "app id")
	b.httpRoutes = b.dropACLClashes(b.httpRoutes, m.HTTP)
	b.httpsRoutes = b.dropACLClashes(b.httpsRoutes, m.HTTPS)
	b.appIDRoutes = b.dropACLClashes(b.appIDRoutes, m.AppID)
	if m.HTTP != nil {
		var names []string
		if b.useMapHTTP {
			names = append(names, templates.MapHTTPFrontendACL)
		}
		if b.useMapHTTPOnly {
			names = append(names, templates.MapHTTPFrontendACLOnly)
		}
		m.HTTP.Rules = assemble(b.httpRoutes, b.mapRules(names...))
		names = nil
		if b.useMapHTTPS {
			names = append(names, templates.MapHTTPSFrontendACL)
		}
		m.HTTPS.Rules = assemble(b.httpsRoutes, b.mapRules(names...))
	}
	if m.AppID != nil {
		var names []string
		if b.useMapAppID {
			names = append(names, templates.MapHTTPFrontendAppIDACL)
		}
		m.AppID.Rules = assemble(b.appIDRoutes, b.mapRules(names...))
	}
	if b.prev != nil {
		m.HTTP = shareFrontend(m.HTTP, b.prev.HTTP)
		m.HTTPS = shareFrontend(m.HTTPS, b.prev.HTTPS)
		m.AppID = shareFrontend(m.AppID, b.prev.AppID)
	}
}

// mapRules renders the named map templates into the shared lines that route through the
// map files, each line once. A template that fails fails the model.
func (b *builder) mapRules(names ...string) []Rule {
	var v templates.Values
	v.Set(templates.FieldHAProxyDir, b.cfg.RunDir)
	var rules []Rule
	for _, n := range names {
		text, err := b.global(n, &v)
		if err != nil {
			b.m.Err = err
			return nil
		}
		for _, l := range strings.Split(text, "\n") {
			if strings.TrimSpace(l) != "" && !slices.ContainsFunc(rules, func(r Rule) bool { return r.Text == l }) {
				rules = append(rules, Rule{Text: l})
			}
		}
	}
	return rules
}

// dropACLClashes leaves out the routes that declare an acl another app declared with a
// different definition on the same frontend: HAProxy ORs every acl line of one name, so the
// two apps would share each other's traffic. Names are made from cleaned-up app ids and host
// names ("/a/b" and "/a.b" both clean up to "_a_b"), or written by custom templates. The
// owner of the name keeps its route (see owners: the app whose route declared it in the
// running model, then the oldest, then the first app id); the others are named with the owner.
func (b *builder) dropACLClashes(routes []route, fe *SharedFrontend) []route {
	if fe == nil || len(routes) < 2 {
		return routes
	}
	// The common case has no clash: find that out in frontend order, and order the routes by
	// ownership only when there is one.
	if len(b.aclClashes(routes, nil, fe.Name)) == 0 {
		return routes
	}
	order := make([]int, len(routes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		x, y := routes[i], routes[j]
		if x.owner == y.owner {
			return i - j
		}
		// A route comes first when its owner held one of the route's acl names.
		return b.own.compare(resource{held: func(owner string) bool {
			r := x
			if owner == y.owner {
				r = y
			}
			for _, l := range r.lines {
				if name, _, ok := aclLine(l); ok && b.own.aclResource(fe.Name, name).held(owner) {
					return true
				}
			}
			return false
		}}, x.owner, y.owner)
	})
	dropped := b.aclClashes(routes, order, fe.Name)
	out := routes[:0]
	for i, r := range routes {
		if _, ok := dropped[i]; ok {
			b.warn(r.owner, -1, dropped[i])
			continue
		}
		out = append(out, r)
	}
	return out
}

// aclClashes declares the acl lines of routes in order (nil: as they are) and returns the
// routes that declare a name an earlier route of another app declared differently, each with
// its message.
func (b *builder) aclClashes(routes []route, order []int, fe string) map[int]string {
	type decl struct {
		owner string
		defs  []string
	}
	seen := map[string]*decl{}
	var dropped map[int]string
	for k := range routes {
		i := k
		if order != nil {
			i = order[k]
		}
		r := routes[i]
		clash := ""
		for _, l := range r.lines {
			name, def, ok := aclLine(l)
			if !ok {
				continue
			}
			if d := seen[name]; d != nil && d.owner != r.owner && !slices.Contains(d.defs, def) {
				clash = fmt.Sprintf("routes on frontend %s left out: %s (%q); rename the app or its %s",
					fe, b.own.taken(b.own.aclResource(fe, name), d.owner, r.owner), d.defs[0], "host, or change the template that names the acl")
				break
			}
		}
		if clash != "" {
			if dropped == nil {
				dropped = map[int]string{}
			}
			dropped[i] = clash
			continue
		}
		for _, l := range r.lines {
			if name, def, ok := aclLine(l); ok {
				d := seen[name]
				if d == nil {
					d = &decl{owner: r.owner}
					seen[name] = d
				}
				if d.owner == r.owner && !slices.Contains(d.defs, def) {
					d.defs = append(d.defs, def)
				}
			}
		}
	}
	return dropped
}

// aclLine splits "acl <name> <criterion...>" into the name and the rest.
func aclLine(l string) (name, def string, ok bool) {
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != "acl" {
		return "", "", false
	}
	return f[1], strings.Join(f[2:], " "), true
}

// mapEntries sorts entries by key and keeps one backend of a key that several claim: the
// owner's (see owners; a higher backend weight does not take a key), then the highest
// weight among one owner's ports, then the first port. Contested vhosts are settled before
// rendering (ownRoutes), so what is left to settle here is one app's ports, and app ids
// that differ only in case (Marathon allows none).
func (b *builder) mapEntries(entries []ownedEntry, what string) []MapEntry {
	if len(entries) == 0 {
		return nil
	}
	slices.SortStableFunc(entries, func(x, y ownedEntry) int {
		if c := strings.Compare(x.Key, y.Key); c != 0 {
			return c
		}
		if x.owner != y.owner {
			return b.own.compare(b.mapResource(what, x.Key), x.owner, y.owner)
		}
		return y.weight - x.weight
	})
	out := make([]MapEntry, 0, len(entries))
	owner := ""
	for i, e := range entries {
		if i == 0 || entries[i-1].Key != e.Key {
			owner = e.owner
			out = append(out, e.MapEntry)
			continue
		}
		if first := out[len(out)-1]; first.Value != e.Value {
			msg := fmt.Sprintf("%s %s is routed to %s already; not routed to %s", what, e.Key, first.Value, e.Value)
			if owner != e.owner {
				msg = b.own.taken(b.mapResource(what, e.Key), owner, e.owner) + "; not routed to " + e.Value
			}
			b.warn(e.owner, -1, msg)
		}
	}
	return out
}

// mapResource is a map key as a contested resource: a vhost is held with its route.
func (b *builder) mapResource(what, key string) resource {
	if what == "vhost" {
		return b.own.routeResource(routeKey{host: key}, what+" "+key)
	}
	return resource{what + " " + key, func(string) bool { return false }}
}

// assemble orders a shared frontend's lines: routes by weight (highest first, then app order),
// and within that every acl line first, then http-request and redirect rules, then
// use_backend and the rest. HAProxy evaluates rules by kind anyway; grouping them keeps its
// "rule placed after a use_backend rule" warnings away.
func assemble(routes []route, mapRules []Rule) []Rule {
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].weight > routes[j].weight })
	bucket := func(l string) int {
		switch firstWord(l) {
		case "acl":
			return 0
		case "use_backend", "default_backend":
			return 2
		}
		return 1
	}
	var start [4]int
	for _, r := range routes {
		for _, l := range r.lines {
			start[bucket(l)+1]++
		}
	}
	n := start[1] + start[2] + start[3] + len(mapRules)
	if n == 0 {
		return nil
	}
	start[2] += start[1]
	start[3] += start[2]
	out := make([]Rule, n)
	for _, r := range routes {
		for _, l := range r.lines {
			k := bucket(l)
			out[start[k]] = Rule{Owner: r.owner, Text: l}
			start[k]++
		}
	}
	copy(out[start[2]:], mapRules)
	return out
}

func firstWord(l string) string {
	i := 0
	for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
		i++
	}
	j := i
	for j < len(l) && l[j] != ' ' && l[j] != '\t' {
		j++
	}
	return l[i:j]
}
