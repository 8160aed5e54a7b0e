package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// benchApps is a registry of n apps with 3 running tasks each.
func benchApps(n int) []*discovery.App {
	apps := make([]*discovery.App, n)
	for i := range apps {
		id := fmt.Sprintf("/bench/app%05d", i)
		a := &discovery.App{ID: id, Instances: 3, Network: discovery.NetworkHost,
			Labels: map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": fmt.Sprintf("app%d.example.com", i)},
			Ports:  []discovery.Port{{ServicePort: 10000 + i%50000, Protocol: "tcp"}}}
		for j := range 3 {
			a.Tasks = append(a.Tasks, &discovery.Task{ID: fmt.Sprintf("bench_app%05d.t%d", i, j), AppID: id,
				Host: "10.0.0.1", State: discovery.StateRunning, HostPorts: []int{31000 + j}})
		}
		apps[i] = a
	}
	return apps
}

// rawSubscriber is a minimal stream client: one goroutine reading lines and noting the
// version of each event id, so the benchmark measures the hub, not a JSON decoder.
type rawSubscriber struct {
	conn net.Conn
	seen atomic.Uint64
}

func dialSubscriber(b *testing.B, addr string, round *atomic.Pointer[benchRound]) *rawSubscriber {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(c, "GET /v1/stream HTTP/1.1\r\nHost: hub\r\n\r\n")
	s := &rawSubscriber{conn: c}
	go func() {
		r := bufio.NewReaderSize(c, 4<<10) // small: the memory measured is mostly the hub's
		var done uint64
		for {
			line, err := r.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				for err == bufio.ErrBufferFull { // the rest of a long data line
					_, err = r.ReadSlice('\n')
				}
				continue
			}
			if err != nil {
				return
			}
			rest, ok := bytes.CutPrefix(line, []byte("id: "))
			if !ok {
				continue
			}
			_, v, _ := bytes.Cut(bytes.TrimSpace(rest), []byte("."))
			ver, _ := strconv.ParseUint(string(v), 10, 64)
			s.seen.Store(ver)
			if rd := round.Load(); rd != nil && ver >= rd.target && done < rd.target {
				done = rd.target
				rd.wg.Done()
			}
		}
	}()
	return s
}

// benchRound is one event the benchmark waits for every subscriber to see.
type benchRound struct {
	target uint64
	wg     sync.WaitGroup
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapAndStacks() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkHubFanOut: one hub over a registry of 1,000 apps (3,000 tasks) serving 1,000
// subscribers on loopback; each op is one task status change reaching every subscriber.
// Reported: process CPU per event (hub and the 1,000 minimal clients together), and memory
// per subscriber (heap and stacks added by connecting them, both ends of each connection).
func BenchmarkHubFanOut(b *testing.B) {
	const subscribers = 1000
	reg := startTestRegistry(b)
	apps := benchApps(1000)
	apply(b, reg, discovery.ReplaceApps{Apps: apps})
	_, srv := startHub(b, reg, HubConfig{})
	var round atomic.Pointer[benchRound]

	before := heapAndStacks()
	subs := make([]*rawSubscriber, subscribers)
	first := &benchRound{target: reg.Snapshot().Version}
	first.wg.Add(subscribers)
	round.Store(first)
	for i := range subs {
		subs[i] = dialSubscriber(b, srv.Listener.Addr().String(), &round)
	}
	first.wg.Wait() // every subscriber has its snapshot
	perSub := float64(heapAndStacks()-before) / subscribers
	defer func() {
		for _, s := range subs {
			s.conn.Close()
		}
	}()

	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		a := apps[i%len(apps)]
		rd := &benchRound{target: reg.Snapshot().Version + 1}
		rd.wg.Add(subscribers)
		round.Store(rd)
		// Each op changes a task: running to killing on the first pass over the apps, back
		// on the second, and so on.
		state := discovery.StateKilling
		if (i/len(apps))%2 == 1 {
			state = discovery.StateRunning
		}
		apply(b, reg, discovery.TaskStatus{AppID: a.ID, TaskID: a.Tasks[0].ID, State: state})
		rd.wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-µs/event")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/subscribers, "cpu-ns/event/subscriber")
	b.ReportMetric(perSub, "B/subscriber")
}

// BenchmarkEncodeDelta: the hub's cost of one version (one task of 10,000 apps changed):
// finding the changed app by skipping shared leaves, and encoding it once for everyone.
func BenchmarkEncodeDelta(b *testing.B) {
	reg := startTestRegistry(b)
	apps := benchApps(10000)
	prev := apply(b, reg, discovery.ReplaceApps{Apps: apps})
	next := apply(b, reg, discovery.TaskStatus{AppID: apps[5000].ID, TaskID: apps[5000].Tasks[0].ID, State: discovery.StateKilling})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeDelta(testHub, prev, next); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeSnapshot: a whole registry of 10,000 apps and 30,000 tasks, encoded once per
// version whatever the number of subscribers that need it.
func BenchmarkEncodeSnapshot(b *testing.B) {
	reg := startTestRegistry(b)
	snap := apply(b, reg, discovery.ReplaceApps{Apps: benchApps(10000)})
	var size int
	for b.Loop() {
		data, err := encodeSnapshot(testHub, snap)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "bytes")
}
