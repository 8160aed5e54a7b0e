package marathon

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/logtest"
	"github.com/lodestar-lb/lodestar/internal/sinktest"
)

// waitTimeout bounds every wait of these tests. Nothing here takes near it; it only turns a hang
// into a failure that says what was being waited for.
const waitTimeout = 10 * time.Second

// flushApp prefixes the ids of the apps flush asks about; none of them ever exists.
const flushApp = "/zz-flush"

// testConfig has small durations so that reconnects are fast. IdleTimeout is generous because
// only TestStalledStreamIsDetectedByWatchdog is about idleness: elsewhere a spurious idle
// reconnect (a starved runner under -race) would add a full sync that some tests count.
func testConfig() Config {
	return Config{
		Resync:         time.Hour,
		IdleTimeout:    5 * time.Second,
		LeaderCheck:    100 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
		BackoffMin:     10 * time.Millisecond,
		BackoffMax:     100 * time.Millisecond,
	}
}

// newFake returns a started fake Marathon seeded from testdata fixtures, with every task address
// moved onto loopback and keepalives well under the idle timeouts used here.
func newFake(t testing.TB, fixtures ...string) *fakemarathon.Server {
	t.Helper()
	f := fakemarathon.New()
	f.KeepAlive = 50 * time.Millisecond
	for _, name := range fixtures {
		if err := f.LoadAppsFile(filepath.Join("testdata", name)); err != nil {
			t.Fatal(err)
		}
	}
	f.RewriteAddresses()
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// waitCtx is a context that ends after waitTimeout or with the test.
func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// harness is a registry fed by one Source, as cmd wires them.
type harness struct {
	t    testing.TB
	reg  *discovery.Registry
	sink *sinktest.Sink
	src  *Source
	logs *logtest.Buffer
	stop context.CancelFunc

	done   chan struct{} // closed when Run returned; runErr is its result
	runErr error

	flushes int
}

// start runs a Source against the fakes (unless cfg.URLs is set) until the test ends. Source
// and registry log into h.logs, which a failing test prints.
func start(t testing.TB, cfg Config, fakes ...*fakemarathon.Server) *harness {
	t.Helper()
	return startWith(t, cfg, nil, fakes...)
}

// startWith is start with prepare called on the Source before it runs (nil: nothing).
func startWith(t testing.TB, cfg Config, prepare func(*Source), fakes ...*fakemarathon.Server) *harness {
	t.Helper()
	if len(cfg.URLs) == 0 {
		for _, f := range fakes {
			cfg.URLs = append(cfg.URLs, f.URL())
		}
	}
	logger, logs := logtest.New()
	cfg.Logger = logger
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(src)
	}
	reg := discovery.NewRegistry(discovery.WithLogger(logger))
	reg.RegisterSource(src.Name())
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{
		t: t, reg: reg, src: src, logs: logs, stop: cancel,
		sink: sinktest.New(reg),
		done: make(chan struct{}),
	}
	regDone := make(chan struct{})
	go func() {
		defer close(regDone)
		_ = reg.Run(ctx)
	}()
	go func() {
		defer close(h.done)
		h.runErr = src.Run(ctx, h.sink)
	}()
	t.Cleanup(func() {
		cancel()
		for _, c := range []chan struct{}{h.done, regDone} {
			select {
			case <-c:
			case <-time.After(waitTimeout):
				t.Errorf("source or registry still running %s after cancel", waitTimeout)
			}
		}
		if t.Failed() {
			t.Logf("log of the source and the registry:\n%s", logs.Tail(12000))
		}
	})
	return h
}

// wait returns Run's result once it has returned, or fails the test.
func (h *harness) wait() error {
	h.t.Helper()
	select {
	case <-h.done:
		return h.runErr
	case <-time.After(waitTimeout):
		h.t.Fatalf("Run did not return within %s", waitTimeout)
		return nil
	}
}

func (h *harness) waitSynced() *discovery.Snapshot {
	h.t.Helper()
	if err := h.reg.WaitSynced(waitCtx(h.t)); err != nil {
		h.t.Fatalf("registry never synced: %v; sync reports: %s", err, h.sink.Summary(0))
	}
	return h.reg.Snapshot()
}

// waitFor waits until cond holds for the registry's snapshot and returns that snapshot.
func (h *harness) waitFor(what string, cond func(*discovery.Snapshot) bool) *discovery.Snapshot {
	h.t.Helper()
	s, err := h.reg.WaitFor(waitCtx(h.t), cond)
	if err != nil {
		h.t.Fatalf("waiting for %s: %v\nlast snapshot: %s\nsync reports: %s", what, err, dump(s), h.sink.Summary(0))
	}
	return s
}

// flush returns the snapshot once every event the fake emitted before the call has been applied.
// It emits app_terminated_event for an app that never existed: the source refetches it, gets a
// 404 and sends RemoveApp, which nothing but that event can cause (a full sync never does), and
// which it sends after everything the earlier events caused (the stream is ordered). A registry
// barrier then waits for all of it to be applied.
func (h *harness) flush(fake *fakemarathon.Server) *discovery.Snapshot {
	h.t.Helper()
	h.flushes++
	id := flushApp + "-" + strconv.Itoa(h.flushes)
	if err := fake.Emit("app_terminated_event", map[string]any{"appId": id}); err != nil {
		h.t.Fatal(err)
	}
	ctx := waitCtx(h.t)
	err := h.sink.WaitSent(ctx, func(u discovery.Update) bool {
		r, ok := u.(discovery.RemoveApp)
		return ok && r.ID == id
	})
	if err == nil {
		err = h.reg.Barrier(ctx)
	}
	if err != nil {
		h.t.Fatalf("flush %s: %v\nlast snapshot: %s\nsync reports: %s", id, err, dump(h.reg.Snapshot()), h.sink.Summary(0))
	}
	return h.reg.Snapshot()
}

// waitReport waits for a sync report, at index from or later, that match accepts, and returns
// its index.
func (h *harness) waitReport(from int, what string, match func(error) bool) int {
	h.t.Helper()
	i, err := h.sink.WaitReport(waitCtx(h.t), from, match)
	if err != nil {
		h.t.Fatalf("waiting for a sync report of %s: %v; reports: %s", what, err, h.sink.Summary(from))
	}
	return i
}

// waitLog waits for a log line holding every one of parts.
func (h *harness) waitLog(parts ...string) string {
	h.t.Helper()
	line, err := h.logs.Wait(waitCtx(h.t), parts...)
	if err != nil {
		h.t.Fatalf("no log line with %q: %v", parts, err)
	}
	return line
}

// waitUntil polls cond, for states that offer no signal (a count going down).
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx := waitCtx(t)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// isErr and isSuccess match sync reports (see sinktest).
var (
	isErr     = sinktest.IsErr
	isSuccess = sinktest.IsSuccess
)

// dump describes a snapshot for failure messages.
func dump(s *discovery.Snapshot) string {
	if s == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version %d, %d apps, %d tasks", s.Version, s.Apps.Len(), s.Tasks)
	for _, a := range s.Apps.All() {
		fmt.Fprintf(&b, "\n  %s labels=%v:", a.ID, a.Labels)
		for _, t := range a.Tasks {
			fmt.Fprintf(&b, "\n    %s %s eligible=%t %q %v health=%v", t.ID, t.State, t.Eligible, t.Reason, t.Endpoints, t.Health)
		}
	}
	return b.String()
}

// taskIDs returns the ids of an app's tasks (sorted, as the registry keeps them).
func taskIDs(a *discovery.App) []string {
	if a == nil {
		return nil
	}
	var ids []string
	for _, t := range a.Tasks {
		ids = append(ids, t.ID)
	}
	return ids
}

// eligibleIDs returns the ids of an app's eligible tasks.
func eligibleIDs(a *discovery.App) []string {
	if a == nil {
		return nil
	}
	var ids []string
	for _, t := range a.EligibleTasks() {
		ids = append(ids, t.ID)
	}
	return ids
}

// sameIDs reports whether an app has exactly the tasks ids.
func sameIDs(a *discovery.App, ids []string) bool {
	return slices.Equal(taskIDs(a), slices.Sorted(slices.Values(ids)))
}

// task returns the task id of app id in s, or nil.
func task(s *discovery.Snapshot, appID, id string) *discovery.Task {
	a := s.App(appID)
	if a == nil {
		return nil
	}
	return a.Task(id)
}

// hostPort is a fake's "host:port", as /v2/leader names members.
func hostPort(f *fakemarathon.Server) string { return strings.TrimPrefix(f.URL(), "http://") }
