package fakemesos

import (
	"encoding/json"
	"slices"
	"strings"
)

// An agent's resource statistics, as a Mesos agent serves them on /monitor/statistics: one
// entry per running executor, with the cgroup figures of its container. Tests set them with
// SetStatistics; the agent serves them in the real wire format.

// Paths of an agent's resource statistics: Mesos 1.x serves both, 0.2x only the .json one.
const (
	PathMonitorStatistics     = "/monitor/statistics"
	PathMonitorStatisticsJSON = "/monitor/statistics.json"
)

// ExecutorStatistics is one executor's entry in /monitor/statistics.
type ExecutorStatistics struct {
	// ExecutorID is the executor's id: a Marathon task's id for the command and Docker
	// executors.
	ExecutorID  string
	FrameworkID string
	// Source is the executor's source (Marathon's task id too); ExecutorID when empty.
	Source string
	// CPUUserSecs and CPUSystemSecs are the CPU time used since the container started.
	CPUUserSecs, CPUSystemSecs float64
	CPUsLimit                  float64
	MemRSSBytes, MemLimitBytes uint64
	// Timestamp is when the figures were taken, in seconds since the epoch.
	Timestamp float64
	// OmitTimestamp leaves "timestamp" out, as older agents and some containerizers do.
	OmitTimestamp bool
}

// SetStatistics sets (or replaces) the entry of s.ExecutorID.
func (a *Agent) SetStatistics(s ExecutorStatistics) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats[s.ExecutorID] = s
}

// RemoveStatistics removes the entry of an executor, as when it ends.
func (a *Agent) RemoveStatistics(executorID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.stats, executorID)
}

// statisticsJSON renders the entries in executor id order. The caller holds a.mu.
func (a *Agent) statisticsJSON() ([]byte, error) {
	ids := make([]string, 0, len(a.stats))
	for id := range a.stats {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		s := a.stats[id]
		source := s.Source
		if source == "" {
			source = s.ExecutorID
		}
		stats := map[string]any{
			"cpus_limit":            s.CPUsLimit,
			"cpus_user_time_secs":   s.CPUUserSecs,
			"cpus_system_time_secs": s.CPUSystemSecs,
			"mem_rss_bytes":         s.MemRSSBytes,
			"mem_limit_bytes":       s.MemLimitBytes,
			"mem_total_bytes":       s.MemRSSBytes,
			"mem_anon_bytes":        s.MemRSSBytes,
			"mem_cache_bytes":       0,
			"mem_file_bytes":        0,
			"mem_swap_bytes":        0,
			"mem_mapped_file_bytes": 0,
		}
		if !s.OmitTimestamp {
			stats["timestamp"] = s.Timestamp
		}
		task, _, _ := strings.Cut(s.ExecutorID, ".")
		out = append(out, map[string]any{
			"executor_id":   s.ExecutorID,
			"executor_name": "Command Executor (Task: " + s.ExecutorID + ") (Command: sh -c '" + task + "')",
			"framework_id":  s.FrameworkID,
			"source":        source,
			"statistics":    stats,
		})
	}
	return json.Marshal(out)
}
