package autoscale

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/internal/zktest"
)

func TestMain(m *testing.M) { zktest.Main(m) }

// lockWait bounds the waits on ZooKeeper: generous, as the machine is shared.
const lockWait = 60 * time.Second

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(lockWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startLock(t *testing.T, url string) (*ZKLock, context.CancelFunc, chan error) {
	t.Helper()
	l, err := NewZKLock(LockConfig{URL: url, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return l, cancel, done
}

// Two instances on one lock, each with a Scaler over the same Marathon: only the holder
// writes; when the holder's session ends, the other takes over and writes.
func TestZKLockTwoInstancesOnlyTheHolderScales(t *testing.T) {
	zk := zktest.Shared(t)
	url := zk.URL("/lodestar/autoscale/" + t.Name())
	a, cancelA, doneA := startLock(t, url)
	b, cancelB, doneB := startLock(t, url)
	waitUntil(t, "one instance holds the lock", func() bool { return a.Leading() || b.Leading() })
	first, second, stopFirst, firstDone := a, b, cancelA, doneA
	if b.Leading() {
		first, second, stopFirst, firstDone = b, a, cancelB, doneB
	}
	if second.Leading() {
		t.Fatal("both instances hold the lock")
	}
	// Both scalers decide the same; only the holder's reaches Marathon.
	m := &memMarathon{instances: map[string]int{}, deployments: map[string]int{}}
	var fixtures []*fixture
	for _, l := range []*ZKLock{first, second} {
		f := newFixture(t, false, rpsApp("/web", 1, nil))
		f.m = m
		f.s.cfg.Marathon = m
		f.s.cfg.Leader = l
		fixtures = append(fixtures, f)
	}
	m.instances["/web"] = 1
	for range 4 {
		for _, f := range fixtures {
			f.tick(1)
		}
	}
	if m.puts != 1 || m.instances["/web"] != 5 {
		t.Fatalf("%d PUTs, %d instances: want exactly one scale to 5, by the holder", m.puts, m.instances["/web"])
	}
	if d := fixtures[1].decision(t, "/web"); !strings.Contains(d.Reason, "another instance holds the autoscale lock") {
		t.Fatalf("the other instance's decision %+v", d)
	}
	// The holder stops (its session closes): the other takes over.
	stopFirst()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	firstDone <- nil // for the cleanup's wait
	waitUntil(t, "the second instance takes the lock", second.Leading)
	if first.Leading() {
		t.Fatal("the stopped instance still leads")
	}
}

// A ZooKeeper that goes away takes the lock with it at once (the holder stops scaling on the
// disconnection, before its session could expire); when it is back, one instance leads again.
func TestZKLockLostWithZooKeeper(t *testing.T) {
	zk := zktest.Start(t)
	url := zk.URL("/lodestar/autoscale")
	a, _, _ := startLock(t, url)
	b, _, _ := startLock(t, url)
	waitUntil(t, "one instance holds the lock", func() bool { return a.Leading() || b.Leading() })
	zk.Stop()
	waitUntil(t, "no instance leads without ZooKeeper", func() bool { return !a.Leading() && !b.Leading() })
	if err := zk.Start(); err != nil {
		t.Fatal(err)
	}
	// The lock nodes of the sessions before the outage stay until those sessions expire;
	// only then does one of the new sessions' nodes come first.
	waitUntil(t, "an instance leads again", func() bool { return a.Leading() || b.Leading() })
	if a.Leading() && b.Leading() {
		t.Fatal("both instances lead")
	}
}

// An operator who deletes the holder's lock node (rmr of the lock path, a clean-up script)
// lets the next instance take the lock: the holder must see its node go and stop leading,
// not keep scaling beside the new holder for as long as its session lives.
func TestZKLockHolderStopsWhenItsNodeIsDeleted(t *testing.T) {
	server := zktest.Shared(t)
	path := "/lodestar/autoscale/" + t.Name()
	a, _, _ := startLock(t, server.URL(path))
	b, _, _ := startLock(t, server.URL(path))
	waitUntil(t, "one instance holds the lock", func() bool { return a.Leading() || b.Leading() })
	holder, other := a, b
	if b.Leading() {
		holder, other = b, a
	}
	write, cancel := holder.Term(context.Background())
	defer cancel()
	conn, _, err := zk.Connect(server.Servers(), 4*time.Second, zk.WithLogger(nopZKLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	children, _, err := conn.Children(path)
	if err != nil || len(children) != 2 {
		t.Fatalf("lock nodes %v, %v; want two", children, err)
	}
	// The lowest sequence number holds the lock; names end in it, zero-padded.
	slices.SortFunc(children, func(x, y string) int { return strings.Compare(x[len(x)-10:], y[len(y)-10:]) })
	if err := conn.Delete(path+"/"+children[0], -1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the other instance takes the lock", other.Leading)
	waitUntil(t, "the instance whose node was deleted stops leading", func() bool { return !holder.Leading() })
	select {
	case <-write.Done():
	case <-time.After(lockWait):
		t.Fatal("a write under the lost hold was not ended")
	}
	if holder.Leading() {
		return // it took the lock again after the other: no write context to check
	}
	after, cancelAfter := holder.Term(context.Background())
	defer cancelAfter()
	if after.Err() == nil {
		t.Fatal("a write began while not leading has a live context")
	}
}

// Lock URLs: honest and hostile.
func TestParseZKURL(t *testing.T) {
	servers, path, auth, err := parseZKURL("zk://u:p@zk1,zk2:2182/lodestar/autoscale/")
	if err != nil || strings.Join(servers, " ") != "zk1:2181 zk2:2182" || path != "/lodestar/autoscale" || auth != "u:p" {
		t.Fatalf("servers %v path %q auth %q err %v", servers, path, auth, err)
	}
	for _, bad := range []string{"http://zk1/x", "zk://zk1", "zk://zk1/", "zk://zk1/a/../b", "zk://:p@zk1/x", "zk://zk 1/x"} {
		if _, _, _, err := parseZKURL(bad); err == nil {
			t.Errorf("parseZKURL(%q) = nil error", bad)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("error %v shows the password", err)
		}
	}
}
