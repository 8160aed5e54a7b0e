package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
)

const deployTestApp = `{"id": "/web", "instances": 3,
  "labels": {"HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"},
  "portDefinitions": [{"port": 10000}]}`

func writeDeployApp(t *testing.T, def string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "web.json")
	if err := os.WriteFile(path, []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// parsedDeploy parses a deploy command line and returns the flag values by name.
func parsedDeploy(t *testing.T, args ...string) (map[string]string, error) {
	t.Helper()
	c := deployCommand(context.Background(), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, nil)
	err := parseDeploy(c, args, func(string) string { return "" })
	vals := map[string]string{}
	c.fs.VisitAll(func(f *flag.Flag) { vals[f.Name] = f.Value.String() })
	return vals, err
}

// TestDeployFlagsZddNames: zdd.py's command lines, with its short and alternative names,
// set lodestar deploy's flags.
func TestDeployFlagsZddNames(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want map[string]string
	}{
		{[]string{"-j", "1-nginx.json", "-m", "http://master.mesos:8080", "-f", "-l", "http://marathon-lb.marathon.mesos:9090", "--syslog-socket", "/dev/null"},
			map[string]string{"json": "1-nginx.json", "marathon": "http://master.mesos:8080", "force": "true", "lodestar": "http://marathon-lb.marathon.mesos:9090"}},
		{[]string{"app.json", "--marathon", "http://m1:8080,http://m2:8080", "--marathon-lb", "http://lb1:8090", "--dry-run"},
			map[string]string{"json": "app.json", "marathon": "http://m1:8080,http://m2:8080", "lodestar": "http://lb1:8090", "dry-run": "true"}},
		{[]string{"--json=app.json", "-s", "2", "-w", "90", "-i", "3", "-n", "2", "-r"},
			map[string]string{"step-delay": "2s", "max-wait": "1m30s", "initial-instances": "3", "new-instances": "2", "resume": "true"}},
		{[]string{"-", "--step-delay", "500ms", "-c", "--pre-kill-hook", "/bin/check", "--auth-credentials", "ops:pw"},
			map[string]string{"json": "-", "step-delay": "500ms", "complete-cur": "true", "pre-kill-hook": "/bin/check", "marathon-auth": "ops:pw"}},
		{[]string{"-p", "--linear-increase", "4", "--events-json", "-d", "app.json", "--log-level", "DEBUG"},
			map[string]string{"complete-prev": "true", "linear-increase": "4", "events-json": "true", "dry-run": "true", "json": "app.json"}},
		{[]string{"app.json"}, map[string]string{"step-delay": "5s", "max-wait": "5m0s", "initial-instances": "1", "force": "false"}},
	} {
		vals, err := parsedDeploy(t, tc.args...)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		for k, v := range tc.want {
			if vals[k] != v {
				t.Errorf("%q: --%s = %q, want %q", tc.args, k, vals[k], v)
			}
		}
	}
}

func TestDeployFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"a.json", "b.json"}, "one app file"},
		{[]string{"a.json", "--json", "b.json"}, "given twice"},
		{[]string{"--frobnicate"}, "unknown flag --frobnicate"},
		{[]string{"a.json", "-m"}, "flag -m needs a value"},
		{[]string{"a.json", "-s", "-3"}, "want seconds"},
		{[]string{"a.json", "-w", "soon"}, "want seconds (5) or a duration"},
	} {
		if _, err := parsedDeploy(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, help := range []string{"--help", "-h", "--longhelp"} {
		if _, err := parsedDeploy(t, help); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: %v, want help", help, err)
		}
	}
	code, out, _ := runCmd(t, nil, "deploy", "--longhelp")
	if code != 0 || !strings.Contains(out, "--marathon-lb/-l (--lodestar)") || !strings.Contains(out, "--events-json") {
		t.Errorf("deploy --longhelp: exit %d\n%s", code, out)
	}
}

// startDeployMarathon is a fake Marathon holding /web-blue of group web.
func startDeployMarathon(t *testing.T) *fakemarathon.Server {
	t.Helper()
	fm := fakemarathon.New()
	err := fm.AddApp(map[string]any{"id": "/web-blue", "instances": 3,
		"labels": map[string]any{"HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001",
			"HAPROXY_DEPLOYMENT_COLOUR": "blue", "HAPROXY_0_PORT": "10000", "HAPROXY_DEPLOYMENT_STARTED_AT": "2026-12-01T10:00:00Z"},
		"portDefinitions": []any{map[string]any{"port": 10000}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fm.Close)
	return fm
}

// TestDeployDryRun prints the plan from GET /v2/apps alone: no edge, no leader, no write.
func TestDeployDryRun(t *testing.T) {
	fm := startDeployMarathon(t)
	code, out, errOut := runCmd(t, nil, "deploy", "--dry-run", writeDeployApp(t, deployTestApp), "-m", fm.URL())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"deploy /web (blue/green)",
		"deployment group  web, served by HAProxy on port 10000",
		"old colour        /web-blue (blue), Marathon service port 10000, 3 instance(s)",
		"new colour        /web-green (green), Marathon service port 10001",
		"scale /web-green through 1 → 3 instance(s)",
		`"HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "3"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if n := fm.Requests("/v2/leader"); n != 0 {
		t.Errorf("the dry run asked /v2/leader %d times", n)
	}
	if len(fm.Tasks("/web-green")) != 0 || len(fm.Deployments()) != 0 {
		t.Error("the dry run wrote to Marathon")
	}

	// --events-json: the plan as one JSON line on stdout.
	code, out, _ = runCmd(t, nil, "deploy", "-d", "--events-json", "--json", writeDeployApp(t, deployTestApp), "-m", fm.URL())
	var ev struct {
		Event string `json:"event"`
		Plan  struct {
			NewID string
			Steps []int
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &ev); code != 0 || err != nil || ev.Event != "plan" || ev.Plan.NewID != "/web-green" {
		t.Errorf("--events-json dry run: exit %d, %v: %q", code, err, out)
	}
}

// TestDeployFromStdin reads the definition from "-".
func TestDeployFromStdin(t *testing.T) {
	fm := startDeployMarathon(t)
	var out, errb bytes.Buffer
	c := deployCommand(context.Background(), strings.NewReader(deployTestApp), &out, &errb, nil)
	if err := parseDeploy(c, []string{"-", "-d", "-m", fm.URL()}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if err := c.run(); err != nil || !strings.Contains(out.String(), "new colour        /web-green") {
		t.Errorf("%v\n%s", err, out.String())
	}
}

// TestDeployRefusesBeforeWriting: a hostile definition, a missing --force without a terminal,
// or a missing edge stop the deploy with a clear error, and Marathon is left alone.
func TestDeployRefusesBeforeWriting(t *testing.T) {
	fm := startDeployMarathon(t)
	for _, tc := range []struct {
		name string
		def  string
		args []string
		want string
	}{
		{"bad group label", strings.Replace(deployTestApp, `"web", "HAPROXY_DEPLOYMENT_ALT_PORT"`, `"web; rm", "HAPROXY_DEPLOYMENT_ALT_PORT"`, 1), []string{"-f", "-l", "http://127.0.0.1:1"}, "app /web: label HAPROXY_DEPLOYMENT_GROUP"},
		{"alt port out of range", strings.Replace(deployTestApp, `"10001"`, `"65536"`, 1), []string{"-f", "-l", "http://127.0.0.1:1"}, `app /web: label HAPROXY_DEPLOYMENT_ALT_PORT="65536"`},
		{"odd id", strings.Replace(deployTestApp, `"/web"`, `"/web/../x y"`, 1), []string{"-f", "-l", "http://127.0.0.1:1"}, `app id "/web/../x y"`},
		{"huge instances", strings.Replace(deployTestApp, `"instances": 3`, `"instances": 99999999999`, 1), []string{"-f", "-l", "http://127.0.0.1:1"}, `app /web: "instances" 99999999999`},
		{"no force, no terminal", deployTestApp, []string{"-l", "http://127.0.0.1:1"}, "give --force"},
		{"no edge", deployTestApp, []string{"-f"}, "no lodestar edge (--lodestar"},
		{"huge file", strings.Replace(deployTestApp, `"instances": 3`, `"cmd": "`+strings.Repeat("x", 5<<20)+`", "instances": 3`, 1), []string{"-f", "-l", "http://127.0.0.1:1"}, "larger than 4194304 bytes"},
		{"dcos auth", deployTestApp, []string{"-f", "--dcos-auth-credentials", "x"}, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// stdin is not a terminal here, whatever the test runs under.
			c := deployCommand(context.Background(), strings.NewReader("y\n"), &bytes.Buffer{}, &bytes.Buffer{}, nil)
			args := append([]string{writeDeployApp(t, tc.def), "-m", fm.URL()}, tc.args...)
			if err := parseDeploy(c, args, func(string) string { return "" }); err != nil {
				t.Fatal(err)
			}
			if err := c.run(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if len(fm.Deployments()) != 0 || len(fm.Tasks("/web-green")) != 0 {
				t.Error("Marathon was written to")
			}
		})
	}
}
