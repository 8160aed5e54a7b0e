package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// marathon-lb's entry point. `lodestar marathon-lb [sse|poll] ARGS` (and `lodestar sse ARGS`,
// `lodestar poll ARGS`, the form marathon-lb's image is started with) takes marathon_lb.py's
// command line and its image's environment, translates them into serve's (render's with
// --dry) flags, and runs that. The translation is a pure function of the arguments and the
// environment (translateMarathonLB), so every flag is table-tested; docs/migrating.md lists
// what each one becomes.

// mlbKind says how a marathon_lb.py flag takes its value (argparse's nargs).
type mlbKind int

const (
	mlbSwitch mlbKind = iota // store_true: no value
	mlbValue                 // one value: --flag V or --flag=V
	mlbMulti                 // nargs="+": --flag A B C, up to the next word starting with "-"
)

// mlbFlag is one flag of marathon_lb.py and what lodestar does with it.
type mlbFlag struct {
	names []string // long name first, then the short one, if any
	kind  mlbKind
	// apply records the flag's effect on the plan; vals holds its values (none for a switch).
	apply func(p *mlbPlan, name string, vals []string) error
}

// mlbPlan is what marathon-lb's command line and environment become.
type mlbPlan struct {
	command string   // "serve", or "render" with --dry
	args    []string // serve's (render's) flags
	// warnings are one line each: a flag or variable accepted without effect, and why.
	warnings []string
	// notes are said at start: the choices made for the operator (maxconn).
	notes []string
	// certs are the PEM files made from HAPROXY_SSL_CERT and HAPROXY_SSL_CERT0…100.
	certs []certFile
	help  bool

	marathon    []string
	groups      []string
	sslCerts    []string // from --ssl-certs
	sslCertsSet bool
	healthCheck bool
}

// certFile is a certificate (with its key) to write before lodestar starts.
type certFile struct {
	path, pem, from string
}

func (p *mlbPlan) warn(format string, a ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, a...))
}

// pass adds a lodestar flag to the plan.
func (p *mlbPlan) pass(name, value string) { p.args = append(p.args, "--"+name+"="+value) }

// mapTo is an apply that passes the flag's value on as lodestar's --name.
func mapTo(name string) func(*mlbPlan, string, []string) error {
	return func(p *mlbPlan, _ string, v []string) error {
		if len(v) == 0 {
			p.pass(name, "true")
			return nil
		}
		p.pass(name, v[0])
		return nil
	}
}

// noEffect is an apply that warns, saying why the flag has no effect under lodestar.
func noEffect(why string) func(*mlbPlan, string, []string) error {
	return func(p *mlbPlan, name string, _ []string) error {
		p.warn("%s: %s", name, why)
		return nil
	}
}

// positiveInt checks an integer flag's value, as argparse's type=int does.
func positiveInt(then func(*mlbPlan, string, []string) error) func(*mlbPlan, string, []string) error {
	return func(p *mlbPlan, name string, v []string) error {
		if _, err := strconv.Atoi(v[0]); err != nil {
			return fmt.Errorf("invalid int value %q", v[0])
		}
		return then(p, name, v)
	}
}

// mlbFlags is marathon_lb.py's whole command line (marathon_lb.py and common.py's parsers).
// docs/migrating.md holds the same list as a table; a test keeps the two in step.
var mlbFlags = []mlbFlag{
	{[]string{"--longhelp"}, mlbSwitch, func(p *mlbPlan, _ string, _ []string) error { p.help = true; return nil }},
	{[]string{"--marathon", "-m"}, mlbMulti, func(p *mlbPlan, _ string, v []string) error { p.marathon = append(p.marathon, v...); return nil }},
	{[]string{"--haproxy-config"}, mlbValue, mapTo("haproxy-config")},
	{[]string{"--group"}, mlbValue, func(p *mlbPlan, _ string, v []string) error { p.groups = append(p.groups, v[0]); return nil }},
	{[]string{"--command", "-c"}, mlbValue, noEffect("lodestar runs HAProxy in master-worker mode and reloads it itself; the reload command is not run")},
	{[]string{"--max-reload-retries"}, mlbValue, positiveInt(noEffect("a reload HAProxy refuses is retried without the app it blames, at once; there is no retry count"))},
	{[]string{"--reload-interval"}, mlbValue, positiveInt(noEffect("reloads are coalesced by --reload-min-wait/--reload-max-wait instead"))},
	{[]string{"--strict-mode"}, mlbSwitch, mapTo("strict-mode")},
	{[]string{"--sse", "-s"}, mlbSwitch, func(*mlbPlan, string, []string) error { return nil }}, // lodestar always follows /v2/events: honoured as it is
	{[]string{"--archive-versions"}, mlbValue, positiveInt(noEffect("lodestar keeps no archive of old configurations; the API serves the current one"))},
	{[]string{"--health-check", "-H"}, mlbSwitch, func(p *mlbPlan, _ string, _ []string) error { p.healthCheck = true; return nil }},
	{[]string{"--lru-cache-capacity"}, mlbValue, positiveInt(noEffect("lodestar keeps every task in its registry; there is no cache to size"))},
	{[]string{"--haproxy-map"}, mlbSwitch, mapTo("haproxy-map")},
	{[]string{"--dont-bind-http-https"}, mlbSwitch, mapTo("dont-bind-http-https")},
	{[]string{"--group-https-by-vhost"}, mlbSwitch, noEffect("lodestar's shared HTTPS frontend always routes by SNI first, then by Host")},
	{[]string{"--ssl-certs"}, mlbValue, func(p *mlbPlan, _ string, v []string) error {
		p.sslCertsSet = true
		p.sslCerts = append(p.sslCerts, splitComma(v[0])...)
		return nil
	}},
	{[]string{"--skip-validation"}, mlbSwitch, noEffect("lodestar always checks a configuration with haproxy -c before HAProxy loads it, as a bad one would stop every route")},
	{[]string{"--skip-config-cleanup"}, mlbSwitch, noEffect("lodestar always leaves out the apps HAProxy rejects, so that the others keep their routes")},
	{[]string{"--dry", "-d"}, mlbSwitch, func(p *mlbPlan, _ string, _ []string) error { p.command = "render"; return nil }},
	{[]string{"--min-serv-port-ip-per-task"}, mlbValue, positiveInt(mapTo("min-serv-port-ip-per-task"))},
	{[]string{"--max-serv-port-ip-per-task"}, mlbValue, positiveInt(mapTo("max-serv-port-ip-per-task"))},
	{[]string{"--max-backoff"}, mlbValue, positiveInt(noEffect("lodestar's reconnect backoff to Marathon is capped at 30 s"))},
	{[]string{"--syslog-socket"}, mlbValue, syslogSocket},
	{[]string{"--log-format"}, mlbValue, noEffect("lodestar logs structured lines (text or json, lodestar's own --log-format), not a Python format")},
	{[]string{"--log-level"}, mlbValue, logLevel},
	{[]string{"--marathon-auth-credential-file"}, mlbValue, mapTo("marathon-auth-credential-file")},
	{[]string{"--auth-credentials"}, mlbValue, mapTo("marathon-auth")},
	{[]string{"--dcos-auth-credentials"}, mlbValue, noEffect("DC/OS service-account login is not supported; use --auth-credentials (Marathon basic auth)")},
	{[]string{"--marathon-ca-cert"}, mlbValue, mapTo("marathon-ca-cert")},
}

// syslogSocket: /dev/null (what marathon-lb's image passes) turns syslog off, which lodestar
// never uses; any other socket warns, as lodestar logs to stderr only.
func syslogSocket(p *mlbPlan, _ string, v []string) error {
	if v[0] != "/dev/null" {
		p.warn("--syslog-socket %s: lodestar logs to stderr only (the container's log); nothing is sent to syslog", v[0])
	}
	return nil
}

// logLevel maps Python's level names onto lodestar's.
func logLevel(p *mlbPlan, _ string, v []string) error {
	level := map[string]string{"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "WARN": "warn", "ERROR": "error", "CRITICAL": "error"}[strings.ToUpper(v[0])]
	if level == "" {
		return fmt.Errorf("--log-level %q: want DEBUG, INFO, WARNING, ERROR or CRITICAL", v[0])
	}
	p.pass("log-level", level)
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func findMLBFlag(name string) *mlbFlag {
	for i := range mlbFlags {
		for _, n := range mlbFlags[i].names {
			if n == name {
				return &mlbFlags[i]
			}
		}
	}
	return nil
}

// marathonLBCommand is `lodestar marathon-lb`; run also sends `lodestar sse|poll …` here.
func marathonLBCommand(ctx context.Context, stdout, stderr io.Writer, getenv func(string) string) *command {
	c := newCommand("marathon-lb", "Run as marathon-lb does, from its command line and its image's environment.", "[sse|poll] [marathon_lb.py flags] [lodestar serve flags]", `
Takes marathon_lb.py's command line, argument for argument (-m A B, --group, --dry,
--ssl-certs, --health-check, …), and the environment of marathon-lb's image (HAPROXY_SSL_CERT,
HAPROXY_SSL_CERT0…100, PORTS, MARATHON_USER/MARATHON_PASSWORD, HAPROXY_<TEMPLATE>, …), with
marathon-lb's defaults: health checks off unless --health-check, binds :80 :443 :9090 :9091,
maxconn 50000 where the open-files limit allows it. A flag or variable that has no effect
under lodestar is accepted with a warning saying why. serve's own flags may follow.
'lodestar sse …' and 'lodestar poll …' are this command in the image's form.
docs/migrating.md lists every flag and what it becomes.

Examples:
  lodestar sse -m http://marathon:8080 --group external
  lodestar marathon-lb --marathon http://m1:8080 http://m2:8080 --group external --dry
`)
	certPath := c.fs.String("haproxy-ssl-cert-path", defaultEnvCertPath, "`file` HAPROXY_SSL_CERT is written to (HAPROXY_SSL_CERT<i> go beside it as cert<i>.pem)")
	c.run = func() error { return runMarathonLB(ctx, c.fs.Args(), *certPath, stdout, stderr, getenv) }
	return c
}

// parseMarathonLB is run's path for this command: its own flag (--haproxy-ssl-cert-path) may
// come anywhere, everything else is marathon_lb.py's or serve's and goes to the translation.
func parseMarathonLB(c *command, args []string, getenv func(string) string) error {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--haproxy-ssl-cert-path" && i+1 < len(args):
			if err := c.fs.Set("haproxy-ssl-cert-path", args[i+1]); err != nil {
				return err
			}
			i++
		case strings.HasPrefix(a, "--haproxy-ssl-cert-path="):
			if err := c.fs.Set("haproxy-ssl-cert-path", strings.TrimPrefix(a, "--haproxy-ssl-cert-path=")); err != nil {
				return err
			}
		case a == "-h" || a == "--help":
			return flag.ErrHelp
		default:
			rest = append(rest, a)
		}
	}
	if err := c.parse(nil, getenv); err != nil {
		return err
	}
	return c.fs.Parse(append([]string{"--"}, rest...))
}

// runMarathonLB translates args (the mode word first, when given) and runs serve, or render
// with --dry, with the result: warnings and notes first, on stderr, then the certificates from
// the environment are written.
func runMarathonLB(ctx context.Context, args []string, certPath string, stdout, stderr io.Writer, getenv func(string) string) error {
	mode := ""
	if len(args) > 0 && (args[0] == "sse" || args[0] == "poll") {
		mode, args = args[0], args[1:]
	}
	// --dry makes it render, whose flags (--timeout, --check) may then follow.
	target := serveCommand(ctx, stderr, getenv)
	if slices.Contains(args, "--dry") || slices.Contains(args, "-d") {
		target = renderCommand(ctx, stdout, stderr, getenv)
	}
	env := mlbEnv{getenv: getenv, certPath: certPath, fileLimit: openFilesLimit(), serveFlag: target.fs.Lookup}
	if env.getenv == nil {
		env.getenv = os.Getenv
	}
	plan, err := translateMarathonLB(mode, args, env)
	if err != nil {
		return err
	}
	if plan.help {
		return printMarathonLBFlags(stdout)
	}
	if err := target.parse(plan.args, getenv); err != nil {
		return fmt.Errorf("%w (from the marathon-lb command line: %s)", err, strings.Join(plan.args, " "))
	}
	for _, w := range plan.warnings {
		fmt.Fprintf(stderr, "lodestar marathon-lb: warning: %s\n", w)
	}
	for _, n := range plan.notes {
		fmt.Fprintf(stderr, "lodestar marathon-lb: %s\n", n)
	}
	for _, c := range plan.certs {
		if err := writeCertFile(c); err != nil {
			return err
		}
	}
	return target.run()
}

// writeCertFile writes a certificate from the environment, readable by lodestar's user only.
// The file is truncated in place rather than replaced: marathon-lb's path (/etc/ssl/cert.pem)
// is in a directory an unprivileged lodestar can write only that file of (see Dockerfile).
func writeCertFile(c certFile) error {
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("%s: writing it to %s: %w (move it with --haproxy-ssl-cert-path)", c.from, c.path, err)
	}
	if _, err := io.WriteString(f, c.pem); err != nil {
		f.Close()
		return fmt.Errorf("%s: writing %s: %w", c.from, c.path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("%s: %s: %w", c.from, c.path, err)
	}
	return f.Close()
}

// printMarathonLBFlags is --longhelp: every marathon_lb.py flag lodestar takes.
func printMarathonLBFlags(w io.Writer) error {
	fmt.Fprintln(w, "marathon_lb.py flags taken by 'lodestar marathon-lb' (see docs/migrating.md for what each becomes):")
	for _, f := range mlbFlags {
		fmt.Fprintf(w, "  %s\n", strings.Join(f.names, ", "))
	}
	_, err := fmt.Fprintln(w, "Labels and templates: LABELS.md.")
	return err
}
