package discovery

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
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

// mesosStateOpts shapes a generated Mesos /master/state document (mesosStateDoc).
type mesosStateOpts struct {
	apps, tasksPerApp int // apps × tasks of the Marathon framework
	bigApp            int // tasks of one more app
	agents            int
	// otherFrameworks adds that many small frameworks (3 tasks each) after Marathon, with
	// labels in the {"labels":[…]} shape and statuses with labels.
	otherFrameworks int
}

// mesosStateDoc builds a Mesos /master/state document as a 1.x master writes it for a
// Marathon cluster. Every task has a two-port ports resource and a label; every second one a
// container network address in its latest status (after a TASK_STARTING one), every tenth an
// IPv6 one too; every fifth a DiscoveryInfo with two named ports. The fields a master writes
// and lodestar does not read (resources, executors, container, completed tasks, flags, …) are
// there too, since the decoder has to skip them.
func mesosStateDoc(o mesosStateOpts) []byte {
	b := make([]byte, 0, (o.apps*o.tasksPerApp+o.bigApp)*1000+o.agents*600+4096)
	num := strconv.AppendInt
	b = append(b, `{"version":"1.11.0","git_sha":"04cc7e4b58c2c9a1a1a0e4a4b4cb5e5d3b2bd6d1","build_date":"2020-11-19 14:46:39",`+
		`"start_time":1605797200.31843,"elected_time":1605797201.58241,"id":"4f5a7b3c-0e2d-4c8e-9b6a-2a1d3e4f5a6b",`+
		`"pid":"master@10.255.0.1:5050","hostname":"master-1","activated_slaves":`...)
	b = num(b, int64(o.agents), 10)
	b = append(b, `,"deactivated_slaves":0,"leader":"master@10.255.0.1:5050",`+
		`"leader_info":{"id":"4f5a7b3c-0e2d-4c8e-9b6a-2a1d3e4f5a6b","pid":"master@10.255.0.1:5050","port":5050,`+
		`"address":{"hostname":"master-1","ip":"10.255.0.1","port":5050},"hostname":"master-1","version":"1.11.0"},`+
		`"flags":{"allocation_interval":"1secs","authenticate_agents":"false","cluster":"prod","hostname_lookup":"true",`+
		`"quorum":"2","work_dir":"/var/lib/mesos","zk":"zk://10.255.0.1:2181/mesos","zk_session_timeout":"10secs"},`+
		`"slaves":[`...)
	for i := range o.agents {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"8c2f1e36-41b7-4d0a-b6d8-0f1e2d3c4b5a-S`...)
		b = num(b, int64(i), 10)
		b = append(b, `","hostname":"agent-`...)
		b = num(b, int64(i), 10)
		b = append(b, `.prod.example","port":5051,"attributes":{"rack":"r`...)
		b = num(b, int64(i%20), 10)
		b = append(b, `","zone":"a"},"pid":"slave(1)@10.`...)
		b = num(b, int64(i/250), 10)
		b = append(b, '.')
		b = num(b, int64(i%250), 10)
		b = append(b, `.1:5051","registered_time":1605797300.12345,"reregistered_time":1605797301.5,`+
			`"resources":{"disk":950000.0,"mem":62000.0,"gpus":0.0,"cpus":16.0,"ports":"[31000-32000]"},`+
			`"used_resources":{"disk":0.0,"mem":2560.0,"gpus":0.0,"cpus":2.5,"ports":"[31000-31009]"},`+
			`"offered_resources":{"disk":0,"mem":0,"gpus":0,"cpus":0},"reserved_resources":{},`+
			`"active":true,"deactivated":false,"version":"1.11.0","capabilities":["MULTI_ROLE","HIERARCHICAL_ROLE","RESERVATION_REFINEMENT"]}`...)
	}
	b = append(b, `],"frameworks":[`...)

	n := 0 // tasks so far: picks agents, ports and addresses
	task := func(frameworkID, app string, labelsObject bool) {
		b = append(b, `{"id":"`...)
		b = append(b, app...)
		b = append(b, '.')
		b = append(b, strconv.FormatInt(int64(n)*7919+0x5a5a5a5a, 16)...)
		b = append(b, `-11eb-8f4e-0242ac110002","name":"`...)
		b = append(b, app...)
		b = append(b, `.apps","framework_id":"`...)
		b = append(b, frameworkID...)
		b = append(b, `","executor_id":"","slave_id":"8c2f1e36-41b7-4d0a-b6d8-0f1e2d3c4b5a-S`...)
		b = num(b, int64(n%max(o.agents, 1)), 10)
		b = append(b, `","state":"TASK_RUNNING","resources":{"disk":0.0,"mem":256.0,"gpus":0.0,"cpus":0.25,"ports":"[`...)
		port := 31000 + n%997
		b = num(b, int64(port), 10)
		b = append(b, '-')
		b = num(b, int64(port+1), 10)
		b = append(b, `]"},"role":"slave_public",`...)
		label := `[{"key":"owner","value":"team-`
		if labelsObject {
			label = `{"labels":[{"key":"owner","value":"team-`
		}
		b = append(b, `"labels":`...)
		b = append(b, label...)
		b = num(b, int64(n%40), 10)
		b = append(b, `"}]`...)
		if labelsObject {
			b = append(b, '}')
		}
		b = append(b, `,"statuses":[{"state":"TASK_STARTING","timestamp":1605797400.`...)
		b = num(b, int64(10000+n%90000), 10)
		b = append(b, `,"container_status":{"container_id":{"value":"c0de`...)
		b = num(b, int64(n), 10)
		b = append(b, `"}}},{"state":"TASK_RUNNING","timestamp":1605797401.`...)
		b = num(b, int64(10000+n%90000), 10)
		if labelsObject {
			b = append(b, `,"labels":{"labels":[{"key":"phase","value":"running"}]}`...)
		}
		b = append(b, `,"healthy":true,"container_status":{"container_id":{"value":"c0de`...)
		b = num(b, int64(n), 10)
		b = append(b, `"}`...)
		if n%2 == 0 {
			b = append(b, `,"network_infos":[{"ip_addresses":[{"protocol":"IPv4","ip_address":"172.`...)
			b = num(b, int64(16+n>>16&15), 10)
			b = append(b, '.')
			b = num(b, int64(n>>8&255), 10)
			b = append(b, '.')
			b = num(b, int64(n&255), 10)
			b = append(b, '"', '}')
			if n%10 == 0 {
				b = append(b, `,{"protocol":"IPv6","ip_address":"fd01:b::`...)
				b = strconv.AppendInt(b, int64(n), 16)
				b = append(b, '"', '}')
			}
			b = append(b, `],"name":"dcos","labels":{}}]`...)
		}
		b = append(b, `,"cgroup_info":{"net_cls":{"classid":0}}}}]`...)
		if n%5 == 0 {
			b = append(b, `,"discovery":{"visibility":"FRAMEWORK","name":"`...)
			b = append(b, app...)
			b = append(b, `.apps","ports":{"ports":[{"number":`...)
			b = num(b, int64(port), 10)
			b = append(b, `,"name":"http","protocol":"tcp"},{"number":`...)
			b = num(b, int64(port+1), 10)
			b = append(b, `,"name":"admin","protocol":"tcp","labels":{"labels":[{"key":"VIP_0","value":"/`...)
			b = append(b, app...)
			b = append(b, `:8080"}]}}]}}`...)
		}
		b = append(b, `,"container":{"type":"DOCKER","docker":{"image":"registry.example/`...)
		b = append(b, app...)
		b = append(b, `:1.0","network":"BRIDGE","privileged":false,"force_pull_image":false}}}`...)
		n++
	}
	framework := func(id, name string, apps, perApp, big int, labelsObject bool) {
		b = append(b, `{"id":"`...)
		b = append(b, id...)
		b = append(b, `","name":"`...)
		b = append(b, name...)
		b = append(b, `","pid":"scheduler-`...)
		b = append(b, id...)
		b = append(b, `@10.255.0.2:15101","used_resources":{"cpus":1.0},"offered_resources":{},"capabilities":["PARTITION_AWARE"],`+
			`"hostname":"`...)
		b = append(b, name...)
		b = append(b, `-1.prod.example","webui_url":"http://10.255.0.2:8080","active":true,"connected":true,"recovered":false,`+
			`"role":"slave_public","tasks":[`...)
		first := true
		sep := func() {
			if !first {
				b = append(b, ',')
			}
			first = false
		}
		for a := range apps {
			app := "svc-" + strconv.Itoa(a)
			for range perApp {
				sep()
				task(id, app, labelsObject)
			}
		}
		for range big {
			sep()
			task(id, "big-one", labelsObject)
		}
		b = append(b, `],"unreachable_tasks":[],"completed_tasks":[],"offers":[],"executors":[]}`...)
	}
	framework("fd4e1c2b-7a3f-4e5d-8c9b-1a2b3c4d5e6f-0000", "marathon", o.apps, o.tasksPerApp, o.bigApp, false)
	for f := range o.otherFrameworks {
		b = append(b, ',')
		id := "fd4e1c2b-7a3f-4e5d-8c9b-1a2b3c4d5e6f-" + strconv.Itoa(1000+f)
		framework(id, "batch-"+strconv.Itoa(f), 1, 3, 0, true)
	}
	b = append(b, `],"completed_frameworks":[],"orphan_tasks":[],"unregistered_frameworks":[]}`...)
	return b
}

func TestMesosStateDocGenerator(t *testing.T) {
	data := mesosStateDoc(mesosStateOpts{apps: 20, tasksPerApp: 10, bigApp: 30, agents: 7, otherFrameworks: 2})
	st, err := decodeMesosStateStd(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Agents) != 7 || len(st.Frameworks) != 3 || len(st.Frameworks[0].Tasks) != 230 || len(st.Frameworks[2].Tasks) != 3 {
		t.Fatalf("%d agents, %d frameworks", len(st.Agents), len(st.Frameworks))
	}
	var ips, ipv6, disc int
	for _, task := range st.Frameworks[0].Tasks {
		if len(task.Ports) != 2 || len(task.Labels) != 1 || len(task.Statuses) != 2 || task.Statuses[1].State != StateRunning {
			t.Fatalf("task %+v", task)
		}
		ips += len(task.Statuses[1].NetworkIPs)
		if len(task.Statuses[1].NetworkIPs) == 2 {
			ipv6++
		}
		if task.Discovery != nil && len(task.Discovery.Ports) == 2 && task.Discovery.Name == task.Name {
			disc++
		}
	}
	if ips != 115+23 || ipv6 != 23 || disc != 46 {
		t.Errorf("%d addresses (%d tasks with IPv6), %d tasks with discovery info", ips, ipv6, disc)
	}
	if l := st.Frameworks[1].Tasks[0].Statuses[1].Labels; len(l) != 1 || l[0] != (Label{"phase", "running"}) {
		t.Errorf("status labels %v", l)
	}
}

// BenchmarkDecodeMesosState100k decodes a 100,200-task state (10,000 apps × 10 tasks and one
// app of 200, 1,000 agents: the DNS issue's ingest benchmark) with the fast decoder and with
// the encoding/json reference.
func BenchmarkDecodeMesosState100k(b *testing.B) {
	data := mesosStateDoc(mesosStateOpts{apps: 10_000, tasksPerApp: 10, bigApp: 200, agents: 1000})
	for _, dec := range []struct {
		name   string
		decode func([]byte) (*MesosState, error)
	}{{"std", decodeMesosStateStd}, {"fast", DecodeMesosState}} {
		b.Run(dec.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if st, err := dec.decode(data); err != nil || len(st.Frameworks[0].Tasks) != 100_200 {
					b.Fatal(err)
				}
			}
		})
	}
}
