package mesos

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
)

func TestNewValidates(t *testing.T) {
	noPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{name: "nothing to poll", cfg: Config{}, err: "neither a ZooKeeper URL"},
		{name: "bad zk URL", cfg: Config{ZK: "zk://h1:2181"}, err: `bad ZooKeeper URL "zk://h1:2181": no path`},
		{name: "zk URL without scheme", cfg: Config{ZK: "h1:2181/mesos"}, err: "does not start with zk://"},
		{name: "bad master", cfg: Config{Masters: []string{"10.0.0.1:5050", "10.0.0.2:x"}}, err: `master "10.0.0.2:x": bad port`},
		{name: "empty master", cfg: Config{Masters: []string{" "}}, err: "empty address"},
		{name: "mixed schemes", cfg: Config{Masters: []string{"http://a:5050", "https://b:5050"}}, err: "mix http:// and https://"},
		{name: "http master with HTTPS", cfg: Config{Masters: []string{"http://a:5050"}, HTTPS: true}, err: "mix http:// and https://"},
		{name: "missing CA bundle", cfg: Config{Masters: []string{"a"}, CACertFile: "/nonexistent/ca.pem"}, err: "CA bundle"},
		{name: "CA bundle without PEM", cfg: Config{Masters: []string{"a"}, CACertFile: noPEM}, err: "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("New: %v; want an error containing %q", err, tt.err)
			}
		})
	}

	s, err := New(Config{Masters: []string{"m1", "https://m2:5051/", "m1:5050"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.static, []string{"m1:5050", "m2:5051"}) || s.scheme != "https" || s.cfg.Refresh != DefaultRefresh {
		t.Errorf("static %v, scheme %s, refresh %s; want [m1:5050 m2:5051], https, %s", s.static, s.scheme, s.cfg.Refresh, DefaultRefresh)
	}
	if s.Name() != "mesos" {
		t.Errorf("Name() = %q", s.Name())
	}
}

// TestStaticFirstMasterDown: the first master of the list refuses connections; the next one
// leads. Masters lists the static list in its order.
func TestStaticFirstMasterDown(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1)
	dead := deadAddr(t)
	h := start(t, Config{Masters: []string{dead, c.Masters[0].HostPort()}, Refresh: time.Hour})
	st := h.waitLeader(c.Masters[0].HostPort())
	if got, want := addrs(st.Masters), []string{dead, c.Masters[0].HostPort()}; !slices.Equal(got, want) {
		t.Errorf("masters %v, want the static list %v", got, want)
	}
	if st.Masters[0].IP != "127.0.0.1" {
		t.Errorf("master %+v: want its IP", st.Masters[0])
	}
	h.waitReport(0, "a successful poll", isSuccess)
}

// TestStaticFollowsTheLeaderItIsTold: a master that does not lead names the leader, in its
// state (Mesos 0.2x) or with a redirect (Mesos 1.x); the source asks that one. A later leader
// change is followed the same way.
func TestStaticFollowsTheLeaderItIsTold(t *testing.T) {
	t.Parallel()
	for _, redirect := range []bool{false, true} {
		t.Run("redirect="+map[bool]string{false: "no", true: "yes"}[redirect], func(t *testing.T) {
			c := cluster(t, 3)
			for _, m := range c.Masters {
				m.SetRedirect(redirect)
			}
			c.SetLeader(2)
			h := start(t, Config{Masters: c.Addrs()[:2], Refresh: time.Hour})
			st := h.waitLeader(c.Masters[2].HostPort())
			if got := addrs(st.Masters); !slices.Equal(got, c.Addrs()[:2]) {
				t.Errorf("masters %v, want the static list", got)
			}
			if c.Masters[1].Requests("") != 0 {
				t.Errorf("master 1 asked although master 0 named the leader")
			}

			c.SetLeader(1)
			h.src.Resync(context.Background())
			h.waitLeader(c.Masters[1].HostPort())
			if h.src.Leader() != c.Masters[1].HostPort() {
				t.Errorf("Leader() = %q, want %q", h.src.Leader(), c.Masters[1].HostPort())
			}
			h.noEmptyState()
		})
	}
}

// TestStaticHostName: a master listed by host name leads when its own pid is the leader's,
// although the address asked is not the one in the pid; Masters carries the name and its IP.
func TestStaticHostName(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1)
	_, port, _ := net.SplitHostPort(c.Masters[0].HostPort())
	h := start(t, Config{Masters: []string{"localhost:" + port}, Refresh: time.Hour})
	st := h.waitLeader(c.Masters[0].HostPort())
	want := discovery.Master{Hostname: "localhost", IP: "127.0.0.1", Port: c.Masters[0].Port()}
	if len(st.Masters) != 1 || st.Masters[0] != want {
		t.Errorf("masters %+v, want [%+v]", st.Masters, want)
	}
	if got := h.src.Leader(); got != "localhost:"+port {
		t.Errorf("Leader() = %q, want the address asked", got)
	}
}

// TestStaticNoLeaderElected: masters that know no leader give no state.
func TestStaticNoLeaderElected(t *testing.T) {
	t.Parallel()
	c := cluster(t, 2)
	c.SetLeader(-1)
	h := start(t, Config{Masters: c.Addrs(), Refresh: time.Hour})
	h.waitReport(0, "no leader", isErr("no Mesos master answered as leader", "no leader elected"))
	if n := len(h.sink.Sent()); n != 0 {
		t.Fatalf("%d states sent with no leader elected", n)
	}
}

// TestFallbackPaths: a master that answers 404 on the newer paths is read on the oldest one,
// and the path that worked is used straight away on the next poll.
func TestFallbackPaths(t *testing.T) {
	t.Parallel()
	for _, serve := range []string{fakemesos.PathStateJSON, fakemesos.PathLegacyState} {
		t.Run(serve, func(t *testing.T) {
			c := cluster(t, 1)
			m := c.Masters[0]
			m.SetPaths(serve)
			h := start(t, Config{Masters: c.Addrs(), Refresh: time.Hour})
			h.waitLeader(m.HostPort())
			first := h.waitReport(0, "the first poll", isSuccess)
			if m.Requests(fakemesos.PathState) != 1 || m.Requests(serve) != 1 {
				t.Fatalf("requests: %s %d, %s %d; want one each", fakemesos.PathState, m.Requests(fakemesos.PathState), serve, m.Requests(serve))
			}
			h.src.Resync(context.Background())
			h.waitReport(first+1, "the second poll", isSuccess)
			if m.Requests(fakemesos.PathState) != 1 || m.Requests(serve) != 2 {
				t.Fatalf("second poll did not go straight to %s: %s %d, %s %d", serve,
					fakemesos.PathState, m.Requests(fakemesos.PathState), serve, m.Requests(serve))
			}
		})
	}
}

// TestNoStatePath: a master that serves no state path is an error naming the paths tried.
func TestNoStatePath(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1)
	c.Masters[0].SetPaths("/elsewhere")
	h := start(t, Config{Masters: c.Addrs(), Refresh: time.Hour})
	h.waitReport(0, "404 everywhere", isErr("no state on /master/state, /master/state.json, /state.json"))
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	c := cluster(t, 2)
	for _, m := range c.Masters {
		m.SetAuth("ops", "s3cret")
		m.SetRedirect(true) // the leader is followed with the credentials
	}
	c.SetLeader(1)

	bad := start(t, Config{Masters: c.Addrs(), Username: "ops", Password: "wrong", Refresh: time.Hour})
	bad.waitReport(0, "refused credentials", isErr("401 Unauthorized", "check --mesos-auth"))

	good := start(t, Config{Masters: c.Addrs(), Username: "ops", Password: "s3cret", Refresh: time.Hour})
	good.waitLeader(c.Masters[1].HostPort())
	if len(bad.sink.Sent()) != 0 {
		t.Errorf("a state was sent without valid credentials")
	}
}

func TestTLSWithCABundle(t *testing.T) {
	t.Parallel()
	m := fakemesos.New()
	m.TLS = true
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, m.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	untrusted := start(t, Config{Masters: []string{m.HostPort()}, HTTPS: true, Refresh: time.Hour})
	untrusted.waitReport(0, "an untrusted certificate", isErr("certificate"))

	h := start(t, Config{Masters: []string{"https://" + m.HostPort()}, CACertFile: ca, Refresh: time.Hour})
	h.waitLeader(m.HostPort())
}

// TestAllMastersDownKeepsTheState: every master goes down; the error is reported, the last
// state stays, nothing empty is sent; when they are back the source recovers on its own.
func TestAllMastersDownKeepsTheState(t *testing.T) {
	t.Parallel()
	c := cluster(t, 2)
	h := start(t, Config{Masters: c.Addrs(), Refresh: 50 * time.Millisecond})
	h.waitLeader(c.Masters[0].HostPort())
	up := h.waitReport(0, "the first sync", isSuccess)
	version := h.reg.Snapshot().Version

	c.Close()
	down := h.waitReport(up+1, "every master down", isErr("no Mesos master answered as leader", c.Masters[0].HostPort(), c.Masters[1].HostPort()))
	if s := h.reg.Snapshot(); s.Version != version || s.Mesos.Leader != c.Masters[0].HostPort() || len(s.Mesos.Frameworks) != seedFrameworks {
		t.Fatalf("state changed while every master was down: version %d → %d, %s", version, s.Version, describe(s.Mesos))
	}
	status := h.reg.Sources()[0]
	if !strings.Contains(status.LastError, "no Mesos master answered") || status.LastSync.IsZero() {
		t.Errorf("status %+v: want the error and the time of the last good sync", status)
	}

	// The other master comes back as leader; polling resumes without a refresh request.
	c.SetLeader(1)
	if err := c.Masters[1].Restart(); err != nil {
		t.Fatal(err)
	}
	h.waitReport(down+1, "the recovery", isSuccess)
	h.waitLeader(c.Masters[1].HostPort())
	h.noEmptyState()
}

// TestBadStateIsAnError: a state that does not decode, or is over the size limit, is an
// error and is not sent.
func TestBadStateIsAnError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		state   string
		maxBody int64
		err     string
	}{
		{name: "malformed", state: `{"frameworks": "not a list"}`, err: "malformed Mesos state JSON"},
		{name: "too large", state: `{"frameworks": []}`, maxBody: 64, err: "larger than 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(t, 1)
			if err := c.SetState([]byte(tt.state)); err != nil {
				t.Fatal(err)
			}
			h := start(t, Config{Masters: c.Addrs(), Refresh: time.Hour, MaxBody: tt.maxBody})
			h.waitReport(0, tt.name, isErr(c.Masters[0].HostPort(), tt.err))
			if n := len(h.sink.Sent()); n != 0 {
				t.Fatalf("%d states sent", n)
			}
		})
	}
}

// TestRunEndsWithItsContext: Run returns nil, promptly, when its context ends (the harness
// checks), also while ZooKeeper is unreachable.
func TestRunEndsWithItsContext(t *testing.T) {
	t.Parallel()
	h := start(t, Config{ZK: "zk://" + deadAddr(t) + "/mesos", Refresh: time.Hour})
	h.waitReport(0, "ZooKeeper unreachable", isErr("ZooKeeper"))
	var _ discovery.Source = h.src
}
