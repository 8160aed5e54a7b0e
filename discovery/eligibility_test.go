package discovery

import (
	"reflect"
	"testing"
)

func TestEligibility(t *testing.T) {
	hostApp := func(opts ...appOption) *App {
		return application(append([]appOption{appID("/web"), withServicePorts(10000)}, opts...)...)
	}
	tests := []struct {
		name         string
		app          *App
		task         *Task
		wantEligible bool
		wantDraining bool
		wantReason   string
		wantEPs      []Endpoint
	}{
		{
			name: "running with host and ports", app: hostApp(),
			task:         task(host("10.0.0.1"), ports(31000)),
			wantEligible: true, wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "staging", app: hostApp(),
			task:       task(taskState(StateStaging), host("10.0.0.1"), ports(31000)),
			wantReason: "state TASK_STAGING", wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "starting", app: hostApp(),
			task:       task(taskState(StateStarting), host("10.0.0.1"), ports(31000)),
			wantReason: "state TASK_STARTING", wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "unreachable", app: hostApp(),
			task:       task(taskState("TASK_UNREACHABLE"), host("10.0.0.1"), ports(31000)),
			wantReason: "state TASK_UNREACHABLE", wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "killing is drained", app: hostApp(),
			task:         task(taskState(StateKilling), host("10.0.0.1"), ports(31000)),
			wantDraining: true, wantReason: "TASK_KILLING: draining", wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "killing and unhealthy is still drained", app: hostApp(withHealthCheck()),
			task:         task(taskState(StateKilling), host("10.0.0.1"), ports(31000), health(false)),
			wantDraining: true, wantReason: "TASK_KILLING: draining", wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "health check failing", app: hostApp(withHealthCheck()),
			task:       task(host("10.0.0.1"), ports(31000), health(false)),
			wantReason: "health check failing", wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "one of two health checks failing", app: hostApp(withHealthCheck(), withHealthCheck()),
			task:       task(host("10.0.0.1"), ports(31000), health(true, false)),
			wantReason: "health check failing", wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "all health checks passing", app: hostApp(withHealthCheck(), withHealthCheck()),
			task:         task(host("10.0.0.1"), ports(31000), health(true, true)),
			wantEligible: true, wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			// A fresh Marathon leader has no results yet: the task stays in (traefik#653).
			name: "health checks defined but no results yet", app: hostApp(withHealthCheck()),
			task:         task(host("10.0.0.1"), ports(31000)),
			wantEligible: true, wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "readiness false", app: hostApp(),
			task:       task(host("10.0.0.1"), ports(31000), ready(false)),
			wantReason: "readiness check not passed", wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "readiness true", app: hostApp(),
			task:         task(host("10.0.0.1"), ports(31000), ready(true)),
			wantEligible: true, wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name: "no host", app: hostApp(),
			task:       task(ports(31000)),
			wantReason: "no host",
		},
		{
			name: "missing host ports", app: hostApp(withServicePorts(10001)),
			task:       task(host("10.0.0.1"), ports(31000)),
			wantReason: "has 1 host ports, the app needs 2",
		},
		{
			name: "no host ports yet", app: hostApp(),
			task:       task(host("10.0.0.1")),
			wantReason: "has 0 host ports, the app needs 1",
		},
		{
			name: "host networking, two ports", app: hostApp(withServicePorts(10001)),
			task:         task(host("agent-1.example"), ports(31000, 31001)),
			wantEligible: true, wantEPs: []Endpoint{{"agent-1.example", 31000}, {"agent-1.example", 31001}},
		},
		{
			name: "app without ports routes nothing but counts as up", app: application(appID("/worker")),
			task:         task(host("10.0.0.1")),
			wantEligible: true,
		},
		{
			// Bridge: the agent's address and the mapped host port, never the Docker bridge IP.
			name:         "bridge uses host and host port",
			app:          application(appID("/b"), withNetwork(NetworkBridge), withPortMapping(80, 10000)),
			task:         task(host("10.0.0.1"), ports(31000), ipAddresses("172.17.0.2")),
			wantEligible: true, wantEPs: []Endpoint{{"10.0.0.1", 31000}},
		},
		{
			name:       "bridge without host port",
			app:        application(appID("/b"), withNetwork(NetworkBridge), withPortMapping(80, 10000)),
			task:       task(host("10.0.0.1"), ipAddresses("172.17.0.2")),
			wantReason: "has 0 host ports, the app needs 1",
		},
		{
			// A bridge task known only by its container IP has no agent address to route to.
			name:       "bridge without agent host",
			app:        application(appID("/b"), withNetwork(NetworkBridge), withPortMapping(80, 10000)),
			task:       task(ports(31000), ipAddresses("172.17.0.2")),
			wantReason: "no agent host (bridge networking)",
		},
		{
			name:         "container uses task IP and container port",
			app:          application(appID("/c"), withNetwork(NetworkContainer), withPortMapping(8080, 10000)),
			task:         task(host("10.0.0.1"), ports(31000), ipAddresses("9.0.0.7")),
			wantEligible: true, wantEPs: []Endpoint{{"9.0.0.7", 8080}},
		},
		{
			name:         "container prefers IPv4 over IPv6",
			app:          application(appID("/c"), withNetwork(NetworkContainer), withPortMapping(8080, 10000), withPortMapping(8443, 10001)),
			task:         task(host("10.0.0.1"), ipAddresses("fd01:b::1:8000:2", "not-an-ip", "9.0.0.7", "9.0.0.8")),
			wantEligible: true, wantEPs: []Endpoint{{"9.0.0.7", 8080}, {"9.0.0.7", 8443}},
		},
		{
			name:         "container with only IPv6",
			app:          application(appID("/c"), withNetwork(NetworkContainer), withPortMapping(8080, 10000)),
			task:         task(host("10.0.0.1"), ipAddresses("fd01:b::1:8000:2")),
			wantEligible: true, wantEPs: []Endpoint{{"fd01:b::1:8000:2", 8080}},
		},
		{
			name:         "container port 0 falls back to the host port",
			app:          application(appID("/c"), withNetwork(NetworkContainer), withPortMapping(0, 10000)),
			task:         task(ports(31000), ipAddresses("9.0.0.7")),
			wantEligible: true, wantEPs: []Endpoint{{"9.0.0.7", 31000}},
		},
		{
			name:       "container without task IP",
			app:        application(appID("/c"), withNetwork(NetworkContainer), withPortMapping(8080, 10000)),
			task:       task(host("10.0.0.1"), ports(31000)),
			wantReason: "no task IP address yet (container networking)",
		},
		{
			name:       "container without any port",
			app:        application(appID("/c"), withNetwork(NetworkContainer), withPortMapping(0, 10000)),
			task:       task(ipAddresses("9.0.0.7")),
			wantReason: "no container ports (container networking)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.app.Tasks = []*Task{tt.task}
			tt.task.AppID = tt.app.ID
			tt.task.ID = "t.1"
			prepare(tt.app)
			got := tt.app.Tasks[0]
			if got.Eligible != tt.wantEligible || got.Draining != tt.wantDraining || got.Reason != tt.wantReason {
				t.Errorf("eligible=%t draining=%t reason=%q, want eligible=%t draining=%t reason=%q",
					got.Eligible, got.Draining, got.Reason, tt.wantEligible, tt.wantDraining, tt.wantReason)
			}
			if tt.wantEligible && got.Reason != "" {
				t.Errorf("eligible task carries a reason %q", got.Reason)
			}
			eps := got.Endpoints
			if len(eps) == 0 {
				eps = nil
			}
			if !reflect.DeepEqual(eps, tt.wantEPs) {
				t.Errorf("endpoints %v, want %v", got.Endpoints, tt.wantEPs)
			}
			wantEligible := 0
			if tt.wantEligible {
				wantEligible = 1
			}
			if n := len(tt.app.EligibleTasks()); n != wantEligible {
				t.Errorf("EligibleTasks has %d tasks, want %d", n, wantEligible)
			}
		})
	}
}

// Eligibility follows state changes: resolve is re-run on every delta, and it must clear what
// an earlier state set (Draining, Reason).
func TestEligibilityFollowsDeltas(t *testing.T) {
	st := newState(t, application(appID("/web"), withServicePorts(10000), withHealthCheck(),
		withTasks(task(taskID("web.1"), host("10.0.0.1"), ports(31000)))))
	type view struct {
		eligible, draining bool
		reason             string
	}
	get := func() view {
		tk := st.apps.Get("/web").Task("web.1")
		return view{tk.Eligible, tk.Draining, tk.Reason}
	}
	steps := []struct {
		u    Update
		want view
	}{
		{TaskHealth{AppID: "/web", TaskID: "web.1", Alive: false}, view{false, false, "health check failing"}},
		{TaskHealth{AppID: "/web", TaskID: "web.1", Alive: true}, view{true, false, ""}},
		{TaskStatus{AppID: "/web", TaskID: "web.1", State: StateKilling}, view{false, true, "TASK_KILLING: draining"}},
		{TaskStatus{AppID: "/web", TaskID: "web.1", State: StateRunning}, view{true, false, ""}},
	}
	if got := get(); got != (view{true, false, ""}) {
		t.Fatalf("initial %+v", got)
	}
	for i, s := range steps {
		mustApply(t, st, s.u)
		if got := get(); got != s.want {
			t.Errorf("step %d (%s): %+v, want %+v", i, describe(s.u), got, s.want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	for _, s := range []string{"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
		"TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN"} {
		if !IsTerminal(s) {
			t.Errorf("IsTerminal(%s) = false", s)
		}
	}
	for _, s := range []string{StateStaging, StateStarting, StateRunning, StateKilling, "TASK_UNREACHABLE", ""} {
		if IsTerminal(s) {
			t.Errorf("IsTerminal(%s) = true", s)
		}
	}
}

// Readiness checks are honoured during deployments: a task a deployment starts reaches
// TASK_RUNNING through a status event long before Marathon's readiness check passes, and events
// carry no readiness. Such a task stays out until the app is fetched again (the deployment's
// step events) and Marathon's results say it is ready. A task started outside a deployment (a
// replacement), or of an app without readiness checks, is in as soon as it runs.
func TestReadinessDuringDeploymentFollowsDeltas(t *testing.T) {
	mk := func(readiness, deploying bool) *App {
		a := application(appID("/web"), withServicePorts(10000),
			withTasks(task(taskID("web.1"), host("10.0.0.1"), ports(31000))))
		if readiness {
			a.ReadinessChecks = []ReadinessCheck{{Name: "ready", Protocol: "HTTP", Path: "/ready", PortName: "http"}}
		}
		if deploying {
			a.Deployments = []string{"d-1"}
		}
		return a
	}
	for _, c := range []struct {
		name                 string
		readiness, deploying bool
		wantEligible         bool
	}{
		{"readiness checks, deployment in progress", true, true, false},
		{"readiness checks, no deployment", true, false, true},
		{"deployment, no readiness checks", false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := newState(t, mk(c.readiness, c.deploying))
			for _, s := range []string{StateStaging, StateRunning} {
				mustApply(t, st, TaskStatus{AppID: "/web", TaskID: "web.2", State: s, Host: "10.0.0.2", Ports: []int{31001}})
			}
			tk := st.apps.Get("/web").Task("web.2")
			if tk.Eligible != c.wantEligible {
				t.Fatalf("new running task: eligible %t (%q), want %t", tk.Eligible, tk.Reason, c.wantEligible)
			}
			if old := st.apps.Get("/web").Task("web.1"); !old.Eligible {
				t.Errorf("the task running before the deployment lost eligibility: %q", old.Reason)
			}
			if c.wantEligible {
				return
			}
			// A repeated TASK_RUNNING does not make it ready either.
			mustApply(t, st, TaskStatus{AppID: "/web", TaskID: "web.2", State: StateRunning, Host: "10.0.0.2", Ports: []int{31001}})
			if tk := st.apps.Get("/web").Task("web.2"); tk.Eligible || tk.Reason != "readiness check not passed" {
				t.Fatalf("after a second TASK_RUNNING: eligible %t, reason %q", tk.Eligible, tk.Reason)
			}
			// The step is done: the refetched app has no deployment and no readiness results.
			done := mk(true, false)
			done.Tasks = append(done.Tasks, task(taskID("web.2"), host("10.0.0.2"), ports(31001)))
			done.Tasks[1].AppID = "/web"
			mustApply(t, st, UpsertApp{App: done})
			if tk := st.apps.Get("/web").Task("web.2"); !tk.Eligible {
				t.Errorf("after the deployment: %q", tk.Reason)
			}
		})
	}
}
