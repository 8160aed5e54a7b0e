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

// owners decides contested resources for one build. It reads the running model only when
// two apps contest something, so a build without contests pays for ownership only with the
// route index (routes), which the next build reads as the running model's route owners.
type owners struct {
	prev *Model
	// units are this build's units sorted by key, for their ages.
	units []*unit
	// routes are this build's route owners (Model.routeOwners).
	routes map[routeKey]string
	// heldPorts and heldACLs index the running model (its frontends, its shared frontends'
	// acl lines), built on the first contest.
	heldPorts map[int][]string
	heldACLs  map[string][]string
}

// routeKey is one vhost (lower-cased) with one path prefix ("" for the whole host).
type routeKey struct{ host, path string }

// resource is one contested thing: what it is called in messages, and whether an owner
// holds it in the running model.
type resource struct {
	what string
	held func(owner string) bool
}

func newOwners(prev *Model) *owners { return &owners{prev: prev} }

func (o *owners) portResource(port int) resource {
	return resource{"port " + strconv.Itoa(port), func(owner string) bool {
		if o.prev == nil {
			return false
		}
		if o.heldPorts == nil {
			o.heldPorts = map[int][]string{}
			for _, f := range o.prev.Frontends {
				o.heldPorts[f.Port] = append(o.heldPorts[f.Port], f.Owner)
			}
		}
		return slices.Contains(o.heldPorts[port], owner)
	}}
}

func (o *owners) routeResource(k routeKey, what string) resource {
	return resource{what, func(owner string) bool { return o.prev != nil && o.prev.routeOwners[k] == owner }}
}

func (o *owners) aclResource(fe, name string) resource {
	return resource{"acl " + name, func(owner string) bool {
		if o.prev == nil {
			return false
		}
		if o.heldACLs == nil {
			o.heldACLs = map[string][]string{}
			for _, f := range []*SharedFrontend{o.prev.HTTP, o.prev.HTTPS, o.prev.AppID} {
				if f == nil {
					continue
				}
				for _, r := range f.Rules {
					if n, _, ok := aclLine(r.Text); ok && r.Owner != "" {
						o.heldACLs[f.Name+" "+n] = append(o.heldACLs[f.Name+" "+n], r.Owner)
					}
				}
			}
		}
		return slices.Contains(o.heldACLs[fe+" "+name], owner)
	}}
}

// age is a unit's oldest known Marathon configuration change, zero when unknown.
func (o *owners) age(key string) time.Time {
	i, ok := slices.BinarySearchFunc(o.units, key, func(u *unit, k string) int { return strings.Compare(u.key, k) })
	if !ok {
		return time.Time{}
	}
	var oldest time.Time
	for _, a := range o.units[i].members {
		if t := a.ConfigChangedAt; !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	return oldest
}

// compare orders two contenders for r: the one that comes first keeps it.
func (o *owners) compare(r resource, x, y string) int {
	if x == y {
		return 0
	}
	if hx, hy := r.held(x), r.held(y); hx != hy {
		if hx {
			return -1
		}
		return 1
	}
	ax, ay := o.age(x), o.age(y)
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

// taken is the message of loser, which contested r with owner and lost.
func (o *owners) taken(r resource, owner, loser string) string {
	why := "neither is older: the first app id keeps it"
	ao, al := o.age(owner), o.age(loser)
	switch {
	case r.held(owner) && !r.held(loser):
		why = "it holds it in the running configuration"
	case !ao.IsZero() && (al.IsZero() || ao.Before(al)):
		why = "its configuration is older (last changed " + ao.UTC().Format(time.RFC3339) + ")"
	}
	return fmt.Sprintf("%s is taken by %s (%s)", r.what, owner, why)
}

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
		return b.own.compare(b.own.portResource(x.port), x.u.key, y.u.key)
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

// routeDesc names a route in messages.
func routeDesc(k routeKey) string {
	if k.path == "" {
		return "vhost " + k.host
	}
	return "vhost " + k.host + " with path " + k.path
}

// eachRoute calls fn with every host route a port adds to the shared HTTP/HTTPS frontends:
// each vhost with each of its path prefixes, or, for a port routed by a bamboo-style rule,
// the hosts the rule names when it is a plain `hdr(host)` match (see ruleHosts).
func (b *builder) eachRoute(s *svc, fn func(k routeKey, rule bool)) {
	if b.cfg.DontBindHTTPHTTPS {
		return
	}
	pl := s.pl
	rule := ""
	if s.idx == 0 {
		rule = s.u.rule
	}
	if pl.Mode == ModeTCP || rule == "" && len(pl.VHosts) == 0 {
		return
	}
	if rule != "" {
		for _, h := range ruleHosts(rule) {
			fn(routeKey{host: h}, true)
		}
		return
	}
	for _, h := range pl.VHosts {
		if pl.Path == "" {
			fn(routeKey{host: h}, false)
			continue
		}
		for p := range strings.FieldsSeq(pl.Path) {
			fn(routeKey{host: h, path: p}, false)
		}
	}
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
		v = strings.ToLower(v)
		if strings.HasPrefix(v, "-") || !validHostname(v) {
			return nil
		}
		hosts = append(hosts, v)
	}
	return hosts
}

// ownRoutes gives every contested vhost+path to its owner. A port that loses a vhost keeps
// its other vhosts (its labels are copied without the lost ones); a port routed by a rule
// that loses a host loses the rule's route. The port's own frontend and backend stay.
func (b *builder) ownRoutes(svcs []*svc) {
	type contender struct {
		s    *svc
		rule bool
	}
	first := make(map[routeKey]contender, len(svcs))
	// contested holds every contender of a route two units ask for, in svcs order.
	var contested map[routeKey][]contender
	var keys []routeKey
	for _, s := range svcs {
		b.eachRoute(s, func(k routeKey, rule bool) {
			c := contender{s, rule}
			f, ok := first[k]
			switch {
			case !ok:
				first[k] = c
			case contested[k] != nil:
				contested[k] = append(contested[k], c)
			case f.s.u != s.u:
				if contested == nil {
					contested = map[routeKey][]contender{}
				}
				contested[k] = []contender{f, c}
				keys = append(keys, k)
			}
		})
	}
	b.own.routes = make(map[routeKey]string, len(first))
	for k, c := range first {
		b.own.routes[k] = c.s.u.key
	}
	for _, k := range keys {
		cs := contested[k]
		r := b.own.routeResource(k, routeDesc(k))
		owner := cs[0].s.u.key
		for _, c := range cs[1:] {
			if b.own.compare(r, c.s.u.key, owner) < 0 {
				owner = c.s.u.key
			}
		}
		b.own.routes[k] = owner
		for _, c := range cs {
			if c.s.u.key == owner {
				continue
			}
			msg := b.own.taken(r, owner, c.s.u.key) + "; not routed to this app"
			if c.rule {
				msg = "routing rule: " + msg
			}
			c.s.lose(k.host, c.rule, msg)
		}
	}
	for _, s := range svcs {
		s.applyLosses(b)
	}
}

// dropRoutes forgets the routes of a port that was left out after all, unless another port
// of its app holds them too.
func (b *builder) dropRoutes(s *svc, group []*svc) {
	b.eachRoute(s, func(k routeKey, _ bool) {
		if b.own.routes[k] != s.u.key {
			return
		}
		for _, o := range group {
			if o == s {
				continue
			}
			held := false
			b.eachRoute(o, func(ok routeKey, _ bool) { held = held || ok == k })
			if held {
				return
			}
		}
		delete(b.own.routes, k)
	})
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
// copied without the lost vhosts (and the unit without its rule when the rule lost), and its
// mode stays what its routes made it.
func (s *svc) applyLosses(b *builder) {
	if len(s.lost) == 0 {
		return
	}
	for _, w := range s.lostWhy {
		b.warn(s.u.key, s.idx, w)
	}
	pl := *s.pl
	if slices.ContainsFunc(s.lost, func(h string) bool { return strings.HasPrefix(h, "rule:") }) {
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
}
