package zkrules

import (
	"testing"

	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// TestResyncReadsTheRulesAgain: Resync (POST /v1/resync, marathon-lb's SIGHUP) makes Run read
// every rule again and report a sync, though nothing changed and no watch fired.
func TestResyncReadsTheRulesAgain(t *testing.T) {
	srv := zktest.Shared(t)
	src, _ := newSource(t, srv.URL(testPath(t)))
	sink := run(t, src)
	sink.waitRules(t, map[string]string{})
	n := sink.waitReport(t, 0, "the first sync", isSuccess)
	// Run may sync once more by itself as its first session comes up; five rounds, each
	// waiting for a sync the previous did not see, pass only if Resync causes syncs.
	for range 5 {
		if err := src.Resync(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
		n = sink.waitReport(t, n, "a sync after Resync", isSuccess)
	}
}
