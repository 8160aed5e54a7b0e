package integration

// Helpers of the tests at scale (scale_fdlimit_test.go, and scale_live_test.go under the scale
// build tag): many Marathon apps as Marathon serves them, each with a vhost, one service port,
// an HTTP health check and healthy tasks; and `lodestar serve` started for them without
// waiting for readiness, under a chosen open-files limit when asked.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// scaleMaxConn is the --haproxy-maxconn of the scale tests.
const scaleMaxConn = 1024

// scaleTasksPerApp is how many tasks every app runs.
const scaleTasksPerApp = 3

// scaleVersion is the version of every generated app and task.
const scaleVersion = "2026-01-01T00:00:00.000Z"

func scaleAppID(i int) string { return fmt.Sprintf("/scale/app%05d", i) }
func scaleVhost(i int) string { return fmt.Sprintf("app%05d.scale.test", i) }

// scaleApp is the definition of app i (HAPROXY_GROUP=external, a vhost, service port
// servicePort bound on 127.0.0.1, an HTTP health check on haproxytest.HealthPath every 60 s),
// without tasks.
func scaleApp(i, servicePort int) map[string]any {
	return map[string]any{
		"id": scaleAppID(i), "instances": scaleTasksPerApp, "version": scaleVersion,
		"labels": map[string]any{
			"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": scaleVhost(i), "HAPROXY_0_BIND_ADDR": "127.0.0.1",
		},
		"portDefinitions": []any{map[string]any{"port": servicePort, "protocol": "tcp", "name": "http"}},
		// One check a minute: thousands of checked servers stay a light load on the backends.
		"healthChecks": []any{map[string]any{
			"protocol": "HTTP", "path": haproxytest.HealthPath, "portIndex": 0, "intervalSeconds": 60,
			"timeoutSeconds": 20, "maxConsecutiveFailures": 3, "gracePeriodSeconds": 300,
		}},
	}
}

// scaleAppsJSON is {"apps":[…]} of apps 0..n-1 as GET /v2/apps?embed=apps.tasks serves them:
// app i is scaleApp(i, servicePort(i)) with running, healthy tasks, task j on
// 127.0.0.1:taskPorts(i)[j]. It is written as text: encoding/json takes seconds for 10,000
// apps under the race detector.
func scaleAppsJSON(t testing.TB, n int, servicePort func(int) int, taskPorts func(int) []int) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(`{"apps":[`)
	for i := range n {
		def, err := json.Marshal(scaleApp(i, servicePort(i)))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(def[:len(def)-1]) // the definition without its closing brace
		b.WriteString(`,"tasks":[`)
		for j, port := range taskPorts(i) {
			if j > 0 {
				b.WriteByte(',')
			}
			id := fmt.Sprintf("scale_app%05d.00000000-0000-0000-%04d-%012d", i, j, i)
			fmt.Fprintf(&b, `{"id":%q,"appId":%q,"host":"127.0.0.1","ipAddresses":[{"ipAddress":"127.0.0.1","protocol":"IPv4"}],`+
				`"ports":[%d],"slaveId":"fakemarathon-S0","state":"TASK_RUNNING","stagedAt":%[4]q,"startedAt":%[4]q,"version":%[4]q,`+
				`"healthCheckResults":[{"alive":true,"consecutiveFailures":0,"taskId":%[1]q,"firstSuccess":%[4]q,"lastSuccess":%[4]q,"lastFailure":null}]}`,
				id, scaleAppID(i), port, scaleVersion)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// startScaleMarathon starts a fake Marathon holding the apps of appsJSON (loaded without
// events: they are there before lodestar starts).
func startScaleMarathon(t testing.TB, appsJSON []byte) *fakemarathon.Server {
	t.Helper()
	fm := fakemarathon.New()
	if err := fm.LoadApps(appsJSON); err != nil {
		t.Fatal(err)
	}
	if err := fm.Start(); err != nil {
		t.Fatalf("starting the fake Marathon: %v", err)
	}
	t.Cleanup(fm.Close)
	return fm
}

// scaleBinds are the shared frontends' binds and the run directory of a scale test's serve.
type scaleBinds struct {
	HTTP, HTTPS, Stats, RunDir string
}

func newScaleBinds(t testing.TB) scaleBinds {
	return scaleBinds{HTTP: loopbackAddr(t), HTTPS: loopbackAddr(t), Stats: loopbackAddr(t), RunDir: haproxytest.SocketDir(t)}
}

// serveArgs are the flags of the scale tests' `lodestar serve`.
func (b scaleBinds) serveArgs(fm *fakemarathon.Server, haproxyBin string) []string {
	return []string{
		"--marathon", fm.URL(), "--group", "external",
		"--haproxy-bin", haproxyBin, "--haproxy-maxconn", strconv.Itoa(scaleMaxConn),
		"--http-bind", b.HTTP, "--https-bind", b.HTTPS, "--stats-bind", b.Stats,
		"--no-appid-frontend", "--run-dir", b.RunDir, "--api-listen", "127.0.0.1:0",
		"--reload-min-wait", "20ms", "--reload-max-wait", "200ms",
	}
}

// limitedLodestar writes a script that runs the lodestar binary under an open-files limit of
// limit (soft and hard) and returns its path, for StartBinary. A process with
// CAP_SYS_RESOURCE may raise its hard limit, so lodestar would count on fs.nr_open instead:
// the script drops that capability first (setpriv), and the test fails when it cannot.
func limitedLodestar(t testing.TB, limit int) string {
	t.Helper()
	run := `exec "$LODESTAR_BIN" "$@"`
	if hasCapSysResource(t) {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Fatalf("this test process has CAP_SYS_RESOURCE, which would let lodestar raise its open-files limit, and setpriv (util-linux) is missing to drop it: %v", err)
		}
		run = `exec setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource "$LODESTAR_BIN" "$@"`
	}
	script := fmt.Sprintf("#!/bin/sh\nset -e\nulimit -n %d\nLODESTAR_BIN=%q\n%s\n", limit, Binary(t), run)
	path := filepath.Join(t.TempDir(), "lodestar-limited")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// hasCapSysResource reports whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff):
// its children may then raise their hard open-files limit, and haproxy.OpenFilesLimit counts
// on fs.nr_open instead.
func hasCapSysResource(t testing.TB) bool {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", hex, err)
			}
			return caps&(1<<24) != 0
		}
	}
	t.Fatal("/proc/self/status has no CapEff line")
	return false
}

// startServeUnannounced runs `bin serve args…` as Start does, but returns as soon as the API
// listens: Start waits for "lodestar serving", which comes only once HAProxy runs, and HAProxy
// takes long to start at scale or, over the open-files limit, never starts. args must give
// --api-listen.
func startServeUnannounced(t testing.TB, bin string, args ...string) *Lodestar {
	t.Helper()
	l := spawn(t, bin, nil, args)
	line, err := l.waitLine(StartTimeout, "API listening")
	if err != nil {
		t.Fatalf("lodestar serve %s: no \"API listening\" line: %v", strings.Join(args, " "), err)
	}
	m := listeningAddr.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("API listening line without addr=: %q", line)
	}
	l.API = "http://" + m[1]
	return l
}

var listeningAddr = regexp.MustCompile(`\baddr=(\S+)`)
