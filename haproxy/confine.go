package haproxy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/templates"
)

// Confined per-app templates (--label-templates confined, the default).
//
// A HAPROXY_{n}_<TEMPLATE> label is written by an app team, and the edge is shared by many
// teams: with raw templates one app could open a second global section (daemon, stats socket
// level admin), run programs (external-check), bind other apps' ports, point a server at
// lodestar's own API or read lodestar's environment. ConfineSnippet checks one rendered
// snippet against the one section it renders into (SectionKind) and the app it belongs to
// (AppScope) before it reaches haproxy.cfg. Templates from --templates-dir and the environment
// are the operator's and are not confined; --label-templates full skips the check.
//
// The check has two passes. The line pass is authoritative and cheap: it splits every line the
// way HAProxy 2.6 does (quotes, escapes, comments), refuses environment expansion, control
// characters and non-ASCII bytes, and holds every directive against the allow-list of its
// section (confine_rules.go, summarised in docs/label-confinement.md). The second pass parses
// the snippet, wrapped in the section header lodestar writes, with haproxytech/config-parser
// and requires exactly that one section and nothing in global: a cross-check by an independent
// reader. It costs a quarter of a millisecond per snippet, so its verdicts are cached per text.

// SectionKind says where a per-app template's output goes in haproxy.cfg.
type SectionKind uint8

// Section kinds.
const (
	// SectionBackend: lines inside the app's backend (BACKEND_HTTP_OPTIONS, *_GLUE, …).
	SectionBackend SectionKind = iota + 1
	// SectionBackendHead opens "backend <AppScope.Backend>" and continues as SectionBackend.
	SectionBackendHead
	// SectionFrontend: lines inside the app's own frontend (FRONTEND_BACKEND_GLUE).
	SectionFrontend
	// SectionFrontendHead opens "frontend <AppScope.Backend>" with exactly one bind line, on
	// the app's address and service port, and continues as SectionFrontend.
	SectionFrontendHead
	// SectionSharedFrontend: lines added to a frontend every app shares (the HTTP, HTTPS and
	// X-Marathon-App-Id frontends): only ACLs and rules that route to the app's own backends,
	// each conditioned on the app's own host (or app id).
	SectionSharedFrontend
	// SectionUserlistHead opens "userlist <AppScope.Userlist>" with user and group lines.
	SectionUserlistHead
	// SectionServer is one server line of the app's backend: named AppScope.ServerName, on
	// the task's address (AppScope.ServerAddr or ServerHost), with allowed server options.
	SectionServer
	// SectionServerOptions are options appended to a server line (the health check options).
	SectionServerOptions
)

func (k SectionKind) String() string {
	switch k {
	case SectionBackend:
		return "backend"
	case SectionBackendHead:
		return "backend head"
	case SectionFrontend:
		return "frontend"
	case SectionFrontendHead:
		return "frontend head"
	case SectionSharedFrontend:
		return "shared frontend"
	case SectionUserlistHead:
		return "userlist head"
	case SectionServer:
		return "server line"
	case SectionServerOptions:
		return "server options"
	}
	return "SectionKind(" + strconv.Itoa(int(k)) + ")"
}

// templateSections maps every per-app template to the section it renders into.
var templateSections = map[string]SectionKind{
	templates.BackendHead:                          SectionBackendHead,
	templates.BackendHTTPOptions:                   SectionBackend,
	templates.BackendHSTSOptions:                   SectionBackend,
	templates.BackendStickyOptions:                 SectionBackend,
	templates.HTTPBackendProxypassGlue:             SectionBackend,
	templates.HTTPBackendRevproxyGlue:              SectionBackend,
	templates.BackendHTTPHealthcheckOptions:        SectionBackend,
	templates.BackendTCPHealthcheckOptions:         SectionBackend,
	templates.HTTPBackendNetworkAllowedACL:         SectionBackend,
	templates.TCPBackendNetworkAllowedACL:          SectionBackend,
	templates.FrontendHead:                         SectionFrontendHead,
	templates.FrontendBackendGlue:                  SectionFrontend,
	templates.UserlistHead:                         SectionUserlistHead,
	templates.BackendServerOptions:                 SectionServer,
	templates.BackendServerHTTPHealthcheckOptions:  SectionServerOptions,
	templates.BackendServerTCPHealthcheckOptions:   SectionServerOptions,
	templates.BackendRedirectHTTPToHTTPS:           SectionSharedFrontend,
	templates.BackendRedirectHTTPToHTTPSWithPath:   SectionSharedFrontend,
	templates.HTTPFrontendACL:                      SectionSharedFrontend,
	templates.HTTPFrontendACLWithAuth:              SectionSharedFrontend,
	templates.HTTPFrontendACLOnly:                  SectionSharedFrontend,
	templates.HTTPFrontendRoutingOnly:              SectionSharedFrontend,
	templates.HTTPFrontendRoutingOnlyWithAuth:      SectionSharedFrontend,
	templates.HTTPFrontendACLWithPath:              SectionSharedFrontend,
	templates.HTTPFrontendACLWithAuthAndPath:       SectionSharedFrontend,
	templates.HTTPFrontendACLOnlyWithPath:          SectionSharedFrontend,
	templates.HTTPFrontendACLOnlyWithPathAndAuth:   SectionSharedFrontend,
	templates.HTTPSFrontendACLOnlyWithPath:         SectionSharedFrontend,
	templates.HTTPFrontendRoutingOnlyWithPath:      SectionSharedFrontend,
	templates.HTTPFrontendRoutingOnlyWithPathAuth:  SectionSharedFrontend,
	templates.HTTPSFrontendRoutingOnlyWithPathAuth: SectionSharedFrontend,
	templates.HTTPFrontendAppIDACL:                 SectionSharedFrontend,
	templates.HTTPSFrontendACL:                     SectionSharedFrontend,
	templates.HTTPSFrontendACLWithAuth:             SectionSharedFrontend,
	templates.HTTPSFrontendAuthACLOnly:             SectionSharedFrontend,
	templates.HTTPSFrontendAuthRequestOnly:         SectionSharedFrontend,
	templates.HTTPSFrontendACLWithPath:             SectionSharedFrontend,
	templates.HTTPSFrontendACLWithAuthAndPath:      SectionSharedFrontend,
}

// TemplateSection returns the section a per-app template (name without the HAPROXY_ prefix)
// renders into; false for a template an app cannot override.
func TemplateSection(name string) (SectionKind, bool) {
	k, ok := templateSections[name]
	return k, ok
}

// AppScope is what one service port of one app owns: the names its confined snippets may
// declare and route to. NewAppScope fills the names lodestar derives; the builder adds the
// per-template fields (bind, server) where the template needs them.
type AppScope struct {
	// Label names the template in errors: the label (HAPROXY_0_BACKEND_HEAD).
	Label string
	// AppID is the app id, or "/<group>" for a deployment group.
	AppID string
	// Backend is the port's backend name, which is also its frontend's name.
	Backend string
	// Backends are every backend of the app (its other ports); Backend is always included.
	Backends []string
	// Hosts are the port's vhosts, lower case.
	Hosts []string
	// SelectorACLs are the ACL names that stand for the port's own hosts or app id in a
	// shared frontend: host_<cleanedUpHostname> and app_<cleanedUpAppId>. Another template of
	// the app may declare them; where a snippet declares one, its definition must match only
	// Hosts (or AppID).
	SelectorACLs []string
	// Userlist is the name of the port's userlist ("user_" + Backend when empty).
	Userlist string
	// BindAddr and ServicePort are the port's bind address ("*" or an IP) and port.
	BindAddr    string
	ServicePort int
	// SSLCert is HAPROXY_{n}_SSL_CERT, the one certificate the bind line may name.
	SSLCert string
	// ServerName, ServerAddr and ServerHost are the slot a server line is checked for: its
	// name (s1, …), its address ({host_ipv4}, IPv6 without brackets) and its agent host name.
	ServerName, ServerAddr, ServerHost string
}

// NewAppScope returns the scope of one service port: its backend, vhosts and the selector
// ACL names lodestar's templates declare for them.
func NewAppScope(label, appID, backend string, hosts []string) AppScope {
	s := AppScope{Label: label, AppID: appID, Backend: backend, Backends: []string{backend}, Hosts: hosts,
		Userlist: "user_" + backend, BindAddr: "*"}
	for _, h := range hosts {
		s.SelectorACLs = append(s.SelectorACLs, "host_"+cleanedUp(h)+"_"+backend)
	}
	s.SelectorACLs = append(s.SelectorACLs, "app_"+cleanedUp(appID))
	return s
}

// ErrConfined is what every *ConfineError unwraps to.
var ErrConfined = errors.New("template refused by --label-templates confined")

// ConfineError is a confined snippet that was refused. It names the label, the line of the
// rendered snippet and the offending directive.
type ConfineError struct {
	Label string
	Kind  SectionKind
	// Line is the 1-based line of the rendered snippet; 0 for the snippet as a whole.
	Line int
	// Text is the offending line (or word).
	Text   string
	Reason string
}

func (e *ConfineError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("label %s (%s): %s", e.Label, e.Kind, e.Reason)
	}
	return fmt.Sprintf("label %s (%s) line %d %s: %s", e.Label, e.Kind, e.Line, quoteTrunc(strings.TrimSpace(e.Text)), e.Reason)
}

func (e *ConfineError) Unwrap() error { return ErrConfined }

// ConfineTemplate is ConfineSnippet for a per-app template by name (without the HAPROXY_
// prefix): the builder calls it where it executes a template whose Source is
// templates.SourceLabel, with the text that template appended.
func ConfineTemplate(name, rendered string, scope AppScope) error {
	kind, ok := TemplateSection(name)
	if !ok {
		return &ConfineError{Label: scope.Label, Reason: "template " + LabelPrefix + name + " cannot be overridden per app"}
	}
	return ConfineSnippet(kind, rendered, scope)
}

// ConfineSnippet checks text, the rendered output of a per-app template, for the section kind
// it renders into and the app it belongs to. It returns nil or a *ConfineError. It is safe for
// concurrent use. Call it for label overrides only (operator templates are trusted).
//
// The server template renders once per slot: check it once per backend, rendered with the
// values of one slot (a sentinel such as serverName "s1", host_ipv4 "192.0.2.1", host
// "agent.invalid", port "1" works for every backend and keeps the verdict cached) and the same
// slot in scope.ServerName, ServerAddr and ServerHost: a template that writes its own address
// instead of {host_ipv4} or {host} is refused.
func ConfineSnippet(kind SectionKind, text string, scope AppScope) error {
	c := &confiner{kind: kind, scope: scope}
	if scope.Userlist == "" {
		c.scope.Userlist = "user_" + scope.Backend
	}
	if err := c.lines(text); err != nil {
		return err
	}
	if err := crossCheck(kind, text, c.scope); err != nil {
		return &ConfineError{Label: scope.Label, Kind: kind, Reason: err.Error()}
	}
	return nil
}

// confiner checks one snippet.
type confiner struct {
	kind  SectionKind
	scope AppScope
	// opened is set once the section header of a head kind was seen; binds and servers count
	// the bind and server lines.
	opened                      bool
	binds, servers, optionLines int
}

// lines runs the line pass over every line of text.
func (c *confiner) lines(text string) error {
	for i := 0; i < len(text); i++ {
		if b := text[i]; b >= 0x80 || b < 0x20 && b != '\n' && b != '\t' || b == 0x7f {
			n := strings.Count(text[:i], "\n") + 1
			return c.fail(n, lineAt(text, i), fmt.Sprintf("byte %q at column %d: snippets are printable ASCII (no CR, NUL or other control characters)", b, i-strings.LastIndexByte(text[:i], '\n')))
		}
	}
	n := 0
	for rest := text; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		n++
		if err := rawLine(line); err != nil {
			return c.fail(n, line, err.Error())
		}
		args, err := splitLine(line)
		if err != nil {
			return c.fail(n, line, err.Error())
		}
		if len(args) == 0 {
			continue
		}
		if err := c.line(args, line); err != nil {
			return c.fail(n, line, err.Error())
		}
	}
	return c.finish()
}

// rawLine refuses, on the line as written (comments included, before quotes and escapes are
// read), what must never reach haproxy.cfg from a label even where HAProxy would not act on
// it: "${", "env(", a '$' after a double quote, and a first word that is a section keyword
// once quotes and backslashes are dropped. It is deliberately blunter than the HAProxy-like
// reading in splitLine, so that a difference between the two readers errs on refusing.
func rawLine(line string) error {
	if strings.Contains(line, "${") {
		return errors.New("environment expansion (${…}) is refused: HAProxy would put lodestar's environment here")
	}
	if containsFold(line, "env(") {
		return errors.New("the env() fetch is refused: it reads lodestar's environment")
	}
	if q := strings.IndexByte(line, '"'); q >= 0 && strings.IndexByte(line[q:], '$') >= 0 {
		return errors.New("'$' after a double quote is refused: HAProxy expands \"$VAR\" from its environment")
	}
	first := line
	if f := strings.Fields(line); len(f) > 0 {
		first = f[0]
	}
	first = strings.Map(func(r rune) rune {
		if r == '"' || r == '\'' || r == '\\' {
			return -1
		}
		return r
	}, first)
	if _, ok := sectionKeywords[first]; ok && first != strings.TrimLeft(line, " \t")[:len(first)] {
		return fmt.Errorf("%s reads as the section keyword %q", quoteTrunc(strings.Fields(line)[0]), first)
	}
	return nil
}

// containsFold reports whether s contains sub, ignoring ASCII case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func lineAt(text string, i int) string {
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := strings.IndexByte(text[i:], '\n')
	if end < 0 {
		return text[start:]
	}
	return text[start : i+end]
}

func (c *confiner) fail(n int, line, reason string) error {
	return &ConfineError{Label: c.scope.Label, Kind: c.kind, Line: n, Text: line, Reason: reason}
}

// finish checks what must appear exactly once.
func (c *confiner) finish() error {
	fail := func(reason string) error {
		return &ConfineError{Label: c.scope.Label, Kind: c.kind, Reason: reason}
	}
	switch c.kind {
	case SectionBackendHead, SectionFrontendHead, SectionUserlistHead:
		if !c.opened {
			return fail("the template must open its section: " + c.header())
		}
	}
	if c.kind == SectionFrontendHead && c.binds != 1 {
		return fail(fmt.Sprintf("want exactly one bind line, found %d", c.binds))
	}
	if c.kind == SectionServerOptions && c.optionLines > 1 {
		return fail("health check options are appended to the server line: want one line")
	}
	if c.kind == SectionServer && c.servers != 1 {
		return fail(fmt.Sprintf("want exactly one server line, found %d", c.servers))
	}
	return nil
}

// header returns the section header a head kind must open with.
func (c *confiner) header() string {
	switch c.kind {
	case SectionBackendHead:
		return "backend " + c.scope.Backend
	case SectionFrontendHead:
		return "frontend " + c.scope.Backend
	case SectionUserlistHead:
		return "userlist " + c.scope.Userlist
	}
	return ""
}

// line checks one line split into args.
func (c *confiner) line(args []string, raw string) error {
	kw := args[0]
	if !plainKeyword(raw, kw) {
		return fmt.Errorf("keyword %s: a directive starts with a plain lower-case word (no quotes, escapes or '.' blocks)", quoteTrunc(kw))
	}
	for _, a := range args[1:] {
		if err := checkExpr(a); err != nil {
			return err
		}
	}
	if err := c.checkAnonymousACLs(args); err != nil {
		return err
	}
	if why, ok := sectionKeywords[kw]; ok {
		if c.kind.opens() && !c.opened && strings.Join(args, " ") == c.header() {
			c.opened = true
			return nil
		}
		if c.kind.opens() && !c.opened && kw == c.header()[:strings.IndexByte(c.header(), ' ')] {
			return fmt.Errorf("the section must be named as lodestar names it: want %q", c.header())
		}
		return fmt.Errorf("section keyword %q refused: %s", kw, why)
	}
	if c.kind.opens() && !c.opened {
		return fmt.Errorf("directive before the section header: the template must start with %q", c.header())
	}
	switch c.kind {
	case SectionServer:
		return c.serverLine(args)
	case SectionServerOptions:
		c.optionLines++
		return checkServerOptions(args)
	case SectionUserlistHead:
		return c.userlistLine(args)
	case SectionSharedFrontend:
		return c.sharedLine(args)
	case SectionFrontendHead:
		if kw == "bind" {
			return c.bindLine(args)
		}
	}
	return c.proxyLine(args)
}

func (k SectionKind) opens() bool {
	return k == SectionBackendHead || k == SectionFrontendHead || k == SectionUserlistHead
}

// plainKeyword reports whether the line's first word is written as kw itself, a lower-case
// word: HAProxy removes quotes and escapes before it looks keywords up, so "gl\x6fbal" or
// '"global"' would open a section, and ".if" blocks read the environment.
func plainKeyword(raw, kw string) bool {
	if kw == "" || !strings.HasPrefix(strings.TrimLeft(raw, " \t"), kw) {
		return false
	}
	for i := 0; i < len(kw); i++ {
		if c := kw[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0) {
			return false
		}
	}
	return true
}

// splitLine splits one line into arguments as HAProxy 2.6's parser does: words separated by
// spaces and tabs, '#' outside quotes starts a comment, double quotes (where "$VAR" would be
// expanded) and single quotes group, a backslash escapes. Refused: environment expansion
// ("$…" in double quotes, "${" anywhere), \x escapes (they make characters the line pass
// would not see: "\x65nv(" is "env("), a trailing backslash and unterminated quotes. \r, \n
// and \t stay inside their argument (marathon-lb's "option httpchk GET / HTTP/1.1\r\nHost:\ x"
// idiom) and are kept escaped here: they cannot spell a keyword or a fetch.
func splitLine(line string) ([]string, error) {
	if strings.Contains(line, "${") {
		return nil, errors.New("environment expansion (${…}) is refused: HAProxy would put lodestar's environment here")
	}
	if !strings.ContainsAny(line, "\"'\\") {
		// Most lines have no quotes or escapes: words are substrings (bytes were checked to be
		// printable ASCII or TAB before).
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		return strings.Fields(line), nil
	}
	var args []string
	var w strings.Builder
	inWord, dq, sq := false, false, false
	end := func() {
		if inWord {
			args = append(args, w.String())
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case sq:
			if c == '\'' {
				sq = false
			} else {
				w.WriteByte(c)
			}
		case c == '\\':
			if i+1 >= len(line) {
				return nil, errors.New("trailing backslash")
			}
			i++
			switch e := line[i]; e {
			case '\\', ' ', '#', '"', '\'', '$':
				w.WriteByte(e)
			case 'x', 'X':
				return nil, fmt.Errorf("escape \\%c is refused: write the character itself", e)
			default:
				w.WriteByte('\\')
				w.WriteByte(e)
			}
			inWord = true
		case dq:
			switch c {
			case '"':
				dq = false
			case '$':
				return nil, errors.New("\"$…\" is refused: HAProxy expands environment variables in double quotes")
			default:
				w.WriteByte(c)
			}
		case c == '"':
			dq, inWord = true, true
		case c == '\'':
			sq, inWord = true, true
		case c == ' ' || c == '\t':
			end()
		case c == '#':
			end()
			return args, nil
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if dq || sq {
		return nil, errors.New("unterminated quote")
	}
	end()
	return args, nil
}

// checkExpr refuses, in one argument (after quotes and escapes are removed), what reads from
// outside the app: the env() fetch (lodestar's environment, which HAProxy inherits), lua
// fetches and converters, and map converters (they read files).
func checkExpr(a string) error {
	l := strings.ToLower(a)
	if strings.Contains(l, "env(") {
		return fmt.Errorf("%s: the env() fetch is refused: it reads lodestar's environment", quoteTrunc(a))
	}
	if strings.Contains(l, "lua.") {
		return fmt.Errorf("%s: Lua fetches, converters and actions are refused", quoteTrunc(a))
	}
	if strings.Contains(l, "${") {
		return fmt.Errorf("%s: environment expansion is refused", quoteTrunc(a))
	}
	for i := strings.Index(l, "map"); i >= 0; {
		j := i + 3
		if i == 0 || strings.IndexByte(",[( ", l[i-1]) >= 0 {
			for j < len(l) && (l[j] == '_' || isLowerAlnum(l[j])) {
				j++
			}
			if j < len(l) && l[j] == '(' {
				return fmt.Errorf("%s: map converters are refused: they read files", quoteTrunc(a))
			}
		}
		k := strings.Index(l[i+3:], "map")
		if k < 0 {
			break
		}
		i += 3 + k
	}
	return nil
}

// checkAnonymousACLs checks the body of every "{ … }" in args as an ACL definition.
func (c *confiner) checkAnonymousACLs(args []string) error {
	for i := 0; i < len(args); i++ {
		if strings.TrimLeft(args[i], "!") != "{" {
			continue
		}
		j := slices.Index(args[i+1:], "}")
		if j < 1 {
			return errors.New("anonymous ACL: want \"{ <fetch> [flags] [values] }\"")
		}
		if err := c.checkACLDef(args[i+1 : i+1+j]); err != nil {
			return err
		}
		i += j + 1
	}
	return nil
}

// checkACLDef checks an ACL definition (fetch, flags, values): flags and fetches as for rules,
// and http_auth only against the app's own userlist.
func (c *confiner) checkACLDef(words []string) error {
	if err := checkACLBody(words); err != nil {
		return err
	}
	f := words[0]
	for _, p := range []string{"http_auth(", "http_auth_group(", "http_auth_pass(", "http_auth_type("} {
		if rest, ok := strings.CutPrefix(f, p); ok {
			list, _, _ := strings.Cut(rest, ")")
			if list != c.scope.Userlist {
				return fmt.Errorf("%s: only the app's own userlist %s may be used", quoteTrunc(f), c.scope.Userlist)
			}
		}
	}
	return nil
}

// ownBackend reports whether name is one of the app's backends.
func (c *confiner) ownBackend(name string) bool {
	return name == c.scope.Backend || slices.Contains(c.scope.Backends, name)
}

// proxyLine checks a line in the app's own backend or frontend against the allow-list.
func (c *confiner) proxyLine(args []string) error {
	kw := args[0]
	if kw == "no" && len(args) > 1 {
		switch args[1] {
		case "option":
			return checkOption(args[1:])
		case "log":
			return nil
		}
		return fmt.Errorf("\"no %s\" is not in the allow-list", quoteTrunc(args[1]))
	}
	if why, ok := refusedDirectives[kw]; ok {
		return fmt.Errorf("%q refused: %s", kw, why)
	}
	d, ok := proxyDirectives[kw]
	if !ok {
		return fmt.Errorf("%s is not in the allow-list of a %s (docs/label-confinement.md)", quoteTrunc(kw), c.kind)
	}
	front := c.kind == SectionFrontend || c.kind == SectionFrontendHead
	if front && d.in&inFrontend == 0 || !front && d.in&inBackend == 0 {
		return fmt.Errorf("%q is not allowed in a %s", kw, c.kind)
	}
	if d.check != nil {
		return d.check(c, args)
	}
	return nil
}

// bindLine checks the one bind line of FRONTEND_HEAD: the port's own address and service
// port, the app's own certificate, then options from the bind allow-list.
func (c *confiner) bindLine(args []string) error {
	c.binds++
	addr := c.scope.BindAddr
	if addr == "" {
		addr = "*"
	}
	want := addr + ":" + strconv.Itoa(c.scope.ServicePort)
	if len(args) < 2 || args[1] != want {
		return fmt.Errorf("bind must be on the port's own address and service port %s", want)
	}
	words := args[2:]
	if c.scope.SSLCert != "" && len(words) >= 3 && words[0] == "ssl" && words[1] == "crt" && words[2] == c.scope.SSLCert {
		words = words[3:]
	}
	return checkBindWords("bind line", strings.Join(args, " "), words)
}

// serverLine checks the server line: the slot's name, the task's address (any port: an
// IP-per-task app may listen on its container port), allowed options.
func (c *confiner) serverLine(args []string) error {
	if args[0] != "server" {
		return fmt.Errorf("%q refused: BACKEND_SERVER_OPTIONS renders one server line and nothing else", args[0])
	}
	c.servers++
	if len(args) < 3 || args[1] != c.scope.ServerName {
		return fmt.Errorf("the server must be named %s, as lodestar names its slots", c.scope.ServerName)
	}
	i := strings.LastIndexByte(args[2], ':')
	if i < 0 {
		return errors.New("the server address needs a port")
	}
	host, port := strings.TrimSuffix(strings.TrimPrefix(args[2][:i], "["), "]"), args[2][i+1:]
	if host == "" || host != c.scope.ServerAddr && host != c.scope.ServerHost {
		return fmt.Errorf("the server must point at the task's address %s (or host %s)", c.scope.ServerAddr, c.scope.ServerHost)
	}
	if p, err := strconv.Atoi(port); err != nil || CheckPort("port", p) != nil {
		return fmt.Errorf("server port %s: want 1-65535", quoteTrunc(port))
	}
	return checkServerOptions(args[3:])
}

// userlistLine checks a line of USERLIST_HEAD: users and groups of the app's own userlist.
func (c *confiner) userlistLine(args []string) error {
	switch args[0] {
	case "user", "group":
		for _, a := range args[1:] {
			if strings.HasPrefix(a, "-") {
				return fmt.Errorf("%s: values must not start with '-'", quoteTrunc(a))
			}
		}
		if len(args) < 2 {
			return fmt.Errorf("%s needs a name", args[0])
		}
		return nil
	}
	return fmt.Errorf("%q refused: a userlist holds only user and group lines", args[0])
}
