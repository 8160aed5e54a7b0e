package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// liveMap is a reading of HAProxy's servers by "backend/slot".
type liveMap map[string]LiveServer

func (m liveMap) Server(backend, slot string) (LiveServer, bool) {
	s, ok := m[backend+"/"+slot]
	return s, ok
}

// fakeLive answers with servers, or fails with err, or (hang) waits until the caller gives
// up; it counts its readings.
type fakeLive struct {
	servers liveMap
	err     error
	hang    bool
	reads   *atomic.Int32
}

func (f fakeLive) ServerStates(ctx context.Context) (ServerStates, error) {
	if f.reads != nil {
		f.reads.Add(1)
	}
	switch {
	case f.hang:
		<-ctx.Done()
		return nil, ctx.Err()
	case f.err != nil:
		return nil, f.err
	}
	return f.servers, nil
}

// shopLive is HAProxy failing the check of web.1 (which Marathon reports healthy), holding
// web.2 in maintenance and not knowing web.3's slot yet.
func shopLive() fakeLive {
	return fakeLive{servers: liveMap{
		"shop_web_10080/s1": {Status: "DOWN", Check: "L4CON", CheckDesc: "Layer4 connection problem", LastCheck: "Connection refused", Weight: 1},
		"shop_web_10080/s2": {Status: "MAINT", Weight: 1},
	}}
}

// appDoc gets /v1/apps/shop/web and decodes it.
func appDoc(t *testing.T, front Frontends) map[string]any {
	t.Helper()
	s := newServer(t, Config{}, fixtureRegistry(t))
	s.SetFrontends(front)
	code, body := get(t, s.Router(), http.MethodGet, "/v1/apps/shop/web")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/apps/shop/web = %d %s", code, body)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func wantFields(t *testing.T, doc map[string]any, want map[string]string) {
	t.Helper()
	for path, w := range want {
		v, ok := jsonAt(doc, path)
		switch {
		case strings.HasPrefix(path, "!"):
			if _, ok := jsonAt(doc, path[1:]); ok {
				t.Errorf("%s is present", path[1:])
			}
		case !ok:
			t.Errorf("%s is missing", path)
		case !strings.Contains(fmt.Sprint(v), w):
			t.Errorf("%s = %v, want %q", path, v, w)
		}
	}
}

// TestAppShowsHAProxyBesideMarathon: each server of /v1/apps/{id} carries Marathon's health
// of its task and HAProxy's own state, so a task Marathon calls healthy that HAProxy's check
// marks DOWN shows as such.
func TestAppShowsHAProxyBesideMarathon(t *testing.T) {
	doc := appDoc(t, Frontends{Routing: shopRouting(), Live: shopLive()})
	wantFields(t, doc, map[string]string{
		"routes.0.servers.0.task_id": "web.1", "routes.0.servers.0.marathon_health": "healthy",
		"routes.0.servers.0.haproxy.status": "DOWN", "routes.0.servers.0.haproxy.check": "L4CON",
		"routes.0.servers.0.haproxy.last_check": "Connection refused", "routes.0.servers.0.haproxy.weight": "1",
		"!routes.0.servers.0.haproxy.error":  "",
		"routes.0.servers.1.marathon_health": "health check failing", "routes.0.servers.1.haproxy.status": "MAINT",
		"routes.0.servers.2.marathon_health": "TASK_KILLING: draining",
		"routes.0.servers.2.haproxy.status":  "unknown",
		"routes.0.servers.2.haproxy.error":   "HAProxy has no server shop_web_10080/s3",
	})
}

// HAProxy not running, its socket failing or hanging: the servers are unknown, with why, and
// the document is served all the same.
func TestAppWithHAProxyUnreadable(t *testing.T) {
	for name, live := range map[string]fakeLive{
		"socket fails": {err: errors.New("dial unix /run/lodestar/admin.sock: connect: connection refused")},
		"not running":  {err: errors.New("HAProxy is not running")},
		"socket hangs": {hang: true},
	} {
		t.Run(name, func(t *testing.T) {
			doc := appDoc(t, Frontends{Routing: shopRouting(), Live: live})
			why := "deadline exceeded"
			if live.err != nil {
				why = live.err.Error()
			}
			for i := range 3 {
				wantFields(t, doc, map[string]string{
					fmt.Sprintf("routes.0.servers.%d.haproxy.status", i): "unknown",
					fmt.Sprintf("routes.0.servers.%d.haproxy.error", i):  why,
				})
			}
			wantFields(t, doc, map[string]string{"routes.0.servers.0.marathon_health": "healthy"})
		})
	}
}

func TestAppWithoutLiveStatesOrServers(t *testing.T) {
	doc := appDoc(t, Frontends{Routing: shopRouting()})
	wantFields(t, doc, map[string]string{"routes.0.servers.0.marathon_health": "healthy", "!routes.0.servers.0.haproxy": ""})

	// A route without servers does not read HAProxy.
	reads := &atomic.Int32{}
	empty := shopRouting()
	empty.routes["/shop/web"] = []Route{{Backend: "shop_web_10080", ServicePort: 10080}}
	doc = appDoc(t, Frontends{Routing: empty, Live: fakeLive{reads: reads}})
	wantFields(t, doc, map[string]string{"routes.0.servers.#": "0"})
	if n := reads.Load(); n != 0 {
		t.Errorf("%d readings of HAProxy for a route without servers", n)
	}
}

func TestStatusPageShowsHAProxyBesideMarathon(t *testing.T) {
	live := shopLive()
	live.servers["shop_web_10080/s3"] = LiveServer{Status: "DOWN", Check: "L7STS", CheckCode: "503",
		LastCheck: "Busy <script>alert(1)</script>"}
	s := statusServer(t, fixtureRegistry(t), Frontends{Routing: shopRouting(), Live: live})
	body := statusGet(t, s, "/")
	mustContain(t, body,
		`<li class="bad"><code>10.0.0.1:31001</code> ready · HAProxy <strong class="bad">DOWN</strong> (L4CON: Connection refused) · Marathon healthy <span class="mute">web.1</span></li>`,
		`<li class="bad"><code>10.0.0.2:31002</code> maint · HAProxy <strong class="bad">MAINT</strong> · Marathon health check failing <span class="mute">web.2</span></li>`,
		// The check's detail is the backend server's text: escaped.
		`<strong class="bad">DOWN</strong> (L7STS 503: Busy &lt;script&gt;alert(1)&lt;/script&gt;) · Marathon TASK_KILLING: draining`,
	)
	mustNotContain(t, body, "Server states unknown", "<script>alert(1)")

	up := shopLive()
	up.servers["shop_web_10080/s1"] = LiveServer{Status: "UP", Check: "L4OK", CheckDesc: "Layer4 check passed"}
	body = statusGet(t, statusServer(t, fixtureRegistry(t), Frontends{Routing: shopRouting(), Live: up}), "/")
	mustContain(t, body, `<li class="ok"><code>10.0.0.1:31001</code> ready · HAProxy <strong class="ok">UP</strong> · Marathon healthy <span class="mute">web.1</span></li>`)
}

func TestStatusPageWithHAProxyUnreadable(t *testing.T) {
	reads := &atomic.Int32{}
	live := fakeLive{err: errors.New("dial unix /run/lodestar/admin.sock: connect: <refused>"), reads: reads}
	s := statusServer(t, fixtureRegistry(t), Frontends{Routing: shopRouting(), Live: live})
	body := statusGet(t, s, "/")
	mustContain(t, body,
		`<p class="alert warn"><strong>Server states unknown:</strong> dial unix /run/lodestar/admin.sock: connect: &lt;refused&gt;</p>`,
		`<li class="warn"><code>10.0.0.1:31001</code> ready · HAProxy <strong class="warn">unknown</strong> (dial unix`,
		`· Marathon healthy <span class="mute">web.1</span></li>`,
	)
	if n := reads.Load(); n != 1 {
		t.Errorf("one page read HAProxy %d times, want once", n)
	}
}

func TestLiveClassAndCheck(t *testing.T) {
	for _, c := range []struct {
		s            LiveServer
		class, check string
	}{
		{LiveServer{Status: "UP", Check: "L7OK", CheckCode: "200", CheckDesc: "Layer7 check passed"}, "ok", ""},
		{LiveServer{Status: "no check"}, "ok", ""},
		{LiveServer{Status: "UP 1/3", Check: "L4TOUT", CheckDesc: "Layer4 timeout"}, "warn", "L4TOUT: Layer4 timeout"},
		{LiveServer{Status: "DOWN 1/2", Check: "L4OK", CheckDesc: "Layer4 check passed"}, "bad", "L4OK: Layer4 check passed"},
		{LiveServer{Status: "DOWN", Check: "L7STS", CheckCode: "500", LastCheck: "Internal Server Error"}, "bad", "L7STS 500: Internal Server Error"},
		{LiveServer{Status: "DOWN", Check: "L4CON"}, "bad", "L4CON"},
		{LiveServer{Status: "MAINT (via a/b)"}, "bad", ""},
		{LiveServer{Status: "DRAIN"}, "warn", ""},
		{LiveServer{Status: "NOLB"}, "warn", ""},
		{LiveServer{Status: "unknown", Error: "HAProxy is not running"}, "warn", "HAProxy is not running"},
		{LiveServer{Status: "<b>odd</b>"}, "warn", ""},
	} {
		if got := liveClass(c.s.Status); got != c.class {
			t.Errorf("liveClass(%q) = %q, want %q", c.s.Status, got, c.class)
		}
		if got := liveCheck(&c.s); got != c.check {
			t.Errorf("liveCheck(%+v) = %q, want %q", c.s, got, c.check)
		}
	}
}

// liveWithBackends is a reading that also has BACKEND rows.
type liveWithBackends struct {
	liveMap
	requests map[string]uint64
}

func (l liveWithBackends) ReadAt() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

func (l liveWithBackends) BackendRequests(backend string) (uint64, bool) {
	n, ok := l.requests[backend]
	return n, ok
}

type fakeLiveBackends struct{ reading liveWithBackends }

func (f fakeLiveBackends) ServerStates(context.Context) (ServerStates, error) { return f.reading, nil }

// Each route of /v1/apps/{id} carries its backend's request total when HAProxy has the
// backend, and none when it has not (never a made-up 0).
func TestAppRoutesCarryBackendRequests(t *testing.T) {
	reading := liveWithBackends{liveMap: shopLive().servers, requests: map[string]uint64{"shop_web_10080": 1234}}
	doc := appDoc(t, Frontends{Routing: shopRouting(), Live: fakeLiveBackends{reading}})
	wantFields(t, doc, map[string]string{"routes.0.requests": "1234", "routes.0.requests_at": "2026-03-01T12:00:00Z",
		"routes.0.servers.0.haproxy.status": "DOWN"})

	reading.requests = map[string]uint64{"other_backend": 5}
	doc = appDoc(t, Frontends{Routing: shopRouting(), Live: fakeLiveBackends{reading}})
	wantFields(t, doc, map[string]string{"!routes.0.requests": "", "!routes.0.requests_at": ""})

	// A reading without backends (ServerStates only) shows no total either.
	doc = appDoc(t, Frontends{Routing: shopRouting(), Live: shopLive()})
	wantFields(t, doc, map[string]string{"!routes.0.requests": "", "!routes.0.requests_at": ""})
}
