package discovery

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
)

// marathonAppsJSON builds a /v2/apps?embed=apps.tasks payload shaped like the fixtures: host
// networking with portDefinitions, HAProxy labels, one HTTP health check, and tasksPerApp
// running tasks each with host, ports, ipAddresses, timestamps and a health result. Fields
// lodestar ignores (cmd, cpus, upgradeStrategy, …) are there too, since the decoder has to
// skip them in real payloads.
func marathonAppsJSON(nApps, tasksPerApp int) []byte {
	var b bytes.Buffer
	b.Grow(nApps * (1500 + tasksPerApp*700))
	b.WriteString(`{"apps":[`)
	for i := range nApps {
		if i > 0 {
			b.WriteByte(',')
		}
		name := fmt.Sprintf("team-%02d/svc-%05d", i%40, i)
		fmt.Fprintf(&b, `{"id":"/%s","cmd":"./run --port $PORT0","args":null,"user":null,"env":{"JAVA_OPTS":"-Xmx256m"},`+
			`"instances":%d,"cpus":0.25,"mem":256,"disk":0,"gpus":0,"executor":"","constraints":[["hostname","UNIQUE"]],`+
			`"uris":[],"fetch":[],"storeUrls":[],"backoffSeconds":1,"backoffFactor":1.15,"maxLaunchDelaySeconds":3600,`+
			`"container":{"type":"DOCKER","volumes":[],"docker":{"image":"registry.example/svc:%d","forcePullImage":false,"privileged":false,"parameters":[]}},`+
			`"networks":[{"mode":"host"}],"requirePorts":false,`+
			`"portDefinitions":[{"port":%d,"protocol":"tcp","name":"http","labels":{}}],`+
			`"healthChecks":[{"gracePeriodSeconds":300,"intervalSeconds":10,"maxConsecutiveFailures":3,"path":"/health","portIndex":0,"protocol":"HTTP","timeoutSeconds":5,"delaySeconds":15,"ignoreHttp1xx":false}],`+
			`"readinessChecks":[],"dependencies":[],"upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":1},`+
			`"labels":{"HAPROXY_GROUP":"external","HAPROXY_0_VHOST":"svc-%05d.example.com","HAPROXY_0_MODE":"http","team":"team-%02d"},`+
			`"acceptedResourceRoles":["*"],"ipAddress":null,"version":"2017-07-19T17:34:41.967Z",`+
			`"versionInfo":{"lastScalingAt":"2017-07-19T17:34:41.967Z","lastConfigChangeAt":"2017-07-19T17:34:41.967Z"},`+
			`"killSelection":"YOUNGEST_FIRST","unreachableStrategy":{"inactiveAfterSeconds":300,"expungeAfterSeconds":600},`+
			`"tasksStaged":0,"tasksRunning":%d,"tasksHealthy":%d,"tasksUnhealthy":0,"deployments":[],"tasks":[`,
			name, tasksPerApp, i, 10000+i%50000, i, i%40, tasksPerApp, tasksPerApp)
		taskPrefix := fmt.Sprintf("team-%02d_svc-%05d", i%40, i)
		for j := range tasksPerApp {
			if j > 0 {
				b.WriteByte(',')
			}
			uuid := fmt.Sprintf("%08x-6ca8-11e7-beb2-0e2beceebfcc", i*tasksPerApp+j)
			agent := (i*tasksPerApp + j) % 500
			fmt.Fprintf(&b, `{"id":"%s.%s","appId":"/%s","host":"10.0.%d.%d","slaveId":"db7b40e2-791c-445f-b373-183e2a648a86-S%d",`+
				`"state":"TASK_RUNNING","stagedAt":"2017-07-19T17:34:43.039Z","startedAt":"2017-07-19T17:35:15.654Z",`+
				`"version":"2017-07-19T17:34:41.967Z","ports":[%d],"ipAddresses":[{"ipAddress":"172.17.%d.%d","protocol":"IPv4"}],`+
				`"healthCheckResults":[{"alive":true,"consecutiveFailures":0,"firstSuccess":"2017-07-19T17:35:25.000Z","lastFailure":null,`+
				`"lastSuccess":"2017-07-19T17:40:25.000Z","lastFailureCause":null,"instanceId":"%s.marathon-%s"}]}`,
				taskPrefix, uuid, name, agent/250, agent%250, agent, 31000+(i+j)%1000, j, i%250, taskPrefix, uuid)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func TestMarathonAppsJSONGenerator(t *testing.T) {
	apps := decodeFixtureBytes(t, marathonAppsJSON(20, 3))
	if len(apps) != 20 {
		t.Fatalf("%d apps", len(apps))
	}
	st := newState(t, apps...)
	if st.tasks != 60 {
		t.Errorf("%d tasks", st.tasks)
	}
	a := st.apps.Get("/team-07/svc-00007")
	if a == nil || len(a.EligibleTasks()) != 3 || a.Ports[0].ServicePort != 10007 || a.Labels["HAPROXY_0_VHOST"] != "svc-00007.example.com" {
		t.Errorf("app %+v", a)
	}
}

func decodeFixtureBytes(t testing.TB, data []byte) []*App {
	t.Helper()
	apps, appErrs, err := DecodeMarathonApps(data)
	if err != nil || len(appErrs) > 0 {
		t.Fatalf("decode: %v %v", err, appErrs)
	}
	return apps
}

// BenchmarkFullSync10kApps: decoding a 10,000-app / 30,000-task /v2/apps payload and applying
// it as a full sync. "fresh" starts from an empty registry state (start-up); "unchanged" applies
// the same content to a state that already holds it (the periodic resync: no version bump);
// "decode-only" shows how much of either is DecodeMarathonApps.
func BenchmarkFullSync10kApps(b *testing.B) {
	data := marathonAppsJSON(10_000, 3)
	b.Run("fresh", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			apps, appErrs, err := DecodeMarathonApps(data)
			if err != nil || len(appErrs) > 0 {
				b.Fatal(err, appErrs)
			}
			var st state
			if changed, err := (ReplaceApps{Apps: apps}).apply(&st); err != nil || !changed || st.tasks != 30_000 {
				b.Fatalf("changed=%t err=%v tasks=%d", changed, err, st.tasks)
			}
		}
	})
	b.Run("decode-only", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := DecodeMarathonApps(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		st := newState(b, decodeFixtureBytes(b, data)...)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			apps, _, err := DecodeMarathonApps(data)
			if err != nil {
				b.Fatal(err)
			}
			if changed, err := (ReplaceApps{Apps: apps}).apply(st); err != nil || changed {
				b.Fatalf("changed=%t err=%v", changed, err)
			}
		}
	})
}

// BenchmarkTaskStatusDelta30k: one status_update_event applied to a registry state of nApps
// apps × 3 tasks. Each op is a real change (a task alternates TASK_RUNNING and TASK_KILLING) and
// touches a different app, as a rolling deployment would. Cost should barely depend on nApps:
// the AppSet copies one leaf, one branch and a root of one slot per ~4,000 apps.
func BenchmarkTaskStatusDelta30k(b *testing.B) {
	for _, nApps := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("apps=%d/tasks=%d", nApps, nApps*3), func(b *testing.B) {
			st := newState(b, seedApps(nApps)...)
			appIDs := make([]string, nApps)
			taskIDs := make([]string, nApps)
			for i := range nApps {
				appIDs[i] = fmt.Sprintf("/app-%04d", i)
				taskIDs[i] = fmt.Sprintf("app-%04d.1", i)
			}
			ports := []int{31001}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				a := i % nApps
				s := StateKilling
				if (i/nApps)%2 == 1 {
					s = StateRunning
				}
				u := TaskStatus{AppID: appIDs[a], TaskID: taskIDs[a], State: s, Ports: ports}
				if changed, err := u.apply(st); err != nil || !changed {
					b.Fatalf("op %d: changed=%t err=%v", i, changed, err)
				}
				i++
			}
		})
	}
}

// BenchmarkRegistryHeap100kTasks reports the heap a Registry needs to hold 100,002 tasks
// (33,334 apps × 3, decoded from a Marathon payload like BenchmarkFullSync10kApps'), measured
// with runtime.ReadMemStats after GC. heap-MB is HeapInuse, live-MB HeapAlloc; ns/op is the
// cost of one decode + full sync + GC and means little. Run with -benchtime=1x for one sample.
func BenchmarkRegistryHeap100kTasks(b *testing.B) {
	const nApps, perApp = 33_334, 3
	var inuse, live float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)

		r := NewRegistry(WithLogger(quietLogger()))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		data := marathonAppsJSON(nApps, perApp)
		apps, _, err := DecodeMarathonApps(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Send(ctx, ReplaceApps{Apps: apps}); err != nil {
			b.Fatal(err)
		}
		// data, apps and the snapshot variable are dead from here on: the registry alone holds
		// the apps when the heap is measured.
		if _, err := r.WaitFor(ctx, func(s *Snapshot) bool { return s.Tasks == nApps*perApp }); err != nil {
			b.Fatal(err)
		}

		runtime.GC()
		runtime.ReadMemStats(&after)
		inuse = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / 1e6
		live = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / 1e6
		if r.Snapshot().Tasks != nApps*perApp { // keeps r (and its snapshot) alive until here
			b.Fatal("tasks lost")
		}
		cancel()
		<-done
	}
	b.ReportMetric(inuse, "heap-MB")
	b.ReportMetric(live, "live-MB")
	b.ReportMetric(live*1e6/float64(nApps*perApp), "B/task")
	b.ReportMetric(float64(nApps*perApp), "tasks")
}
