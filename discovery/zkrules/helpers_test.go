package zkrules

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/logtest"
	"github.com/lodestar-lb/lodestar/internal/sinktest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

func TestMain(m *testing.M) { zktest.Main(m) }

// waitTimeout bounds every wait of these tests; nothing takes near it. It turns a hang into a
// failure that says what was awaited.
const waitTimeout = 30 * time.Second

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testPath is a rules path of the test's own under the shared ZooKeeper.
func testPath(t testing.TB) string {
	// A run number too, so -count=N starts every run on an empty path of the shared ZooKeeper.
	return fmt.Sprintf("/lodestar/%s-%d/services", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), pathRuns.Add(1))
}

// pathRuns numbers the paths testPath hands out.
var pathRuns atomic.Int64

// recSink is a recording sink (see sinktest) that holds zkrules to sending only rule sets and
// reporting under its own name. It records a copy of every set, as it was when sent.
type recSink struct{ *sinktest.Sink }

func newSink() *recSink { return &recSink{sinktest.New(nil)} }

func (s *recSink) Send(ctx context.Context, u discovery.Update) error {
	rr, ok := u.(discovery.ReplaceRules)
	if !ok {
		panic(fmt.Sprintf("zkrules sent a %T, want only discovery.ReplaceRules", u))
	}
	return s.Sink.Send(ctx, discovery.ReplaceRules{Rules: maps.Clone(rr.Rules)})
}

func (s *recSink) ReportSync(source string, err error) {
	if source != "zkrules" {
		panic("ReportSync from source " + source)
	}
	s.Sink.ReportSync(source, err)
}

// rulesOf returns the rule sets in updates, which recSink.Send has checked are all ReplaceRules.
func rulesOf(updates []discovery.Update) []map[string]discovery.ServiceRule {
	out := make([]map[string]discovery.ServiceRule, len(updates))
	for i, u := range updates {
		out[i] = u.(discovery.ReplaceRules).Rules
	}
	return out
}

// wait waits until cond holds for the rule sets sent so far.
func (s *recSink) wait(ctx context.Context, cond func(sent []map[string]discovery.ServiceRule) bool) error {
	return s.Wait(ctx, func(updates []discovery.Update, _ []error) bool { return cond(rulesOf(updates)) })
}

// acls turns a rule set into app id → ACL, for comparisons and messages.
func acls(rules map[string]discovery.ServiceRule) map[string]string {
	out := map[string]string{}
	for id, r := range rules {
		if r.AppID != id {
			out[id] = "KEY MISMATCH: " + r.AppID
			continue
		}
		out[id] = r.ACL
	}
	return out
}

// waitRules waits until the latest set sent equals want (app id → ACL) and returns how many
// sets had been sent by then.
func (s *recSink) waitRules(t testing.TB, want map[string]string) int {
	t.Helper()
	n := 0
	err := s.wait(waitCtx(t), func(sent []map[string]discovery.ServiceRule) bool {
		n = len(sent)
		return n > 0 && maps.Equal(acls(sent[n-1]), want)
	})
	if err != nil {
		t.Fatalf("waiting for the rules %v: %v; last sent: %v", want, err, s.last())
	}
	return n
}

func (s *recSink) last() map[string]string {
	sets := s.sets()
	if len(sets) == 0 {
		return nil
	}
	return acls(sets[len(sets)-1])
}

func (s *recSink) sets() []map[string]discovery.ServiceRule { return rulesOf(s.Sent()) }

// waitReport waits for a report at index from or later that match accepts, and returns the
// index after it.
func (s *recSink) waitReport(t testing.TB, from int, what string, match func(error) bool) int {
	t.Helper()
	i, err := s.WaitReport(waitCtx(t), from, match)
	if err != nil {
		t.Fatalf("waiting for a report of %s: %v; reports since #%d: %v", what, err, from, s.ReportsFrom(from))
	}
	return i + 1
}

func (s *recSink) reportCount() int { return s.ReportCount() }

// isErr and isSuccess match sync reports (see sinktest).
var (
	isErr     = sinktest.IsErr
	isSuccess = sinktest.IsSuccess
)

// newSource returns a Source for url, logging to a buffer, closed when the test ends.
func newSource(t testing.TB, url string) (*Source, *logtest.Buffer) {
	t.Helper()
	logger, logs := logtest.New()
	src, err := New(Config{URL: url, SessionTimeout: 4 * time.Second, ConnectWait: 2 * time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = src.Close()
		if t.Failed() {
			t.Logf("log of the source for %s:\n%s", url, logs.Tail(6000))
		}
	})
	return src, logs
}

// run starts src.Run with a recording sink until the test ends, and checks that Run then
// returns nil.
func run(t testing.TB, src *Source) *recSink {
	t.Helper()
	sink := newSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v when its context ended, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run still running %s after its context ended", waitTimeout)
		}
	})
	return sink
}

// rawConn is a plain go-zookeeper connection for arranging and checking nodes behind the
// Source's back. It returns once the connection has a session (zk.Connect returns before
// it has one).
func rawConn(t testing.TB, srv *zktest.Server) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(srv.Servers(), 5*time.Second, zk.WithLogInfo(false), zk.WithLogger(discardLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	ctx := waitCtx(t)
	for conn.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-ctx.Done():
			t.Fatalf("no ZooKeeper session on %s: %v", srv.Addr(), ctx.Err())
		}
	}
	return conn
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// mkdirs creates path and its parents with an open ACL.
func mkdirs(t testing.TB, conn *zk.Conn, path string) {
	t.Helper()
	for i := 1; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		if _, err := conn.Create(path[:i], nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			t.Fatalf("creating %s: %v", path[:i], err)
		}
	}
}

// putRaw creates or sets a node's data directly.
func putRaw(t testing.TB, conn *zk.Conn, path string, data string) {
	t.Helper()
	_, err := conn.Create(path, []byte(data), 0, zk.WorldACL(zk.PermAll))
	if err == zk.ErrNodeExists {
		_, err = conn.Set(path, []byte(data), -1)
	}
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

// waitWatches waits until src has exactly n watches armed.
func waitWatches(t testing.TB, src *Source, n int64) {
	t.Helper()
	ctx := waitCtx(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for src.watches.Load() != n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d watches armed, want %d (one per rule node and the children watch)", src.watches.Load(), n)
		case <-tick.C:
		}
	}
}

func rule(id, acl string) discovery.ServiceRule { return discovery.ServiceRule{AppID: id, ACL: acl} }
