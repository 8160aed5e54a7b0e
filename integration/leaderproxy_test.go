package integration

// Leader-only proxies (--leader-proxy): an HAProxy frontend whose backend holds only the
// current Mesos or Marathon leader. A leader change moves the proxy through the runtime API:
// the tests change the leader, wait until requests through the proxy reach the new one, log
// how long that took, and check that HAProxy's own reload counter did not move.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// leaderSwitchTimeout bounds the wait for traffic to reach a new leader. The figure the tests
// log is what they measure; nothing asserts on it.
const leaderSwitchTimeout = 10 * time.Second

// startLeaderLB runs `lodestar serve` driving a real HAProxy like startLB, with args giving the
// sources and the leader proxies, and returns once lodestar is ready.
func startLeaderLB(t *testing.T, args ...string) *lbStack {
	t.Helper()
	s := &lbStack{
		RunDir:    haproxytest.SocketDir(t),
		HTTPAddr:  loopbackAddr(t),
		HTTPSAddr: loopbackAddr(t),
		StatsAddr: loopbackAddr(t),
	}
	all := append([]string{
		"--group", "*", "--haproxy-bin", haproxytest.Bin(t),
		"--http-bind", s.HTTPAddr, "--https-bind", s.HTTPSAddr, "--stats-bind", s.StatsAddr,
		"--no-appid-frontend", "--run-dir", s.RunDir,
		"--reload-min-wait", "20ms", "--reload-max-wait", "200ms",
	}, args...)
	s.Lodestar = Start(t, all...)
	s.WaitReady(t)
	s.Master = haproxy.NewMasterClient(filepath.Join(s.RunDir, "master.sock"))
	s.Admin = haproxy.NewRuntimeClient(filepath.Join(s.RunDir, "admin.sock"))
	return s
}

// waitLeaderTraffic asks through the proxy with ask (which returns who answered) until want
// answers, and returns how long that took from since. Failed requests are retried: during
// the switch HAProxy may answer 503.
func waitLeaderTraffic(t *testing.T, ask func() (string, error), want string, since time.Time) time.Duration {
	t.Helper()
	deadline := since.Add(leaderSwitchTimeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var got string
	var err error
	for {
		got, err = ask()
		if err == nil && got == want {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests through the leader proxy did not reach %s within %s: last answer from %q, error %v", want, leaderSwitchTimeout, got, err)
		}
		<-tick.C
	}
}

// mesosMasterAt asks url (a fake master's state path through the proxy) and returns the
// "ip:port" of the master that answered, from the pid in its state.
func mesosMasterAt(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var st struct {
		PID string `json:"pid"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return "", fmt.Errorf("not a Mesos state: %w", err)
	}
	return strings.TrimPrefix(st.PID, "master@"), nil
}

// TestLeaderProxyMesos: two fake masters announced in a real ZooKeeper; requests through
// --leader-proxy mesos reach the leader; the leader's ZooKeeper node goes and the other
// master leads; requests reach it, and HAProxy did not reload.
func TestLeaderProxyMesos(t *testing.T) {
	t.Parallel()
	zk := zktest.Start(t)
	cluster, err := fakemesos.NewCluster(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	a, b := cluster.Masters[0], cluster.Masters[1]
	reg, err := fakemesos.NewZKRegistrar(zk.Servers(), "/mesos")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	nodeA, err := reg.Register(fakemesos.NewMasterInfo(a.HostPort()), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(fakemesos.NewMasterInfo(b.HostPort()), true); err != nil {
		t.Fatal(err)
	}
	fm := startLBMarathon(t)
	proxy := loopbackAddr(t)
	lb := startLeaderLB(t, "--marathon", fm.URL(), "--mesos-zk", zk.URL("/mesos"), "--mesos-refresh", "1h",
		"--leader-proxy", "mesos="+proxy)

	// One keep-alive client throughout: a client's open connection follows the leader too.
	c := lbClient(t, true)
	ask := func() (string, error) { return mesosMasterAt(c, "http://"+proxy+fakemesos.PathState) }
	waitLeaderTraffic(t, ask, a.HostPort(), time.Now())
	reloads := lb.reloadCount(t)
	before := lb.status(t)

	// The masters know first who leads; ZooKeeper's change is what lodestar follows.
	cluster.SetLeader(1)
	changed := time.Now()
	if err := reg.Unregister(nodeA); err != nil {
		t.Fatal(err)
	}
	took := waitLeaderTraffic(t, ask, b.HostPort(), changed)
	t.Logf("leader switch (ZooKeeper node deleted → first request answered by the new Mesos leader): %s", took.Round(time.Millisecond))
	for i := range 20 {
		if got, err := ask(); err != nil || got != b.HostPort() {
			t.Fatalf("request %d after the switch: answered by %q (%v), want only the new leader %s", i, got, err, b.HostPort())
		}
	}
	if got := lb.reloadCount(t); got != reloads {
		t.Errorf("HAProxy's reload count (show proc) went from %d to %d on a leader change: want no reload", reloads, got)
	}
	after := lb.waitApplied(t, before)
	if after.Reloads != before.Reloads {
		t.Errorf("/v1/haproxy/status: reloads %d → %d on a leader change, want none", before.Reloads, after.Reloads)
	}
}

// marathonAt returns which of the fakes answered a GET /ping through the proxy: the fakes
// count requests per path, and nothing but the test asks /ping.
func marathonAt(c *http.Client, proxy string, fakes ...*fakemarathon.Server) (string, error) {
	counts := make([]int, len(fakes))
	for i, f := range fakes {
		counts[i] = f.Requests("/ping")
	}
	resp, err := c.Get("http://" + proxy + "/ping")
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	for i, f := range fakes {
		if f.Requests("/ping") > counts[i] {
			return f.URL(), nil
		}
	}
	return "", fmt.Errorf("no fake Marathon counted the request")
}

// TestLeaderProxyMarathon: two fake Marathons agree that the first leads; requests through
// --leader-proxy marathon reach it; both then name the second; requests reach it, and HAProxy
// did not reload.
func TestLeaderProxyMarathon(t *testing.T) {
	t.Parallel()
	fm1, fm2 := startLBMarathon(t), startLBMarathon(t)
	hostPort := func(f *fakemarathon.Server) string { return strings.TrimPrefix(f.URL(), "http://") }
	fm1.SetLeader(hostPort(fm1))
	fm2.SetLeader(hostPort(fm1))
	proxy := loopbackAddr(t)
	lb := startLeaderLB(t, "--marathon", fm1.URL()+","+fm2.URL(), "--leader-proxy", "marathon="+proxy)

	c := lbClient(t, true)
	ask := func() (string, error) { return marathonAt(c, proxy, fm1, fm2) }
	waitLeaderTraffic(t, ask, fm1.URL(), time.Now())
	reloads := lb.reloadCount(t)
	before := lb.status(t)

	changed := time.Now()
	fm1.SetLeader(hostPort(fm2))
	fm2.SetLeader(hostPort(fm2))
	took := waitLeaderTraffic(t, ask, fm2.URL(), changed)
	t.Logf("leader switch (/v2/leader names the other member → first request answered by it): %s", took.Round(time.Millisecond))
	for i := range 20 {
		if got, err := ask(); err != nil || got != fm2.URL() {
			t.Fatalf("request %d after the switch: answered by %q (%v), want only the new leader %s", i, got, err, fm2.URL())
		}
	}
	if got := lb.reloadCount(t); got != reloads {
		t.Errorf("HAProxy's reload count (show proc) went from %d to %d on a leader change: want no reload", reloads, got)
	}
	after := lb.waitApplied(t, before)
	if after.Reloads != before.Reloads {
		t.Errorf("/v1/haproxy/status: reloads %d → %d on a leader change, want none", before.Reloads, after.Reloads)
	}
}
