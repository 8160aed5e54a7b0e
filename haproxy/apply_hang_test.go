package haproxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// Markers the fake haproxy of hangingCheck reacts to; they are valid vhosts.
const (
	hangMarker  = "hang-marker.test"
	crashMarker = "crash-marker.test"
)

// hangingCheck makes cfg's haproxy a wrapper around the real one whose `haproxy -c` hangs
// while the checked file contains hangMarker and dies of SIGSEGV while it contains
// crashMarker, printing nothing; it notes every other check in <run dir>/clean-checks.
// Candidates get checkTimeout before they count as hung.
func hangingCheck(t *testing.T, cfg *ApplierConfig, checkTimeout time.Duration) {
	t.Helper()
	script := filepath.Join(cfg.Build.RunDir, "haproxy-hangs")
	body := "#!/bin/sh\nif [ \"$1\" = -c ]; then\n" +
		"  if grep -q " + hangMarker + " \"$3\"; then exec sleep 600; fi\n" +
		"  if grep -q " + crashMarker + " \"$3\"; then kill -SEGV $$; fi\n" +
		"  echo \"$3\" >> " + filepath.Join(cfg.Build.RunDir, "clean-checks") + "\n" +
		"fi\nexec " + cfg.Bin + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Bin = script
	cfg.CheckTimeout = checkTimeout
}

// TestCheckLeavesOutAppThatHangsOrCrashesCheck: among 8 apps, one makes `haproxy -c` hang (or
// die of a signal) without an alert. It is left out, named with what happened, and the other
// seven are in the configuration; narrowing it down takes log2(8) checks beside the first and
// the last.
func TestCheckLeavesOutAppThatHangsOrCrashesCheck(t *testing.T) {
	for _, tc := range []struct {
		name, marker, reason string
	}{
		{"hang", hangMarker, "haproxy -c timed out after 5s with this app's sections"},
		{"crash", crashMarker, "haproxy -c crashed (segmentation fault) without an alert with this app's sections"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := applierConfig(t)
			hangingCheck(t, &cfg, DefaultCheckTimeout)
			a, err := NewApplier(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			apps := manyApps(8, 24000)
			apps[5].Labels["HAPROXY_0_VHOST"] = tc.marker
			conf, excluded, validations, err := a.Check(context.Background(), snapshot(t, apps...))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if len(excluded) != 1 || excluded[0].AppID != "/team/app005" || excluded[0].Reason != tc.reason {
				t.Fatalf("excluded %+v, want only /team/app005 with %q", excluded, tc.reason)
			}
			if validations > 5 {
				t.Errorf("%d validations, want at most 5 (the first, 3 to narrow 8 apps down, the last)", validations)
			}
			for i := range 8 {
				in := strings.Contains(string(conf), fmt.Sprintf("backend team_app%03d_%d", i, 24000+i))
				if in != (i != 5) {
					t.Errorf("backend of app%03d in the configuration: %v", i, in)
				}
			}
		})
	}
}

// TestCheckHangAndAlertTogether: one app HAProxy rejects with an alert and one that makes the
// check hang are both left out, each with its own reason; the rest stays.
func TestCheckHangAndAlertTogether(t *testing.T) {
	cfg := applierConfig(t)
	hangingCheck(t, &cfg, DefaultCheckTimeout)
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(6, 24100)
	apps[1].Labels["HAPROXY_0_BIND_OPTIONS"] = "no-such-bind-keyword"
	apps[4].Labels["HAPROXY_0_VHOST"] = hangMarker
	conf, excluded, _, err := a.Check(context.Background(), snapshot(t, apps...))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	reasons := map[string]string{}
	for _, e := range excluded {
		reasons[e.AppID] = e.Reason
	}
	if len(reasons) != 2 || !strings.Contains(reasons["/team/app001"], "no-such-bind-keyword") ||
		!strings.Contains(reasons["/team/app004"], "timed out") {
		t.Fatalf("excluded %+v, want app001 for its bind option and app004 for the hang", excluded)
	}
	if !strings.Contains(string(conf), "backend team_app000_24100") || !strings.Contains(string(conf), "backend team_app005_24105") {
		t.Error("the other apps are not all in the configuration")
	}
}

// TestCheckGlobalHangBlamesNobody: when the check hangs whatever app is left out (the HEAD is
// at fault), no app is blamed: the check fails with the hang, and nothing is remembered.
func TestCheckGlobalHangBlamesNobody(t *testing.T) {
	cfg := applierConfig(t)
	hangingCheck(t, &cfg, time.Second)
	editHead(t, &cfg, func(head string) string { return strings.Replace(head, "global\n", "global\n  # "+hangMarker+"\n", 1) })
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, excluded, _, err := a.Check(context.Background(), snapshot(t, manyApps(3, 24200)...))
	var aborted *CheckAbortedError
	if !errors.As(err, &aborted) || !aborted.TimedOut {
		t.Fatalf("Check = %v, want the check's timeout", err)
	}
	if len(excluded) != 0 || len(a.blamed) != 0 {
		t.Errorf("excluded %v, blamed %v: no app is to blame", excluded, a.blamed)
	}
}

// TestCheckRealHAProxyHangOnFIFO: a backend template that makes the real HAProxy read an ACL
// pattern file that is a FIFO (no writer: `haproxy -c` blocks in open) leaves out that app.
func TestCheckRealHAProxyHangOnFIFO(t *testing.T) {
	cfg := applierConfig(t)
	cfg.CheckTimeout = DefaultCheckTimeout
	// Confined labels refuse `-f` before haproxy -c runs; the operator's own templates, or a
	// full-mode edge, can still hang it, and that is what is tested here.
	cfg.Build.LabelTemplates = LabelTemplatesFull
	fifo := filepath.Join(cfg.Build.RunDir, "patterns")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(4, 24300)
	apps[2].Labels["HAPROXY_0_BACKEND_HEAD"] = "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  acl from_fifo path -f " + fifo + "\n"
	conf, excluded, _, err := a.Check(context.Background(), snapshot(t, apps...))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(excluded) != 1 || excluded[0].AppID != "/team/app002" || !strings.Contains(excluded[0].Reason, "timed out") {
		t.Fatalf("excluded %+v, want /team/app002 for the timed-out check", excluded)
	}
	if strings.Contains(string(conf), fifo) || !strings.Contains(string(conf), "backend team_app003_24303") {
		t.Error("the configuration does not leave out exactly the app reading the FIFO")
	}
}

// TestApplierVictimChangeLandsBesideHangingApp drives a real HAProxy: an app that makes
// `haproxy -c` hang is left out with its reason, and afterwards a victim's vhost change goes
// live with a single check (the hanging app stays out without being checked again).
func TestApplierVictimChangeLandsBesideHangingApp(t *testing.T) {
	cfg := applierConfig(t)
	hangingCheck(t, &cfg, DefaultCheckTimeout)
	s := newApplierStack(t, cfg, false)
	victim := vhostApp("/victim/web", 24400, task("t-victim", host("127.0.0.1"), ports(41400)))
	other := vhostApp("/other/web", 24401, task("t-other", host("127.0.0.1"), ports(41401)))
	s.start(victim, other)

	hostile := vhostApp("/evil/app", 24402, task("t-evil", host("127.0.0.1"), ports(41402)))
	hostile.Labels["HAPROXY_0_VHOST"] = hangMarker
	s.reg.replace(t, victim, other, hostile)
	excludedEvil := func() bool {
		for _, e := range s.a.Status().Excluded {
			if e.AppID == "/evil/app" && strings.Contains(e.Reason, "haproxy -c timed out") {
				return true
			}
		}
		return false
	}
	haproxytest.WaitFor(t, 30*time.Second, excludedEvil, "the hanging app left out")

	victim2 := vhostApp("/victim/web", 24400, task("t-victim", host("127.0.0.1"), ports(41400)))
	victim2.Labels["HAPROXY_0_VHOST"] = "victim-new.test"
	s.reg.replace(t, victim2, other, hostile)
	haproxytest.WaitFor(t, 30*time.Second, func() bool { return strings.Contains(string(s.a.Config()), "victim-new.test") },
		"the victim's new vhost in the running configuration")
	st := s.a.Status()
	if st.LastReload == nil || st.LastReload.Validations != 1 || st.LastReload.Kind != "reload" {
		t.Errorf("last reload %+v, want a reload after one check", st.LastReload)
	}
	if !excludedEvil() {
		t.Errorf("excluded %+v: the hanging app should still be out", st.Excluded)
	}
	if !strings.Contains(s.onDisk(), "victim-new.test") || strings.Contains(s.onDisk(), hangMarker) {
		t.Error("the file on disk is not the victim's change without the hanging app")
	}
}

// TestOneCulprit: halving finds the one bad suspect in about log2(n) checks, and some bad
// suspect when there are several.
func TestOneCulprit(t *testing.T) {
	for _, tc := range []struct {
		n         int
		bad       []int
		maxChecks int
	}{
		{1, []int{0}, 0},
		{2, []int{1}, 1},
		{8, []int{5}, 3},
		{100, []int{0}, 7},
		{100, []int{99}, 7},
		{1000, []int{637}, 10},
		{16, []int{3, 12}, 4},
	} {
		suspects := make([]string, tc.n)
		for i := range suspects {
			suspects[i] = fmt.Sprintf("/app%04d", i)
		}
		checks := 0
		fails := func(included []string) (bool, error) {
			checks++
			for _, b := range tc.bad {
				if slices.Contains(included, suspects[b]) {
					return true, nil
				}
			}
			return false, nil
		}
		got, err := oneCulprit(suspects, fails)
		if err != nil {
			t.Fatal(err)
		}
		isBad := slices.ContainsFunc(tc.bad, func(b int) bool { return suspects[b] == got })
		if !isBad || checks > tc.maxChecks {
			t.Errorf("n=%d bad=%v: got %s after %d checks, want a bad one in at most %d", tc.n, tc.bad, got, checks, tc.maxChecks)
		}
	}
	stop := errors.New("ctx ended")
	if _, err := oneCulprit([]string{"/a", "/b"}, func([]string) (bool, error) { return false, stop }); !errors.Is(err, stop) {
		t.Errorf("a failed check gives %v, want it returned", err)
	}
}

// TestCheckTimeout: the floor for small configurations, more per MB, more after a slow check,
// never past ValidateTimeout.
func TestCheckTimeout(t *testing.T) {
	for _, tc := range []struct {
		size       int
		lastPassed time.Duration
		want       time.Duration
	}{
		{10 << 10, 0, 5*time.Second + 30*time.Millisecond},
		{1 << 20, 0, 8 * time.Second},
		{4 << 20, 100 * time.Millisecond, 17 * time.Second},
		{1 << 10, 3 * time.Second, 15 * time.Second},
		{100 << 20, 0, ValidateTimeout},
		{1 << 10, time.Minute, ValidateTimeout},
	} {
		got := checkTimeout(tc.size, tc.lastPassed, DefaultCheckTimeout)
		if got.Round(10*time.Millisecond) != tc.want {
			t.Errorf("checkTimeout(%d, %v) = %v, want %v", tc.size, tc.lastPassed, got, tc.want)
		}
	}
}

// TestChangedOwners: only apps whose own lines changed, or are new, are suspects; lines of no
// app and apps that went away are not.
func TestChangedOwners(t *testing.T) {
	last := &Rendered{Config: []byte("global\nacl a\nacl b\nbackend a\nbackend b\nbackend gone\n"),
		Owner: []string{"", "/a", "/b", "/a", "/b", "/gone"}}
	next := &Rendered{Config: []byte("global changed\nacl a\nacl b2\nbackend a\nbackend b\nbackend c\n"),
		Owner: []string{"", "/a", "/b", "/a", "/b", "/c"}}
	if got := changedOwners(last, next); !slices.Equal(got, []string{"/b", "/c"}) {
		t.Errorf("changedOwners = %v, want [/b /c]", got)
	}
	if got := changedOwners(nil, next); !slices.Equal(got, []string{"/a", "/b", "/c"}) {
		t.Errorf("changedOwners from nothing = %v, want every app", got)
	}
}

// TestRemovedRuleBringsAppBack: a bamboo rule HAProxy rejects leaves its app out; once the rule
// is deleted the app is back, though its Marathon definition never changed (the blame used to
// outlive the rule, so DELETE /api/services did not restore the app).
func TestRemovedRuleBringsAppBack(t *testing.T) {
	a, err := NewApplier(applierConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, manyApps(3, 24500)...)
	withRule := *snap
	// A rule of the right shape that only HAProxy refuses: the app is blamed by its alert.
	withRule.Rules = map[string]discovery.ServiceRule{"/team/app001": {AppID: "/team/app001", ACL: "no_such_fetch(host) -i a.test"}}
	_, excluded, _, err := a.Check(context.Background(), &withRule)
	if err != nil {
		t.Fatalf("Check with the bad rule: %v", err)
	}
	if len(excluded) != 1 || excluded[0].AppID != "/team/app001" || !strings.Contains(excluded[0].Reason, "no_such_fetch") {
		t.Fatalf("excluded %+v, want /team/app001 for its rule's unknown fetch (the first alert, not its consequences)", excluded)
	}
	conf, excluded, _, err := a.Check(context.Background(), snap)
	if err != nil {
		t.Fatalf("Check without the rule: %v", err)
	}
	if len(excluded) != 0 || !strings.Contains(string(conf), "backend team_app001_24501") {
		t.Errorf("excluded %+v after the rule is gone, want the app back", excluded)
	}
}

// TestHangBlameKeptWhenApplyRunsOut: two apps make the check hang; the apply runs out of time
// after the first was found. That one stays blamed, so the next apply goes on from there
// instead of narrowing down from the start again.
func TestHangBlameKeptWhenApplyRunsOut(t *testing.T) {
	cfg := applierConfig(t)
	hangingCheck(t, &cfg, DefaultCheckTimeout)
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(4, 24900)
	apps[0].Labels["HAPROXY_0_VHOST"] = hangMarker
	apps[1].Labels["HAPROXY_0_VHOST"] = "two-" + hangMarker
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first check without any hanging app is the second round's check without suspects:
	// the first culprit is known by then. The apply runs out of time right after it.
	clean := filepath.Join(cfg.Build.RunDir, "clean-checks")
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := os.Stat(clean); err == nil {
					cancel()
					return
				}
			}
		}
	}()
	if _, _, _, err := a.Check(ctx, snapshot(t, apps...)); err == nil {
		t.Fatal("Check passed though it was cut short")
	}
	b, kept := a.blamed["/team/app000"]
	if len(a.blamed) != 1 || !kept || !strings.Contains(b.reason, "timed out") {
		t.Fatalf("blamed %v, want /team/app000 kept for the timed-out check", a.blamed)
	}
	_, excluded, _, err := a.Check(context.Background(), snapshot(t, apps...))
	if err != nil {
		t.Fatalf("the next Check: %v", err)
	}
	if len(excluded) != 2 {
		t.Errorf("excluded %+v, want both hanging apps", excluded)
	}
}
