package marathon

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
)

// Issue 12, item 7, over a real connection: a Marathon (here a proxy in front of the fake)
// whose first event stream sends an api_post_event of 1 MiB data lines without end (a bounded
// loop of 64 MiB, four times the limit; it stops when lodestar hangs up). lodestar drops the
// event with a log naming its type and size, reconnects, and the next honest event arrives.
func TestHostileEventOverTheLimitIsDroppedAndTheStreamRecovers(t *testing.T) {
	fake := newFake(t, "zdd_apps.json")
	target, err := url.Parse(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	var hostileSent, hostileWritten atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/events" || !hostileSent.CompareAndSwap(0, 1) {
			rp.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		line := append(append([]byte("data: "), bytes.Repeat([]byte("x"), 1<<20)...), '\n')
		if _, err := w.Write([]byte("event: api_post_event\n")); err != nil {
			return
		}
		for range 64 {
			n, err := w.Write(line)
			hostileWritten.Add(int64(n))
			if err != nil {
				return
			}
			http.NewResponseController(w).Flush()
		}
	}))
	t.Cleanup(proxy.Close)

	cfg := testConfig()
	cfg.URLs = []string{proxy.URL}
	h := start(t, cfg)
	h.waitLog("Marathon connection lost", "api_post_event", "dropped after", "size limit")
	// The second stream goes to the fake; the event emitted once it listens must arrive.
	waitUntil(t, "the reconnected stream", func() bool { return fake.Subscribers() == 1 })
	h.waitSynced()
	h.flush(fake)
	if n := hostileWritten.Load(); n >= 64<<20 {
		t.Errorf("the hostile stream was read to its end (%d bytes): the reader did not stop at the limit", n)
	}
}
