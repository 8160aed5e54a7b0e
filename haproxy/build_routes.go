package haproxy

import (
	"fmt"
	"strings"

	"github.com/lodestar-lb/lodestar/templates"
)

// routes adds the port's lines to the shared frontends and its map entries, choosing
// marathon-lb's templates for single and multiple vhosts, paths, auth and redirects.
func (b *builder) routes(r *renderer, o *out, http bool, rule string) error {
	s, pl := r.s, r.s.pl
	if http && !b.cfg.NoAppIDFrontend {
		if b.appIDDone == nil {
			b.appIDDone = map[string]bool{}
		}
		// Only the app's first HTTP port is reachable by app id, as in marathon-lb.
		if !b.appIDDone[s.u.key] {
			b.appIDDone[s.u.key] = true
			if b.cfg.HAProxyMap {
				o.mapAppID = true
				o.app = &MapEntry{Key: strings.ToLower(s.u.key), Value: s.name}
			} else {
				if err := r.exec(templates.HTTPFrontendAppIDACL); err != nil {
					return err
				}
				o.appID = r.lines()
			}
		}
	}
	if b.cfg.DontBindHTTPHTTPS || len(pl.VHosts) == 0 && rule == "" {
		for _, l := range []struct {
			set    bool
			suffix string
		}{{pl.Path != "", SuffixPath}, {pl.RedirectToHTTPS, SuffixRedirectToHTTPS}} {
			if l.set && !b.cfg.DontBindHTTPHTTPS {
				o.warnings = append(o.warnings, fmt.Sprintf("label %s needs %s, ignored", PortLabel(s.idx, l.suffix), PortLabel(s.idx, SuffixVHost)))
			}
		}
		return nil
	}
	if !http {
		o.warnings = append(o.warnings, fmt.Sprintf("%s is in tcp mode: not routed on the shared HTTP and HTTPS frontends",
			PortLabel(s.idx, SuffixVHost)))
		return nil
	}
	o.weight = pl.BackendWeight
	if o.weight == 0 && pl.Path != "" {
		o.weight = 1
	}
	if rule != "" {
		// A bamboo-style rule replaces the vhost ACLs, in bamboo's form.
		lines := []string{"  acl rule_" + s.name + " " + rule, "  use_backend " + s.name + " if rule_" + s.name}
		o.http, o.https = lines, lines
		return nil
	}
	http1, https1 := b.scratchHTTP[:0], b.scratchHTTPS[:0]
	defer func() { b.scratchHTTP, b.scratchHTTPS = http1[:0], https1[:0] }()
	// The HTTP and HTTPS lines are built in two buffers; exec appends to r.buf.
	to := func(dst *[]byte, names ...string) error {
		r.buf, *dst = *dst, r.buf
		defer func() { r.buf, *dst = *dst, r.buf }()
		for _, n := range names {
			if err := r.exec(n); err != nil {
				return err
			}
		}
		return nil
	}
	domain := func(h string) {
		for _, e := range o.domain {
			if e.Key == h {
				return
			}
		}
		o.domain = append(o.domain, MapEntry{Key: h, Value: s.name})
	}
	useMap := b.cfg.HAProxyMap
	path, auth, redirect := pl.Path != "", pl.Auth != nil, pl.RedirectToHTTPS
	v := r.v
	var err error
	if len(pl.VHosts) == 1 {
		h := pl.VHosts[0]
		switch {
		case path && redirect:
			err = to(&http1, templates.HTTPFrontendACLOnly, templates.HTTPFrontendACLOnlyWithPath, templates.BackendRedirectHTTPToHTTPSWithPath)
		case path && auth:
			err = to(&http1, templates.HTTPFrontendACLWithAuthAndPath)
		case path:
			err = to(&http1, templates.HTTPFrontendACLWithPath)
		case redirect:
			err = to(&http1, templates.HTTPFrontendACLOnly, templates.BackendRedirectHTTPToHTTPS)
		case auth:
			err = to(&http1, templates.HTTPFrontendACLWithAuth)
		case useMap:
			o.mapHTTP = true
			domain(h)
		default:
			err = to(&http1, templates.HTTPFrontendACL)
		}
		if err != nil {
			return err
		}
		switch {
		case path && auth:
			err = to(&https1, templates.HTTPSFrontendACLOnlyWithPath, templates.HTTPSFrontendACLWithAuthAndPath)
		case path:
			err = to(&https1, templates.HTTPSFrontendACLOnlyWithPath, templates.HTTPSFrontendACLWithPath)
		case auth:
			err = to(&https1, templates.HTTPSFrontendACLWithAuth)
		case useMap:
			o.mapHTTPS = true
			domain(h)
		default:
			err = to(&https1, templates.HTTPSFrontendACL)
		}
		if err != nil {
			return err
		}
	} else {
		if path {
			only := templates.HTTPFrontendACLOnlyWithPath
			if auth {
				only = templates.HTTPFrontendACLOnlyWithPathAndAuth
			}
			if err := to(&http1, only); err != nil {
				return err
			}
			if err := to(&https1, templates.HTTPSFrontendACLOnlyWithPath); err != nil {
				return err
			}
		}
		for _, h := range pl.VHosts {
			v.Set(templates.FieldHostname, h)
			if useMap && !path && !auth && !redirect {
				o.mapHTTPOnly = true
				domain(h)
			} else if err := to(&http1, templates.HTTPFrontendACLOnly); err != nil {
				return err
			}
			switch {
			case path && auth:
				err = to(&https1, templates.HTTPSFrontendACLWithAuthAndPath)
			case path:
				err = to(&https1, templates.HTTPSFrontendACLWithPath)
			case auth:
				err = to(&https1, templates.HTTPSFrontendACLWithAuth)
			case useMap:
				o.mapHTTPS = true
				domain(h)
			default:
				err = to(&https1, templates.HTTPSFrontendACL)
			}
			if err != nil {
				return err
			}
		}
		v.Set(templates.FieldHostname, pl.VHosts[0])
		switch {
		case redirect && path:
			err = to(&http1, templates.BackendRedirectHTTPToHTTPSWithPath)
		case redirect:
			err = to(&http1, templates.BackendRedirectHTTPToHTTPS)
		case path && auth:
			err = to(&http1, templates.HTTPFrontendRoutingOnlyWithPathAuth)
		case path:
			err = to(&http1, templates.HTTPFrontendRoutingOnlyWithPath)
		case auth:
			err = to(&http1, templates.HTTPFrontendRoutingOnlyWithAuth)
		case !useMap:
			err = to(&http1, templates.HTTPFrontendRoutingOnly)
		}
		if err != nil {
			return err
		}
	}
	scratch := r.buf
	r.buf = http1
	o.http = r.lines()
	r.buf = https1
	o.https = r.lines()
	r.buf = scratch
	return nil
}
