package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
)

// leaderlessMarathon is exampleMarathon behind a proxy that passes only /v2/apps and
// /v2/events: /v2/leader and /v2/info answer 404.
func leaderlessMarathon(t *testing.T) *fakemarathon.Server {
	t.Helper()
	fake := fakemarathon.New()
	fake.NoLeaderEndpoints = true
	if err := fake.LoadAppsFile("../../examples/apps.json"); err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	return fake
}

// TestRenderWithoutLeaderEndpoint: render syncs from the first member that serves /v2/apps
// when none serves /v2/leader (the first configured member is down).
func TestRenderWithoutLeaderEndpoint(t *testing.T) {
	down := leaderlessMarathon(t)
	down.GoDown()
	fake := leaderlessMarathon(t)
	code, out, errOut := runCmd(t, nil, "render", "--marathon", down.URL()+","+fake.URL(), "--timeout", "20s", "--format", "table")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "127.0.0.1:31001") {
		t.Errorf("render output lacks the example's task:\n%s", out)
	}
}

// TestServeWithoutLeaderEndpoint: serve syncs and follows events from a Marathon without
// /v2/leader.
func TestServeWithoutLeaderEndpoint(t *testing.T) {
	fake := leaderlessMarathon(t)
	base := startServe(t, "--marathon", fake.URL())
	waitApps(t, base, func(doc appsDoc) bool { return len(doc.Apps) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	id, err := fake.AddTask("/shop/api", fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{31010}})
	if err != nil {
		t.Fatal(err)
	}
	waitApps(t, base, func(doc appsDoc) bool { tk := doc.task("/shop/api", id); return tk != nil && tk.Eligible })
}
