package discovery

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Builders in the style of traefik's marathon provider tests:
// application(appID("/app"), withLabel(k, v), withTasks(task(host("h1"), ports(31000)))).

type appOption func(*App)

func application(opts ...appOption) *App {
	a := &App{Network: NetworkHost, Instances: 1}
	for _, o := range opts {
		o(a)
	}
	for _, t := range a.Tasks {
		t.AppID = a.ID
	}
	return a
}

func appID(id string) appOption { return func(a *App) { a.ID = id } }

func withLabel(k, v string) appOption {
	return func(a *App) {
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		a.Labels[k] = v
	}
}

func withNetwork(m NetworkMode) appOption { return func(a *App) { a.Network = m } }

// withServicePorts gives the app one port per service port (host networking style).
func withServicePorts(ps ...int) appOption {
	return func(a *App) {
		for _, p := range ps {
			a.Ports = append(a.Ports, Port{ServicePort: p, Protocol: "tcp"})
		}
	}
}

// withPortMapping adds a bridge/container port mapping.
func withPortMapping(containerPort, servicePort int) appOption {
	return func(a *App) {
		a.Ports = append(a.Ports, Port{ContainerPort: containerPort, ServicePort: servicePort, Protocol: "tcp"})
	}
}

func withHealthCheck() appOption {
	return func(a *App) {
		a.HealthChecks = append(a.HealthChecks, HealthCheck{Protocol: "HTTP", Path: "/", IntervalSeconds: 3})
	}
}

func withTasks(ts ...*Task) appOption { return func(a *App) { a.Tasks = append(a.Tasks, ts...) } }

type taskOption func(*Task)

// task builds a running task; options override.
func task(opts ...taskOption) *Task {
	t := &Task{State: StateRunning}
	for _, o := range opts {
		o(t)
	}
	return t
}

func taskID(id string) taskOption   { return func(t *Task) { t.ID = id } }
func host(h string) taskOption      { return func(t *Task) { t.Host = h } }
func taskState(s string) taskOption { return func(t *Task) { t.State = s } }
func ports(ps ...int) taskOption    { return func(t *Task) { t.HostPorts = ps } }
func ipAddresses(ips ...string) taskOption {
	return func(t *Task) { t.IPAddresses = ips }
}
func stagedAt(ts string) taskOption { return func(t *Task) { t.StagedAt = ts } }
func ready(r bool) taskOption       { return func(t *Task) { t.Ready = &r } }

// health sets one result per argument.
func health(alive ...bool) taskOption {
	return func(t *Task) {
		t.Health = make([]HealthResult, len(alive))
		for i, a := range alive {
			t.Health[i].Alive = a
		}
	}
}

// newState returns a registry working state holding apps, as a full sync leaves it.
func newState(t testing.TB, apps ...*App) *state {
	t.Helper()
	st := &state{}
	if _, err := (ReplaceApps{Apps: apps}).apply(st); err != nil {
		t.Fatalf("seeding state: %v", err)
	}
	return st
}

// mustApply applies u to st and fails the test on error.
func mustApply(t testing.TB, st *state, u Update) bool {
	t.Helper()
	changed, err := u.apply(st)
	if err != nil {
		t.Fatalf("apply %s: %v", describe(u), err)
	}
	return changed
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startRegistry runs a registry until the test ends, and waits for Run to return.
func startRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	r := NewRegistry(append([]RegistryOption{WithLogger(quietLogger())}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// send queues u on r, failing the test if that does not happen within the test's context.
func send(t testing.TB, r *Registry, u Update) {
	t.Helper()
	if err := r.Send(testContext(t), u); err != nil {
		t.Fatalf("Send %s: %v", describe(u), err)
	}
}

// testContext ends with the test. The timeout is only a safety net so that a lost signal fails
// the test with a message instead of hanging until go test's global timeout; no test asserts on
// how long anything takes.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// decodeFixture decodes a Marathon apps fixture that must have no errors at all.
func decodeFixture(t testing.TB, name string) []*App {
	t.Helper()
	apps, appErrs, err := DecodeMarathonApps(readFixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(appErrs) > 0 {
		t.Fatalf("%s: app errors: %v", name, appErrs)
	}
	return apps
}
