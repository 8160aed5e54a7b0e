package dnsserver

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// mesosStateJSON builds a Mesos /master/state document: nApps Marathon apps of tasksPerApp
// tasks plus one app of bigApp tasks, on nAgents agents. Every task has two host ports; every
// second one a netinfo address in its latest TASK_RUNNING status (after a TASK_STARTING one);
// every fifth DiscoveryInfo with two named ports. Fields lodestar ignores are there too, as
// the decoder has to skip them in real documents.
func mesosStateJSON(nApps, tasksPerApp, bigApp, nAgents int) []byte {
	var b bytes.Buffer
	b.Grow((nApps*tasksPerApp + bigApp) * 900)
	b.WriteString(`{"version":"1.11.0","git_sha":"x","leader":"master@10.255.0.1:5050","hostname":"master-1",` +
		`"leader_info":{"hostname":"master-1","port":5050,"address":{"ip":"10.255.0.1","port":5050}},"slaves":[`)
	for i := range nAgents {
		if i > 0 {
			b.WriteByte(',')
		}
		ip := "10." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250) + ".1"
		b.WriteString(`{"id":"a7c3a2ee-7a1f-4f5e-9d5b-3e1f0c9a2b11-S`)
		b.WriteString(strconv.Itoa(i))
		b.WriteString(`","hostname":"agent-`)
		b.WriteString(strconv.Itoa(i))
		b.WriteString(`.example.com","pid":"slave(1)@`)
		b.WriteString(ip)
		b.WriteString(`:5051","resources":{"cpus":16,"mem":64000,"disk":100000,"ports":"[31000-32000]"},"active":true}`)
	}
	b.WriteString(`],"frameworks":[{"id":"fw-0000","name":"marathon","pid":"scheduler-1@10.255.0.2:15101","hostname":"marathon-1","active":true,"tasks":[`)
	n := 0
	task := func(app string, inst int) {
		if n > 0 {
			b.WriteByte(',')
		}
		agent := n % nAgents
		id := app + "." + strconv.Itoa(inst) + "-" + strconv.Itoa(n) + "-6ca8-11e7-beb2-0e2beceebfcc"
		b.WriteString(`{"id":"`)
		b.WriteString(id)
		b.WriteString(`","name":"`)
		b.WriteString(app)
		b.WriteString(`.apps","framework_id":"fw-0000","executor_id":"","slave_id":"a7c3a2ee-7a1f-4f5e-9d5b-3e1f0c9a2b11-S`)
		b.WriteString(strconv.Itoa(agent))
		b.WriteString(`","state":"TASK_RUNNING","resources":{"cpus":0.25,"mem":256,"disk":0,"ports":"[`)
		port := 31000 + n%999
		b.WriteString(strconv.Itoa(port))
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(port + 1))
		b.WriteString(`]"},"labels":[{"key":"team","value":"t`)
		b.WriteString(strconv.Itoa(n % 40))
		b.WriteString(`"}],"statuses":[{"state":"TASK_STARTING","timestamp":1500000000.1},{"state":"TASK_RUNNING","timestamp":1500000001.5`)
		if n%2 == 0 {
			b.WriteString(`,"container_status":{"network_infos":[{"ip_addresses":[{"protocol":"IPv4","ip_address":"9.`)
			b.WriteString(strconv.Itoa(n >> 16 & 255))
			b.WriteByte('.')
			b.WriteString(strconv.Itoa(n >> 8 & 255))
			b.WriteByte('.')
			b.WriteString(strconv.Itoa(n & 255))
			b.WriteString(`"}],"name":"dcos"}]}`)
		}
		b.WriteString(`}]`)
		if n%5 == 0 {
			b.WriteString(`,"discovery":{"visibility":"FRAMEWORK","name":"`)
			b.WriteString(app)
			b.WriteString(`.apps","ports":{"ports":[{"number":`)
			b.WriteString(strconv.Itoa(port))
			b.WriteString(`,"protocol":"tcp","name":"http"},{"number":`)
			b.WriteString(strconv.Itoa(port + 1))
			b.WriteString(`,"protocol":"tcp","name":"admin"}]}}`)
		}
		b.WriteByte('}')
		n++
	}
	for a := range nApps {
		app := "svc-" + strconv.Itoa(a)
		for i := range tasksPerApp {
			task(app, i)
		}
	}
	for i := range bigApp {
		task("big-one", i)
	}
	b.WriteString(`],"completed_tasks":[]}]}`)
	return b.Bytes()
}

func TestGeneratedState(t *testing.T) {
	st, err := discovery.DecodeMesosState(mesosStateJSON(20, 10, 30, 7))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Agents) != 7 || len(st.Frameworks) != 1 || len(st.Frameworks[0].Tasks) != 230 {
		t.Fatalf("%d agents, %d frameworks", len(st.Agents), len(st.Frameworks))
	}
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	// svc-3's 10 tasks: 5 with netinfo addresses, 2 with DiscoveryInfo.
	a := ix.Lookup("svc-3-apps.marathon.mesos.")
	if a == nil || len(a.A) != 10 {
		t.Fatalf("svc-3-apps.marathon.mesos.: %+v", a)
	}
	if got := len(ix.Lookup("_big-one-apps._tcp.marathon.slave.mesos.").SRV); got != 60 {
		t.Errorf("big app: %d SRV records under slave, want 60", got)
	}
	if ix.Lookup("_http._svc-0-apps._tcp.marathon.mesos.") == nil {
		t.Error("no named-port SRV records")
	}
}

func BenchmarkLookup(b *testing.B) {
	st, err := discovery.DecodeMesosState(mesosStateJSON(1000, 10, 0, 100))
	if err != nil {
		b.Fatal(err)
	}
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	names := []string{"svc-500-apps.marathon.mesos.", "_svc-77-apps._tcp.marathon.mesos.", "nothing.marathon.mesos."}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ix.Lookup(names[i%len(names)])
	}
}

// BenchmarkIngest100k measures a full ingest of a 100,200-task Mesos state: decode the JSON,
// then build the index. heap-MB is the heap in use (runtime.MemStats.HeapInuse) afterwards,
// with the state and the index alive, as a running lodestar holds them; live-MB the bytes of
// live objects in it (the rest is fragmentation left by earlier iterations); index-names the
// number of owner names.
func BenchmarkIngest100k(b *testing.B) {
	data := mesosStateJSON(10000, 10, 200, 1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ix *RecordIndex
	var st *discovery.MesosState
	b.ResetTimer()
	for b.Loop() {
		var err error
		st, err = discovery.DecodeMesosState(data)
		if err != nil {
			b.Fatal(err)
		}
		ix = BuildIndex(snapshotOf(st), testConfig(), ix)
	}
	b.StopTimer()
	data = nil
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/1e6, "heap-MB")
	b.ReportMetric(float64(ms.HeapAlloc)/1e6, "live-MB")
	b.ReportMetric(float64(ix.Len()), "index-names")
	runtime.KeepAlive(st)
	runtime.KeepAlive(ix)
}

// BenchmarkBuildIndex100k is the build alone, from an already decoded state.
func BenchmarkBuildIndex100k(b *testing.B) {
	st, err := discovery.DecodeMesosState(mesosStateJSON(10000, 10, 200, 1000))
	if err != nil {
		b.Fatal(err)
	}
	snap := snapshotOf(st)
	b.ReportAllocs()
	var ix *RecordIndex
	for b.Loop() {
		ix = BuildIndex(snap, testConfig(), ix)
	}
}

// BenchmarkCompileZoneIngest100k is SetIndex's compile of the index BenchmarkIngest100k
// builds: the last step before a new Mesos state is served.
func BenchmarkCompileZoneIngest100k(b *testing.B) {
	st, err := discovery.DecodeMesosState(mesosStateJSON(10000, 10, 200, 1000))
	if err != nil {
		b.Fatal(err)
	}
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	b.ReportAllocs()
	for b.Loop() {
		compileZone(ix, "mesos.", 60, 5, true)
	}
}
