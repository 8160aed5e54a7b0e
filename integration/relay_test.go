package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// Fan-out: one hub follows Marathon and replicas follow the hub. Of the replicas, one drives a
// real HAProxy and one reaches its hub through a TCP proxy the test can cut. Under the race
// detector every lodestar is several times slower and larger, and the machine has 2 cores:
// fewer replicas keep the test under a minute there.
const (
	relayReplicas     = 18
	relayReplicasRace = 8
	relayApps         = 40
	// relayTimeout bounds the wait for every replica to match its hub after a change; it is
	// reached only when the test fails.
	relayTimeout = 60 * time.Second
)

// appsDoc is the registry part of /v1/apps, as raw JSON: hub and replica must match byte for
// byte (their versions, times and sources differ, and are left out).
func appsDoc(ls *Lodestar) ([]byte, error) {
	code, body, err := Get(ls.URL("/v1/apps"))
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("GET /v1/apps: status %d", code)
	}
	var doc struct {
		Apps json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	return doc.Apps, nil
}

// waitReplicasMatch waits until every replica's /v1/apps holds exactly the hub's apps.
func waitReplicasMatch(t *testing.T, hub *Lodestar, replicas []*Lodestar, what string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(replicas))
	deadline := time.Now().Add(relayTimeout)
	for i, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				want, err := appsDoc(hub)
				var got []byte
				if err == nil {
					got, err = appsDoc(r)
				}
				if err == nil && bytes.Equal(got, want) {
					errs[i] = nil
					return
				}
				if err == nil {
					err = fmt.Errorf("its apps differ from the hub's (%d bytes against %d)", len(got), len(want))
				}
				errs[i] = err
				if time.Now().After(deadline) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: replica %d never matched the hub: %v", what, i, err)
		}
	}
}

// relayCounter reads lodestar_relay_received_total{type=…} of one lodestar.
func relayCounter(t *testing.T, ls *Lodestar, typ string) float64 {
	t.Helper()
	v, _ := sample(scrape(t, ls), "lodestar_relay_received_total", "type="+typ)
	return v
}

// startRelayHub starts a hub following fm on a given API address, without HAProxy.
func startRelayHub(t *testing.T, fm *fakemarathon.Server, listen string) *Lodestar {
	t.Helper()
	hub := Start(t, "--marathon", fm.URL(), "--haproxy=false", "--api-listen", listen)
	hub.WaitReady(t)
	return hub
}

// startRelayLB starts a replica of hubs that drives a real HAProxy, every bind on loopback.
func startRelayLB(t *testing.T, hubs string) *lbStack {
	t.Helper()
	s := &lbStack{RunDir: haproxytest.SocketDir(t), HTTPAddr: loopbackAddr(t), HTTPSAddr: loopbackAddr(t), StatsAddr: loopbackAddr(t)}
	s.Lodestar = Start(t, "--registry-from", hubs, "--group", "*", "--haproxy-bin", haproxytest.Bin(t),
		"--http-bind", s.HTTPAddr, "--https-bind", s.HTTPSAddr, "--stats-bind", s.StatsAddr,
		"--no-appid-frontend", "--run-dir", s.RunDir, "--reload-min-wait", "20ms", "--reload-max-wait", "200ms")
	s.WaitReady(t)
	s.Admin = haproxy.NewRuntimeClient(filepath.Join(s.RunDir, "admin.sock"))
	return s
}

// TestRelayFanOut: one Marathon subscription serves every replica; a burst of 2,000 task
// events reaches them all; a replica cut off resumes without a snapshot; when its hub goes,
// every replica moves to the second hub.
func TestRelayFanOut(t *testing.T) {
	ports := freePortBlock(t, relayApps)
	fm := fakemarathon.New()
	var appIDs []string
	for i := range relayApps {
		id := fmt.Sprintf("/fan/app%02d", i)
		appIDs = append(appIDs, id)
		if err := fm.AddApp(lbApp(id, ports[i], nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fm.Close)

	hubA := startRelayHub(t, fm, loopbackAddr(t))
	hubBAddr := loopbackAddr(t)
	hubB := "http://" + hubBAddr
	proxy := zktest.StartProxy(t, hubA.API[len("http://"):])
	hubs := hubA.API + "," + hubB

	lb := startRelayLB(t, hubs)
	replicas := []*Lodestar{lb.Lodestar, Start(t, "--registry-from", "http://"+proxy.Addr()+","+hubB, "--haproxy=false")}
	n := relayReplicas
	if raceEnabled() {
		n = relayReplicasRace
	}
	for len(replicas) < n {
		replicas = append(replicas, Start(t, "--registry-from", hubs, "--haproxy=false"))
	}
	waitReplicasMatch(t, hubA, replicas, "start")
	if n, c := fm.Subscribers(), fm.StreamConnects(); n != 1 || c != 1 {
		t.Fatalf("Marathon has %d event streams (%d ever opened) for one hub and %d replicas, want exactly one", n, c, len(replicas))
	}

	// The burst: 2,000 task events.
	start := time.Now()
	tasks := taskBurst(t, fm, appIDs)
	waitReplicasMatch(t, hubA, replicas, "after the burst")
	t.Logf("burst of 2,000 events made and every replica matching the hub in %v", time.Since(start).Round(time.Millisecond))
	logPropagation(t, replicas)
	checkHAProxyServers(t, hubA, lb, appIDs[0], ports[0])
	if n, c := fm.Subscribers(), fm.StreamConnects(); n != 1 || c != 1 {
		t.Fatalf("after the burst Marathon has %d event streams (%d ever opened), want one", n, c)
	}

	// A replica cut off from its hub resumes from its version: no second snapshot.
	cut := replicas[1]
	snapshots, deltas := relayCounter(t, cut, "snapshot"), relayCounter(t, cut, "delta")
	proxy.Cut()
	killTask(t, fm, tasks[len(tasks)-1])
	waitReplicasMatch(t, hubA, replicas, "after the cut")
	if s, d := relayCounter(t, cut, "snapshot"), relayCounter(t, cut, "delta"); s != snapshots || d <= deltas {
		t.Fatalf("the replica cut off took %v snapshots and %v deltas after the cut (%v and %v before): want deltas only", s, d, snapshots, deltas)
	}

	// The hub goes: every replica moves to the second one. Connections that were opened to
	// the hub but never carried a request would hold its graceful shutdown for 5 s (Go's HTTP
	// server waits that long on a connection in StateNew): the proxy's, and those the test's
	// HTTP client dialled for its parallel polls and then kept idle. They go first, here and
	// before every lodestar stops at the end.
	b := startRelayHub(t, fm, hubBAddr)
	t.Cleanup(httpClient.CloseIdleConnections)
	proxy.Pause()
	httpClient.CloseIdleConnections()
	hubA.Stop(t)
	killTask(t, fm, tasks[len(tasks)-2])
	waitReplicasMatch(t, b, replicas, "after the hub stopped")
	for i, r := range replicas {
		if s := relayCounter(t, r, "snapshot"); s != 2 {
			t.Errorf("replica %d took %v snapshots, want 2: one per hub", i, s)
		}
	}
	if n := fm.Subscribers(); n != 1 {
		t.Errorf("Marathon has %d event streams with one hub left, want one", n)
	}
}

// taskBurst makes 2,000 task events in the fake Marathon: 500 tasks started (staging and
// running: 1,000 events), 500 health changes, 250 killed (killing and killed: 500 events). It
// returns the ids of the tasks still running.
func taskBurst(t *testing.T, fm *fakemarathon.Server, appIDs []string) []string {
	t.Helper()
	var tasks []string
	for i := range 500 {
		id, err := fm.AddTask(appIDs[i%len(appIDs)], fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{40000 + i}, State: "TASK_STAGING"})
		if err != nil {
			t.Fatal(err)
		}
		if err := fm.SetTaskState(id, "TASK_RUNNING"); err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, id)
	}
	for i, id := range tasks {
		if err := fm.SetHealth(id, i%3 != 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range tasks[:250] {
		killTask(t, fm, id)
	}
	return tasks[250:]
}

// checkHAProxyServers waits until the HAProxy replica's backend of an app takes traffic to
// exactly the tasks its hub calls eligible.
func checkHAProxyServers(t *testing.T, hub *Lodestar, lb *lbStack, appID string, servicePort int) {
	t.Helper()
	var app struct {
		Tasks []struct {
			Eligible  bool `json:"eligible"`
			Endpoints []struct {
				Host string `json:"host"`
				Port int    `json:"port"`
			} `json:"endpoints"`
		} `json:"tasks"`
	}
	GetJSON(t, hub.URL("/v1/apps"+appID), &app)
	var want []string
	for _, tk := range app.Tasks {
		if tk.Eligible {
			want = append(want, tk.Endpoints[0].Host+":"+strconv.Itoa(tk.Endpoints[0].Port))
		}
	}
	slices.Sort(want)
	if len(want) == 0 {
		t.Fatalf("app %s has no eligible task to check HAProxy with", appID)
	}
	backend := backendName(appID, servicePort)
	Eventually(t, lbTimeout, fmt.Sprintf("HAProxy's servers of %s to be %v", backend, want), func() error {
		got, err := lb.activeServers(backend)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("they are %v", got)
		}
		return nil
	})
}

// logPropagation logs hub→replica propagation quantiles from the replicas' histograms
// (time from the hub's registry version to the replica applying it), interpolated within
// buckets.
func logPropagation(t *testing.T, replicas []*Lodestar) {
	t.Helper()
	counts := map[float64]uint64{}
	var total uint64
	for _, r := range replicas {
		fam := scrape(t, r)["lodestar_relay_propagation_seconds"]
		if fam == nil {
			t.Fatal("a replica has no lodestar_relay_propagation_seconds")
		}
		for _, m := range fam.GetMetric() {
			h := m.GetHistogram()
			total += h.GetSampleCount()
			for _, b := range h.GetBucket() {
				counts[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
	}
	t.Logf("hub→replica propagation over %d deltas applied by %d replicas: p50 %s, p99 %s",
		total, len(replicas), quantile(counts, total, 0.50), quantile(counts, total, 0.99))
}

// quantile interpolates quantile q from cumulative bucket counts.
func quantile(cum map[float64]uint64, total uint64, q float64) string {
	if total == 0 {
		return "n/a"
	}
	bounds := make([]float64, 0, len(cum))
	for b := range cum {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for _, b := range bounds {
		if float64(cum[b]) >= rank {
			frac := (rank - float64(below)) / float64(cum[b]-below)
			return (time.Duration((lower + frac*(b-lower)) * float64(time.Second))).Round(10 * time.Microsecond).String()
		}
		lower, below = b, cum[b]
	}
	return fmt.Sprintf("> %v", time.Duration(bounds[len(bounds)-1]*float64(time.Second)))
}
