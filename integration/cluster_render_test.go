package integration

// lodestar cluster render end to end, and what the rendered lab runs: the lodestar command
// lines of examples/cluster.yaml give HAProxy configurations that pass haproxy -c, the
// committed docker-compose.yml only uses flags lodestar knows, and the Dockerfile has the
// stages and settings the image needs.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lodestar-lb/lodestar/integration/cluster"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

const (
	exampleTopology = "../examples/cluster.yaml"
	// clusterApps is shared/fixtures/marathon/zdd_apps.json with /nginx-blue moved to the
	// internal group (its own service port, no blue/green labels) and a vhost on each app, so
	// each LB group renders one app.
	clusterApps = "cluster/testdata/apps.json"
)

// runLodestar runs the binary with args and returns stdout, stderr and the exit code.
func runLodestar(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("lodestar %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// knownFlags returns the flags `lodestar <cmd> --help` lists.
func knownFlags(t *testing.T, cmd ...string) map[string]bool {
	t.Helper()
	out, stderr, code := runLodestar(t, append(cmd, "--help")...)
	if code != 0 {
		t.Fatalf("lodestar %v --help: exit %d\n%s", cmd, code, stderr)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`).FindAllStringSubmatch(out, -1) {
		flags[m[1]] = true
	}
	if len(flags) < 5 {
		t.Fatalf("lodestar %v --help lists %d flags:\n%s", cmd, len(flags), out)
	}
	return flags
}

func flagName(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "--") {
		return "", false
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
	return name, true
}

func loadExample(t *testing.T) *cluster.Topology {
	t.Helper()
	top, _, err := cluster.Load(exampleTopology)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// Every lodestar service of the committed docker-compose.yml runs the lodestar image with
// `serve` and flags that `lodestar serve --help` lists.
func TestClusterComposeUsesKnownFlags(t *testing.T) {
	serve := knownFlags(t, "serve")
	top := loadExample(t)
	data, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	checked := 0
	for name, s := range cf.Services {
		if s.Image != top.Images.Lodestar || s.Command == nil {
			continue
		}
		checked++
		if s.Command[0] != "serve" {
			t.Errorf("%s: command %v does not start with serve", name, s.Command)
		}
		for _, arg := range s.Command[1:] {
			if f, ok := flagName(arg); ok && !serve[f] {
				t.Errorf("%s: --%s is not a flag of lodestar serve", name, f)
			}
		}
	}
	if want := len(top.Lodestars()); checked != want {
		t.Errorf("checked %d lodestar services, the topology runs %d", checked, want)
	}
}

// The HAProxy configuration of each edge and leader-proxy lodestar of examples/cluster.yaml
// passes haproxy -c: `lodestar render --check` with the rendered flags, its sources replaced
// by a fake Marathon serving clusterApps and a fake Mesos master on loopback.
func TestClusterHAProxyConfigsPassCheck(t *testing.T) {
	render := knownFlags(t, "render")
	marathon := fakemarathon.New()
	if err := marathon.LoadAppsFile(clusterApps); err != nil {
		t.Fatal(err)
	}
	marathon.RewriteAddresses()
	if err := marathon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(marathon.Close)
	mesos := fakemesos.New()
	if err := mesos.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mesos.Close)

	sources := map[string]bool{"marathon": true, "mesos-zk": true, "zk-rules": true}
	ran := 0
	for _, l := range loadExample(t).Lodestars() {
		if l.Kind == cluster.RoleDNS {
			continue // --haproxy=false: no HAProxy configuration
		}
		t.Run(l.Host+"/"+l.Name, func(t *testing.T) {
			args := []string{"render", "--check", "--haproxy-bin", haproxytest.Bin(t), "--run-dir", t.TempDir(),
				"--marathon", marathon.URL(), "--mesos-master", mesos.HostPort()}
			for i := 1; i < len(l.Args); i++ {
				f, ok := flagName(l.Args[i])
				if !ok {
					t.Fatalf("argument %q is not a flag", l.Args[i])
				}
				takesValue := !strings.Contains(l.Args[i], "=") && i+1 < len(l.Args) && !strings.HasPrefix(l.Args[i+1], "--")
				keep := !sources[f] && render[f]
				if f == "leader-proxy" && takesValue && strings.HasPrefix(l.Args[i+1], "zk=") {
					// Its members come from --mesos-zk, which a fake master stands in for
					// here; TestLeaderProxyZooKeeper runs it against a real ensemble.
					keep = false
				}
				if keep {
					args = append(args, l.Args[i])
				}
				if takesValue {
					if keep {
						args = append(args, l.Args[i+1])
					}
					i++
				}
			}
			out, stderr, code := runLodestar(t, args...)
			if code != 0 {
				t.Fatalf("lodestar %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
			}
			var wants []string
			switch l.Group {
			case "external":
				wants = []string{"nginx-green.example.com"}
			case "internal":
				wants = []string{"nginx-blue.example.com"}
			}
			switch l.Kind {
			case cluster.RoleLB:
				wants = append(wants, "\nbackend nginx-")
			case cluster.RoleProxy:
				wants = []string{"172.28.0.41:15050", "172.28.0.41:18080"}
			}
			for _, w := range wants {
				if !strings.Contains(out, w) {
					t.Errorf("the configuration lacks %q:\n%s", w, out)
				}
			}
		})
		ran++
	}
	if ran != 3 {
		t.Fatalf("checked %d lodestars, want 3 (two LB groups and the leader proxy)", ran)
	}
}

// `lodestar cluster render` writes what cluster.Render gives, prints warnings on stderr,
// refuses to overwrite changed files without --force and reports topology mistakes.
func TestClusterRenderCommand(t *testing.T) {
	top := loadExample(t)
	for _, format := range cluster.Formats {
		out := t.TempDir()
		stdout, stderr, code := runLodestar(t, "cluster", "render", "--topology", exampleTopology, "--format", format, "--out", out)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", format, code, stderr)
		}
		want, err := cluster.Render(top, format)
		if err != nil {
			t.Fatal(err)
		}
		for p, content := range want {
			got, err := os.ReadFile(filepath.Join(out, p))
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("%s: %s differs from cluster.Render (%v)", format, p, err)
			}
		}
		if !strings.Contains(stdout, "written") {
			t.Errorf("stdout: %q", stdout)
		}
		if steps := "systemctl enable --now lodestar-host-ip.service zookeeper.service mesos-master.service marathon.service\n"; format == cluster.FormatSystemd && !strings.Contains(stdout, steps) {
			t.Errorf("systemd: stdout lacks the bring-up steps (%q):\n%s", steps, stdout)
		}
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	even := strings.Replace(mustRead(t, exampleTopology), "roles: [agent]\n    agent_attributes: {rack: r1}", "roles: [agent, zk]\n    agent_attributes: {rack: r1}", 1)
	if err := os.WriteFile(bad, []byte(even), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	_, stderr, code := runLodestar(t, "cluster", "render", "--topology", bad, "--format", "systemd", "--out", out)
	if code != 0 || !strings.Contains(stderr, "warning: field hosts: 4 ZooKeeper hosts") {
		t.Fatalf("even ensemble: exit %d, stderr %q", code, stderr)
	}
	if err := os.WriteFile(filepath.Join(out, "dns/resolv.conf"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runLodestar(t, "cluster", "render", "--topology", bad, "--format", "systemd", "--out", out); code != 1 || !strings.Contains(stderr, "dns/resolv.conf") || !strings.Contains(stderr, "--force") {
		t.Fatalf("changed file without --force: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := runLodestar(t, "cluster", "render", "--topology", bad, "--format", "systemd", "--out", out, "--force"); code != 0 {
		t.Fatalf("--force: exit %d, stderr %q", code, stderr)
	}

	dup := strings.Replace(mustRead(t, exampleTopology), "ip: 172.28.0.22", "ip: 172.28.0.21", 1)
	if err := os.WriteFile(bad, []byte(dup), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runLodestar(t, "cluster", "render", "--topology", bad, "--format", "compose", "--out", filepath.Join(dir, "dup"))
	if code != 1 || !strings.Contains(stderr, `host "agent2": field ip: 172.28.0.21 is already used by host "agent1"`) {
		t.Fatalf("duplicate ip: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := runLodestar(t, "cluster", "render", "--topology", exampleTopology, "--format", "helm", "--out", dir); code != 2 || !strings.Contains(stderr, "--format") {
		t.Fatalf("bad format: exit %d, stderr %q", code, stderr)
	}
	if stdout, _, code := runLodestar(t, "cluster", "render", "--help"); code != 0 || !strings.Contains(stdout, "--topology") || !strings.Contains(stdout, "Examples:") {
		t.Fatalf("cluster render --help: exit %d\n%s", code, stdout)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The Dockerfile builds a static lodestar with the module's Go version and runs it next to
// Debian's HAProxy as a non-root user.
func TestDockerfile(t *testing.T) {
	type instr struct{ op, args string }
	var lines []instr
	text := strings.ReplaceAll(mustRead(t, "../Dockerfile"), "\\\n", " ")
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		op, args, _ := strings.Cut(l, " ")
		lines = append(lines, instr{strings.ToUpper(op), strings.Join(strings.Fields(args), " ")})
	}
	var froms []string
	var stage int
	runsIn := map[int][]string{}
	// ARGs before the first FROM name the stages' images (local ones without a registry);
	// their defaults must be the public images, so a plain docker build is unchanged.
	fromArgs := map[string]string{}
	for _, in := range lines {
		switch in.op {
		case "ARG":
			if name, def, ok := strings.Cut(in.args, "="); ok && len(froms) == 0 {
				fromArgs[name] = def
			}
		case "FROM":
			froms = append(froms, os.Expand(in.args, func(name string) string { return fromArgs[name] }))
			stage = len(froms) - 1
		case "RUN":
			runsIn[stage] = append(runsIn[stage], in.args)
		}
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(mustRead(t, "../go.mod"))
	if len(goVersion) != 2 {
		t.Fatal("go.mod has no go line")
	}
	if len(froms) != 2 || froms[0] != "golang:"+goVersion[1]+"-bookworm AS build" || froms[1] != "debian:bookworm-slim" {
		t.Fatalf("stages %q, want golang:%s-bookworm AS build then debian:bookworm-slim", froms, goVersion[1])
	}
	has := func(list []string, subs ...string) bool {
		return slices.ContainsFunc(list, func(s string) bool {
			for _, sub := range subs {
				if !strings.Contains(s, sub) {
					return false
				}
			}
			return true
		})
	}
	if !has(runsIn[0], "CGO_ENABLED=0", "go build", "-trimpath", "-X main.version=", "./cmd/lodestar") {
		t.Errorf("build stage runs %q: want a static, trimmed go build of ./cmd/lodestar with the version", runsIn[0])
	}
	if !has(runsIn[1], "apt-get install", "haproxy", "ca-certificates") || !has(runsIn[1], "rm -rf /var/lib/apt/lists") {
		t.Errorf("runtime stage runs %q: want haproxy and ca-certificates from apt-get, lists removed", runsIn[1])
	}
	var entry, cmd []string
	var user string
	var copied bool
	var expose []string
	for _, in := range lines {
		switch in.op {
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entry); err != nil {
				t.Errorf("ENTRYPOINT %s: %v", in.args, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(in.args), &cmd); err != nil {
				t.Errorf("CMD %s: %v", in.args, err)
			}
		case "USER":
			user = in.args
		case "COPY":
			copied = copied || in.args == "--from=build /out/lodestar /usr/local/bin/lodestar"
		case "EXPOSE":
			expose = strings.Fields(in.args)
		}
	}
	if !slices.Equal(entry, []string{"lodestar"}) || !slices.Equal(cmd, []string{"serve"}) {
		t.Errorf("ENTRYPOINT %q CMD %q, want [lodestar] [serve]", entry, cmd)
	}
	if user == "" || user == "root" || user == "0" {
		t.Errorf("USER %q: lodestar should not run as root", user)
	}
	if !copied {
		t.Error("the runtime stage does not copy the binary from the build stage to /usr/local/bin/lodestar")
	}
	for _, p := range []string{"80", "443", "9090", "8090", "53/udp"} {
		if !slices.Contains(expose, p) {
			t.Errorf("EXPOSE %q lacks %s", expose, p)
		}
	}
	ignore := mustRead(t, "../.dockerignore")
	for _, p := range []string{".git", "bin"} {
		if !slices.Contains(strings.Split(ignore, "\n"), p) {
			t.Errorf(".dockerignore lacks %s", p)
		}
	}
}
