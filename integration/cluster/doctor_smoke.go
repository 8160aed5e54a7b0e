package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The smoke test (Config.Smoke): the bring-up guides end with mesos-execute of a trivial
// command. The doctor does the same through Marathon, which is what lodestar serves: it posts
// a one-instance app that only sleeps, waits until a task of it is TASK_RUNNING, and deletes it,
// whatever happened in between.

// CheckSmoke names the smoke test's findings.
const CheckSmoke = "smoke test"

// Defaults of the smoke test.
const (
	defaultSmokeTimeout = 2 * time.Minute
	defaultSmokePoll    = time.Second
	// smokeAppPrefix starts the id of every smoke app, so an operator can tell one left over.
	smokeAppPrefix = "/lodestar-doctor-smoke-"
)

// smokeFailedStates are task states after which the task will never run.
var smokeFailedStates = map[string]bool{
	"TASK_FAILED": true, "TASK_ERROR": true, "TASK_LOST": true, "TASK_DROPPED": true,
	"TASK_GONE": true, "TASK_KILLED": true, "TASK_UNREACHABLE": true,
}

// smokeApp is the app posted: as small as Marathon takes, no port, no health check, and no
// HAPROXY_GROUP label, so no lodestar routes it.
func smokeApp(id string) map[string]any {
	return map[string]any{
		"id": id, "cmd": "sleep 3600", "cpus": 0.01, "mem": 16, "instances": 1, "portDefinitions": []any{},
		"labels": map[string]string{"created-by": "lodestar cluster doctor --smoke"},
	}
}

// smokeTask is the part of a Marathon task the smoke test reads.
type smokeTask struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Host  string `json:"host"`
}

// smokeStatus is the part of GET /v2/apps/{id} the smoke test reads.
type smokeStatus struct {
	App struct {
		Tasks           []smokeTask `json:"tasks"`
		LastTaskFailure *struct {
			State   string `json:"state"`
			Message string `json:"message"`
			Host    string `json:"host"`
		} `json:"lastTaskFailure"`
	} `json:"app"`
}

// runSmoke launches the smoke app through the Marathon at base and returns the findings: one
// for the launch, and a warning of its own when the app could not be deleted afterwards.
func (d *Doctor) runSmoke(ctx context.Context, base string) []Finding {
	id := d.cfg.SmokeAppID
	if id == "" {
		id = smokeAppPrefix + strconv.FormatInt(d.cfg.Now().UnixNano(), 36)
	}
	appURL := base + "/v2/apps" + id
	f := Finding{Check: CheckSmoke, Target: base + " app " + id}
	body, _ := json.Marshal(smokeApp(id))
	code, answer, err := d.send(ctx, http.MethodPost, base+"/v2/apps", body)
	switch {
	case err != nil:
		f.Severity, f.Message = SeverityError, "could not post the smoke app: "+err.Error()
		f.Fix = "check the marathon findings: the leader must answer POST /v2/apps from here"
		return []Finding{f}
	case code == http.StatusConflict:
		f.Severity, f.Message = SeverityError, "an app "+id+" exists already: "+firstLine(string(answer))
		f.Fix = "delete it (curl -X DELETE " + appURL + ") or give another --smoke-app-id"
		return []Finding{f}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		f.Severity, f.Message = SeverityError, fmt.Sprintf("Marathon refused to create the smoke app: %d %s", code, firstLine(string(answer)))
		f.Fix = "Marathon has authentication on: run the smoke test against an instance or proxy that lets this host create apps"
		return []Finding{f}
	case code != http.StatusCreated && code != http.StatusOK:
		f.Severity, f.Message = SeverityError, fmt.Sprintf("Marathon refused the smoke app: %d %s", code, firstLine(string(answer)))
		f.Fix = "read Marathon's log for why it refused a one-instance `sleep 3600` app"
		return []Finding{f}
	}
	f = d.waitSmokeRunning(ctx, f, appURL)
	err = d.deleteSmoke(appURL)
	if err == nil {
		f.Message += "; the app is deleted"
	}
	out := []Finding{f}
	if err != nil {
		out = append(out, Finding{Check: CheckSmoke, Target: base + " app " + id, Severity: SeverityWarn,
			Message: "could not delete the smoke app: " + err.Error(),
			Fix:     "delete it by hand: curl -X DELETE " + appURL})
	}
	return out
}

// waitSmokeRunning polls the smoke app until a task runs, a task fails for good, or the
// smoke timeout passes, and completes f with the outcome.
func (d *Doctor) waitSmokeRunning(ctx context.Context, f Finding, appURL string) Finding {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.SmokeTimeout)
	defer cancel()
	tick := time.NewTicker(d.cfg.SmokePoll)
	defer tick.Stop()
	var states []string
	for {
		var st smokeStatus
		err := d.getJSON(ctx, appURL+"?embed=app.tasks&embed=app.lastTaskFailure", &st)
		if err == nil {
			states = states[:0]
			for _, t := range st.App.Tasks {
				states = append(states, oneLine(firstLine(t.State)))
				if t.State == "TASK_RUNNING" {
					f.Severity = SeverityOK
					f.Message = fmt.Sprintf("task %s ran on %s after %s", firstLine(t.ID), firstLine(t.Host), time.Since(start).Round(100*time.Millisecond))
					return f
				}
				if smokeFailedStates[t.State] {
					f.Severity, f.Message = SeverityError, fmt.Sprintf("task %s on %s went %s before it ran", firstLine(t.ID), firstLine(t.Host), firstLine(t.State))
					f.Fix = "read the task's stderr in its sandbox on that agent (Mesos UI); a `sleep` that fails points at the agent's containerizer or isolation flags"
					return f
				}
			}
			if lf := st.App.LastTaskFailure; lf != nil {
				f.Severity, f.Message = SeverityError, fmt.Sprintf("a task went %s on %s: %s", firstLine(lf.State), firstLine(lf.Host), firstLine(lf.Message))
				f.Fix = "read the task's stderr in its sandbox on that agent (Mesos UI)"
				return f
			}
		}
		select {
		case <-ctx.Done():
			f.Severity = SeverityError
			f.Message = fmt.Sprintf("no task running within %s (task states: %s)", d.cfg.SmokeTimeout, orNone(strings.Join(states, ", ")))
			if err != nil {
				f.Message += "; last poll: " + err.Error()
			}
			f.Fix = "Marathon gets no usable offers: check that agents are registered with free cpus 0.01 and mem 16 for Marathon's role, and the marathon framework finding"
			return f
		case <-tick.C:
		}
	}
}

// deleteSmoke deletes the smoke app with a context of its own: the smoke test's may be over.
func (d *Doctor) deleteSmoke(appURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	code, answer, err := d.send(ctx, http.MethodDelete, appURL+"?force=true", nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK && code != http.StatusAccepted && code != http.StatusNoContent {
		return fmt.Errorf("DELETE: %d %s", code, firstLine(string(answer)))
	}
	return nil
}

// send makes one request with a JSON body (none when nil) and the probe timeout, and returns
// the answer's status and body.
func (d *Doctor) send(ctx context.Context, method, target string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// The client's errors name the method and the URL.
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: reading the answer: %w", method, target, err)
	}
	return resp.StatusCode, answer, nil
}

// smokeAppIDRE is what a smoke app id may be: a Marathon path of lower-case letters, digits,
// hyphens and dots, with no "." or ".." segment, so it reads the same in a URL.
var smokeAppIDRE = regexp.MustCompile(`^(/[a-z0-9]([a-z0-9.-]*[a-z0-9])?)+$`)

// checkSmokeAppID checks an app id given for the smoke test.
func checkSmokeAppID(id string) error {
	if !smokeAppIDRE.MatchString(id) || len(id) > 200 {
		return fmt.Errorf("cluster doctor: smoke app id %q: want an absolute Marathon app id of lower-case letters, digits, hyphens and dots, e.g. %stest", id, smokeAppPrefix)
	}
	return nil
}
