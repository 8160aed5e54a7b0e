// Package templates holds the HAProxy configuration snippets lodestar renders, under the names
// marathon-lb gave them (HAPROXY_HEAD, HAPROXY_BACKEND_HEAD, HAPROXY_HTTP_FRONTEND_ACL, …), and
// the lookup of user overrides.
//
// # Format
//
// Templates are marathon-lb's format strings, not Go templates, so that templates app teams
// wrote for marathon-lb (files in its templates directory, HAPROXY_{n}_<NAME> labels) work
// unchanged. A template is one of two kinds, as in marathon-lb:
//
//   - formatted (most): Python str.format syntax. {name} is replaced by a field, {{ and }} are
//     literal braces (HAProxy's anonymous ACLs are written "{{ ssl_fc }}"). A name the template
//     does not have, a lone "}" or an unterminated "{" is an error that names the line.
//   - verbatim (HEAD, HTTP_FRONTEND_HEAD, HTTP_FRONTEND_APPID_HEAD, BACKEND_HTTP_OPTIONS,
//     BACKEND_HSTS_OPTIONS, BACKEND_STICKY_OPTIONS, HTTP_BACKEND_ACL_ALLOW_DENY,
//     TCP_BACKEND_ACL_ALLOW_DENY): marathon-lb wrote these out as they are, so "{ ssl_fc }" is
//     literal text. lodestar replaces only {name} for a field the template has (HEAD's {runDir},
//     for example); every other brace stays as written.
//
// # Lookup
//
// For every name: the per-app label HAPROXY_{n}_<NAME> (templates marked per-app only; CRLF is
// normalised to LF), then the file <templates dir>/HAPROXY_<NAME>, then the environment variable
// HAPROXY_<NAME>, then the built-in default (embedded from builtin/, one file per template).
//
// # Fields
//
// Global templates:
//
//	HEAD                      runDir, maxConn, hardStopAfter, statsBind, haproxy_dir
//	HTTP_FRONTEND_HEAD        httpBind
//	HTTPS_FRONTEND_HEAD       httpsBind, sslCerts ("crt /a.pem crt /b.pem")
//	HTTP_FRONTEND_APPID_HEAD  appIdBind
//	MAP_*                     haproxy_dir (the directory of the map files)
//
// Every other template is rendered for one service port of one app and may use any of:
//
//	backend            backend (and frontend) name, e.g. shop_web_10000
//	appId              app id ("/shop/web"), or "/<group>" for a zero-downtime deployment group
//	cleanedUpAppId     appId with every character outside [a-zA-Z0-9-] replaced by "_"
//	servicePort        the frontend port (HAPROXY_{n}_PORT or the service port)
//	mode, balance      "http"/"tcp"; the balance algorithm
//	bindAddr           HAPROXY_{n}_BIND_ADDR, default "*"
//	bindOptions        " " + HAPROXY_{n}_BIND_OPTIONS, or ""
//	sslCert            " ssl crt " + HAPROXY_{n}_SSL_CERT, or ""
//	hostname           in the HTTP(S)_FRONTEND_ACL* templates the vhost being routed; elsewhere
//	                   the first vhost
//	hostnames          every vhost, space-separated
//	cleanedUpHostname  ACL name stem: the first vhost with [^a-zA-Z0-9-] replaced by "_", then
//	                   "_" and the backend name
//	path               HAPROXY_{n}_PATH
//	realm, user, passwd          the parts of HAPROXY_{n}_AUTH
//	proxypath, rootpath, redirpath  HTTP_BACKEND_PROXYPASS_PATH, _REVPROXY_PATH, HTTP_BACKEND_REDIR
//	haproxy_dir        the directory of the map files (the run directory)
//	network_allowed    one entry of BACKEND_NETWORK_ALLOWED_ACL (the *_NETWORK_ALLOWED_ACL templates)
//	healthCheckPortIndex, healthCheckPort, healthCheckProtocol, healthCheckPath,
//	healthCheckTimeoutSeconds, healthCheckIntervalSeconds, healthCheckGracePeriodSeconds,
//	healthCheckMaxConsecutiveFailures, healthCheckFalls (= max failures + 1),
//	healthCheckPortOptions (" port N" or "")   the port's first Marathon health check
//	serverName, serverId, host, host_ipv4, port, cookieOptions, healthCheckOptions, otherOptions
//	                   BACKEND_SERVER_OPTIONS only: the slot name (s1…), its position, the agent
//	                   host, the address (IPv6 in brackets), the port, " cookie <slot>" when
//	                   sticky, the rendered BACKEND_SERVER_*_HEALTHCHECK_OPTIONS (with a leading
//	                   space) and " disabled" for a spare or draining slot
//
// A field a template may use but that has no value for this port (healthCheckPath without a
// health check, serverName outside BACKEND_SERVER_OPTIONS) is an execution error: the port is
// reported and skipped.
package templates

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Template names, without the HAPROXY_ prefix.
const (
	Head                                 = "HEAD"
	UserlistHead                         = "USERLIST_HEAD"
	HTTPFrontendHead                     = "HTTP_FRONTEND_HEAD"
	HTTPFrontendAppIDHead                = "HTTP_FRONTEND_APPID_HEAD"
	HTTPSFrontendHead                    = "HTTPS_FRONTEND_HEAD"
	FrontendHead                         = "FRONTEND_HEAD"
	BackendHead                          = "BACKEND_HEAD"
	BackendRedirectHTTPToHTTPS           = "BACKEND_REDIRECT_HTTP_TO_HTTPS"
	BackendRedirectHTTPToHTTPSWithPath   = "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH"
	BackendHSTSOptions                   = "BACKEND_HSTS_OPTIONS"
	HTTPFrontendACL                      = "HTTP_FRONTEND_ACL"
	MapHTTPFrontendACL                   = "MAP_HTTP_FRONTEND_ACL"
	HTTPFrontendACLWithAuth              = "HTTP_FRONTEND_ACL_WITH_AUTH"
	HTTPFrontendACLOnly                  = "HTTP_FRONTEND_ACL_ONLY"
	MapHTTPFrontendACLOnly               = "MAP_HTTP_FRONTEND_ACL_ONLY"
	HTTPFrontendRoutingOnly              = "HTTP_FRONTEND_ROUTING_ONLY"
	HTTPFrontendRoutingOnlyWithAuth      = "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH"
	HTTPFrontendACLWithPath              = "HTTP_FRONTEND_ACL_WITH_PATH"
	HTTPFrontendACLWithAuthAndPath       = "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH"
	HTTPFrontendACLOnlyWithPath          = "HTTP_FRONTEND_ACL_ONLY_WITH_PATH"
	HTTPFrontendACLOnlyWithPathAndAuth   = "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH"
	HTTPSFrontendACLOnlyWithPath         = "HTTPS_FRONTEND_ACL_ONLY_WITH_PATH"
	HTTPFrontendRoutingOnlyWithPath      = "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH"
	HTTPFrontendRoutingOnlyWithPathAuth  = "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH"
	HTTPSFrontendRoutingOnlyWithPathAuth = "HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH"
	HTTPFrontendAppIDACL                 = "HTTP_FRONTEND_APPID_ACL"
	MapHTTPFrontendAppIDACL              = "MAP_HTTP_FRONTEND_APPID_ACL"
	HTTPSFrontendACL                     = "HTTPS_FRONTEND_ACL"
	MapHTTPSFrontendACL                  = "MAP_HTTPS_FRONTEND_ACL"
	HTTPSFrontendACLWithAuth             = "HTTPS_FRONTEND_ACL_WITH_AUTH"
	HTTPSFrontendAuthACLOnly             = "HTTPS_FRONTEND_AUTH_ACL_ONLY"
	HTTPSFrontendAuthRequestOnly         = "HTTPS_FRONTEND_AUTH_REQUEST_ONLY"
	HTTPSFrontendACLWithPath             = "HTTPS_FRONTEND_ACL_WITH_PATH"
	HTTPSFrontendACLWithAuthAndPath      = "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH"
	BackendHTTPOptions                   = "BACKEND_HTTP_OPTIONS"
	HTTPBackendProxypassGlue             = "HTTP_BACKEND_PROXYPASS_GLUE"
	HTTPBackendRevproxyGlue              = "HTTP_BACKEND_REVPROXY_GLUE"
	HTTPBackendRedir                     = "HTTP_BACKEND_REDIR"
	BackendHTTPHealthcheckOptions        = "BACKEND_HTTP_HEALTHCHECK_OPTIONS"
	BackendTCPHealthcheckOptions         = "BACKEND_TCP_HEALTHCHECK_OPTIONS"
	BackendStickyOptions                 = "BACKEND_STICKY_OPTIONS"
	BackendServerOptions                 = "BACKEND_SERVER_OPTIONS"
	BackendServerHTTPHealthcheckOptions  = "BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS"
	BackendServerTCPHealthcheckOptions   = "BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS"
	FrontendBackendGlue                  = "FRONTEND_BACKEND_GLUE"
	HTTPBackendNetworkAllowedACL         = "HTTP_BACKEND_NETWORK_ALLOWED_ACL"
	HTTPBackendACLAllowDeny              = "HTTP_BACKEND_ACL_ALLOW_DENY"
	TCPBackendNetworkAllowedACL          = "TCP_BACKEND_NETWORK_ALLOWED_ACL"
	TCPBackendACLAllowDeny               = "TCP_BACKEND_ACL_ALLOW_DENY"
)

const (
	prefix = "HAPROXY_"
	// maxOverrideCache bounds the parsed per-app overrides kept; the cache starts over when full.
	maxOverrideCache = 4096
	globalFieldsMask = fieldSet(1<<FieldRunDir | 1<<FieldMaxConn | 1<<FieldHardStopAfter | 1<<FieldStatsBind |
		1<<FieldHTTPBind | 1<<FieldHTTPSBind | 1<<FieldAppIDBind | 1<<FieldSSLCerts)
)

// appFields are the fields of every template rendered for one service port.
const appFields = (1<<numFields - 1) &^ globalFieldsMask

// Spec describes one template.
type Spec struct {
	// Name is the template's name without the HAPROXY_ prefix.
	Name string
	// PerApp says whether an app may override it with a HAPROXY_{n}_<NAME> label. Global
	// templates (HEAD, the shared frontend heads, the map ACLs, the allow/deny rules and
	// HTTP_BACKEND_REDIR, whose label name is taken by the redirect path) are not.
	PerApp bool
	// Verbatim templates keep braces as written and replace only their own fields.
	Verbatim bool
	// Fields are the names the template may use.
	Fields []string
	// Default is the built-in text.
	Default string

	allowed fieldSet
}

//go:embed builtin
var builtinFS embed.FS

type kind uint8

const (
	global kind = 1 << iota
	perApp
	verbatim
)

var catalog = func() map[string]*Spec {
	g := func(fs ...Field) fieldSet { return setOf(fs...) }
	entries := []struct {
		name    string
		k       kind
		allowed fieldSet
	}{
		{Head, global | verbatim, g(FieldRunDir, FieldMaxConn, FieldHardStopAfter, FieldStatsBind, FieldHAProxyDir)},
		{HTTPFrontendHead, global | verbatim, g(FieldHTTPBind)},
		{HTTPFrontendAppIDHead, global | verbatim, g(FieldAppIDBind)},
		{HTTPSFrontendHead, global, g(FieldHTTPSBind, FieldSSLCerts)},
		{MapHTTPFrontendACL, global, g(FieldHAProxyDir)},
		{MapHTTPFrontendACLOnly, global, g(FieldHAProxyDir)},
		{MapHTTPSFrontendACL, global, g(FieldHAProxyDir)},
		{MapHTTPFrontendAppIDACL, global, g(FieldHAProxyDir)},
		{HTTPBackendACLAllowDeny, global | verbatim, appFields},
		{TCPBackendACLAllowDeny, global | verbatim, appFields},
		{HTTPBackendRedir, global, appFields},
		{BackendHTTPOptions, perApp | verbatim, appFields},
		{BackendHSTSOptions, perApp | verbatim, appFields},
		{BackendStickyOptions, perApp | verbatim, appFields},
	}
	m := make(map[string]*Spec)
	for _, e := range entries {
		m[e.name] = &Spec{Name: e.name, PerApp: e.k&perApp != 0, Verbatim: e.k&verbatim != 0, allowed: e.allowed}
	}
	for _, n := range []string{
		UserlistHead, FrontendHead, BackendHead, BackendRedirectHTTPToHTTPS, BackendRedirectHTTPToHTTPSWithPath,
		HTTPFrontendACL, HTTPFrontendACLWithAuth, HTTPFrontendACLOnly, HTTPFrontendRoutingOnly,
		HTTPFrontendRoutingOnlyWithAuth, HTTPFrontendACLWithPath, HTTPFrontendACLWithAuthAndPath,
		HTTPFrontendACLOnlyWithPath, HTTPFrontendACLOnlyWithPathAndAuth, HTTPSFrontendACLOnlyWithPath,
		HTTPFrontendRoutingOnlyWithPath, HTTPFrontendRoutingOnlyWithPathAuth, HTTPSFrontendRoutingOnlyWithPathAuth,
		HTTPFrontendAppIDACL, HTTPSFrontendACL, HTTPSFrontendACLWithAuth, HTTPSFrontendAuthACLOnly,
		HTTPSFrontendAuthRequestOnly, HTTPSFrontendACLWithPath, HTTPSFrontendACLWithAuthAndPath,
		HTTPBackendProxypassGlue, HTTPBackendRevproxyGlue, BackendHTTPHealthcheckOptions,
		BackendTCPHealthcheckOptions, BackendServerOptions, BackendServerHTTPHealthcheckOptions,
		BackendServerTCPHealthcheckOptions, FrontendBackendGlue, HTTPBackendNetworkAllowedACL,
		TCPBackendNetworkAllowedACL,
	} {
		m[n] = &Spec{Name: n, PerApp: true, allowed: appFields}
	}
	for _, s := range m {
		b, err := builtinFS.ReadFile("builtin/" + prefix + s.Name)
		if err != nil {
			panic("templates: no built-in for " + s.Name)
		}
		s.Default = string(b)
		s.Fields = s.allowed.names()
	}
	return m
}()

// Specs returns every template's description, sorted by name.
func Specs() []Spec {
	out := make([]Spec, 0, len(catalog))
	for _, s := range catalog {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Spec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup returns the description of the named template (without the HAPROXY_ prefix).
func Lookup(name string) (Spec, bool) {
	s, ok := catalog[name]
	if !ok {
		return Spec{}, false
	}
	return *s, true
}

// Source says where a template's text came from.
type Source uint8

// Sources, in lookup order from last to first.
const (
	SourceBuiltin Source = iota
	SourceEnv
	SourceFile
	SourceLabel
)

func (s Source) String() string {
	switch s {
	case SourceEnv:
		return "environment"
	case SourceFile:
		return "file"
	case SourceLabel:
		return "label"
	}
	return "built-in"
}

// Template is one parsed template.
type Template struct {
	spec   *Spec
	text   string
	source Source
	origin string
	segs   []segment
	used   fieldSet
	fields []Field
	// size is the length of the literal text, to size buffers.
	size int
}

// Name returns the template's name without the HAPROXY_ prefix.
func (t *Template) Name() string { return t.spec.Name }

// Text returns the template's text.
func (t *Template) Text() string { return t.text }

// Source returns where the text came from; Origin the file path or variable name ("" for
// built-ins and labels).
func (t *Template) Source() Source { return t.source }

// Origin returns the file path or environment variable the text came from, "" otherwise.
func (t *Template) Origin() string { return t.origin }

// Uses reports whether the template refers to field f.
func (t *Template) Uses(f Field) bool { return t.used.has(f) }

// Fields returns the fields the template refers to, in Field order. The slice is shared:
// callers must not modify it.
func (t *Template) Fields() []Field { return t.fields }

// Error is a template that failed to parse or execute.
type Error struct {
	// Name is the template name without the HAPROXY_ prefix.
	Name   string
	Source Source
	// Origin is the file path or environment variable, when the text came from one.
	Origin string
	Err    error
}

func (e *Error) Error() string {
	where := e.Source.String()
	if e.Origin != "" {
		where += " " + e.Origin
	}
	return fmt.Sprintf("template %s%s (%s): %v", prefix, e.Name, where, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Append executes the template with v and appends the result to dst.
func (t *Template) Append(dst []byte, v *Values) ([]byte, error) {
	if missing := t.used &^ v.set; missing != 0 {
		return dst, &Error{Name: t.spec.Name, Source: t.source, Origin: t.origin,
			Err: fmt.Errorf("{%s} has no value here", strings.Join(missing.names(), "}, {"))}
	}
	for i := range t.segs {
		s := &t.segs[i]
		if s.field == literal {
			dst = append(dst, s.lit...)
		} else {
			dst = append(dst, v.v[s.field]...)
		}
	}
	return dst, nil
}

// Execute returns the template executed with v, as a string.
func (t *Template) Execute(v *Values) (string, error) {
	b, err := t.Append(make([]byte, 0, t.size+64), v)
	return string(b), err
}

// Parse parses text as the named template (name without the HAPROXY_ prefix). CRLF line ends
// are normalised to LF.
func Parse(name, text string, src Source) (*Template, error) {
	return parse(name, text, src, "")
}

func parse(name, text string, src Source, origin string) (*Template, error) {
	spec, ok := catalog[name]
	if !ok {
		return nil, fmt.Errorf("unknown template %s%s", prefix, name)
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	t := &Template{spec: spec, text: text, source: src, origin: origin}
	if spec.Verbatim {
		t.segs, t.used = parseRaw(text, spec.allowed)
	} else {
		segs, used, err := parseFormat(text, spec.allowed)
		if err != nil {
			return nil, &Error{Name: name, Source: src, Origin: origin, Err: err}
		}
		t.segs, t.used = segs, used
	}
	for _, sg := range t.segs {
		t.size += len(sg.lit)
	}
	for f := Field(0); f < numFields; f++ {
		if t.used.has(f) {
			t.fields = append(t.fields, f)
		}
	}
	return t, nil
}

// Set is the resolved global templates (file, then environment, then built-in) plus a cache of
// parsed per-app overrides. It is safe for concurrent use.
type Set struct {
	tmpl map[string]*Template
	errs map[string]error

	mu    sync.Mutex
	cache map[[2]string]override
}

type override struct {
	t   *Template
	err error
}

// Load resolves every template: the file <dir>/HAPROXY_<NAME> (dir may be empty), then the
// environment variable HAPROXY_<NAME> read with getenv (may be nil), then the built-in. A
// file that exists but cannot be read is an error; a template that does not parse is kept as
// an error that Get returns, so that only the apps (or, for global templates, the whole
// configuration) that use it fail.
func Load(dir string, getenv func(string) string) (*Set, error) {
	s := &Set{tmpl: make(map[string]*Template, len(catalog)), errs: map[string]error{}}
	for name, spec := range catalog {
		text, src, origin := spec.Default, SourceBuiltin, ""
		if dir != "" {
			path := filepath.Join(dir, prefix+name)
			b, err := os.ReadFile(path)
			switch {
			case err == nil:
				text, src, origin = string(b), SourceFile, path
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("templates dir: %w", err)
			}
		}
		if src == SourceBuiltin && getenv != nil {
			if v := getenv(prefix + name); v != "" {
				text, src, origin = v, SourceEnv, prefix+name
			}
		}
		t, err := parse(name, text, src, origin)
		if err != nil {
			s.errs[name] = err
			continue
		}
		s.tmpl[name] = t
	}
	return s, nil
}

var builtinSet = sync.OnceValue(func() *Set {
	s, err := Load("", nil)
	if err != nil || len(s.errs) > 0 {
		panic(fmt.Sprintf("templates: built-ins do not load: %v %v", err, s.errs))
	}
	return s
})

// Builtin returns the set of built-in templates.
func Builtin() *Set { return builtinSet() }

// Get returns the named global template (name without the HAPROXY_ prefix).
func (s *Set) Get(name string) (*Template, error) {
	if t, ok := s.tmpl[name]; ok {
		return t, nil
	}
	if err, ok := s.errs[name]; ok {
		return nil, err
	}
	return nil, fmt.Errorf("unknown template %s%s", prefix, name)
}

// Override returns text, from an app's label, parsed as the named per-app template. Parsed
// overrides are cached by name and text.
func (s *Set) Override(name, text string) (*Template, error) {
	spec, ok := catalog[name]
	if !ok {
		return nil, fmt.Errorf("unknown template %s%s", prefix, name)
	}
	if !spec.PerApp {
		return nil, fmt.Errorf("template %s%s cannot be overridden per app", prefix, name)
	}
	key := [2]string{name, text}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.cache[key]; ok {
		return o.t, o.err
	}
	t, err := parse(name, text, SourceLabel, "")
	if s.cache == nil || len(s.cache) >= maxOverrideCache {
		s.cache = make(map[[2]string]override)
	}
	s.cache[key] = override{t, err}
	return t, err
}

// LabelKey returns the label that overrides the named template for port index n:
// HAPROXY_{n}_<NAME>.
func LabelKey(name string, n int) string {
	return fmt.Sprintf("%s%d_%s", prefix, n, name)
}

// ForApp returns the named template for port index n of an app with these labels: the
// app's HAPROXY_{n}_<NAME> label when the template is per-app and the label is set, else the
// global template.
func (s *Set) ForApp(name string, labels map[string]string, n int) (*Template, error) {
	if spec, ok := catalog[name]; ok && spec.PerApp {
		if text, ok := labels[LabelKey(name, n)]; ok {
			return s.Override(name, text)
		}
	}
	return s.Get(name)
}
