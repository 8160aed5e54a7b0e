package integration

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// scaleOverLimitApps is the size users name: 10,000 apps × 3 tasks.
const scaleOverLimitApps = 10000

// scaleOverLimitNOFILE is the open-files limit lodestar runs under in
// TestServeTenThousandAppsOverOpenFilesLimit: far below what HAProxy needs for 10,000 apps
// (maxconn alone takes 2,048), and plenty for lodestar itself.
const scaleOverLimitNOFILE = 4096

// scaleQuietWindow is how long TestServeTenThousandAppsOverOpenFilesLimit watches for a
// HAProxy start after the report: a restart loop started HAProxy every 5–10 s.
const scaleQuietWindow = 10 * time.Second

// TestServeTenThousandAppsOverOpenFilesLimit: `lodestar serve` following a Marathon of 10,000
// apps × 3 healthy tasks, each with a vhost and a service port, under an open-files limit that
// HAProxy's configuration does not fit. /readyz answers 503 with what HAProxy needs (its parts
// adding up, every service port and every task in them), the limit and the fix; the log says so once; no configuration is
// written for HAProxy and HAProxy is never started (no restart loop) while nothing changes.
// haproxy/fdbudget_test.go holds the applier-level tests at small sizes; this is serve end to
// end at the size users name.
func TestServeTenThousandAppsOverOpenFilesLimit(t *testing.T) {
	t.Parallel()
	binds := newScaleBinds(t)
	ports := freePortBlock(t, scaleOverLimitApps)
	// Nothing listens on the task ports: HAProxy must never start, so nothing connects.
	data := scaleAppsJSON(t, scaleOverLimitApps, func(i int) int { return ports[i] },
		func(i int) []int { return []int{ports[i], ports[(i+1)%len(ports)], ports[(i+2)%len(ports)]} })
	fm := startScaleMarathon(t, data)
	l := startServeUnannounced(t, limitedLodestar(t, scaleOverLimitNOFILE), binds.serveArgs(fm, haproxytest.Bin(t))...)

	// "HAProxy needs N open files (2×maxconn M + L listeners + C checked servers + E), the
	// limit is X": the parts add up, every app's service port is a listener and every task
	// a checked server. haproxy/fdbudget_test.go checks the count against HAProxy's own.
	report := regexp.MustCompile(`HAProxy needs (\d+) open files \(2×maxconn (\d+) \+ (\d+) listeners \+ (\d+) checked servers \+ (\d+)\), the limit is (\d+)`)
	wantDetail := []string{"raise LimitNOFILE", "--haproxy-maxconn"}
	checkReport := func(body string) error {
		m := report.FindStringSubmatch(body)
		num := func(s string) int { n, _ := strconv.Atoi(s); return n }
		if m == nil {
			return fmt.Errorf("no open-files report in: %s", body)
		}
		need, maxConn, listeners, checked, extra, limit := num(m[1]), num(m[2]), num(m[3]), num(m[4]), num(m[5]), num(m[6])
		if need != 2*maxConn+listeners+checked+extra || maxConn != scaleMaxConn || limit != scaleOverLimitNOFILE ||
			listeners < scaleOverLimitApps || checked < scaleOverLimitApps*scaleTasksPerApp {
			return fmt.Errorf("the open-files report does not count %d apps × %d tasks, maxconn %d under a limit of %d: %s",
				scaleOverLimitApps, scaleTasksPerApp, scaleMaxConn, scaleOverLimitNOFILE, m[0])
		}
		for _, want := range wantDetail {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %q in: %s", want, body)
			}
		}
		return nil
	}
	var body string
	Eventually(t, time.Minute, "/readyz to say what HAProxy needs", func() error {
		code, b, err := Get(l.URL("/readyz"))
		if err != nil {
			return err
		}
		body = string(b)
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("status %d: %s", code, body)
		}
		return checkReport(body)
	})
	t.Logf("/readyz: %s", strings.TrimSpace(body))

	// While nothing changes, nothing is written and nothing is started.
	config := filepath.Join(binds.RunDir, "haproxy.cfg")
	master := filepath.Join(binds.RunDir, "master.sock")
	quiet := time.Now().Add(scaleQuietWindow)
	for time.Now().Before(quiet) {
		if _, err := os.Stat(config); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a configuration over the open-files limit was written for HAProxy (%s): %v", config, err)
		}
		if pids := haproxyProcesses(master); len(pids) != 0 {
			t.Fatalf("HAProxy was started (pids %v) with a configuration over the open-files limit", pids)
		}
		time.Sleep(100 * time.Millisecond)
	}
	log := l.Log.String()
	if n := strings.Count(log, "HAProxy is not started"); n != 1 {
		t.Errorf("the open-files report was logged %d times, want once", n)
	}
	if strings.Contains(log, "HAProxy could not start") {
		t.Error("lodestar tried to start HAProxy and saw it fail")
	}
	var st struct {
		Process struct {
			Restarts int  `json:"restarts"`
			Running  bool `json:"running"`
		} `json:"process"`
	}
	GetJSON(t, l.URL("/v1/haproxy/status"), &st)
	if st.Process.Restarts != 0 || st.Process.Running {
		t.Errorf("HAProxy's supervisor: %d restarts, running %v; want none and not running", st.Process.Restarts, st.Process.Running)
	}
	if code, b, err := Get(l.URL("/readyz")); err != nil || code != http.StatusServiceUnavailable || checkReport(string(b)) != nil {
		t.Errorf("/readyz after %s: status %d, %v: %s", scaleQuietWindow, code, err, b)
	}
}

// haproxyProcesses returns the pids of the processes whose command line names masterSock:
// the HAProxy master lodestar starts with -S masterSock, and its workers.
func haproxyProcesses(masterSock string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), masterSock) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
