package fakemarathon

import (
	"reflect"
	"regexp"
	"sort"
	"testing"
	"time"
)

var taskIDRE = regexp.MustCompile(`^shop_web\.[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// statusFields are the fields of a status_update_event in events.sse.
var statusFields = []string{"appId", "eventType", "host", "ipAddresses", "message", "ports", "slaveId", "taskId", "taskStatus", "timestamp", "version"}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// expectStatus reads a status_update_event and checks its shape, id and
// state.
func expectStatus(t *testing.T, st *stream, taskID, state string) map[string]any {
	t.Helper()
	ev := st.expect("status_update_event")
	if !reflect.DeepEqual(keys(ev), statusFields) {
		t.Errorf("status_update_event fields = %v, want %v", keys(ev), statusFields)
	}
	if ev["taskId"] != taskID || ev["taskStatus"] != state {
		t.Errorf("got %s %s, want %s %s", ev["taskId"], ev["taskStatus"], taskID, state)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", ev["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	return ev
}

func addShopWeb(t *testing.T, s *Server) {
	t.Helper()
	err := s.AddApp(map[string]any{
		"id":        "/shop/web",
		"instances": 0,
		"version":   "2017-07-19T17:34:41.967Z",
		"container": map[string]any{
			"type":         "DOCKER",
			"docker":       map[string]any{"image": "nginx"},
			"portMappings": []any{map[string]any{"containerPort": 80, "hostPort": 0, "servicePort": 10101}},
		},
		"networks": []any{map[string]any{"mode": "container/bridge"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAddAppRemoveApp(t *testing.T) {
	s := start(t)
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")
	err := s.AddApp(map[string]any{
		"id":    "shop/web",
		"tasks": []any{map[string]any{"id": "shop_web.1", "host": "127.0.0.1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := st.expect("api_post_event")
	def := ev["appDefinition"].(map[string]any)
	if def["id"] != "/shop/web" || ev["uri"] != "/v2/apps" {
		t.Errorf("api_post_event = %v", ev)
	}
	if _, ok := def["tasks"]; ok {
		t.Error("appDefinition includes tasks")
	}
	if len(s.Tasks("/shop/web")) != 1 {
		t.Error("embedded task not stored")
	}

	// Updating keeps the tasks.
	if err := s.AddApp(map[string]any{"id": "/shop/web", "labels": map[string]any{"X": "1"}}); err != nil {
		t.Fatal(err)
	}
	if ev := st.expect("api_post_event"); ev["uri"] != "/v2/apps/shop/web" {
		t.Errorf("update uri = %v", ev["uri"])
	}
	if len(s.Tasks("/shop/web")) != 1 {
		t.Error("update dropped the tasks")
	}

	s.RemoveApp("shop/web")
	if ev := st.expect("app_terminated_event"); ev["appId"] != "/shop/web" {
		t.Errorf("app_terminated_event = %v", ev)
	}
	if code, _ := getJSON(t, s, "/v2/apps/shop/web"); code != 404 {
		t.Errorf("removed app: %d", code)
	}
	if err := s.AddApp(map[string]any{"noid": true}); err == nil {
		t.Error("AddApp without id succeeded")
	}
}

func TestAddTask(t *testing.T) {
	s := start(t)
	addShopWeb(t, s)
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")

	id, err := s.AddTask("shop/web", TaskSpec{Host: "127.0.0.1", Ports: []int{31005}, IPAddresses: []string{"127.0.0.3"}, SlaveID: "agent-S1"})
	if err != nil {
		t.Fatal(err)
	}
	if !taskIDRE.MatchString(id) {
		t.Errorf("task id %q", id)
	}
	staging := expectStatus(t, st, id, "TASK_STAGING")
	if len(staging["ipAddresses"].([]any)) != 0 || len(staging["ports"].([]any)) != 0 {
		t.Errorf("staging event carries addresses: %v", staging)
	}
	running := expectStatus(t, st, id, "TASK_RUNNING")
	want := map[string]any{
		"slaveId": "agent-S1", "message": "", "appId": "/shop/web", "host": "127.0.0.1",
		"ipAddresses": []any{map[string]any{"ipAddress": "127.0.0.3", "protocol": "IPv4"}},
		"ports":       []any{float64(31005)}, "version": "2017-07-19T17:34:41.967Z",
	}
	for k, v := range want {
		if !reflect.DeepEqual(running[k], v) {
			t.Errorf("running event %s = %v, want %v", k, running[k], v)
		}
	}

	// A given state is emitted alone; Health emits a health event.
	alive := true
	id2, err := s.AddTask("/shop/web", TaskSpec{State: "TASK_STAGING", Health: &alive})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, st, id2, "TASK_STAGING")
	if ev := st.expect("health_status_changed_event"); ev["instanceId"] != InstanceID(id2) || ev["alive"] != true {
		t.Errorf("health event = %v", ev)
	}
	_, body := getJSON(t, s, "/v2/apps/shop/web")
	app := body["app"].(map[string]any)
	if app["tasksRunning"] != 1.0 || app["tasksStaged"] != 1.0 || app["tasksHealthy"] != 1.0 {
		t.Errorf("counts: running %v staged %v healthy %v", app["tasksRunning"], app["tasksStaged"], app["tasksHealthy"])
	}
	if _, err := s.AddTask("/nope", TaskSpec{}); err == nil {
		t.Error("AddTask on unknown app succeeded")
	}
}

func TestScaleAppAndKillTask(t *testing.T) {
	s := start(t)
	addShopWeb(t, s)
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")

	ids, err := s.ScaleApp("/shop/web", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Fatalf("ids = %v", ids)
	}
	for i, id := range ids {
		expectStatus(t, st, id, "TASK_STAGING")
		ev := expectStatus(t, st, id, "TASK_RUNNING")
		if want := []any{float64(31000 + i)}; !reflect.DeepEqual(ev["ports"], want) || ev["host"] != "127.0.0.1" {
			t.Errorf("task %d: ports %v host %v", i, ev["ports"], ev["host"])
		}
	}
	_, body := getJSON(t, s, "/v2/apps/shop/web")
	if app := body["app"].(map[string]any); app["instances"] != 3.0 || app["tasksRunning"] != 3.0 {
		t.Errorf("after scale up: instances %v running %v", app["instances"], app["tasksRunning"])
	}

	left, err := s.ScaleApp("shop/web", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(left, ids[:1]) {
		t.Errorf("after scale down: %v, want %v", left, ids[:1])
	}
	for _, id := range []string{ids[2], ids[1]} { // newest first
		expectStatus(t, st, id, "TASK_KILLING")
		expectStatus(t, st, id, "TASK_KILLED")
	}

	if err := s.KillTask(ids[0]); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, st, ids[0], "TASK_KILLING")
	expectStatus(t, st, ids[0], "TASK_KILLED")
	if n := len(s.Tasks("/shop/web")); n != 0 {
		t.Errorf("%d tasks left", n)
	}
	if err := s.KillTask(ids[0]); err == nil {
		t.Error("killing a dead task succeeded")
	}

	// Apps without ports get tasks without ports.
	if err := s.AddApp(map[string]any{"id": "/worker"}); err != nil {
		t.Fatal(err)
	}
	st.expect("api_post_event")
	wids, err := s.ScaleApp("/worker", 1)
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, st, wids[0], "TASK_STAGING")
	if ev := expectStatus(t, st, wids[0], "TASK_RUNNING"); len(ev["ports"].([]any)) != 0 {
		t.Errorf("portless app task ports = %v", ev["ports"])
	}
	if _, err := s.ScaleApp("/nope", 1); err == nil {
		t.Error("ScaleApp on unknown app succeeded")
	}
}

func TestSetTaskState(t *testing.T) {
	s := start(t)
	addShopWeb(t, s)
	ids, err := s.ScaleApp("/shop/web", 2)
	if err != nil {
		t.Fatal(err)
	}
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")

	if err := s.SetTaskState(InstanceID(ids[0]), "TASK_UNREACHABLE"); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, st, ids[0], "TASK_UNREACHABLE")
	if got := s.Tasks("/shop/web")[0]["state"]; got != "TASK_UNREACHABLE" {
		t.Errorf("state = %v", got)
	}
	for i, state := range []string{"TASK_FAILED", "TASK_LOST"} {
		if err := s.SetTaskState(ids[i], state); err != nil {
			t.Fatal(err)
		}
		expectStatus(t, st, ids[i], state)
	}
	if n := len(s.Tasks("/shop/web")); n != 0 {
		t.Errorf("%d tasks left after terminal states", n)
	}
	if err := s.SetTaskState(ids[0], "RUNNING"); err == nil {
		t.Error("bad state accepted")
	}
}

func TestSetHealth(t *testing.T) {
	s := start(t)
	addShopWeb(t, s)
	ids, err := s.ScaleApp("/shop/web", 2)
	if err != nil {
		t.Fatal(err)
	}
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")

	if err := s.SetHealth(ids[0], true); err != nil {
		t.Fatal(err)
	}
	ev := st.expect("health_status_changed_event")
	uuid := ids[0][len("shop_web."):]
	if ev["instanceId"] != "shop_web.marathon-"+uuid || ev["alive"] != true || ev["appId"] != "/shop/web" {
		t.Errorf("health event = %v", ev)
	}
	if _, ok := ev["taskId"]; ok {
		t.Error("1.4+ health event has taskId")
	}
	if err := s.SetHealth(ids[1], false); err != nil {
		t.Fatal(err)
	}
	st.expect("health_status_changed_event")
	if err := s.SetHealth(ids[1], false); err != nil {
		t.Fatal(err)
	}
	st.expect("health_status_changed_event")

	tasks := s.Tasks("/shop/web")
	r0 := tasks[0]["healthCheckResults"].([]any)[0].(map[string]any)
	r1 := tasks[1]["healthCheckResults"].([]any)[0].(map[string]any)
	if r0["alive"] != true || r0["taskId"] != ids[0] || r0["firstSuccess"] == nil || r0["lastSuccess"] == nil ||
		r0["consecutiveFailures"] != 0.0 || r0["lastFailure"] != nil {
		t.Errorf("healthy result = %v", r0)
	}
	if r1["alive"] != false || r1["consecutiveFailures"] != 2.0 || r1["lastFailure"] == nil || r1["firstSuccess"] != nil {
		t.Errorf("unhealthy result = %v", r1)
	}
	_, body := getJSON(t, s, "/v2/apps?embed=apps.tasks")
	app := body["apps"].([]any)[0].(map[string]any)
	if app["tasksHealthy"] != 1.0 || app["tasksUnhealthy"] != 1.0 {
		t.Errorf("healthy %v unhealthy %v", app["tasksHealthy"], app["tasksUnhealthy"])
	}

	s.LegacyHealthEvents = true
	if err := s.SetHealth(InstanceID(ids[1]), true); err != nil {
		t.Fatal(err)
	}
	ev = st.expect("health_status_changed_event")
	if ev["taskId"] != ids[1] || ev["alive"] != true {
		t.Errorf("legacy health event = %v", ev)
	}
	if _, ok := ev["instanceId"]; ok {
		t.Error("legacy health event has instanceId")
	}

	// ClearHealth removes results silently.
	s.ClearHealth("shop/web")
	if err := s.Emit("marker", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	st.expect("marker")
	for _, task := range s.Tasks("/shop/web") {
		if _, ok := task["healthCheckResults"]; ok {
			t.Errorf("task %v still has health results", task["id"])
		}
	}
	if err := s.SetHealth("shop_web.nope", true); err == nil {
		t.Error("SetHealth on unknown task succeeded")
	}
}

func TestInstanceID(t *testing.T) {
	for in, want := range map[string]string{
		"shop_web.1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc":          "shop_web.marathon-1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc",
		"my.app.1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc":            "my.app.marathon-1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc",
		"shop_web.marathon-1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc": "shop_web.marathon-1f0c2d4e-6ca9-11e7-beb2-0e2beceebfcc",
	} {
		if got := InstanceID(in); got != want {
			t.Errorf("InstanceID(%s) = %s, want %s", in, got, want)
		}
	}
}
