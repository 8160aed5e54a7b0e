package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// TestRenderOutputPassesHAProxyCheck: what render prints passes `haproxy -c` as printed, with
// and without --check and --haproxy-map, in a run directory render has never seen: render
// makes the files its output refers to there (the default certificate, the map files).
func TestRenderOutputPassesHAProxyCheck(t *testing.T) {
	bin := haproxytest.Bin(t)
	for _, extra := range [][]string{nil, {"--haproxy-map"}, {"--check"}, {"--check", "--haproxy-map"}} {
		t.Run(strings.Join(append([]string{"render"}, extra...), " "), func(t *testing.T) {
			runDir := filepath.Join(haproxytest.SocketDir(t), "run")
			args := append([]string{"render", "--apps-file", "../../examples/apps.json", "--group", "*",
				"--run-dir", runDir, "--haproxy-bin", bin}, extra...)
			code, out, errOut := runCmd(t, nil, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			cfg := filepath.Join(t.TempDir(), "printed.cfg")
			if err := os.WriteFile(cfg, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
				t.Errorf("haproxy -c on what render printed: %v\n%s", err, msg)
			}
			if !strings.Contains(out, filepath.Join(runDir, "default.pem")) {
				t.Errorf("the printed configuration does not use the default certificate in the run directory:\n%s", out)
			}
		})
	}
}

// Files already in the run directory (a serve's) are kept: render only adds what is missing.
func TestRenderKeepsExistingRunDirFiles(t *testing.T) {
	runDir := haproxytest.SocketDir(t)
	mine := map[string]string{"default.pem": "a serve's certificate\n", "domain2backend.map": "a.example shop_web_10000\n"}
	for name, content := range mine {
		if err := os.WriteFile(filepath.Join(runDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, _, errOut := runCmd(t, nil, "render", "--apps-file", "../../examples/apps.json", "--group", "*", "--run-dir", runDir, "--haproxy-map")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for name, content := range mine {
		if b, err := os.ReadFile(filepath.Join(runDir, name)); err != nil || string(b) != content {
			t.Errorf("%s after render: %q, %v; want it kept as %q", name, b, err, content)
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, "app2backend.map")); err != nil {
		t.Errorf("the missing map file was not made: %v", err)
	}
}

// render writes a private key in the run directory: one others may write to is refused, as
// serve refuses it, and nothing is printed.
func TestRenderRefusesAnOpenRunDir(t *testing.T) {
	runDir := haproxytest.SocketDir(t)
	if err := os.Chmod(runDir, 0o777); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, nil, "render", "--apps-file", "../../examples/apps.json", "--run-dir", runDir)
	if code == 0 || out != "" || !strings.Contains(errOut, runDir) || !strings.Contains(errOut, "writable by others") {
		t.Errorf("render in a run directory writable by others: exit %d, stdout %d bytes, stderr %q", code, len(out), errOut)
	}
	if _, err := os.Stat(filepath.Join(runDir, "default.pem")); err == nil {
		t.Errorf("render wrote a certificate into a run directory writable by others")
	}
}

// --check --haproxy-map with an app HAProxy rejects: the app is left out of the configuration
// and of the map files render makes, and the printed configuration passes haproxy -c.
func TestRenderCheckedMapsLeaveOutRejectedApps(t *testing.T) {
	bin := haproxytest.Bin(t)
	data, err := os.ReadFile("../../examples/apps.json")
	if err != nil {
		t.Fatal(err)
	}
	// /shop/web's vhost goes through the map file; a bind option HAProxy does not know makes
	// haproxy -c reject its frontend.
	rejected := strings.Replace(string(data), `"HAPROXY_0_VHOST": "shop.example.test"`,
		`"HAPROXY_0_VHOST": "shop.example.test", "HAPROXY_0_BIND_OPTIONS": "no-such-bind-keyword"`, 1)
	if rejected == string(data) {
		t.Fatal("examples/apps.json no longer gives /shop/web the vhost shop.example.test")
	}
	apps := filepath.Join(t.TempDir(), "apps.json")
	writeFile(t, apps, rejected)
	runDir := haproxytest.SocketDir(t)
	code, out, errOut := runCmd(t, nil, "render", "--apps-file", apps, "--group", "*", "--run-dir", runDir,
		"--haproxy-bin", bin, "--check", "--haproxy-map")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "left out: /shop/web") || strings.Contains(out, "shop_web_10000") {
		t.Errorf("/shop/web is not left out: stderr %q, config:\n%s", errOut, out)
	}
	domains, err := os.ReadFile(filepath.Join(runDir, "domain2backend.map"))
	if err != nil || strings.Contains(string(domains), "shop.example.test") {
		t.Errorf("domain2backend.map (%v) routes the app left out:\n%s", err, domains)
	}
	ids, err := os.ReadFile(filepath.Join(runDir, "app2backend.map"))
	if err != nil || strings.Contains(string(ids), "/shop/web") || !strings.Contains(string(ids), "/shop/api shop_api_10001") {
		t.Errorf("app2backend.map (%v) should route /shop/api and not the app left out:\n%s", err, ids)
	}
	cfg := filepath.Join(t.TempDir(), "printed.cfg")
	writeFile(t, cfg, out)
	if msg, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c on what render printed: %v\n%s", err, msg)
	}
}
