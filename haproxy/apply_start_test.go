package haproxy

import (
	"context"
	"crypto/sha256"
	"os"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// failedStartApplier is an Applier (without a Process) that wrote a first configuration of
// good, which HAProxy is taken to have run, and then installed a configuration of next that
// HAProxy has not run yet (it was down).
func failedStartApplier(t *testing.T, good, next []*discovery.App) (*Applier, []byte) {
	t.Helper()
	a, err := NewApplier(applierConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.writeFirst(ctx, snapshot(t, good...)); err != nil {
		t.Fatal(err)
	}
	a.markGood()
	goodConfig := a.Config()
	a.apply(ctx, snapshot(t, next...), "test", true)
	if string(a.Config()) == string(goodConfig) {
		t.Fatal("the new configuration was not installed")
	}
	return a, goodConfig
}

// TestFailedStartPutsBackLastGood: HAProxy cannot start with a new configuration and says
// nothing that points at an app (two apps changed: no telling which): the last configuration
// it ran goes back on disk and is the running model, for the supervisor's next start.
func TestFailedStartPutsBackLastGood(t *testing.T) {
	apps := manyApps(3, 24700)
	a, goodConfig := failedStartApplier(t, apps[:1], apps)
	serr := &StartError{Exit: "exit status 1", ConfigSum: sha256.Sum256(a.Config())}
	a.afterFailedStart(context.Background(), snapshot(t, apps...), serr)
	onDisk, err := os.ReadFile(a.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(goodConfig) || string(a.Config()) != string(goodConfig) {
		t.Errorf("after the failed start the file on disk (or the running model) is not the last configuration HAProxy ran:\n%s", onDisk)
	}
	if st := a.Status(); st.LastApply == nil || !strings.Contains(st.LastApply.Reason, "the last configuration it ran is put back") {
		t.Errorf("last apply %+v, want the put-back recorded", st.LastApply)
	}
}

// TestFailedStartBlamesTheOneChangedApp: HAProxy cannot start, without an alert, after one app
// changed since the configuration it ran: that app is left out, named, and the rest is written.
func TestFailedStartBlamesTheOneChangedApp(t *testing.T) {
	apps := manyApps(3, 24800)
	a, _ := failedStartApplier(t, apps[:2], apps)
	serr := &StartError{Exit: "signal: segmentation fault", ConfigSum: sha256.Sum256(a.Config())}
	a.afterFailedStart(context.Background(), snapshot(t, apps...), serr)
	ex := a.Status().Excluded
	if len(ex) != 1 || ex[0].AppID != "/team/app002" || ex[0].Reason != "HAProxy could not start with this app's sections (signal: segmentation fault)" {
		t.Fatalf("excluded %+v, want /team/app002 for the failed start", ex)
	}
	onDisk, err := os.ReadFile(a.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(onDisk), "team_app002") || !strings.Contains(string(onDisk), "backend team_app001_24801") {
		t.Error("the file on disk does not leave out exactly the blamed app")
	}
}
