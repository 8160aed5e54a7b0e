package marathon

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A partitioned Marathon answers nothing at all: its stream goes silent and the session's
// leader check (every LeaderCheck) hangs too. The leader check runs on the session's loop,
// so it used to hold the idle watchdog off for a whole RequestTimeout (30 s by default,
// twice the idle timeout; found in the multi-host lab, integration/lab). Here
// RequestTimeout is an hour: the failure must be reported after about the idle timeout.
func TestPartitionedMemberIsDetectedWithinTheIdleTimeout(t *testing.T) {
	t.Parallel()
	fake := newFake(t, "zdd_apps.json")
	target, err := url.Parse(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	var partitioned atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if partitioned.Load() && r.URL.Path != "/v2/events" {
			<-r.Context().Done() // the request is lost: no answer, no reset
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	t.Cleanup(func() { fake.StallStreams(false) }) // lets the proxy's streams end

	cfg := testConfig()
	cfg.URLs = []string{proxy.URL}
	cfg.IdleTimeout = 300 * time.Millisecond
	cfg.RequestTimeout = time.Hour
	h := start(t, cfg)
	h.waitSynced()
	reports := h.sink.ReportCount()
	partitioned.Store(true)
	fake.StallStreams(true)
	// Either the watchdog or the leader check, whichever comes first, ends the session.
	h.waitReport(reports, "the partitioned member", func(err error) bool {
		return err != nil && (strings.Contains(err.Error(), "event stream idle") ||
			strings.Contains(err.Error(), "/v2/leader did not answer within the idle timeout"))
	})
}
