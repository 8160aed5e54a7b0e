package discovery

import (
	"bufio"
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sseFrame is one server-sent event: its type and its data lines joined by "\n".
type sseFrame struct {
	event string
	data  string
}

// splitSSE is a minimal text/event-stream parser: "event:" and "data:" fields, ":" comments
// (Marathon's keepalive is an empty comment), a blank line ends a frame. Frames without data
// are not dispatched, as the SSE spec says.
func splitSSE(t *testing.T, stream []byte) []sseFrame {
	t.Helper()
	var frames []sseFrame
	var cur sseFrame
	var data []string
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case line == "":
			if len(data) > 0 {
				cur.data = strings.Join(data, "\n")
				frames = append(frames, cur)
			}
			cur, data = sseFrame{}, nil
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				cur.event = value
			case "data":
				data = append(data, value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 {
		t.Fatalf("stream ends inside a frame (event %q): no blank line after its data", cur.event)
	}
	return frames
}

func TestSplitSSE(t *testing.T) {
	got := splitSSE(t, []byte(": hello\n\nevent: a\ndata: {\"x\":1}\n\n:\n\nevent: b\ndata: line1\ndata: line2\r\n\r\nevent: empty\n\n"))
	want := []sseFrame{{"a", `{"x":1}`}, {"b", "line1\nline2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("frames %q, want %q", got, want)
	}
}

const (
	newTaskID = "pywebserver.1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc"
	oldTaskID = "pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc"
	agentS1   = "db7b40e2-791c-445f-b373-183e2a648a86-S1"
	agentS2   = "db7b40e2-791c-445f-b373-183e2a648a86-S2"
	appVer    = "2017-07-19T17:34:41.967Z"
)

// The events of testdata/marathon/events.sse, in order, as read off the file.
var wantFixtureEvents = []Event{
	{Type: "event_stream_attached", Ignored: true},
	{Type: "deployment_info", Refetch: []string{"/pywebserver"}},
	{Type: "status_update_event", Update: TaskStatus{
		AppID: "/pywebserver", TaskID: newTaskID, State: StateStaging, Host: "10.0.2.149", SlaveID: agentS2,
		Version: appVer, Timestamp: "2017-07-19T17:40:01.500Z",
	}},
	{Type: "status_update_event", Update: TaskStatus{
		AppID: "/pywebserver", TaskID: newTaskID, State: StateRunning, Host: "10.0.2.149", SlaveID: agentS2,
		IPAddresses: []string{"172.17.0.3"}, Ports: []int{2117}, Version: appVer, Timestamp: "2017-07-19T17:40:03.200Z",
	}},
	// Marathon 1.4+: instanceId "pywebserver.marathon-1f0c…" names the task "pywebserver.1f0c…".
	{Type: "health_status_changed_event", Update: TaskHealth{
		AppID: "/pywebserver", TaskID: newTaskID, InstanceID: "pywebserver.marathon-1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc", Alive: true,
	}},
	// Steps are empty: the event does not say which apps, so everything is fetched again.
	{Type: "deployment_success", Resync: true},
	// Pre-1.4: taskId.
	{Type: "health_status_changed_event", Update: TaskHealth{AppID: "/pywebserver", TaskID: oldTaskID, Alive: false}},
	{Type: "status_update_event", Update: TaskStatus{
		AppID: "/pywebserver", TaskID: oldTaskID, State: StateKilling, Host: "10.0.2.148", SlaveID: agentS1,
		IPAddresses: []string{"172.17.0.2"}, Ports: []int{1565}, Version: appVer, Timestamp: "2017-07-19T17:41:02.000Z",
	}},
	{Type: "status_update_event", Update: TaskStatus{
		AppID: "/pywebserver", TaskID: oldTaskID, State: "TASK_KILLED", Host: "10.0.2.148", SlaveID: agentS1,
		IPAddresses: []string{"172.17.0.2"}, Ports: []int{1565}, Version: appVer, Timestamp: "2017-07-19T17:41:04.000Z",
	}},
	{Type: "api_post_event", Refetch: []string{"/pywebserver"}},
	{Type: "instance_changed_event", Ignored: true},
	{Type: "app_terminated_event", Refetch: []string{"/old-service"}},
}

// normalizeEvent makes empty and nil slices compare equal ("ports":[] decodes to an empty slice).
func normalizeEvent(ev Event) Event {
	if u, ok := ev.Update.(TaskStatus); ok {
		if len(u.Ports) == 0 {
			u.Ports = nil
		}
		if len(u.IPAddresses) == 0 {
			u.IPAddresses = nil
		}
		ev.Update = u
	}
	if len(ev.Refetch) == 0 {
		ev.Refetch = nil
	}
	return ev
}

func fixtureEvents(t *testing.T) []Event {
	t.Helper()
	frames := splitSSE(t, readFixture(t, "marathon/events.sse"))
	var evs []Event
	for i, f := range frames {
		ev, err := DecodeMarathonEvent(f.event, []byte(f.data))
		if err != nil {
			t.Fatalf("frame %d (%s): %v", i, f.event, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestMarathonEventsFixture(t *testing.T) {
	evs := fixtureEvents(t)
	if len(evs) != len(wantFixtureEvents) {
		t.Fatalf("%d events in events.sse, want %d", len(evs), len(wantFixtureEvents))
	}
	for i, want := range wantFixtureEvents {
		got := normalizeEvent(evs[i])
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d (%s):\n got %+v\nwant %+v", i, want.Type, got, want)
		}
		// The server-side filter must ask for exactly the types that carry something.
		if subscribed := slices.Contains(MarathonEventTypes, got.Type); subscribed == got.Ignored {
			t.Errorf("event %d: type %s ignored=%t but listed in MarathonEventTypes=%t", i, got.Type, got.Ignored, subscribed)
		}
	}
}

// taskView is what the replay checks of a task after each delta.
type taskView struct {
	ID        string
	State     string
	Eligible  bool
	Draining  bool
	Endpoints []Endpoint
	Health    []HealthResult
}

func viewTasks(a *App) []taskView {
	var out []taskView
	for _, t := range a.Tasks {
		v := taskView{t.ID, t.State, t.Eligible, t.Draining, t.Endpoints, t.Health}
		if len(v.Endpoints) == 0 {
			v.Endpoints = nil
		}
		out = append(out, v)
	}
	return out
}

// Replaying the stream's deltas onto the state of marathon15_apps.json: a new task is staged,
// runs, turns healthy; the old one turns unhealthy, is killed, and is gone.
func TestMarathonEventsReplay(t *testing.T) {
	oldEP := []Endpoint{{"10.0.2.148", 1565}}
	newEP := []Endpoint{{"10.0.2.149", 2117}}
	up, down := []HealthResult{{Alive: true}}, []HealthResult{{Alive: false}}
	// One entry per delta of the stream, in order: the app's tasks after it (sorted by id;
	// "pywebserver.1f0c…" sorts before "pywebserver.8cad…").
	steps := []struct {
		name  string
		tasks []taskView
	}{
		{"staging", []taskView{
			{newTaskID, StateStaging, false, false, nil, nil},
			{oldTaskID, StateRunning, true, false, oldEP, nil},
		}},
		{"running", []taskView{
			{newTaskID, StateRunning, true, false, newEP, nil},
			{oldTaskID, StateRunning, true, false, oldEP, nil},
		}},
		{"new task healthy", []taskView{
			{newTaskID, StateRunning, true, false, newEP, up},
			{oldTaskID, StateRunning, true, false, oldEP, nil},
		}},
		{"old task unhealthy", []taskView{
			{newTaskID, StateRunning, true, false, newEP, up},
			{oldTaskID, StateRunning, false, false, oldEP, down},
		}},
		{"old task killing", []taskView{
			{newTaskID, StateRunning, true, false, newEP, up},
			{oldTaskID, StateKilling, false, true, oldEP, down},
		}},
		{"old task killed", []taskView{
			{newTaskID, StateRunning, true, false, newEP, up},
		}},
	}

	seed := decodeFixture(t, "marathon/marathon15_apps.json")
	st := newState(t, seed...)
	var deltas []Update
	for _, ev := range fixtureEvents(t) {
		if ev.Update != nil {
			deltas = append(deltas, ev.Update)
		}
	}
	if len(deltas) != len(steps) {
		t.Fatalf("%d deltas in the stream, want %d", len(deltas), len(steps))
	}
	for i, u := range deltas {
		if !mustApply(t, st, u) {
			t.Errorf("step %s: %s changed nothing", steps[i].name, describe(u))
		}
		a := st.apps.Get("/pywebserver")
		if got := viewTasks(a); !reflect.DeepEqual(got, steps[i].tasks) {
			t.Errorf("after %s:\n got %+v\nwant %+v", steps[i].name, got, steps[i].tasks)
		}
		if st.tasks != len(steps[i].tasks) {
			t.Errorf("after %s: task count %d, want %d", steps[i].name, st.tasks, len(steps[i].tasks))
		}
	}

	final := st.apps.Get("/pywebserver").Task(newTaskID)
	if final == nil {
		t.Fatal("new task missing")
	}
	if final.StagedAt != "2017-07-19T17:40:01.500Z" || final.StartedAt != "2017-07-19T17:40:03.200Z" ||
		final.SlaveID != agentS2 || !slices.Equal(final.IPAddresses, []string{"172.17.0.3"}) ||
		!slices.Equal(final.HostPorts, []int{2117}) {
		t.Errorf("new task %+v", final)
	}

	// The same deltas through a Registry end in the same state.
	r := startRegistry(t)
	send(t, r, ReplaceApps{Apps: decodeFixture(t, "marathon/marathon15_apps.json")})
	for _, u := range deltas {
		send(t, r, u)
	}
	snap, err := r.WaitFor(testContext(t), func(s *Snapshot) bool {
		a := s.App("/pywebserver")
		return a != nil && a.Task(oldTaskID) == nil && a.Task(newTaskID) != nil
	})
	if err != nil {
		t.Fatalf("registry never reached the final state: %v", err)
	}
	if got, want := viewTasks(snap.App("/pywebserver")), steps[len(steps)-1].tasks; !reflect.DeepEqual(got, want) {
		t.Errorf("registry final tasks\n got %+v\nwant %+v", got, want)
	}
	if snap.Tasks != 1 {
		t.Errorf("registry task count %d, want 1", snap.Tasks)
	}
	if !snap.App("/pywebserver").Equal(st.apps.Get("/pywebserver")) {
		t.Errorf("registry and direct replay differ")
	}
}

func TestDecodeMarathonEventErrors(t *testing.T) {
	frames := splitSSE(t, readFixture(t, "marathon/events.sse"))
	var running string
	for _, f := range frames {
		if strings.Contains(f.data, `"TASK_RUNNING"`) {
			running = f.data
		}
	}
	if running == "" {
		t.Fatal("no TASK_RUNNING frame in events.sse")
	}
	tests := []struct {
		name, eventType, data string
		wantErr               []string // substrings, all required
	}{
		{"truncated frame", "status_update_event", running[:len(running)/2], []string{"status_update_event", "unexpected end of JSON input"}},
		{"malformed status", "status_update_event", `{"appId":"/a",`, []string{"status_update_event"}},
		{"not an object", "status_update_event", `[1,2]`, []string{"status_update_event", "cannot unmarshal"}},
		{"ports of wrong type", "status_update_event", `{"appId":"/a","taskId":"a.1","taskStatus":"TASK_RUNNING","ports":"31000"}`, []string{"status_update_event"}},
		{"status without taskStatus", "status_update_event", `{"appId":"/a","taskId":"a.1"}`, []string{"status_update_event", "taskStatus", "required"}},
		{"status without appId", "status_update_event", `{"taskId":"a.1","taskStatus":"TASK_RUNNING"}`, []string{"appId", "required"}},
		{"status without taskId", "status_update_event", `{"appId":"/a","taskStatus":"TASK_RUNNING"}`, []string{"taskId", "required"}},
		{"health without alive", "health_status_changed_event", `{"appId":"/a","taskId":"a.1"}`, []string{"health_status_changed_event", "alive"}},
		{"health without task", "health_status_changed_event", `{"appId":"/a","alive":true}`, []string{"instanceId"}},
		{"health without app", "health_status_changed_event", `{"taskId":"a.1","alive":true}`, []string{"appId"}},
		{"health malformed", "health_status_changed_event", `{"alive":tru`, []string{"health_status_changed_event"}},
		{"health alive not bool", "health_status_changed_event", `{"appId":"/a","taskId":"a.1","alive":"yes"}`, []string{"health_status_changed_event"}},
		{"api post malformed", "api_post_event", `{"appDefinition":`, []string{"api_post_event"}},
		{"terminated without app", "app_terminated_event", `{"eventType":"app_terminated_event"}`, []string{"app_terminated_event", "appId"}},
		{"terminated malformed", "app_terminated_event", `{`, []string{"app_terminated_event"}},
		{"deployment malformed", "deployment_info", `{"plan":{"steps":[`, []string{"deployment_info"}},
		{"deployment steps wrong type", "deployment_step_success", `{"plan":{"steps":{}}}`, []string{"deployment_step_success"}},
		{"empty data", "status_update_event", ``, []string{"status_update_event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeMarathonEvent(tt.eventType, []byte(tt.data))
			if err == nil {
				t.Fatalf("no error; event %+v", ev)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if ev.Update != nil || ev.Refetch != nil || ev.Resync {
				t.Errorf("a failed decode still asks for work: %+v", ev)
			}
		})
	}
}

func TestDecodeMarathonEventCases(t *testing.T) {
	tests := []struct {
		name, eventType, data string
		want                  Event
	}{
		{
			"taskId wins over instanceId", "health_status_changed_event",
			`{"appId":"a","taskId":"a.1","instanceId":"a.marathon-2","alive":true}`,
			Event{Type: "health_status_changed_event", Update: TaskHealth{AppID: "/a", TaskID: "a.1", Alive: true}},
		},
		{
			"api post without app is a group change", "api_post_event",
			`{"groupDefinition":{"id":"/g"}}`,
			Event{Type: "api_post_event", Resync: true},
		},
		{
			"deployment apps from steps and current step, deduplicated and sorted", "deployment_step_success",
			`{"plan":{"steps":[{"actions":[{"app":"/b"},{"app":"a"}]},{"actions":[{"pod":"/p"}]}]},"currentStep":{"actions":[{"app":"/b"}]}}`,
			Event{Type: "deployment_step_success", Refetch: []string{"/a", "/b"}},
		},
		{
			"deployment failed names its app", "deployment_failed",
			`{"plan":{"steps":[{"actions":[{"action":"StartApplication","app":"/x"}]}]}}`,
			Event{Type: "deployment_failed", Refetch: []string{"/x"}},
		},
		{
			"unknown types are ignored, even with garbage", "framework_message_event", `{{{`,
			Event{Type: "framework_message_event", Ignored: true},
		},
		{
			"status with relative app id", "status_update_event",
			`{"appId":"shop/web","taskId":"shop_web.1","taskStatus":"TASK_FAILED"}`,
			Event{Type: "status_update_event", Update: TaskStatus{AppID: "/shop/web", TaskID: "shop_web.1", State: "TASK_FAILED"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeMarathonEvent(tt.eventType, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if got := normalizeEvent(ev); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestTaskIDFromInstanceID(t *testing.T) {
	tests := map[string]string{
		"pywebserver.marathon-1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc": "pywebserver.1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc",
		"shop_web.marathon-abc":          "shop_web.abc",
		"marathon-app.marathon-abc":      "marathon-app.abc", // the last ".marathon-" counts
		"pywebserver.8cad6a69-6ca8-11e7": "pywebserver.8cad6a69-6ca8-11e7",
		"":                               "",
		"group_app.instance-abc._app.1":  "group_app.instance-abc._app.1",
		"a.marathon-b.marathon-c":        "a.marathon-b.c",
		"no-dot-marathon-123":            "no-dot-marathon-123",
	}
	for in, want := range tests {
		if got := TaskIDFromInstanceID(in); got != want {
			t.Errorf("TaskIDFromInstanceID(%q) = %q, want %q", in, got, want)
		}
	}
}

// An event that cannot be applied is logged and skipped; its error names the app and task it
// was about whenever the payload says, so the operator knows what may be stale until the next
// full sync.
func TestDecodeMarathonEventErrorsNameTheApp(t *testing.T) {
	tests := []struct {
		name, eventType, data string
		wantErr               []string
	}{
		{"status without taskStatus", "status_update_event", `{"appId":"/shop/web","taskId":"shop_web.1"}`, []string{"/shop/web", "shop_web.1"}},
		{"ports of wrong type", "status_update_event", `{"appId":"/shop/web","taskId":"shop_web.1","taskStatus":"TASK_RUNNING","ports":"31000"}`, []string{"/shop/web", "shop_web.1"}},
		{"health without alive", "health_status_changed_event", `{"appId":"/shop/web","instanceId":"shop_web.marathon-1"}`, []string{"/shop/web", "shop_web.marathon-1"}},
		{"deployment steps wrong type", "deployment_info", `{"plan":{"id":"d-1","steps":{}}}`, []string{"d-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeMarathonEvent(tt.eventType, []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

// A deployment whose actions all concern pods changes nothing lodestar routes (pods are not in
// /v2/apps): it must not cost a full sync of every app for each of its events.
func TestDeploymentOfPodsOnly(t *testing.T) {
	for _, typ := range []string{"deployment_info", "deployment_step_success", "deployment_success"} {
		data := `{"plan":{"id":"d-1","steps":[{"actions":[{"action":"StartPod","pod":"/pods/a"}]},{"actions":[{"action":"ScalePod","pod":"/pods/a"}]}]},` +
			`"currentStep":{"actions":[{"action":"StartPod","pod":"/pods/a"}]}}`
		ev, err := DecodeMarathonEvent(typ, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Resync || len(ev.Refetch) > 0 || !ev.Ignored {
			t.Errorf("%s of pods only: %+v, want it ignored", typ, ev)
		}
	}
	// Without any action, nothing says which apps changed: everything is fetched again.
	ev, err := DecodeMarathonEvent("deployment_success", []byte(`{"plan":{"id":"d-2","steps":[]}}`))
	if err != nil || !ev.Resync {
		t.Errorf("deployment without actions: %+v, %v; want a resync", ev, err)
	}
}
