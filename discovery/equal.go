package discovery

import (
	"maps"
	"slices"
)

// Equal reports whether two apps carry the same content (tasks included). The registry uses it
// to drop no-op updates; it is written out field by field because reflect.DeepEqual is an order
// of magnitude slower on the full-sync path.
func (a *App) Equal(b *App) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if a.ID != b.ID || a.Instances != b.Instances || a.Version != b.Version || a.Network != b.Network ||
		!a.ConfigChangedAt.Equal(b.ConfigChangedAt) ||
		!maps.Equal(a.Labels, b.Labels) ||
		!slices.EqualFunc(a.Ports, b.Ports, Port.equal) ||
		!slices.Equal(a.HealthChecks, b.HealthChecks) ||
		!slices.Equal(a.ReadinessChecks, b.ReadinessChecks) ||
		!slices.Equal(a.Deployments, b.Deployments) {
		return false
	}
	return slices.EqualFunc(a.Tasks, b.Tasks, (*Task).Equal)
}

func (p Port) equal(q Port) bool {
	return p.ServicePort == q.ServicePort && p.ContainerPort == q.ContainerPort && p.HostPort == q.HostPort &&
		p.Protocol == q.Protocol && p.Name == q.Name && maps.Equal(p.Labels, q.Labels)
}

// Equal reports whether two tasks carry the same content, derived fields included.
func (t *Task) Equal(u *Task) bool {
	if t == u {
		return true
	}
	if t == nil || u == nil {
		return false
	}
	return t.ID == u.ID && t.AppID == u.AppID && t.Host == u.Host && t.SlaveID == u.SlaveID &&
		t.State == u.State && t.StagedAt == u.StagedAt && t.StartedAt == u.StartedAt && t.Version == u.Version &&
		slices.Equal(t.IPAddresses, u.IPAddresses) && slices.Equal(t.HostPorts, u.HostPorts) &&
		slices.Equal(t.Health, u.Health) && equalBoolPtr(t.Ready, u.Ready) &&
		slices.Equal(t.Endpoints, u.Endpoints) &&
		t.Eligible == u.Eligible && t.Reason == u.Reason && t.Draining == u.Draining
}

func equalBoolPtr(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
