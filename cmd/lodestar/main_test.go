package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

func runCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	code, out, _ := runCmd(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"serve", "render", "version", "LODESTAR_<FLAG>"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd(t, nil, "serve", "--help")
	if code != 0 || !strings.Contains(out, "--marathon URL") || !strings.Contains(out, "env LODESTAR_MARATHON_AUTH_CREDENTIAL_FILE") {
		t.Errorf("serve --help (exit %d) does not explain the flags and their environment twins:\n%s", code, out)
	}
	code, _, errOut := runCmd(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := runCmd(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "lodestar ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// TestFlagEnvConfigPrecedence: command line beats environment beats config file beats default.
func TestFlagEnvConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	yamlFile := filepath.Join(dir, "lodestar.yaml")
	writeFile(t, yamlFile, "marathon:\n  - http://from-config:8080\n  - http://second:8080\nmarathon-resync: 2m\nlog-level: debug\napi-listen: 127.0.0.1:9999\n")
	jsonFile := filepath.Join(dir, "lodestar.json")
	writeFile(t, jsonFile, `{"marathon": "http://json:8080", "marathon-idle-timeout": "3s"}`)

	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(c *command, s *sourceFlags) string
	}{
		{"defaults", nil, nil, func(c *command, s *sourceFlags) string {
			if *s.marathonResync != 5*time.Minute || len(s.marathon.vals) != 0 {
				return fmt.Sprintf("resync %s, marathon %v", *s.marathonResync, s.marathon.vals)
			}
			return ""
		}},
		{"config file (YAML list)", []string{"--config", yamlFile}, nil, func(c *command, s *sourceFlags) string {
			if got := s.marathon.String(); got != "http://from-config:8080,http://second:8080" {
				return "marathon = " + got
			}
			if *s.marathonResync != 2*time.Minute {
				return "resync = " + s.marathonResync.String()
			}
			return ""
		}},
		{"config file (JSON)", []string{"--config", jsonFile}, nil, func(c *command, s *sourceFlags) string {
			if s.marathon.String() != "http://json:8080" || *s.marathonIdle != 3*time.Second {
				return fmt.Sprintf("marathon %s idle %s", s.marathon, *s.marathonIdle)
			}
			return ""
		}},
		{"environment beats config", []string{"--config", yamlFile},
			map[string]string{"LODESTAR_MARATHON": "http://env1:8080,http://env2:8080", "LODESTAR_MARATHON_RESYNC": "90s"},
			func(c *command, s *sourceFlags) string {
				if s.marathon.String() != "http://env1:8080,http://env2:8080" || *s.marathonResync != 90*time.Second {
					return fmt.Sprintf("marathon %s resync %s", s.marathon, *s.marathonResync)
				}
				return ""
			}},
		{"command line beats environment", []string{"--marathon", "http://flag:8080", "--marathon", "http://flag2:8080"},
			map[string]string{"LODESTAR_MARATHON": "http://env:8080"},
			func(c *command, s *sourceFlags) string {
				if s.marathon.String() != "http://flag:8080,http://flag2:8080" {
					return "marathon = " + s.marathon.String()
				}
				return ""
			}},
		{"config file from the environment", nil, map[string]string{"LODESTAR_CONFIG": yamlFile},
			func(c *command, s *sourceFlags) string {
				if *s.marathonResync != 2*time.Minute {
					return "resync = " + s.marathonResync.String()
				}
				return ""
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCommand("test", "", "", "")
			s := addSourceFlags(c)
			addLogFlags(c)
			c.fs.String("api-listen", "", "")
			if err := c.parse(tc.args, func(k string) string { return tc.env[k] }); err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(c, s); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestConfigErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.yaml")
	writeFile(t, typo, "marathon-resnyc: 1m\n")
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "marathon-resync: soon\n")
	cases := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"render", "--config", typo}, nil, []string{typo, `unknown key "marathon-resnyc"`}},
		{[]string{"render", "--config", bad}, nil, []string{bad, `key "marathon-resync"`}},
		{[]string{"render", "--config", filepath.Join(dir, "missing.yaml")}, nil, []string{"missing.yaml", "no such file"}},
		{[]string{"render"}, map[string]string{"LODESTAR_MARATHON_RESYNC": "never"}, []string{"LODESTAR_MARATHON_RESYNC", "never"}},
		{[]string{"render", "--log-level", "loud"}, nil, []string{"--log-level", "loud"}},
		{[]string{"render", "--marathon", "http://m:8080", "--apps-file", "x.json"}, nil, []string{"--marathon and --apps-file"}},
		{[]string{"render", "--marathon", "m1:8080"}, nil, []string{`bad URL "m1:8080"`}},
		{[]string{"render", "--apps-file", filepath.Join(dir, "nope.json")}, nil, []string{"nope.json"}},
		{[]string{"render", "stray"}, nil, []string{`unexpected argument "stray"`}},
		{[]string{"render", "--marathon-idle-timeout", "1ms", "--marathon-resync", "1ms"}, nil,
			[]string{"--marathon-idle-timeout 1ms: must be at least 100ms", "--marathon-resync 1ms: must be at least 1s"}},
		{[]string{"render", "--format", "yaml"}, nil, []string{"--format", "yaml"}},
		{[]string{"render", "--haproxy-maxconn", "0"}, nil, []string{"--haproxy-maxconn 0"}},
		{[]string{"render", "--label-templates", "raw"}, nil, []string{"--label-templates", `"raw"`, "confined or full"}},
		{[]string{"render", "--templates-dir", filepath.Join(dir, "none")}, nil, []string{"--templates-dir", "not a directory"}},
		{[]string{"render", "--check", "--haproxy-bin", "/nonexistent/haproxy"}, nil, []string{"--haproxy-bin /nonexistent/haproxy", "apt-get install haproxy"}},
		{[]string{"records", "--ip-sources", "netinfo,dns"}, nil, []string{"--ip-sources", `"dns"`}},
		{[]string{"records", "--format", "zone"}, nil, []string{"--format", "zone"}},
		{[]string{"records", "--dns-srv-weight", "65536"}, nil, []string{"--dns-srv-weight 65536", "0 to 65535"}},
		{[]string{"render", "--mesos-state-file", "s.json", "--mesos-master", "127.0.0.1:5050"}, nil, []string{"--mesos-state-file and --mesos-zk/--mesos-master"}},
		{[]string{"render", "--mesos-zk", "http://zk:2181/mesos"}, nil, []string{"zk://"}},
		{[]string{"serve", "--haproxy=false", "--dns-listen", "127.0.0.1:0", "--dns-zone-upstream", "corp"}, nil, []string{"--dns-zone-upstream", "zone=host:port"}},
		{[]string{"serve", "--haproxy=false", "--dns-listen", "127.0.0.1:0", "--dns-forward-allow", "10.0.0.0/33"}, nil, []string{"--dns-forward-allow", "10.0.0.0/33"}},
		{[]string{"serve", "--haproxy-bin", "/nonexistent/haproxy"}, nil, []string{"--haproxy-bin", "apt-get install haproxy", "--haproxy=false"}},
		{[]string{"serve", "--haproxy=false", "--dns-listen", "127.0.0.1:0", "--dns-domain", "bad domain"}, nil, []string{"bad domain"}},
		{[]string{"serve", "--haproxy=false", "--dns-listen", "127.0.0.1:0", "--dns-rrl-rate", "-1"}, nil, []string{"--dns-rrl-rate -1"}},
		{[]string{"serve", "--haproxy=false", "--dns-listen", "127.0.0.1:0", "--dns-rrl-window", "10ms"}, nil, []string{"RRL window 10ms"}},
		{[]string{"serve", "--haproxy=false", "--dns-listen", "127.0.0.1:0", "--dns-rrl-slip", "11"}, nil, []string{"RRL slip 11"}},
		{[]string{"serve", "--haproxy=false", "--dns-listen", "127.0.0.1:0", "--dns-tcp-max-conns-per-client", "0"}, nil, []string{"--dns-tcp-max-conns-per-client 0"}},
		{[]string{"serve", "--haproxy=false", "--dns-listen", "127.0.0.1:0", "--dns-tcp-idle-timeout", "1ms"}, nil, []string{"--dns-tcp-idle-timeout 1ms"}},
	}
	for _, tc := range cases {
		code, _, errOut := runCmd(t, tc.env, tc.args...)
		if code == 0 {
			t.Errorf("%v: exit 0, want an error", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q lacks %q", tc.args, errOut, w)
			}
		}
	}
}

func TestRenderFromFiles(t *testing.T) {
	code, out, errOut := runCmd(t, nil, "render", "--apps-file", "../../examples/apps.json", "--group", "*", "--run-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"backend shop_web_10000", "127.0.0.1:31001", "127.0.0.1:31002", "backend db_cache_10002", "127.0.0.1:31004"} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q:\n%s", want, out)
		}
	}
}

// TestRenderLabelTemplatesFlag: --label-templates reaches the build. A BACKEND_HEAD label that
// opens a global section is left out (named on stderr) by default, and written under full.
func TestRenderLabelTemplatesFlag(t *testing.T) {
	apps := filepath.Join(t.TempDir(), "apps.json")
	writeFile(t, apps, `{"apps": [{"id": "/evil/app", "instances": 1, "version": "2026-11-01T10:00:00.000Z",
  "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_BACKEND_HEAD": "backend {backend}\n  mode {mode}\nglobal\n  maxconn 7\n"},
  "portDefinitions": [{"port": 10000, "protocol": "tcp"}], "tasks": []}]}`)
	code, out, errOut := runCmd(t, nil, "render", "--apps-file", apps, "--run-dir", t.TempDir())
	if code != 0 || strings.Contains(out, "maxconn 7") || !strings.Contains(errOut, "left out: /evil/app port 0: label HAPROXY_0_BACKEND_HEAD") {
		t.Errorf("confined: exit %d, stderr %q, the label's global in the output: %v", code, errOut, strings.Contains(out, "maxconn 7"))
	}
	code, out, errOut = runCmd(t, nil, "render", "--apps-file", apps, "--run-dir", t.TempDir(), "--label-templates", "full")
	if code != 0 || !strings.Contains(out, "maxconn 7") {
		t.Errorf("full: exit %d, stderr %q, want the label written as it renders", code, errOut)
	}
}

func TestRenderFromMarathon(t *testing.T) {
	fake := exampleMarathon(t)
	f := false
	id, err := fake.AddTask("/shop/web", fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{31009}, Health: &f})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, nil, "render", "--marathon", fake.URL(), "--timeout", "20s", "--format", "table")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "127.0.0.1:31001") || !regexp.MustCompile(regexp.QuoteMeta(id)+`\s+health check failing`).MatchString(out) {
		t.Errorf("render output should route the healthy task and say why %s is left out:\n%s", id, out)
	}
}

// TestRenderConfig prints haproxy.cfg like marathon-lb's --dry: the groups chosen, the binds
// given, an app with a bad label left out and named on stderr, and --check passing it through
// haproxy -c.
func TestRenderConfig(t *testing.T) {
	apps := filepath.Join(t.TempDir(), "apps.json")
	data, err := os.ReadFile("../../examples/apps.json")
	if err != nil {
		t.Fatal(err)
	}
	// One more app, in the served group, with a mode HAProxy does not have.
	bad := strings.Replace(string(data), `"apps": [`, `"apps": [{"id": "/bad/mode", "instances": 1, "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "htp"}, "portDefinitions": [{"port": 10050, "protocol": "tcp"}]},`, 1)
	if bad == string(data) {
		t.Fatal("examples/apps.json has no \"apps\": [ to add an app to")
	}
	writeFile(t, apps, bad)
	runDir := t.TempDir()
	code, out, errOut := runCmd(t, nil, "render", "--apps-file", apps, "--group", "*", "--run-dir", runDir,
		"--http-bind", "127.0.0.1:18080", "--check")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"backend shop_web_10000", "127.0.0.1:31001", "bind 127.0.0.1:18080", "stats socket " + runDir + "/admin.sock"} {
		if !strings.Contains(out, want) {
			t.Errorf("config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "bad_mode") {
		t.Errorf("the app with a bad label is in the config:\n%s", out)
	}
	if !strings.Contains(errOut, "left out: /bad/mode") || !strings.Contains(errOut, "HAPROXY_0_MODE") {
		t.Errorf("stderr %q should name the app left out and its label", errOut)
	}
	// Another group sees none of the example apps.
	code, out, errOut = runCmd(t, nil, "render", "--apps-file", apps, "--group", "nobody", "--run-dir", runDir)
	if code != 0 || strings.Contains(out, "backend shop_web_10000") {
		t.Errorf("--group nobody: exit %d, stderr %q, config has the example backends:\n%s", code, errOut, out)
	}
}

func TestRenderGivesUpWithTheReason(t *testing.T) {
	fake := exampleMarathon(t)
	fake.SetStatus(http.StatusServiceUnavailable)
	code, _, errOut := runCmd(t, nil, "render", "--marathon", fake.URL(), "--timeout", "1s")
	if code != 1 || !strings.Contains(errOut, "no complete sync within 1s") || !strings.Contains(errOut, "503") {
		t.Errorf("exit %d, stderr %q: want exit 1 naming the timeout and Marathon's 503", code, errOut)
	}
}

// TestServeFromFiles runs the whole daemon on the example files and watches an edit go
// through to the API.
func TestServeFromFiles(t *testing.T) {
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps.json")
	copyFile(t, "../../examples/apps.json", apps)
	base := startServe(t, "--apps-file", apps, "--mesos-state-file", "../../examples/state.json",
		"--file-poll-interval", "20ms", "--run-dir", dir)

	waitReady(t, base)
	waitApps(t, base, func(doc appsDoc) bool {
		return doc.task("/shop/web", "shop_web.5a1f0c2e-b7c1-11f0-9c3e-0242ac110002") != nil
	})

	// Mark one task unhealthy in the file: it stays listed, not eligible, with the reason.
	data, _ := os.ReadFile(apps)
	edited := strings.Replace(string(data), `"alive": true`, `"alive": false`, 1)
	writeFile(t, apps, edited)
	waitApps(t, base, func(doc appsDoc) bool {
		tk := doc.task("/shop/web", "shop_web.5a1f0c2e-b7c1-11f0-9c3e-0242ac110002")
		return tk != nil && !tk.Eligible && tk.Reason == "health check failing"
	})
}

func TestServeWithNoFlagsServesTheExample(t *testing.T) {
	base := startServe(t, "--run-dir", t.TempDir())
	waitApps(t, base, func(doc appsDoc) bool {
		return len(doc.Apps) == 3 && doc.task("/db/cache", "db_cache.8d4c3f51-b7c1-11f0-9c3e-0242ac110002") != nil
	})
}

func TestServeFromMarathon(t *testing.T) {
	fake := exampleMarathon(t)
	base := startServe(t, "--marathon", fake.URL(), "--run-dir", t.TempDir())
	waitApps(t, base, func(doc appsDoc) bool { return len(doc.Apps) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	id, err := fake.AddTask("/shop/api", fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{31010}})
	if err != nil {
		t.Fatal(err)
	}
	waitApps(t, base, func(doc appsDoc) bool { tk := doc.task("/shop/api", id); return tk != nil && tk.Eligible })
}

func TestServeReportsATakenPort(t *testing.T) {
	base := startServe(t, "--run-dir", t.TempDir())
	addr := strings.TrimPrefix(base, "http://")
	code, _, errOut := runCmd(t, nil, "serve", "--api-listen", addr, "--run-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "address already in use") {
		t.Errorf("second serve on %s: exit %d, stderr %q", addr, code, errOut)
	}
}

// exampleMarathon starts a fake Marathon on loopback serving the example apps, stopped when
// the test ends.
func exampleMarathon(t *testing.T) *fakemarathon.Server {
	t.Helper()
	fake := fakemarathon.New()
	if err := fake.LoadAppsFile("../../examples/apps.json"); err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	return fake
}

// startServe runs `lodestar serve` with the API on a free port and returns its base URL once
// it logs that it is serving. The daemon stops when the test ends.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	// HAProxy is off unless a test turns it on (a later flag wins), and files go to the
	// test's own run directory.
	args = append([]string{"serve", "--api-listen", "127.0.0.1:0", "--haproxy=false", "--run-dir", t.TempDir()}, args...)
	api, _ := runUntilServing(t, args, func(string) string { return "" })
	return api
}

// runUntilServing runs lodestar with args (as main would) and getenv, and returns the API's
// base URL and the log once it logs that it is serving. It stops when the test ends, and must
// exit 0 then.
func runUntilServing(t testing.TB, args []string, getenv func(string) string) (string, *logtest.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logtest.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, io.Discard, logs, getenv) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("lodestar %s exited %d; log:\n%s", args[0], code, logs)
		}
	})
	waitCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	go func() {
		select { // a lodestar that exits early ends the wait at once
		case code := <-done:
			done <- code
			stop()
		case <-waitCtx.Done():
		}
	}()
	line, err := logs.Wait(waitCtx, `msg="lodestar serving"`)
	if err != nil {
		t.Fatalf("lodestar %s did not start (%v); log:\n%s", args[0], err, logs)
	}
	m := regexp.MustCompile(` api=(http://\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no api address in %q", line)
	}
	return m[1], logs
}

type appsDoc struct {
	Version uint64 `json:"version"`
	Apps    []struct {
		ID    string    `json:"id"`
		Tasks []taskDoc `json:"tasks"`
	} `json:"apps"`
}

type taskDoc struct {
	ID       string `json:"id"`
	Eligible bool   `json:"eligible"`
	Reason   string `json:"reason"`
}

func (d appsDoc) task(app, id string) *taskDoc {
	for _, a := range d.Apps {
		if a.ID != app {
			continue
		}
		for i := range a.Tasks {
			if a.Tasks[i].ID == id {
				return &a.Tasks[i]
			}
		}
	}
	return nil
}

// probe polls GET url (a readiness probe, not a timing guess) until ok holds for the answer.
func probe(t *testing.T, url string, ok func(code int, body []byte) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ok(resp.StatusCode, body) {
				return
			}
			last = fmt.Sprintf("%d %.2000s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond) // probe interval
	}
	t.Fatalf("GET %s never gave the expected answer; last: %s", url, last)
}

// waitApps waits until GET /v1/apps satisfies cond.
func waitApps(t *testing.T, base string, cond func(appsDoc) bool) {
	t.Helper()
	probe(t, base+"/v1/apps", func(code int, body []byte) bool {
		var doc appsDoc
		return code == http.StatusOK && json.Unmarshal(body, &doc) == nil && cond(doc)
	})
}

// waitReady waits until /readyz answers 200 (the first sync is done).
func waitReady(t *testing.T, base string) {
	t.Helper()
	probe(t, base+"/readyz", func(code int, _ []byte) bool { return code == http.StatusOK })
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

// marathon-lb's credential file (user:pass on the first line) and --marathon-auth both reach
// Marathon; a malformed credential is refused with a clear message.
func TestMarathonCredentials(t *testing.T) {
	fake := exampleMarathon(t)
	fake.SetBasicAuth("lb", "pa:ss")
	cred := filepath.Join(t.TempDir(), "cred")
	writeFile(t, cred, "lb:pa:ss\n")

	for _, args := range [][]string{
		{"--marathon-auth-credential-file", cred},
		{"--marathon-auth", "lb:pa:ss"},
	} {
		code, out, errOut := runCmd(t, nil, append([]string{"render", "--marathon", fake.URL(), "--timeout", "20s"}, args...)...)
		if code != 0 || !strings.Contains(out, "/shop/web") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	code, _, errOut := runCmd(t, nil, "render", "--marathon", fake.URL(), "--marathon-auth", "nocolon")
	if code == 0 || !strings.Contains(errOut, "user:password") {
		t.Errorf("malformed credential: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd(t, nil, "render", "--marathon", fake.URL(), "--timeout", "1s", "--marathon-auth", "lb:wrong")
	if code == 0 || !strings.Contains(errOut, "401") {
		t.Errorf("wrong password: exit %d, stderr %q", code, errOut)
	}
}
