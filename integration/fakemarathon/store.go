package fakemarathon

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
)

// app is one stored app: its raw definition and its tasks.
type app struct {
	def   map[string]any   // as given, minus "tasks" and computed fields
	tasks []map[string]any // oldest first
}

// computedFields are recomputed when serving and so not stored in def.
var computedFields = []string{
	"tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy",
	"deployments", "readinessCheckResults",
}

// terminalStates are the task states after which Marathon forgets a task.
var terminalStates = map[string]bool{
	"TASK_KILLED": true, "TASK_FAILED": true, "TASK_FINISHED": true,
	"TASK_LOST": true, "TASK_ERROR": true, "TASK_GONE": true,
	"TASK_DROPPED": true, "TASK_GONE_BY_OPERATOR": true,
}

// LoadAppsFile reads a JSON file and loads it like LoadApps.
func (s *Server) LoadAppsFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("fakemarathon: %w", err)
	}
	return s.LoadApps(data)
}

// LoadApps seeds apps from {"apps":[...]}, {"app":{...}} or a single app
// object, replacing stored apps with the same ids. Embedded "tasks" become
// the app's tasks; "deployments" and "readinessCheckResults" seed
// SetDeployments and SetReadiness. No events are emitted.
func (s *Server) LoadApps(data []byte) error {
	v, err := decode(data)
	if err != nil {
		return fmt.Errorf("fakemarathon: parse apps: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return errors.New("fakemarathon: apps JSON is not an object")
	}
	var raws []any
	switch {
	case obj["apps"] != nil:
		if raws, ok = obj["apps"].([]any); !ok {
			return errors.New(`fakemarathon: "apps" is not an array`)
		}
	case obj["app"] != nil:
		raws = []any{obj["app"]}
	default:
		raws = []any{obj}
	}
	apps := make([]*app, 0, len(raws))
	for _, raw := range raws {
		m, ok := raw.(map[string]any)
		if !ok {
			return errors.New("fakemarathon: app is not an object")
		}
		a, err := newApp(m)
		if err != nil {
			return err
		}
		apps = append(apps, a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range apps {
		s.putAppLocked(a, raws[i].(map[string]any))
	}
	return nil
}

// newApp splits a decoded app object into definition and tasks.
func newApp(m map[string]any) (*app, error) {
	id, _ := m["id"].(string)
	if strings.Trim(id, "/") == "" {
		return nil, errors.New(`fakemarathon: app without "id"`)
	}
	def := make(map[string]any, len(m))
	for k, v := range m {
		def[k] = v
	}
	def["id"] = normID(id)
	if _, ok := def["version"]; !ok {
		def["version"] = now()
	}
	for _, k := range computedFields {
		delete(def, k)
	}
	a := &app{def: def}
	if ts, ok := m["tasks"].([]any); ok {
		for _, t := range ts {
			tm, ok := t.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("fakemarathon: app %s: task is not an object", def["id"])
			}
			a.tasks = append(a.tasks, tm)
		}
	}
	return a, nil
}

// putAppLocked stores a, seeding deployments and readiness from the
// original object raw when present.
func (s *Server) putAppLocked(a *app, raw map[string]any) {
	id := str(a.def, "id")
	s.apps[id] = a
	if ds, ok := raw["deployments"].([]any); ok {
		ids := []string{}
		for _, d := range ds {
			if dm, ok := d.(map[string]any); ok {
				ids = append(ids, str(dm, "id"))
			}
		}
		s.deployments[id] = ids
	}
	if rs, ok := raw["readinessCheckResults"].([]any); ok {
		s.readiness[id] = rs
	}
}

// AddApp creates an app, or replaces the definition of an existing one
// (keeping its tasks unless app embeds "tasks"), and emits api_post_event
// with the definition without tasks, as Marathon does. Nested values may be
// any JSON-marshallable Go values.
func (s *Server) AddApp(app map[string]any) error {
	m, err := normalizeMap(app)
	if err != nil {
		return fmt.Errorf("fakemarathon: %w", err)
	}
	a, err := newApp(m)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addAppLocked(a, m)
}

// addAppLocked stores a (made from m) as AddApp does.
func (s *Server) addAppLocked(a *app, m map[string]any) error {
	id := str(a.def, "id")
	uri := "/v2/apps"
	if old, ok := s.apps[id]; ok {
		uri += id
		if _, hasTasks := m["tasks"]; !hasTasks {
			a.tasks = old.tasks
		}
	}
	s.putAppLocked(a, m)
	return s.emitLocked("api_post_event", map[string]any{
		"clientIp":      "127.0.0.1",
		"uri":           uri,
		"appDefinition": a.def,
		"eventType":     "api_post_event",
		"timestamp":     now(),
	})
}

// RemoveApp deletes an app and its tasks and emits app_terminated_event.
// Unknown ids are ignored.
func (s *Server) RemoveApp(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeAppLocked(normID(id))
}

// removeAppLocked removes app id (normalised) as RemoveApp does.
func (s *Server) removeAppLocked(id string) {
	if _, ok := s.apps[id]; !ok {
		return
	}
	s.cancelDeploymentsLocked(id)
	delete(s.apps, id)
	delete(s.deployments, id)
	delete(s.readiness, id)
	_ = s.emitLocked("app_terminated_event", map[string]any{
		"appId":     id,
		"eventType": "app_terminated_event",
		"timestamp": now(),
	})
}

// SetDeployments sets the ids embedded as the app's "deployments"
// ([{"id":...}]); nil or empty means none.
func (s *Server) SetDeployments(appID string, ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deployments[normID(appID)] = append([]string(nil), ids...)
}

// SetReadiness sets the app's "readinessCheckResults"; nil means none.
func (s *Server) SetReadiness(appID string, results []map[string]any) {
	var rs []any
	for _, r := range results {
		if m, err := normalizeMap(r); err == nil {
			rs = append(rs, m)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readiness[normID(appID)] = rs
}

// appJSONLocked builds the served object for a: the definition plus
// computed counts, deployments and, as asked, tasks and readiness. The
// result shares maps with the live state and must be marshalled under mu.
func (s *Server) appJSONLocked(a *app, o embedOptions) map[string]any {
	id := str(a.def, "id")
	out := make(map[string]any, len(a.def)+8)
	for k, v := range a.def {
		out[k] = v
	}
	var staged, running, healthy, unhealthy int
	for _, t := range a.tasks {
		switch str(t, "state") {
		case "TASK_STAGING", "TASK_STARTING":
			staged++
		case "TASK_RUNNING", "": // tasks of old Marathons have no state
			running++
		}
		if rs, ok := t["healthCheckResults"].([]any); ok && len(rs) > 0 {
			alive := true
			for _, r := range rs {
				if rm, ok := r.(map[string]any); !ok || rm["alive"] != true {
					alive = false
				}
			}
			if alive {
				healthy++
			} else {
				unhealthy++
			}
		}
	}
	out["tasksStaged"], out["tasksRunning"] = staged, running
	out["tasksHealthy"], out["tasksUnhealthy"] = healthy, unhealthy
	deps := []any{}
	for _, d := range s.deployments[id] {
		deps = append(deps, map[string]any{"id": d})
	}
	out["deployments"] = deps
	if o.tasks {
		ts := make([]any, len(a.tasks))
		for i, t := range a.tasks {
			ts[i] = t
		}
		out["tasks"] = ts
	}
	if o.readiness {
		rs := s.readiness[id]
		if rs == nil {
			rs = []any{}
		}
		out["readinessCheckResults"] = rs
	}
	return out
}

// Tasks returns copies of the app's tasks, oldest first, with numbers as
// float64 (as encoding/json decodes them).
func (s *Server) Tasks(appID string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[normID(appID)]
	if !ok {
		return nil
	}
	out := make([]map[string]any, len(a.tasks))
	for i, t := range a.tasks {
		out[i] = plainCopy(t)
	}
	return out
}

// newUUID returns a random UUID shaped like the time-based ones in
// Marathon task ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x10 // version 1
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// taskPrefix is the task id prefix of an app: "/shop/web" -> "shop_web".
func taskPrefix(appID string) string {
	return strings.ReplaceAll(strings.TrimPrefix(normID(appID), "/"), "/", "_")
}

// InstanceID returns the Marathon 1.4+ instance id of a task id:
// "shop_web.<uuid>" -> "shop_web.marathon-<uuid>". Ids already in that
// form are returned unchanged.
func InstanceID(taskID string) string {
	i := strings.LastIndex(taskID, ".")
	if i < 0 || strings.HasPrefix(taskID[i+1:], "marathon-") {
		return taskID
	}
	return taskID[:i] + ".marathon-" + taskID[i+1:]
}

// findTaskLocked finds a task by task id or instance id.
func (s *Server) findTaskLocked(id string) (*app, int, error) {
	for _, a := range s.apps {
		for i, t := range a.tasks {
			tid := str(t, "id")
			if tid == id || InstanceID(tid) == id {
				return a, i, nil
			}
		}
	}
	return nil, 0, fmt.Errorf("fakemarathon: unknown task %q", id)
}
