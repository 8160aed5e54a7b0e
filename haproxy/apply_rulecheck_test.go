package haproxy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestCheckRule: a rule HAProxy rejects is refused with HAProxy's alert, a rule that hangs the
// check is refused as such, an honest rule passes even when another app of the snapshot is
// broken, and a rule for an app that is not there yet is not HAProxy's to judge.
func TestCheckRule(t *testing.T) {
	cfg := applierConfig(t)
	hangingCheck(t, &cfg, DefaultCheckTimeout)
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(3, 24600)
	apps[2].Labels["HAPROXY_0_BIND_OPTIONS"] = "no-such-bind-keyword"
	snap := snapshot(t, apps...)
	for _, tc := range []struct {
		app, acl, refused string
	}{
		{"/team/app000", "hdr(host) -i rules.example.test", ""},
		{"/team/app000", "path_beg /shop", ""},
		{"/team/app000", `hdr(host) -i "a`, "quotes, escapes"},
		{"/team/app001", "no_such_fetch(host) -i a.test", "no_such_fetch"},
		{"/team/app001", "hdr(host) -i " + hangMarker, "haproxy -c timed out"},
		{"/team/absent", `hdr(host) -i "a`, ""},
	} {
		err := a.CheckRule(context.Background(), snap, tc.app, tc.acl)
		if tc.refused == "" {
			if err != nil {
				t.Errorf("CheckRule(%s, %q) = %v, want nil", tc.app, tc.acl, err)
			}
			continue
		}
		if !errors.Is(err, ErrRuleRejected) || !strings.Contains(err.Error(), tc.refused) {
			t.Errorf("CheckRule(%s, %q) = %v, want it rejected with %q", tc.app, tc.acl, err, tc.refused)
		}
	}
	if a.Status().LastApply != nil || a.Config() != nil {
		t.Error("CheckRule touched what the Applier runs")
	}
}

// TestCheckRuleOneAtATime: rule checks wait for each other (a burst of PUTs runs one
// `haproxy -c` at a time), and a check whose request ends while it waits gives up.
func TestCheckRuleOneAtATime(t *testing.T) {
	a, err := NewApplier(applierConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, manyApps(1, 24650)...)
	a.ruleChecks <- struct{}{} // a check in progress
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.CheckRule(ctx, snap, "/team/app000", "hdr(host) -i a.test"); !errors.Is(err, context.Canceled) {
		t.Errorf("CheckRule while another runs, its request gone = %v, want it to give up", err)
	}
	<-a.ruleChecks
	if err := a.CheckRule(context.Background(), snap, "/team/app000", "hdr(host) -i a.test"); err != nil {
		t.Errorf("CheckRule once the other is done = %v", err)
	}
}
