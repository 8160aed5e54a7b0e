package integration

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// BenchmarkEventToTraffic measures the time from a status_update_event of a new task in the
// fake Marathon to HAProxy sending that task requests, with lodestar applying the change
// through the Runtime API (no reload). Each iteration adds a task on an HTTP server of its own
// next to the app's steady task, polls the app's service-port frontend until that server has
// answered, then kills the task and waits, untimed, until HAProxy no longer routes to it, so
// every iteration is runtime-only. It reports the median, the 99th percentile (nearest rank:
// with 50 runs it is the slowest) and the maximum in ms; marathon-lb needs 330–390 ms (it
// reloads), the target is a p99 under 100 ms.
//
//	go test -run '^$' -bench EventToTraffic -benchtime 50x ./integration/
func BenchmarkEventToTraffic(b *testing.B) {
	const appID = "/bench/web"
	sp := FreePort(b)
	// HTTP mode: HAProxy balances every request of a keep-alive connection.
	fm := startLBMarathon(b, lbApp(appID, sp, map[string]string{"HAPROXY_0_MODE": "http"}))
	steady, moving := haproxytest.Backend(b), haproxytest.Backend(b)
	addTask(b, fm, appID, steady)
	lb := startLB(b, fm)
	c := lbClient(b, true)
	r := portRoute(sp)
	be := backendName(appID, sp)
	lb.waitActiveServers(b, be, steady)
	reloads := lb.reloadCount(b)

	lat := make([]time.Duration, 0, b.N)
	poll := time.NewTicker(500 * time.Microsecond)
	defer poll.Stop()
	b.ResetTimer()
	for range b.N {
		before := moving.Requests()
		start := time.Now()
		task := addTask(b, fm, appID, moving)
		deadline := start.Add(lbTimeout)
		for moving.Requests() == before {
			if _, err := askBackend(c, http.MethodGet, r.url, ""); err != nil {
				b.Fatalf("through %s: %v", r.name, err)
			}
			if time.Now().After(deadline) {
				b.Fatalf("the new task on %s got no request within %s", moving.Addr, lbTimeout)
			}
			// Leave the CPUs to lodestar and HAProxy between probes: the resolution stays
			// half a millisecond.
			<-poll.C
		}
		lat = append(lat, time.Since(start))

		b.StopTimer()
		killTask(b, fm, task)
		lb.waitOnlyMaint(b, be, moving.Addr)
		lb.waitActiveServers(b, be, steady)
		b.StartTimer()
	}
	b.StopTimer()

	if got := lb.reloadCount(b); got != reloads {
		b.Fatalf("HAProxy reloaded %d time(s) during the benchmark: the measure is not runtime-only", got-reloads)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(0, "ns/op")
	if testing.Verbose() {
		b.Logf("event to traffic over %d runs: p50 %v, p99 %v, max %v", len(lat), percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1])
	}
}

// percentile is the nearest-rank p-th percentile of sorted, non-empty durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (p*len(sorted) + 99) / 100
	return sorted[max(i, 1)-1]
}
