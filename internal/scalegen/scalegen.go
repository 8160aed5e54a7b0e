// Package scalegen generates large Marathon app lists for benchmarks: N apps × T tasks as
// Marathon's /v2/apps JSON (tasks embedded), so that one document can be served by the fake
// Marathon to another load balancer and decoded by lodestar's own decoder — both then see the
// same input.
package scalegen

import (
	"encoding/json"
	"fmt"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Shape says what each generated app carries.
type Shape int

const (
	// VHostHTTP: every app in HAPROXY_GROUP=external with one service port, a HAPROXY_0_VHOST
	// and a Marathon HTTP health check, its tasks running and healthy — the shape the scale
	// goals of issue 13 are stated in.
	VHostHTTP Shape = iota
	// Mixed: a third of the apps with a vhost, a third in tcp mode with a TCP health check,
	// a third plain http with an HTTP health check and sticky sessions, tasks without health
	// results — the render benchmark's mix of what Build and Render do per app.
	Mixed
)

// Spec is what to generate.
type Spec struct {
	Apps  int
	Tasks int // per app
	Shape Shape
	// Loopback puts the tasks on 127.0.0.x (x in 1..254) with distinct host ports, for
	// configurations a real HAProxy will load; otherwise they are on 10.x addresses as in a
	// cluster.
	Loopback bool
}

// FirstServicePort is the first app's service port; app i has FirstServicePort+i.
const FirstServicePort = 10000

// version is every app's and task's version: fixed, so the output is deterministic.
const version = "2026-01-01T00:00:00.000Z"

// AppID is the id of app i: 100 groups of apps, as teams have.
func AppID(i int) string { return fmt.Sprintf("/team%03d/app%05d", i%100, i) }

// TaskID is the id of task j of app i.
func TaskID(i, j int) string { return fmt.Sprintf("app%05d.task%d", i, j) }

// Addr is the host and host port of task j of app i.
func (s Spec) Addr(i, j int) (host string, port int) {
	if s.Loopback {
		// Sequential numbering of all tasks: 254 hosts, then the next port.
		n := i*s.Tasks + j
		return fmt.Sprintf("127.0.0.%d", n%254+1), 20000 + n/254
	}
	return fmt.Sprintf("10.%d.%d.%d", j%250, i/250%250, i%250+1), 31000 + i%1000
}

// MarathonJSON is the {"apps":[…]} document of GET /v2/apps?embed=apps.tasks.
func (s Spec) MarathonJSON() ([]byte, error) {
	if s.Apps < 0 || s.Tasks < 0 {
		return nil, fmt.Errorf("scalegen: %d apps × %d tasks", s.Apps, s.Tasks)
	}
	apps := make([]map[string]any, s.Apps)
	for i := range apps {
		apps[i] = s.app(i)
	}
	data, err := json.Marshal(map[string]any{"apps": apps})
	if err != nil {
		return nil, fmt.Errorf("scalegen: %w", err)
	}
	return data, nil
}

// DiscoveryApps decodes MarathonJSON with lodestar's Marathon decoder, as a Marathon source would.
func (s Spec) DiscoveryApps() ([]*discovery.App, error) {
	data, err := s.MarathonJSON()
	if err != nil {
		return nil, err
	}
	apps, appErrs, err := discovery.DecodeMarathonApps(data)
	if err != nil {
		return nil, fmt.Errorf("scalegen: decode: %w", err)
	}
	if len(appErrs) > 0 {
		return nil, fmt.Errorf("scalegen: decode: %w", appErrs[0])
	}
	return apps, nil
}

func (s Spec) app(i int) map[string]any {
	id := AppID(i)
	labels := map[string]string{"HAPROXY_GROUP": "external"}
	var check map[string]any
	healthy := s.Shape == VHostHTTP
	switch {
	case s.Shape == VHostHTTP || i%3 == 0:
		labels["HAPROXY_0_VHOST"] = fmt.Sprintf("app%05d.example.com", i)
		if s.Shape == VHostHTTP {
			check = healthCheck("HTTP", "/health")
		}
	case i%3 == 1:
		labels["HAPROXY_0_MODE"] = "tcp"
		check = healthCheck("TCP", "")
	default:
		labels["HAPROXY_0_STICKY"] = "true"
		check = healthCheck("HTTP", "/health")
	}
	tasks := make([]map[string]any, s.Tasks)
	for j := range tasks {
		host, port := s.Addr(i, j)
		t := map[string]any{
			"id": TaskID(i, j), "appId": id, "host": host, "ports": []int{port},
			"state": "TASK_RUNNING", "stagedAt": version, "startedAt": version, "version": version,
			"slaveId": "agent-" + host,
		}
		if healthy && check != nil {
			t["healthCheckResults"] = []map[string]any{{"alive": true, "consecutiveFailures": 0, "taskId": TaskID(i, j)}}
		}
		tasks[j] = t
	}
	a := map[string]any{
		"id": id, "instances": s.Tasks, "labels": labels, "version": version,
		"versionInfo":     map[string]any{"lastConfigChangeAt": version, "lastScalingAt": version},
		"portDefinitions": []map[string]any{{"port": FirstServicePort + i, "protocol": "tcp", "name": "http"}},
		"tasks":           tasks,
		"tasksRunning":    s.Tasks,
	}
	if check != nil {
		a["healthChecks"] = []map[string]any{check}
	}
	return a
}

func healthCheck(protocol, path string) map[string]any {
	c := map[string]any{
		"protocol": protocol, "portIndex": 0, "intervalSeconds": 3, "timeoutSeconds": 2,
		"maxConsecutiveFailures": 2, "gracePeriodSeconds": 10,
	}
	if path != "" {
		c["path"] = path
	}
	return c
}
