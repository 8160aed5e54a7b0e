package dnsserver

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// runRegistry runs a registry until the test ends.
func runRegistry(t *testing.T) *discovery.Registry {
	t.Helper()
	reg := discovery.NewRegistry(discovery.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return reg
}

func TestFollowRebuildsOnChange(t *testing.T) {
	reg := runRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub := reg.Subscribe()
	defer sub.Close()
	indexes := make(chan *RecordIndex, 10)
	go Follow(ctx, sub, RecordConfig{}, nil, func(ix *RecordIndex) { indexes <- ix })

	next := func() *RecordIndex {
		t.Helper()
		select {
		case ix := <-indexes:
			return ix
		case <-ctx.Done():
			t.Fatal("no index built")
			return nil
		}
	}
	first := next() // the empty registry still has SOA/NS material
	state := &discovery.MesosState{
		Leader: "127.0.0.1:5050",
		Agents: []discovery.Agent{{ID: "a-S1", Hostname: "127.0.0.2", PID: "slave(1)@127.0.0.2:5051"}},
		Frameworks: []discovery.Framework{{ID: "f1", Name: "marathon", PID: "scheduler@127.0.0.3:8080",
			Tasks: []discovery.MesosTask{{ID: "web.1", Name: "web", SlaveID: "a-S1", State: discovery.StateRunning, Ports: []int{31000}}}}},
	}
	if err := reg.Send(ctx, discovery.ReplaceMesosState{State: state}); err != nil {
		t.Fatal(err)
	}
	second := next()
	if second.Serial <= first.Serial {
		t.Errorf("serial %d after a change, want more than %d", second.Serial, first.Serial)
	}
	rs := second.Lookup("web.marathon.mesos.")
	if rs == nil || len(rs.A) != 1 || rs.A[0] != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("web.marathon.mesos. = %+v, want A 127.0.0.2", rs)
	}
}

func TestHostCacheResolvesInBackground(t *testing.T) {
	var mu sync.Mutex
	answers := map[string][]netip.Addr{"fw.example": {netip.MustParseAddr("::ffff:127.0.0.9")}}
	fail := false
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return nil, errors.New("resolver down")
		}
		return answers[host], nil
	}
	c := NewHostCache(lookup, 0) // TTL 0: every Lookup refreshes
	if got := c.Lookup("fw.example"); got != nil {
		t.Fatalf("first Lookup = %v, want nil (it must not block)", got)
	}
	select {
	case <-c.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("no change after the lookup")
	}
	want := netip.MustParseAddr("127.0.0.9") // IPv4-mapped answers are unmapped
	if got := c.Lookup("fw.example"); len(got) != 1 || got[0] != want {
		t.Fatalf("Lookup = %v, want [%v]", got, want)
	}
	// A failing resolver keeps the last answer.
	waitIdle(t, c, "fw.example")
	mu.Lock()
	fail = true
	mu.Unlock()
	c.Lookup("fw.example") // starts a refresh, which fails
	waitIdle(t, c, "fw.example")
	c.mu.Lock()
	got := c.entries["fw.example"].addrs
	c.mu.Unlock()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("after a failed refresh the cache holds %v, want the last answer %v", got, want)
	}
}

// TestHostCacheForgetsIdleNames: a name nothing looked up for longer than the idle limit is
// dropped at the next sweep; a name still in use stays.
func TestHostCacheForgetsIdleNames(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.9")}, nil
	}
	c := NewHostCache(lookup, time.Hour)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	c.Lookup("gone.example")
	c.Lookup("kept.example")
	waitIdle(t, c, "gone.example")
	waitIdle(t, c, "kept.example")
	for range 4 { // two idle limits, with kept.example asked every quarter of one
		advance(hostIdleLimit / 4)
		c.Lookup("kept.example")
		advance(hostIdleLimit / 4)
		c.Lookup("kept.example")
		waitIdle(t, c, "kept.example")
	}
	c.mu.Lock()
	_, gone := c.entries["gone.example"]
	_, kept := c.entries["kept.example"]
	c.mu.Unlock()
	if gone || !kept {
		t.Errorf("after two idle limits: gone.example cached=%v (want false), kept.example cached=%v (want true)", gone, kept)
	}
	if n := c.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

// waitIdle polls until no lookup of host is in flight.
func waitIdle(t *testing.T, c *HostCache, host string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		idle := !c.entries[host].inFlight
		c.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lookup of %s never finished", host)
		}
		time.Sleep(time.Millisecond)
	}
}
