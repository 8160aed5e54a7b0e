package haproxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The allow- and deny-lists of confined per-app templates, from HAProxy 2.6's configuration
// manual (sections 3, 4.1 and 4.2, 5.1, 5.2, 7). Each entry carries a one-line reason; the
// lists are summarised for app teams in docs/label-confinement.md (a test checks that every
// name here appears there). What no list names is refused: a keyword HAProxy adds later is not
// allowed until someone decides it is safe.

// sectionKeywords open a section: a confined snippet never opens one, except the head
// templates, which open exactly their own section with the name lodestar gives it.
var sectionKeywords = map[string]string{
	"global":         "process-wide settings (daemon, stats socket, user) are the operator's",
	"defaults":       "would change every later section's defaults",
	"frontend":       "would add a listener outside the app's sections",
	"backend":        "would add a backend outside the app's sections",
	"listen":         "would add a listener and backend outside the app's sections",
	"userlist":       "userlists are written by lodestar from HAPROXY_{n}_AUTH",
	"peers":          "stick-table replication talks to other hosts",
	"resolvers":      "DNS resolution settings are the operator's",
	"program":        "runs a program under HAProxy's master",
	"cache":          "caches are shared between every proxy that uses them",
	"mailers":        "sends mail",
	"ring":           "log rings are the operator's",
	"http-errors":    "error pages are read from files",
	"fcgi-app":       "FastCGI applications name socket files",
	"log-forward":    "a syslog relay is the operator's",
	"namespace_list": "network namespaces are the operator's",
	"dynamic-update": "a section of the device detection modules",
	"spoe-agent":     "SPOE configuration is the operator's",
	"spoe-message":   "SPOE configuration is the operator's",
	"spoe-group":     "SPOE configuration is the operator's",
}

// refusedDirectives are directives refused in every confined section, with the reason.
var refusedDirectives = map[string]string{
	"daemon":                      "HAProxy runs in the foreground under lodestar's supervisor",
	"master-worker":               "process-level",
	"stats":                       "stats pages and sockets expose every app's servers, and admin level changes them",
	"chroot":                      "process-level",
	"user":                        "process-level (outside a userlist)",
	"group":                       "process-level (outside a userlist)",
	"uid":                         "process-level",
	"gid":                         "process-level",
	"setenv":                      "changes HAProxy's environment",
	"presetenv":                   "changes HAProxy's environment",
	"resetenv":                    "changes HAProxy's environment",
	"unsetenv":                    "changes HAProxy's environment",
	"lua-load":                    "runs Lua code",
	"lua-load-per-thread":         "runs Lua code",
	"lua-prepend-path":            "Lua search path",
	"external-check":              "runs a program as HAProxy's user",
	"insecure-fork-wanted":        "allows forking programs",
	"insecure-setuid-wanted":      "allows setuid programs",
	"pidfile":                     "writes a file",
	"node":                        "process-level",
	"nbthread":                    "process-level",
	"cpu-map":                     "process-level",
	"server":                      "servers come only from lodestar's slots (BACKEND_SERVER_OPTIONS)",
	"server-template":             "servers come only from lodestar's slots",
	"use-server":                  "would pick a server outside lodestar's slots",
	"dispatch":                    "sends traffic to an address lodestar did not choose",
	"source":                      "binds outgoing connections to an address or interface",
	"bind":                        "the app's one bind line is written by FRONTEND_HEAD on its own address and port",
	"id":                          "lodestar numbers backends itself; a fixed id can collide with another app's",
	"errorfile":                   "reads a file",
	"load-server-state-from-file": "reads a file",
	"server-state-file-name":      "names a file",
	"email-alert":                 "sends mail",
	"use-fcgi-app":                "FastCGI applications name socket files",
	"ca-base":                     "file path base",
	"crt-base":                    "file path base",
	".if":                         "conditional blocks read the environment",
	".elif":                       "conditional blocks read the environment",
	".else":                       "conditional blocks read the environment",
	".endif":                      "conditional blocks read the environment",
	".diag":                       "diagnostics can print the environment",
	".notice":                     "diagnostics can print the environment",
	".warning":                    "diagnostics can print the environment",
	".alert":                      "diagnostics can print the environment",
}

// sectionSet says where a directive may appear.
type sectionSet uint8

const (
	inBackend sectionSet = 1 << iota
	inFrontend
	inBoth = inBackend | inFrontend
)

// proxyDirective is an allowed directive of the app's own backend or frontend.
type proxyDirective struct {
	in     sectionSet
	reason string
	// check, when set, checks the arguments.
	check func(c *confiner, args []string) error
}

// proxyDirectives are the directives allowed in the app's own backend and frontend.
var proxyDirectives map[string]proxyDirective

func init() {
	proxyDirectives = map[string]proxyDirective{
		"acl":                   {inBoth, "ACLs are local to the proxy", aclDirective},
		"balance":               {inBackend, "load-balancing algorithm (HAPROXY_{n}_BALANCE's list)", balanceDirective},
		"mode":                  {inBoth, "http or tcp", modeDirective},
		"hash-type":             {inBackend, "hashing of the balance algorithm", nil},
		"hash-balance-factor":   {inBackend, "bounded-load consistent hashing", nil},
		"cookie":                {inBackend, "persistence cookie of the app's own backend", nil},
		"dynamic-cookie-key":    {inBackend, "persistence cookie key", nil},
		"option":                {inBoth, "from the option allow-list", func(_ *confiner, a []string) error { return checkOption(a) }},
		"timeout":               {inBoth, "from the timeout allow-list", timeoutDirective},
		"http-request":          {inBoth, "from the HTTP action allow-list", func(c *confiner, a []string) error { return c.httpRule(a) }},
		"http-response":         {inBoth, "from the HTTP action allow-list", func(c *confiner, a []string) error { return c.httpRule(a) }},
		"http-after-response":   {inBoth, "from the HTTP action allow-list", func(c *confiner, a []string) error { return c.httpRule(a) }},
		"http-error":            {inBoth, "error responses from strings, not files", func(_ *confiner, a []string) error { return checkRefusedArgs(a, "http-error") }},
		"http-check":            {inBackend, "health checks of the app's own servers", checkDirective},
		"tcp-check":             {inBackend, "health checks of the app's own servers", checkDirective},
		"tcp-request":           {inBoth, "from the TCP action allow-list", func(c *confiner, a []string) error { return c.tcpRule(a) }},
		"tcp-response":          {inBackend, "from the TCP action allow-list", func(c *confiner, a []string) error { return c.tcpRule(a) }},
		"retries":               {inBackend, "connection retries", nil},
		"retry-on":              {inBackend, "retry conditions", nil},
		"redispatch":            {inBackend, "redispatch after failed retries", nil},
		"fullconn":              {inBackend, "dynamic maxconn", nil},
		"maxconn":               {inFrontend, "connection limit of the app's own frontend", nil},
		"backlog":               {inFrontend, "listen queue of the app's own frontend", nil},
		"rate-limit":            {inFrontend, "session rate of the app's own frontend", nil},
		"default-server":        {inBackend, "defaults of the app's own servers, from the server option allow-list", func(_ *confiner, a []string) error { return checkServerOptions(a[1:]) }},
		"compression":           {inBoth, "HTTP compression", nil},
		"filter":                {inBoth, "only the compression filter (spoe and trace read files)", filterDirective},
		"stick-table":           {inBoth, "the proxy's own table (no peers)", stickTableDirective},
		"stick":                 {inBackend, "stickiness on the proxy's own table", noTableDirective},
		"persist":               {inBackend, "rdp-cookie persistence", nil},
		"force-persist":         {inBoth, "persistence override", nil},
		"ignore-persist":        {inBoth, "persistence override", nil},
		"http-reuse":            {inBackend, "connection reuse to the app's own servers", nil},
		"http-send-name-header": {inBackend, "sends the server name to the app's own servers", nil},
		"log":                   {inBoth, "only \"log global\" (a log target can be a socket file)", logDirective},
		"log-format":            {inBoth, "log line format", nil},
		"log-format-sd":         {inBoth, "structured-data log format", nil},
		"log-tag":               {inBoth, "log tag", nil},
		"description":           {inBoth, "free text", nil},
		"enabled":               {inBoth, "starts the proxy enabled", nil},
		"disabled":              {inBoth, "starts the app's own proxy disabled", nil},
		"errorfiles":            {inBoth, "error pages from an http-errors section the operator declared", nil},
		"errorloc":              {inBoth, "error redirect to a URL", nil},
		"errorloc302":           {inBoth, "error redirect to a URL", nil},
		"errorloc303":           {inBoth, "error redirect to a URL", nil},
		"unique-id-format":      {inBoth, "request id format", nil},
		"unique-id-header":      {inBoth, "request id header", nil},
		"capture":               {inFrontend, "captures headers and cookies into the logs", nil},
		"declare":               {inFrontend, "declares capture slots", nil},
		"monitor-uri":           {inFrontend, "health URI of the app's own frontend", nil},
		"monitor":               {inFrontend, "monitor fail conditions", nil},
		"use_backend":           {inFrontend, "only the app's own backends", useBackendDirective},
		"default_backend":       {inFrontend, "only the app's own backends", useBackendDirective},
		"redirect":              {inBoth, "HTTP redirects", func(_ *confiner, a []string) error { return checkRefusedArgs(a, "redirect") }},
		"max-keep-alive-queue":  {inBackend, "keep-alive queue bound", nil},
		"max-session-srv-conns": {inFrontend, "per-session server connection bound", nil},
		"srvtcpka-cnt":          {inBackend, "TCP keep-alive tuning", nil},
		"srvtcpka-idle":         {inBackend, "TCP keep-alive tuning", nil},
		"srvtcpka-intvl":        {inBackend, "TCP keep-alive tuning", nil},
		"clitcpka-cnt":          {inFrontend, "TCP keep-alive tuning", nil},
		"clitcpka-idle":         {inFrontend, "TCP keep-alive tuning", nil},
		"clitcpka-intvl":        {inFrontend, "TCP keep-alive tuning", nil},
	}
}

func aclDirective(c *confiner, args []string) error {
	if len(args) < 3 {
		return errors.New("want acl <name> <fetch> [flags] [values]")
	}
	return c.checkACLDef(args[2:])
}

func balanceDirective(c *confiner, args []string) error {
	return CheckBalance(c.scope.Label, strings.Join(args[1:], " "))
}

func modeDirective(_ *confiner, args []string) error {
	if len(args) != 2 || args[1] != ModeHTTP && args[1] != ModeTCP {
		return errors.New("mode is http or tcp")
	}
	return nil
}

func logDirective(_ *confiner, args []string) error {
	if len(args) != 2 || args[1] != "global" {
		return errors.New("only \"log global\" (or \"no log\"): a log target can be a socket file or another host")
	}
	return nil
}

func filterDirective(_ *confiner, args []string) error {
	if len(args) < 2 || args[1] != "compression" {
		return errors.New("only \"filter compression\": the spoe, trace, cache, fcgi-app and bwlim filters name files or shared state")
	}
	return nil
}

func stickTableDirective(_ *confiner, args []string) error {
	if slices.Contains(args, "peers") {
		return errors.New("stick-table peers refused: replication talks to other hosts")
	}
	return nil
}

func noTableDirective(_ *confiner, args []string) error {
	if slices.Contains(args, "table") {
		return errors.New("\"table\" refused: another proxy's stick table may belong to another app")
	}
	return nil
}

func useBackendDirective(c *confiner, args []string) error {
	if len(args) < 2 || !c.ownBackend(args[1]) {
		return fmt.Errorf("%s may only name the app's own backend (%s)", args[0], c.scope.Backend)
	}
	return nil
}

func checkDirective(_ *confiner, args []string) error {
	for _, a := range args[1:] {
		switch a {
		case "addr":
			return errors.New("checks go to the app's own servers: \"addr\" is refused")
		case "lua", "spop-check":
			return fmt.Errorf("%q refused", a)
		}
	}
	return nil
}

// timeouts are the timeouts an app may set on its own proxies.
var timeouts = []string{"check", "client", "client-fin", "connect", "http-keep-alive", "http-request", "queue",
	"server", "server-fin", "tarpit", "tunnel"}

func timeoutDirective(_ *confiner, args []string) error {
	if len(args) != 3 || !slices.Contains(timeouts, args[1]) {
		return fmt.Errorf("want timeout <%s> <time>", strings.Join(timeouts, "|"))
	}
	return nil
}

// allowedOptions are the "option" keywords an app may set (4.2): each changes only how its
// own proxy handles its own traffic or checks its own servers.
var allowedOptions = map[string]string{
	"abortonclose": "", "accept-invalid-http-request": "", "accept-invalid-http-response": "",
	"allbackups": "", "checkcache": "", "clitcpka": "", "contstats": "", "disable-h2-upgrade": "",
	"dontlog-normal": "", "dontlognull": "", "forwardfor": "", "h1-case-adjust-bogus-client": "",
	"h1-case-adjust-bogus-server": "", "http-buffer-request": "", "http-ignore-probes": "",
	"http-keep-alive": "", "http-no-delay": "", "http-pretend-keepalive": "",
	"http-restrict-req-hdr-names": "", "http-server-close": "", "http-use-proxy-header": "",
	"httpchk": "", "httpclose": "", "httplog": "", "idle-close-on-response": "",
	"independent-streams": "", "ldap-check": "", "log-health-checks": "", "log-separate-errors": "",
	"logasap": "", "mysql-check": "", "nolinger": "", "originalto": "", "persist": "",
	"pgsql-check": "", "prefer-last-server": "", "redis-check": "", "redispatch": "",
	"smtpchk": "", "socket-stats": "", "splice-auto": "", "splice-request": "", "splice-response": "",
	"srvtcpka": "", "ssl-hello-chk": "", "tcp-check": "", "tcp-smart-accept": "",
	"tcp-smart-connect": "", "tcpka": "", "tcplog": "",
}

// refusedOptions are options refused with the reason.
var refusedOptions = map[string]string{
	"external-check": "runs a program as HAProxy's user",
	"http_proxy":     "connects to whatever address a request names (lodestar's own API included)",
	"transparent":    "connects to the client's original destination instead of the app's servers",
	"spop-check":     "SPOE agents are the operator's",
}

func checkOption(args []string) error {
	if len(args) < 2 {
		return errors.New("option needs a name")
	}
	if why, ok := refusedOptions[args[1]]; ok {
		return fmt.Errorf("option %s refused: %s", args[1], why)
	}
	if _, ok := allowedOptions[args[1]]; !ok {
		return fmt.Errorf("option %s is not in the allow-list", quoteTrunc(args[1]))
	}
	return nil
}

// httpActions are the http-request, http-response and http-after-response actions allowed
// (4.2): they change or answer the app's own requests and responses.
var httpActions = map[string]bool{
	"add-header": true, "allow": true, "auth": true, "capture": true, "del-header": true, "deny": true,
	"disable-l7-retry": true, "early-hint": true, "normalize-uri": true, "redirect": true, "reject": true,
	"replace-header": true, "replace-path": true, "replace-pathq": true, "replace-uri": true,
	"replace-value": true, "return": true, "sc-inc-gpc": true, "sc-inc-gpc0": true, "sc-inc-gpc1": true,
	"sc-set-gpt": true, "sc-set-gpt0": true, "set-header": true, "set-log-level": true, "set-method": true,
	"set-nice": true, "set-path": true, "set-pathq": true, "set-priority-class": true,
	"set-priority-offset": true, "set-query": true, "set-src": true, "set-src-port": true,
	"set-status": true, "set-timeout": true, "set-tos": true, "set-uri": true, "set-var": true,
	"set-var-fmt": true, "silent-drop": true, "strict-mode": true, "tarpit": true, "track-sc0": true,
	"track-sc1": true, "track-sc2": true, "unset-var": true, "wait-for-body": true,
	"wait-for-handshake": true,
}

// refusedActions are HTTP and TCP actions refused with the reason.
var refusedActions = map[string]string{
	"add-acl":             "changes an ACL file that other proxies may read",
	"del-acl":             "changes an ACL file that other proxies may read",
	"set-map":             "changes a map file (the shared domain2backend.map routes every app)",
	"del-map":             "changes a map file (the shared domain2backend.map routes every app)",
	"use-service":         "services (prometheus-exporter, Lua) expose every app or run code",
	"do-resolve":          "DNS resolvers are the operator's",
	"set-dst":             "sends the connection to another destination",
	"set-dst-port":        "sends the connection to another destination",
	"set-mark":            "a firewall mark can change host routing",
	"send-spoe-group":     "SPOE agents are the operator's",
	"cache-use":           "a cache is shared by every proxy that uses it",
	"cache-store":         "a cache is shared by every proxy that uses it",
	"set-bandwidth-limit": "bandwidth filters are the operator's",
}

// tcpActions are the tcp-request and tcp-response actions allowed.
var tcpActions = map[string]bool{
	"accept": true, "reject": true, "close": true, "capture": true, "expect-proxy": true,
	"expect-netscaler-cip": true, "sc-inc-gpc": true, "sc-inc-gpc0": true, "sc-inc-gpc1": true,
	"sc-set-gpt": true, "sc-set-gpt0": true, "set-log-level": true, "set-nice": true,
	"set-priority-class": true, "set-priority-offset": true, "set-src": true, "set-src-port": true,
	"set-tos": true, "set-var": true, "set-var-fmt": true, "silent-drop": true, "switch-mode": true,
	"track-sc0": true, "track-sc1": true, "track-sc2": true, "unset-var": true,
}

// tcpRuleSets are the tcp-request/tcp-response rule sets.
var tcpRuleSets = []string{"connection", "session", "content", "inspect-delay"}

// httpRule checks "http-request|http-response|http-after-response <action> …".
func (c *confiner) httpRule(args []string) error {
	if len(args) < 2 {
		return errors.New("want an action")
	}
	if err := checkAction(args[1], httpActions); err != nil {
		return err
	}
	return checkRefusedArgs(args, args[1])
}

// tcpRule checks "tcp-request|tcp-response <set> <action> …".
func (c *confiner) tcpRule(args []string) error {
	if len(args) < 3 || !slices.Contains(tcpRuleSets, args[1]) {
		return fmt.Errorf("want %s <%s> …", args[0], strings.Join(tcpRuleSets, "|"))
	}
	if args[1] == "inspect-delay" {
		return nil
	}
	if err := checkAction(args[2], tcpActions); err != nil {
		return err
	}
	return checkRefusedArgs(args, args[2])
}

// checkAction checks an action word (with its "(…)" parameter) against allowed.
func checkAction(action string, allowed map[string]bool) error {
	name, param, hasParam := strings.Cut(action, "(")
	if hasParam && (!strings.HasSuffix(param, ")") || len(param) < 2) {
		return fmt.Errorf("action %s: want %s(<name>)", quoteTrunc(action), name)
	}
	if strings.HasPrefix(name, "lua.") {
		return fmt.Errorf("action %s refused: runs Lua code", quoteTrunc(action))
	}
	if why, ok := refusedActions[name]; ok {
		return fmt.Errorf("action %s refused: %s", name, why)
	}
	if !allowed[name] {
		return fmt.Errorf("action %s is not in the allow-list", quoteTrunc(name))
	}
	switch name {
	case "set-var", "set-var-fmt", "unset-var":
		if strings.HasPrefix(param, "proc.") {
			return fmt.Errorf("action %s refused: proc variables are shared by every proxy", quoteTrunc(action))
		}
	}
	return nil
}

// refusedArgs are words refused anywhere in a rule's arguments: they read files or reach
// another proxy's table.
var refusedArgs = map[string]string{
	"file":      "reads a file",
	"lf-file":   "reads a file",
	"errorfile": "reads a file",
	"table":     "another proxy's stick table may belong to another app",
}

func checkRefusedArgs(args []string, what string) error {
	for _, a := range args[1:] {
		if a == "if" || a == "unless" {
			return nil
		}
		if why, ok := refusedArgs[a]; ok {
			return fmt.Errorf("%s: %q refused: %s", what, a, why)
		}
	}
	return nil
}

// serverOptions are the server options an app may use (5.2), with how many arguments each
// takes: they tune the connection to the app's own task.
var serverOptions = map[string]int{
	"agent-check": 0, "agent-inter": 1, "agent-port": 1, "agent-send": 1, "allow-0rtt": 0, "alpn": 1,
	"backup": 0, "check": 0, "check-alpn": 1, "check-proto": 1, "check-send-proxy": 0, "check-sni": 1,
	"check-ssl": 0, "ciphers": 1, "ciphersuites": 1, "client-sigalgs": 1, "cookie": 1, "curves": 1,
	"disabled": 0, "downinter": 1, "enabled": 0, "error-limit": 1, "fall": 1, "fastinter": 1,
	"force-sslv3": 0, "force-tlsv10": 0, "force-tlsv11": 0, "force-tlsv12": 0, "force-tlsv13": 0,
	"inter": 1, "max-reuse": 1, "maxconn": 1, "maxqueue": 1, "minconn": 1, "no-agent-check": 0,
	"no-backup": 0, "no-check": 0, "no-check-ssl": 0, "no-send-proxy": 0, "no-send-proxy-v2": 0,
	"no-ssl": 0, "no-ssl-reuse": 0, "no-sslv3": 0, "no-tfo": 0, "no-tls-tickets": 0, "no-tlsv10": 0,
	"no-tlsv11": 0, "no-tlsv12": 0, "no-tlsv13": 0, "no-verifyhost": 0, "npn": 1, "observe": 1,
	"on-error": 1, "on-marked-down": 1, "on-marked-up": 1, "pool-low-conn": 1, "pool-max-conn": 1,
	"pool-purge-delay": 1, "port": 1, "proto": 1, "proxy-v2-options": 1, "redir": 1, "rise": 1,
	"send-proxy": 0, "send-proxy-v2": 0, "send-proxy-v2-ssl": 0, "send-proxy-v2-ssl-cn": 0,
	"sigalgs": 1, "slowstart": 1, "sni": 1, "ssl": 0, "ssl-max-ver": 1, "ssl-min-ver": 1, "tfo": 0,
	"tls-tickets": 0, "verify": 1, "verifyhost": 1, "weight": 1, "ws": 1,
}

// refusedServerOptions are server options refused with the reason.
var refusedServerOptions = map[string]string{
	"addr":             "health checks go to another address (lodestar's own API, another app)",
	"agent-addr":       "agent checks go to another address",
	"source":           "binds outgoing connections to an address or interface",
	"usesrc":           "spoofs client addresses (transparent proxy)",
	"interface":        "sends through an interface the operator did not choose",
	"namespace":        "connects from another network namespace",
	"socks4":           "connects through a proxy the operator did not choose",
	"check-via-socks4": "checks through a proxy the operator did not choose",
	"resolvers":        "DNS resolvers are the operator's; servers are the task addresses",
	"resolve-prefer":   "DNS resolution is not used for task addresses",
	"resolve-net":      "DNS resolution is not used for task addresses",
	"resolve-opts":     "DNS resolution is not used for task addresses",
	"init-addr":        "the address is the task's",
	"crt":              "reads a certificate file",
	"ca-file":          "reads a file",
	"crl-file":         "reads a file",
	"id":               "server ids are numbered by HAProxy; a fixed one can collide",
	"track":            "tracks another proxy's server, which may belong to another app",
	"shard":            "peers sharding is the operator's",
}

// checkServerOptions checks server options: every word is an allowed option or one of its
// arguments, and no argument starts with '-'.
func checkServerOptions(words []string) error {
	for i := 0; i < len(words); i++ {
		w := words[i]
		if why, ok := refusedServerOptions[w]; ok {
			return fmt.Errorf("server option %q refused: %s", w, why)
		}
		n, ok := serverOptions[w]
		if !ok {
			return fmt.Errorf("server option %s is not in the allow-list", quoteTrunc(w))
		}
		if i+n >= len(words) {
			return fmt.Errorf("server option %q takes %d argument(s)", w, n)
		}
		for _, a := range words[i+1 : i+1+n] {
			if strings.HasPrefix(a, "-") {
				return fmt.Errorf("server option %q: argument %s must not start with '-'", w, quoteTrunc(a))
			}
		}
		i += n
	}
	return nil
}
