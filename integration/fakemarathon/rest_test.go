package fakemarathon

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// stripComputed removes the fields the server computes.
func stripComputed(app map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range app {
		out[k] = v
	}
	for _, k := range computedFields {
		delete(out, k)
	}
	return out
}

func appsByID(t *testing.T, body map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, a := range body["apps"].([]any) {
		m := a.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

func TestAppsRoundTripFixtures(t *testing.T) {
	s := start(t)
	load(t, s, "marathon15_apps.json", "zdd_apps.json")

	code, body := getJSON(t, s, "/v2/apps?embed=apps.tasks&embed=apps.counts&embed=apps.deployments")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	var ids []string
	for _, a := range body["apps"].([]any) {
		ids = append(ids, a.(map[string]any)["id"].(string))
	}
	if want := []string{"/nginx-blue", "/nginx-green", "/pywebserver"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	served := appsByID(t, body)
	for _, fixture := range []string{"marathon15_apps.json", "zdd_apps.json"} {
		for _, a := range readFixture(t, fixture)["apps"].([]any) {
			want := a.(map[string]any)
			got := served[want["id"].(string)]
			if !reflect.DeepEqual(stripComputed(got), stripComputed(want)) {
				t.Errorf("%s: app %s does not round-trip:\n got %v\nwant %v", fixture, want["id"], got, want)
			}
			// Counts, deployments and tasks match the fixture, which
			// Marathon computed the same way.
			for _, k := range []string{"tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments"} {
				if !reflect.DeepEqual(got[k], want[k]) {
					t.Errorf("%s: %s: %s = %v, want %v", fixture, want["id"], k, got[k], want[k])
				}
			}
		}
	}

	// Without embed=apps.tasks there is no tasks key; counts and
	// deployments are always there, readiness never.
	_, body = getJSON(t, s, "/v2/apps")
	for id, a := range appsByID(t, body) {
		if _, ok := a["tasks"]; ok {
			t.Errorf("%s: tasks embedded without embed=apps.tasks", id)
		}
		if _, ok := a["readinessCheckResults"]; ok {
			t.Errorf("%s: readiness embedded without embed=apps.readiness", id)
		}
		if _, ok := a["tasksRunning"]; !ok {
			t.Errorf("%s: no counts", id)
		}
		if d, ok := a["deployments"].([]any); !ok || len(d) != 0 {
			t.Errorf("%s: deployments = %v", id, a["deployments"])
		}
	}
	if got := s.Requests("/v2/apps"); got != 2 {
		t.Errorf("Requests(/v2/apps) = %d, want 2", got)
	}
}

func TestAppsEmbedDeploymentsReadiness(t *testing.T) {
	s := start(t)
	load(t, s, "marathon15_apps.json")
	s.SetDeployments("pywebserver", []string{"d1", "d2"})
	s.SetReadiness("/pywebserver", []map[string]any{{"name": "ready", "ready": true}})

	_, body := getJSON(t, s, "/v2/apps?embed=apps.deployments&embed=apps.readiness")
	app := appsByID(t, body)["/pywebserver"]
	wantDeps := []any{map[string]any{"id": "d1"}, map[string]any{"id": "d2"}}
	if !reflect.DeepEqual(app["deployments"], wantDeps) {
		t.Errorf("deployments = %v", app["deployments"])
	}
	wantReady := []any{map[string]any{"name": "ready", "ready": true}}
	if !reflect.DeepEqual(app["readinessCheckResults"], wantReady) {
		t.Errorf("readinessCheckResults = %v", app["readinessCheckResults"])
	}
	if _, ok := app["tasks"]; ok {
		t.Error("tasks embedded without embed=apps.tasks")
	}
}

func TestSingleApp(t *testing.T) {
	s := start(t)
	load(t, s, "marathon15_apps.json")
	if err := s.AddApp(map[string]any{"id": "shop/web", "instances": 0, "labels": map[string]string{"A": "b"}}); err != nil {
		t.Fatal(err)
	}

	code, body := getJSON(t, s, "/v2/apps/pywebserver")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	app := body["app"].(map[string]any)
	if tasks, ok := app["tasks"].([]any); !ok || len(tasks) != 1 {
		t.Errorf("tasks = %v", app["tasks"])
	}
	want := readFixture(t, "marathon15_apps.json")["apps"].([]any)[0].(map[string]any)
	if !reflect.DeepEqual(stripComputed(app), stripComputed(want)) {
		t.Errorf("single app differs from fixture:\n got %v\nwant %v", app, want)
	}

	code, body = getJSON(t, s, "/v2/apps/shop/web")
	if code != 200 || body["app"].(map[string]any)["id"] != "/shop/web" {
		t.Errorf("nested id: %d %v", code, body)
	}
	if labels := body["app"].(map[string]any)["labels"]; !reflect.DeepEqual(labels, map[string]any{"A": "b"}) {
		t.Errorf("labels = %v", labels)
	}

	code, body = getJSON(t, s, "/v2/apps/shop/api")
	if code != 404 || body["message"] != "App '/shop/api' does not exist" {
		t.Errorf("unknown app: %d %v", code, body)
	}
}

func TestLoadAppsForms(t *testing.T) {
	s := New()
	for _, data := range []string{
		`{"apps":[{"id":"/a"},{"id":"b"}]}`,
		`{"app":{"id":"/c/d","tasks":[{"id":"c_d.1","host":"10.0.0.1"}]}}`,
		`{"id":"e","networks":[{"mode":"container/bridge"}]}`,
	} {
		if err := s.LoadApps([]byte(data)); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
	}
	if err := s.LoadAppsFile("testdata/1-nginx.json"); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadAppsFile("testdata/ci_backends/docker_bridge.json"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"/a", "/b", "/c/d", "/e", "/nginx", "/nginx-docker-bridge"} {
		if s.Tasks(id) == nil {
			t.Errorf("app %s not loaded", id)
		}
	}
	if got := s.Tasks("c/d"); len(got) != 1 || got[0]["host"] != "10.0.0.1" {
		t.Errorf("tasks of /c/d = %v", got)
	}
	for _, bad := range []string{`[]`, `{"apps":{}}`, `{"apps":[{"noid":1}]}`, `{"id":"/x"`, `{"id":"/x"} {}`} {
		if err := s.LoadApps([]byte(bad)); err == nil {
			t.Errorf("LoadApps(%s) succeeded", bad)
		}
	}
}

// info mirrors go-marathon v0.7.1's marathon.Info (the client lodestar
// uses), which this package cannot import.
type info struct {
	EventSubscriber struct {
		HTTPEndpoints []string `json:"http_endpoints"`
		Type          string   `json:"type"`
	} `json:"event_subscriber"`
	FrameworkID string `json:"frameworkId"`
	HTTPConfig  struct {
		AssetsPath any     `json:"assets_path"`
		HTTPPort   float64 `json:"http_port"`
		HTTPSPort  float64 `json:"https_port"`
	} `json:"http_config"`
	Leader         string `json:"leader"`
	MarathonConfig struct {
		Checkpoint                     bool    `json:"checkpoint"`
		Executor                       string  `json:"executor"`
		FailoverTimeout                float64 `json:"failover_timeout"`
		FrameworkName                  string  `json:"framework_name"`
		Ha                             bool    `json:"ha"`
		Hostname                       string  `json:"hostname"`
		LeaderProxyConnectionTimeoutMs float64 `json:"leader_proxy_connection_timeout_ms"`
		LeaderProxyReadTimeoutMs       float64 `json:"leader_proxy_read_timeout_ms"`
		LocalPortMax                   float64 `json:"local_port_max"`
		LocalPortMin                   float64 `json:"local_port_min"`
		Master                         string  `json:"master"`
		MesosLeaderUIURL               string  `json:"mesos_leader_ui_url"`
		WebUIURL                       string  `json:"webui_url"`
		MesosRole                      string  `json:"mesos_role"`
		MesosUser                      string  `json:"mesos_user"`
		ReconciliationInitialDelay     float64 `json:"reconciliation_initial_delay"`
		ReconciliationInterval         float64 `json:"reconciliation_interval"`
		TaskLaunchTimeout              float64 `json:"task_launch_timeout"`
		TaskReservationTimeout         float64 `json:"task_reservation_timeout"`
	} `json:"marathon_config"`
	Name            string `json:"name"`
	Version         string `json:"version"`
	ZookeeperConfig struct {
		Zk              string `json:"zk"`
		ZkFutureTimeout struct {
			Duration float64 `json:"duration"`
		} `json:"zk_future_timeout"`
		ZkHosts   string  `json:"zk_hosts"`
		ZkPath    string  `json:"zk_path"`
		ZkState   string  `json:"zk_state"`
		ZkTimeout float64 `json:"zk_timeout"`
	} `json:"zookeeper_config"`
}

// jsonFieldNames lists the json tags of a struct type, recursively, as
// dotted paths.
func jsonFieldNames(typ reflect.Type, prefix string) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := prefix + strings.Split(f.Tag.Get("json"), ",")[0]
		out = append(out, name)
		if f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFieldNames(f.Type, name+".")...)
		}
	}
	return out
}

func TestInfoLeaderPing(t *testing.T) {
	s := start(t)
	host := strings.TrimPrefix(s.URL(), "http://")

	code, raw := getJSON(t, s, "/v2/info")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, path := range jsonFieldNames(reflect.TypeOf(info{}), "") {
		var v any = raw
		for _, k := range strings.Split(path, ".") {
			m, _ := v.(map[string]any)
			var ok bool
			if v, ok = m[k]; !ok {
				t.Errorf("/v2/info lacks %s", path)
				break
			}
		}
	}
	var in info
	resp, err := http.Get(s.URL() + "/v2/info")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&in)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("decoding into marathon.Info: %v", err)
	}
	if in.Name != "marathon" || in.Version != "1.9.109" || in.Leader != host ||
		in.MarathonConfig.FrameworkName != "marathon" || in.MarathonConfig.Hostname != "127.0.0.1" ||
		in.MarathonConfig.MesosRole == "" || in.FrameworkID == "" || in.ZookeeperConfig.Zk == "" ||
		in.HTTPConfig.HTTPPort == 0 {
		t.Errorf("info = %+v", in)
	}

	s.SetInfo(func(m map[string]any) {
		m["version"] = "1.4.0"
		m["marathon_config"].(map[string]any)["mesos_role"] = "slave_public"
	})
	s.SetLeader("10.0.0.1:8080")
	_, raw = getJSON(t, s, "/v2/info")
	if raw["version"] != "1.4.0" || raw["leader"] != "10.0.0.1:8080" ||
		raw["marathon_config"].(map[string]any)["mesos_role"] != "slave_public" {
		t.Errorf("info after SetInfo = %v", raw)
	}
	if _, body := getJSON(t, s, "/v2/leader"); body["leader"] != "10.0.0.1:8080" {
		t.Errorf("leader = %v", body)
	}
	s.SetLeader("")
	if _, body := getJSON(t, s, "/v2/leader"); body["leader"] != host {
		t.Errorf("leader = %v, want %s", body, host)
	}

	for _, p := range []string{"/ping", "/v2/ping"} {
		resp, err := http.Get(s.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "pong" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("%s: %d %q %q", p, resp.StatusCode, b, resp.Header.Get("Content-Type"))
		}
	}
}

func TestLeaderField(t *testing.T) {
	s := start(t, func(s *Server) { s.Leader = "marathon-2:8080" })
	if _, body := getJSON(t, s, "/v2/leader"); body["leader"] != "marathon-2:8080" {
		t.Errorf("leader = %v", body)
	}
}

func TestStatusAuthAndAppsBody(t *testing.T) {
	s := start(t)
	load(t, s, "marathon15_apps.json")

	s.SetStatus(http.StatusServiceUnavailable)
	for _, p := range []string{"/v2/apps", "/v2/apps/pywebserver", "/v2/info", "/v2/events"} {
		if code, _ := getJSON(t, s, p); code != 503 {
			t.Errorf("%s with SetStatus(503): %d", p, code)
		}
	}
	s.SetStatus(0)

	s.SetBasicAuth("user", "secret")
	code, body := getJSON(t, s, "/v2/apps")
	if code != 401 || body["message"] != "Invalid username or password." {
		t.Errorf("without auth: %d %v", code, body)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/v2/apps", nil)
	req.SetBasicAuth("user", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	req.SetBasicAuth("user", "secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("right password: %d", resp.StatusCode)
	}
	s.SetBasicAuth("", "")

	huge := bytes.Repeat([]byte(" "), 50<<20)
	huge[0] = '{'
	for _, b := range [][]byte{[]byte(`{"apps":[{"id":`), huge} {
		s.SetAppsBody(b)
		resp, err := http.Get(s.URL() + "/v2/apps")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("overridden body: %d bytes, %v", len(got), err)
		}
	}
	s.SetAppsBody(nil)
	if _, body := getJSON(t, s, "/v2/apps"); len(body["apps"].([]any)) != 1 {
		t.Errorf("after SetAppsBody(nil): %v", body)
	}
	// The override is for the list only.
	if code, _ := getJSON(t, s, "/v2/apps/pywebserver"); code != 200 {
		t.Errorf("single app: %d", code)
	}
	if got := s.Requests("/v2/apps"); got != 7 {
		t.Errorf("Requests(/v2/apps) = %d, want 7", got)
	}
}

// A proxy that passes only /v2/apps and /v2/events hides who leads: /v2/leader and /v2/info
// answer 404 while the apps are served.
func TestNoLeaderEndpoints(t *testing.T) {
	s := start(t, func(s *Server) { s.NoLeaderEndpoints = true })
	load(t, s, "marathon15_apps.json")
	for _, path := range []string{"/v2/leader", "/v2/info"} {
		if code, _ := getJSON(t, s, path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
	if code, body := getJSON(t, s, "/v2/apps"); code != http.StatusOK || len(body["apps"].([]any)) == 0 {
		t.Errorf("GET /v2/apps = %d %v, want the apps", code, body)
	}
}
