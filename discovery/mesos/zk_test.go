package mesos

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

func TestParseZKURL(t *testing.T) {
	tests := []struct {
		in      string
		servers []string
		path    string
		auth    string
		err     string
	}{
		{in: "zk://h1:2181,h2:2181/mesos", servers: []string{"h1:2181", "h2:2181"}, path: "/mesos"},
		{in: " zk://10.0.0.1/mesos/ ", servers: []string{"10.0.0.1:2181"}, path: "/mesos"},
		{in: "zk://h1:2181, h2 ,h3:2182/a/b", servers: []string{"h1:2181", "h2:2181", "h3:2182"}, path: "/a/b"},
		{in: "zk://[2001:db8::1]:2181,[::1]/mesos", servers: []string{"[2001:db8::1]:2181", "[::1]:2181"}, path: "/mesos"},
		{in: "zk://2001:db8::1/mesos", servers: []string{"[2001:db8::1]:2181"}, path: "/mesos"},
		{in: "zk://ops:s3cret@h1:2181,h2:2181/mesos", servers: []string{"h1:2181", "h2:2181"}, path: "/mesos", auth: "ops:s3cret"},
		{in: "http://h1:2181/mesos", err: "does not start with zk://"},
		{in: "h1:2181/mesos", err: "does not start with zk://"},
		{in: "zk://h1:2181", err: "no path"},
		{in: "zk://h1:2181/", err: "no path"},
		{in: "zk:///mesos", err: "empty host"},
		{in: "zk://h1:2181,,h2/mesos", err: "empty host"},
		{in: "zk://h1:notaport/mesos", err: "bad port"},
		{in: "zk://h1:0/mesos", err: "bad port"},
		{in: "zk://h1:65536/mesos", err: "bad port"},
		{in: "zk://h1:2181/mesos//x", err: "bad path"},
		{in: "zk://h1:2181/mesos/../x", err: "bad path"},
		{in: "zk://:pw@h1/mesos", err: "without a user name"},
		{in: "zk://[::1/mesos", err: "bad host"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			servers, path, err := ParseZKURL(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseZKURL(%q) = %v, %q, %v; want an error containing %q", tt.in, servers, path, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(servers, tt.servers) || path != tt.path {
				t.Fatalf("ParseZKURL(%q) = %q, %q, %v; want %q, %q", tt.in, servers, path, err, tt.servers, tt.path)
			}
			if target, _ := parseZKURL(tt.in); target.auth != tt.auth {
				t.Errorf("credentials %q, want %q", target.auth, tt.auth)
			}
		})
	}
}

func TestBadZKURLErrorHidesThePassword(t *testing.T) {
	_, err := New(Config{ZK: "zk://ops:s3cret@h1:2181"})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "ops:xxxxx@h1:2181") {
		t.Fatalf("error %v: want the URL with its password hidden", err)
	}
}

func TestParseMasterInfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want discovery.Master
		err  string
	}{
		{
			name: "address form (Mesos 1.x)",
			in:   `{"address":{"hostname":"m1.example","ip":"10.0.2.15","port":5050},"hostname":"m1.example","id":"20151012-1","ip":251789322,"pid":"master@10.0.2.15:5050","port":5050,"version":"1.11.0"}`,
			want: discovery.Master{ID: "20151012-1", Hostname: "m1.example", IP: "10.0.2.15", Port: 5050},
		},
		{
			name: "address wins over a stale uint32",
			in:   `{"address":{"ip":"10.0.2.16","port":5051},"hostname":"m1","ip":251789322,"port":5050}`,
			want: discovery.Master{Hostname: "m1", IP: "10.0.2.16", Port: 5051},
		},
		{
			name: "uint32 ip in network byte order (Mesos before 1.0)",
			in:   `{"hostname":"m2","id":"x","ip":251789322,"pid":"master@10.0.2.15:5050","port":5050}`,
			want: discovery.Master{ID: "x", Hostname: "m2", IP: "10.0.2.15", Port: 5050},
		},
		{
			name: "uint32 of 127.0.0.1",
			in:   `{"ip":16777343,"port":5050}`,
			want: discovery.Master{IP: "127.0.0.1", Port: 5050},
		},
		{
			name: "uint32 of 192.168.1.254",
			in:   `{"ip":4261521600,"port":5050}`,
			want: discovery.Master{IP: "192.168.1.254", Port: 5050},
		},
		{
			name: "IPv6 address",
			in:   `{"address":{"ip":"2001:db8::5","port":5050}}`,
			want: discovery.Master{IP: "2001:db8::5", Port: 5050},
		},
		{
			name: "only a pid",
			in:   `{"pid":"master@10.1.1.1:5050","hostname":"m3"}`,
			want: discovery.Master{Hostname: "m3", IP: "10.1.1.1", Port: 5050},
		},
		{name: "not JSON", in: `master@10.1.1.1:5050`, err: "malformed MasterInfo JSON"},
		{name: "no address", in: `{"hostname":"m4","port":5050}`, err: "no address"},
		{name: "no port", in: `{"address":{"ip":"10.0.0.1"}}`, err: "port 0 out of range"},
		{name: "ip beyond uint32", in: `{"ip":4294967296,"port":5050}`, err: "not a uint32"},
		{name: "bad address.ip", in: `{"address":{"ip":"ten","port":5050}}`, err: `"ten" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMasterInfo([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseMasterInfo = %+v, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseMasterInfo = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestMasterInfoRoundTrip: what the fake registrar writes (as Mesos does) reads back.
func TestMasterInfoRoundTrip(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		info := fakemesos.NewMasterInfo("127.0.0.7:5055")
		info.Legacy = legacy
		m, err := parseMasterInfo(info.JSON())
		if err != nil || masterAddr(m) != "127.0.0.7:5055" || m.ID != info.ID {
			t.Errorf("legacy=%t: %+v, %v; want 127.0.0.7:5055 with id %s", legacy, m, err, info.ID)
		}
	}
}

func TestInfoNodesInSequenceOrder(t *testing.T) {
	got := infoNodes([]string{"json.info_0000000010", "log_replicas", "info_0000000001", "json.info_0000000009", "json.info_x", "json.info_0000000011"})
	want := []string{"json.info_0000000009", "json.info_0000000010", "json.info_0000000011"}
	if !slices.Equal(got, want) {
		t.Fatalf("infoNodes = %v, want %v", got, want)
	}
}

// TestZKLeaderAndFailover: the source polls the master with the lowest json.info_ sequence,
// lists every master in sequence order, and follows a leader change at once: with an hour
// between refreshes only ZooKeeper's watch can make it poll again.
func TestZKLeaderAndFailover(t *testing.T) {
	t.Parallel()
	z := zktest.Shared(t)
	path := zkPath(t)
	c := cluster(t, 2)
	a, b := c.Masters[0], c.Masters[1]
	reg := registrar(t, z, path)
	nodeA := register(t, reg, a, true)
	register(t, reg, b, true)

	h := start(t, Config{ZK: z.URL(path), Refresh: time.Hour})
	st := h.waitLeader(a.HostPort())
	if got, want := addrs(st.Masters), []string{a.HostPort(), b.HostPort()}; !slices.Equal(got, want) {
		t.Fatalf("masters %v, want %v (sequence order)", got, want)
	}
	if n := b.Requests(""); n != 0 {
		t.Fatalf("the master that does not lead was asked %d times, want 0", n)
	}
	h.waitReport(0, "the first successful poll", isSuccess)

	c.SetLeader(1)
	if err := reg.Unregister(nodeA); err != nil {
		t.Fatal(err)
	}
	st = h.waitLeader(b.HostPort())
	if got := addrs(st.Masters); !slices.Equal(got, []string{b.HostPort()}) {
		t.Fatalf("masters after the failover %v, want only %s", got, b.HostPort())
	}
	if h.src.Leader() != b.HostPort() {
		t.Errorf("Leader() = %q, want %q", h.src.Leader(), b.HostPort())
	}
	h.noEmptyState()
}

// TestZKUnreadableNodeIsSkipped: a json.info_ node that is not MasterInfo is skipped; the
// lowest readable one leads.
func TestZKUnreadableNodeIsSkipped(t *testing.T) {
	t.Parallel()
	z := zktest.Shared(t)
	path := zkPath(t)
	c := cluster(t, 1)
	reg := registrar(t, z, path)
	if _, err := reg.RegisterRaw([]byte("not json"), true); err != nil {
		t.Fatal(err)
	}
	register(t, reg, c.Masters[0], true)
	h := start(t, Config{ZK: z.URL(path), Refresh: time.Hour})
	st := h.waitLeader(c.Masters[0].HostPort())
	if len(st.Masters) != 1 {
		t.Errorf("masters %v, want only the readable one", st.Masters)
	}
	if lines := h.logs.Lines("skipping a Mesos master node", "malformed MasterInfo JSON"); len(lines) == 0 {
		t.Errorf("no warning about the unreadable node; log:\n%s", h.logs.Tail(2000))
	}
}

// TestZKPathAppearsLater: before any master registered the path does not exist; that is
// reported, and the first master to register is picked up without a refresh.
func TestZKPathAppearsLater(t *testing.T) {
	t.Parallel()
	z := zktest.Shared(t)
	path := zkPath(t) + "/mesos"
	c := cluster(t, 1)
	h := start(t, Config{ZK: z.URL(path), Refresh: time.Hour})
	h.waitReport(0, "the missing path", isErr("no such path", path))
	if len(h.sink.Sent()) != 0 {
		t.Fatalf("a state was sent with no master known")
	}
	register(t, registrar(t, z, path), c.Masters[0], true)
	h.waitLeader(c.Masters[0].HostPort())
	h.waitReport(0, "the recovery", isSuccess)
}

// TestZKMemberDownAtStartIsSkipped: the first ZooKeeper in the URL refuses connections.
func TestZKMemberDownAtStartIsSkipped(t *testing.T) {
	t.Parallel()
	z := zktest.Shared(t)
	path := zkPath(t)
	c := cluster(t, 1)
	register(t, registrar(t, z, path), c.Masters[0], true)
	dead := deadAddr(t)
	url := "zk://" + dead + "," + dead + "," + z.Addr() + path
	h := start(t, Config{ZK: url, Refresh: time.Hour})
	h.waitLeader(c.Masters[0].HostPort())
}

// TestZKOutageKeepsTheState: ZooKeeper down at start, then up, then down again, then back.
// With no master known, the outage is a failed sync; once a leader is known, polls while
// ZooKeeper is down still reach it and are successful syncs (ZooKeeper's trouble is logged,
// not reported against the state, which is fresh). No empty state is ever sent; when
// ZooKeeper is back the source follows leader changes again.
func TestZKOutageKeepsTheState(t *testing.T) {
	t.Parallel()
	z := zktest.Start(t)
	const path = "/mesos"
	c := cluster(t, 2)
	a, b := c.Masters[0], c.Masters[1]
	reg := registrar(t, z, path)
	// Persistent nodes: the registrar's session may expire while ZooKeeper is down.
	nodeA := register(t, reg, a, false)
	register(t, reg, b, false)
	reg.Close()

	z.Stop()
	h := start(t, Config{ZK: z.URL(path), Refresh: time.Hour, ZKSessionTimeout: 2 * time.Second})
	h.waitReport(0, "ZooKeeper down at start", isErr("ZooKeeper", z.Addr()))
	if len(h.sink.Sent()) != 0 {
		t.Fatalf("a state was sent while ZooKeeper was down at start")
	}

	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitLeader(a.HostPort())
	up := h.waitReport(0, "the first sync", isSuccess)
	version := h.reg.Snapshot().Version

	failing := len(h.logs.Lines("Mesos leader detection through ZooKeeper failing"))
	z.Stop()
	h.waitLogs(failing+1, "ZooKeeper going down", "Mesos leader detection through ZooKeeper failing")
	// A poll while ZooKeeper is down still reaches the last leader, and is a successful sync.
	reports := h.sink.ReportCount()
	polls := a.Requests("")
	h.src.Resync(context.Background())
	if err := a.WaitRequests(waitCtx(t), "", polls+1); err != nil {
		t.Fatal(err)
	}
	h.waitReport(reports, "a poll while ZooKeeper is down", isSuccess)
	for i, err := range h.sink.ReportsFrom(up) {
		if err != nil {
			t.Errorf("sync report #%d while ZooKeeper is down but the leader answers: %v, want success", up+i, err)
		}
	}
	if status := h.reg.Sources()[0]; status.LastError != "" || status.LastSync.IsZero() {
		t.Errorf("status while ZooKeeper is down and the leader answers: %+v; want synced, no error", status)
	}
	if s := h.reg.Snapshot(); s.Mesos == nil || s.Mesos.Leader != a.HostPort() || s.Version != version {
		t.Fatalf("state changed while ZooKeeper was down: version %d → %d, %s", version, s.Version, describe(s.Mesos))
	}

	working := len(h.logs.Lines("Mesos leader detection through ZooKeeper working"))
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitLogs(working+1, "the recovery", "Mesos leader detection through ZooKeeper working")
	// Leader detection works again: the leader's node goes, the next one leads.
	c.SetLeader(1)
	reg = registrar(t, z, path)
	if err := reg.Unregister(nodeA); err != nil {
		t.Fatal(err)
	}
	h.waitLeader(b.HostPort())
	h.noEmptyState()
}

// TestZKLeaderChangeBeforeTheMastersKnow: ZooKeeper names the new leader before the masters
// claim it (an election under way: the old leader still answers as one). The source polls
// again soon, without waiting for the refresh period, and follows once the masters agree.
func TestZKLeaderChangeBeforeTheMastersKnow(t *testing.T) {
	t.Parallel()
	z := zktest.Shared(t)
	path := zkPath(t)
	c := cluster(t, 2)
	a, b := c.Masters[0], c.Masters[1]
	reg := registrar(t, z, path)
	nodeA := register(t, reg, a, true)
	register(t, reg, b, true)

	h := start(t, Config{ZK: z.URL(path), Refresh: time.Hour})
	h.waitLeader(a.HostPort())
	asked := b.Requests("")
	if err := reg.Unregister(nodeA); err != nil {
		t.Fatal(err)
	}
	// b is asked first (ZooKeeper names it) and names a, which still answers as leader.
	if err := b.WaitRequests(waitCtx(t), "", asked+1); err != nil {
		t.Fatal(err)
	}
	if s := h.reg.Snapshot(); s.Mesos.Leader != a.HostPort() {
		t.Fatalf("leader %s while every master still names %s", s.Mesos.Leader, a.HostPort())
	}
	c.SetLeader(1)
	st := h.waitLeader(b.HostPort())
	if got := addrs(st.Masters); !slices.Equal(got, []string{b.HostPort()}) {
		t.Errorf("masters %v, want only %s", got, b.HostPort())
	}
}

// deadAddr returns a 127.0.0.1 address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))
}

// TestZKReconnectsArmOneWatch: each reconnection to ZooKeeper (the same session) lists the
// masters again, but arms no second children watch while the first is still armed
// (go-zookeeper keeps a watch across reconnections until it fires). After many reconnections
// one watch is armed, and it still fires: a leader change is followed without a refresh.
func TestZKReconnectsArmOneWatch(t *testing.T) {
	t.Parallel()
	z := zktest.Shared(t)
	path := zkPath(t)
	c := cluster(t, 2)
	a, b := c.Masters[0], c.Masters[1]
	reg := registrar(t, z, path)
	nodeA := register(t, reg, a, true)
	register(t, reg, b, true)
	px := zktest.StartProxy(t, z.Addr())

	h := start(t, Config{ZK: "zk://" + px.Addr() + path, Refresh: time.Hour})
	h.waitLeader(a.HostPort())
	const working = "Mesos leader detection through ZooKeeper working"
	const reconnects = 3
	for i := range reconnects {
		lost := len(h.logs.Lines("Mesos leader detection through ZooKeeper failing", "connection lost"))
		back := len(h.logs.Lines(working))
		px.Cut()
		h.waitLogs(lost+1, fmt.Sprintf("reconnection %d: the connection lost", i+1), "connection lost")
		h.waitLogs(back+1, fmt.Sprintf("reconnection %d: listed again", i+1), working)
	}
	if n := h.src.det.watches.Load(); n != 1 {
		t.Fatalf("%d watches armed after %d reconnections, want 1", n, reconnects)
	}

	c.SetLeader(1)
	if err := reg.Unregister(nodeA); err != nil {
		t.Fatal(err)
	}
	// The masters the state lists come from the listing after the watch fired, which arms
	// the next watch first. (b may lead in the registry earlier: a asked on a poll names it.)
	h.waitMesos("the listing after the watch fired", func(st *discovery.MesosState) bool {
		return st.Leader == b.HostPort() && slices.Equal(addrs(st.Masters), []string{b.HostPort()})
	})
	if n := h.src.det.watches.Load(); n != 1 {
		t.Fatalf("%d watches armed after the watch fired, want 1", n)
	}
}

// TestZKUnreadableLeaderNodeNamesNoLeader: the lowest json.info_ node (the leader's) cannot be
// read. ZooKeeper then names no leader: naming the next node, a master that does not lead,
// would make the source see an election under way after every poll and poll the real leader's
// whole state every second instead of every refresh period.
func TestZKUnreadableLeaderNodeNamesNoLeader(t *testing.T) {
	t.Parallel()
	z := zktest.Shared(t)
	path := zkPath(t)
	c := cluster(t, 2)
	leader, follower := c.Masters[0], c.Masters[1]
	reg := registrar(t, z, path)
	if _, err := reg.RegisterRaw([]byte(`{"hostname":"`+leader.HostPort()+`"}`), true); err != nil {
		t.Fatal(err)
	}
	register(t, reg, follower, true)

	h := start(t, Config{ZK: z.URL(path), Refresh: time.Hour})
	h.waitLeader(leader.HostPort())
	h.waitLogs(1, "the warning about the leader's node", "skipping a Mesos master node", "no address")
	if v := h.src.det.current(); v.leader != "" || len(v.masters) != 1 {
		t.Fatalf("ZooKeeper view: leader %q, masters %v; want no leader named (its node is unreadable) and the one readable master", v.leader, addrs(v.masters))
	}
}

// TestBadZKURLHidesAPasswordWithASlash: a password holding a "/" (which the URL form cannot
// carry) makes the URL bad; the error still hides the password.
func TestBadZKURLHidesAPasswordWithASlash(t *testing.T) {
	_, err := New(Config{ZK: "zk://ops:s3/cret@h1:2181/mesos"})
	if err == nil || strings.Contains(err.Error(), "cret") || strings.Contains(err.Error(), "s3") || !strings.Contains(err.Error(), "ops:xxxxx@h1:2181") {
		t.Fatalf("error %v: want the URL with its password hidden", err)
	}
}
