package haproxy

import (
	"fmt"
	"strings"

	"github.com/lodestar-lb/lodestar/templates"
)

// routes adds the port's lines to the shared frontends and its map entries, choosing
// marathon-lb's templates for single and multiple vhosts, paths, auth and redirects.
func (b *builder) routes(r *renderer) error {
	s, pl, o := r.s, r.s.pl, r.o
	if r.http && !b.cfg.NoAppIDFrontend {
		if err := b.appIDRoute(r); err != nil {
			return err
		}
	}
	if b.cfg.DontBindHTTPHTTPS {
		return nil
	}
	if len(pl.VHosts) == 0 && r.rule == "" {
		for _, l := range []struct {
			set    bool
			suffix string
		}{{pl.Path != "", SuffixPath}, {pl.RedirectToHTTPS, SuffixRedirectToHTTPS}} {
			if l.set {
				o.warnings = append(o.warnings, fmt.Sprintf("label %s needs %s, ignored", PortLabel(s.idx, l.suffix), PortLabel(s.idx, SuffixVHost)))
			}
		}
		return nil
	}
	if !r.http {
		o.warnings = append(o.warnings, fmt.Sprintf("%s is in tcp mode: not routed on the shared HTTP and HTTPS frontends",
			PortLabel(s.idx, SuffixVHost)))
		return nil
	}
	o.weight = pl.BackendWeight
	if o.weight == 0 && pl.Path != "" {
		o.weight = 1
	}
	if r.rule != "" {
		// A bamboo-style rule replaces the vhost ACLs, in bamboo's form.
		lines := []string{"  acl rule_" + s.name + " " + r.rule, "  use_backend " + s.name + " if rule_" + s.name}
		o.http, o.https = lines, lines
		return nil
	}
	return b.vhostRoutes(r)
}

// appIDRoute routes the app's first HTTP port by X-Marathon-App-Id, as in marathon-lb: only
// that port is reachable by app id.
func (b *builder) appIDRoute(r *renderer) error {
	s, o := r.s, r.o
	if b.appIDDone == nil {
		b.appIDDone = map[string]bool{}
	}
	if b.appIDDone[s.u.key] {
		return nil
	}
	b.appIDDone[s.u.key] = true
	if b.cfg.HAProxyMap {
		o.mapAppID = true
		o.app = &MapEntry{Key: strings.ToLower(s.u.key), Value: s.name}
		return nil
	}
	if err := r.exec(templates.HTTPFrontendAppIDACL); err != nil {
		return err
	}
	o.appID = r.lines()
	return nil
}

// routeFlag is one of the labels (or the map mode) that choose a vhost route's templates.
type routeFlag uint8

const (
	withPath routeFlag = 1 << iota
	withAuth
	withRedirect
	withMap
)

// routeChoice is one row of a template choice table: the first row whose flags are all set
// wins. Its templates are executed in order; a mapped row puts the vhost in the domain map
// instead (the map's own rule routes it).
type routeChoice struct {
	when      routeFlag
	templates []string
	mapped    bool
}

// marathon-lb's template choices for vhost routes, row by row. A port with one vhost:
var (
	oneVHostHTTP = []routeChoice{
		{withPath | withRedirect, []string{templates.HTTPFrontendACLOnly, templates.HTTPFrontendACLOnlyWithPath, templates.BackendRedirectHTTPToHTTPSWithPath}, false},
		{withPath | withAuth, []string{templates.HTTPFrontendACLWithAuthAndPath}, false},
		{withPath, []string{templates.HTTPFrontendACLWithPath}, false},
		{withRedirect, []string{templates.HTTPFrontendACLOnly, templates.BackendRedirectHTTPToHTTPS}, false},
		{withAuth, []string{templates.HTTPFrontendACLWithAuth}, false},
		{withMap, nil, true},
		{0, []string{templates.HTTPFrontendACL}, false},
	}
	oneVHostHTTPS = []routeChoice{
		{withPath | withAuth, []string{templates.HTTPSFrontendACLOnlyWithPath, templates.HTTPSFrontendACLWithAuthAndPath}, false},
		{withPath, []string{templates.HTTPSFrontendACLOnlyWithPath, templates.HTTPSFrontendACLWithPath}, false},
		{withAuth, []string{templates.HTTPSFrontendACLWithAuth}, false},
		{withMap, nil, true},
		{0, []string{templates.HTTPSFrontendACL}, false},
	}
)

// A port with several vhosts: the path ACLs first, then each vhost, then the HTTP routing
// (with the first vhost's name).
var (
	severalVHostsHTTPHead = []routeChoice{
		{withPath | withAuth, []string{templates.HTTPFrontendACLOnlyWithPathAndAuth}, false},
		{withPath, []string{templates.HTTPFrontendACLOnlyWithPath}, false},
	}
	severalVHostsHTTPSHead = []routeChoice{
		{withPath, []string{templates.HTTPSFrontendACLOnlyWithPath}, false},
	}
	eachVHostHTTP = []routeChoice{
		{withPath, []string{templates.HTTPFrontendACLOnly}, false},
		{withAuth, []string{templates.HTTPFrontendACLOnly}, false},
		{withRedirect, []string{templates.HTTPFrontendACLOnly}, false},
		{withMap, nil, true},
		{0, []string{templates.HTTPFrontendACLOnly}, false},
	}
	eachVHostHTTPS = []routeChoice{
		{withPath | withAuth, []string{templates.HTTPSFrontendACLWithAuthAndPath}, false},
		{withPath, []string{templates.HTTPSFrontendACLWithPath}, false},
		{withAuth, []string{templates.HTTPSFrontendACLWithAuth}, false},
		{withMap, nil, true},
		{0, []string{templates.HTTPSFrontendACL}, false},
	}
	severalVHostsHTTPTail = []routeChoice{
		{withRedirect | withPath, []string{templates.BackendRedirectHTTPToHTTPSWithPath}, false},
		{withRedirect, []string{templates.BackendRedirectHTTPToHTTPS}, false},
		{withPath | withAuth, []string{templates.HTTPFrontendRoutingOnlyWithPathAuth}, false},
		{withPath, []string{templates.HTTPFrontendRoutingOnlyWithPath}, false},
		{withAuth, []string{templates.HTTPFrontendRoutingOnlyWithAuth}, false},
		{withMap, nil, false},
		{0, []string{templates.HTTPFrontendRoutingOnly}, false},
	}
)

// choose returns the first row of table whose flags are all in f, nil when none is.
func choose(table []routeChoice, f routeFlag) *routeChoice {
	for i := range table {
		if f&table[i].when == table[i].when {
			return &table[i]
		}
	}
	return nil
}

// vhostRouter builds one port's vhost routes in two buffers, HTTP and HTTPS. (It does not
// hold the renderer: escape analysis would then move every port's renderer to the heap.)
type vhostRouter struct {
	flags       routeFlag
	http, https []byte
}

// vhostRoutes adds the routes of a port with vhosts to the shared HTTP and HTTPS frontends.
func (b *builder) vhostRoutes(r *renderer) error {
	pl := r.s.pl
	vr := &vhostRouter{http: b.scratchHTTP[:0], https: b.scratchHTTPS[:0]}
	defer func() { b.scratchHTTP, b.scratchHTTPS = vr.http[:0], vr.https[:0] }()
	for _, f := range []struct {
		set  bool
		flag routeFlag
	}{{pl.Path != "", withPath}, {pl.Auth != nil, withAuth}, {pl.RedirectToHTTPS, withRedirect}, {b.cfg.HAProxyMap, withMap}} {
		if f.set {
			vr.flags |= f.flag
		}
	}
	o := r.o
	if len(pl.VHosts) == 1 {
		h := pl.VHosts[0]
		if err := vr.pick(r, oneVHostHTTP, &vr.http, &o.mapHTTP, h); err != nil {
			return err
		}
		if err := vr.pick(r, oneVHostHTTPS, &vr.https, &o.mapHTTPS, h); err != nil {
			return err
		}
	} else {
		if err := vr.pick(r, severalVHostsHTTPHead, &vr.http, nil, ""); err != nil {
			return err
		}
		if err := vr.pick(r, severalVHostsHTTPSHead, &vr.https, nil, ""); err != nil {
			return err
		}
		for _, h := range pl.VHosts {
			r.v.Set(templates.FieldHostname, h)
			if err := vr.pick(r, eachVHostHTTP, &vr.http, &o.mapHTTPOnly, h); err != nil {
				return err
			}
			if err := vr.pick(r, eachVHostHTTPS, &vr.https, &o.mapHTTPS, h); err != nil {
				return err
			}
		}
		r.v.Set(templates.FieldHostname, pl.VHosts[0])
		if err := vr.pick(r, severalVHostsHTTPTail, &vr.http, nil, ""); err != nil {
			return err
		}
	}
	scratch := r.buf
	r.buf = vr.http
	o.http = r.lines()
	r.buf = vr.https
	o.https = r.lines()
	r.buf = scratch
	return nil
}

// pick applies the row of table that the port's flags choose: its templates are appended to
// dst, or, for a mapped row, host goes to the domain map and *useMap is set.
func (vr *vhostRouter) pick(r *renderer, table []routeChoice, dst *[]byte, useMap *bool, host string) error {
	c := choose(table, vr.flags)
	switch {
	case c == nil:
		return nil
	case c.mapped:
		*useMap = true
		domain(r, host)
		return nil
	}
	// exec appends to r.buf: lend it dst.
	r.buf, *dst = *dst, r.buf
	defer func() { r.buf, *dst = *dst, r.buf }()
	for _, n := range c.templates {
		if err := r.exec(n); err != nil {
			return err
		}
	}
	return nil
}

// domain adds host to the port's domain map entries, once.
func domain(r *renderer, host string) {
	o := r.o
	for _, e := range o.domain {
		if e.Key == host {
			return
		}
	}
	o.domain = append(o.domain, MapEntry{Key: host, Value: r.s.name})
}
