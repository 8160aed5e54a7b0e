package discovery

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fixtureTask is an eligible task of a fixture app and where it serves each app port.
type fixtureTask struct {
	id        string
	endpoints []Endpoint
}

type fixtureApp struct {
	id             string
	instances      int
	network        NetworkMode
	servicePorts   []int
	containerPorts []int
	labels         map[string]string // a subset of the app's labels
	eligible       []fixtureTask     // sorted by task id, as the registry keeps them
}

// The expected values below were read off the JSON files by hand.
//
// Networking: Marathon 1.5+ `networks[0].mode` decides ("container/bridge" → bridge,
// "container" → container, "host" → host); without it, pre-1.5 `container.docker.network`
// ("BRIDGE" → bridge, "USER" → container, "HOST" → host), then a pre-1.5 `ipAddress` block means
// IP-per-task. The ci_backends_1.9 files carry both `networks: [{mode: container/bridge}]` and
// an older `container.docker.network` (BRIDGE, HOST, even USER next to an `ipAddress`): Marathon
// 1.5+ treats `networks` as authoritative, so every one of them is bridge.
//
// Ports: bridge and container apps take their ports from `container.portMappings` (1.5+) or
// `container.docker.portMappings` (older); host apps from `portDefinitions`, else `ports`.
// A mapping without servicePort has service port 0 (Marathon assigns one on deploy).
var marathonFixtures = map[string][]fixtureApp{
	"marathon15_apps.json": {{
		id: "/pywebserver", instances: 1, network: NetworkBridge,
		servicePorts: []int{10101}, containerPorts: []int{80},
		labels: map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "myvhost.com"},
		eligible: []fixtureTask{
			{"pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc", []Endpoint{{"10.0.2.148", 1565}}},
		},
	}},
	// Pre-1.4 tasks carry no "state"; a startedAt makes them running. Bridge endpoints are the
	// agent host and the host port, not the Docker bridge address in ipAddresses.
	"zdd_apps.json": {
		{
			id: "/nginx-green", instances: 3, network: NetworkBridge,
			servicePorts: []int{10000}, containerPorts: []int{8080},
			labels: map[string]string{"HAPROXY_DEPLOYMENT_COLOUR": "green", "HAPROXY_0_PORT": "10000"},
			eligible: []fixtureTask{
				{"nginx-green.0dbabba6-c931-11e5-9836-026ee08d9f6f", []Endpoint{{"10.0.6.25", 31184}}},
				{"nginx-green.1883a887-c931-11e5-9836-026ee08d9f6f", []Endpoint{{"10.0.6.25", 16916}}},
				{"nginx-green.23532518-c931-11e5-9836-026ee08d9f6f", []Endpoint{{"10.0.6.25", 23336}}},
			},
		},
		{
			// The app lists "ports": [10001] too; for bridge the port mapping is what counts.
			id: "/nginx-blue", instances: 1, network: NetworkBridge,
			servicePorts: []int{10001}, containerPorts: []int{8080},
			labels: map[string]string{"HAPROXY_DEPLOYMENT_COLOUR": "blue", "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "3"},
			eligible: []fixtureTask{
				{"nginx-blue.3a58a46a-c937-11e5-9836-026ee08d9f6f", []Endpoint{{"10.0.1.147", 25724}}},
			},
		},
	},
	"zdd_app_blue.json": {{
		id: "/nginx-green", instances: 3, network: NetworkBridge,
		servicePorts: []int{10000}, containerPorts: []int{8080},
		labels: map[string]string{"HAPROXY_DEPLOYMENT_GROUP": "nginx"},
		eligible: []fixtureTask{
			{"nginx-green.0dbabba6-c931-11e5-9836-026ee08d9f6f", []Endpoint{{"10.0.6.25", 31184}}},
			{"nginx-green.1883a887-c931-11e5-9836-026ee08d9f6f", []Endpoint{{"10.0.6.25", 16916}}},
			// This task has no ipAddresses at all; bridge does not need them.
			{"nginx-green.23532518-c931-11e5-9836-026ee08d9f6f", []Endpoint{{"10.0.6.25", 23336}}},
		},
	}},
	"zdd_app_blue_marathon1.5.json": {{
		id: "/nginx-green", instances: 3, network: NetworkBridge,
		servicePorts: []int{10000}, containerPorts: []int{8080},
		labels: map[string]string{"HAPROXY_DEPLOYMENT_ALT_PORT": "10001"},
		eligible: []fixtureTask{
			{"nginx-green.01bf22d4-68a7-11e7-a229-e6a514ca0c21", []Endpoint{{"10.0.6.25", 23336}}},
			{"nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21", []Endpoint{{"10.0.6.25", 16916}}},
			{"nginx-green.01dc95e6-68a7-11e7-a229-e6a514ca0c21", []Endpoint{{"10.0.6.25", 31184}}},
		},
	}},
	// App definitions as POSTed: relative id, no tasks.
	"1-nginx.json": {{
		id: "/nginx", instances: 5, network: NetworkBridge,
		servicePorts: []int{10000}, containerPorts: []int{8080},
		labels: map[string]string{"HAPROXY_DEPLOYMENT_GROUP": "nginx"},
	}},
	"1-nginx-marathon1.5.json": {{
		id: "/nginx", instances: 5, network: NetworkBridge,
		servicePorts: []int{10000}, containerPorts: []int{8080},
		labels: map[string]string{"HAPROXY_DEPLOYMENT_ALT_PORT": "10001"},
	}},
	"ci_backends/docker_bridge.json": {{
		id: "/nginx-docker-bridge", instances: 4, network: NetworkBridge,
		servicePorts: []int{0}, containerPorts: []int{80},
		labels: map[string]string{"HAPROXY_0_PORT": "10100"},
	}},
	// docker.network HOST, no `networks`: host, ports from portDefinitions.
	"ci_backends/docker_host.json": {{
		id: "/nginx-docker-host", instances: 4, network: NetworkHost,
		servicePorts: []int{0}, containerPorts: []int{0},
		labels: map[string]string{"HAPROXY_0_PORT": "10300"},
	}},
	// No `networks`, no docker.network, but an `ipAddress` block: IP-per-task.
	"ci_backends/docker_ippc.json": {{
		id: "/nginx-docker-ippc", instances: 4, network: NetworkContainer,
		servicePorts: []int{0}, containerPorts: []int{80},
		labels: map[string]string{"HAPROXY_0_PORT": "10200"},
	}},
	"ci_backends/ucr_bridge.json": {{
		id: "/nginx-ucr-bridge", instances: 4, network: NetworkBridge,
		servicePorts: []int{0}, containerPorts: []int{80},
		labels: map[string]string{"HAPROXY_0_PORT": "10500"},
	}},
	"ci_backends/ucr_host.json": {{
		id: "/nginx-ucr-host", instances: 4, network: NetworkHost,
		servicePorts: []int{10003}, containerPorts: []int{0},
		labels: map[string]string{"HAPROXY_0_PORT": "10400"},
	}},
	// Container networking without portMappings: the app declares no ports at all.
	"ci_backends/ucr_ippc.json": {{
		id: "/nginx-ucr-ippc", instances: 4, network: NetworkContainer,
		labels: map[string]string{"HAPROXY_0_PORT": "10600"},
	}},
	"ci_backends_1.9/docker_bridge.json": {{
		id: "/nginx-docker-bridge", instances: 4, network: NetworkBridge,
		servicePorts: []int{0}, containerPorts: []int{80},
		labels: map[string]string{"HAPROXY_0_VHOST": "nginx-docker-bridge.test"},
	}},
	// docker.network says HOST, `networks` says container/bridge: `networks` wins.
	"ci_backends_1.9/docker_host.json": {{
		id: "/nginx-docker-host", instances: 4, network: NetworkBridge,
		servicePorts: []int{0}, containerPorts: []int{80},
		labels: map[string]string{"HAPROXY_0_VHOST": "nginx-docker-host.test"},
	}},
	// docker.network USER and an ipAddress block, but `networks` says container/bridge.
	"ci_backends_1.9/docker_ippc.json": {{
		id: "/nginx-docker-ippc", instances: 4, network: NetworkBridge,
		servicePorts: []int{0}, containerPorts: []int{80},
		labels: map[string]string{"HAPROXY_0_VHOST": "nginx-docker-ippc.test"},
	}},
	"ci_backends_1.9/ucr_host.json": {{
		id: "/nginx-ucr-host", instances: 4, network: NetworkBridge,
		servicePorts: []int{0}, containerPorts: []int{80},
		labels: map[string]string{"HAPROXY_0_VHOST": "nginx-ucr-host.test"},
	}},
}

// Every JSON file under testdata/marathon must have an entry, so a new fixture cannot be
// added without stating what it decodes to.
func TestMarathonFixturesAllListed(t *testing.T) {
	var found []string
	err := filepath.WalkDir(filepath.Join("testdata", "marathon"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
			return err
		}
		rel, err := filepath.Rel(filepath.Join("testdata", "marathon"), p)
		found = append(found, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if _, ok := marathonFixtures[f]; !ok {
			t.Errorf("fixture %s has no entry in marathonFixtures", f)
		}
	}
	for f := range marathonFixtures {
		if !slices.Contains(found, f) {
			t.Errorf("marathonFixtures lists %s, which is not under testdata/marathon", f)
		}
	}
}

func TestMarathonFixtures(t *testing.T) {
	for name, want := range marathonFixtures {
		t.Run(name, func(t *testing.T) {
			apps := decodeFixture(t, filepath.Join("marathon", name))
			if len(apps) != len(want) {
				t.Fatalf("decoded %d apps, want %d", len(apps), len(want))
			}
			// Eligibility is derived when the registry takes the apps over.
			st := newState(t, apps...)
			for i, w := range want {
				if apps[i].ID != w.id {
					t.Errorf("app %d: id %q, want %q", i, apps[i].ID, w.id)
				}
				a := st.apps.Get(w.id)
				if a == nil {
					t.Fatalf("app %s not in the registry state", w.id)
				}
				checkFixtureApp(t, a, w)
			}
		})
	}
}

func checkFixtureApp(t *testing.T, a *App, w fixtureApp) {
	t.Helper()
	if a.Network != w.network {
		t.Errorf("%s: network %q, want %q", w.id, a.Network, w.network)
	}
	if a.Instances != w.instances {
		t.Errorf("%s: instances %d, want %d", w.id, a.Instances, w.instances)
	}
	var service, container []int
	for _, p := range a.Ports {
		service = append(service, p.ServicePort)
		container = append(container, p.ContainerPort)
	}
	if !slices.Equal(service, w.servicePorts) {
		t.Errorf("%s: service ports %v, want %v", w.id, service, w.servicePorts)
	}
	if !slices.Equal(container, w.containerPorts) {
		t.Errorf("%s: container ports %v, want %v", w.id, container, w.containerPorts)
	}
	if g := a.Labels["HAPROXY_GROUP"]; g != "external" {
		t.Errorf("%s: label HAPROXY_GROUP = %q, want external", w.id, g)
	}
	for k, v := range w.labels {
		if a.Labels[k] != v {
			t.Errorf("%s: label %s = %q, want %q", w.id, k, a.Labels[k], v)
		}
	}
	eligible := a.EligibleTasks()
	if len(eligible) != len(w.eligible) {
		for _, tk := range a.Tasks {
			t.Logf("%s: task %s state %s eligible %t reason %q", w.id, tk.ID, tk.State, tk.Eligible, tk.Reason)
		}
		t.Fatalf("%s: %d eligible tasks, want %d", w.id, len(eligible), len(w.eligible))
	}
	for i, wt := range w.eligible {
		got := eligible[i]
		if got.ID != wt.id {
			t.Errorf("%s: eligible task %d is %s, want %s", w.id, i, got.ID, wt.id)
			continue
		}
		if got.AppID != w.id {
			t.Errorf("task %s: AppID %q, want %q", got.ID, got.AppID, w.id)
		}
		if !slices.Equal(got.Endpoints, wt.endpoints) {
			t.Errorf("task %s: endpoints %v, want %v", got.ID, got.Endpoints, wt.endpoints)
		}
	}
}

// Details of the 1.5 fixture that the table does not cover: health checks, task fields,
// pre-1.4 task state inference.
func TestMarathonFixtureDetails(t *testing.T) {
	green := decodeFixture(t, "marathon/zdd_app_blue_marathon1.5.json")[0]
	wantHC := []HealthCheck{{
		Protocol: "MESOS_HTTP", Path: "/", PortIndex: 0, GracePeriodSeconds: 15, IntervalSeconds: 3,
		TimeoutSeconds: 15, MaxConsecutiveFailures: 10,
	}}
	if !reflect.DeepEqual(green.HealthChecks, wantHC) {
		t.Errorf("health checks %+v, want %+v", green.HealthChecks, wantHC)
	}
	if green.Version != "2017-07-14T15:13:34.402Z" {
		t.Errorf("version %q", green.Version)
	}
	// Decoded in payload order; the registry sorts them later.
	first := green.Tasks[0]
	wantTask := &Task{
		ID: "nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21", AppID: "/nginx-green", Host: "10.0.6.25",
		SlaveID: "c28a2184-c702-482c-91c8-5af9318434d4-S0", State: StateRunning,
		IPAddresses: []string{"172.17.0.2"}, HostPorts: []int{16916},
		StagedAt: "2017-07-14T15:13:35.804Z", StartedAt: "2017-07-14T15:13:58.326Z",
		Version: "2017-07-14T15:13:34.402Z", Health: []HealthResult{{Alive: true}},
	}
	if !reflect.DeepEqual(first, wantTask) {
		t.Errorf("first task\n got %+v\nwant %+v", first, wantTask)
	}

	// zdd_apps.json predates task states: startedAt set → TASK_RUNNING.
	for _, a := range decodeFixture(t, "marathon/zdd_apps.json") {
		for _, tk := range a.Tasks {
			if tk.State != StateRunning {
				t.Errorf("%s: state %q, want %s (inferred from startedAt)", tk.ID, tk.State, StateRunning)
			}
		}
	}
}

func TestDecodeMarathonAppsShapes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantIDs []string
		// wantAppErrs are the AppIDs of the AppErrors, in order.
		wantAppErrs []string
		wantErr     string
	}{
		{name: "apps envelope", in: `{"apps":[{"id":"/a"},{"id":"b"}]}`, wantIDs: []string{"/a", "/b"}},
		{name: "app envelope", in: `{"app":{"id":"/a/b"}}`, wantIDs: []string{"/a/b"}},
		{name: "bare definition", in: `{"id":"web","instances":2}`, wantIDs: []string{"/web"}},
		{name: "array", in: ` [{"id":"/a"},{"id":"/b"}] `, wantIDs: []string{"/a", "/b"}},
		{name: "empty apps", in: `{"apps":[]}`, wantIDs: nil},
		{
			name: "one bad app among good ones", in: `{"apps":[{"id":"/a"},{"id":"/bad","instances":"x"},{"id":"/c"}]}`,
			wantIDs: []string{"/a", "/c"}, wantAppErrs: []string{"/bad"},
		},
		{
			name: "bad app without id", in: `{"apps":[{"instances":"x"},{"id":"/b"}]}`,
			wantIDs: []string{"/b"}, wantAppErrs: []string{"#0"},
		},
		{
			name: "app with missing id", in: `{"apps":[{"instances":1},{"id":"/b"}]}`,
			wantIDs: []string{"/b"}, wantAppErrs: []string{"(no id)"},
		},
		{name: "empty", in: "  \n", wantErr: "empty document"},
		{name: "malformed", in: `{"apps":[`, wantErr: "malformed Marathon apps JSON"},
		{name: "not marathon", in: `{"frameworks":[]}`, wantErr: `no "apps", "app" or "id" key`},
		{name: "apps not a list", in: `{"apps":{"id":"/a"},"x":1,"y":[}`, wantErr: "malformed"},
		{name: "apps is a string", in: `{"apps":"nope"}`, wantErr: "malformed Marathon apps list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, appErrs, err := DecodeMarathonApps([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			var ids []string
			for _, a := range apps {
				ids = append(ids, a.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("ids %v, want %v", ids, tt.wantIDs)
			}
			var errIDs []string
			for _, e := range appErrs {
				var ae *AppError
				if !errors.As(e, &ae) {
					t.Fatalf("app error %v (%T) is not an *AppError", e, e)
				}
				if !strings.Contains(e.Error(), ae.AppID) {
					t.Errorf("error %q does not name the app %q", e, ae.AppID)
				}
				errIDs = append(errIDs, ae.AppID)
			}
			if !slices.Equal(errIDs, tt.wantAppErrs) {
				t.Errorf("app errors for %v, want %v (errors: %v)", errIDs, tt.wantAppErrs, appErrs)
			}
		})
	}
}

func TestDecodeMesosStateFixture(t *testing.T) {
	st, err := DecodeMesosState(readFixture(t, "state_fake.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != "1.2.3.4:5050" || st.LeaderPID != "master@1.2.3.4:5050" || st.Hostname != "localhost" {
		t.Errorf("leader %q, pid %q, hostname %q; want 1.2.3.4:5050, master@1.2.3.4:5050, localhost",
			st.Leader, st.LeaderPID, st.Hostname)
	}
	wantAgents := []Agent{
		{ID: "20140916-194712-631065744-5050-4798-2", Hostname: "1.2.3.10", PID: "slave(1)@1.2.3.10:5051"},
		{ID: "20140803-125133-3041283216-5050-2410-0", Hostname: "1.2.3.11", PID: "slave(1)@1.2.3.11:5051"},
		{ID: "20140827-000744-3041283216-5050-2116-1", Hostname: "1.2.3.12", PID: "slave(1)@1.2.3.12:5051"},
		{ID: "20140803-194712-3041283216-5050-2116-3", Hostname: "2001:db8::1", PID: "slave(1)@[2001:db8::1]:5051"},
	}
	if !reflect.DeepEqual(st.Agents, wantAgents) {
		t.Errorf("agents\n got %+v\nwant %+v", st.Agents, wantAgents)
	}
	if len(st.Masters) != 0 {
		t.Errorf("masters %v: a state file alone knows none", st.Masters)
	}

	type fw struct {
		id, name, pid, hostname string
		tasks                   int
	}
	wantFWs := []fw{
		{"20140703-014514-3041283216-5050-5349-0001", "ipv6-framework", "scheduler(1)@[2001:db8::1]:25501", "localhost", 1},
		{"20140703-014514-3041283216-5050-5348-0001", "chronos with a space AND MIXED CASE-2.0.1", "scheduler(2)@1.2.3.12:25501", "localhost", 1},
		{"20140703-014514-3041283216-5050-5348-0002", "no pid", "", "localhost", 0},
		{"20140703-014514-3041283216-5050-5348-0000", "marathon", "scheduler(1)@1.2.3.11:25501", "google.com", 8},
	}
	var gotFWs []fw
	for _, f := range st.Frameworks {
		gotFWs = append(gotFWs, fw{f.ID, f.Name, f.PID, f.Hostname, len(f.Tasks)})
	}
	if !reflect.DeepEqual(gotFWs, wantFWs) {
		t.Errorf("frameworks\n got %+v\nwant %+v", gotFWs, wantFWs)
	}
	if len(st.Frameworks) != 4 {
		t.FailNow()
	}

	toy := st.Frameworks[0].Tasks[0]
	wantToy := MesosTask{
		ID: "toy-store.b8db9f73-562f-11e4-a088-c20493233aa5", Name: "toy-store",
		FrameworkID: "20140703-014514-3041283216-5050-5349-0001", SlaveID: "20140803-194712-3041283216-5050-2116-3",
		State: StateRunning, Ports: []int{31354, 31355},
		Statuses: []MesosTaskStatus{{
			State: StateRunning, Timestamp: 1507139816.34576,
			// Two network_infos: the first has one address, the second an IPv4 and an IPv6.
			NetworkIPs: []string{"12.0.1.3", "12.0.1.2", "fd01:b::1:8000:2"},
		}},
	}
	if !reflect.DeepEqual(toy, wantToy) {
		t.Errorf("toy-store task\n got %+v\nwant %+v", toy, wantToy)
	}

	marathon := st.Frameworks[3].Tasks
	byName := func(name string) *MesosTask {
		for i := range marathon {
			if marathon[i].Name == name {
				return &marathon[i]
			}
		}
		t.Fatalf("no marathon task named %q", name)
		return nil
	}
	namedPorts := []DiscoveryPort{{Number: 80, Protocol: "tcp", Name: "http"}, {Number: 443, Protocol: "tcp", Name: "https"}}
	// Two tasks share the DiscoveryInfo name liquor.store (one named so, one not human readable);
	// big.dog2's DiscoveryInfo is named big.dog.
	for _, c := range []struct{ task, discovery string }{
		{"liquor.store", "liquor.store"},
		{"non-human-readable-liquor-store", "liquor.store"},
		{"big.dog2", "big.dog"},
	} {
		tk := byName(c.task)
		want := &DiscoveryInfo{Name: c.discovery, Ports: namedPorts}
		if !reflect.DeepEqual(tk.Discovery, want) {
			t.Errorf("%s: discovery %+v, want %+v", c.task, tk.Discovery, want)
		}
	}

	liquor := byName("liquor.store")
	if !slices.Equal(liquor.Ports, []int{31354, 31355}) {
		t.Errorf("liquor.store ports %v, want [31354 31355] (from \"[31354-31354, 31355-31355]\")", liquor.Ports)
	}
	wantStatuses := []MesosTaskStatus{
		{State: StateRunning, Timestamp: 1413572371.04321, Labels: []Label{{"foo", "bar"}, {"Docker.NetworkSettings.IPAddress", "10.3.0.4"}}},
		{State: StateRunning, Timestamp: 1413572390.09275, Labels: []Label{{"foo", "bar"}, {"Docker.NetworkSettings.IPAddress", "10.3.0.1"}}},
		{State: StateRunning, Timestamp: 1413572381.0123, Labels: []Label{{"foo", "bar"}, {"container-ip", ""}}},
		{State: StateStarting, Timestamp: 1413572380.01234},
	}
	if !reflect.DeepEqual(liquor.Statuses, wantStatuses) {
		t.Errorf("liquor.store statuses\n got %+v\nwant %+v", liquor.Statuses, wantStatuses)
	}

	for _, c := range []struct {
		task  string
		ports []int
		state string
	}{
		{"non-human-readable-liquor-store", []int{31737, 31738}, StateRunning},
		{"car.store", []int{31364, 31365}, StateRunning},
		{"nginx", nil, StateRunning}, // "[]"
		{"poseidon.bc4e3796-2d7a-11e4-b8df-d43d7edb01cd", []int{31112}, "TASK_KILLED"},
	} {
		tk := byName(c.task)
		if !slices.Equal(tk.Ports, c.ports) || tk.State != c.state {
			t.Errorf("%s: ports %v state %s, want %v %s", c.task, tk.Ports, tk.State, c.ports, c.state)
		}
	}
	if l := byName("nginx").Statuses[0].Labels; !reflect.DeepEqual(l, []Label{{"MesosContainerizer.NetworkSettings.IPAddress", "10.3.0.3"}}) {
		t.Errorf("nginx status labels %v", l)
	}
	if l := byName("poseidon.bc4e3796-2d7a-11e4-b8df-d43d7edb01cd").Statuses[0].Labels; !reflect.DeepEqual(l, []Label{{"foo", "bar"}}) {
		t.Errorf("poseidon status labels %v", l)
	}
}

func TestDecodeMesosStateErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"malformed", `{"leader":`, "malformed Mesos state JSON"},
		{"not a state", `{"apps":[]}`, "not a Mesos master state"},
		{"bad port range", `{"leader":"master@1.2.3.4:5050","frameworks":[{"name":"marathon","tasks":[{"id":"t1","resources":{"ports":"[31002-31000]"}}]}]}`, `framework "marathon", task t1: ports resource`},
		{"bad labels", `{"frameworks":[{"name":"m","tasks":[{"id":"t1","labels":{"labels":"x"}}]}]}`, "task t1: labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := DecodeMesosState([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if st != nil {
				t.Errorf("state %+v returned with an error", st)
			}
		})
	}
}

func TestDecodeMesosStateLeaderInfo(t *testing.T) {
	st, err := DecodeMesosState([]byte(`{"leader":"master@10.0.0.1:5050","leader_info":{"hostname":"m1","port":5050,"address":{"ip":"2001:db8::5","port":5050}},"slaves":[],"frameworks":[{"name":"f","tasks":[{"id":"t","labels":{"labels":[{"key":"k","value":"v"}]}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != "[2001:db8::5]:5050" || st.LeaderPID != "master@10.0.0.1:5050" {
		t.Errorf("leader %q pid %q", st.Leader, st.LeaderPID)
	}
	if l := st.Frameworks[0].Tasks[0].Labels; !reflect.DeepEqual(l, []Label{{"k", "v"}}) {
		t.Errorf("labels in the {\"labels\":[…]} shape: %v", l)
	}
}

func TestParsePortRanges(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "[31354-31354, 31355-31355]", want: []int{31354, 31355}},
		{in: "[31000-31002, 31005-31005]", want: []int{31000, 31001, 31002, 31005}},
		{in: "[80]", want: []int{80}},
		{in: "[]", want: nil},
		{in: "", want: nil},
		{in: " [ 1-2 ] ", want: []int{1, 2}},
		{in: "[31002-31000]", wantErr: true},
		{in: "[0-65536]", wantErr: true},
		{in: "[a-b]", wantErr: true},
		{in: "[-5-3]", wantErr: true},
		{in: "[1-20000]", wantErr: true}, // more than maxTaskPorts
	}
	for _, tt := range tests {
		got, err := ParsePortRanges(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePortRanges(%q) err = %v, wantErr %t", tt.in, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParsePortRanges(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// A document naming one app twice is rejected whole: there is no telling which copy was meant.
func TestDecodeRejectsDuplicateAppIDs(t *testing.T) {
	_, _, err := DecodeMarathonApps([]byte(`{"apps":[{"id":"/a"},{"id":"/b"},{"id":"a"}]}`))
	if err == nil || !strings.Contains(err.Error(), "listed more than once: [/a]") {
		t.Fatalf("err = %v, want the duplicated id named", err)
	}
}
