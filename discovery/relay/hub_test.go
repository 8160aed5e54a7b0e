package relay

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lodestar-lb/lodestar/discovery"
)

// waitTimeout bounds every wait of these tests; it is only reached when a test fails.
const waitTimeout = 20 * time.Second

// startHub runs a hub of reg behind a loopback HTTP server until the test ends.
func startHub(t testing.TB, reg *discovery.Registry, cfg HubConfig) (*Hub, *httptest.Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	h := NewHub(reg, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	<-h.started
	srv := httptest.NewServer(h)
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return h, srv
}

// testStream is a client of GET /v1/stream that decodes every event.
type testStream struct {
	changes chan *change
	errs    chan error
	cancel  context.CancelFunc
}

// openStream connects to url, resuming from lastID when it is not empty.
func openStream(t testing.TB, url, lastID string) *testStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &testStream{changes: make(chan *change, 1000), errs: make(chan error, 1), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		r := newSSEReader(resp.Body, DefaultMaxEventSize, nil)
		for {
			ev, err := r.next()
			if err == nil {
				var c *change
				if c, err = decodeEvent(ev.Type, ev.Data); err == nil {
					s.changes <- c
					continue
				}
			}
			s.errs <- err
			return
		}
	}()
	return s
}

// next returns the next event, failing t when none comes.
func (s *testStream) next(t testing.TB) *change {
	t.Helper()
	select {
	case c := <-s.changes:
		return c
	case err := <-s.errs:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("no event")
	}
	return nil
}

func leader(n int) discovery.Update {
	return discovery.SetMarathonLeader{Leader: fmt.Sprintf("m%d:8080", n)}
}

// counterValue reads a counter of this package.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// waitHub waits until the hub has turned version v into history.
func waitHub(t testing.TB, h *Hub, v uint64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		h.mu.Lock()
		cur := h.cur
		changed := h.changed
		h.mu.Unlock()
		if cur != nil && cur.Version >= v {
			return
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("the hub never reached version %d", v)
		}
	}
}

// A new subscriber gets a snapshot, then one delta per version, each from the version before.
func TestHubSnapshotThenDeltas(t *testing.T) {
	reg := startTestRegistry(t)
	apply(t, reg, discovery.ReplaceApps{Apps: fixtureApps(t)})
	h, srv := startHub(t, reg, HubConfig{})
	s := openStream(t, srv.URL, "")
	first := s.next(t)
	if !first.Snapshot || first.Hub != h.ID() || first.Version != reg.Snapshot().Version || len(first.Mirror.Apps) != reg.Snapshot().Apps.Len() {
		t.Fatalf("first event: snapshot=%v hub %s version %d with %d apps", first.Snapshot, first.Hub, first.Version, len(first.Mirror.Apps))
	}
	prev := first.Version
	for i := range 3 {
		v := apply(t, reg, leader(i)).Version
		c := s.next(t)
		if c.Snapshot || c.From != prev || c.Version != v || c.Mirror.Marathon.Leader != fmt.Sprintf("m%d:8080", i) {
			t.Fatalf("delta %d: snapshot=%v %d→%d %+v", i, c.Snapshot, c.From, c.Version, c.Mirror.Marathon)
		}
		if len(c.Mirror.Apps) != 0 || c.Mirror.SetMesos || c.Mirror.SetRules {
			t.Errorf("delta %d carries parts that did not change: %+v", i, c.Mirror)
		}
		prev = v
	}
}

// Resuming: an event id of this hub still in the history gets only the deltas after it; one
// the history no longer reaches, one of another hub instance, one from the future or garbage
// gets a snapshot.
func TestHubResume(t *testing.T) {
	reg := startTestRegistry(t)
	h, srv := startHub(t, reg, HubConfig{HistoryEvents: 3})
	openStream(t, srv.URL, "").next(t) // the first subscriber starts the history
	var versions []uint64
	for i := range 6 {
		// One hub version per registry version: the hub, like any subscriber, may skip
		// versions published while it was busy.
		v := apply(t, reg, leader(i)).Version
		waitHub(t, h, v)
		versions = append(versions, v)
	}
	cur := versions[5]
	waitHub(t, h, cur)
	other := strings.Repeat("f", 32)
	if other == h.ID() {
		other = strings.Repeat("e", 32)
	}
	for _, tc := range []struct {
		name     string
		lastID   string
		snapshot bool
		from     uint64
	}{
		{"in the history", eventID(h.ID(), versions[3]), false, versions[3]},
		{"oldest kept", eventID(h.ID(), versions[2]), false, versions[2]},
		{"out of the history", eventID(h.ID(), versions[1]), true, 0},
		{"other hub", eventID(other, versions[3]), true, 0},
		{"future version", eventID(h.ID(), cur+10), true, 0},
		{"garbage", "../../x", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStream(t, srv.URL, tc.lastID)
			c := s.next(t)
			if c.Snapshot != tc.snapshot || (!tc.snapshot && c.From != tc.from) {
				t.Fatalf("first event: snapshot=%v from %d, want snapshot=%v from %d", c.Snapshot, c.From, tc.snapshot, tc.from)
			}
			if c.Snapshot && c.Version != cur {
				t.Fatalf("snapshot of version %d, want %d", c.Version, cur)
			}
			last := c.Version
			for last < cur {
				c = s.next(t)
				if c.Snapshot || c.From != last {
					t.Fatalf("then snapshot=%v from %d, want a delta from %d", c.Snapshot, c.From, last)
				}
				last = c.Version
			}
		})
	}
	// Already current (here through the query parameter): nothing until the next version.
	s := openStream(t, srv.URL+"?last_event_id="+eventID(h.ID(), cur), "")
	next := apply(t, reg, leader(9)).Version
	if c := s.next(t); c.Snapshot || c.From != cur || c.Version != next {
		t.Fatalf("a current subscriber got snapshot=%v %d→%d, want the delta %d→%d", c.Snapshot, c.From, c.Version, cur, next)
	}
}

// The history keeps at most HistoryBytes (but always the newest delta) and HistoryEvents.
func TestHubHistoryBounds(t *testing.T) {
	reg := startTestRegistry(t)
	h, srv := startHub(t, reg, HubConfig{HistoryBytes: 1500, HistoryEvents: 100})
	openStream(t, srv.URL, "").next(t)
	var v uint64
	for i := range 20 {
		v = apply(t, reg, discovery.UpsertApp{App: &discovery.App{ID: fmt.Sprintf("/a%d", i),
			Labels: map[string]string{"pad": strings.Repeat("x", 400)}}}).Version
		waitHub(t, h, v)
	}
	waitHub(t, h, v)
	h.mu.Lock()
	n, bytes, last := len(h.history), h.histBytes, h.history[len(h.history)-1].to
	h.mu.Unlock()
	if n == 0 || n >= 20 || bytes > 1500 || last != v {
		t.Fatalf("history of %d events, %d bytes, newest to %d; want 1-19 events within 1500 bytes ending at %d", n, bytes, last, v)
	}
}

// A subscriber that stops reading never holds the registry or the other subscribers back:
// they get every version, and the stuck one is dropped once a write times out.
func TestHubSlowSubscriber(t *testing.T) {
	reg := startTestRegistry(t)
	h, srv := startHub(t, reg, HubConfig{WriteTimeout: 300 * time.Millisecond})
	stuck, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	fmt.Fprintf(stuck, "GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
	if line, err := bufio.NewReader(stuck).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("the stuck client's stream: %q, %v", line, err)
	}
	before := counterValue(dropped)
	reader := openStream(t, srv.URL, "")
	last := reader.next(t).Version
	pad := strings.Repeat("x", 64<<10)
	for i := range 200 { // ~13 MB: more than the stuck connection's buffers hold
		v := apply(t, reg, discovery.UpsertApp{App: &discovery.App{ID: fmt.Sprintf("/a%d", i), Labels: map[string]string{"pad": pad}}}).Version
		for last < v {
			c := reader.next(t)
			if !c.Snapshot && c.From != last {
				t.Fatalf("the reading subscriber got %d→%d after %d", c.From, c.Version, last)
			}
			last = c.Version
		}
	}
	waitHub(t, h, last)
	deadline := time.Now().Add(waitTimeout)
	for counterValue(dropped) <= before {
		if time.Now().After(deadline) {
			t.Fatal("the subscriber that does not read was never dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stopping the hub ends its streams, so the API's graceful shutdown does not wait on them.
func TestHubStopEndsStreams(t *testing.T) {
	reg := startTestRegistry(t)
	h := NewHub(reg, HubConfig{Logger: quietLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	srv := httptest.NewServer(h)
	defer srv.Close()
	s := openStream(t, srv.URL, "")
	s.next(t)
	cancel()
	<-done
	select {
	case <-s.errs:
	case <-time.After(waitTimeout):
		t.Fatal("the stream outlived the hub")
	}
	if err := h.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
}

// Before Run (which cmd starts once the registry has synced) the stream answers 503: a
// replica must not take a hub's empty registry for the cluster's.
func TestHubNotStarted(t *testing.T) {
	h := NewHub(startTestRegistry(t), HubConfig{Logger: quietLogger()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d before Run, want 503", resp.StatusCode)
	}
}
