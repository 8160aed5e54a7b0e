package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// runSmokeTest runs the smoke test through Marathon when Marathon URLs are given, else through
// the leading Mesos master's scheduler API, and adds its findings.
func (d *Doctor) runSmokeTest(ctx context.Context, marathon marathonResult, mesos mesosResult, out *findings) {
	var list []Finding
	switch {
	case len(d.cfg.Marathon) > 0 && (marathon.leader == "" || marathon.base == ""):
		list = []Finding{{Check: CheckSmoke, Target: strings.Join(d.cfg.Marathon, ","), Severity: SeverityError,
			Message: "not run: no Marathon leader answers", Fix: "fix the marathon findings first"}}
	case len(d.cfg.Marathon) > 0:
		list = d.runSmoke(ctx, marathon.base)
	case mesos.leader == "":
		target := strings.Join(mesos.masters, ",")
		if target == "" {
			target = "mesos masters"
		}
		list = []Finding{{Check: CheckSmoke, Target: target, Severity: SeverityError,
			Message: "not run: no Mesos leader that every master names", Fix: "fix the mesos master and leader findings first"}}
	default:
		list = d.runMesosSmoke(ctx, leaderBase(mesos.leader, mesos.masters))
	}
	for _, f := range list {
		out.add(f)
	}
}

// leaderBase is the leader's base URL, with the scheme the masters were given with.
func leaderBase(leader string, masters []string) string {
	scheme := "http://"
	for _, m := range masters {
		b := baseURL(m)
		if strings.TrimPrefix(strings.TrimPrefix(b, "http://"), "https://") == leader {
			return b
		}
		if strings.HasPrefix(b, "https://") {
			scheme = "https://"
		}
	}
	return scheme + leader
}

// runTask waits for an offer that fits, launches the task on it and waits until it runs.
func (s *mesosSmoke) runTask(ctx context.Context) *smokeFailure {
	var seen, biggest [2]float64
	offers := 0
	var lastState string
	for {
		ev, err := s.events.next(ctx)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			if s.agentID == "" {
				return s.noOffer(offers, biggest)
			}
			return &smokeFailure{msg: fmt.Sprintf("task %s launched on %s but not running within %s (last state %s)", s.taskID, s.host, s.d.cfg.SmokeTimeout, orNoUpdate(lastState)),
				fix: "the agent is slow to start the task: a first run may fetch or unpack something; check the agent's log for the task id"}
		}
		if err != nil {
			return s.streamFailure("while waiting for the task", err)
		}
		switch ev.Type {
		case "OFFERS":
			if ev.Offers == nil {
				continue
			}
			offers += len(ev.Offers.Offers)
			if fail := s.takeOffer(ctx, ev.Offers.Offers, &seen); fail != nil {
				return fail
			}
			if seen[0] > biggest[0] || seen[0] == biggest[0] && seen[1] > biggest[1] {
				biggest = seen
			}
		case "UPDATE":
			if ev.Update == nil {
				continue
			}
			st := ev.Update.Status
			if fail := s.acknowledge(ctx, st); fail != nil {
				return fail
			}
			if st.TaskID.Value != s.taskID {
				continue
			}
			lastState = firstLine(st.State)
			if st.State == "TASK_RUNNING" {
				return nil
			}
			if smokeFailedStates[st.State] || st.State == "TASK_FINISHED" {
				return s.taskFailed(st)
			}
		case "ERROR":
			msg := ""
			if ev.Error != nil {
				msg = firstLine(ev.Error.Message)
			}
			return &smokeFailure{msg: "the master sent an ERROR and dropped the framework: " + msg, fix: "the master's message says why"}
		}
	}
}

func orNoUpdate(state string) string {
	if state == "" {
		return "none: no update"
	}
	return state
}

// takeOffer accepts the first offer that fits (unless the task is launched already) and
// declines the others. seen gets the largest cpus and mem among these offers.
func (s *mesosSmoke) takeOffer(ctx context.Context, offers []smokeOffer, seen *[2]float64) *smokeFailure {
	var decline []any
	var fail *smokeFailure
	for _, o := range offers {
		if s.agentID != "" || fail != nil {
			decline = append(decline, map[string]any{"value": o.ID.Value})
			continue
		}
		taken, total, err := fit(o, smokeCPUs, smokeMem)
		if err != nil {
			fail = &smokeFailure{msg: "the master sent an offer no Mesos master makes: " + err.Error(),
				fix: "check that the masters and agents run a released Mesos; the agent's --resources may be malformed"}
			decline = append(decline, map[string]any{"value": o.ID.Value})
			continue
		}
		if total[0] > seen[0] || total[0] == seen[0] && total[1] > seen[1] {
			*seen = total
		}
		if taken == nil {
			decline = append(decline, map[string]any{"value": o.ID.Value})
			continue
		}
		if err := s.launch(ctx, o, taken); err != nil {
			fail = &smokeFailure{msg: "the master refused the ACCEPT of offer " + o.ID.Value + ": " + err.Error(),
				fix: "the master's answer says what it wants; check that " + s.endpoint + " is a Mesos master of version 1.0 or later"}
		}
	}
	if len(decline) > 0 {
		err := s.schedulerCall(ctx, map[string]any{"type": "DECLINE", "decline": map[string]any{
			"offer_ids": decline, "filters": map[string]any{"refuse_seconds": smokeDeclineSeconds}}})
		if err != nil && fail == nil {
			fail = &smokeFailure{msg: "the master refused a DECLINE: " + err.Error(), fix: "the master's answer says what it wants"}
		}
	}
	return fail
}

// launch accepts offer o with a LAUNCH of the smoke task on the resources taken from it.
func (s *mesosSmoke) launch(ctx context.Context, o smokeOffer, resources []any) error {
	task := map[string]any{
		"name":      smokeFrameworkName,
		"task_id":   map[string]any{"value": s.taskID},
		"agent_id":  map[string]any{"value": o.AgentID.Value},
		"command":   map[string]any{"shell": true, "value": smokeCommand},
		"resources": resources,
		"labels":    map[string]any{"labels": []any{map[string]any{"key": "created-by", "value": "lodestar cluster doctor --smoke"}}},
	}
	err := s.schedulerCall(ctx, map[string]any{"type": "ACCEPT", "accept": map[string]any{
		"offer_ids":  []any{map[string]any{"value": o.ID.Value}},
		"operations": []any{map[string]any{"type": "LAUNCH", "launch": map[string]any{"task_infos": []any{task}}}},
	}})
	if err != nil {
		return err
	}
	s.agentID, s.host, s.launched = o.AgentID.Value, firstLine(o.Hostname), time.Now()
	if s.host == "" {
		s.host = "agent " + o.AgentID.Value
	}
	return nil
}

// acknowledge acknowledges an update that carries a uuid (the master retries those until
// they are); one without is not to be acknowledged.
func (s *mesosSmoke) acknowledge(ctx context.Context, st smokeTaskStatus) *smokeFailure {
	if st.UUID == "" {
		return nil
	}
	if !mesosIDRE.MatchString(st.TaskID.Value) || !mesosIDRE.MatchString(st.AgentID.Value) {
		return &smokeFailure{msg: fmt.Sprintf("an update with a uuid but no valid task_id and agent_id (%q, %q)", firstLine(st.TaskID.Value), firstLine(st.AgentID.Value)),
			fix: "check that " + s.endpoint + " is a Mesos master of version 1.0 or later"}
	}
	err := s.schedulerCall(ctx, map[string]any{"type": "ACKNOWLEDGE", "acknowledge": map[string]any{
		"agent_id": map[string]any{"value": st.AgentID.Value}, "task_id": map[string]any{"value": st.TaskID.Value}, "uuid": st.UUID}})
	if err != nil {
		return &smokeFailure{msg: "the master refused an ACKNOWLEDGE: " + err.Error(), fix: "the master's answer says what it wants"}
	}
	return nil
}

// taskFailed says why the task ended before it ran, with the fix its reason points at.
func (s *mesosSmoke) taskFailed(st smokeTaskStatus) *smokeFailure {
	msg := fmt.Sprintf("task %s went %s on %s before it ran", s.taskID, firstLine(st.State), s.host)
	var why []string
	for _, w := range []string{st.Reason, st.Source} {
		if w != "" {
			why = append(why, firstLine(w))
		}
	}
	if len(why) > 0 {
		msg += " (" + strings.Join(why, ", ") + ")"
	}
	if st.Message != "" {
		msg += ": " + firstLine(st.Message)
	}
	fw := s.d.cfg.SmokeFramework
	fix := fmt.Sprintf("read the task's stderr in its sandbox on %s (Mesos UI); a `%s` that fails points at the agent's containerizer or isolation flags, or at user %q missing there (--smoke-user)", s.host, smokeCommand, fw.User)
	switch st.Reason {
	case "REASON_TASK_UNAUTHORIZED":
		fix = fmt.Sprintf("the masters' ACLs (--acls) must let principal %q run_tasks as user %q; or give --smoke-user or --smoke-principal they allow", fw.Principal, fw.User)
	case "REASON_TASK_INVALID", "REASON_INVALID_OFFERS":
		fix = "the master refused the task as sent; its message says which field (a release of Mesos older than 1.0 or a module that checks tasks may refuse it)"
	case "REASON_EXECUTOR_REGISTRATION_TIMEOUT":
		fix = "the command executor did not start in time: raise the agent's --executor_registration_timeout and read its log"
	case "REASON_CONTAINER_LAUNCH_FAILED":
		fix = "the agent could not start a container: check its --containerizers, --isolation and --launcher flags (posix where cgroups are missing) and its log"
	}
	return &smokeFailure{msg: msg, fix: fix}
}

// kill kills the running task and waits, within the probe timeout, for it to end; it returns
// what to add to the finding's message.
func (s *mesosSmoke) kill() string {
	ctx, cancel := context.WithTimeout(context.Background(), s.d.cfg.Timeout)
	defer cancel()
	err := s.schedulerCall(ctx, map[string]any{"type": "KILL", "kill": map[string]any{
		"task_id": map[string]any{"value": s.taskID}, "agent_id": map[string]any{"value": s.agentID}}})
	if err != nil {
		return "; the KILL failed (" + err.Error() + "), the teardown kills it"
	}
	for {
		ev, err := s.events.next(ctx)
		if err != nil {
			return fmt.Sprintf("; no end of the task within %s of the KILL, the teardown kills it", s.d.cfg.Timeout)
		}
		if ev.Type != "UPDATE" || ev.Update == nil {
			continue
		}
		st := ev.Update.Status
		if fail := s.acknowledge(ctx, st); fail != nil {
			return "; " + fail.msg
		}
		if st.TaskID.Value == s.taskID && (smokeFailedStates[st.State] || st.State == "TASK_FINISHED") {
			return "; killed (" + firstLine(st.State) + ")"
		}
	}
}

// teardown removes the framework, with a context of its own: the smoke test's may be over.
func (s *mesosSmoke) teardown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.d.cfg.Timeout)
	defer cancel()
	return s.schedulerCall(ctx, map[string]any{"type": "TEARDOWN"})
}

// noOffer says why no task was launched within the smoke timeout.
func (s *mesosSmoke) noOffer(offers int, biggest [2]float64) *smokeFailure {
	fw := s.d.cfg.SmokeFramework
	msg := fmt.Sprintf("no offer within %s", s.d.cfg.SmokeTimeout)
	if offers > 0 {
		msg = fmt.Sprintf("no offer with cpus %g and mem %d within %s: %s, the largest cpus %g and mem %g",
			smokeCPUs, smokeMem, s.d.cfg.SmokeTimeout, plural(offers, "offer"), biggest[0], biggest[1])
	}
	return &smokeFailure{msg: msg,
		fix: fmt.Sprintf("the master offers the framework nothing with room for cpus %g and mem %d for role %q: check that agents are registered and active (agent findings) with unreserved resources free, or give --smoke-role of a role they reserve for", smokeCPUs, smokeMem, fw.Role)}
}
