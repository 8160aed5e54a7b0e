package fakemesos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// Agent is a fake Mesos agent: it serves its command-line flags on /flags (as {"flags": {…}},
// every value a string, the way Mesos serves them) and its executors' resource statistics on
// /monitor/statistics (SetStatistics) on 127.0.0.1. Cluster.SetAgents lists agents
// in the masters' state, with a pid naming the agent's real address and a host name the test
// chooses (which need not resolve).
type Agent struct {
	// ID is the agent id in the masters' state.
	ID string
	// Hostname is the host name the masters' state gives the agent.
	Hostname string

	mu       sync.Mutex
	flags    map[string]string
	stats    map[string]ExecutorStatistics // by executor id
	addr     string
	requests map[string]int
	srv      *http.Server
	done     chan struct{}
}

// DefaultAgentFlags are the flags a well configured agent of a Marathon cluster runs with:
// Docker and Mesos containerizers and five minutes for an executor (a Docker pull) to register.
func DefaultAgentFlags() map[string]string {
	return map[string]string{
		"containerizers":                "docker,mesos",
		"docker":                        "docker",
		"executor_registration_timeout": "5mins",
		"isolation":                     "cgroups/cpu,cgroups/mem",
		"master":                        "zk://127.0.0.1:2181/mesos",
		"port":                          "5051",
		"work_dir":                      "/var/lib/mesos",
		"logging_level":                 "INFO",
	}
}

// StartAgent starts an agent on 127.0.0.1 with DefaultAgentFlags.
func StartAgent(id, hostname string) (*Agent, error) {
	return StartAgentAt(id, hostname, defaultListenAddr)
}

// StartAgentAt starts an agent listening on addr ("ip:port"; port 0 picks one) with
// DefaultAgentFlags: the multi-host lab runs one on a lab host's address.
func StartAgentAt(id, hostname, addr string) (*Agent, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakemesos: agent %s: %w", hostname, err)
	}
	a := &Agent{ID: id, Hostname: hostname, flags: DefaultAgentFlags(), addr: ln.Addr().String(),
		stats: map[string]ExecutorStatistics{}, requests: map[string]int{}, done: make(chan struct{})}
	a.flags["port"] = fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	a.srv = &http.Server{Handler: http.HandlerFunc(a.serve), ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		defer close(a.done)
		_ = a.srv.Serve(ln)
	}()
	return a, nil
}

// Close stops the agent.
func (a *Agent) Close() {
	_ = a.srv.Close()
	<-a.done
}

// HostPort is the agent's "127.0.0.1:port".
func (a *Agent) HostPort() string { return a.addr }

// PID is the agent's libprocess pid, "slave(1)@127.0.0.1:port".
func (a *Agent) PID() string { return "slave(1)@" + a.addr }

// SetFlag sets one flag; an empty value removes it.
func (a *Agent) SetFlag(name, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if value == "" {
		delete(a.flags, name)
		return
	}
	a.flags[name] = value
}

// Flags returns a copy of the flags served.
func (a *Agent) Flags() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.flags)
}

// Requests returns how many requests were made for path ("" counts every path).
func (a *Agent) Requests(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if path != "" {
		return a.requests[path]
	}
	n := 0
	for _, c := range a.requests {
		n += c
	}
	return n
}

func (a *Agent) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests[r.URL.Path]++
	var body []byte
	var err error
	switch r.URL.Path {
	case "/flags", "/slave(1)/flags":
		body, err = json.Marshal(map[string]any{"flags": a.flags})
	case PathMonitorStatistics, PathMonitorStatisticsJSON:
		body, err = a.statisticsJSON()
	default:
		a.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	a.mu.Unlock()
	if err != nil { // strings and numbers only: cannot happen
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// object is the agent's entry in a master's state ("slaves").
func (a *Agent) object() map[string]any {
	return map[string]any{
		"id":         a.ID,
		"hostname":   a.Hostname,
		"pid":        a.PID(),
		"active":     true,
		"attributes": map[string]any{},
		"resources":  map[string]any{"cpus": 4, "mem": 8192, "disk": 40960, "ports": "[31000-32000]"},
	}
}

// SetAgents replaces the agents of every master's state with these (the leading master serves
// them; the others serve none, as before).
func (c *Cluster) SetAgents(agents ...*Agent) {
	c.EditState(func(st map[string]any) {
		slaves := make([]any, 0, len(agents))
		for _, a := range agents {
			slaves = append(slaves, a.object())
		}
		st["slaves"] = slaves
	})
}

// SetMasterFlag sets one of the master flags the state documents carry ("flags"), e.g. "acls"
// (as JSON text); an empty value removes it.
func (c *Cluster) SetMasterFlag(name, value string) {
	c.EditState(func(st map[string]any) {
		flags, _ := st["flags"].(map[string]any)
		if flags == nil {
			flags = map[string]any{}
		}
		flags = maps.Clone(flags)
		if value == "" {
			delete(flags, name)
		} else {
			flags[name] = value
		}
		st["flags"] = flags
	})
}

// Elect makes Masters[i] the leader every master names and sets the "elected_time" it reports
// to at, as a real master does when it wins an election; the others report none.
func (c *Cluster) Elect(i int, at time.Time) error {
	if i < 0 || i >= len(c.Masters) {
		return errors.New("fakemesos: Elect: no such master")
	}
	secs := float64(at.UnixNano()) / 1e9
	for j, m := range c.Masters {
		m.EditState(func(st map[string]any) {
			if j == i {
				st["elected_time"] = json.Number(fmt.Sprintf("%.6f", math.Round(secs*1e6)/1e6))
			} else {
				delete(st, "elected_time")
			}
		})
	}
	c.SetLeader(i)
	return nil
}
