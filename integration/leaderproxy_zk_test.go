package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// zkProxyCheckTimeout bounds the wait for HAProxy's health checks to find the dead member
// down (three failed checks, two seconds apart, by default).
const zkProxyCheckTimeout = 30 * time.Second

// TestLeaderProxyZooKeeper: --mesos-zk names a member where nothing listens and a real
// ZooKeeper; --leader-proxy zk puts both behind one TCP frontend. HAProxy's health check finds
// the dead member DOWN and the live one UP, and a ZooKeeper client that knows only the
// proxy's address gets a session and writes a node that the real member then holds.
func TestLeaderProxyZooKeeper(t *testing.T) {
	t.Parallel()
	server := zktest.Start(t)
	master := fakemesos.New()
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(master.Close)
	reg, err := fakemesos.NewZKRegistrar(server.Servers(), "/mesos")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	if _, err := reg.Register(fakemesos.NewMasterInfo(master.HostPort()), true); err != nil {
		t.Fatal(err)
	}
	dead := loopbackAddr(t)
	proxy := loopbackAddr(t)
	fm := startLBMarathon(t)
	lb := startLeaderLB(t, "--marathon", fm.URL(), "--mesos-zk", "zk://"+dead+","+server.Addr()+"/mesos",
		"--mesos-refresh", "1h", "--leader-proxy", "zk="+proxy)

	deadline := time.Now().Add(zkProxyCheckTimeout)
	var status map[string]string
	for {
		status = zkProxyStatus(t, lb)
		if strings.HasPrefix(status[dead], "DOWN") && strings.HasPrefix(status[server.Addr()], "UP") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader_zk servers by address %v after %s: want %s DOWN and %s UP", status, zkProxyCheckTimeout, dead, server.Addr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(status) != 2 {
		t.Errorf("leader_zk servers %v: want exactly the two members of --mesos-zk", status)
	}

	viaProxy, _, err := zk.Connect([]string{proxy}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()
	if _, err := viaProxy.Create("/through-the-proxy", []byte("hello"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create through the zk proxy %s: %v", proxy, err)
	}
	direct, _, err := zk.Connect(server.Servers(), 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	data, _, err := direct.Get("/through-the-proxy")
	if err != nil || string(data) != "hello" {
		t.Errorf("the member holds /through-the-proxy = %q (%v), want the %q written through the proxy", data, err, "hello")
	}
}

// zkProxyStatus returns the status of each server of the zk proxy's backend by its address.
func zkProxyStatus(t *testing.T, lb *lbStack) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := lb.Admin.ShowStat(ctx)
	if err != nil {
		t.Fatalf("show stat: %v", err)
	}
	status := map[string]string{}
	for _, r := range rows {
		if r.Proxy == "leader_zk" && r.Server != "BACKEND" && r.Server != "FRONTEND" {
			status[r.Addr] = r.Status
		}
	}
	return status
}
