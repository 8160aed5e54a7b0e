package discovery

import (
	"fmt"
	"net/netip"
)

// Task states as Mesos and Marathon name them.
const (
	StateStaging  = "TASK_STAGING"
	StateStarting = "TASK_STARTING"
	StateRunning  = "TASK_RUNNING"
	StateKilling  = "TASK_KILLING"
)

// terminalStates end a task: a status update with one of them removes the task.
var terminalStates = map[string]bool{
	"TASK_FINISHED": true, "TASK_FAILED": true, "TASK_KILLED": true, "TASK_LOST": true,
	"TASK_ERROR": true, "TASK_DROPPED": true, "TASK_GONE": true, "TASK_GONE_BY_OPERATOR": true,
	"TASK_UNKNOWN": true,
}

// IsTerminal reports whether a task in this state is gone for good.
func IsTerminal(state string) bool { return terminalStates[state] }

// resolve derives a task's Endpoints, Eligible, Reason and Draining from its app. It mutates t,
// which must be a fresh copy owned by the caller (never a published task).
//
// The rules are DESIGN.md's: only TASK_RUNNING tasks with an address and ports; TASK_KILLING is
// drained; a failing health check takes a task out but no results yet keeps it in (a new
// Marathon leader has none); a readiness result of false during a deployment keeps it out.
func (a *App) resolve(t *Task) {
	t.Endpoints = a.endpoints(t)
	t.Eligible, t.Draining, t.Reason = false, false, ""
	switch {
	case t.State == StateKilling:
		t.Draining = true
		t.Reason = "TASK_KILLING: draining"
	case t.State != StateRunning:
		t.Reason = "state " + t.State
	case t.Host == "" && len(t.IPAddresses) == 0:
		t.Reason = "no host"
	case len(a.Ports) > 0 && len(t.Endpoints) == 0:
		t.Reason = a.noPortsReason(t)
	case !healthy(t.Health):
		t.Reason = "health check failing"
	case t.Ready != nil && !*t.Ready:
		t.Reason = "readiness check not passed"
	default:
		t.Eligible = true
	}
}

func (a *App) noPortsReason(t *Task) string {
	if a.Network == NetworkContainer {
		if len(t.IPAddresses) == 0 {
			return "no task IP address yet (container networking)"
		}
		return "no container ports (container networking)"
	}
	if t.Host == "" {
		return fmt.Sprintf("no agent host (%s networking)", a.Network)
	}
	return fmt.Sprintf("has %d host ports, the app needs %d", len(t.HostPorts), len(a.Ports))
}

func healthy(results []HealthResult) bool {
	for _, r := range results {
		if !r.Alive {
			return false
		}
	}
	return true
}

// endpoints computes where the task serves each app port, by network mode:
// host and bridge use the agent host and the task's host ports; container networking uses the
// task's own IP and the container ports (or its host ports where a mapping asked for one).
func (a *App) endpoints(t *Task) []Endpoint {
	if len(a.Ports) == 0 {
		return nil
	}
	eps := make([]Endpoint, len(a.Ports))
	switch a.Network {
	case NetworkContainer:
		ip := preferredIP(t.IPAddresses)
		if ip == "" {
			return nil
		}
		for i, p := range a.Ports {
			port := p.ContainerPort
			if port == 0 && i < len(t.HostPorts) {
				port = t.HostPorts[i]
			}
			if port == 0 {
				return nil
			}
			eps[i] = Endpoint{Host: ip, Port: port}
		}
	default:
		if t.Host == "" || len(t.HostPorts) < len(a.Ports) {
			return nil
		}
		for i := range a.Ports {
			eps[i] = Endpoint{Host: t.Host, Port: t.HostPorts[i]}
		}
	}
	return eps
}

// preferredIP returns the first IPv4 address, else the first address.
func preferredIP(ips []string) string {
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() {
			return s
		}
	}
	if len(ips) > 0 {
		return ips[0]
	}
	return ""
}
