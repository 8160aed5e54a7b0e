package examples

import (
	"net/netip"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// The example cluster is what `lodestar serve` runs with no flags and what `make demo` shows:
// it must decode cleanly, route something, and point only at loopback addresses.
func TestExamplesDecodeAndStayOnLoopback(t *testing.T) {
	apps, appErrs, err := discovery.DecodeMarathonApps(Apps)
	if err != nil || len(appErrs) > 0 {
		t.Fatalf("apps.json: err %v, app errors %v", err, appErrs)
	}
	if len(apps) < 3 {
		t.Fatalf("apps.json holds %d apps; the demo shows at least 3", len(apps))
	}
	for _, a := range apps {
		if len(a.Tasks) == 0 {
			t.Errorf("%s has no task: nothing to route in the demo", a.ID)
		}
		for _, task := range a.Tasks {
			if ip, err := netip.ParseAddr(task.Host); err != nil || !ip.IsLoopback() {
				t.Errorf("%s task %s: host %q is not a loopback address", a.ID, task.ID, task.Host)
			}
		}
	}
	st, err := discovery.DecodeMesosState(State)
	if err != nil {
		t.Fatalf("state.json: %v", err)
	}
	for _, ag := range st.Agents {
		if ip, err := netip.ParseAddr(ag.Hostname); err != nil || !ip.IsLoopback() {
			t.Errorf("agent %s: hostname %q is not a loopback address", ag.ID, ag.Hostname)
		}
	}
	if len(st.Frameworks) == 0 || st.Leader == "" {
		t.Errorf("state.json: %d frameworks, leader %q", len(st.Frameworks), st.Leader)
	}
}
