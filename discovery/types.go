// Package discovery holds lodestar's service registry: the types every front end reads, the one
// decoder of each wire format (Marathon apps and events, Mesos state), and the Registry that
// turns updates from sources into immutable, versioned Snapshots.
//
// Data flows one way: sources (discovery/marathon, discovery/file, …) send Updates to the
// Registry; front ends (haproxy, dnsserver, api) read Snapshots. Nothing in a Snapshot is ever
// mutated after it is published, so readers need no locks.
package discovery

import (
	"slices"
	"time"
)

// NetworkMode is how a Marathon app's tasks are reached.
type NetworkMode string

// Network modes, as Marathon 1.5+ names them in `networks[].mode` (older shapes are mapped).
const (
	// NetworkHost: the task listens on the agent's address, on the host ports Mesos gave it.
	NetworkHost NetworkMode = "host"
	// NetworkBridge: Docker/UCR bridge; reached on the agent's address at the mapped host ports.
	NetworkBridge NetworkMode = "bridge"
	// NetworkContainer: IP-per-task (virtual networks); reached on the task's own IP at the
	// container ports.
	NetworkContainer NetworkMode = "container"
)

// App is one Marathon application as lodestar routes and names it.
type App struct {
	// ID is Marathon's app id with its leading slash, e.g. "/shop/web".
	ID        string
	Labels    map[string]string
	Instances int
	Version   string
	// ConfigChangedAt is Marathon's versionInfo.lastConfigChangeAt (UTC); zero when Marathon
	// gave none or an unparsable one. The oldest app holds a contested route on a cold start.
	ConfigChangedAt time.Time
	Network         NetworkMode
	// Ports are the app's ports in Marathon's order; HAPROXY_{n}_* labels index into them.
	Ports           []Port
	HealthChecks    []HealthCheck
	ReadinessChecks []ReadinessCheck
	// Deployments are the ids of deployments in progress for this app.
	Deployments []string
	// Tasks are sorted by ID. Their Endpoints, Eligible and Reason are derived from the app.
	Tasks []*Task
}

// Port is one of an app's ports: its service port (the port a load balancer exposes) and how a
// task's port is found for it.
type Port struct {
	// ServicePort is the port the app is exposed on; 0 when Marathon assigned none.
	ServicePort int
	// ContainerPort is the port inside the container (bridge and container networking).
	ContainerPort int
	// HostPort is the requested host port (0 = assigned by Mesos).
	HostPort int
	Protocol string
	Name     string
	Labels   map[string]string
}

// HealthCheck is one Marathon health check definition.
type HealthCheck struct {
	Protocol               string
	Path                   string
	PortIndex              int
	Port                   int
	Command                string
	GracePeriodSeconds     int
	IntervalSeconds        int
	TimeoutSeconds         int
	MaxConsecutiveFailures int
	IgnoreHTTP1xx          bool
}

// ReadinessCheck is one Marathon readiness check definition (honoured during deployments).
type ReadinessCheck struct {
	Name     string
	Protocol string
	Path     string
	PortName string
}

// HealthResult is Marathon's latest result of one health check for one task.
type HealthResult struct {
	Alive               bool
	ConsecutiveFailures int
}

// Endpoint is where a task serves one of its app's ports.
type Endpoint struct {
	// Host is an IP address, or the agent's host name when Marathon reports only that.
	Host string
	Port int
}

// Task is one Marathon task (instance) of an app.
type Task struct {
	ID      string
	AppID   string
	Host    string
	SlaveID string
	State   string
	// IPAddresses are the task's own addresses (IP-per-task and Docker bridge networks).
	IPAddresses []string
	// HostPorts are the agent ports Mesos assigned, in the app's port order.
	HostPorts []int
	StagedAt  string
	StartedAt string
	Version   string
	// Health holds one result per health check; empty means no results yet, which counts as
	// healthy (a fresh Marathon leader has none, and must not empty every app).
	Health []HealthResult
	// Ready is the readiness check result during a deployment; nil means none reported.
	Ready *bool

	// Endpoints has one entry per app port (same index as App.Ports); empty when the task has
	// no address for them yet.
	Endpoints []Endpoint
	// Eligible says whether the task receives traffic. Reason says why not, when it does not.
	Eligible bool
	Reason   string
	// Draining is set for TASK_KILLING tasks: they finish their connections but get no new ones.
	Draining bool
}

// ServiceRule is a bamboo-style routing rule kept outside Marathon (in ZooKeeper): it replaces
// the vhost ACL of one app.
type ServiceRule struct {
	AppID string
	ACL   string
}

// MesosState is what lodestar keeps of a Mesos master's /master/state.
type MesosState struct {
	// Leader is the leading master's address "ip:port"; LeaderPID its libprocess pid.
	Leader     string
	LeaderPID  string
	Hostname   string
	Frameworks []Framework
	Agents     []Agent
	// Masters are every known master, in a stable order. Filled by the Mesos source (from
	// ZooKeeper or its static list); a state file alone knows only the leader.
	Masters []Master
}

// MarathonState is what lodestar keeps of Marathon itself, apart from its apps.
type MarathonState struct {
	// Leader is the leading member's "host:port" as Marathon's /v2/leader names it (its
	// --hostname and HTTP port); "" when no leader is known.
	Leader string
	// LeaderAddr is Leader with the host resolved to an IP address, "ip:port" (what a proxy
	// connects to); "" when the name did not resolve.
	LeaderAddr string
}

// Framework is a Mesos framework and its tasks.
type Framework struct {
	ID       string
	Name     string
	PID      string
	Hostname string
	Tasks    []MesosTask
}

// Agent is a Mesos agent (slave).
type Agent struct {
	ID       string
	Hostname string
	PID      string
}

// Master is one Mesos master.
type Master struct {
	ID       string
	Hostname string
	IP       string
	Port     int
}

// Label is a Mesos key/value label.
type Label struct {
	Key   string
	Value string
}

// MesosTask is a task as the Mesos master reports it.
type MesosTask struct {
	ID          string
	Name        string
	FrameworkID string
	SlaveID     string
	State       string
	// Ports are the host ports from the task's `resources.ports` ranges.
	Ports     []int
	Labels    []Label
	Statuses  []MesosTaskStatus
	Discovery *DiscoveryInfo
}

// MesosTaskStatus is one entry of a Mesos task's status history.
type MesosTaskStatus struct {
	State     string
	Timestamp float64
	Labels    []Label
	// NetworkIPs are container_status.network_infos[].ip_addresses[].ip_address, in order.
	NetworkIPs []string
}

// DiscoveryInfo is a Mesos task's DiscoveryInfo.
type DiscoveryInfo struct {
	Name  string
	Ports []DiscoveryPort
}

// DiscoveryPort is one named port of a DiscoveryInfo.
type DiscoveryPort struct {
	Number   int
	Protocol string
	Name     string
}

// Task returns the app's task with the given id, or nil.
func (a *App) Task(id string) *Task {
	i, ok := slices.BinarySearchFunc(a.Tasks, id, func(t *Task, id string) int { return cmpString(t.ID, id) })
	if !ok {
		return nil
	}
	return a.Tasks[i]
}

// EligibleTasks returns the tasks that receive traffic.
func (a *App) EligibleTasks() []*Task {
	var out []*Task
	for _, t := range a.Tasks {
		if t.Eligible {
			out = append(out, t)
		}
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
