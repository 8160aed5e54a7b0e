package main

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mlbTestEnv is a translation environment with env as the process's environment and an
// open-files limit that holds marathon-lb's maxconn.
func mlbTestEnv(t *testing.T, env map[string]string) mlbEnv {
	t.Helper()
	serve := serveCommand(t.Context(), nil, nil)
	return mlbEnv{
		getenv:    func(k string) string { return env[k] },
		certPath:  filepath.Join(t.TempDir(), "cert.pem"),
		fileLimit: 1 << 20,
		serveFlag: func(name string) *flag.Flag { return serve.fs.Lookup(name) },
	}
}

// TestMarathonLBFlags: every flag of marathon_lb.py is taken, and becomes what
// docs/migrating.md says: a lodestar flag, a warning naming it and saying why it has no
// effect, or a change of command (--dry). Bad values are refused as argparse refuses them.
func TestMarathonLBFlags(t *testing.T) {
	base := []string{"--group", "external"}
	cases := []struct {
		args    []string
		want    []string // lodestar flags the plan must hold
		warning string   // a warning holding this, or "" for none
		command string   // "" is serve
		err     string
	}{
		{args: []string{"--longhelp"}},
		{args: []string{"--marathon", "http://m1:8080", "http://m2:8080"}, want: []string{"--marathon=http://m1:8080,http://m2:8080"}},
		{args: []string{"-m", "http://m1:8080"}, want: []string{"--marathon=http://m1:8080"}},
		{args: []string{"--marathon=http://m1:8080"}, want: []string{"--marathon=http://m1:8080"}},
		{args: nil, want: []string{"--marathon=http://master.mesos:8080"}},
		{args: []string{"--haproxy-config", "/x/haproxy.cfg"}, want: []string{"--haproxy-config=/x/haproxy.cfg"}},
		{args: []string{"--group", "internal"}, want: []string{"--group=external,internal"}},
		{args: []string{"--command", "sv reload haproxy"}, warning: "--command: lodestar runs HAProxy"},
		{args: []string{"-c", "/bin/true"}, warning: "-c: lodestar runs HAProxy"},
		{args: []string{"--max-reload-retries", "3"}, warning: "--max-reload-retries:"},
		{args: []string{"--max-reload-retries", "three"}, err: "invalid int value"},
		{args: []string{"--reload-interval", "10"}, warning: "--reload-interval: reloads are coalesced"},
		{args: []string{"--strict-mode"}, want: []string{"--strict-mode=true"}},
		{args: []string{"--strict-mode=yes"}, err: "ignored explicit argument"},
		{args: []string{"--sse"}},
		{args: []string{"-s"}},
		{args: []string{"--archive-versions", "5"}, warning: "--archive-versions:"},
		{args: []string{"--health-check"}, want: []string{"--health-check=true"}},
		{args: []string{"-H"}, want: []string{"--health-check=true"}},
		{args: nil, want: []string{"--health-check=false"}},
		{args: []string{"--lru-cache-capacity", "1000"}, warning: "--lru-cache-capacity:"},
		{args: []string{"--haproxy-map"}, want: []string{"--haproxy-map=true"}},
		{args: []string{"--dont-bind-http-https"}, want: []string{"--dont-bind-http-https=true"}},
		{args: []string{"--group-https-by-vhost"}, warning: "--group-https-by-vhost:"},
		{args: []string{"--ssl-certs", "/a.pem,/b.pem"}, want: []string{"--ssl-certs=/a.pem,/b.pem"}},
		{args: []string{"--skip-validation"}, warning: "--skip-validation: lodestar always checks"},
		{args: []string{"--skip-config-cleanup"}, warning: "--skip-config-cleanup:"},
		{args: []string{"--dry"}, command: "render"},
		{args: []string{"-d"}, command: "render"},
		{args: []string{"--min-serv-port-ip-per-task", "20000"}, want: []string{"--min-serv-port-ip-per-task=20000"}},
		{args: []string{"--max-serv-port-ip-per-task", "20100"}, want: []string{"--max-serv-port-ip-per-task=20100"}},
		{args: []string{"--max-backoff", "300"}, warning: "--max-backoff:"},
		{args: []string{"--syslog-socket", "/dev/null"}},
		{args: []string{"--syslog-socket", "/dev/log"}, warning: "--syslog-socket /dev/log: lodestar logs to stderr"},
		{args: []string{"--log-format", "%(message)s"}, warning: "--log-format:"},
		{args: []string{"--log-level", "WARNING"}, want: []string{"--log-level=warn"}},
		{args: []string{"--log-level", "LOUD"}, err: "want DEBUG"},
		{args: []string{"--marathon-auth-credential-file", "/c"}, want: []string{"--marathon-auth-credential-file=/c"}},
		{args: []string{"--auth-credentials", "u:p"}, want: []string{"--marathon-auth=u:p"}},
		{args: []string{"--dcos-auth-credentials", "{}"}, warning: "--dcos-auth-credentials:"},
		{args: []string{"--marathon-ca-cert", "/ca.pem"}, want: []string{"--marathon-ca-cert=/ca.pem"}},
		// serve's own flags pass through, with or without "=".
		{args: []string{"--api-listen", "127.0.0.1:0", "--haproxy=false"}, want: []string{"--api-listen=127.0.0.1:0", "--haproxy=false"}},
		// Hostile or mistaken command lines are refused, naming the word.
		{args: []string{"--no-such-flag"}, err: `"--no-such-flag"`},
		{args: []string{"stray"}, err: `"stray"`},
		{args: []string{"--marathon"}, err: "expected at least one argument"},
		{args: []string{"--group"}, err: "expected one argument"},
		{args: []string{"-api-listen", "x"}, err: "unrecognized argument"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append(slices.Clone(base), c.args...)
			p, err := translateMarathonLB("", args, mlbTestEnv(t, nil))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one holding %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !slices.Contains(p.args, w) {
					t.Errorf("args %q lack %q", p.args, w)
				}
			}
			warned := strings.Join(p.warnings, "\n")
			if c.warning == "" && warned != "" {
				t.Errorf("unexpected warnings: %s", warned)
			}
			if c.warning != "" && !strings.Contains(warned, c.warning) {
				t.Errorf("warnings %q lack %q", warned, c.warning)
			}
			if want := cmp(c.command, "serve"); p.command != want {
				t.Errorf("command %q, want %q", p.command, want)
			}
		})
	}
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestMarathonLBFlagsDocumented: docs/migrating.md's table names every flag taken.
func TestMarathonLBFlagsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/migrating.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mlbFlags {
		for _, n := range f.names {
			if !strings.Contains(string(doc), "`"+n+"`") {
				t.Errorf("docs/migrating.md does not list %s", n)
			}
		}
	}
}

// TestMarathonLBGroupRequired: like marathon_lb.py, no --group is an error.
func TestMarathonLBGroupRequired(t *testing.T) {
	if _, err := translateMarathonLB("sse", []string{"-m", "http://m:8080"}, mlbTestEnv(t, nil)); err == nil || !strings.Contains(err.Error(), "--group is required") {
		t.Errorf("error %v, want --group is required", err)
	}
}

// TestMarathonLBEnvironment: the image's variables — the certificates (written where the
// plan says, after --ssl-certs), PORTS, MARATHON_USER/PASSWORD, the warning ones — and the
// modes; a hostile certificate or PORTS is refused.
func TestMarathonLBEnvironment(t *testing.T) {
	pem := testCertPEM(t, "env.example.test")
	env := map[string]string{
		"HAPROXY_SSL_CERT":             strings.ReplaceAll(pem, "\n", `\n`), // one line, as echo -e reads it
		"HAPROXY_SSL_CERT3":            pem,
		"PORTS":                        "80,443,9090",
		"MARATHON_USER":                "lb",
		"MARATHON_PASSWORD":            "pw",
		"HAPROXY_SYSCTL_PARAMS":        "net.ipv4.tcp_tw_reuse=1",
		"HAPROXY_RELOAD_SIGTERM_DELAY": "5",
		"POLL_INTERVAL":                "30",
	}
	e := mlbTestEnv(t, env)
	p, err := translateMarathonLB("poll", []string{"--group", "external", "--ssl-certs", "/given.pem"}, e)
	if err != nil {
		t.Fatal(err)
	}
	cert3 := filepath.Join(filepath.Dir(e.certPath), "cert3.pem")
	for _, w := range []string{"--ssl-certs=/given.pem," + e.certPath + "," + cert3, "--marathon-auth=lb:pw"} {
		if !slices.Contains(p.args, w) {
			t.Errorf("args %q lack %q", p.args, w)
		}
	}
	if len(p.certs) != 2 || p.certs[0].path != e.certPath || p.certs[0].pem != pem || p.certs[1].path != cert3 {
		t.Errorf("certificates to write: %+v", p.certs)
	}
	warned := strings.Join(p.warnings, "\n")
	for _, w := range []string{"PORTS=80,443,9090:", "HAPROXY_SYSCTL_PARAMS is set:", "HAPROXY_RELOAD_SIGTERM_DELAY is set:", "POLL_INTERVAL=30 has no effect"} {
		if !strings.Contains(warned, w) {
			t.Errorf("warnings lack %q:\n%s", w, warned)
		}
	}
	for _, bad := range []map[string]string{
		{"HAPROXY_SSL_CERT": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"},
		{"HAPROXY_SSL_CERT": strings.Split(pem, "-----BEGIN EC PRIVATE KEY")[0]}, // no key
		{"PORTS": "80,http"},
		{"PORTS": "70000"},
	} {
		if _, err := translateMarathonLB("sse", []string{"--group", "external"}, mlbTestEnv(t, bad)); err == nil {
			t.Errorf("environment %v accepted", bad)
		}
	}
	if _, err := translateMarathonLB("daemon", []string{"--group", "external"}, e); err == nil {
		t.Error("mode daemon accepted")
	}
}

// TestMaxConnFor: marathon-lb's 50000 when the open-files limit holds it, else the highest
// value it holds, said either way.
func TestMaxConnFor(t *testing.T) {
	for _, c := range []struct {
		limit uint64
		want  int
		note  string
	}{
		{1 << 20, 50000, "marathon-lb's"},
		{133334, 50000, "holds it"},
		{133332, 49999, "instead of marathon-lb's 50000"},
		{20000, 7500, "is 20000"},
		{1024, 256, "instead"},
	} {
		got, note := maxConnFor(c.limit)
		if got != c.want || !strings.Contains(note, c.note) {
			t.Errorf("maxConnFor(%d) = %d, %q; want %d and a note holding %q", c.limit, got, note, c.want, c.note)
		}
	}
}
