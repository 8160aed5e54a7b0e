package haproxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Ownership: labels are written by many teams, so a contested resource — a service port (with
// its bind address), a backend name, a vhost+path route on the shared frontends, an acl name
// there, a map key — stays with one app by one rule, never by whoever sorts first or asks
// for the higher weight:
//
//  1. the app that holds it in the running model (the previous Model given to Build) keeps
//     it, so redeploying an app with an older configuration cannot take over a resource;
//  2. otherwise (a cold start, or a resource nobody holds) the app whose Marathon
//     versionInfo.lastConfigChangeAt is oldest wins; an unknown time (zero) counts as the
//     youngest;
//  3. then the app id.
//
// A contender loses only the contested route and is named, with the owner, in
// Model.Excluded (a port) or Model.Warnings (a route, an acl, a map key). The apps of one
// HAPROXY_DEPLOYMENT_GROUP are one unit ("/<group>") and share everything as before.

// claim is one resource held by one owner (an app id, or "/<group>").
type claim struct {
	resource string
	owner    string
}

// owners decides contested resources for one build and records what the build gives out.
type owners struct {
	// held are the claims of the running model, nil on a cold start.
	held map[claim]struct{}
	// next are this build's claims: Model.claims, the next build's held.
	next map[claim]struct{}
	// age is each unit's oldest known configuration change (zero when unknown).
	age map[string]time.Time
}

func newOwners(prev *Model) *owners {
	o := &owners{next: map[claim]struct{}{}, age: map[string]time.Time{}}
	if prev != nil {
		o.held = prev.claims
	}
	return o
}

// setAge records a unit's age: the oldest known ConfigChangedAt of its apps.
func (o *owners) setAge(u *unit) {
	var oldest time.Time
	for _, a := range u.members {
		if t := a.ConfigChangedAt; !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	o.age[u.key] = oldest
}

func (o *owners) holds(resource, owner string) bool {
	_, ok := o.held[claim{resource, owner}]
	return ok
}

// give records that owner holds resource in this build.
func (o *owners) give(resource, owner string) {
	o.next[claim{resource, owner}] = struct{}{}
}

// compare orders two contenders for resource: the one that comes first keeps it.
func (o *owners) compare(resource, x, y string) int {
	return o.compareHeld(o.holds(resource, x), o.holds(resource, y), x, y)
}

// compareHeld is compare once the running model's answer is known (hx, hy).
func (o *owners) compareHeld(hx, hy bool, x, y string) int {
	if hx != hy {
		if hx {
			return -1
		}
		return 1
	}
	ax, ay := o.age[x], o.age[y]
	if ax.IsZero() != ay.IsZero() {
		// An unknown time is the youngest.
		if ax.IsZero() {
			return 1
		}
		return -1
	}
	if c := ax.Compare(ay); c != 0 {
		return c
	}
	return strings.Compare(x, y)
}

// why says why owner keeps resource against loser, for the loser's message.
func (o *owners) why(resource, owner, loser string) string {
	if o.holds(resource, owner) && !o.holds(resource, loser) {
		return "it holds it in the running configuration"
	}
	ao, al := o.age[owner], o.age[loser]
	if !ao.IsZero() && (al.IsZero() || ao.Before(al)) {
		return "its configuration is older (last changed " + ao.UTC().Format(time.RFC3339) + ")"
	}
	return "neither is older: the first app id keeps it"
}

// taken is the message of a contender that lost resource (described by what) to owner.
func (o *owners) taken(what, resource, owner, loser string) string {
	return fmt.Sprintf("%s is taken by %s (%s)", what, owner, o.why(resource, owner, loser))
}

func portResource(port int) string { return "port " + strconv.Itoa(port) }

// bindAll claims the frontend ports of svcs in ownership order (see owners) and returns the
// services that got theirs, in the order of svcs.
func (b *builder) bindAll(svcs []*svc) []*svc {
	order := make([]int, len(svcs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		x, y := svcs[i], svcs[j]
		if x.port != y.port {
			return x.port - y.port
		}
		if x.u == y.u {
			return x.idx - y.idx
		}
		return b.own.compare(portResource(x.port), x.u.key, y.u.key)
	})
	keep := make([]bool, len(svcs))
	for _, i := range order {
		keep[i] = b.bind(svcs[i])
	}
	kept := make([]*svc, 0, len(svcs))
	for i, s := range svcs {
		if keep[i] {
			kept = append(kept, s)
		}
	}
	return kept
}

// routeResource is the resource of one vhost (lower-cased) with one path prefix ("" for the
// whole host).
func routeResource(host, path string) string {
	if path == "" {
		return "vhost " + host
	}
	return "vhost " + host + " path " + path
}

// routeDesc is routeResource for a message.
func routeDesc(host, path string) string {
	if path == "" {
		return "vhost " + host
	}
	return "vhost " + host + " with path " + path
}

// routeClaim is one host route a service port asks for on the shared frontends.
type routeClaim struct {
	host  string
	paths []string
	// rule says the host comes from a bamboo-style routing rule rather than a VHOST label.
	rule bool
}

// routeClaims returns the host routes a port would add to the shared HTTP/HTTPS frontends:
// each vhost with each of its path prefixes, or, for a port routed by a bamboo-style rule,
// the hosts the rule names when it is a plain `hdr(host)` match (see ruleHosts).
func (b *builder) routeClaims(s *svc) []routeClaim {
	if b.cfg.DontBindHTTPHTTPS {
		return nil
	}
	pl := s.pl
	rule := ""
	if s.idx == 0 {
		rule = s.u.rule
	}
	if pl.Mode == ModeTCP || rule == "" && len(pl.VHosts) == 0 {
		return nil
	}
	if rule != "" {
		var out []routeClaim
		for _, h := range ruleHosts(rule) {
			out = append(out, routeClaim{host: h, paths: []string{""}, rule: true})
		}
		return out
	}
	paths := strings.Fields(pl.Path)
	if len(paths) == 0 {
		paths = []string{""}
	}
	out := make([]routeClaim, 0, len(pl.VHosts))
	for _, h := range pl.VHosts {
		out = append(out, routeClaim{host: h, paths: paths})
	}
	return out
}

// ruleHosts returns the host names a bamboo-style rule matches exactly: `hdr(host) [-i] h…`
// (lower-cased). Any other rule (a path match, a suffix or regex match, several criteria)
// names no host ownership can attribute; it claims nothing and takes nothing from a vhost
// owner's identical route (rules are written through lodestar's API, not by app labels).
func ruleHosts(rule string) []string {
	f := strings.Fields(rule)
	if len(f) < 2 || !strings.EqualFold(f[0], "hdr(host)") && !strings.EqualFold(f[0], "req.hdr(host)") {
		return nil
	}
	vals := f[1:]
	if vals[0] == "-i" {
		vals = vals[1:]
	}
	hosts := make([]string, 0, len(vals))
	for _, v := range vals {
		if strings.HasPrefix(v, "-") || strings.ContainsAny(v, "(){}\"'\\") || !validHostname(strings.ToLower(v)) {
			return nil
		}
		hosts = append(hosts, strings.ToLower(v))
	}
	return hosts
}

// ownRoutes gives every contested vhost+path to its owner. A port that loses a vhost keeps
// its other vhosts (its labels are copied without the lost ones); a port routed by a rule
// that loses a host loses the rule's route. The port's own frontend and backend stay.
func (b *builder) ownRoutes(svcs []*svc) {
	type contender struct {
		s          *svc
		host, path string
		rule       bool
	}
	contested := map[string][]contender{}
	var resources []string
	for _, s := range svcs {
		for _, c := range b.routeClaims(s) {
			for _, p := range c.paths {
				r := routeResource(c.host, p)
				if _, ok := contested[r]; !ok {
					resources = append(resources, r)
				}
				contested[r] = append(contested[r], contender{s, c.host, p, c.rule})
				s.routes = append(s.routes, r)
			}
		}
	}
	for _, r := range resources {
		cs := contested[r]
		owner := cs[0].s.u.key
		for _, c := range cs[1:] {
			if c.s.u.key != owner && b.own.compare(r, c.s.u.key, owner) < 0 {
				owner = c.s.u.key
			}
		}
		for _, c := range cs {
			if c.s.u.key == owner {
				continue
			}
			msg := b.own.taken(routeDesc(c.host, c.path), r, owner, c.s.u.key) + "; not routed to this app"
			if c.rule {
				msg = "routing rule: " + msg
			}
			c.s.lose(c.host, c.rule, msg)
		}
	}
	for _, s := range svcs {
		s.applyLosses(b)
	}
}

// lose records that the port loses its route for host (or its rule) and why.
func (s *svc) lose(host string, rule bool, msg string) {
	if rule {
		host = "rule:" + host
	}
	if !slices.Contains(s.lost, host) {
		s.lost = append(s.lost, host)
		s.lostWhy = append(s.lostWhy, msg)
	}
}

// applyLosses warns of the port's lost routes and renders it without them: its labels are
// copied without the lost vhosts (and without the rule when it lost one), its mode stays
// what its routes made it, and its remaining route claims are what it will hold.
func (s *svc) applyLosses(b *builder) {
	if len(s.lost) == 0 {
		return
	}
	for _, w := range s.lostWhy {
		b.warn(s.u.key, s.idx, w)
	}
	pl := *s.pl
	lostRule := slices.ContainsFunc(s.lost, func(h string) bool { return strings.HasPrefix(h, "rule:") })
	if lostRule {
		// The rule only ever routes the unit's first port, which this is.
		s.u.rule = ""
		pl.VHosts = nil
	} else {
		pl.VHosts = slices.DeleteFunc(slices.Clone(pl.VHosts), func(h string) bool { return slices.Contains(s.lost, h) })
	}
	if pl.Mode == "" {
		// The port was in http mode for its routes; losing them does not change its backend.
		pl.Mode = ModeHTTP
	}
	if len(pl.VHosts) == 0 {
		// Nothing is left to route: the path and redirect labels have nothing to apply to.
		pl.Path, pl.RedirectToHTTPS = "", false
	}
	s.pl = &pl
	kept := s.routes[:0]
	for _, r := range s.routes {
		h := strings.TrimPrefix(r, "vhost ")
		if i := strings.Index(h, " path "); i >= 0 {
			h = h[:i]
		}
		if !lostRule && !slices.Contains(s.lost, h) {
			kept = append(kept, r)
		}
	}
	s.routes = kept
}

// routeOrder returns the order in which ownership considers routes for the acl names of one
// shared frontend: the routes whose owners held one of the route's acl names in the running
// model first, then by age and app id (see owners).
func (b *builder) routeOrder(routes []route, fe string) []int {
	held := make([]bool, len(routes))
	for i, r := range routes {
		for _, l := range r.lines {
			if name, _, ok := aclLine(l); ok && b.own.holds(aclResource(fe, name), r.owner) {
				held[i] = true
				break
			}
		}
	}
	order := make([]int, len(routes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		if routes[i].owner == routes[j].owner {
			return i - j
		}
		return b.own.compareHeld(held[i], held[j], routes[i].owner, routes[j].owner)
	})
	return order
}

func aclResource(fe, name string) string { return "acl " + fe + " " + name }
