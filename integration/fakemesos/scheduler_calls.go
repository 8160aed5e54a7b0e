package fakemesos

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// call answers a call other than SUBSCRIBE, with Mesos's checks of the framework and the
// stream id first: 202 when accepted.
func (s *scheduler) call(r *http.Request, call schedCall, authed string) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fw := s.frameworks[call.FrameworkID.Value]
	switch {
	case fw == nil:
		return http.StatusBadRequest, "Framework cannot be found"
	case authed != "" && authed != fw.principal:
		return http.StatusBadRequest, fmt.Sprintf("Authenticated principal '%s' does not match principal '%s' set in `FrameworkInfo`", authed, fw.principal)
	case !fw.connected:
		return http.StatusForbidden, "Framework is not subscribed"
	case r.Header.Get("Mesos-Stream-Id") == "":
		return http.StatusBadRequest, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
	case r.Header.Get("Mesos-Stream-Id") != fw.streamID:
		return http.StatusBadRequest, fmt.Sprintf("The stream ID '%s' included in this request didn't match the stream ID currently associated with framework ID %s",
			r.Header.Get("Mesos-Stream-Id"), fw.id)
	}
	switch call.Type {
	case "TEARDOWN":
		s.removeLocked(fw)
	case "ACCEPT":
		if call.Accept == nil {
			return http.StatusBadRequest, "Failed to validate scheduler::Call: Expecting 'accept' to be present"
		}
		tasks, err := launches(call)
		if err != nil {
			return http.StatusBadRequest, "Failed to convert JSON into Call protobuf: " + err.Error()
		}
		s.acceptLocked(fw, call, tasks)
	case "DECLINE":
		if call.Decline == nil {
			return http.StatusBadRequest, "Failed to validate scheduler::Call: Expecting 'decline' to be present"
		}
		for _, id := range call.Decline.OfferIDs {
			delete(fw.offers, id.Value)
		}
	case "KILL":
		if call.Kill == nil {
			return http.StatusBadRequest, "Failed to validate scheduler::Call: Expecting 'kill' to be present"
		}
		s.killLocked(fw, call.Kill.TaskID.Value)
	case "ACKNOWLEDGE":
		return s.acknowledgeLocked(fw, call)
	}
	return http.StatusAccepted, ""
}

// fakeAgent is an agent of the master's state, as offers are made of it.
type fakeAgent struct {
	id, hostname string
	scalars      map[string]float64
	ports        string
}

// agentsOf reads the active agents of a state document ("slaves") and their resources.
func agentsOf(state map[string]any) []fakeAgent {
	slaves, _ := state["slaves"].([]any)
	var out []fakeAgent
	for _, raw := range slaves {
		a, _ := raw.(map[string]any)
		if a == nil || a["active"] == false {
			continue
		}
		id, _ := a["id"].(string)
		host, _ := a["hostname"].(string)
		res, _ := a["resources"].(map[string]any)
		agent := fakeAgent{id: id, hostname: host, scalars: map[string]float64{}}
		for _, name := range []string{"cpus", "mem", "disk"} {
			if v, err := strconv.ParseFloat(fmt.Sprint(res[name]), 64); err == nil && v > 0 && !math.IsInf(v, 0) {
				agent.scalars[name] = v
			}
		}
		agent.ports, _ = res["ports"].(string)
		if id != "" {
			out = append(out, agent)
		}
	}
	return out
}

// offerLocked sends fw one OFFERS event: an offer per agent, of what its tasks leave free.
func (s *scheduler) offerLocked(fw *framework, agents []fakeAgent) {
	var offers []any
	for _, a := range agents {
		free := map[string]float64{}
		for name, v := range a.scalars {
			free[name] = v
		}
		for _, other := range s.frameworks {
			for _, t := range other.tasks {
				if t.agentID == a.id && !terminal(t.state) {
					for name, v := range t.resources {
						free[name] -= v
					}
				}
			}
		}
		id := fmt.Sprintf("%s-O%d", fw.id, len(fw.offers)+1)
		var resources []any
		for _, name := range []string{"cpus", "mem", "disk"} {
			if free[name] > 0 {
				resources = append(resources, fw.resource(name, map[string]any{"type": "SCALAR", "scalar": map[string]any{"value": free[name]}}))
			}
		}
		if ranges := portRanges(a.ports); len(ranges) > 0 {
			resources = append(resources, fw.resource("ports", map[string]any{"type": "RANGES", "ranges": map[string]any{"range": ranges}}))
		}
		offer := map[string]any{
			"id": map[string]any{"value": id}, "framework_id": map[string]any{"value": fw.id},
			"agent_id": map[string]any{"value": a.id}, "hostname": a.hostname,
			"resources": resources, "attributes": []any{}, "executor_ids": []any{},
		}
		if fw.multiRole {
			offer["allocation_info"] = map[string]any{"role": fw.role}
		}
		fw.offers[id] = fakeOffer{agentID: a.id, hostname: a.hostname, scalars: free}
		offers = append(offers, offer)
	}
	if len(offers) > 0 {
		fw.pushLocked(map[string]any{"type": "OFFERS", "offers": map[string]any{"offers": offers}})
	}
}

// resource is an unreserved resource as offered to fw: a MULTI_ROLE framework's carry the
// role they are allocated to.
func (fw *framework) resource(name string, value map[string]any) map[string]any {
	value["name"] = name
	value["role"] = "*"
	if fw.multiRole {
		value["allocation_info"] = map[string]any{"role": fw.role}
	}
	return value
}

// portRanges reads "[31000-32000, 33000-33010]" into Value.Ranges' "range" list.
func portRanges(s string) []any {
	var out []any
	for _, part := range strings.Split(strings.Trim(s, "[] "), ",") {
		lo, hi, ok := strings.Cut(strings.TrimSpace(part), "-")
		b, err1 := strconv.ParseUint(lo, 10, 16)
		e, err2 := strconv.ParseUint(hi, 10, 16)
		if ok && err1 == nil && err2 == nil && b <= e {
			out = append(out, map[string]any{"begin": b, "end": e})
		}
	}
	return out
}

// taskInfo is the part of a TaskInfo the fake checks.
type taskInfo struct {
	Name    *string  `json:"name"`
	TaskID  *idValue `json:"task_id"`
	AgentID *idValue `json:"agent_id"`
	Command *struct {
		Shell *bool   `json:"shell"`
		Value *string `json:"value"`
	} `json:"command"`
	Executor  json.RawMessage `json:"executor"`
	Resources []struct {
		Name           string                   `json:"name"`
		Type           string                   `json:"type"`
		Scalar         *struct{ Value float64 } `json:"scalar"`
		AllocationInfo *struct {
			Role string `json:"role"`
		} `json:"allocation_info"`
	} `json:"resources"`
}

// launches decodes the tasks of an ACCEPT's LAUNCH operations; one that is not a TaskInfo with
// a task_id makes the whole call malformed, as protobuf parsing does in Mesos.
func launches(call schedCall) ([]taskInfo, error) {
	var out []taskInfo
	for _, op := range call.Accept.Operations {
		if op.Type != "LAUNCH" || op.Launch == nil {
			continue
		}
		for i, raw := range op.Launch.TaskInfos {
			var ti taskInfo
			if err := json.Unmarshal(raw, &ti); err != nil {
				return nil, fmt.Errorf("accept.operations.launch.task_infos[%d]: %w", i, err)
			}
			if ti.TaskID == nil || ti.TaskID.Value == "" {
				return nil, fmt.Errorf("accept.operations.launch.task_infos[%d]: missing required field task_id", i)
			}
			out = append(out, ti)
		}
	}
	return out, nil
}

// acceptLocked carries out an ACCEPT: its offers are used up whatever happens; each task of
// its LAUNCH operations is checked against them and launched, or gets the update Mesos sends
// instead.
func (s *scheduler) acceptLocked(fw *framework, call schedCall, tasks []taskInfo) {
	var offer *fakeOffer
	invalid := ""
	for _, id := range call.Accept.OfferIDs {
		o, ok := fw.offers[id.Value]
		delete(fw.offers, id.Value)
		switch {
		case !ok:
			invalid = "Offer " + id.Value + " is no longer valid"
		case offer != nil && offer.agentID != o.agentID:
			invalid = "Aggregated offers must belong to one single agent"
		case offer == nil:
			offer = &o
		default:
			for k, v := range o.scalars {
				offer.scalars[k] += v
			}
		}
	}
	if offer == nil && invalid == "" {
		invalid = "No offers given"
	}
	for _, ti := range tasks {
		if invalid != "" {
			s.masterUpdateLocked(fw, ti.TaskID.Value, agentOf(ti), "TASK_LOST", "REASON_INVALID_OFFERS", "Task launched with invalid offers: "+invalid)
			continue
		}
		if msg := validateTask(fw, ti, offer); msg != "" {
			s.masterUpdateLocked(fw, ti.TaskID.Value, agentOf(ti), "TASK_ERROR", "REASON_TASK_INVALID", "Task uses invalid resources or fields: "+msg)
			continue
		}
		s.launchLocked(fw, ti, offer)
	}
}

func agentOf(ti taskInfo) string {
	if ti.AgentID == nil {
		return ""
	}
	return ti.AgentID.Value
}

// validateTask checks a task against its offer as Mesos's task validation does ("" when valid),
// and takes its resources out of the offer.
func validateTask(fw *framework, ti taskInfo, offer *fakeOffer) string {
	switch {
	case ti.Name == nil:
		return "missing required field 'name'"
	case fw.tasks[ti.TaskID.Value] != nil:
		return "Task has duplicate ID: " + ti.TaskID.Value
	case ti.AgentID == nil || ti.AgentID.Value != offer.agentID:
		return fmt.Sprintf("Task uses agent %q but the offer is of agent %q", agentOf(ti), offer.agentID)
	case (ti.Command == nil) == (ti.Executor == nil):
		return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
	case ti.Command != nil && (ti.Command.Value == nil || *ti.Command.Value == ""):
		return "CommandInfo has no command to run"
	}
	want := map[string]float64{}
	for _, r := range ti.Resources {
		if r.Type != "SCALAR" || r.Scalar == nil || r.Scalar.Value <= 0 || math.IsNaN(r.Scalar.Value) || math.IsInf(r.Scalar.Value, 0) {
			return fmt.Sprintf("resource %q is not a positive SCALAR", r.Name)
		}
		if fw.multiRole && (r.AllocationInfo == nil || r.AllocationInfo.Role != fw.role) {
			return fmt.Sprintf("resource %q lacks allocation_info of role %q", r.Name, fw.role)
		}
		want[r.Name] += r.Scalar.Value
	}
	for name, v := range want {
		if v > offer.scalars[name] {
			return fmt.Sprintf("Task uses more resources %s %g than available %g", name, v, offer.scalars[name])
		}
	}
	if want["cpus"] <= 0 && want["mem"] <= 0 {
		return "Task uses no resources"
	}
	for name, v := range want {
		offer.scalars[name] -= v
	}
	return ""
}

// launchLocked starts a valid task: the updates its executor sends, per the faults.
func (s *scheduler) launchLocked(fw *framework, ti taskInfo, offer *fakeOffer) {
	t := &fakeTask{id: ti.TaskID.Value, agentID: offer.agentID, state: "TASK_STAGING", resources: map[string]float64{}}
	for _, r := range ti.Resources {
		t.resources[r.Name] += r.Scalar.Value
	}
	fw.tasks[t.id] = t
	t.queue = append(t.queue, executorUpdate(t, "TASK_STARTING", "", ""))
	switch {
	case s.faults.FailTask != "":
		t.queue = append(t.queue, executorUpdate(t, "TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", s.faults.FailTask))
	case !s.faults.StallTask:
		t.queue = append(t.queue, executorUpdate(t, "TASK_RUNNING", "", ""))
	}
	fw.sendNextLocked(t)
}

// executorUpdate is a status update from the command executor: reliable, so it has a uuid.
func executorUpdate(t *fakeTask, state, reason, message string) map[string]any {
	st := map[string]any{
		"task_id": map[string]any{"value": t.id}, "agent_id": map[string]any{"value": t.agentID},
		"executor_id": map[string]any{"value": t.id}, "state": state, "source": "SOURCE_EXECUTOR",
		"timestamp": float64(time.Now().UnixNano()) / 1e9, "uuid": encodeUUID(newUUID()),
	}
	if reason != "" {
		st["reason"] = reason
	}
	if message != "" {
		st["message"] = message
	}
	return st
}

// sendNextLocked sends the head of t's queue unless one is in flight.
func (fw *framework) sendNextLocked(t *fakeTask) {
	if t.inFlight || len(t.queue) == 0 {
		return
	}
	st := t.queue[0]
	t.inFlight = true
	t.state, _ = st["state"].(string)
	fw.pushLocked(map[string]any{"type": "UPDATE", "update": map[string]any{"status": st}})
}

// masterUpdateLocked sends an update the master makes itself: no uuid, nothing to acknowledge.
func (s *scheduler) masterUpdateLocked(fw *framework, taskID, agentID, state, reason, message string) {
	st := map[string]any{
		"task_id": map[string]any{"value": taskID}, "state": state, "source": "SOURCE_MASTER",
		"reason": reason, "message": message, "timestamp": float64(time.Now().UnixNano()) / 1e9,
	}
	if agentID != "" {
		st["agent_id"] = map[string]any{"value": agentID}
	}
	fw.pushLocked(map[string]any{"type": "UPDATE", "update": map[string]any{"status": st}})
}

// killLocked kills a task: the executor reports TASK_KILLED; a task the master does not know
// is TASK_LOST through reconciliation.
func (s *scheduler) killLocked(fw *framework, taskID string) {
	t := fw.tasks[taskID]
	if t == nil {
		s.masterUpdateLocked(fw, taskID, "", "TASK_LOST", "REASON_RECONCILIATION", "Reconciliation: Task is unknown")
		return
	}
	last := t.state
	if len(t.queue) > 0 {
		last, _ = t.queue[len(t.queue)-1]["state"].(string)
	}
	if terminal(last) {
		return
	}
	t.queue = append(t.queue, executorUpdate(t, "TASK_KILLED", "", "Command terminated with signal Terminated"))
	fw.sendNextLocked(t)
}

// acknowledgeLocked takes an ACKNOWLEDGE: the uuid must be 16 bytes of Base64; one matching the
// update in flight lets the next update of the task go.
func (s *scheduler) acknowledgeLocked(fw *framework, call schedCall) (int, string) {
	ack := call.Acknowledge
	if ack == nil {
		return http.StatusBadRequest, "Failed to validate scheduler::Call: Expecting 'acknowledge' to be present"
	}
	raw, err := base64.StdEncoding.DecodeString(ack.UUID)
	if err != nil || len(raw) != 16 {
		return http.StatusBadRequest, "Failed to validate scheduler::Call: Not a valid UUID"
	}
	t := fw.tasks[ack.TaskID.Value]
	if t == nil || !t.inFlight || t.queue[0]["uuid"] != ack.UUID || ack.AgentID.Value != t.agentID {
		return http.StatusAccepted, "" // Mesos drops a stale acknowledgement after accepting the call
	}
	s.acks++
	t.queue = t.queue[1:]
	t.inFlight = false
	fw.sendNextLocked(t)
	return http.StatusAccepted, ""
}

// terminal reports whether a task state is final.
func terminal(state string) bool {
	switch state {
	case "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR":
		return true
	}
	return false
}
