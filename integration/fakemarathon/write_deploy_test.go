package fakemarathon

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// appState is what GET /v2/apps/{id} says of an app: its instances, version, deployments and
// the versions of its tasks, oldest first.
type appState struct {
	code         int
	instances    int
	version      string
	deployments  []string
	taskVersions []string
	taskIDs      []string
}

func getApp(t *testing.T, s *Server, id string) appState {
	t.Helper()
	code, body := getJSON(t, s, "/v2/apps"+id)
	st := appState{code: code}
	if code != http.StatusOK {
		return st
	}
	app := body["app"].(map[string]any)
	st.instances = int(app["instances"].(float64))
	st.version = app["version"].(string)
	for _, d := range app["deployments"].([]any) {
		st.deployments = append(st.deployments, d.(map[string]any)["id"].(string))
	}
	for _, task := range app["tasks"].([]any) {
		tm := task.(map[string]any)
		st.taskVersions = append(st.taskVersions, tm["version"].(string))
		st.taskIDs = append(st.taskIDs, tm["id"].(string))
	}
	return st
}

// listDeployments returns the ids GET /v2/deployments lists and the app each affects.
func listDeployments(t *testing.T, s *Server) map[string]string {
	t.Helper()
	resp, err := http.Get(s.URL() + "/v2/deployments")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []struct {
		ID           string   `json:"id"`
		AffectedApps []string `json:"affectedApps"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range list {
		out[d.ID] = strings.Join(d.AffectedApps, ",")
	}
	return out
}

const healthChecked = `"healthChecks":[{"protocol":"HTTP","path":"/"}]`

// TestPutScalesAndReplaces: PUT with instances alone scales the app under its version; PUT of
// any other field is a new version whose tasks replace every old one; both end their
// deployment at once with the default launch (no delay, healthy tasks).
func TestPutScalesAndReplaces(t *testing.T) {
	s := start(t)
	if code, _ := send(t, s, http.MethodPost, "/v2/apps", `{"id":"/web","cmd":"x","instances":1,"portDefinitions":[{"port":0}],`+healthChecked+`}`); code != http.StatusCreated {
		t.Fatalf("POST: %d", code)
	}
	v1 := getApp(t, s, "/web").version
	code, body := send(t, s, http.MethodPut, "/v2/apps/web", `{"instances":3}`)
	if code != http.StatusOK || body["deploymentId"] == "" || body["version"] != v1 {
		t.Fatalf("PUT instances: %d %v, want 200 with a deployment id and version %s", code, body, v1)
	}
	st := getApp(t, s, "/web")
	if st.instances != 3 || len(st.taskIDs) != 3 || len(st.deployments) != 0 {
		t.Fatalf("after the scale: %+v, want 3 tasks and no deployment left", st)
	}
	code, body = send(t, s, http.MethodPut, "/v2/apps/web", `{"env":{"COLOUR":"green"}}`)
	if code != http.StatusOK {
		t.Fatalf("PUT env: %d %v", code, body)
	}
	st = getApp(t, s, "/web")
	if st.version == v1 || len(st.taskVersions) != 3 {
		t.Fatalf("after the change: %+v, want a new version and 3 tasks", st)
	}
	for _, v := range st.taskVersions {
		if v != st.version {
			t.Errorf("task of version %s left beside version %s", v, st.version)
		}
	}
	if code, _ := send(t, s, http.MethodPut, "/v2/apps/web", `{"instances":1}`); code != http.StatusOK {
		t.Fatalf("PUT scale down: %d", code)
	}
	if st := getApp(t, s, "/web"); len(st.taskIDs) != 1 {
		t.Errorf("after scaling to 1: %d tasks", len(st.taskIDs))
	}
}

// TestPutCreatesAndRefusesBadBodies: PUT of an unknown id creates it (201); a body naming
// another id, a bad instance count or a body that is not an object is refused.
func TestPutCreatesAndRefusesBadBodies(t *testing.T) {
	s := start(t)
	if code, body := send(t, s, http.MethodPut, "/v2/apps/new/app", `{"cmd":"x","instances":2}`); code != http.StatusCreated || body["id"] != "/new/app" {
		t.Fatalf("PUT of an unknown app: %d %v, want 201", code, body)
	}
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"id":"/other","instances":1}`, http.StatusUnprocessableEntity},
		{`{"instances":-1}`, http.StatusUnprocessableEntity},
		{`{"instances":1.5}`, http.StatusUnprocessableEntity},
		{`{"instances":100000}`, http.StatusUnprocessableEntity},
		{`[1,2]`, http.StatusBadRequest},
		{`null`, http.StatusBadRequest},
	} {
		if code, body := send(t, s, http.MethodPut, "/v2/apps/new/app", c.body); code != c.code {
			t.Errorf("PUT %s: %d %v, want %d", c.body, code, body, c.code)
		}
	}
	if st := getApp(t, s, "/new/app"); st.instances != 2 || len(st.taskIDs) != 2 {
		t.Errorf("refused PUTs changed the app: %+v", st)
	}
}

// TestDeploymentLocksTheApp: with a launch delay a deployment stays under way, listed in the
// app and in /v2/deployments; a PUT is refused with 409 naming it unless forced; DELETE with
// force stops it where it is.
func TestDeploymentLocksTheApp(t *testing.T) {
	s := start(t)
	s.SetLaunchDelay(time.Hour)
	if code, _ := send(t, s, http.MethodPost, "/v2/apps", `{"id":"/slow","cmd":"x","instances":3}`); code != http.StatusCreated {
		t.Fatalf("POST: %d", code)
	}
	st := getApp(t, s, "/slow")
	if len(st.deployments) != 1 || len(st.taskIDs) != 0 {
		t.Fatalf("app %+v, want one deployment and no task yet", st)
	}
	if got := listDeployments(t, s); got[st.deployments[0]] != "/slow" {
		t.Fatalf("/v2/deployments %v, want %s for /slow", got, st.deployments[0])
	}
	code, body := send(t, s, http.MethodPut, "/v2/apps/slow", `{"instances":5}`)
	if code != http.StatusConflict || !strings.Contains(body["message"].(string), "locked by one or more deployments") ||
		!strings.Contains(body["message"].(string), st.deployments[0]) {
		t.Fatalf("PUT while deploying: %d %v, want 409 naming the deployment", code, body)
	}
	code, body = send(t, s, http.MethodPut, "/v2/apps/slow?force=true", `{"instances":5}`)
	if code != http.StatusOK {
		t.Fatalf("forced PUT: %d %v", code, body)
	}
	got := listDeployments(t, s)
	if len(got) != 1 || got[body["deploymentId"].(string)] != "/slow" {
		t.Fatalf("/v2/deployments %v, want only the forced one", got)
	}
	if code, _ := send(t, s, http.MethodDelete, "/v2/deployments/"+body["deploymentId"].(string)+"?force=true", ""); code != http.StatusAccepted {
		t.Fatalf("DELETE deployment with force: %d, want 202", code)
	}
	if got := listDeployments(t, s); len(got) != 0 {
		t.Errorf("deployments left: %v", got)
	}
	if code, _ := send(t, s, http.MethodDelete, "/v2/deployments/nope", ""); code != http.StatusNotFound {
		t.Errorf("DELETE of an unknown deployment: %d, want 404", code)
	}
}

// TestUnhealthyDeploymentRollsBack: a new version whose tasks never become healthy keeps its
// deployment and the old tasks; deleting the deployment (no force) rolls back: the old version
// again, its tasks kept and the new ones killed.
func TestUnhealthyDeploymentRollsBack(t *testing.T) {
	s := start(t)
	if code, _ := send(t, s, http.MethodPost, "/v2/apps", `{"id":"/shop","cmd":"v1","instances":2,`+healthChecked+`}`); code != http.StatusCreated {
		t.Fatalf("POST: %d", code)
	}
	before := getApp(t, s, "/shop")
	sick := false
	s.SetLaunchHealth(func(string) *bool { return &sick })
	code, body := send(t, s, http.MethodPut, "/v2/apps/shop", `{"cmd":"v2"}`)
	if code != http.StatusOK {
		t.Fatalf("PUT: %d %v", code, body)
	}
	mid := getApp(t, s, "/shop")
	if len(mid.deployments) != 1 || len(mid.taskIDs) != 4 {
		t.Fatalf("during the sick deployment: %+v, want it under way with 2 old and 2 new tasks", mid)
	}
	if code, _ := send(t, s, http.MethodDelete, "/v2/deployments/"+mid.deployments[0], ""); code != http.StatusOK {
		t.Fatalf("rollback: %d", code)
	}
	after := getApp(t, s, "/shop")
	if after.version != before.version || strings.Join(after.taskIDs, ",") != strings.Join(before.taskIDs, ",") || len(after.deployments) != 0 {
		t.Errorf("after the rollback %+v, want version %s with the old tasks %v and no deployment", after, before.version, before.taskIDs)
	}
	// A new app's rollback removes it.
	if code, _ := send(t, s, http.MethodPost, "/v2/apps", `{"id":"/fresh","cmd":"x","instances":1,`+healthChecked+`}`); code != http.StatusCreated {
		t.Fatal("POST /fresh")
	}
	dep := getApp(t, s, "/fresh").deployments
	if len(dep) != 1 {
		t.Fatalf("/fresh deployments %v, want one under way", dep)
	}
	send(t, s, http.MethodDelete, "/v2/deployments/"+dep[0], "")
	if st := getApp(t, s, "/fresh"); st.code != http.StatusNotFound {
		t.Errorf("a rolled back new app answers %d, want 404", st.code)
	}
}

// TestDeleteTasks: with scale=true the tasks go and instances shrink; without, Marathon
// launches replacements; an unknown id is a 404 and kills nothing.
func TestDeleteTasks(t *testing.T) {
	s := start(t)
	send(t, s, http.MethodPost, "/v2/apps", `{"id":"/k","cmd":"x","instances":3}`)
	ids := getApp(t, s, "/k").taskIDs
	if code, _ := send(t, s, http.MethodPost, "/v2/tasks/delete?scale=true", `{"ids":["`+ids[0]+`","nope"]}`); code != http.StatusNotFound {
		t.Fatalf("unknown id: %d, want 404", code)
	}
	if st := getApp(t, s, "/k"); len(st.taskIDs) != 3 {
		t.Fatalf("a refused delete killed tasks: %v", st.taskIDs)
	}
	if code, _ := send(t, s, http.MethodPost, "/v2/tasks/delete?scale=true", `{"ids":["`+ids[0]+`"]}`); code != http.StatusOK {
		t.Fatalf("delete with scale: %d", code)
	}
	st := getApp(t, s, "/k")
	if st.instances != 2 || len(st.taskIDs) != 2 || st.taskIDs[0] != ids[1] {
		t.Fatalf("after delete with scale: %+v", st)
	}
	code, body := send(t, s, http.MethodPost, "/v2/tasks/delete", `{"ids":["`+ids[1]+`"]}`)
	if code != http.StatusOK || len(body["tasks"].([]any)) != 1 {
		t.Fatalf("delete without scale: %d %v", code, body)
	}
	st = getApp(t, s, "/k")
	if st.instances != 2 || len(st.taskIDs) != 2 || strings.Contains(strings.Join(st.taskIDs, ","), ids[1]) {
		t.Errorf("after delete without scale: %+v, want the task replaced", st)
	}
	if code, _ := send(t, s, http.MethodPost, "/v2/tasks/delete", `{"ids":`); code != http.StatusBadRequest {
		t.Errorf("bad body: %d, want 400", code)
	}
}

// TestLauncherSeesEveryTask: the start hook gets each launched task (its id and ports) before
// clients see it, and a failing start leaves the task out; the stop hook gets every kill.
func TestLauncherSeesEveryTask(t *testing.T) {
	s := start(t)
	var mu sync.Mutex
	started, stopped := map[string][]int{}, map[string]bool{}
	fail := 1
	s.SetLauncher(func(appID, taskID, host string, ports []int) error {
		mu.Lock()
		defer mu.Unlock()
		if appID != "/l" || host != "127.0.0.1" || len(ports) != 2 {
			t.Errorf("start(%s, %s, %s, %v)", appID, taskID, host, ports)
		}
		if fail > 0 {
			fail--
			return errors.New("no backend")
		}
		started[taskID] = ports
		return nil
	}, func(taskID string) {
		mu.Lock()
		defer mu.Unlock()
		stopped[taskID] = true
	})
	send(t, s, http.MethodPost, "/v2/apps", `{"id":"/l","cmd":"x","instances":2,"portDefinitions":[{"port":0},{"port":0}]}`)
	st := getApp(t, s, "/l")
	if len(st.taskIDs) != 0 || len(st.deployments) != 1 {
		t.Fatalf("after a failed start: %+v, want no task and the deployment under way", st)
	}
	// The next step (here a forced scale, which starts over) launches both.
	send(t, s, http.MethodPut, "/v2/apps/l?force=true", `{"instances":2}`)
	st = getApp(t, s, "/l")
	mu.Lock()
	for _, id := range st.taskIDs {
		if started[id] == nil {
			t.Errorf("task %s is visible but was never started", id)
		}
	}
	mu.Unlock()
	if len(st.taskIDs) != 2 {
		t.Fatalf("tasks %v, want 2", st.taskIDs)
	}
	send(t, s, http.MethodDelete, "/v2/apps/l", "")
	mu.Lock()
	defer mu.Unlock()
	for _, id := range st.taskIDs {
		if !stopped[id] {
			t.Errorf("task %s killed without the stop hook", id)
		}
	}
}

// TestLaunchDelayLaunchesOverTime: with a short delay a deployment launches its tasks one per
// step and ends, emitting deployment_success.
func TestLaunchDelayLaunchesOverTime(t *testing.T) {
	s := start(t)
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")
	s.SetLaunchDelay(10 * time.Millisecond)
	send(t, s, http.MethodPost, "/v2/apps", `{"id":"/t","cmd":"x","instances":3}`)
	st.expect("api_post_event")
	st.expect("deployment_info")
	running := 0
	for running < 3 {
		ev := st.event()
		if ev.Type == "status_update_event" && ev.decode(t)["taskStatus"] == "TASK_RUNNING" {
			running++
		}
	}
	st.expect("deployment_success")
	if got := getApp(t, s, "/t"); len(got.deployments) != 0 || len(got.taskIDs) != 3 {
		t.Errorf("after the deployment: %+v", got)
	}
}

// TestRefusedLaunchIsRetriedWithoutDelay: with no launch delay, a task the start hook
// refuses once (its port taken, say) is launched again shortly, and the deployment ends;
// before, nothing moved the deployment on and it stayed under way for ever.
func TestRefusedLaunchIsRetriedWithoutDelay(t *testing.T) {
	s := start(t)
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")
	var mu sync.Mutex
	refusals := 0
	s.SetLauncher(func(appID, taskID, host string, ports []int) error {
		mu.Lock()
		defer mu.Unlock()
		if refusals == 0 {
			refusals++
			return errors.New("port taken")
		}
		return nil
	}, nil)
	send(t, s, http.MethodPost, "/v2/apps", `{"id":"/t","cmd":"x","instances":2}`)
	st.expect("api_post_event")
	st.expect("deployment_info")
	// Keepalives keep the stream alive: the deployment must end within a deadline of its own.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := st.frame(time.Until(deadline))
		if err != nil {
			t.Fatalf("no deployment_success within 10s (the refused launch was not retried): %v", err)
		}
		if f.Type == "deployment_success" {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if refusals != 1 {
		t.Errorf("the start hook refused %d launches, want 1", refusals)
	}
	if got := getApp(t, s, "/t"); len(got.deployments) != 0 || len(got.taskIDs) != 2 {
		t.Errorf("after the deployment: %+v", got)
	}
}
