package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/cluster"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

func doctorCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := clusterDoctor(ctx, args, &stdout, &stderr, func(string) string { return "" })
	return code, stdout.String(), stderr.String()
}

func TestClusterDoctorHelp(t *testing.T) {
	code, out, _ := doctorCmd(t, "--help")
	for _, s := range []string{"Usage: lodestar cluster doctor", "Example:", "--topology", "--zk", "--mesos-master",
		"--marathon", "--proxy", "--lodestar", "--json", "--flap-window", "--smoke", "--master-work-dir", "--smoke-timeout",
		"--smoke-role", "--smoke-user", "--smoke-principal", "--smoke-secret-file", "/api/v1/scheduler", "Exit code"} {
		if !strings.Contains(out, s) {
			t.Errorf("--help lacks %q:\n%s", s, out)
		}
	}
	if code != 0 {
		t.Errorf("--help exit code %d, want 0", code)
	}
}

func TestClusterDoctorUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--proxy", "127.0.0.1:15050"},
		{"--zk", "127.0.0.1:2181/mesos"},
		{"--no-such-flag"},
		{"--zk", "127.0.0.1:2181", "--timeout", "1ns"},
		{"--topology", filepath.Join(t.TempDir(), "missing.yaml")},
		{"stray"},
		{"--lodestar", "http://127.0.0.1:1", "--smoke"},
		{"--marathon", "http://127.0.0.1:1", "--smoke", "--smoke-timeout", "1ms"},
		{"--marathon", "http://127.0.0.1:1", "--smoke", "--smoke-app-id", "/x?force=true"},
	} {
		code, out, errOut := doctorCmd(t, args...)
		if code != 2 || errOut == "" || out != "" {
			t.Errorf("doctor %q: exit %d, stdout %q, stderr %q; want 2 and a message on stderr", args, code, out, errOut)
		}
	}
}

func TestZKServers(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		servers []string
		path    string
	}{
		{[]string{"a:2181", "b:2181"}, []string{"a:2181", "b:2181"}, ""},
		{[]string{"zk://a:2181", "b:2181", "c:2181/mesos"}, []string{"a:2181", "b:2181", "c:2181"}, "/mesos"},
		{[]string{"zk://user:pw@a:2181/mesos/"}, []string{"a:2181"}, "/mesos"},
	} {
		servers, path, err := zkServers(tc.in)
		if err != nil || !slices.Equal(servers, tc.servers) || path != tc.path {
			t.Errorf("zkServers(%q) = %q, %q, %v; want %q, %q", tc.in, servers, path, err, tc.servers, tc.path)
		}
	}
}

// TestZKServersErrorsHidePasswords: a --zk value doctor cannot use is named in the error
// without the password it carries.
func TestZKServersErrorsHidePasswords(t *testing.T) {
	for _, in := range [][]string{
		{"zk://user:s3cret@/mesos"},
		{"user:s3cret@a:2181", "b:2181"},
	} {
		_, _, err := zkServers(in)
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "user:xxxxx@") {
			t.Errorf("zkServers(%q) = %v, want an error naming the value without its password", in, err)
		}
	}
}

// doctorLab is one fake master with one agent and a fake Marathon, every name an IP so that
// nothing is resolved.
func doctorLab(t *testing.T) (*fakemesos.Cluster, *fakemesos.Agent, *fakemarathon.Server) {
	t.Helper()
	c, err := fakemesos.NewCluster(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	a, err := fakemesos.StartAgent("S0", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	c.SetAgents(a)
	c.EditState(func(st map[string]any) { st["hostname"] = "127.0.0.1" })
	if err := c.Elect(0, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	m := fakemarathon.New()
	m.SetInfo(func(info map[string]any) {
		info["frameworkId"] = "20140703-014514-3041283216-5050-5348-0000" // the seed state's marathon
		mc := info["marathon_config"].(map[string]any)
		mc["mesos_role"], mc["mesos_authentication_principal"] = "marathon", "marathon"
	})
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return c, a, m
}

func TestClusterDoctorAgainstFakes(t *testing.T) {
	c, a, m := doctorLab(t)
	args := []string{"--mesos-master", c.Addrs()[0], "--marathon", m.URL(), "--json"}
	code, out, errOut := doctorCmd(t, args...)
	var report struct {
		OK       bool `json:"ok"`
		Findings []struct {
			Check, Target, Severity, Message, Fix string
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, out)
	}
	if code != 0 || !report.OK || errOut != "" || len(report.Findings) < 8 {
		t.Fatalf("doctor %q: exit %d, stderr %q, report:\n%s", args, code, errOut, out)
	}

	code, out, errOut = doctorCmd(t, "--mesos-master", c.Addrs()[0], "--marathon", m.URL(), "--smoke", "--smoke-app-id", "/doctor-smoke")
	if code != 0 || !strings.Contains(out, "smoke test") || !strings.Contains(out, "the app is deleted") {
		t.Errorf("doctor --smoke: exit %d, stderr %q, table:\n%s", code, errOut, out)
	}

	a.SetFlag("executor_registration_timeout", "1mins")
	code, out, _ = doctorCmd(t, "--mesos-master", c.Addrs()[0], "--marathon", m.URL())
	if code != 1 || !strings.Contains(out, "WARN") || !strings.Contains(out, "executor_registration_timeout=1mins") ||
		!strings.Contains(out, "fix: start the agent with --executor_registration_timeout=5mins") {
		t.Errorf("doctor with a 1-minute executor timeout: exit %d, table:\n%s", code, out)
	}
}

// TestClusterDoctorTopology checks a one-host topology: a standalone ZooKeeper in which the fake
// master registers, the master and Marathon.
func TestClusterDoctorTopology(t *testing.T) {
	c, _, m := doctorLab(t)
	zk := zktest.Start(t)
	reg, err := fakemesos.NewZKRegistrar(zk.Servers(), "/mesos")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	if _, err := reg.Register(fakemesos.NewMasterInfo(c.Addrs()[0]), true); err != nil {
		t.Fatal(err)
	}
	_, zkport, _ := strings.Cut(zk.Addr(), ":")
	_, mport, _ := strings.Cut(c.Addrs()[0], ":")
	_, mtport, _ := strings.Cut(strings.TrimPrefix(m.URL(), "http://"), ":")
	topo := filepath.Join(t.TempDir(), "cluster.yaml")
	yaml := fmt.Sprintf(`name: loop
marathon: {principal: marathon, role: marathon}
hosts:
  - name: m1
    ip: 127.0.0.1
    roles: [zk, master, marathon]
    zk_client_port: %s
    master_port: %s
    marathon_port: %s
`, zkport, mport, mtport)
	if err := os.WriteFile(topo, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// The master registered a moment ago: with a flap window of a second the leadership is
	// reported as new until that second has passed.
	code, out, errOut := doctorCmd(t, "--topology", topo, "--flap-window", "1s")
	for deadline := time.Now().Add(30 * time.Second); code != 0 && strings.Contains(out, "leadership changed") && time.Now().Before(deadline); {
		code, out, errOut = doctorCmd(t, "--topology", topo, "--flap-window", "1s")
	}
	if code != 0 || !strings.Contains(out, "one standalone server") || !strings.Contains(out, "1 master registered") ||
		!strings.Contains(out, "marathon framework") || !strings.Contains(out, "0 warnings, 0 errors") {
		t.Errorf("doctor --topology: exit %d, stderr %q, table:\n%s", code, errOut, out)
	}
	// Flags replace what the topology names: a Marathon that is not there is an error.
	code, out, _ = doctorCmd(t, "--topology", topo, "--flap-window", "1s", "--marathon", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(out, "http://127.0.0.1:1") {
		t.Errorf("doctor --topology --marathon http://127.0.0.1:1: exit %d, table:\n%s", code, out)
	}
}

// --master-work-dir: a work_dir made under an address no master has now fails the doctor,
// naming the replicated log to move aside.
func TestClusterDoctorMasterWorkDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, cluster.WorkDirIPFile), []byte("192.0.2.7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := doctorCmd(t, "--mesos-master", "127.0.0.1:1", "--master-work-dir", dir, "--timeout", "1s")
	if code != 1 || !strings.Contains(out, "master work_dir") || !strings.Contains(out, "made under 192.0.2.7") ||
		!strings.Contains(out, filepath.Join(dir, "replicated_log")) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestClusterDoctorSmokeMesos: without --marathon, --smoke runs its task through the leading
// Mesos master's scheduler API with the framework identity of the --smoke-* flags, and tears
// the framework down; bad identities are usage errors.
func TestClusterDoctorSmokeMesos(t *testing.T) {
	c, _, _ := doctorLab(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Masters[0].SetSchedulerFaults(fakemesos.SchedulerFaults{DenyPrincipal: "intruder"})
	code, out, errOut := doctorCmd(t, "--mesos-master", c.Addrs()[0], "--smoke", "--smoke-user", "nobody", "--smoke-principal", "doctor")
	if code != 0 || !strings.Contains(out, "smoke test") || !strings.Contains(out, "killed (TASK_KILLED); the framework is torn down") {
		t.Errorf("doctor --smoke through Mesos: exit %d, stderr %q, table:\n%s", code, errOut, out)
	}
	if fws := c.Masters[0].SchedulerFrameworks(); len(fws) != 0 {
		t.Errorf("frameworks left: %v", fws)
	}
	code, out, _ = doctorCmd(t, "--mesos-master", c.Addrs()[0], "--smoke", "--smoke-principal", "intruder", "--smoke-secret-file", secret)
	if code != 1 || !strings.Contains(out, `the master refused the framework of principal "intruder": Not authorized`) ||
		!strings.Contains(out, `fix: the masters' ACLs (--acls) must let principal "intruder" register_frameworks`) {
		t.Errorf("doctor --smoke with a denied principal: exit %d, table:\n%s", code, out)
	}
	for _, args := range [][]string{
		{"--smoke-role", "../x"},
		{"--smoke-user", "a b"},
		{"--smoke-principal", "a:b"},
		{"--smoke-secret-file", secret},
		{"--smoke-principal", "p", "--smoke-secret-file", filepath.Join(t.TempDir(), "missing")},
	} {
		args = append([]string{"--mesos-master", c.Addrs()[0], "--smoke"}, args...)
		if code, out, errOut := doctorCmd(t, args...); code != 2 || errOut == "" || out != "" {
			t.Errorf("doctor %q: exit %d, stdout %q, stderr %q; want a usage error", args, code, out, errOut)
		}
	}
}
