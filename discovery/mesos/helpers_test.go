package mesos

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/logtest"
	"github.com/lodestar-lb/lodestar/internal/sinktest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

func TestMain(m *testing.M) { zktest.Main(m) }

// waitTimeout bounds every wait of these tests; nothing takes near it. It turns a hang into a
// failure that says what was awaited.
const waitTimeout = 20 * time.Second

// seedFrameworks is how many frameworks the fake masters' seed state has.
const seedFrameworks = 4

// harness is a registry fed by one Source, as cmd wires them.
type harness struct {
	t    testing.TB
	reg  *discovery.Registry
	sink *sinktest.Sink
	src  *Source
	logs *logtest.Buffer
}

// start runs a Source with cfg until the test ends. A test failure prints the source's log.
func start(t testing.TB, cfg Config) *harness {
	t.Helper()
	logger, logs := logtest.New()
	cfg.Logger = logger
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := discovery.NewRegistry(discovery.WithLogger(logger))
	reg.RegisterSource(src.Name())
	h := &harness{t: t, reg: reg, src: src, logs: logs, sink: sinktest.New(reg)}
	ctx, cancel := context.WithCancel(context.Background())
	regDone, srcDone := make(chan struct{}), make(chan error, 1)
	go func() {
		defer close(regDone)
		_ = reg.Run(ctx)
	}()
	go func() { srcDone <- src.Run(ctx, h.sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-srcDone:
			if err != nil {
				t.Errorf("Run returned %v when its context ended, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run still running %s after its context ended", waitTimeout)
		}
		<-regDone
		if t.Failed() {
			t.Logf("log of the source:\n%s", logs.Tail(8000))
		}
	})
	return h
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitMesos waits until the registry's Mesos state satisfies cond, and returns it.
func (h *harness) waitMesos(what string, cond func(*discovery.MesosState) bool) *discovery.MesosState {
	h.t.Helper()
	s, err := h.reg.WaitFor(waitCtx(h.t), func(s *discovery.Snapshot) bool { return s.Mesos != nil && cond(s.Mesos) })
	if err != nil {
		h.t.Fatalf("waiting for %s: %v\nlast Mesos state: %s\nsync reports: %s", what, err, describe(s.Mesos), h.sink.Summary(0))
	}
	return s.Mesos
}

// waitLeader waits for a full state (every seed framework) from the given leader.
func (h *harness) waitLeader(leader string) *discovery.MesosState {
	h.t.Helper()
	return h.waitMesos("a state from leader "+leader, func(st *discovery.MesosState) bool {
		return st.Leader == leader && len(st.Frameworks) == seedFrameworks
	})
}

// waitLogs waits until the source has logged at least n lines holding every one of parts.
func (h *harness) waitLogs(n int, what string, parts ...string) {
	h.t.Helper()
	ctx := waitCtx(h.t)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(h.logs.Lines(parts...)) < n {
		select {
		case <-ctx.Done():
			h.t.Fatalf("waiting for %s: %d log lines with %q, want %d", what, len(h.logs.Lines(parts...)), parts, n)
		case <-tick.C:
		}
	}
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

// noEmptyState fails the test if the source ever sent a state without every seed framework.
func (h *harness) noEmptyState() {
	h.t.Helper()
	for i, u := range h.sink.Sent() {
		st := u.(discovery.ReplaceMesosState).State
		if st == nil || len(st.Frameworks) != seedFrameworks || len(st.Agents) == 0 {
			h.t.Errorf("update #%d sent a state without the seed's frameworks and agents: %s", i, describe(st))
		}
	}
}

func describe(st *discovery.MesosState) string {
	if st == nil {
		return "none"
	}
	return fmt.Sprintf("leader %s, %d frameworks, %d agents, masters %v", st.Leader, len(st.Frameworks), len(st.Agents), st.Masters)
}

// isErr and isSuccess match sync reports (see sinktest).
var (
	isErr     = sinktest.IsErr
	isSuccess = sinktest.IsSuccess
)

// cluster starts n fake masters, Masters[0] leading, stopped when the test ends.
func cluster(t testing.TB, n int) *fakemesos.Cluster {
	t.Helper()
	c, err := fakemesos.NewCluster(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// registrar connects a ZKRegistrar for path, closed when the test ends.
func registrar(t testing.TB, z *zktest.Server, path string) *fakemesos.ZKRegistrar {
	t.Helper()
	r, err := fakemesos.NewZKRegistrar(z.Servers(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// register announces a fake master in ZooKeeper and returns its node.
func register(t testing.TB, r *fakemesos.ZKRegistrar, m *fakemesos.Master, ephemeral bool) string {
	t.Helper()
	node, err := r.Register(fakemesos.NewMasterInfo(m.HostPort()), ephemeral)
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// addrs lists the "ip:port" of masters.
func addrs(ms []discovery.Master) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = masterAddr(m)
	}
	return out
}

// zkPaths numbers the paths zkPath hands out, so that -count=N runs do not meet the nodes of
// earlier runs in the shared ZooKeeper.
var zkPaths atomic.Int64

// zkPath is a ZooKeeper path of this test's own in the shared server.
func zkPath(t testing.TB) string {
	return fmt.Sprintf("/mesos-%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), zkPaths.Add(1))
}
