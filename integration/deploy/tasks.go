package deploy

import (
	"fmt"
	"regexp"
)

// Task is what deploy reads of a Marathon task.
type Task struct {
	ID    string
	State string
	// Healthy is true for a running task that passes its app's health checks (every result
	// alive); for an app without health checks, every running task is healthy.
	Healthy bool
}

// Tasks returns the app's tasks as Marathon's GET /v2/apps/{id} embeds them.
func (a App) Tasks() []Task {
	raw, _ := a["tasks"].([]any)
	checked := a.hasHealthChecks()
	out := make([]Task, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		id, _ := m["id"].(string)
		if id == "" {
			continue
		}
		state, _ := m["state"].(string)
		t := Task{ID: id, State: state}
		running := state == "TASK_RUNNING" || state == ""
		t.Healthy = running && (!checked || allAlive(m["healthCheckResults"]))
		out = append(out, t)
	}
	return out
}

func (a App) hasHealthChecks() bool {
	hc, _ := a["healthChecks"].([]any)
	return len(hc) > 0
}

// allAlive reports whether a task's healthCheckResults hold at least one result and every
// one is alive.
func allAlive(raw any) bool {
	rs, _ := raw.([]any)
	if len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		m, ok := r.(map[string]any)
		if !ok || m["alive"] != true {
			return false
		}
	}
	return true
}

// Deployments returns how many Marathon deployments the app is part of.
func (a App) Deployments() int {
	d, _ := a["deployments"].([]any)
	return len(d)
}

// healthyTasks counts the app's healthy tasks and returns their ids.
func healthyTasks(ts []Task) (ids []string) {
	for _, t := range ts {
		if t.Healthy {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

func taskIDs(ts []Task) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

// taskIDPattern is a Marathon task or instance id ("shop_web.marathon-<uuid>",
// "web.instance-<uuid>._app.1"): the characters of app ids, '_' for their slashes, and ':'.
var taskIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$`)

// checkAnswered checks what deploy acts on in an app Marathon answered for id: the same id,
// the instances, the tasks' ids (they go into kill requests and printed lines) and the
// deployments list it counts. Marathon is a peer: a 200 is not a promise of sense.
func checkAnswered(id string, a App) error {
	if got := a.ID(); got != id {
		return fmt.Errorf("Marathon answered app %.80q for %s", got, id)
	}
	if _, err := a.Instances(); err != nil {
		return err
	}
	if raw, ok := a["tasks"]; ok && raw != nil {
		ts, ok := raw.([]any)
		if !ok {
			return fmt.Errorf("app %s: \"tasks\" is %s, want a list", id, jsonType(raw))
		}
		for i, r := range ts {
			m, ok := r.(map[string]any)
			if !ok {
				return fmt.Errorf("app %s: tasks[%d] is %s, want an object", id, i, jsonType(r))
			}
			tid, ok := m["id"].(string)
			if !ok || !taskIDPattern.MatchString(tid) {
				return fmt.Errorf("app %s: tasks[%d]: task id %.80q: want letters, digits, '.', '_', ':', '-'", id, i, fmt.Sprint(m["id"]))
			}
		}
	}
	if raw, ok := a["deployments"]; ok && raw != nil {
		if _, ok := raw.([]any); !ok {
			return fmt.Errorf("app %s: \"deployments\" is %s, want a list", id, jsonType(raw))
		}
	}
	return nil
}
