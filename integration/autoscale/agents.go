package autoscale

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// ExecutorUsage is one executor's figures from an agent's /monitor/statistics.
type ExecutorUsage struct {
	ExecutorID, Source string
	// CPUSecs is the CPU time (user + system) used since the container started.
	CPUSecs                    float64
	MemRSSBytes, MemLimitBytes float64
	// Timestamp is when the agent took the figures, in seconds since the epoch; 0 when it
	// did not say.
	Timestamp float64
}

// AgentStatistics reads an agent's executors' figures.
type AgentStatistics interface {
	Statistics(ctx context.Context, agent discovery.Agent) ([]ExecutorUsage, error)
}

// HTTPAgents reads /monitor/statistics from the agents, at the address of their libprocess
// pid (slave(1)@ip:port) as the Mesos state names it.
type HTTPAgents struct {
	Client *http.Client
	// HTTPS reads the agents over https; User and Password are basic auth when set.
	HTTPS          bool
	User, Password string
	// Timeout bounds each read, whatever Client's own; default 10s.
	Timeout time.Duration
}

// peerTimeout is the default bound of one read of an agent, an edge or Marathon.
const peerTimeout = 10 * time.Second

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return peerTimeout
	}
	return d
}

// statisticsBodyLimit bounds one agent's answer.
const statisticsBodyLimit = 32 << 20

// agentAddr is the agent's "host:port": from its pid, else its host name on Mesos's port.
func agentAddr(a discovery.Agent) (string, error) {
	if _, addr, ok := strings.Cut(a.PID, "@"); ok {
		if _, _, err := net.SplitHostPort(addr); err == nil {
			return addr, nil
		}
	}
	if a.Hostname != "" && !strings.ContainsAny(a.Hostname, "/?#@ ") {
		return net.JoinHostPort(a.Hostname, "5051"), nil
	}
	return "", fmt.Errorf("agent %s: no address in pid %q or host name %q", a.ID, a.PID, a.Hostname)
}

// Statistics reads one agent.
func (h HTTPAgents) Statistics(ctx context.Context, agent discovery.Agent) ([]ExecutorUsage, error) {
	addr, err := agentAddr(agent)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if h.HTTPS {
		scheme = "https"
	}
	u := scheme + "://" + addr + "/monitor/statistics"
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(h.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if h.User != "" {
		req.SetBasicAuth(h.User, h.Password)
	}
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", agent.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("agent %s: GET %s: %s", agent.ID, u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, statisticsBodyLimit+1))
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", agent.ID, err)
	}
	if len(body) > statisticsBodyLimit {
		return nil, fmt.Errorf("agent %s: statistics longer than %d bytes", agent.ID, statisticsBodyLimit)
	}
	return ParseStatistics(body)
}

// ParseStatistics decodes /monitor/statistics. Entries with a negative or absurd figure are
// dropped (their task then has no figure), not the whole answer.
func ParseStatistics(body []byte) ([]ExecutorUsage, error) {
	var doc []struct {
		ExecutorID string `json:"executor_id"`
		Source     string `json:"source"`
		Statistics struct {
			User      float64 `json:"cpus_user_time_secs"`
			System    float64 `json:"cpus_system_time_secs"`
			RSS       float64 `json:"mem_rss_bytes"`
			Limit     float64 `json:"mem_limit_bytes"`
			Timestamp float64 `json:"timestamp"`
		} `json:"statistics"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("agent statistics: %w", err)
	}
	out := make([]ExecutorUsage, 0, len(doc))
	for _, e := range doc {
		st := e.Statistics
		if e.ExecutorID == "" || !sane(st.User) || !sane(st.System) || !sane(st.RSS) || !sane(st.Limit) || !sane(st.Timestamp) {
			continue
		}
		out = append(out, ExecutorUsage{ExecutorID: e.ExecutorID, Source: e.Source, CPUSecs: st.User + st.System,
			MemRSSBytes: st.RSS, MemLimitBytes: st.Limit, Timestamp: st.Timestamp})
	}
	return out, nil
}

// sane reports whether a figure is one a real agent could give.
func sane(v float64) bool { return v >= 0 && v < 1e18 && !math.IsInf(v, 0) }

// AgentUsage is the agents' figures: by agent id, then by executor id (and by source, for
// an executor whose id is not its task's).
type AgentUsage map[string]map[string]ExecutorUsage

// cpuPoint is a task's CPU time at a time.
type cpuPoint struct {
	secs, at float64
}

// UsageTracker turns successive agent readings into each app's average CPU and memory use.
type UsageTracker struct {
	last map[string]cpuPoint // by task id
}

// NewUsageTracker returns a tracker with no readings yet.
func NewUsageTracker() *UsageTracker { return &UsageTracker{last: map[string]cpuPoint{}} }

// Sample returns the app's use: CPU in percent of one CPU since the task's last reading,
// memory in percent of its limit, averaged over the tasks that have figures. WithStats
// counts the tasks with both figures: a task the agents did not report, or reported for the
// first time (no CPU rate yet), is missing. byAgent holds every executor the agents
// reported, by agent; readAt is when the readings were taken, for agents that give no
// timestamp.
func (t *UsageTracker) Sample(app *discovery.App, byAgent AgentUsage, readAt time.Time) ResourceSample {
	rs := ResourceSample{}
	var cpuSum, memSum float64
	var cpuN, memN int
	for _, task := range app.Tasks {
		if task.State != "TASK_RUNNING" {
			continue
		}
		rs.Tasks++
		u, ok := byAgent[task.SlaveID][task.ID]
		if !ok {
			delete(t.last, task.ID)
			continue
		}
		hasMem, hasCPU := u.MemLimitBytes > 0, false
		if hasMem {
			memSum += 100 * u.MemRSSBytes / u.MemLimitBytes
			memN++
		}
		at := u.Timestamp
		if at == 0 {
			at = float64(readAt.UnixNano()) / 1e9
		}
		prev, seen := t.last[task.ID]
		t.last[task.ID] = cpuPoint{u.CPUSecs, at}
		// A restarted container's CPU time starts again from 0: no figure this time.
		if seen && at > prev.at && u.CPUSecs >= prev.secs {
			cpuSum += 100 * (u.CPUSecs - prev.secs) / (at - prev.at)
			cpuN++
			hasCPU = true
		}
		if hasCPU && hasMem {
			rs.WithStats++
		}
	}
	if cpuN > 0 {
		rs.CPU, rs.HasCPU = cpuSum/float64(cpuN), true
	}
	if memN > 0 {
		rs.Mem, rs.HasMem = memSum/float64(memN), true
	}
	return rs
}

// Forget drops the figures of tasks no longer in any app.
func (t *UsageTracker) Forget(keep func(taskID string) bool) {
	for id := range t.last {
		if !keep(id) {
			delete(t.last, id)
		}
	}
}
