package relay

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/logtest"
	"github.com/lodestar-lb/lodestar/internal/sinktest"
)

// door stands in front of a hub: it records what each request carried, can cut every open
// stream, and can answer 503 as a hub that is down.
type door struct {
	next http.Handler
	mu   sync.Mutex
	reqs []*http.Request
	cuts []context.CancelFunc
	down bool
	seen chan struct{} // closed and replaced on every request
}

func newDoor(next http.Handler) *door { return &door{next: next, seen: make(chan struct{})} }

func (d *door) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	d.mu.Lock()
	d.reqs = append(d.reqs, r)
	d.cuts = append(d.cuts, cancel)
	down := d.down
	close(d.seen)
	d.seen = make(chan struct{})
	d.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	d.next.ServeHTTP(w, r.WithContext(ctx))
}

// cut ends every open stream; with down, later requests get 503.
func (d *door) cut(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
	for _, c := range d.cuts {
		c()
	}
}

// waitRequests waits for the n-th request and returns it.
func (d *door) waitRequests(t testing.TB, n int) *http.Request {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		d.mu.Lock()
		if len(d.reqs) >= n {
			r := d.reqs[n-1]
			d.mu.Unlock()
			return r
		}
		seen := d.seen
		d.mu.Unlock()
		select {
		case <-seen:
		case <-deadline:
			t.Fatalf("no request %d", n)
		}
	}
}

// testHubAt is a running registry, its hub and a door in front of it on loopback.
type testHubAt struct {
	reg  *discovery.Registry
	hub  *Hub
	door *door
	url  string
}

func startDoorHub(t testing.TB, apps ...*discovery.App) *testHubAt {
	t.Helper()
	reg := startTestRegistry(t)
	apply(t, reg, discovery.ReplaceApps{Apps: apps})
	h, _ := startHub(t, reg, HubConfig{})
	d := newDoor(h)
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return &testHubAt{reg: reg, hub: h, door: d, url: srv.URL}
}

// runFollower runs a follower of cfg into a fresh registry until the test ends.
func runFollower(t testing.TB, cfg Config) (*Follower, *discovery.Registry, *sinktest.Sink) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := startTestRegistry(t)
	reg.RegisterSource(SourceName)
	sink := sinktest.New(reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx, sink); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f, reg, sink
}

// waitSame waits until the replica's registry holds the hub's apps and other parts.
func waitSame(t testing.TB, replica *discovery.Registry, hub *discovery.Registry) {
	t.Helper()
	want := hub.Snapshot()
	_, err := replica.WaitFor(ctxFor(t), func(s *discovery.Snapshot) bool { return sameState(s, want) })
	if err != nil {
		t.Fatalf("the replica never matched the hub (version %d): %d apps, want %d", want.Version, replica.Snapshot().Apps.Len(), want.Apps.Len())
	}
}

func sameState(got, want *discovery.Snapshot) bool {
	if got.Apps.Len() != want.Apps.Len() || !equalMarathon(got.Marathon, want.Marathon) {
		return false
	}
	same := true
	want.Apps.Each(func(a *discovery.App) bool {
		same = got.App(a.ID).Equal(a)
		return same
	})
	return same
}

func equalMarathon(a, b *discovery.MarathonState) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// fullMirrors counts the snapshots the follower applied.
func fullMirrors(s *sinktest.Sink) int {
	n := 0
	for _, u := range s.Sent() {
		if m, ok := u.(discovery.Mirror); ok && m.Full {
			n++
		}
	}
	return n
}

// A replica follows its hub, and after its stream is cut resumes with the version it holds:
// the hub sends only what it missed, never a second snapshot.
func TestFollowerResumes(t *testing.T) {
	hub := startDoorHub(t, fixtureApps(t)...)
	_, replica, sink := runFollower(t, Config{URLs: []string{hub.url}})
	waitSame(t, replica, hub.reg)
	apply(t, hub.reg, leader(1))
	waitSame(t, replica, hub.reg)
	held := hub.hub.cur.Version

	hub.door.cut(false)
	second := hub.door.waitRequests(t, 2)
	if got, want := second.Header.Get("Last-Event-ID"), eventID(hub.hub.ID(), held); got != want {
		t.Fatalf("reconnected with Last-Event-ID %q, want %q", got, want)
	}
	apply(t, hub.reg, leader(2))
	waitSame(t, replica, hub.reg)
	if n := fullMirrors(sink); n != 1 {
		t.Fatalf("%d snapshots applied, want only the first", n)
	}
}

// Hubs that cannot be reached, or have not synced (503), pass the turn to the next.
func TestFollowerFailsOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	unsynced := httptest.NewServer(NewHub(startTestRegistry(t), HubConfig{Logger: quietLogger()}))
	defer unsynced.Close()
	hub := startDoorHub(t, fixtureApps(t)...)
	f, replica, _ := runFollower(t, Config{URLs: []string{dead, unsynced.URL, hub.url}})
	waitSame(t, replica, hub.reg)
	if err := f.Stale(); err != nil {
		t.Errorf("Stale while following a hub: %v", err)
	}
}

// A replica that moves to another hub instance takes its snapshot (versions are per hub),
// replacing what it held.
func TestFollowerOtherHubSnapshot(t *testing.T) {
	a := startDoorHub(t, &discovery.App{ID: "/only-on-a"})
	b := startDoorHub(t, fixtureApps(t)...)
	_, replica, sink := runFollower(t, Config{URLs: []string{a.url, b.url}})
	waitSame(t, replica, a.reg)
	a.door.cut(true)
	waitSame(t, replica, b.reg)
	if got, want := b.door.waitRequests(t, 1).Header.Get("Last-Event-ID"), eventID(a.hub.ID(), a.hub.cur.Version); got != want {
		t.Errorf("hub B was asked with Last-Event-ID %q, want hub A's %q", got, want)
	}
	if n := fullMirrors(sink); n != 2 {
		t.Errorf("%d snapshots applied, want 2 (one per hub)", n)
	}
}

// With every hub gone the replica keeps serving its last state and says so; once a hub is
// back it follows again.
func TestFollowerKeepsLastState(t *testing.T) {
	hub := startDoorHub(t, fixtureApps(t)...)
	f, replica, sink := runFollower(t, Config{URLs: []string{hub.url}})
	waitSame(t, replica, hub.reg)
	from := sink.ReportCount()
	hub.door.cut(true)
	if _, err := sink.WaitReport(ctxFor(t), from, sinktest.IsErr("no registry hub reachable", "serving the last state")); err != nil {
		t.Fatal(err)
	}
	if err := f.Stale(); err == nil || !strings.Contains(err.Error(), "serving the last state") {
		t.Fatalf("Stale with every hub down: %v", err)
	}
	if !sameState(replica.Snapshot(), hub.reg.Snapshot()) {
		t.Fatal("the replica's state changed while no hub was reachable")
	}
	for _, s := range replica.Sources() {
		if !s.Synced || s.LastError == "" {
			t.Errorf("source status %+v: want synced, with the error", s)
		}
	}
	from = sink.ReportCount()
	hub.door.cut(false)
	if _, err := sink.WaitReport(ctxFor(t), from, sinktest.IsSuccess); err != nil {
		t.Fatal(err)
	}
	if err := f.Stale(); err != nil {
		t.Errorf("Stale after the hub came back: %v", err)
	}
}

// scriptedHub answers each connection with the next script: raw SSE text, then it holds the
// stream open until the client goes.
func scriptedHub(t testing.TB, scripts ...string) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var lastIDs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(lastIDs)
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if n < len(scripts) {
			fmt.Fprint(w, scripts[n])
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lastIDs...)
	}
}

func sseFrame(typ, data string) string { return "event: " + typ + "\ndata: " + data + "\n\n" }

// A delta that does not follow the version held, an event over the size limit and a silent
// stream all end the stream; after the first two the replica starts over with a snapshot.
func TestFollowerStartsOver(t *testing.T) {
	snap := sseFrame(EventSnapshot, fmt.Sprintf(`{"format":1,"hub":%q,"version":5,"apps":[{"id":"/a"}]}`, testHub))
	for _, tc := range []struct {
		name   string
		second string
		resume bool // whether the next connection may still resume
	}{
		{"delta out of order", sseFrame(EventDelta, fmt.Sprintf(`{"format":1,"hub":%q,"from":3,"version":6}`, testHub)), false},
		{"delta of another hub", sseFrame(EventDelta, fmt.Sprintf(`{"format":1,"hub":%q,"from":5,"version":6}`, strings.Repeat("a", 32))), false},
		{"event too large", sseFrame(EventDelta, strings.Repeat("x", 2<<20)), false},
		{"garbage", sseFrame(EventDelta, "{]"), false},
		{"silence", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, lastIDs := scriptedHub(t, snap+tc.second)
			_, replica, _ := runFollower(t, Config{URLs: []string{srv.URL}, MaxEventSize: 1 << 20, IdleTimeout: 300 * time.Millisecond})
			if _, err := replica.WaitFor(ctxFor(t), func(s *discovery.Snapshot) bool { return s.App("/a") != nil }); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(waitTimeout)
			for len(lastIDs()) < 2 {
				if time.Now().After(deadline) {
					t.Fatal("the follower never reconnected")
				}
				time.Sleep(5 * time.Millisecond)
			}
			want := ""
			if tc.resume {
				want = eventID(testHub, 5)
			}
			if got := lastIDs()[1]; got != want {
				t.Fatalf("reconnected with Last-Event-ID %q, want %q", got, want)
			}
			if replica.Snapshot().App("/a") == nil {
				t.Error("the replica lost its state")
			}
		})
	}
}

// Credentials reach the hub and never the log, even when the hub refuses them.
func TestFollowerAuth(t *testing.T) {
	hub := startDoorHub(t, &discovery.App{ID: "/a"})
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Token: "s3cret-token"}, "Bearer s3cret-token"},
		{Config{User: "edge", Password: "s3cret-pass"}, "Basic ZWRnZTpzM2NyZXQtcGFzcw=="},
	} {
		log, buf := logtest.New()
		refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusUnauthorized)
		}))
		tc.cfg.URLs, tc.cfg.Logger = []string{refusing.URL, hub.url}, log
		n := len(hub.door.reqs)
		_, replica, _ := runFollower(t, tc.cfg)
		if _, err := replica.WaitFor(ctxFor(t), func(s *discovery.Snapshot) bool { return s.App("/a") != nil }); err != nil {
			t.Fatal(err)
		}
		if got := hub.door.waitRequests(t, n+1).Header.Get("Authorization"); got != tc.want {
			t.Errorf("Authorization %q, want %q", got, tc.want)
		}
		if strings.Contains(buf.String(), "s3cret") || !strings.Contains(buf.String(), "status 401") {
			t.Errorf("log leaks the secret or misses the refusal:\n%s", buf.String())
		}
		refusing.Close()
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no hub URL"},
		{Config{URLs: []string{"ftp://hub"}}, "want http"},
		{Config{URLs: []string{"http://"}}, "no host"},
		{Config{URLs: []string{"http://edge:pw@hub:8090"}}, "holds credentials"},
		{Config{URLs: []string{"http://hub"}, Token: "t", User: "u", Password: "p"}, "not both"},
		{Config{URLs: []string{"http://hub"}, Password: "p"}, "without a user"},
		{Config{URLs: []string{"https://hub"}, CACertFile: "/nonexistent"}, "CA file"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want an error containing %q", tc.cfg.URLs, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
	f, err := New(Config{URLs: []string{"http://hub:8090", "https://hub2/custom/path"}})
	if err != nil || f.urls[0].String() != "http://hub:8090/v1/stream" || f.urls[1].String() != "https://hub2/custom/path" {
		t.Fatalf("honest URLs: %v, %v", f.urls, err)
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second)
	upper := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, u := range upper {
		u *= time.Millisecond
		if d := b.next(); d < u/2 || d > u {
			t.Fatalf("wait %d: %v, want within [%v, %v]", i, d, u/2, u)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Fatalf("after reset: %v", d)
	}
	b.rand = func(n int64) int64 { return n - 1 } // the top of the range, for the bound
	if d := b.next(); d > 200*time.Millisecond {
		t.Fatalf("top of the range: %v", d)
	}
}

// A hub whose stream carries what the replica cannot apply passes the turn to the next hub,
// rather than being asked again and again.
func TestFollowerLeavesBadHub(t *testing.T) {
	bad, _ := scriptedHub(t, sseFrame(EventSnapshot, `{"format":99}`), sseFrame(EventSnapshot, `{"format":99}`))
	good := startDoorHub(t, fixtureApps(t)...)
	_, replica, _ := runFollower(t, Config{URLs: []string{bad.URL, good.url}})
	waitSame(t, replica, good.reg)
}
