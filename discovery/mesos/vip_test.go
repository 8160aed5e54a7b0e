package mesos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStaticAddressReachingAnyMaster: the one --mesos-master is a name or VIP in front of
// every master, so the address asked reaches the leader on one poll and a master that does not
// lead on the next. That master's state (no frameworks, no agents, the leader named) is never
// taken for the leader's because the same address answered as leader before: the source asks
// the leader it names.
func TestStaticAddressReachingAnyMaster(t *testing.T) {
	t.Parallel()
	c := cluster(t, 2)
	leader, follower := c.Masters[0], c.Masters[1]
	var toFollower atomic.Bool
	proxy := func(m string) *httputil.ReverseProxy {
		return httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: m})
	}
	toLeader, toOther := proxy(leader.HostPort()), proxy(follower.HostPort())
	vip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if toFollower.Load() {
			toOther.ServeHTTP(w, r)
			return
		}
		toLeader.ServeHTTP(w, r)
	}))
	t.Cleanup(vip.Close)

	h := start(t, Config{Masters: []string{strings.TrimPrefix(vip.URL, "http://")}, Refresh: time.Hour})
	h.waitLeader(leader.HostPort())
	h.waitReport(0, "the first poll", isSuccess)

	toFollower.Store(true)
	reports := h.sink.ReportCount()
	asked := follower.Requests("")
	h.src.Resync(context.Background())
	if err := follower.WaitRequests(waitCtx(t), "", asked+1); err != nil {
		t.Fatal(err)
	}
	h.waitReport(reports, "the poll through the master that does not lead", isSuccess)
	h.noEmptyState()
	if s := h.reg.Snapshot(); s.Mesos == nil || len(s.Mesos.Frameworks) != seedFrameworks {
		t.Fatalf("state after a poll that reached a master that does not lead: %s", describe(s.Mesos))
	}
}
