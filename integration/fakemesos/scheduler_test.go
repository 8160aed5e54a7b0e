package fakemesos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// schedClient is a bare scheduler API client: the fake's tests read the wire themselves.
type schedClient struct {
	t        *testing.T
	url      string
	body     io.ReadCloser
	rd       *bufio.Reader
	streamID string
	fwID     string
}

// post sends a call and returns the answer's status, header and body (the stream for a 200
// SUBSCRIBE is left open in the client).
func post(t *testing.T, url, streamID string, call any) (*http.Response, string) {
	t.Helper()
	body, err := json.Marshal(call)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if streamID != "" {
		req.Header.Set("Mesos-Stream-Id", streamID)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, ""
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp, string(answer)
}

func subscribeCall(info map[string]any) map[string]any {
	if info == nil {
		info = map[string]any{"user": "nobody", "name": "test", "roles": []string{"*"},
			"capabilities": []any{map[string]any{"type": "MULTI_ROLE"}}, "failover_timeout": 3600}
	}
	return map[string]any{"type": "SUBSCRIBE", "subscribe": map[string]any{"framework_info": info}}
}

// subscribe subscribes to m and reads SUBSCRIBED.
func subscribe(t *testing.T, m *Master, info map[string]any) *schedClient {
	t.Helper()
	resp, answer := post(t, m.URL()+PathScheduler, "", subscribeCall(info))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SUBSCRIBE: %d %s", resp.StatusCode, answer)
	}
	c := &schedClient{t: t, url: m.URL() + PathScheduler, body: resp.Body, rd: bufio.NewReader(resp.Body),
		streamID: resp.Header.Get("Mesos-Stream-Id")}
	t.Cleanup(func() { resp.Body.Close() })
	if c.streamID == "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("SUBSCRIBE answer header %v: want a Mesos-Stream-Id and JSON", resp.Header)
	}
	ev := c.event()
	if ev["type"] != "SUBSCRIBED" {
		t.Fatalf("first event %v, want SUBSCRIBED", ev)
	}
	c.fwID = ev["subscribed"].(map[string]any)["framework_id"].(map[string]any)["value"].(string)
	return c
}

// event reads one RecordIO record and decodes it.
func (c *schedClient) event() map[string]any {
	c.t.Helper()
	ev, err := c.tryEvent()
	if err != nil {
		c.t.Fatal(err)
	}
	return ev
}

func (c *schedClient) tryEvent() (map[string]any, error) {
	line, err := c.rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("record length %q", line)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.rd, buf); err != nil {
		return nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(buf, &ev); err != nil {
		return nil, fmt.Errorf("record %q: %w", buf, err)
	}
	return ev, nil
}

// eventOf reads events until one of type typ, skipping heartbeats.
func (c *schedClient) eventOf(typ string) map[string]any {
	c.t.Helper()
	for {
		ev := c.event()
		if ev["type"] == typ {
			return ev
		}
		if ev["type"] != "HEARTBEAT" {
			c.t.Fatalf("event %v, want %s", ev, typ)
		}
	}
}

// call posts a call of this framework with its stream id and returns status and answer.
func (c *schedClient) call(call map[string]any) (int, string) {
	c.t.Helper()
	call["framework_id"] = map[string]any{"value": c.fwID}
	resp, answer := post(c.t, c.url, c.streamID, call)
	return resp.StatusCode, answer
}

func (c *schedClient) mustCall(call map[string]any) {
	c.t.Helper()
	if code, answer := c.call(call); code != http.StatusAccepted {
		c.t.Fatalf("%s: %d %s, want 202", call["type"], code, answer)
	}
}

// status is an UPDATE event's status.
func status(ev map[string]any) map[string]any {
	return ev["update"].(map[string]any)["status"].(map[string]any)
}

// launchCall accepts offer with a LAUNCH of one task of cpus and mem taken from it.
func launchCall(offer map[string]any, taskID string, cpus, mem float64) map[string]any {
	res := func(name string, v float64) map[string]any {
		return map[string]any{"name": name, "type": "SCALAR", "scalar": map[string]any{"value": v}, "role": "*",
			"allocation_info": map[string]any{"role": "*"}}
	}
	task := map[string]any{"name": "t", "task_id": map[string]any{"value": taskID}, "agent_id": offer["agent_id"],
		"command": map[string]any{"shell": true, "value": "sleep 600"}, "resources": []any{res("cpus", cpus), res("mem", mem)}}
	return map[string]any{"type": "ACCEPT", "accept": map[string]any{"offer_ids": []any{offer["id"]},
		"operations": []any{map[string]any{"type": "LAUNCH", "launch": map[string]any{"task_infos": []any{task}}}}}}
}

func ackCall(st map[string]any) map[string]any {
	return map[string]any{"type": "ACKNOWLEDGE", "acknowledge": map[string]any{
		"agent_id": st["agent_id"], "task_id": st["task_id"], "uuid": st["uuid"]}}
}

// TestSchedulerLifecycle: subscribe, offers of the state's agents, launch, updates released one
// acknowledgement at a time, kill, teardown ending the stream.
func TestSchedulerLifecycle(t *testing.T) {
	m := startMaster(t)
	c := subscribe(t, m, nil)
	offers := c.eventOf("OFFERS")["offers"].(map[string]any)["offers"].([]any)
	if len(offers) != 4 {
		t.Fatalf("%d offers, want one per agent of the seed state (4)", len(offers))
	}
	offer := offers[0].(map[string]any)
	res := offer["resources"].([]any)[0].(map[string]any)
	if res["name"] != "cpus" || res["scalar"].(map[string]any)["value"] != 8.0 || res["allocation_info"].(map[string]any)["role"] != "*" {
		t.Errorf("first resource %v, want the agent's 8 cpus allocated to role *", res)
	}
	c.mustCall(launchCall(offer, "task-1", 0.1, 32))
	starting := status(c.eventOf("UPDATE"))
	if starting["state"] != "TASK_STARTING" || starting["uuid"] == nil || starting["source"] != "SOURCE_EXECUTOR" {
		t.Fatalf("first update %v, want TASK_STARTING with a uuid from the executor", starting)
	}
	if got := m.SchedulerTasks()["task-1"]; got != "TASK_STARTING" {
		t.Errorf("task state %q before the ack, want TASK_STARTING (no update before the previous is acknowledged)", got)
	}
	c.mustCall(ackCall(starting))
	running := status(c.eventOf("UPDATE"))
	if running["state"] != "TASK_RUNNING" || running["uuid"] == starting["uuid"] {
		t.Fatalf("second update %v, want TASK_RUNNING with a uuid of its own", running)
	}
	c.mustCall(ackCall(running))
	c.mustCall(map[string]any{"type": "KILL", "kill": map[string]any{"task_id": map[string]any{"value": "task-1"}}})
	killed := status(c.eventOf("UPDATE"))
	if killed["state"] != "TASK_KILLED" {
		t.Fatalf("update after KILL %v, want TASK_KILLED", killed)
	}
	c.mustCall(ackCall(killed))
	if m.SchedulerAcks() != 3 {
		t.Errorf("%d acks counted, want 3", m.SchedulerAcks())
	}
	c.mustCall(map[string]any{"type": "TEARDOWN"})
	for {
		ev, err := c.tryEvent()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("after TEARDOWN the stream ends with %v, want EOF", err)
			}
			break
		}
		if ev["type"] != "HEARTBEAT" {
			t.Errorf("event after TEARDOWN: %v", ev)
		}
	}
	if fws := m.SchedulerFrameworks(); len(fws) != 0 {
		t.Errorf("frameworks after TEARDOWN: %v", fws)
	}
	if code, _ := c.call(map[string]any{"type": "DECLINE", "decline": map[string]any{"offer_ids": []any{}}}); code != http.StatusBadRequest {
		t.Errorf("a call of a torn-down framework: %d, want 400 (framework cannot be found)", code)
	}
}

// TestSchedulerStreamID: calls without the stream id, with another, or of an unknown framework
// are 400; SUBSCRIBE with a stream id is 400.
func TestSchedulerStreamID(t *testing.T) {
	m := startMaster(t)
	c := subscribe(t, m, nil)
	decline := func() map[string]any {
		return map[string]any{"type": "DECLINE", "framework_id": map[string]any{"value": c.fwID},
			"decline": map[string]any{"offer_ids": []any{}}}
	}
	for _, tc := range []struct {
		name, streamID string
		call           map[string]any
		want           string
	}{
		{"missing", "", decline(), "should include the 'Mesos-Stream-Id' header"},
		{"wrong", "00000000-0000-4000-8000-000000000000", decline(), "didn't match the stream ID"},
		{"unknown framework", c.streamID, map[string]any{"type": "DECLINE", "framework_id": map[string]any{"value": "nope"}}, "Framework cannot be found"},
		{"subscribe with one", c.streamID, subscribeCall(nil), "should not include the 'Mesos-Stream-Id' header"},
		{"not a call type", c.streamID, map[string]any{"type": "LAUNCH", "framework_id": map[string]any{"value": c.fwID}}, "Failed to find enum"},
		{"subscribe without user", "", subscribeCall(map[string]any{"name": "x"}), "Missing required fields"},
	} {
		resp, answer := post(t, c.url, tc.streamID, tc.call)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(answer, tc.want) {
			t.Errorf("%s: %d %q, want 400 containing %q", tc.name, resp.StatusCode, answer, tc.want)
		}
	}
	c.mustCall(decline())
}

// TestSchedulerRedirect: a master that does not lead redirects to the leader's same path; with
// no leader elected it answers 503.
func TestSchedulerRedirect(t *testing.T) {
	c := startCluster(t, 2)
	resp, _ := post(t, c.Masters[1].URL()+PathMasterScheduler, "", subscribeCall(nil))
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "//"+c.Masters[0].HostPort()+PathMasterScheduler {
		t.Errorf("non-leader: %d to %q, want 307 to //%s%s", resp.StatusCode, resp.Header.Get("Location"), c.Masters[0].HostPort(), PathMasterScheduler)
	}
	c.SetLeader(-1)
	if resp, answer := post(t, c.Masters[1].URL()+PathScheduler, "", subscribeCall(nil)); resp.StatusCode != http.StatusServiceUnavailable || answer != "No leader elected" {
		t.Errorf("no leader: %d %q, want 503 No leader elected", resp.StatusCode, answer)
	}
	if c.Masters[1].Requests(PathScheduler) != 1 {
		t.Errorf("%d requests counted for %s, want 1", c.Masters[1].Requests(PathScheduler), PathScheduler)
	}
}

// TestSchedulerRefusals: roles without MULTI_ROLE and a denied principal get Mesos's ERROR
// event; a forbidden principal 403; a master that authenticates 401 without credentials.
func TestSchedulerRefusals(t *testing.T) {
	m := startMaster(t)
	m.SetSchedulerFaults(SchedulerFaults{DenyPrincipal: "denied", ForbidPrincipal: "forbidden"})
	for _, tc := range []struct {
		name string
		info map[string]any
		want string
	}{
		{"roles without MULTI_ROLE", map[string]any{"user": "u", "name": "n", "roles": []string{"a"}}, "'FrameworkInfo.roles' must not be set"},
		{"denied principal", map[string]any{"user": "u", "name": "n", "principal": "denied"}, "Not authorized to register framework"},
	} {
		resp, _ := post(t, m.URL()+PathScheduler, "", subscribeCall(tc.info))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d, want 200 and an ERROR event", tc.name, resp.StatusCode)
		}
		all, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(all), `"type":"ERROR"`) || !strings.Contains(string(all), tc.want) {
			t.Errorf("%s: stream %q, want one ERROR event containing %q, then its end", tc.name, all, tc.want)
		}
	}
	resp, _ := post(t, m.URL()+PathScheduler, "", subscribeCall(map[string]any{"user": "u", "name": "n", "principal": "forbidden"}))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forbidden principal: %d, want 403", resp.StatusCode)
	}
	m.SetAuth("p", "s")
	resp, _ = post(t, m.URL()+PathScheduler, "", subscribeCall(nil))
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("without credentials: %d %v, want 401 with WWW-Authenticate", resp.StatusCode, resp.Header)
	}
	if fws := m.SchedulerFrameworks(); len(fws) != 0 {
		t.Errorf("refused subscriptions left frameworks %v", fws)
	}
}

// TestSchedulerInvalidTasks: a task beyond its offer is TASK_ERROR, a reused offer TASK_LOST;
// the master's own updates carry no uuid; killing an unknown task is TASK_LOST.
func TestSchedulerInvalidTasks(t *testing.T) {
	m := startMaster(t)
	c := subscribe(t, m, nil)
	offers := c.eventOf("OFFERS")["offers"].(map[string]any)["offers"].([]any)
	offer := offers[0].(map[string]any)
	c.mustCall(launchCall(offer, "too-big", 9, 32))
	st := status(c.eventOf("UPDATE"))
	if st["state"] != "TASK_ERROR" || st["reason"] != "REASON_TASK_INVALID" || st["uuid"] != nil || !strings.Contains(st["message"].(string), "more resources cpus 9") {
		t.Errorf("task beyond its offer: %v, want TASK_ERROR (REASON_TASK_INVALID) without uuid", st)
	}
	c.mustCall(launchCall(offer, "reused", 0.1, 32))
	if st := status(c.eventOf("UPDATE")); st["state"] != "TASK_LOST" || st["reason"] != "REASON_INVALID_OFFERS" {
		t.Errorf("task on a used offer: %v, want TASK_LOST (REASON_INVALID_OFFERS)", st)
	}
	c.mustCall(map[string]any{"type": "KILL", "kill": map[string]any{"task_id": map[string]any{"value": "nope"}}})
	if st := status(c.eventOf("UPDATE")); st["state"] != "TASK_LOST" || st["uuid"] != nil {
		t.Errorf("kill of an unknown task: %v, want TASK_LOST without uuid", st)
	}
	if code, answer := c.call(map[string]any{"type": "ACKNOWLEDGE", "acknowledge": map[string]any{
		"agent_id": offer["agent_id"], "task_id": map[string]any{"value": "x"}, "uuid": "not base64"}}); code != http.StatusBadRequest {
		t.Errorf("ACKNOWLEDGE with a bad uuid: %d %s, want 400", code, answer)
	}
}

// TestSchedulerFaults: no offers; a failing task; heartbeats at the interval set.
func TestSchedulerFaults(t *testing.T) {
	m := startMaster(t)
	m.SetSchedulerFaults(SchedulerFaults{NoOffers: true, Heartbeat: 10 * time.Millisecond})
	c := subscribe(t, m, nil)
	if ev := c.event(); ev["type"] != "HEARTBEAT" {
		t.Errorf("event with no offers: %v, want a HEARTBEAT", ev)
	}
	m.SetSchedulerFaults(SchedulerFaults{FailTask: "Command exited with status 1"})
	c = subscribe(t, m, nil)
	offer := c.eventOf("OFFERS")["offers"].(map[string]any)["offers"].([]any)[0].(map[string]any)
	c.mustCall(launchCall(offer, "fails", 0.1, 32))
	c.mustCall(ackCall(status(c.eventOf("UPDATE"))))
	st := status(c.eventOf("UPDATE"))
	if st["state"] != "TASK_FAILED" || st["message"] != "Command exited with status 1" || st["reason"] != "REASON_COMMAND_EXECUTOR_FAILED" {
		t.Errorf("failing task: %v", st)
	}
}

// TestSchedulerFailover: a framework whose connection closes without TEARDOWN is removed after
// its failover timeout, with its tasks.
func TestSchedulerFailover(t *testing.T) {
	m := startMaster(t)
	c := subscribe(t, m, map[string]any{"user": "u", "name": "n", "failover_timeout": 0.05})
	offer := c.eventOf("OFFERS")["offers"].(map[string]any)["offers"].([]any)[0].(map[string]any)
	launch := launchCall(offer, "orphan", 0.1, 32)
	res := launch["accept"].(map[string]any)["operations"].([]any)[0].(map[string]any)["launch"].(map[string]any)["task_infos"].([]any)[0].(map[string]any)["resources"].([]any)
	for _, r := range res {
		delete(r.(map[string]any), "allocation_info") // not MULTI_ROLE: no allocation_info
	}
	c.mustCall(launch)
	if got := m.SchedulerTasks()["orphan"]; got != "TASK_STARTING" {
		t.Fatalf("task %q, want TASK_STARTING", got)
	}
	c.body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(m.SchedulerFrameworks()) != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("framework not removed after its failover timeout: %v", m.SchedulerFrameworks())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if tasks := m.SchedulerTasks(); len(tasks) != 0 {
		t.Errorf("tasks left: %v", tasks)
	}
}

// TestSchedulerMalformedAccept: an ACCEPT whose task is not a TaskInfo is refused as a whole,
// and one whose offer ids are unknown loses its task.
func TestSchedulerMalformedAccept(t *testing.T) {
	m := startMaster(t)
	c := subscribe(t, m, nil)
	offer := c.eventOf("OFFERS")["offers"].(map[string]any)["offers"].([]any)[0].(map[string]any)
	bad := launchCall(offer, "nan", 0.1, 32)
	task := bad["accept"].(map[string]any)["operations"].([]any)[0].(map[string]any)["launch"].(map[string]any)["task_infos"].([]any)[0].(map[string]any)
	task["resources"].([]any)[0].(map[string]any)["scalar"] = map[string]any{"value": "NaN"}
	if code, answer := c.call(bad); code != http.StatusBadRequest || !strings.Contains(answer, "task_infos[0]") {
		t.Errorf("ACCEPT with a NaN resource: %d %q, want 400 naming the task", code, answer)
	}
	if tasks := m.SchedulerTasks(); len(tasks) != 0 {
		t.Errorf("tasks after a malformed ACCEPT: %v", tasks)
	}
	unknown := launchCall(map[string]any{"id": map[string]any{"value": "no-such-offer"}, "agent_id": offer["agent_id"]}, "lost", 0.1, 32)
	c.mustCall(unknown)
	if st := status(c.eventOf("UPDATE")); st["state"] != "TASK_LOST" || !strings.Contains(st["message"].(string), "no-such-offer is no longer valid") {
		t.Errorf("task on an unknown offer: %v, want TASK_LOST naming the offer", st)
	}
}
