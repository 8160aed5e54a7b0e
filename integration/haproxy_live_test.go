package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// liveAppDoc is the part of /v1/apps/{id} that shows each server's health as Marathon and as
// HAProxy see it.
type liveAppDoc struct {
	Routes []struct {
		Backend string `json:"backend"`
		Servers []struct {
			TaskID         string `json:"task_id"`
			State          string `json:"state"`
			MarathonHealth string `json:"marathon_health"`
			HAProxy        *struct {
				Status    string `json:"status"`
				Check     string `json:"check"`
				LastCheck string `json:"last_check"`
				Error     string `json:"error"`
			} `json:"haproxy"`
		} `json:"servers"`
	} `json:"routes"`
}

// TestHAProxyCheckDownWhileMarathonHealthy: Marathon reports both tasks of an app healthy, but
// one task's port is closed, so HAProxy's own TCP check marks that server DOWN and sends it no
// traffic. /v1/apps/{id} and the status page say so beside Marathon's "healthy"; the other
// task is UP in both.
func TestHAProxyCheckDownWhileMarathonHealthy(t *testing.T) {
	t.Parallel()
	const appID = "/shop/live"
	app := lbApp(appID, FreePort(t), nil)
	app["healthChecks"] = []any{map[string]any{
		"protocol": "TCP", "portIndex": 0, "intervalSeconds": 1, "timeoutSeconds": 1,
		"maxConsecutiveFailures": 1, "gracePeriodSeconds": 1,
	}}
	fm := startLBMarathon(t, app)
	healthy := true
	closed := FreePort(t) // nothing listens there: HAProxy's check is refused
	down, err := fm.AddTask(appID, fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{closed}, Health: &healthy})
	if err != nil {
		t.Fatal(err)
	}
	backend := haproxytest.Backend(t)
	up, err := fm.AddTask(appID, fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{backend.Port}, Health: &healthy})
	if err != nil {
		t.Fatal(err)
	}
	lb := startLB(t, fm)

	var doc liveAppDoc
	byTask := func() map[string]string {
		got := map[string]string{}
		for _, r := range doc.Routes {
			for _, s := range r.Servers {
				if s.HAProxy != nil {
					got[s.TaskID] = s.MarathonHealth + " / " + s.HAProxy.Status + " " + s.HAProxy.Check + " " + s.HAProxy.LastCheck
				}
			}
		}
		return got
	}
	Eventually(t, lbTimeout, "HAProxy's check to mark the closed port's server DOWN", func() error {
		doc = liveAppDoc{}
		if code := GetJSON(t, lb.URL("/v1/apps"+appID), &doc); code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		got := byTask()
		if !strings.HasPrefix(got[down], "healthy / DOWN") || !strings.HasPrefix(got[up], "healthy / UP") {
			return fmt.Errorf("servers %q", got)
		}
		return nil
	})
	if got := byTask(); got[down] != "healthy / DOWN L4CON Connection refused" {
		t.Errorf("the closed port's server: %q, want Marathon healthy and HAProxy DOWN with a refused L4 check", got[down])
	}

	// A reload (the first apply after HAProxy started) restarts the checks: a server reads
	// "UP 1/2 (INI)" for a moment, so the page is read until both lines settle.
	var page []byte
	Eventually(t, lbTimeout, "the status page to show HAProxy's and Marathon's views", func() error {
		code, body, err := Get(lb.URL("/?q=" + appID))
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("status page: %d %v", code, err)
		}
		page = body
		for _, want := range []string{
			fmt.Sprintf(`<li class="bad"><code>127.0.0.1:%d</code> ready · HAProxy <strong class="bad">DOWN</strong> (L4CON: Connection refused) · Marathon healthy <span class="mute">%s</span></li>`, closed, down),
			fmt.Sprintf(`<li class="ok"><code>127.0.0.1:%d</code> ready · HAProxy <strong class="ok">UP</strong> · Marathon healthy <span class="mute">%s</span></li>`, backend.Port, up),
		} {
			if !strings.Contains(string(body), want) {
				return fmt.Errorf("status page lacks %s; its server lines:\n%s", want, serverLines(string(body)))
			}
		}
		return nil
	})
	if strings.Contains(string(page), "Server states unknown") {
		t.Error("status page says HAProxy's server states are unknown")
	}
}

// serverLines are the status page's lines that show a server's HAProxy state.
func serverLines(page string) string {
	var out []string
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, "HAProxy <strong") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}
