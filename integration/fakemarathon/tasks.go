package fakemarathon

import (
	"errors"
	"fmt"
	"strings"
)

// TaskSpec describes a task for AddTask.
type TaskSpec struct {
	// Host is the agent host; default "127.0.0.1".
	Host string
	// Ports are the task's host ports.
	Ports []int
	// IPAddresses are the task's IPs; default [Host].
	IPAddresses []string
	// State is the task state; default TASK_RUNNING.
	State string
	// SlaveID is the agent id; default "fakemarathon-S0".
	SlaveID string
	// Health is the initial health check result; nil means none yet.
	Health *bool
	// ID is the task id; default a new one, "<app>.<uuid>".
	ID string
}

// statusUpdateEvent is a status_update_event with Marathon's field order.
type statusUpdateEvent struct {
	SlaveID     string `json:"slaveId"`
	TaskID      string `json:"taskId"`
	TaskStatus  string `json:"taskStatus"`
	Message     string `json:"message"`
	AppID       string `json:"appId"`
	Host        string `json:"host"`
	IPAddresses []any  `json:"ipAddresses"`
	Ports       []any  `json:"ports"`
	Version     string `json:"version"`
	EventType   string `json:"eventType"`
	Timestamp   string `json:"timestamp"`
}

// emitStatusLocked emits a status_update_event for task t in state. Like
// Marathon, a TASK_STAGING update carries no addresses or ports yet.
func (s *Server) emitStatusLocked(t map[string]any, state string) error {
	ev := statusUpdateEvent{
		SlaveID:     str(t, "slaveId"),
		TaskID:      str(t, "id"),
		TaskStatus:  state,
		AppID:       str(t, "appId"),
		Host:        str(t, "host"),
		IPAddresses: []any{},
		Ports:       []any{},
		Version:     str(t, "version"),
		EventType:   "status_update_event",
		Timestamp:   now(),
	}
	if state != "TASK_STAGING" {
		if ips, ok := t["ipAddresses"].([]any); ok {
			ev.IPAddresses = ips
		}
		if ps, ok := t["ports"].([]any); ok {
			ev.Ports = ps
		}
	}
	return s.emitLocked("status_update_event", ev)
}

// emitHealthLocked emits a health_status_changed_event for task t.
func (s *Server) emitHealthLocked(a *app, t map[string]any, alive bool) error {
	ev := map[string]any{
		"appId":     str(a.def, "id"),
		"version":   str(t, "version"),
		"alive":     alive,
		"eventType": "health_status_changed_event",
		"timestamp": now(),
	}
	if s.LegacyHealthEvents {
		ev["taskId"] = str(t, "id")
	} else {
		ev["instanceId"] = InstanceID(str(t, "id"))
	}
	return s.emitLocked("health_status_changed_event", ev)
}

// AddTask adds a task to an app and emits its status_update_events:
// TASK_STAGING then TASK_RUNNING for a running task (the default), or just
// the given state otherwise. A non-nil Health also sets the task's health
// result and emits health_status_changed_event. It returns the task id,
// e.g. "shop_web.1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc" for app /shop/web.
func (s *Server) AddTask(appID string, spec TaskSpec) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[normID(appID)]
	if !ok {
		return "", fmt.Errorf("fakemarathon: unknown app %q", normID(appID))
	}
	return s.addTaskLocked(a, spec)
}

func (s *Server) addTaskLocked(a *app, spec TaskSpec) (string, error) {
	state := spec.State
	if state == "" {
		state = "TASK_RUNNING"
	}
	if !strings.HasPrefix(state, "TASK_") {
		return "", fmt.Errorf("fakemarathon: bad task state %q", state)
	}
	host := spec.Host
	if host == "" {
		host = "127.0.0.1"
	}
	ips := spec.IPAddresses
	if len(ips) == 0 {
		ips = []string{host}
	}
	ipList := make([]any, len(ips))
	for i, ip := range ips {
		proto := "IPv4"
		if strings.Contains(ip, ":") {
			proto = "IPv6"
		}
		ipList[i] = map[string]any{"ipAddress": ip, "protocol": proto}
	}
	ports := make([]any, len(spec.Ports))
	for i, p := range spec.Ports {
		ports[i] = p
	}
	slave := spec.SlaveID
	if slave == "" {
		slave = "fakemarathon-S0"
	}
	appID := str(a.def, "id")
	id := spec.ID
	if id == "" {
		id = taskPrefix(appID) + "." + newUUID()
	}
	ts := now()
	t := map[string]any{
		"id":          id,
		"appId":       appID,
		"host":        host,
		"ipAddresses": ipList,
		"ports":       ports,
		"slaveId":     slave,
		"stagedAt":    ts,
		"startedAt":   nil,
		"state":       state,
		"version":     str(a.def, "version"),
	}
	if state == "TASK_RUNNING" {
		t["startedAt"] = ts
	}
	a.tasks = append(a.tasks, t)
	if state == "TASK_RUNNING" {
		if err := s.emitStatusLocked(t, "TASK_STAGING"); err != nil {
			return "", err
		}
	}
	if err := s.emitStatusLocked(t, state); err != nil {
		return "", err
	}
	if spec.Health != nil {
		return id, s.setHealthLocked(a, t, *spec.Health)
	}
	return id, nil
}

// appPortCount is how many host ports a task of def gets: one per port
// mapping (Marathon 1.5 container.portMappings or legacy
// container.docker.portMappings), else per portDefinitions / ports entry.
func appPortCount(def map[string]any) int {
	if c, ok := def["container"].(map[string]any); ok {
		if pm, ok := c["portMappings"].([]any); ok && len(pm) > 0 {
			return len(pm)
		}
		if d, ok := c["docker"].(map[string]any); ok {
			if pm, ok := d["portMappings"].([]any); ok && len(pm) > 0 {
				return len(pm)
			}
		}
	}
	if pd, ok := def["portDefinitions"].([]any); ok {
		return len(pd)
	}
	if p, ok := def["ports"].([]any); ok {
		return len(p)
	}
	return 0
}

// ScaleApp sets the app's "instances" to n, adding tasks on 127.0.0.1 (one
// fresh host port per app port, allocated from 31000 up) or killing the
// newest tasks, with the matching events. It returns the ids of the app's
// tasks afterwards, oldest first.
func (s *Server) ScaleApp(appID string, n int) ([]string, error) {
	if n < 0 {
		return nil, errors.New("fakemarathon: negative instance count")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[normID(appID)]
	if !ok {
		return nil, fmt.Errorf("fakemarathon: unknown app %q", normID(appID))
	}
	a.def["instances"] = n
	for len(a.tasks) < n {
		ports := make([]int, appPortCount(a.def))
		for i := range ports {
			ports[i] = s.nextPort
			s.nextPort++
		}
		if _, err := s.addTaskLocked(a, TaskSpec{Ports: ports}); err != nil {
			return nil, err
		}
	}
	for len(a.tasks) > n {
		if err := s.killLocked(a, len(a.tasks)-1); err != nil {
			return nil, err
		}
	}
	ids := make([]string, len(a.tasks))
	for i, t := range a.tasks {
		ids[i] = str(t, "id")
	}
	return ids, nil
}

// killLocked emits TASK_KILLING and TASK_KILLED for a.tasks[i], removes it and calls the
// launcher's stop hook.
func (s *Server) killLocked(a *app, i int) error {
	if s.deploys.stop != nil {
		s.deploys.stop(str(a.tasks[i], "id"))
	}
	if err := s.setStateLocked(a, i, "TASK_KILLING"); err != nil {
		return err
	}
	return s.setStateLocked(a, i, "TASK_KILLED")
}

// KillTask kills a task (by task or instance id): it emits TASK_KILLING
// then TASK_KILLED and removes the task. The app's "instances" is kept.
func (s *Server) KillTask(taskID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, i, err := s.findTaskLocked(taskID)
	if err != nil {
		return err
	}
	return s.killLocked(a, i)
}

// SetTaskState moves a task (by task or instance id) to state and emits a
// status_update_event. Terminal states (TASK_KILLED, TASK_FAILED,
// TASK_FINISHED, TASK_LOST, TASK_ERROR, TASK_GONE, ...) remove the task.
func (s *Server) SetTaskState(taskID, state string) error {
	if !strings.HasPrefix(state, "TASK_") {
		return fmt.Errorf("fakemarathon: bad task state %q", state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, i, err := s.findTaskLocked(taskID)
	if err != nil {
		return err
	}
	if err := s.setStateLocked(a, i, state); err != nil {
		return err
	}
	return s.kickLocked(str(a.def, "id"))
}

func (s *Server) setStateLocked(a *app, i int, state string) error {
	t := a.tasks[i]
	t["state"] = state
	if state == "TASK_RUNNING" && t["startedAt"] == nil {
		t["startedAt"] = now()
	}
	if terminalStates[state] {
		a.tasks = append(a.tasks[:i:i], a.tasks[i+1:]...)
	}
	return s.emitStatusLocked(t, state)
}

// SetHealth sets a task's (by task or instance id) healthCheckResults to
// one result with the given liveness and emits health_status_changed_event
// naming the task by instanceId (or taskId with LegacyHealthEvents).
func (s *Server) SetHealth(taskID string, alive bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, i, err := s.findTaskLocked(taskID)
	if err != nil {
		return err
	}
	if err := s.setHealthLocked(a, a.tasks[i], alive); err != nil {
		return err
	}
	return s.kickLocked(str(a.def, "id"))
}

func (s *Server) setHealthLocked(a *app, t map[string]any, alive bool) error {
	prev := map[string]any{}
	if rs, ok := t["healthCheckResults"].([]any); ok && len(rs) > 0 {
		if m, ok := rs[0].(map[string]any); ok {
			prev = m
		}
	}
	ts := now()
	r := map[string]any{
		"alive":               alive,
		"consecutiveFailures": 0,
		"taskId":              str(t, "id"),
		"firstSuccess":        prev["firstSuccess"],
		"lastSuccess":         prev["lastSuccess"],
		"lastFailure":         prev["lastFailure"],
	}
	if alive {
		if r["firstSuccess"] == nil {
			r["firstSuccess"] = ts
		}
		r["lastSuccess"] = ts
	} else {
		failures, _ := toInt(prev["consecutiveFailures"])
		r["consecutiveFailures"] = failures + 1
		r["lastFailure"] = ts
	}
	t["healthCheckResults"] = []any{r}
	return s.emitHealthLocked(a, t, alive)
}

// ClearHealth removes every health result of the app's tasks, as seen from
// a freshly elected Marathon leader. No event is emitted.
func (s *Server) ClearHealth(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[normID(appID)]; ok {
		for _, t := range a.tasks {
			delete(t, "healthCheckResults")
		}
	}
}
