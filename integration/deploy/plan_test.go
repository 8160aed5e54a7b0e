package deploy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var planNow = time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)

func mustApp(t *testing.T, js string) App {
	t.Helper()
	a, err := ParseApp([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// marathonApp is an app as Marathon lists it: a colour of group web.
func marathonApp(id, colour string, servicePort, instances int, startedAt string) App {
	return App{
		"id": id, "instances": instances,
		"labels": map[string]any{
			LabelGroup: "web", LabelAltPort: "10001", LabelColour: colour, LabelStartedAt: startedAt,
			LabelPort0: "10000", LabelTargetInstances: "4",
		},
		"portDefinitions": []any{map[string]any{"port": servicePort}},
	}
}

func TestPrepareFirstDeploy(t *testing.T) {
	p, err := Prepare(mustApp(t, webJSON), []App{{"id": "/other", "labels": map[string]any{}}}, Options{InitialInstances: 1}, planNow)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != ModeFirst || p.NewID != "/shop/web-blue" || p.NewServicePort != 10000 || p.FrontendPort != 10000 || p.Target != 4 {
		t.Errorf("plan %+v", p)
	}
	if n, _ := p.New.Instances(); n != 4 {
		t.Errorf("first deploy instances %d, want the file's 4", n)
	}
	want := map[string]string{LabelColour: "blue", LabelAppID: "/shop/web", LabelPort0: "10000",
		LabelTargetInstances: "4", LabelStartedAt: "2026-12-07T20:00:00Z", LabelNewInstances: "0", LabelGroup: "web"}
	for k, v := range want {
		if got := p.New.Label(k); got != v {
			t.Errorf("label %s=%q, want %q", k, got, v)
		}
	}
}

// TestPrepareSwapAlternates: the next colour is the other one, on the other service port,
// and HAPROXY_0_PORT keeps the group on the file's port.
func TestPrepareSwapAlternates(t *testing.T) {
	file := mustApp(t, webJSON)
	for _, tc := range []struct {
		name                 string
		old                  App
		wantID               string
		wantColour           string
		wantPort, wantOldPrt int
	}{
		{"blue on the main port", marathonApp("/shop/web-blue", "blue", 10000, 4, "2026-12-01T10:00:00Z"), "/shop/web-green", "green", 10001, 10000},
		{"green on the alt port", marathonApp("/shop/web-green", "green", 10001, 4, "2026-12-01T10:00:00Z"), "/shop/web-blue", "blue", 10000, 10001},
		{"zdd.py's isoformat time", marathonApp("/shop/web-blue", "blue", 10000, 4, "2026-12-01T10:00:00.123456"), "/shop/web-green", "green", 10001, 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Prepare(file, []App{tc.old}, Options{InitialInstances: 1}, planNow)
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != ModeSwap || p.NewID != tc.wantID || p.NewColour != tc.wantColour || p.NewServicePort != tc.wantPort || p.OldServicePort != tc.wantOldPrt {
				t.Errorf("plan %s %s port %d (old %d)", p.NewID, p.NewColour, p.NewServicePort, p.OldServicePort)
			}
			if sp, _ := p.New.ServicePort(); sp != tc.wantPort {
				t.Errorf("new definition's service port %d", sp)
			}
			if p.New.Label(LabelPort0) != "10000" || p.New.Label(LabelTargetInstances) != "4" {
				t.Errorf("labels %v", p.New["labels"])
			}
			if n, _ := p.New.Instances(); n != 1 {
				t.Errorf("initial instances %d, want 1", n)
			}
		})
	}
}

func TestPrepareHybridAndResume(t *testing.T) {
	file := mustApp(t, webJSON)
	blue := marathonApp("/shop/web-blue", "blue", 10000, 4, "2026-12-01T10:00:00Z")
	p, err := Prepare(file, []App{blue}, Options{InitialInstances: 5, NewInstances: 2}, planNow)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Hybrid || p.Goal != 2 || p.New.Label(LabelNewInstances) != "2" {
		t.Errorf("hybrid plan: hybrid %v goal %d label %q", p.Hybrid, p.Goal, p.New.Label(LabelNewInstances))
	}
	if n, _ := p.New.Instances(); n != 2 {
		t.Errorf("initial instances %d, want min(--initial-instances, --new-instances) = 2", n)
	}

	green := marathonApp("/shop/web-green", "green", 10001, 2, "2026-12-02T10:00:00Z")
	green.SetLabel(LabelNewInstances, "2")
	two := []App{green, blue}
	if _, err := Prepare(file, two, Options{}, planNow); err == nil || !strings.Contains(err.Error(), "deployment in progress (/shop/web-blue, /shop/web-green)") {
		t.Errorf("two colours without --resume: %v", err)
	}
	for _, tc := range []struct {
		name           string
		opts           Options
		mode           Mode
		newID, oldID   string
		hybrid         bool
		goal           int
		wantErrContain string
	}{
		{"resume keeps the split", Options{Resume: true}, ModeResume, "/shop/web-green", "/shop/web-blue", true, 2, ""},
		{"complete-cur", Options{CompleteCur: true}, ModeResume, "/shop/web-green", "/shop/web-blue", false, 4, ""},
		{"complete-prev", Options{CompletePrev: true}, ModeCompletePrev, "/shop/web-blue", "/shop/web-green", false, 4, ""},
		{"both completes", Options{CompleteCur: true, CompletePrev: true}, "", "", "", false, 0, "give one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Prepare(file, two, tc.opts, planNow)
			if tc.wantErrContain != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrContain) {
					t.Fatalf("error %v, want %q", err, tc.wantErrContain)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != tc.mode || p.NewID != tc.newID || p.OldID != tc.oldID || p.Hybrid != tc.hybrid || p.Goal != tc.goal || p.New != nil {
				t.Errorf("plan mode %q new %s old %s hybrid %v goal %d", p.Mode, p.NewID, p.OldID, p.Hybrid, p.Goal)
			}
		})
	}
	if _, err := Prepare(file, []App{blue}, Options{CompleteCur: true}, planNow); err == nil || !strings.Contains(err.Error(), "not in a hybrid state") {
		t.Errorf("--complete-cur with one colour: %v", err)
	}
}

// TestPrepareHostileMarathonApps: a bad label on an app Marathon lists in the group stops the
// plan with an error naming that app and label; apps of other groups are not read.
func TestPrepareHostileMarathonApps(t *testing.T) {
	file := mustApp(t, webJSON)
	badTime := marathonApp("/shop/web-blue", "blue", 10000, 4, "yesterday")
	badOther := App{"id": "/x", "labels": map[string]any{LabelStartedAt: "garbage"}}
	if _, err := Prepare(file, []App{badTime}, Options{}, planNow); err == nil || !strings.Contains(err.Error(), "app /shop/web-blue: label HAPROXY_DEPLOYMENT_STARTED_AT") {
		t.Errorf("bad STARTED_AT: %v", err)
	}
	if _, err := Prepare(file, []App{badOther, marathonApp("/shop/web-blue", "blue", 10000, 4, "")}, Options{}, planNow); err != nil {
		t.Errorf("an app outside the group with a bad label stopped the plan: %v", err)
	}
	huge := marathonApp("/shop/web-blue", "blue", 10000, 4, "")
	huge["instances"] = 1e9
	if _, err := Prepare(file, []App{huge}, Options{}, planNow); err == nil || !strings.Contains(err.Error(), `app /shop/web-blue: "instances"`) {
		t.Errorf("huge instances in Marathon: %v", err)
	}
	// The colour is printed in the plan and decides the next one; labels must be strings.
	ctrlColour := marathonApp("/shop/web-blue", "blue\x1b[2J", 10000, 4, "")
	if _, err := Prepare(file, []App{ctrlColour}, Options{}, planNow); err == nil || !strings.Contains(err.Error(), `app /shop/web-blue: label HAPROXY_DEPLOYMENT_COLOUR="blue\x1b[2J"`) {
		t.Errorf("a colour with a control character: %v", err)
	}
	numLabel := marathonApp("/shop/web-blue", "blue", 10000, 4, "")
	numLabel.labelsMap()["HAPROXY_0_VHOST"] = 7.0
	if _, err := Prepare(file, []App{numLabel}, Options{}, planNow); err == nil || !strings.Contains(err.Error(), "app /shop/web-blue: label HAPROXY_0_VHOST is a number") {
		t.Errorf("a label that is not a string: %v", err)
	}
	sameColour := marathonApp("/shop/web-green", "green", 10001, 4, "")
	sameColour.SetLabel(LabelColour, "purple") // the next colour is blue…
	sameColour["id"] = "/shop/web-blue"        // …which is this app's id
	if _, err := Prepare(file, []App{sameColour}, Options{}, planNow); err == nil || !strings.Contains(err.Error(), "would be /shop/web-blue itself") {
		t.Errorf("next colour equal to the current app: %v", err)
	}
}

func TestNextInstances(t *testing.T) {
	for _, tc := range []struct {
		cur, old, goal, linear int
		hybrid                 bool
		want                   int
	}{
		{1, 10, 10, 0, false, 2},
		{2, 10, 10, 0, false, 3},
		{3, 10, 10, 0, false, 5},
		{5, 10, 10, 0, false, 8},
		{8, 10, 10, 0, false, 10},    // 12 ≥ old → goal
		{3, 4, 10, 0, false, 10},     // 5 ≥ old → goal
		{0, 10, 10, 0, false, 1},     // always by one at least
		{2, 10, 10, 3, false, 5},     // linear
		{9, 10, 10, 3, false, 10},    // linear, never past the goal
		{1, 10, 4, 0, true, 2},       // hybrid grows as usual…
		{3, 10, 4, 0, true, 4},       // …and stops at its goal
		{1, 1, 1000, 0, false, 1000}, // a small old colour
	} {
		if got := NextInstances(tc.cur, tc.old, tc.goal, tc.linear, tc.hybrid); got != tc.want {
			t.Errorf("NextInstances(%d, old %d, goal %d, linear %d, hybrid %v) = %d, want %d", tc.cur, tc.old, tc.goal, tc.linear, tc.hybrid, got, tc.want)
		}
	}
}

// TestSteps: the simulated steps account for lodestar's drains: the old colour shrinks as
// the new one becomes healthy, so the ×1.5 growth reaches the goal sooner.
func TestSteps(t *testing.T) {
	for _, tc := range []struct {
		initial, goal, old, target, linear int
		hybrid                             bool
		want                               []int
	}{
		{1, 10, 10, 10, 0, false, []int{1, 2, 3, 5, 10}},
		{1, 4, 4, 4, 0, false, []int{1, 2, 4}},
		{10, 10, 10, 10, 0, false, []int{10}},
		{1, 10, 10, 10, 4, false, []int{1, 5, 9, 10}},
		{1, 2, 10, 10, 0, true, []int{1, 2}},
	} {
		if got := Steps(tc.initial, tc.goal, tc.old, tc.target, tc.linear, tc.hybrid); !slices.Equal(got, tc.want) {
			t.Errorf("Steps(%d, goal %d, old %d, target %d, linear %d) = %v, want %v", tc.initial, tc.goal, tc.old, tc.target, tc.linear, got, tc.want)
		}
	}
}

// TestPlanWrite is what --dry-run prints: the app, the group, colours, ports and steps.
func TestPlanWrite(t *testing.T) {
	p, err := Prepare(mustApp(t, strings.Replace(webJSON, `"instances": 4`, `"instances": 10`, 1)),
		[]App{marathonApp("/shop/web-blue", "blue", 10000, 10, "2026-12-01T10:00:00Z")}, Options{InitialInstances: 1}, planNow)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	p.Write(&sb)
	out := sb.String()
	for _, want := range []string{
		"deploy /shop/web (blue/green)",
		"deployment group  web, served by HAProxy on port 10000 (HAPROXY_0_PORT)",
		"old colour        /shop/web-blue (blue), Marathon service port 10000, 10 instance(s)",
		"new colour        /shop/web-green (green), Marathon service port 10001",
		"target instances  10",
		"1. POST /v2/apps /shop/web-green with 1 instance(s)",
		"scale /shop/web-green through 1 → 2 → 3 → 5 → 10 instance(s)",
		"state drain, 0 sessions",
		"DELETE /v2/apps/shop/web-blue once every edge reports all its servers drained",
		`"HAPROXY_DEPLOYMENT_COLOUR": "green"`,
		`"id": "/shop/web-green"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}

func (a App) labelsMap() map[string]any { return a["labels"].(map[string]any) }
