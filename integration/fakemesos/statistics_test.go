package fakemesos

import (
	"net/http"
	"testing"
)

// The agent serves /monitor/statistics in Mesos's wire format: an array of executors, each
// with its id, framework, source and cgroup figures; entries come and go as tests set them.
func TestAgentServesMonitorStatistics(t *testing.T) {
	a, err := StartAgent("S1", "agent-1.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	var empty []map[string]any
	if code := getJSON(t, "http://"+a.HostPort()+PathMonitorStatistics, &empty); code != http.StatusOK || empty == nil || len(empty) != 0 {
		t.Fatalf("GET %s of an idle agent = %d %v, want 200 and []", PathMonitorStatistics, code, empty)
	}
	a.SetStatistics(ExecutorStatistics{ExecutorID: "web.2", FrameworkID: "F1", CPUUserSecs: 1.5, CPUSystemSecs: 0.25,
		CPUsLimit: 0.6, MemRSSBytes: 10 << 20, MemLimitBytes: 64 << 20, Timestamp: 1448027812.5})
	a.SetStatistics(ExecutorStatistics{ExecutorID: "web.1", FrameworkID: "F1", Source: "src", OmitTimestamp: true})
	a.SetStatistics(ExecutorStatistics{ExecutorID: "gone.1"})
	a.RemoveStatistics("gone.1")
	var doc []struct {
		ExecutorID  string         `json:"executor_id"`
		FrameworkID string         `json:"framework_id"`
		Source      string         `json:"source"`
		Statistics  map[string]any `json:"statistics"`
	}
	if code := getJSON(t, "http://"+a.HostPort()+PathMonitorStatisticsJSON, &doc); code != http.StatusOK {
		t.Fatalf("GET %s = %d", PathMonitorStatisticsJSON, code)
	}
	if len(doc) != 2 || doc[0].ExecutorID != "web.1" || doc[1].ExecutorID != "web.2" {
		t.Fatalf("entries %+v, want web.1 and web.2 in order", doc)
	}
	if doc[0].Source != "src" || doc[1].Source != "web.2" || doc[1].FrameworkID != "F1" {
		t.Errorf("sources %q %q framework %q", doc[0].Source, doc[1].Source, doc[1].FrameworkID)
	}
	if _, ok := doc[0].Statistics["timestamp"]; ok {
		t.Errorf("web.1 has a timestamp though OmitTimestamp")
	}
	st := doc[1].Statistics
	for k, want := range map[string]float64{"cpus_user_time_secs": 1.5, "cpus_system_time_secs": 0.25, "cpus_limit": 0.6,
		"mem_rss_bytes": 10 << 20, "mem_limit_bytes": 64 << 20, "timestamp": 1448027812.5} {
		if st[k] != want {
			t.Errorf("statistics.%s = %v, want %v", k, st[k], want)
		}
	}
	if a.Requests(PathMonitorStatistics) != 1 {
		t.Errorf("requests of %s = %d, want 1", PathMonitorStatistics, a.Requests(PathMonitorStatistics))
	}
}
