package zkrules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// A rule written with Put while Run runs (on the same Source, so the same connection)
// reaches the sink, and Run created the missing path with its parents.
func TestPutReachesTheSinkThroughRun(t *testing.T) {
	srv := zktest.Shared(t)
	path := testPath(t)
	src, _ := newSource(t, srv.URL(path))
	sink := run(t, src)
	sink.waitRules(t, map[string]string{})
	if ok, _, err := rawConn(t, srv).Exists(path); err != nil || !ok {
		t.Fatalf("Run did not create %s: exists %t, %v", path, ok, err)
	}

	ctx := waitCtx(t)
	if err := src.Put(ctx, rule("/grp/app", "  hdr(host) -i app.example ")); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/grp/app": "hdr(host) -i app.example"})
	if got := acls(src.Rules()); !maps.Equal(got, map[string]string{"/grp/app": "hdr(host) -i app.example"}) {
		t.Errorf("Rules() = %v", got)
	}

	// A changed rule replaces the old one.
	if err := src.Put(ctx, rule("/grp/app", "hdr(host) -i new.example")); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/grp/app": "hdr(host) -i new.example"})
	for i, set := range sink.sets() {
		if len(set) > 1 {
			t.Errorf("set #%d holds %d rules for one app: %v", i, len(set), acls(set))
		}
	}
	sink.waitReport(t, 0, "a successful sync", isSuccess)
}

// Two lodestar instances on one path: what one writes, the other's Run sees; deletions too.
func TestTwoInstancesShareTheRules(t *testing.T) {
	srv := zktest.Shared(t)
	url := srv.URL(testPath(t))
	writer, _ := newSource(t, url)
	watcher, _ := newSource(t, url)
	sink := run(t, watcher)
	sink.waitRules(t, map[string]string{})

	ctx := waitCtx(t)
	for _, r := range []discovery.ServiceRule{rule("/a", "hdr(host) -i a"), rule("/grp/b", "hdr(host) -i b")} {
		if err := writer.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a", "/grp/b": "hdr(host) -i b"})

	if err := writer.Put(ctx, rule("/a", "hdr(host) -i a2")); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a2", "/grp/b": "hdr(host) -i b"})

	list, err := watcher.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []discovery.ServiceRule{rule("/a", "hdr(host) -i a2"), rule("/grp/b", "hdr(host) -i b")}
	if !slices.Equal(list, want) {
		t.Errorf("List = %v, want %v", list, want)
	}

	if err := writer.Delete(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/grp/b": "hdr(host) -i b"})
	if err := writer.Delete(ctx, "/a"); !errors.Is(err, ErrNoRule) || !strings.Contains(err.Error(), "/a") {
		t.Errorf("deleting /a again: %v; want ErrNoRule naming /a", err)
	}
	// Every update is the whole set: no set ever lost /grp/b once it was there.
	seen := false
	for i, set := range sink.sets() {
		_, has := set["/grp/b"]
		if seen && !has {
			t.Errorf("set #%d dropped /grp/b: %v", i, acls(set))
		}
		seen = seen || has
	}
}

// A write before Run ever connected opens the connection on demand; Run then finds it.
func TestPutBeforeRun(t *testing.T) {
	srv := zktest.Shared(t)
	src, _ := newSource(t, srv.URL(testPath(t)))
	ctx := waitCtx(t)
	if err := src.Put(ctx, rule("/early", "hdr(host) -i early")); err != nil {
		t.Fatal(err)
	}
	if list, err := src.List(ctx); err != nil || len(list) != 1 || list[0] != rule("/early", "hdr(host) -i early") {
		t.Fatalf("List = %v, %v", list, err)
	}
	sink := run(t, src)
	sink.waitRules(t, map[string]string{"/early": "hdr(host) -i early"})
}

// Rules are stored at <path>/<url.QueryEscape(id)> in the version 2 form; ids with slashes
// and other escaped characters round-trip, and bamboo's bare form is read.
func TestNodesAreQueryEscapedAppIDs(t *testing.T) {
	srv := zktest.Shared(t)
	path := testPath(t)
	src, _ := newSource(t, srv.URL(path))
	conn := rawConn(t, srv)
	ctx := waitCtx(t)

	if err := src.Put(ctx, rule("/grp/sub/app", "hdr(host) -i deep.example")); err != nil {
		t.Fatal(err)
	}
	if err := src.Put(ctx, rule("/grp/app+v2%", "hdr(host) -i odd.example")); err != nil {
		t.Fatal(err)
	}
	data, _, err := conn.Get(path + "/%2Fgrp%2Fsub%2Fapp")
	if err != nil {
		t.Fatalf("reading the node bamboo would read: %v", err)
	}
	if want := `{"version":"2","config":{"Acl":"hdr(host) -i deep.example"}}`; string(data) != want {
		t.Errorf("node data %s, want %s", data, want)
	}
	if _, _, err := conn.Get(path + "/%2Fgrp%2Fapp%2Bv2%25"); err != nil {
		t.Errorf("reading %s/%%2Fgrp%%2Fapp%%2Bv2%%25: %v", path, err)
	}
	putRaw(t, conn, path+"/%2Flegacy%2Fapp", "hdr(host) -i legacy.example")

	list, err := src.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []discovery.ServiceRule{
		rule("/grp/app+v2%", "hdr(host) -i odd.example"),
		rule("/grp/sub/app", "hdr(host) -i deep.example"),
		rule("/legacy/app", "hdr(host) -i legacy.example"),
	}
	if !slices.Equal(list, want) {
		t.Errorf("List = %v\nwant %v", list, want)
	}
	sink := run(t, src)
	sink.waitRules(t, map[string]string{
		"/grp/app+v2%": "hdr(host) -i odd.example",
		"/grp/sub/app": "hdr(host) -i deep.example",
		"/legacy/app":  "hdr(host) -i legacy.example",
	})

	// Put over the bare node rewrites it in the version 2 form.
	if err := src.Put(ctx, rule("/legacy/app", "hdr(host) -i moved.example")); err != nil {
		t.Fatal(err)
	}
	data, _, err = conn.Get(path + "/%2Flegacy%2Fapp")
	if want := `{"version":"2","config":{"Acl":"hdr(host) -i moved.example"}}`; err != nil || string(data) != want {
		t.Errorf("node data %s, %v; want %s", data, err, want)
	}
	if err := src.Delete(ctx, "/grp/sub/app"); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := conn.Exists(path + "/%2Fgrp%2Fsub%2Fapp"); err != nil || ok {
		t.Errorf("after Delete the node exists: %t, %v", ok, err)
	}
	sink.waitRules(t, map[string]string{
		"/grp/app+v2%": "hdr(host) -i odd.example",
		"/legacy/app":  "hdr(host) -i moved.example",
	})
}

// A node that holds no rule is logged by name and left out; the other rules stay, and the
// node counts once it is fixed.
func TestBadNodesAreSkippedNotFatal(t *testing.T) {
	srv := zktest.Shared(t)
	path := testPath(t)
	conn := rawConn(t, srv)
	mkdirs(t, conn, path)
	putRaw(t, conn, path+"/%2Fgood%2Fv2", `{"version":"2","config":{"Acl":"hdr(host) -i v2"}}`)
	putRaw(t, conn, path+"/%2Fgood%2Fbare", "hdr(host) -i bare")
	putRaw(t, conn, path+"/%2Fbad%2Fjson", `{"version":"2","config":`)
	putRaw(t, conn, path+"/not-an-app-id", "hdr(host) -i x")
	putRaw(t, conn, path+"/%2Fbad%2Fempty", "")

	src, logs := newSource(t, srv.URL(path))
	sink := run(t, src)
	good := map[string]string{"/good/v2": "hdr(host) -i v2", "/good/bare": "hdr(host) -i bare"}
	sink.waitRules(t, good)
	ctx := waitCtx(t)
	for _, node := range []string{"%2Fbad%2Fjson", "not-an-app-id", "%2Fbad%2Fempty"} {
		if _, err := logs.Wait(ctx, "level=WARN", "no usable rule", path+"/"+node); err != nil {
			t.Errorf("no warning naming node %s: %v", node, err)
		}
	}

	// The bad node fixed: its rule joins the others.
	putRaw(t, conn, path+"/%2Fbad%2Fjson", `{"version":"2","config":{"Acl":"hdr(host) -i fixed"}}`)
	good["/bad/json"] = "hdr(host) -i fixed"
	sink.waitRules(t, good)
	// A good node broken: only its rule goes.
	putRaw(t, conn, path+"/%2Fgood%2Fbare", "two\nlines")
	delete(good, "/good/bare")
	sink.waitRules(t, good)
	if _, err := logs.Wait(ctx, "level=WARN", path+"/%2Fgood%2Fbare", "single line"); err != nil {
		t.Errorf("no warning naming the broken node: %v", err)
	}
	for i, set := range sink.sets() {
		if _, ok := set["/good/v2"]; !ok {
			t.Errorf("set #%d lost /good/v2: %v", i, acls(set))
		}
	}
}

// However often a rule changes, each node keeps exactly one watch, and Run never piles up
// watches or goroutines.
func TestWatchesDoNotPileUp(t *testing.T) {
	srv := zktest.Shared(t)
	src, _ := newSource(t, srv.URL(testPath(t)))
	sink := run(t, src)
	ctx := waitCtx(t)
	for _, id := range []string{"/a", "/b"} {
		if err := src.Put(ctx, rule(id, "hdr(host) -i "+id[1:])); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 15 {
		acl := "hdr(host) -i a" + strings.Repeat("x", i)
		if err := src.Put(ctx, rule("/a", acl)); err != nil {
			t.Fatal(err)
		}
		sink.waitRules(t, map[string]string{"/a": acl, "/b": "hdr(host) -i b"})
	}
	waitWatches(t, src, 3)
	if err := src.Delete(ctx, "/b"); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a" + strings.Repeat("x", 14)})
	waitWatches(t, src, 2)
}

// With digest credentials in the URL, a path only they may touch is read and written.
func TestDigestAuth(t *testing.T) {
	srv := zktest.Shared(t)
	path := testPath(t)
	conn := rawConn(t, srv)
	mkdirs(t, conn, path[:strings.LastIndex(path, "/")])
	if _, err := conn.Create(path, nil, 0, zk.DigestACL(zk.PermAll, "alice", "s3cret")); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	src, _ := newSource(t, "zk://alice:s3cret@"+addr+path)
	sink := run(t, src)
	sink.waitRules(t, map[string]string{})
	ctx := waitCtx(t)
	if err := src.Put(ctx, rule("/secure", "hdr(host) -i secure")); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/secure": "hdr(host) -i secure"})

	for _, url := range []string{"zk://" + addr + path, "zk://alice:wrong@" + addr + path} {
		other, _ := newSource(t, url)
		_, err := other.List(ctx)
		if !errors.Is(err, zk.ErrNoAuth) || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "wrong") {
			t.Errorf("List through %s: %v; want zk.ErrNoAuth naming %s, without the password", discovery.RedactZKURL(url), err, addr)
		}
	}
}

// ZooKeeper down at start and again later: Run reports the failure naming the servers, logs
// it once per outage, never sends a set that drops the rules, and resyncs when ZooKeeper is
// back; changes flow again.
func TestZooKeeperOutage(t *testing.T) {
	srv := zktest.Start(t)
	srv.Stop()
	src, logs := newSource(t, srv.URL("/lodestar/services"))
	sink := run(t, src)
	warning := []string{"level=WARN", "cannot read the routing rules"}

	// Down at start: failures reported and retried, one warning.
	next := sink.waitReport(t, 0, "a failure naming the server", isErr("ZooKeeper "+srv.Addr()+"/lodestar/services"))
	next = sink.waitReport(t, next, "a retry", isErr(srv.Addr()))
	sink.waitReport(t, next, "another retry", isErr(srv.Addr()))
	if n := len(logs.Lines(warning...)); n != 1 {
		t.Errorf("%d warnings while ZooKeeper was down at start, want 1:\n%s", n, logs.Tail(3000))
	}
	if len(sink.sets()) != 0 {
		t.Errorf("Run sent %v before it could read ZooKeeper", sink.last())
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{})
	ctx := waitCtx(t)
	want := map[string]string{"/a": "hdr(host) -i a", "/b": "hdr(host) -i b"}
	for id, acl := range want {
		if err := src.Put(ctx, rule(id, acl)); err != nil {
			t.Fatal(err)
		}
	}
	sent := sink.waitRules(t, want)
	reports := sink.reportCount()

	// Down while running: the rules stay, the failure is reported and logged once.
	srv.Stop()
	sink.waitReport(t, reports, "the outage", isErr("ZooKeeper "+srv.Addr()))
	if err := src.Put(ctx, rule("/c", "hdr(host) -i c")); err == nil || !strings.Contains(err.Error(), srv.Addr()) {
		t.Errorf("Put while ZooKeeper is down: %v; want an error naming %s", err, srv.Addr())
	}
	if got := acls(src.Rules()); !maps.Equal(got, want) {
		t.Errorf("Rules() while ZooKeeper is down = %v, want the last ones %v", got, want)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	sink.waitReport(t, reports, "a successful resync", isSuccess)
	if n := len(logs.Lines(warning...)); n != 2 {
		t.Errorf("%d warnings after two outages, want 2:\n%s", n, logs.Tail(3000))
	}
	for i, set := range sink.sets()[sent:] {
		if !maps.Equal(acls(set), want) {
			t.Errorf("set #%d sent around the outage is %v, want %v", sent+i, acls(set), want)
		}
	}

	// Back: changes flow again, from this Source and from another.
	want["/c"] = "hdr(host) -i c"
	if err := src.Put(ctx, rule("/c", "hdr(host) -i c")); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, want)
	other, _ := newSource(t, srv.URL("/lodestar/services"))
	if err := other.Delete(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	delete(want, "/a")
	sink.waitRules(t, want)
	waitWatches(t, src, int64(len(want))+1)
	if _, err := logs.Wait(ctx, "level=INFO", "resynced"); err != nil {
		t.Errorf("no log of the recovery: %v", err)
	}
}

// Put and List wait with their context.
func TestWritesHonourTheContext(t *testing.T) {
	srv := zktest.Shared(t)
	src, _ := newSource(t, srv.URL(testPath(t)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := src.Put(ctx, rule("/a", "hdr(host) -i a")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: %v", err)
	}
	if _, err := src.List(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context: %v", err)
	}
}

// A session that expires while lodestar cannot reach ZooKeeper: on reconnection Run reads
// everything again (catching changes made meanwhile) and arms fresh watches, so later
// changes flow too.
func TestSessionExpiry(t *testing.T) {
	srv := zktest.Shared(t)
	path := testPath(t)
	px := zktest.StartProxy(t, srv.Addr())
	src, logs := newSource(t, "zk://"+px.Addr()+path)
	src.sess.timeout = 2 * time.Second // the shortest the test server grants is 1 s
	sink := run(t, src)
	ctx := waitCtx(t)
	if err := src.Put(ctx, rule("/a", "hdr(host) -i a")); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a"})
	reports := sink.reportCount()

	src.sess.mu.Lock()
	session := fmt.Sprintf("0x%x", src.sess.conn.SessionID())
	src.sess.mu.Unlock()
	px.Pause()
	sink.waitReport(t, reports, "the lost connection", isErr(px.Addr(), "connection lost"))
	// Wait for the server to expire the session (it lists live sessions in dump).
	for strings.Contains(fourLetter(t, srv, "dump"), session) {
		select {
		case <-ctx.Done():
			t.Fatalf("session %s never expired; dump:\n%s", session, fourLetter(t, srv, "dump"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	conn := rawConn(t, srv)
	putRaw(t, conn, path+"/%2Fa", "hdr(host) -i changed")
	putRaw(t, conn, path+"/%2Fb", "hdr(host) -i b")
	px.Resume()

	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i changed", "/b": "hdr(host) -i b"})
	if _, err := logs.Wait(ctx, "level=INFO", "session expired"); err != nil {
		t.Errorf("the expiry was not noticed: %v", err)
	}
	src.sess.mu.Lock()
	if now := fmt.Sprintf("0x%x", src.sess.conn.SessionID()); now == session {
		t.Errorf("still session %s after it expired", now)
	}
	src.sess.mu.Unlock()
	putRaw(t, conn, path+"/%2Fb", "hdr(host) -i b2")
	if _, err := conn.Create(path+"/%2Fc", []byte("hdr(host) -i c"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i changed", "/b": "hdr(host) -i b2", "/c": "hdr(host) -i c"})
	waitWatches(t, src, 4)
}

// fourLetter sends a ZooKeeper four-letter command and returns the answer.
func fourLetter(t testing.TB, srv *zktest.Server, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return string(b)
}

// A rule node that lodestar may not read (another tool wrote it with its own digest ACL) is
// one bad node: it is logged and left out, and the other rules still load, change and list.
func TestUnreadableNodeIsSkipped(t *testing.T) {
	srv := zktest.Shared(t)
	path := testPath(t)
	conn := rawConn(t, srv)
	mkdirs(t, conn, path)
	putRaw(t, conn, path+"/%2Fa", "hdr(host) -i a")
	if _, err := conn.Create(path+"/%2Fsecret", []byte("hdr(host) -i secret"), 0, zk.DigestACL(zk.PermAll, "bob", "pw")); err != nil {
		t.Fatal(err)
	}
	src, logs := newSource(t, srv.URL(path))
	sink := run(t, src)
	ctx := waitCtx(t)
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a"})
	if _, err := logs.Wait(ctx, "level=WARN", path+"/%2Fsecret", "not authenticated"); err != nil {
		t.Errorf("no warning naming the unreadable node: %v\n%s", err, logs.Tail(3000))
	}
	putRaw(t, conn, path+"/%2Fb", "hdr(host) -i b")
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a", "/b": "hdr(host) -i b"})
	for i, err := range sink.ReportsFrom(0) {
		if err != nil {
			t.Errorf("sync report #%d: %v; want success (one unreadable node is no outage)", i, err)
		}
	}
	rules, err := src.List(ctx)
	if err != nil || len(rules) != 2 {
		t.Errorf("List = %v, %v; want the two readable rules", rules, err)
	}
	// One watch per readable node and the children watch; none on the unreadable node, and
	// none left behind when it goes.
	waitWatches(t, src, 3)
	if err := conn.Delete(path+"/%2Fsecret", -1); err != nil {
		t.Fatal(err)
	}
	putRaw(t, conn, path+"/%2Fc", "hdr(host) -i c")
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a", "/b": "hdr(host) -i b", "/c": "hdr(host) -i c"})
	waitWatches(t, src, 4)
}

// When Run's context ends, closing the connection fires every watch. Run must not act on
// those events (or on anything else) once its context has ended: that would open a new
// ZooKeeper session on the way out, and wait for it while ZooKeeper is unreachable.
// Five rounds, not more: each opens a connection, and go-zookeeper v1.0.4 has a data race of
// its own (Conn.lastZxid, PR #35) that a request answered during a new connection's set-up
// trips; the race detector would flag the library, not this code.
func TestRunOpensNoSessionAfterItsContextEnds(t *testing.T) {
	srv := zktest.Shared(t)
	path := testPath(t)
	conn := rawConn(t, srv)
	mkdirs(t, conn, path)
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		putRaw(t, conn, path+"/%2F"+id, "hdr(host) -i "+id)
	}
	for i := range 5 {
		src, _ := newSource(t, srv.URL(path))
		sink := newSink()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, sink) }()
		sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a", "/b": "hdr(host) -i b", "/c": "hdr(host) -i c",
			"/d": "hdr(host) -i d", "/e": "hdr(host) -i e", "/f": "hdr(host) -i f"})
		waitWatches(t, src, 7)
		src.sess.mu.Lock()
		gen := src.sess.gen
		src.sess.mu.Unlock()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run returned %v when its context ended, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("Run still running %s after its context ended", waitTimeout)
		}
		src.sess.mu.Lock()
		// Two closes (when ctx ends, and as Run returns) and no connection in between.
		opened := src.sess.gen - gen - 2
		src.sess.mu.Unlock()
		if opened != 0 {
			t.Fatalf("run %d: Run opened %d ZooKeeper connection(s) after its context ended", i+1, opened)
		}
	}
}

// orderSink checks, as each set is sent, that Rules() already returns it: whoever sees a set
// in the registry (the API, a test) finds the same set in Rules().
type orderSink struct {
	*recSink
	src        *Source
	mismatches atomic.Int64
}

func (s *orderSink) Send(ctx context.Context, u discovery.Update) error {
	if rr, ok := u.(discovery.ReplaceRules); ok && !maps.Equal(acls(s.src.Rules()), acls(rr.Rules)) {
		s.mismatches.Add(1)
	}
	return s.recSink.Send(ctx, u)
}

func TestRulesHoldsTheSetTheSinkGets(t *testing.T) {
	srv := zktest.Shared(t)
	src, _ := newSource(t, srv.URL(testPath(t)))
	sink := &orderSink{recSink: newSink(), src: src}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	defer func() {
		cancel()
		<-done
	}()
	sink.waitRules(t, map[string]string{})
	if err := src.Put(waitCtx(t), rule("/a", "hdr(host) -i a")); err != nil {
		t.Fatal(err)
	}
	sink.waitRules(t, map[string]string{"/a": "hdr(host) -i a"})
	if n := sink.mismatches.Load(); n != 0 {
		t.Fatalf("%d sets sent while Rules() still returned another set", n)
	}
}
