package haproxy

import (
	"net"
	"slices"
	"strconv"
)

// AppRoute is how the running configuration serves one service port of an app: the API's
// /v1/apps/{id} and the status page show it.
type AppRoute struct {
	PortIndex   int
	ServicePort int
	Mode        string
	Backend     string
	// Frontend is the app's own frontend on its service port, "" when it has none.
	Frontend string
	VHosts   []string
	Path     string
	// Servers are the slots that hold a task, in slot order.
	Servers []Slot
}

// LabelsView is an app's HAProxy labels as parsed, with secrets left out, for display.
type LabelsView struct {
	AppID      string      `json:"app_id"`
	Groups     []string    `json:"groups,omitempty"`
	Deployment *Deployment `json:"deployment,omitempty"`
	Ports      []PortView  `json:"ports"`
	Error      string      `json:"error,omitempty"`
	Warnings   []string    `json:"warnings,omitempty"`
}

// PortView is one port's parsed labels. Basic auth shows its realm and user, never the
// password.
type PortView struct {
	Index  int      `json:"index"`
	Error  string   `json:"error,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Enabled is HAPROXY_{n}_ENABLED when the label is set (it matters with --strict-mode).
	Enabled         *bool             `json:"enabled,omitempty"`
	VHosts          []string          `json:"vhosts,omitempty"`
	Path            string            `json:"path,omitempty"`
	Mode            string            `json:"mode,omitempty"`
	Balance         string            `json:"balance,omitempty"`
	Sticky          bool              `json:"sticky,omitempty"`
	RedirectToHTTPS bool              `json:"redirect_to_https,omitempty"`
	UseHSTS         bool              `json:"use_hsts,omitempty"`
	SSLCert         string            `json:"ssl_cert,omitempty"`
	BindAddr        string            `json:"bind_addr,omitempty"`
	Port            int               `json:"port,omitempty"`
	BackendWeight   int               `json:"backend_weight,omitempty"`
	AuthRealm       string            `json:"auth_realm,omitempty"`
	AuthUser        string            `json:"auth_user,omitempty"`
	NetworkAllowed  []string          `json:"network_allowed,omitempty"`
	Templates       map[string]string `json:"templates,omitempty"`
}

// AppRoutes returns how the configuration HAProxy runs serves the app, in port order; nil
// when it does not serve the app (another group, no ports, left out, or nothing applied yet).
// The backends of a zero-downtime deployment group are reported for each of its apps.
func (a *Applier) AppRoutes(appID string) []AppRoute {
	m := a.runningModel()
	if m == nil {
		return nil
	}
	al := m.labelsOf(appID)
	owners := []string{appID}
	if al != nil && al.Deployment.Group != "" {
		owners = append(owners, "/"+al.Deployment.Group)
	}
	var out []AppRoute
	for _, be := range m.Backends {
		if !slices.Contains(owners, be.Owner) {
			continue
		}
		r := AppRoute{PortIndex: be.PortIndex, ServicePort: be.ServicePort, Mode: be.Mode, Backend: be.Name}
		for _, fe := range m.Frontends {
			if fe.Owner == be.Owner && fe.Port == be.ServicePort {
				r.Frontend = fe.Name
				break
			}
		}
		if al != nil && be.PortIndex < len(al.Ports) {
			r.VHosts, r.Path = al.Ports[be.PortIndex].VHosts, al.Ports[be.PortIndex].Path
		}
		for _, s := range be.Slots {
			if !s.Spare() {
				r.Servers = append(r.Servers, s)
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y AppRoute) int { return x.PortIndex - y.PortIndex })
	return out
}

// AppLabels returns the app's labels as the running configuration parsed them, nil for an app
// the configuration does not know.
func (a *Applier) AppLabels(appID string) *LabelsView {
	m := a.runningModel()
	if m == nil {
		return nil
	}
	al := m.labelsOf(appID)
	if al == nil {
		return nil
	}
	v := &LabelsView{AppID: al.AppID, Groups: al.Groups, Ports: make([]PortView, 0, len(al.Ports))}
	if al.Deployment.Group != "" {
		d := al.Deployment
		v.Deployment = &d
	}
	if al.Err != nil {
		v.Error = al.Err.Error()
	}
	for _, w := range al.Warnings {
		if w.Port >= 0 {
			v.Warnings = append(v.Warnings, "port "+strconv.Itoa(w.Port)+": "+w.Message)
			continue
		}
		v.Warnings = append(v.Warnings, w.Message)
	}
	for _, p := range al.Ports {
		pv := PortView{Index: p.Index, Groups: p.Groups, VHosts: p.VHosts, Path: p.Path,
			Mode: p.Mode, Balance: p.Balance, Sticky: p.Sticky, RedirectToHTTPS: p.RedirectToHTTPS,
			UseHSTS: p.UseHSTS, SSLCert: p.SSLCert, BindAddr: p.BindAddr, Port: p.Port,
			BackendWeight: p.BackendWeight, NetworkAllowed: p.NetworkAllowed, Templates: p.Templates}
		if p.Err != nil {
			pv.Error = p.Err.Error()
		}
		if p.EnabledSet {
			pv.Enabled = &p.Enabled
		}
		if p.Auth != nil {
			pv.AuthRealm, pv.AuthUser = p.Auth.Realm, p.Auth.User
		}
		v.Ports = append(v.Ports, pv)
	}
	return v
}

// labelsOf finds the parsed labels of an app by id.
func (m *Model) labelsOf(appID string) *AppLabels {
	for _, al := range m.labels {
		if al.AppID == appID {
			return al
		}
	}
	return nil
}

// Address returns the slot's server address as host:port.
func (s Slot) Address() string {
	host := s.Addr
	if host == "" {
		host = s.Host
	}
	return net.JoinHostPort(host, strconv.Itoa(s.Port))
}

// AppBackend names the backend serving one service port of an app.
type AppBackend struct {
	AppID       string
	ServicePort int
	Backend     string
}

// AppBackends lists, in one pass, the backend of every service port of every app the running
// configuration serves: what AppRoutes gives app by app, for a reader of every app (the
// API's GET /v1/requests), since each AppRoutes scans every backend. A deployment group's
// backends are listed for each of its apps, as AppRoutes reports them. Nil before anything
// was applied.
func (a *Applier) AppBackends() []AppBackend {
	m := a.runningModel()
	if m == nil {
		return nil
	}
	members := map[string][]string{} // a group's owner ("/group") → its apps
	for _, al := range m.labels {
		if al.Deployment.Group != "" {
			g := "/" + al.Deployment.Group
			members[g] = append(members[g], al.AppID)
		}
	}
	var out []AppBackend
	for _, be := range m.Backends {
		// The owner itself, as AppRoutes(owner) finds it, and every member of a group owner.
		out = append(out, AppBackend{AppID: be.Owner, ServicePort: be.ServicePort, Backend: be.Name})
		for _, id := range members[be.Owner] {
			if id != be.Owner {
				out = append(out, AppBackend{AppID: id, ServicePort: be.ServicePort, Backend: be.Name})
			}
		}
	}
	return out
}
