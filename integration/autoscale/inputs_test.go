package autoscale

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Counters become rates from deltas; a decrease is a restart (HAProxy reloaded), counted
// from 0, never a negative rate; edges are summed; a failed edge makes the rate incomplete.
func TestRateTrackerDeltasResetsAndEdges(t *testing.T) {
	k := RouteKey{"/web", 10000}
	tr := NewRateTracker()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	reading := func(edge string, s int, total uint64) EdgeReading {
		return EdgeReading{Edge: edge, Totals: map[RouteKey]Count{k: {total, at(s)}}}
	}
	if r := tr.Rates([]EdgeReading{reading("a", 0, 1000), reading("b", 0, 50)}); len(r) != 0 {
		t.Fatalf("first readings gave rates %v; a rate needs two", r)
	}
	r := tr.Rates([]EdgeReading{reading("a", 2, 1400), reading("b", 2, 250)})
	if got := r[k]; got.Rate != 300 || !got.Complete {
		t.Fatalf("rate %+v, want (400+200)/2 = 300, complete", got)
	}
	// Edge a reloaded: its counter went from 1400 to 100.
	r = tr.Rates([]EdgeReading{reading("a", 4, 100), reading("b", 4, 450)})
	if got := r[k]; got.Rate != 150 || got.Rate < 0 {
		t.Fatalf("rate %+v after a reset, want 100/2 + 200/2 = 150", got)
	}
	// Edge b fails: a's rate alone, incomplete.
	r = tr.Rates([]EdgeReading{reading("a", 6, 300), {Edge: "b", Err: errString("refused")}})
	if got := r[k]; got.Rate != 100 || got.Complete {
		t.Fatalf("rate %+v with edge b down, want 100 and incomplete", got)
	}
	// b is back: its rate spans the gap from its last good reading (450 at 4 s).
	r = tr.Rates([]EdgeReading{reading("a", 8, 500), reading("b", 8, 850)})
	if got := r[k]; got.Rate != 100+100 || !got.Complete {
		t.Fatalf("rate %+v, want 100 + 400/4 = 200, complete", got)
	}
	// A counter the edge no longer reports: incomplete.
	r = tr.Rates([]EdgeReading{reading("a", 10, 700), {Edge: "b", Totals: map[RouteKey]Count{}}})
	if got := r[k]; got.Complete {
		t.Fatalf("rate %+v with b's counter gone, want incomplete", got)
	}
	// The same HAProxy reading again (an edge reuses one for a second): the last rate holds,
	// never a rate of 0 nor a division by 0.
	r = tr.Rates([]EdgeReading{reading("a", 10, 700)})
	if got := r[k]; got.Rate != 100 {
		t.Fatalf("rate %+v from the same reading again, want a's last rate 100", got)
	}
	tr2 := NewRateTracker()
	tr2.Rates([]EdgeReading{reading("a", 5, 10)})
	if r := tr2.Rates([]EdgeReading{reading("a", 5, 20)}); len(r) != 0 || math.IsInf(r[k].Rate, 0) {
		t.Fatalf("rates %v for a second reading at the same time and no rate yet", r)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// Statistics: honest entries are read; hostile ones (negative, absurd, no id) are dropped,
// not the answer; something not a list is an error.
func TestParseStatistics(t *testing.T) {
	body := `[
	 {"executor_id":"web.1","source":"web.1","framework_id":"F","statistics":{"cpus_user_time_secs":2.11,"cpus_system_time_secs":1.32,
	  "cpus_limit":0.2,"mem_rss_bytes":10817536,"mem_limit_bytes":50331648,"timestamp":1448027812.49046}},
	 {"executor_id":"web.2","statistics":{"cpus_user_time_secs":-5,"mem_rss_bytes":1,"mem_limit_bytes":2}},
	 {"executor_id":"web.3","statistics":{"cpus_user_time_secs":1e300,"mem_rss_bytes":1,"mem_limit_bytes":2}},
	 {"executor_id":"","statistics":{}},
	 {"executor_id":"web.4","statistics":{"cpus_user_time_secs":1,"mem_rss_bytes":1,"mem_limit_bytes":0}}
	]`
	got, err := ParseStatistics([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ExecutorID != "web.1" || got[1].ExecutorID != "web.4" {
		t.Fatalf("entries %+v, want web.1 and web.4", got)
	}
	if math.Abs(got[0].CPUSecs-3.43) > 1e-9 || got[0].MemLimitBytes != 50331648 || got[0].Timestamp != 1448027812.49046 {
		t.Errorf("web.1 %+v", got[0])
	}
	for _, bad := range []string{`{"executor_id":"x"}`, `not json`, `[{"executor_id":1}]`} {
		if _, err := ParseStatistics([]byte(bad)); err == nil {
			t.Errorf("ParseStatistics(%s) = nil error", bad)
		}
	}
}

// onAgent is the figures of one agent, "a1", which runs every task of the tests.
func onAgent(byExecutor map[string]ExecutorUsage) AgentUsage {
	return AgentUsage{"a1": byExecutor}
}

// Usage: CPU from the delta of CPU time over the delta of the agent's timestamps, memory
// from RSS over the limit, averaged over tasks; a task without statistics counts in Tasks
// but not in WithStats; a restarted container gives no CPU figure that interval.
func TestUsageTracker(t *testing.T) {
	app := &discovery.App{ID: "/work", Tasks: []*discovery.Task{
		{ID: "work.1", SlaveID: "a1", State: "TASK_RUNNING"}, {ID: "work.2", SlaveID: "a1", State: "TASK_RUNNING"}, {ID: "work.3", SlaveID: "a1", State: "TASK_STAGING"},
	}}
	tr := NewUsageTracker()
	rs := tr.Sample(app, onAgent(map[string]ExecutorUsage{
		"work.1": {CPUSecs: 10, MemRSSBytes: 50, MemLimitBytes: 100, Timestamp: 100},
		"work.2": {CPUSecs: 20, MemRSSBytes: 25, MemLimitBytes: 100, Timestamp: 100},
	}), t0)
	if rs.HasCPU || !rs.HasMem || rs.Mem != 37.5 || rs.Tasks != 2 || rs.WithStats != 0 {
		t.Fatalf("first sample %+v: want memory only (CPU needs two readings), no task complete", rs)
	}
	rs = tr.Sample(app, onAgent(map[string]ExecutorUsage{
		"work.1": {CPUSecs: 11.8, MemRSSBytes: 50, MemLimitBytes: 100, Timestamp: 102}, // 90% of a CPU
		"work.2": {CPUSecs: 1, MemRSSBytes: 25, MemLimitBytes: 100, Timestamp: 102},    // restarted
	}), t0)
	if !rs.HasCPU || math.Abs(rs.CPU-90) > 1e-9 || rs.WithStats != 1 {
		t.Fatalf("second sample %+v: want 90%% from work.1 alone, the restarted work.2 incomplete", rs)
	}
	rs = tr.Sample(app, onAgent(map[string]ExecutorUsage{"work.1": {CPUSecs: 12.8, MemRSSBytes: 50, MemLimitBytes: 100, Timestamp: 104}}), t0)
	if rs.WithStats != 1 || rs.Tasks != 2 || math.Abs(rs.CPU-50) > 1e-9 {
		t.Fatalf("third sample %+v: want work.2 unreported, CPU 50%%", rs)
	}
}

// Labels: honest ones override the defaults; hostile or malformed ones are errors naming
// the app and the label, and the app is not scaled.
func TestSettingsOfLabels(t *testing.T) {
	s, ok, err := SettingsOf("/web", map[string]string{
		LabelMode: "RPS", LabelTargetRPS: "250.5", LabelMinInstances: "2", LabelMaxInstances: "30",
		LabelServicePorts: "10000, 10001,10000", "HAPROXY_GROUP": "external",
	}, DefaultSettings())
	if err != nil || !ok || s.Mode != ModeRate || s.TargetRPS != 250.5 || s.MinInstances != 2 || s.MaxInstances != 30 ||
		len(s.ServicePorts) != 2 {
		t.Fatalf("settings %+v ok %v err %v", s, ok, err)
	}
	if _, ok, err := SettingsOf("/web", map[string]string{"HAPROXY_GROUP": "external"}, DefaultSettings()); ok || err != nil {
		t.Fatalf("an app without %s opted in (ok %v, err %v)", LabelMode, ok, err)
	}
	hostile := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"unknown mode", map[string]string{LabelMode: "sqs"}, LabelMode},
		{"not a number", map[string]string{LabelMode: "rps", LabelTargetRPS: "lots"}, LabelTargetRPS},
		{"NaN", map[string]string{LabelMode: "rps", LabelTargetRPS: "NaN"}, LabelTargetRPS},
		{"infinity", map[string]string{LabelMode: "cpu", LabelCPUMax: "+Inf"}, LabelCPUMax},
		{"a million instances", map[string]string{LabelMode: "rps", LabelMaxInstances: "1000000"}, LabelMaxInstances},
		{"negative minimum", map[string]string{LabelMode: "rps", LabelMinInstances: "-1"}, LabelMinInstances},
		{"min above max", map[string]string{LabelMode: "rps", LabelMinInstances: "9", LabelMaxInstances: "3"}, LabelMinInstances},
		{"zero target", map[string]string{LabelMode: "rps", LabelTargetRPS: "0"}, LabelTargetRPS},
		{"multiplier 1 never scales", map[string]string{LabelMode: "cpu", LabelMultiplier: "1"}, LabelMultiplier},
		{"memory over 100%", map[string]string{LabelMode: "mem", LabelMemMax: "150"}, LabelMemMax},
		{"cpu range inverted", map[string]string{LabelMode: "cpu", LabelCPUMin: "90", LabelCPUMax: "10"}, LabelCPUMin},
		{"typo'd label", map[string]string{LabelMode: "rps", LabelPrefix + "TARGET_RSP": "100"}, "TARGET_RSP"},
		{"port out of range", map[string]string{LabelMode: "rps", LabelServicePorts: "70000"}, LabelServicePorts},
		{"ports not numbers", map[string]string{LabelMode: "rps", LabelServicePorts: "http"}, LabelServicePorts},
		{"huge value", map[string]string{LabelMode: "rps", LabelSamples: strings.Repeat("9", 300)}, LabelSamples},
		{"samples 0", map[string]string{LabelMode: "rps", LabelSamples: "0"}, LabelSamples},
		{"float instances", map[string]string{LabelMode: "rps", LabelMaxInstances: "2.5"}, LabelMaxInstances},
	}
	for _, c := range hostile {
		t.Run(c.name, func(t *testing.T) {
			_, ok, err := SettingsOf("/shop/web", c.labels, DefaultSettings())
			if !ok || err == nil || !strings.Contains(err.Error(), "/shop/web") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ok %v err %v, want an error naming /shop/web and %s", ok, err, c.want)
			}
		})
	}
}

// Label names are the app team's text too: a long one, or thousands of unknown ones, make an
// error (logged, and shown on the status page every interval) of bounded length that still
// names the app and says how many were wrong.
func TestSettingsOfErrorIsBounded(t *testing.T) {
	labels := map[string]string{LabelMode: "rps"}
	for i := range 5000 {
		labels[fmt.Sprintf("%s%s_%d", LabelPrefix, strings.Repeat("X", 1000), i)] = "1"
	}
	_, ok, err := SettingsOf("/shop/web", labels, DefaultSettings())
	if !ok || err == nil {
		t.Fatalf("ok %v err %v, want an error", ok, err)
	}
	if msg := err.Error(); len(msg) > 2000 || !strings.Contains(msg, "/shop/web") || !strings.Contains(msg, "5000") {
		t.Fatalf("error of %d bytes (%.300s…), want at most 2000 naming /shop/web and the 5000 bad labels", len(msg), msg)
	}
}

// docs/autoscale.md and the README name every label, and every label is read: a label listed
// in Labels but unknown to SettingsOf would turn every app using it away.
func TestLabelsDocumentedAndRead(t *testing.T) {
	for _, file := range []string{"../../docs/autoscale.md", "../../README.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range Labels {
			name := l
			if file == "../../README.md" && l != LabelMode {
				name = "`" + strings.TrimPrefix(l, LabelPrefix) + "`"
			}
			if !strings.Contains(string(b), name) {
				t.Errorf("%s does not name %s", file, name)
			}
		}
	}
	for _, l := range Labels {
		labels := map[string]string{LabelMode: "rps", l: "1"}
		if l == LabelMode {
			continue
		}
		if _, _, err := SettingsOf("/x", labels, DefaultSettings()); err != nil && strings.Contains(err.Error(), "unknown autoscale label") {
			t.Errorf("%s is listed but not read: %v", l, err)
		}
	}
}
