package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// defaultEnvCertPath is where marathon-lb's image writes HAPROXY_SSL_CERT.
const defaultEnvCertPath = "/etc/ssl/cert.pem"

// defaultMarathonLBMarathon is marathon_lb.py's --marathon default.
const defaultMarathonLBMarathon = "http://master.mesos:8080"

// mlbMaxConn is the maxconn of marathon-lb's HAPROXY_HEAD (global section).
const mlbMaxConn = 50000

// mlbEnv is what translateMarathonLB reads besides the arguments: the environment, where
// HAPROXY_SSL_CERT goes, the open-files limit, and the flags serve knows (passed through).
type mlbEnv struct {
	getenv    func(string) string
	certPath  string
	fileLimit uint64
	serveFlag func(name string) *flag.Flag
}

// translateMarathonLB turns marathon-lb's mode ("sse", "poll" or "" for marathon_lb.py
// itself), command line and environment into a plan. It changes nothing; the only files it
// reads are the default certificate and $MESOS_SANDBOX/templates (to see whether they exist).
func translateMarathonLB(mode string, args []string, env mlbEnv) (*mlbPlan, error) {
	p := &mlbPlan{command: "serve"}
	switch mode {
	case "", "sse":
	case "poll":
		p.warn("poll: lodestar follows Marathon's event stream as in sse mode, and re-reads /v2/apps every --marathon-resync%s", pollInterval(env.getenv))
	default:
		return nil, fmt.Errorf("unknown mode %q: want sse or poll", mode)
	}
	var user []string // the translated command line, after the defaults and the environment
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			return nil, fmt.Errorf("unrecognized argument %q", a)
		}
		name, value, hasValue := strings.Cut(a, "=")
		if f := findMLBFlag(name); f != nil {
			vals, next, err := mlbValues(f, name, value, hasValue, args, i)
			if err != nil {
				return nil, err
			}
			i = next
			before := len(p.args)
			if err := f.apply(p, name, vals); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			user, p.args = append(user, p.args[before:]...), p.args[:before]
			continue
		}
		lf := env.serveFlag(strings.TrimLeft(name, "-"))
		if lf == nil || !strings.HasPrefix(name, "--") {
			return nil, fmt.Errorf("unrecognized argument %q (neither marathon_lb.py's nor lodestar serve's)", a)
		}
		if b, ok := lf.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() || hasValue {
			user = append(user, a)
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("%s needs a value", name)
		}
		user = append(user, name+"="+args[i+1])
		i++
	}
	if p.help {
		return p, nil
	}
	if len(p.groups) == 0 {
		return nil, errors.New("argument --group is required: give at least one group (--group external), or '*' for every app")
	}
	if err := p.fromEnvironment(env, user); err != nil {
		return nil, err
	}
	p.args = append(p.args, user...)
	return p, nil
}

// mlbValues reads the values of flag f at args[i] and returns them with the index of the last
// word used.
func mlbValues(f *mlbFlag, name, value string, hasValue bool, args []string, i int) ([]string, int, error) {
	switch f.kind {
	case mlbSwitch:
		if hasValue {
			return nil, i, fmt.Errorf("%s: ignored explicit argument %q", name, value)
		}
		return nil, i, nil
	case mlbValue:
		if hasValue {
			return []string{value}, i, nil
		}
		if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
			return nil, i, fmt.Errorf("%s: expected one argument", name)
		}
		return []string{args[i+1]}, i + 1, nil
	}
	var vals []string
	if hasValue {
		vals = append(vals, value)
	}
	for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
		vals = append(vals, args[i+1])
		i++
	}
	if len(vals) == 0 {
		return nil, i, fmt.Errorf("%s: expected at least one argument", name)
	}
	return vals, i, nil
}

// fromEnvironment adds marathon-lb's defaults and its image's environment to the plan, before
// the user's translated flags (user), which win over them.
func (p *mlbPlan) fromEnvironment(env mlbEnv, user []string) error {
	given := func(name string) bool {
		if env.getenv(envName(name)) != "" {
			return true
		}
		for _, a := range user {
			if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
				return true
			}
		}
		return false
	}
	marathon := p.marathon
	if len(marathon) == 0 {
		marathon = []string{defaultMarathonLBMarathon}
	}
	p.pass("marathon", strings.Join(marathon, ","))
	p.pass("group", strings.Join(p.groups, ","))
	if p.healthCheck || !given("health-check") {
		p.pass("health-check", strconv.FormatBool(p.healthCheck))
	}
	if u, pw := env.getenv("MARATHON_USER"), env.getenv("MARATHON_PASSWORD"); u != "" && pw != "" && !given("marathon-auth") {
		p.pass("marathon-auth", u+":"+pw)
	}
	if !given("haproxy-maxconn") {
		maxConn, note := maxConnFor(env.fileLimit)
		p.pass("haproxy-maxconn", strconv.Itoa(maxConn))
		p.notes = append(p.notes, note)
	}
	if sb := env.getenv("MESOS_SANDBOX"); sb != "" && !given("templates-dir") {
		if fi, err := os.Stat(filepath.Join(sb, "templates")); err == nil && fi.IsDir() {
			p.pass("templates-dir", filepath.Join(sb, "templates"))
		}
	}
	if err := p.certsFromEnvironment(env); err != nil {
		return err
	}
	if ports := env.getenv("PORTS"); ports != "" {
		if err := checkPorts(ports); err != nil {
			return fmt.Errorf("PORTS=%q: %w", ports, err)
		}
		p.warn("PORTS=%s: marathon-lb's image only records it; HAProxy binds the ports its configuration names", ports)
	}
	for _, v := range []struct{ name, why string }{
		{"HAPROXY_SYSCTL_PARAMS", "lodestar does not run sysctl (an unprivileged process cannot); set kernel parameters on the host or with docker run --sysctl"},
		{"HAPROXY_SYSCTL_NONSTRICT", "lodestar does not run sysctl"},
		{"HAPROXY_RELOAD_SIGTERM_DELAY", "old HAProxy workers finish their connections and are stopped by --haproxy-hard-stop-after"},
		{"HAPROXY_SYSLOGD", "lodestar runs no syslogd: HAProxy's log goes to lodestar's stderr"},
		{"SYSLOG_SOCKET", "lodestar logs to stderr only"},
		{"DCOS_SERVICE_ACCOUNT_CREDENTIAL", "DC/OS service-account login is not supported; use MARATHON_USER and MARATHON_PASSWORD"},
		{"VAULT_TOKEN", "credentials are not read from Vault; use MARATHON_USER and MARATHON_PASSWORD"},
	} {
		if val := env.getenv(v.name); val != "" && (v.name != "SYSLOG_SOCKET" || val != "/dev/null") {
			p.warn("%s is set: %s", v.name, v.why)
		}
	}
	return nil
}

// certsFromEnvironment writes (in the plan) HAPROXY_SSL_CERT to certPath and HAPROXY_SSL_CERT<i>
// beside it, and sets --ssl-certs as marathon-lb's image does: the given --ssl-certs, then
// the certificates from the environment; with neither, certPath when it exists (marathon_lb.py's
// default), else lodestar's self-signed certificate.
func (p *mlbPlan) certsFromEnvironment(env mlbEnv) error {
	certs := p.sslCerts
	add := func(name, path string) error {
		pem, err := certFromEnv(env.getenv(name))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		p.certs = append(p.certs, certFile{path: path, pem: pem, from: name})
		certs = append(certs, path)
		return nil
	}
	if env.getenv("HAPROXY_SSL_CERT") != "" {
		if err := add("HAPROXY_SSL_CERT", env.certPath); err != nil {
			return err
		}
		for i := 0; i <= 100; i++ {
			name := "HAPROXY_SSL_CERT" + strconv.Itoa(i)
			if env.getenv(name) == "" {
				continue
			}
			if err := add(name, filepath.Join(filepath.Dir(env.certPath), "cert"+strconv.Itoa(i)+".pem")); err != nil {
				return err
			}
		}
	} else if !p.sslCertsSet {
		// An empty or broken file there (the image makes it empty) is not marathon_lb.py's
		// default certificate: lodestar's self-signed one serves instead.
		if b, err := os.ReadFile(env.certPath); err == nil {
			if _, err := tls.X509KeyPair(b, b); err == nil {
				certs = append(certs, env.certPath)
			}
		}
	}
	if len(certs) > 0 {
		p.pass("ssl-certs", strings.Join(certs, ","))
	}
	return nil
}

// certFromEnv checks a certificate given in the environment: PEM holding a certificate and its
// key. marathon-lb's image writes it with echo -e, so "\n" written out in one line (how a
// variable in a Marathon app definition usually carries it) stands for a line break.
func certFromEnv(v string) (string, error) {
	if !strings.Contains(v, "\n") {
		v = strings.ReplaceAll(v, `\n`, "\n")
	}
	if _, err := tls.X509KeyPair([]byte(v), []byte(v)); err != nil {
		return "", fmt.Errorf("not a PEM certificate with its private key: %w", err)
	}
	if !strings.HasSuffix(v, "\n") {
		v += "\n"
	}
	return v, nil
}

// checkPorts checks PORTS: port numbers, comma-separated.
func checkPorts(s string) error {
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not a port number", part)
		}
	}
	return nil
}

// fdReserve is what HAProxy needs besides two descriptors per connection: a listener per
// frontend (one per app port: 1,000 apps take over 1,000), health checks, the master's sockets,
// logs, maps. It is a quarter of the limit, and at least 1,000: HAProxy refuses to start when
// maxconn leaves it too few (“Cannot raise FD limit”), and the apps, so the listeners, come later.
func fdReserve(limit uint64) uint64 { return max(1000, limit/4) }

// maxConnFor is marathon-lb's maxconn (50000) when the open-files limit holds two descriptors
// per connection plus fdReserve, else the highest value it does hold, with the line that says
// which at start.
func maxConnFor(limit uint64) (int, string) {
	n := 256
	if limit > fdReserve(limit)+2*256 {
		n = int((limit - fdReserve(limit)) / 2)
	}
	if n >= mlbMaxConn {
		return mlbMaxConn, fmt.Sprintf("HAProxy maxconn %d, marathon-lb's (the open-files limit, %d, holds it)", mlbMaxConn, limit)
	}
	return n, fmt.Sprintf("HAProxy maxconn %d instead of marathon-lb's %d: the open-files limit (ulimit -n, hard) is %d; each connection takes two descriptors and a quarter is kept for listeners and checks (raise it to %d for marathon-lb's)", n, mlbMaxConn, limit, (2*mlbMaxConn*4+2)/3)
}

// openFilesLimit is the hard RLIMIT_NOFILE: HAProxy raises its soft limit up to it.
func openFilesLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 1024
	}
	return r.Max
}

// pollInterval says what POLL_INTERVAL would have done, when it is set.
func pollInterval(getenv func(string) string) string {
	if v := getenv("POLL_INTERVAL"); v != "" {
		return "; POLL_INTERVAL=" + v + " has no effect"
	}
	return ""
}
