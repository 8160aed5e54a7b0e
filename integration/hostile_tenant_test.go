package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// maxHAProxyProcs bounds the HAProxy processes of one edge: the master, the current worker and
// at most 10 old workers (the default template's mworker-max-reloads).
const maxHAProxyProcs = 12

// hostileCase is one hostile version of /evil/app: its labels (over the honest vhost), a task
// host when the attack is in a Marathon field, and what its entry in /v1/haproxy/status must
// say.
type hostileCase struct {
	name   string
	labels map[string]string
	host   string
	want   []string
}

// hostileCases are issue 12's items 1–5, 8 and 13, as a tenant who only labels its app (and
// controls its tasks' fields) would try them. outside is a directory outside the run dir;
// victimPort and victimVhost are the victim's.
func hostileCases(outside string, victimPort int, victimVhost string) []hostileCase {
	head := "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n"
	return []hostileCase{
		{name: "a global section that daemonizes",
			labels: map[string]string{"HAPROXY_0_BACKEND_HEAD": "\nglobal\n  daemon\n" + head},
			want:   []string{"HAPROXY_0_BACKEND_HEAD", `line 2 "global"`}},
		{name: "a second global with an admin stats socket",
			labels: map[string]string{"HAPROXY_0_BACKEND_HEAD": head + "global\n  stats socket " +
				filepath.Join(outside, "admin.sock") + " mode 666 level admin\n"},
			want: []string{"HAPROXY_0_BACKEND_HEAD", `line 5 "global"`}},
		// touch would create files named after the check's arguments in HAProxy's working
		// directory, which is lodestar's (the test's).
		{name: "an external check that runs touch",
			labels: map[string]string{"HAPROXY_0_BACKEND_HEAD": head + "  option external-check\n  external-check command /usr/bin/touch\n  external-check path " + outside + "\n"},
			want:   []string{"HAPROXY_0_BACKEND_HEAD", "external-check"}},
		{name: "a bind on the victim's port",
			labels: map[string]string{"HAPROXY_0_BIND_ADDR": "127.0.0.1:" + strconv.Itoa(victimPort) + ",127.0.0.1"},
			want:   []string{"HAPROXY_0_BIND_ADDR", strconv.Itoa(victimPort)}},
		{name: "a bind on a unix socket outside the run dir",
			labels: map[string]string{"HAPROXY_0_BIND_ADDR": "unix@" + filepath.Join(outside, "bind.sock") + ",127.0.0.1"},
			want:   []string{"HAPROXY_0_BIND_ADDR", "unix@"}},
		{name: "a redirect to lodestar's environment",
			labels: map[string]string{"HAPROXY_0_HTTP_BACKEND_REDIR": "%[env(LODESTAR_API_AUTH)]"},
			want:   []string{"HAPROXY_0_HTTP_BACKEND_REDIR", "env(LODESTAR_API_AUTH)"}},
		{name: "an auth realm that expands lodestar's environment",
			labels: map[string]string{"HAPROXY_0_AUTH": "${LODESTAR_API_AUTH}:admin:$6$salt$hash"},
			want:   []string{"HAPROXY_0_AUTH", "LODESTAR_API_AUTH"}},
		{name: "a task host that injects a directive",
			host: "127.0.0.1\n  http-request return status 200 content-type text/plain string pwned",
			want: []string{"task", "host", `\n  http-request return`}},
		{name: "the victim's service port",
			labels: map[string]string{"HAPROXY_0_PORT": strconv.Itoa(victimPort)},
			want:   []string{"port " + strconv.Itoa(victimPort), "/victim/web"}},
		{name: "the victim's vhost with a higher weight",
			labels: map[string]string{"HAPROXY_0_VHOST": victimVhost, "HAPROXY_0_BACKEND_WEIGHT": "100"},
			want:   []string{victimVhost, "/victim/web"}},
		{name: "a path that reads a file",
			labels: map[string]string{"HAPROXY_0_PATH": "-f /etc/passwd"},
			want:   []string{"HAPROXY_0_PATH", "/etc/passwd"}},
	}
}

// TestHostileTenantBesideVictim: on a default (confined) edge whose lodestar holds an API
// secret in its environment, a hostile /evil/app takes each hostile shape in turn beside
// /victim/web, which takes requests all along (new connections and keep-alive, through its
// vhost and its service port). The victim never fails and is always answered by its own task;
// each hostile version is named in /v1/haproxy/status with its label or field; the HAProxy
// processes stay bounded; nothing appears in the directory the attacks point at; no response
// carries the secret. Then /evil/app turns honest and is routed, the victim still unharmed.
func TestHostileTenantBesideVictim(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	cwdBefore := dirNames(t, ".")
	e := startHostileEdge(t, "hostile.test")
	fm, lb, victim, evil, secret := e.fm, e.lb, e.victim, e.evil, e.secret
	victimPort, evilPort, victimVhost, evilVhost := e.victimPort, e.evilPort, e.victimVhost, e.evilVhost
	victimRoutes := e.victimRoutes

	load := startVictimLoad(t, lb, victimRoutes, victim.ID, secret)
	probe := lbClient(t, false)
	evilRoutes := []route{lb.vhostRoute(evilVhost), portRoute(evilPort)}
	for _, c := range hostileCases(outside, victimPort, victimVhost) {
		labels := map[string]string{"HAPROXY_0_VHOST": evilVhost}
		for k, v := range c.labels {
			labels[k] = v
		}
		putApp(t, fm, lbApp("/evil/app", evilPort, labels))
		var taskID string
		if c.host != "" {
			id, err := fm.AddTask("/evil/app", fakemarathon.TaskSpec{Host: c.host, Ports: []int{evil.Port}})
			if err != nil {
				t.Fatal(err)
			}
			taskID = id
		}
		Eventually(t, lbTimeout, "/evil/app named for "+c.name, func() error {
			return evilNamed(lb.status(t), c.want)
		})
		st := lb.status(t)
		t.Logf("%s: %s", c.name, evilEntries(st))
		if named := appEntries(st, "/victim/web"); len(named) != 0 {
			t.Errorf("%s: the victim is named in the status: %q", c.name, named)
		}
		for _, r := range evilRoutes {
			if err := noSecretIn(probe, r, secret); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
		if taskID != "" {
			killTask(t, fm, taskID)
		}
	}

	// The hostile labels are gone: /evil/app is routed like any app, and named nowhere.
	putApp(t, fm, lbApp("/evil/app", evilPort, map[string]string{"HAPROXY_0_VHOST": evilVhost}))
	for _, r := range evilRoutes {
		waitRoutesTo(t, probe, r, evil.ID)
	}
	Eventually(t, lbTimeout, "/evil/app named nowhere in the status", func() error {
		if err := evilNamed(lb.status(t), nil); err == nil {
			return fmt.Errorf("still named: %+v", lb.status(t))
		}
		return nil
	})

	load.stop(t)
	if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
		t.Errorf("the directory the attacks point at holds %v (%v): want nothing", entries, err)
	}
	if cwdAfter := dirNames(t, "."); !slices.Equal(cwdAfter, cwdBefore) {
		t.Errorf("HAProxy's working directory changed: %q, was %q", cwdAfter, cwdBefore)
	}
	if st := lb.status(t); st.LastApply == nil || st.LastApply.Kind == "failed" {
		t.Errorf("last apply %+v: want a successful apply after the honest version", st.LastApply)
	}
}

// hostileEdge is a lodestar edge whose environment holds an API secret, with a victim app and
// /evil/app, each with its vhost and one honest task; the victim is routed.
type hostileEdge struct {
	fm                     *fakemarathon.Server
	lb                     *lbStack
	victim, evil           *haproxytest.HTTPBackend
	secret                 string
	victimPort, evilPort   int
	victimVhost, evilVhost string
	victimRoutes           []route
}

// startHostileEdge starts a hostileEdge whose vhosts end in domain, lodestar run with extra.
// /evil/app's task is honest all along: a hostile version that got through would have a
// server to route to and to check.
func startHostileEdge(t *testing.T, domain string, extra ...string) *hostileEdge {
	t.Helper()
	ports := freePortBlock(t, 2)
	e := &hostileEdge{
		victim: haproxytest.BackendNamed(t, "victim"), evil: haproxytest.BackendNamed(t, "evil"),
		secret:     "token:s3cr3t-" + randomHex(t),
		victimPort: ports[0], evilPort: ports[1],
		victimVhost: "victim." + domain, evilVhost: "evil." + domain,
	}
	e.fm = startLBMarathon(t,
		lbApp("/victim/web", e.victimPort, map[string]string{"HAPROXY_0_VHOST": e.victimVhost}),
		lbApp("/evil/app", e.evilPort, map[string]string{"HAPROXY_0_VHOST": e.evilVhost}))
	addTask(t, e.fm, "/victim/web", e.victim)
	addTask(t, e.fm, "/evil/app", e.evil)
	e.lb = startLBWithEnv(t, e.fm, []string{"LODESTAR_API_AUTH=" + e.secret}, extra...)
	e.victimRoutes = []route{e.lb.vhostRoute(e.victimVhost), portRoute(e.victimPort)}
	for _, r := range e.victimRoutes {
		waitRoutesTo(t, lbClient(t, false), r, e.victim.ID)
	}
	return e
}

// evilNamed reports nil when /v1/haproxy/status names /evil/app (excluded or warned) in an
// entry that holds every string of want.
func evilNamed(st haproxy.ApplierStatus, want []string) error {
	seen := evilEntries(st)
	for _, s := range seen {
		if containsAll(s, want) {
			return nil
		}
	}
	return fmt.Errorf("no entry of /evil/app holds %q; its entries: %q", want, seen)
}

// evilEntries are the status's excluded and warning entries of /evil/app.
func evilEntries(st haproxy.ApplierStatus) []string { return appEntries(st, "/evil/app") }

// appEntries are the status's excluded and warning entries of appID.
func appEntries(st haproxy.ApplierStatus, appID string) []string {
	var seen []string
	for _, e := range st.Excluded {
		if e.AppID == appID {
			seen = append(seen, e.Reason+" "+strings.Join(e.HAProxy, " "))
		}
	}
	for _, w := range st.Warnings {
		if w.AppID == appID {
			seen = append(seen, w.Message)
		}
	}
	return seen
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// noSecretIn sends one request through r and fails when its status line, headers or body
// carry secret (any status is fine: the hostile app is usually left out).
func noSecretIn(c *http.Client, r route, secret string) error {
	req, err := http.NewRequest(http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	if r.host != "" {
		req.Host = r.host
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil // nothing listens: nothing leaks
	}
	defer resp.Body.Close()
	return secretIn(resp, secret)
}

// secretIn reads resp's body and reports where resp carries secret (or any half of it).
func secretIn(resp *http.Response, secret string) error {
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	var head bytes.Buffer
	resp.Header.Write(&head)
	for _, part := range []string{secret, secret[len(secret)/2:]} {
		if bytes.Contains(body, []byte(part)) || strings.Contains(head.String(), part) || strings.Contains(resp.Status, part) {
			return fmt.Errorf("a response (status %s) carries lodestar's secret: headers %q, body %.200q", resp.Status, head.String(), body)
		}
	}
	return nil
}

// victimLoad sends requests to the victim until stopped, over new connections and keep-alive,
// and samples the number of HAProxy processes of the edge.
type victimLoad struct {
	done     chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	maxProcs atomic.Int64

	mu     sync.Mutex
	errors []string
}

// victimLoadMax bounds each client's loop, so that a test that never stops it still ends.
const victimLoadMax = 200000

func startVictimLoad(t *testing.T, lb *lbStack, routes []route, victimID, secret string) *victimLoad {
	l := &victimLoad{done: make(chan struct{})}
	// A test that fails before stop still ends the load, and says how the victim fared.
	t.Cleanup(func() {
		if !l.stopped() {
			close(l.done)
			l.wg.Wait()
			t.Logf("victim (load ended by the failed test): %d answered, %d failed, first errors %q; at most %d HAProxy processes",
				l.ok.Load(), l.fail.Load(), l.errors, l.maxProcs.Load())
		}
	})
	for _, keepAlive := range []bool{false, true} {
		c := lbClient(t, keepAlive)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < victimLoadMax && !l.stopped(); i++ {
				r := routes[i%len(routes)]
				if err := askVictim(c, r, victimID, secret); err != nil {
					l.fail.Add(1)
					l.note(fmt.Sprintf("keep-alive %v, %s: %v", keepAlive, r.name, err))
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for !l.stopped() {
			n := int64(len(haproxyProcs(lb.RunDir)))
			for cur := l.maxProcs.Load(); n > cur && !l.maxProcs.CompareAndSwap(cur, n); cur = l.maxProcs.Load() {
			}
			select {
			case <-tick.C:
			case <-l.done:
			}
		}
	}()
	return l
}

func (l *victimLoad) stopped() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *victimLoad) note(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errors) < 10 {
		l.errors = append(l.errors, msg)
	}
}

// victimLoadMin is how many answered requests the load waits for before it stops: enough to
// have run across the hostile versions' applies.
const victimLoadMin = 200

// stop ends the load, once it has had victimLoadMin answers, and checks it: no request failed,
// the HAProxy processes stayed bounded.
func (l *victimLoad) stop(t *testing.T) {
	t.Helper()
	Eventually(t, lbTimeout, "the victim load to be answered", func() error {
		if ok, fail := l.ok.Load(), l.fail.Load(); ok+fail < victimLoadMin {
			return fmt.Errorf("%d answered, %d failed", ok, fail)
		}
		return nil
	})
	close(l.done)
	l.wg.Wait()
	ok, fail := l.ok.Load(), l.fail.Load()
	t.Logf("victim: %d requests answered, %d failed; at most %d HAProxy processes", ok, fail, l.maxProcs.Load())
	if fail != 0 {
		t.Errorf("the victim failed %d of %d requests; the first: %q", fail, ok+fail, l.errors)
	}
	if n := l.maxProcs.Load(); n > maxHAProxyProcs || n < 2 {
		t.Errorf("the edge ran up to %d HAProxy processes: want 2 (master and worker) to %d", n, maxHAProxyProcs)
	}
}

// askVictim sends one request through r and checks it was answered by the victim's task with
// a 200, carrying no secret.
func askVictim(c *http.Client, r route, victimID, secret string) error {
	req, err := http.NewRequest(http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	if r.host != "" {
		req.Host = r.host
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := secretIn(resp, secret); err != nil {
		return err
	}
	if id := resp.Header.Get("X-Backend-Id"); resp.StatusCode != http.StatusOK || id != victimID {
		return fmt.Errorf("status %d, answered by %q", resp.StatusCode, id)
	}
	return nil
}

// haproxyProcs lists the running HAProxy processes (not `haproxy -c` checks) whose command line
// names runDir.
func haproxyProcs(runDir string) []int {
	dirs, _ := os.ReadDir("/proc")
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(args[0]) != "haproxy" || !strings.Contains(string(raw), runDir) {
			continue
		}
		check := false
		for _, a := range args {
			check = check || a == "-c"
		}
		if !check {
			pids = append(pids, pid)
		}
	}
	return pids
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestHostileTenantFullEdge: on a --label-templates full edge (one team's cluster, raw
// templates) a template that reaches HAProxy still cannot daemonize it nor read lodestar's
// environment: a rule that answers with `%[env(LODESTAR_API_AUTH)]` and "${LODESTAR_API_AUTH}"
// answers them empty, and a second global section with `daemon` leaves HAProxy supervised and
// its processes bounded, across a reload and across a restart (its master killed), while the
// victim never fails (its load pauses over the kill). Then the hostile labels are removed and
// /evil/app is routed to its task.
func TestHostileTenantFullEdge(t *testing.T) {
	t.Parallel()
	e := startHostileEdge(t, "full.test", "--label-templates", "full")
	fm, lb, victim, evil, secret := e.fm, e.lb, e.victim, e.evil, e.secret
	evilPort, evilVhost, victimRoutes := e.evilPort, e.evilVhost, e.victimRoutes
	load := startVictimLoad(t, lb, victimRoutes, victim.ID, secret)
	probe := lbClient(t, false)
	evilRoute := lb.vhostRoute(evilVhost)

	head := "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n"
	putApp(t, fm, lbApp("/evil/app", evilPort, map[string]string{
		"HAPROXY_0_VHOST": evilVhost,
		"HAPROXY_0_BACKEND_HEAD": head + "  http-request return status 200 content-type text/plain" +
			` lf-string "env=[%[env(LODESTAR_API_AUTH)]] expanded=[${{LODESTAR_API_AUTH}}]"` + "\n",
	}))
	// ({{ and }} are a literal brace in a template.) The rule is live once the evil vhost answers from HAProxy instead of the evil task.
	var body string
	Eventually(t, lbTimeout, "the hostile rule to answer on "+evilVhost, func() error {
		b, err := bodyOf(probe, evilRoute)
		if err != nil {
			return fmt.Errorf("%w; /evil/app named %q", err, evilEntries(lb.status(t)))
		}
		if !strings.HasPrefix(b, "env=[") {
			return fmt.Errorf("answered %.100q", b)
		}
		body = b
		return nil
	})
	if body != "env=[] expanded=[]" {
		t.Errorf("the hostile rule answered %q: want lodestar's environment unseen by HAProxy (env=[] expanded=[])", body)
	}
	if err := noSecretIn(probe, evilRoute, secret); err != nil {
		t.Error(err)
	}

	prev := lb.status(t)
	putApp(t, fm, lbApp("/evil/app", evilPort, map[string]string{
		"HAPROXY_0_VHOST":        evilVhost,
		"HAPROXY_0_BACKEND_HEAD": "\nglobal\n  daemon\n" + head,
	}))
	// Applied (or refused) once the last apply or /evil/app's entry names the global section.
	var st haproxy.ApplierStatus
	Eventually(t, lbTimeout, "the daemon version applied or refused", func() error {
		st = lb.status(t)
		if st.LastApply != nil && strings.Contains(st.LastApply.Reason+st.LastApply.Error, `"global"`) {
			return nil
		}
		for _, e := range evilEntries(st) {
			if strings.Contains(e, "global") || strings.Contains(e, "daemon") {
				return nil
			}
		}
		return fmt.Errorf("last apply %+v, /evil/app named %q", st.LastApply, evilEntries(st))
	})
	t.Logf("the daemon version: last apply %+v, /evil/app named %q", st.LastApply, evilEntries(st))
	if !st.Process.Running || st.Process.PID != prev.Process.PID || st.Process.Restarts != prev.Process.Restarts {
		t.Errorf("HAProxy after the daemon version: %+v, before: %+v: want the same master, still supervised", st.Process, prev.Process)
	}

	load.stop(t)

	// A reload keeps the running master; a start reads `daemon`. HAProxy's master dies with the
	// daemon version in place: the supervisor starts it again once, in the foreground, not in a
	// loop of masters that leave it.
	killed := st.Process.PID
	if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL to HAProxy's master %d: %v", killed, err)
	}
	Eventually(t, lbTimeout, "lodestar to start HAProxy again", func() error {
		if p := lb.status(t).Process; p.Restarts != prev.Process.Restarts+1 || !p.Running || p.PID == killed {
			return fmt.Errorf("process %+v", p)
		}
		return nil
	})
	for _, r := range victimRoutes {
		waitRoutesTo(t, probe, r, victim.ID)
	}
	restarted := lb.status(t).Process

	// The hostile label is removed: /evil/app is routed to its task, the victim never fails.
	load = startVictimLoad(t, lb, victimRoutes, victim.ID, secret)
	putApp(t, fm, lbApp("/evil/app", evilPort, map[string]string{"HAPROXY_0_VHOST": evilVhost}))
	waitRoutesTo(t, probe, evilRoute, evil.ID)
	load.stop(t)
	if end := lb.status(t).Process; end.PID != restarted.PID || end.Restarts != restarted.Restarts || !end.Running {
		t.Errorf("HAProxy at the end: %+v, after its restart: %+v: want the same supervised master", end, restarted)
	}
	if pids := haproxyProcs(lb.RunDir); len(pids) > maxHAProxyProcs {
		t.Errorf("HAProxy processes of the edge at the end: %v: want at most %d", pids, maxHAProxyProcs)
	}
}

// bodyOf sends one GET through r and returns the body of a 200.
func bodyOf(c *http.Client, r route) (string, error) {
	req, err := http.NewRequest(http.MethodGet, r.url, nil)
	if err != nil {
		return "", err
	}
	req.Host = r.host
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %.100q", resp.StatusCode, b)
	}
	return string(b), nil
}
