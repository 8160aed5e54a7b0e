package discovery

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// MarathonEventTypes are the event types lodestar asks Marathon's /v2/events for (server-side
// `event_type` filter). Everything else Marathon can send is irrelevant to routing or naming.
var MarathonEventTypes = []string{
	"status_update_event",
	"health_status_changed_event",
	"api_post_event",
	"app_terminated_event",
	"deployment_info",
	"deployment_success",
	"deployment_failed",
	"deployment_step_success",
	"deployment_step_failure",
}

// Event is what one Marathon event means for the registry. At most one of its fields is set:
// a delta to apply as is, apps to refetch one by one, or a full resync when the event does not
// say which apps it concerns.
type Event struct {
	Type string
	// Update is a task delta (TaskStatus or TaskHealth) to send to the registry.
	Update Update
	// Refetch lists app ids whose definitions must be fetched again.
	Refetch []string
	// Resync asks for a full sync of every app.
	Resync bool
	// Ignored is set for event types that carry nothing for lodestar.
	Ignored bool
}

// DecodeMarathonEvent decodes one SSE event from Marathon's /v2/events. An error names the
// app, task, instance or deployment the event was about, whenever the payload says.
func DecodeMarathonEvent(eventType string, data []byte) (Event, error) {
	ev, err := decodeMarathonEvent(eventType, data)
	if err != nil {
		if about := eventSubject(data); about != "" {
			err = fmt.Errorf("%w (%s)", err, about)
		}
	}
	return ev, err
}

// eventSubject reads what an event that failed to decode was about, as far as its payload
// says: "app /a, task a.1".
func eventSubject(data []byte) string {
	var w struct {
		AppID         string `json:"appId"`
		TaskID        string `json:"taskId"`
		InstanceID    string `json:"instanceId"`
		AppDefinition struct {
			ID string `json:"id"`
		} `json:"appDefinition"`
		Plan struct {
			ID string `json:"id"`
		} `json:"plan"`
	}
	// Fields of the wrong type leave the others decoded; only broken JSON yields nothing.
	_ = json.Unmarshal(data, &w)
	var parts []string
	for _, p := range []struct{ name, v string }{
		{"app", w.AppID}, {"app", w.AppDefinition.ID}, {"task", w.TaskID}, {"instance", w.InstanceID},
		{"deployment", w.Plan.ID},
	} {
		if p.v != "" {
			parts = append(parts, p.name+" "+p.v)
		}
	}
	return strings.Join(parts, ", ")
}

func decodeMarathonEvent(eventType string, data []byte) (Event, error) {
	ev := Event{Type: eventType}
	switch eventType {
	case "status_update_event":
		var w struct {
			AppID       string `json:"appId"`
			TaskID      string `json:"taskId"`
			TaskStatus  string `json:"taskStatus"`
			Host        string `json:"host"`
			SlaveID     string `json:"slaveId"`
			Ports       []int  `json:"ports"`
			Version     string `json:"version"`
			Timestamp   string `json:"timestamp"`
			IPAddresses []struct {
				IPAddress string `json:"ipAddress"`
			} `json:"ipAddresses"`
		}
		if err := json.Unmarshal(data, &w); err != nil {
			return ev, fmt.Errorf("%s: %w", eventType, err)
		}
		if w.AppID == "" || w.TaskID == "" || w.TaskStatus == "" {
			return ev, fmt.Errorf("%s: appId, taskId and taskStatus are required", eventType)
		}
		u := TaskStatus{
			AppID: normalizeAppID(w.AppID), TaskID: w.TaskID, State: w.TaskStatus, Host: w.Host,
			SlaveID: w.SlaveID, Ports: w.Ports, Version: w.Version, Timestamp: w.Timestamp,
		}
		for _, ip := range w.IPAddresses {
			u.IPAddresses = append(u.IPAddresses, ip.IPAddress)
		}
		ev.Update = u
	case "health_status_changed_event":
		var w struct {
			AppID      string `json:"appId"`
			TaskID     string `json:"taskId"`
			InstanceID string `json:"instanceId"`
			Alive      *bool  `json:"alive"`
		}
		if err := json.Unmarshal(data, &w); err != nil {
			return ev, fmt.Errorf("%s: %w", eventType, err)
		}
		id, instance := w.TaskID, ""
		if id == "" {
			id, instance = TaskIDFromInstanceID(w.InstanceID), w.InstanceID
		}
		if w.AppID == "" || id == "" || w.Alive == nil {
			return ev, fmt.Errorf("%s: appId, taskId or instanceId, and alive are required", eventType)
		}
		ev.Update = TaskHealth{AppID: normalizeAppID(w.AppID), TaskID: id, InstanceID: instance, Alive: *w.Alive}
	case "api_post_event":
		var w struct {
			AppDefinition struct {
				ID string `json:"id"`
			} `json:"appDefinition"`
		}
		if err := json.Unmarshal(data, &w); err != nil {
			return ev, fmt.Errorf("%s: %w", eventType, err)
		}
		if w.AppDefinition.ID == "" {
			// A group or pod change: it names no app, so look at everything.
			ev.Resync = true
			return ev, nil
		}
		ev.Refetch = []string{normalizeAppID(w.AppDefinition.ID)}
	case "app_terminated_event":
		var w struct {
			AppID string `json:"appId"`
		}
		if err := json.Unmarshal(data, &w); err != nil {
			return ev, fmt.Errorf("%s: %w", eventType, err)
		}
		if w.AppID == "" {
			return ev, fmt.Errorf("%s: appId is required", eventType)
		}
		ev.Refetch = []string{normalizeAppID(w.AppID)}
	case "deployment_info", "deployment_success", "deployment_failed",
		"deployment_step_success", "deployment_step_failure":
		apps, actions, err := deploymentApps(data)
		if err != nil {
			return ev, fmt.Errorf("%s: %w", eventType, err)
		}
		switch {
		case len(apps) > 0:
			ev.Refetch = apps
		case actions > 0:
			// Every action concerns a pod: nothing in /v2/apps changes.
			ev.Ignored = true
		default:
			ev.Resync = true
		}
	default:
		ev.Ignored = true
	}
	return ev, nil
}

// deploymentApps returns the ids of the apps a deployment event's plan touches: the actions of
// its steps and current step (the plan's original and target groups list the whole group tree,
// not what changed, so they are not used), and how many actions there are, pods' included.
func deploymentApps(data []byte) (apps []string, actions int, err error) {
	type action struct {
		App string `json:"app"`
	}
	type step struct {
		Actions []action `json:"actions"`
	}
	var w struct {
		Plan struct {
			Steps []step `json:"steps"`
		} `json:"plan"`
		CurrentStep *step `json:"currentStep"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, 0, err
	}
	set := map[string]bool{}
	steps := w.Plan.Steps
	if w.CurrentStep != nil {
		steps = append(steps, *w.CurrentStep)
	}
	for _, s := range steps {
		actions += len(s.Actions)
		for _, a := range s.Actions {
			if a.App != "" {
				set[normalizeAppID(a.App)] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, actions, nil
}

// TaskIDFromInstanceID maps a Marathon 1.4+ instance id ("app.marathon-UUID") to the task id
// of its task ("app.UUID"). Ids that are not instance ids come back unchanged.
func TaskIDFromInstanceID(instanceID string) string {
	if i := strings.LastIndex(instanceID, ".marathon-"); i >= 0 {
		return instanceID[:i] + "." + instanceID[i+len(".marathon-"):]
	}
	return instanceID
}
