package haproxy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Data is data: every value from Marathon, Mesos, routing rules or labels is checked here
// against its type before it can reach haproxy.cfg, a map file or a Runtime API command. The
// checks are pure functions; each returns an *InputError that names the field or label and
// quotes the value (truncated), so that the caller can leave out the app with a message an app
// team can act on.
//
// The allow-lists (bind options, balance algorithms, ACL flags) are written out in
// docs/label-confinement.md; a test keeps the two in step.

// ErrBadInput is what every *InputError unwraps to.
var ErrBadInput = errors.New("value refused")

// InputError is a value refused by one of the Check* functions.
type InputError struct {
	// Field is the Marathon field or label the value came from ("task host", "label
	// HAPROXY_0_BIND_ADDR").
	Field string
	Value string
	// Want says what would have been accepted.
	Want string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.Field, quoteTrunc(e.Value), e.Want)
}

func (e *InputError) Unwrap() error { return ErrBadInput }

// maxQuoted is how much of a refused value an error message quotes.
const maxQuoted = 64

// quoteTrunc quotes s with %q, cut to maxQuoted bytes (marked with "…") so that a hostile
// megabyte label does not become a megabyte log line.
func quoteTrunc(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + "…"
}

func refuse(field, value, want string) error {
	return &InputError{Field: field, Value: value, Want: want}
}

// controlChar returns the index of the first byte of s that is a C0 control character
// (including TAB, CR, LF and NUL) or DEL, or -1.
func controlChar(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return i
		}
	}
	return -1
}

// CheckText refuses a value with a control character (CR, LF, NUL, TAB, …): one of them is
// enough to start a new directive in haproxy.cfg, a new entry in a map file or a new command on
// the Runtime API. Every other Check* function implies it.
func CheckText(field, v string) error {
	if i := controlChar(v); i >= 0 {
		return refuse(field, v, fmt.Sprintf("control character %q at byte %d", v[i], i))
	}
	return nil
}

// CheckHostAddr accepts an IP address (v4 or v6, without a zone) or an RFC 1123 host name: what
// a Marathon task's host, an IP-per-task address or a Mesos agent may hold.
func CheckHostAddr(field, v string) error {
	if a, err := netip.ParseAddr(v); err == nil {
		if a.Zone() != "" {
			return refuse(field, v, "want an IP address without a zone, or a host name")
		}
		return nil
	}
	if !isHostName(v) {
		return refuse(field, v, "want an IP address or an RFC 1123 host name")
	}
	return nil
}

// isHostName reports whether s is an RFC 1123 host name: dot-separated labels of 1 to 63
// letters, digits and hyphens, not starting or ending with a hyphen, 253 bytes at most (a
// trailing dot allowed).
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(isAlnum(c) || c == '-') {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// CheckPort accepts a TCP port, 1 to 65535.
func CheckPort(field string, p int) error {
	if p < 1 || p > 65535 {
		return refuse(field, strconv.Itoa(p), "want a port number (1-65535)")
	}
	return nil
}

// CheckAppID accepts a Marathon app id (or a deployment group key "/<group>"): "/"-separated
// segments of lower-case letters, digits, '-' and '.', each starting and ending with a letter
// or digit — Marathon's own rule, so every real app passes and nothing in an id needs quoting
// in haproxy.cfg or a map file. The leading "/" is optional (relative ids in app definitions).
func CheckAppID(field, id string) error {
	const want = "want an app id: /-separated segments of a-z, 0-9, '-' and '.' (Marathon's rule)"
	if err := CheckText(field, id); err != nil {
		return err
	}
	rest := strings.TrimPrefix(id, "/")
	if rest == "" || len(id) > 512 {
		return refuse(field, id, want)
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || !isLowerAlnum(seg[0]) || !isLowerAlnum(seg[len(seg)-1]) {
			return refuse(field, id, want)
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(isLowerAlnum(c) || c == '-' || c == '.') {
				return refuse(field, id, want)
			}
		}
	}
	return nil
}

// CheckTaskID accepts a Marathon or Mesos task id: letters, digits, '.', '_', '-' and ':'.
// Task ids reach the model (slot owners) and logs, never the configuration, but a CR or LF in
// one would still forge a log line.
func CheckTaskID(field, id string) error {
	if id == "" || len(id) > 512 {
		return refuse(field, id, "want a task id")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(isAlnum(c) || c == '.' || c == '_' || c == '-' || c == ':') {
			return refuse(field, id, "want a task id: letters, digits, '.', '_', '-' and ':'")
		}
	}
	return nil
}

// CheckBindAddr accepts HAPROXY_{n}_BIND_ADDR: exactly one IP address, or "*" (every address,
// the default). Not a list ("127.0.0.1:27080,127.0.0.1" binds the shared HTTP port), no port,
// no "unix@"/"abns@"/"fd@" or other prefix (a socket file can replace a root-owned file), no
// IPv6 zone (an interface name).
func CheckBindAddr(label, v string) error {
	if v == "*" {
		return nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return refuse("label "+label, v, "want one IP address (v4 or v6, no port, no list) or *")
	}
	return nil
}

// bindOptionArgs says how many arguments an allowed bind option takes.
type bindOption struct {
	args   int
	reason string
}

// bindOptions are the HAProxy 2.6 bind options an app may set with HAPROXY_{n}_BIND_OPTIONS
// (configuration manual 5.1). Each only changes how the app's own listener accepts
// connections. TLS is set up with HAPROXY_{n}_SSL_CERT, not here.
var bindOptions = map[string]bindOption{
	"accept-netscaler-cip":  {1, "reads a NetScaler client IP header on the app's own listener"},
	"accept-proxy":          {0, "reads the PROXY protocol header on the app's own listener"},
	"allow-0rtt":            {0, "TLS 0-RTT on the app's own listener"},
	"alpn":                  {1, "TLS ALPN protocols offered by the app's own listener"},
	"backlog":               {1, "listen queue of the app's own socket"},
	"ciphers":               {1, "TLS cipher list of the app's own listener"},
	"ciphersuites":          {1, "TLS 1.3 cipher suites of the app's own listener"},
	"client-sigalgs":        {1, "TLS client signature algorithms"},
	"curves":                {1, "TLS curves"},
	"defer-accept":          {0, "TCP_DEFER_ACCEPT on the app's own socket: delays accept until data arrives, nothing else"},
	"ecdhe":                 {1, "TLS ECDHE curve"},
	"force-sslv3":           {0, "TLS version pin"},
	"force-tlsv10":          {0, "TLS version pin"},
	"force-tlsv11":          {0, "TLS version pin"},
	"force-tlsv12":          {0, "TLS version pin"},
	"force-tlsv13":          {0, "TLS version pin"},
	"maxconn":               {1, "connection limit of the app's own listener"},
	"mss":                   {1, "TCP MSS of the app's own socket"},
	"name":                  {1, "listener name in the app's own stats"},
	"nice":                  {1, "scheduling priority of the app's own listener's tasks"},
	"no-ca-names":           {0, "TLS option"},
	"no-sslv3":              {0, "TLS version switch"},
	"no-tls-tickets":        {0, "TLS option"},
	"no-tlsv10":             {0, "TLS version switch"},
	"no-tlsv11":             {0, "TLS version switch"},
	"no-tlsv12":             {0, "TLS version switch"},
	"no-tlsv13":             {0, "TLS version switch"},
	"npn":                   {1, "TLS NPN protocols"},
	"prefer-client-ciphers": {0, "TLS option"},
	"proto":                 {1, "forces the mux (h2, …) of the app's own listener"},
	"sigalgs":               {1, "TLS signature algorithms"},
	"ssl-max-ver":           {1, "TLS version bound"},
	"ssl-min-ver":           {1, "TLS version bound"},
	"strict-sni":            {0, "TLS option"},
	"tcp-ut":                {1, "TCP user timeout of the app's own socket"},
	"tfo":                   {0, "TCP fast open on the app's own socket"},
	"v4v6":                  {0, "IPv4 and IPv6 on a wildcard IPv6 listener"},
	"v6only":                {0, "IPv6 only on a wildcard IPv6 listener"},
	"verify":                {1, "TLS client certificate verification (none, optional, required)"},
}

// refusedBindOptions are the bind options an app may not set, with the reason. Any option in
// neither list is refused too.
var refusedBindOptions = map[string]string{
	"ssl":                   "TLS comes from HAPROXY_{n}_SSL_CERT, which names the certificate",
	"crt":                   "reads a certificate file: use HAPROXY_{n}_SSL_CERT",
	"crt-list":              "reads a file",
	"ca-file":               "reads a file",
	"ca-verify-file":        "reads a file",
	"ca-sign-file":          "reads a file",
	"ca-sign-pass":          "a secret for a file lodestar does not manage",
	"crl-file":              "reads a file",
	"tls-ticket-keys":       "reads a file",
	"generate-certificates": "signs certificates with a CA file",
	"ca-ignore-err":         "weakens verification set up by files the app cannot choose",
	"crt-ignore-err":        "weakens verification set up by files the app cannot choose",
	"unix":                  "not a bind option; unix sockets create files",
	"mode":                  "sets the permissions of a unix socket file",
	"uid":                   "sets the owner of a unix socket file",
	"gid":                   "sets the group of a unix socket file",
	"user":                  "sets the owner of a unix socket file",
	"group":                 "sets the group of a unix socket file",
	"namespace":             "binds in another network namespace",
	"interface":             "binds to a network interface the operator did not choose",
	"transparent":           "binds to foreign addresses (needs privileges)",
	"process":               "pins the listener to processes: operator tuning",
	"thread":                "pins the listener to threads: operator tuning",
	"id":                    "listener ids are numbered by HAProxy; a fixed one can collide",
	"level":                 "stats socket option: admin access to the Runtime API",
	"severity-output":       "stats socket option",
	"expose-fd":             "stats socket option: hands listening sockets out",
	"quic-cc-algo":          "QUIC is experimental in HAProxy 2.6",
	"quic-force-retry":      "QUIC is experimental in HAProxy 2.6",
}

// CheckBindOptions accepts HAPROXY_{n}_BIND_OPTIONS: space-separated options from the
// allow-list (bindOptions), each with its arguments, no value starting with '-', no quotes,
// escapes, comments or environment expansion.
func CheckBindOptions(label, v string) error {
	field := "label " + label
	if err := CheckText(field, v); err != nil {
		return err
	}
	words := strings.Fields(v)
	return checkBindWords(field, v, words)
}

// checkBindWords checks the options of a bind line (without the address): the words of
// BIND_OPTIONS, or the tail of a FRONTEND_HEAD bind line.
func checkBindWords(field, v string, words []string) error {
	for _, w := range words {
		if strings.ContainsAny(w, "\"'\\#$%{}") {
			return refuse(field, v, fmt.Sprintf("bind option %s: quotes, escapes, '#', '$', '%%' and braces are not allowed", quoteTrunc(w)))
		}
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		opt, ok := bindOptions[w]
		if !ok {
			if why := refusedBindOptions[w]; why != "" {
				return refuse(field, v, fmt.Sprintf("bind option %q refused: %s", w, why))
			}
			return refuse(field, v, fmt.Sprintf("bind option %s is not in the allow-list (docs/label-confinement.md)", quoteTrunc(w)))
		}
		if i+opt.args >= len(words) {
			return refuse(field, v, fmt.Sprintf("bind option %q takes %d argument(s)", w, opt.args))
		}
		for _, a := range words[i+1 : i+1+opt.args] {
			if strings.HasPrefix(a, "-") {
				return refuse(field, v, fmt.Sprintf("bind option %q: argument %s must not start with '-'", w, quoteTrunc(a)))
			}
		}
		i += opt.args
	}
	return nil
}

// CheckVHost accepts one host name of HAPROXY_{n}_VHOST (already lower-cased and split at
// commas): letters, digits, '-', '.', '_' and a leading "*." wildcard. It ends up as an ACL
// value and a map key, so it must not start with '-' (an ACL flag such as -f or -m) and holds
// no space, quote, '#' or '$'.
func CheckVHost(label, h string) error {
	const want = "want a host name (letters, digits, '-', '.', '_', an optional leading *.)"
	field := "label " + label
	if h == "" || len(h) > 253 || h[0] == '-' || h[0] == '.' {
		return refuse(field, h, want)
	}
	body := strings.TrimPrefix(h, "*.")
	if body == "" {
		return refuse(field, h, want)
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; !(isLowerAlnum(c) || c == '-' || c == '.' || c == '_') {
			return refuse(field, h, want)
		}
	}
	return nil
}

// isPathChar reports whether c may appear in a URL path value written into haproxy.cfg
// unquoted: RFC 3986 unreserved and "/:@!*+,=&()%" — no quote, backslash, '#' (a comment in
// haproxy.cfg), '$', ';', braces or space.
func isPathChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-._~/:@!*+,=&()%", c) >= 0
}

// CheckPathACL accepts HAPROXY_{n}_PATH: one or more space-separated path prefixes, each
// starting with '/' — so never an ACL flag ("-f /path/to/fifo" made haproxy -c hang, "-f
// /etc/passwd" reads a file).
func CheckPathACL(label, v string) error {
	field := "label " + label
	if err := CheckText(field, v); err != nil {
		return err
	}
	words := strings.Fields(v)
	if len(words) == 0 {
		return refuse(field, v, "want path prefixes starting with /")
	}
	for _, w := range words {
		if w[0] != '/' {
			return refuse(field, v, fmt.Sprintf("path %s: want a path starting with / (ACL flags such as -f, -m, -i are not allowed)", quoteTrunc(w)))
		}
		for i := 0; i < len(w); i++ {
			if !isPathChar(w[i]) {
				return refuse(field, v, fmt.Sprintf("path %s: character %q is not allowed", quoteTrunc(w), w[i]))
			}
		}
	}
	return nil
}

// CheckAuth accepts the parts of HAPROXY_{n}_AUTH (realm:user:password). The realm is written
// between double quotes, where HAProxy expands "$VAR": it holds no '"', '$', '\' or control
// character (a "${LODESTAR_API_AUTH}" realm was answered in WWW-Authenticate). The user is a
// plain name, the password a crypt(3) hash (its '$' are outside quotes, where nothing expands).
func CheckAuth(label, realm, user, passwd string) error {
	field := "label " + label
	if realm == "" || strings.ContainsAny(realm, "\"$\\%") || controlChar(realm) >= 0 {
		return refuse(field, realm, "realm: want text without '\"', '$', '\\', '%' or control characters")
	}
	if user == "" || len(user) > 64 {
		return refuse(field, user, "user: want a name of letters, digits, '.', '_' and '-'")
	}
	for i := 0; i < len(user); i++ {
		if c := user[i]; !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
			return refuse(field, user, "user: want a name of letters, digits, '.', '_' and '-'")
		}
	}
	if passwd == "" || passwd[0] == '-' {
		return refuse(field, "(password)", "password: want a crypt(3) hash")
	}
	for i := 0; i < len(passwd); i++ {
		if c := passwd[i]; !(isAlnum(c) || strings.IndexByte("./$=+_-", c) >= 0) {
			// The password itself is not quoted back: it is a secret.
			return refuse(field, "(password)", fmt.Sprintf("password: character %q is not in a crypt(3) hash", c))
		}
	}
	return nil
}

// CheckRedirPath accepts HTTP_BACKEND_REDIR: a path starting with '/', or an http(s) URL. It
// is written as a redirect location, which HAProxy reads as a log-format string: '%' is refused
// ("%[env(LODESTAR_API_AUTH)]" leaked the API secret in a Location header), as are quotes,
// '#', '$', braces, backslashes and spaces.
func CheckRedirPath(label, v string) error {
	field := "label " + label
	rest, ok := strings.CutPrefix(v, "/")
	if !ok {
		if r, ok2 := cutScheme(v); ok2 {
			rest, ok = r, true
		}
	}
	if !ok {
		return refuse(field, v, "want a path starting with / or an http(s):// URL")
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !(isPathChar(c) && c != '%' || c == '?') {
			return refuse(field, v, fmt.Sprintf("character %q is not allowed (no '%%', quotes, '#', '$', braces or spaces)", c))
		}
	}
	return nil
}

func cutScheme(v string) (string, bool) {
	for _, p := range []string{"http://", "https://"} {
		if r, ok := strings.CutPrefix(v, p); ok && r != "" && r[0] != '/' {
			return r, true
		}
	}
	return "", false
}

// CheckRewritePath accepts HTTP_BACKEND_PROXYPASS_PATH and HTTP_BACKEND_REVPROXY_PATH: a path
// starting with '/' of letters, digits, '-', '.', '_', '~' and '/'. The built-in templates put
// them into a regular expression and a replacement string, where '(', '\' or '$' would change
// the rewrite.
func CheckRewritePath(label, v string) error {
	field := "label " + label
	if !strings.HasPrefix(v, "/") {
		return refuse(field, v, "want a path starting with /")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(isAlnum(c) || strings.IndexByte("-._~/", c) >= 0) {
			return refuse(field, v, fmt.Sprintf("character %q is not allowed (want letters, digits, '-', '.', '_', '~', '/')", c))
		}
	}
	return nil
}

// CheckNetworkAllowed accepts BACKEND_NETWORK_ALLOWED_ACL: space-separated IP addresses and
// CIDR networks.
func CheckNetworkAllowed(label, v string) error {
	field := "label " + label
	words := strings.Fields(v)
	if len(words) == 0 || strings.ContainsAny(v, "\r\n\x00") {
		return refuse(field, v, "want space-separated IP addresses or CIDR networks")
	}
	for _, w := range words {
		if _, err := netip.ParsePrefix(w); err == nil {
			continue
		}
		if a, err := netip.ParseAddr(w); err != nil || a.Zone() != "" {
			return refuse(field, v, fmt.Sprintf("%s: want an IP address or a CIDR network", quoteTrunc(w)))
		}
	}
	return nil
}

// CheckBalance accepts HAPROXY_{n}_BALANCE: an algorithm of HAProxy 2.6 (balanceAlgorithms)
// with the arguments it takes, as plain words: hdr(<name>), rdp-cookie(<name>), url_param
// <name> [check_post], uri [len n|depth n|whole], random(<draws>). "hash <expr>" is refused: it
// takes a sample expression, where fetches such as env() would run.
func CheckBalance(label, v string) error {
	switch v {
	case "roundrobin", "leastconn", "first", "source", "static-rr", "random", "uri":
		// The default and the plain algorithms: no need to split.
		return nil
	}
	field := "label " + label
	if err := CheckText(field, v); err != nil {
		return err
	}
	words := strings.Fields(v)
	if len(words) == 0 {
		return refuse(field, v, "want a balance algorithm")
	}
	algo, arg, hasArg := strings.Cut(words[0], "(")
	if hasArg && (!strings.HasSuffix(arg, ")") || !isToken(strings.TrimSuffix(arg, ")"))) {
		return refuse(field, v, "want algo(<name>) with a plain name")
	}
	if !slices.Contains(balanceAlgorithms, algo) || algo == "hash" {
		return refuse(field, v, "want one of first, hdr(<name>), leastconn, random, rdp-cookie, roundrobin, source, static-rr, uri, url_param (hash takes a sample expression and is refused)")
	}
	if algo == "hdr" && !hasArg {
		return refuse(field, v, "hdr takes a header name: hdr(<name>)")
	}
	if hasArg && algo != "hdr" && algo != "rdp-cookie" && algo != "random" {
		return refuse(field, v, algo+" takes no (…) argument")
	}
	if len(words) > 1 && algo != "url_param" && algo != "uri" {
		return refuse(field, v, algo+" takes no further arguments")
	}
	for _, w := range words[1:] {
		if !isToken(w) || w[0] == '-' {
			return refuse(field, v, fmt.Sprintf("argument %s: want a plain word", quoteTrunc(w)))
		}
	}
	return nil
}

// isToken reports whether s is a non-empty plain word: letters, digits, '-', '_', '.'.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// CheckMode accepts HAPROXY_{n}_MODE: http or tcp.
func CheckMode(label, v string) error {
	if v != ModeHTTP && v != ModeTCP {
		return refuse("label "+label, v, "want http or tcp")
	}
	return nil
}

// CheckSSLCert accepts HAPROXY_{n}_SSL_CERT: an absolute file path of letters, digits and
// "/._-" (it is written as "ssl crt <path>" on the app's own bind line).
func CheckSSLCert(label, v string) error {
	field := "label " + label
	if !strings.HasPrefix(v, "/") || strings.Contains(v, "/../") || strings.HasSuffix(v, "/..") {
		return refuse(field, v, "want an absolute certificate file path")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(isAlnum(c) || strings.IndexByte("/._-", c) >= 0) {
			return refuse(field, v, fmt.Sprintf("character %q is not allowed in a certificate path", c))
		}
	}
	return nil
}

// aclFlags are the ACL flags (configuration manual 7.1) a routing rule or a confined snippet
// may use; -f and -M read files, -u fixes an id that can collide.
var aclFlags = map[string]string{
	"-i": "case-insensitive match",
	"-m": "match method (one argument)",
	"-n": "no DNS resolution of values",
	"--": "end of flags",
}

// refusedACLFlags are the ACL flags that are refused, with the reason.
var refusedACLFlags = map[string]string{
	"-f": "loads patterns from a file (a FIFO hung haproxy -c, /etc/passwd was read)",
	"-M": "loads a map file",
	"-u": "fixes the ACL's unique id, which can collide with another app's",
}

// aclMatchMethods are the -m arguments allowed: every method of HAProxy 2.6 (7.1.3).
var aclMatchMethods = []string{"found", "bool", "int", "ip", "bin", "len", "str", "sub", "reg", "beg", "end", "dom"}

// CheckRuleACL accepts a bamboo-style routing rule (PUT /api/services), written as
// "acl rule_<backend> <rule>": a fetch with its converters, allowed flags, then plain values.
// Refused: quotes and escapes ("hdr(host) -i \"a" made every later validation fail), '#',
// '$', '%', braces, file flags (-f, -M), env() and lua fetches, map converters.
func CheckRuleACL(field, rule string) error {
	if err := CheckText(field, rule); err != nil {
		return err
	}
	if strings.ContainsAny(rule, "\"'\\#$%{}") {
		return refuse(field, rule, "quotes, escapes, '#', '$', '%' and braces are not allowed")
	}
	words := strings.Fields(rule)
	if len(words) == 0 {
		return refuse(field, rule, "want <fetch> [flags] [values]")
	}
	if err := checkACLBody(words); err != nil {
		return refuse(field, rule, err.Error())
	}
	return nil
}

// checkACLBody checks the words of an ACL definition after its name: the fetch (no env(),
// lua, map or file-reading fetches), flags from aclFlags, values that do not look like flags.
func checkACLBody(words []string) error {
	if err := checkExpr(words[0]); err != nil {
		return err
	}
	if strings.HasPrefix(words[0], "-") {
		return fmt.Errorf("want a fetch, not the flag %s", quoteTrunc(words[0]))
	}
	i := 1
	for ; i < len(words) && strings.HasPrefix(words[i], "-"); i++ {
		f := words[i]
		if why, ok := refusedACLFlags[f]; ok {
			return fmt.Errorf("ACL flag %s refused: %s", f, why)
		}
		if _, ok := aclFlags[f]; !ok {
			return fmt.Errorf("ACL flag %s is not allowed (allowed: -i, -m <method>, -n, --)", quoteTrunc(f))
		}
		if f == "--" {
			i++
			break
		}
		if f == "-m" {
			if i+1 >= len(words) || !slices.Contains(aclMatchMethods, words[i+1]) {
				return errors.New("-m takes a match method (" + strings.Join(aclMatchMethods, ", ") + ")")
			}
			i++
		}
	}
	for _, w := range words[i:] {
		if err := checkExpr(w); err != nil {
			return err
		}
	}
	return nil
}

// CheckTask checks the fields of a Marathon task that reach haproxy.cfg, a map file or a
// Runtime API command: its id, its agent host, its IP addresses and every endpoint's host and
// port. The error names the task and the field. The id only has to be free of control
// characters: it never reaches the configuration, and Mesos task ids of other frameworks
// (and tests) hold '/' and more.
//
// Every build checks every task, so an accepted task costs no allocation: the checks run
// with empty field names, and only a refused task is checked again to name the field.
func CheckTask(t *discovery.Task) error {
	if checkTask(t, false) == nil {
		return nil
	}
	return checkTask(t, true)
}

func checkTask(t *discovery.Task, named bool) error {
	if err := CheckText("task id", t.ID); err != nil {
		return err
	}
	field := func(f string, i int) string {
		if !named {
			return ""
		}
		if i >= 0 {
			return fmt.Sprintf("task %s endpoint %d %s", t.ID, i, f)
		}
		return "task " + t.ID + " " + f
	}
	if t.Host != "" {
		if err := CheckHostAddr(field("host", -1), t.Host); err != nil {
			return err
		}
	}
	for _, a := range t.IPAddresses {
		if err := CheckHostAddr(field("ipAddresses[].ipAddress", -1), a); err != nil {
			return err
		}
	}
	for i, ep := range t.Endpoints {
		if err := CheckHostAddr(field("host", i), ep.Host); err != nil {
			return err
		}
		if err := CheckPort(field("port", i), ep.Port); err != nil {
			return err
		}
	}
	return nil
}

// CheckPortLabels checks the values of one port's labels that the templates write into
// haproxy.cfg (ParseLabels has read them already; this holds them to their types). Template
// labels are not checked here: ConfineSnippet checks what they render to.
//
// Like CheckTask, it runs with empty label names first (every build checks every port), and
// names the label only for a refused value.
func CheckPortLabels(pl *PortLabels) error {
	if checkPortLabels(pl, false) == nil {
		return nil
	}
	return checkPortLabels(pl, true)
}

func checkPortLabels(pl *PortLabels, named bool) error {
	label := func(suffix string) string {
		if !named {
			return ""
		}
		return PortLabel(pl.Index, suffix)
	}
	for _, h := range pl.VHosts {
		if err := CheckVHost(label(SuffixVHost), h); err != nil {
			return err
		}
	}
	checks := []struct {
		set   bool
		check func() error
	}{
		{pl.Path != "", func() error { return CheckPathACL(label(SuffixPath), pl.Path) }},
		{pl.Mode != "", func() error { return CheckMode(label(SuffixMode), pl.Mode) }},
		{pl.Balance != "", func() error { return CheckBalance(label(SuffixBalance), pl.Balance) }},
		{pl.SSLCert != "", func() error { return CheckSSLCert(label(SuffixSSLCert), pl.SSLCert) }},
		{pl.BindOptions != "", func() error { return CheckBindOptions(label(SuffixBindOptions), pl.BindOptions) }},
		{pl.BindAddr != "", func() error { return CheckBindAddr(label(SuffixBindAddr), pl.BindAddr) }},
		{pl.Port != 0, func() error { return CheckPort(prefixed("label ", label(SuffixPort)), pl.Port) }},
		{pl.Auth != nil, func() error {
			return CheckAuth(label(SuffixAuth), pl.Auth.Realm, pl.Auth.User, pl.Auth.Password)
		}},
		{pl.ProxyPassPath != "", func() error { return CheckRewritePath(label(SuffixProxyPassPath), pl.ProxyPassPath) }},
		{pl.RevProxyPath != "", func() error { return CheckRewritePath(label(SuffixRevProxyPath), pl.RevProxyPath) }},
		{pl.RedirPath != "", func() error { return CheckRedirPath(label(SuffixRedirPath), pl.RedirPath) }},
		{len(pl.NetworkAllowed) > 0, func() error {
			return CheckNetworkAllowed(label(SuffixNetworkAllowed), strings.Join(pl.NetworkAllowed, " "))
		}},
	}
	for _, c := range checks {
		if c.set {
			if err := c.check(); err != nil {
				return err
			}
		}
	}
	return nil
}
