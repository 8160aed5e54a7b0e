//go:build soak

// The soak run (`make soak`, not part of `make test`): lodestar and a real HAProxy under
// task churn, structural changes, keep-alive and one-connection-per-request load, and a
// SIGKILL of HAProxy's master every few minutes, for -soak.duration. It prints a summary and
// fails on requests failed outside the kill windows, on lodestar or HAProxy growing from the
// first to the last part of the run, on more HAProxy processes than its reload bound allows,
// or on lodestar's log growing by 1 KB/s or more.

package integration

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

var (
	soakDuration = flag.Duration("soak.duration", 10*time.Minute, "how long the soak runs")
	soakApps     = flag.Int("soak.apps", 200, "apps in the fake Marathon")
	soakKillEach = flag.Duration("soak.kill-every", 2*time.Minute, "how often HAProxy's master is SIGKILLed")
)

// soakKillWindow is the time around a kill within which failed requests are the kill's.
const soakKillWindow = 5 * time.Second

// soakMaxHAProxy is the most HAProxy processes allowed at once: a master, its worker and the
// 10 old workers mworker-max-reloads lets live, plus a restarting master's pair.
const soakMaxHAProxy = 14

type soakSample struct {
	at                    time.Time
	rss, fds, goroutines  float64
	haproxyProcs          int
	haproxyRSS            int64
	logBytes              int
	reloads, runtimeApply int
	restarts              int
}

type soakRequest struct {
	at  time.Time
	err error
}

// soakRun is the state of one soak: the cluster it drives and what it saw.
type soakRun struct {
	t        *testing.T
	fm       *fakemarathon.Server
	lb       *lbStack
	ports    []int
	backends []*haproxytest.HTTPBackend
	tasks    [][]string // task ids by app index; used by the churn goroutine only

	mu                sync.Mutex
	requests          []soakRequest
	kills             []time.Time
	churn, structural int
}

func soakAppID(i int) string { return fmt.Sprintf("/soak/app%03d", i) }
func soakVhost(i int) string { return fmt.Sprintf("app%03d.soak.test", i) }

func TestSoak(t *testing.T) {
	r := &soakRun{t: t, ports: freePortBlock(t, *soakApps)}
	apps := make([]map[string]any, *soakApps)
	for i := range apps {
		apps[i] = lbApp(soakAppID(i), r.ports[i], map[string]string{"HAPROXY_0_VHOST": soakVhost(i)})
	}
	r.fm = startLBMarathon(t, apps...)
	for range 10 {
		r.backends = append(r.backends, haproxytest.Backend(t))
	}
	r.tasks = make([][]string, len(apps))
	for i := range apps {
		for j := range 2 {
			r.tasks[i] = append(r.tasks[i], addTask(t, r.fm, soakAppID(i), r.backends[(i+j)%len(r.backends)]))
		}
	}
	r.lb = startLB(t, r.fm)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *soakDuration)
	defer cancel()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() { r.load(ctx, c%2 == 0) }) // half keep-alive, half a connection per request
	}
	wg.Go(func() { r.changes(ctx) })
	var samples []soakSample
	sampleEvery := min(30*time.Second, *soakDuration/10)
	for ctx.Err() == nil {
		samples = append(samples, soakTake(t, r.lb))
		select {
		case <-ctx.Done():
		case <-time.After(sampleEvery):
		}
	}
	wg.Wait()
	samples = append(samples, soakTake(t, r.lb))
	soakReport(t, time.Since(start), r.requests, r.kills, r.churn, r.structural, samples)
	for _, line := range soakLogBreakdown(r.lb.Log.String(), 8) {
		t.Logf("  log: %s", line)
	}
}

var (
	soakMsgRE    = regexp.MustCompile(`msg="((?:[^"\\]|\\.)*)"|msg=(\S+)`)
	soakDigitsRE = regexp.MustCompile(`[0-9]+`)
)

// soakLogBreakdown returns the n kinds of log record (message with numbers blanked) that
// took the most bytes, with their counts.
func soakLogBreakdown(log string, n int) []string {
	bytes, count := map[string]int{}, map[string]int{}
	for line := range strings.SplitSeq(log, "\n") {
		m := soakMsgRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		kind := soakDigitsRE.ReplaceAllString(m[1]+m[2], "N")
		if len(kind) > 60 {
			kind = kind[:60]
		}
		bytes[kind] += len(line) + 1
		count[kind]++
	}
	kinds := slices.SortedFunc(maps.Keys(bytes), func(a, b string) int { return bytes[b] - bytes[a] })
	var out []string
	for _, k := range kinds[:min(n, len(kinds))] {
		out = append(out, fmt.Sprintf("%7d bytes in %5d records: %s", bytes[k], count[k], k))
	}
	return out
}

// load sends requests to random apps' vhosts until ctx ends.
func (r *soakRun) load(ctx context.Context, keepAlive bool) {
	client := lbClient(r.t, keepAlive)
	for ctx.Err() == nil {
		i := rand.IntN(len(r.tasks))
		_, err := askBackend(client, http.MethodGet, "http://"+r.lb.HTTPAddr+"/", soakVhost(i))
		r.mu.Lock()
		r.requests = append(r.requests, soakRequest{time.Now(), err})
		r.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

// changes replaces a task every 250 ms, redefines an app every 10 s and SIGKILLs HAProxy's
// master every -soak.kill-every, until ctx ends.
func (r *soakRun) changes(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastStructural, lastKill := time.Now(), time.Now()
	for ctx.Err() == nil {
		<-tick.C
		i := rand.IntN(len(r.tasks))
		if err := r.fm.KillTask(r.tasks[i][0]); err == nil {
			r.tasks[i] = r.tasks[i][1:]
		}
		b := r.backends[rand.IntN(len(r.backends))]
		if tid, err := r.fm.AddTask(soakAppID(i), fakemarathon.TaskSpec{Host: "127.0.0.1", Ports: []int{b.Port}}); err == nil {
			r.tasks[i] = append(r.tasks[i], tid)
		} else {
			r.t.Errorf("adding a task to %s: %v", soakAppID(i), err)
		}
		r.mu.Lock()
		r.churn++
		structural := r.structural
		r.mu.Unlock()
		if time.Since(lastStructural) >= 10*time.Second {
			lastStructural = time.Now()
			changed := lbApp(soakAppID(i), r.ports[i], map[string]string{"HAPROXY_0_VHOST": soakVhost(i),
				"HAPROXY_0_BALANCE": []string{"roundrobin", "leastconn"}[structural%2]})
			if err := r.fm.AddApp(changed); err != nil {
				r.t.Errorf("redefining %s: %v", soakAppID(i), err)
			}
			r.mu.Lock()
			r.structural++
			r.mu.Unlock()
		}
		if time.Since(lastKill) >= *soakKillEach {
			lastKill = time.Now()
			b, _ := os.ReadFile(filepath.Join(r.lb.RunDir, "haproxy.pid"))
			if pid := atoi(strings.TrimSpace(string(b))); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
				r.mu.Lock()
				r.kills = append(r.kills, time.Now())
				r.mu.Unlock()
			}
		}
	}
}

// soakTake reads lodestar's and HAProxy's resources now.
func soakTake(t *testing.T, lb *lbStack) soakSample {
	st := lb.status(t)
	s := soakSample{
		at: time.Now(), rss: lb.metric(t, "process_resident_memory_bytes"), fds: lb.metric(t, "process_open_fds"),
		goroutines: lb.metric(t, "go_goroutines"), logBytes: len(lb.Log.String()),
		reloads: st.Reloads, runtimeApply: st.RuntimeApplies, restarts: st.Process.Restarts,
	}
	sock := filepath.Join(lb.RunDir, "master.sock")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), sock) || !processAlive(atoi(e.Name())) {
			continue
		}
		s.haproxyProcs++
		status, _ := os.ReadFile("/proc/" + e.Name() + "/status")
		for line := range strings.SplitSeq(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				s.haproxyRSS += kb * 1024
			}
		}
	}
	return s
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// soakReport prints the summary and fails t on what the soak must not show.
func soakReport(t *testing.T, took time.Duration, requests []soakRequest, kills []time.Time, churn, structural int, samples []soakSample) {
	inKill := func(at time.Time) bool {
		for _, k := range kills {
			if at.After(k.Add(-soakKillWindow)) && at.Before(k.Add(soakKillWindow)) {
				return true
			}
		}
		return false
	}
	var inside, outside, failedInside, failedOutside int
	var firstOutside error
	for _, r := range requests {
		if inKill(r.at) {
			inside++
			if r.err != nil {
				failedInside++
			}
			continue
		}
		outside++
		if r.err != nil {
			failedOutside++
			if firstOutside == nil {
				firstOutside = fmt.Errorf("%s: %w", r.at.Format("15:04:05.000"), r.err)
			}
		}
	}
	first, last := samples[0], samples[len(samples)-1]
	n := max(1, len(samples)/5)
	avg := func(ss []soakSample, f func(soakSample) float64) float64 {
		sum := 0.0
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	head, tail := samples[:n], samples[len(samples)-n:]
	maxProcs := 0
	for _, s := range samples {
		maxProcs = max(maxProcs, s.haproxyProcs)
	}
	logRate := float64(last.logBytes-first.logBytes) / last.at.Sub(first.at).Seconds()
	t.Logf("soak summary over %v:", took.Round(time.Second))
	t.Logf("  requests: %d outside kill windows (%d failed), %d within ±%v of the %d kills (%d failed)", outside, failedOutside, inside, soakKillWindow, len(kills), failedInside)
	t.Logf("  reloads %d for %d structural changes; runtime applies %d for %d task changes", last.reloads-first.reloads, structural, last.runtimeApply-first.runtimeApply, churn)
	t.Logf("  HAProxy restarts %d for %d kills; at most %d HAProxy processes", last.restarts-first.restarts, len(kills), maxProcs)
	for _, m := range []struct {
		name string
		f    func(soakSample) float64
	}{
		{"lodestar RSS MiB", func(s soakSample) float64 { return s.rss / (1 << 20) }},
		{"lodestar fds", func(s soakSample) float64 { return s.fds }},
		{"lodestar goroutines", func(s soakSample) float64 { return s.goroutines }},
		{"HAProxy RSS MiB", func(s soakSample) float64 { return float64(s.haproxyRSS) / (1 << 20) }},
	} {
		h, l := avg(head, m.f), avg(tail, m.f)
		t.Logf("  %s: first part %.1f, last part %.1f", m.name, h, l)
		// Growth: more than half again and more than a margin that noise alone reaches.
		if m.name != "HAProxy RSS MiB" && l > 1.5*h && l-h > 10 {
			t.Errorf("%s grew from %.1f to %.1f", m.name, h, l)
		}
	}
	t.Logf("  lodestar log: %.0f bytes/s (%.0f bytes/minute)", logRate, logRate*60)
	if failedOutside > 0 {
		t.Errorf("%d requests failed outside the kill windows; first %v", failedOutside, firstOutside)
	}
	if maxProcs > soakMaxHAProxy {
		t.Errorf("%d HAProxy processes at once, want at most %d", maxProcs, soakMaxHAProxy)
	}
	if logRate >= 1024 {
		t.Errorf("lodestar's log grew by %.0f bytes/s, want under 1 KB/s", logRate)
	}
}
