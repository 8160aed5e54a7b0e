package haproxy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/templates"
)

// Where the builder holds Marathon data and per-app templates to their types (issue 12: an
// app can only ever affect its own routes). Label values and the app id are checked by
// ParseLabels, so a bad one leaves out its port or app before anything renders; the routing
// rule and the Marathon health check where a port is decided; tasks where they become
// server slots; and every per-app template, in confined mode, right after it rendered with
// the app's values. Whatever is refused never reaches the model, so neither the reload path
// nor the Runtime API (which only replays the model's slots and map entries) can see it.

// LabelTemplates is how per-app template labels (HAPROXY_{n}_<TEMPLATE>) are trusted
// (--label-templates). The zero value is LabelTemplatesConfined.
type LabelTemplates uint8

const (
	// LabelTemplatesConfined checks every rendered per-app template with ConfineTemplate: a
	// refused one leaves out its port (docs/label-confinement.md).
	LabelTemplatesConfined LabelTemplates = iota
	// LabelTemplatesFull writes per-app templates as they render, as marathon-lb did: for
	// clusters where every app team may change the whole edge.
	LabelTemplatesFull
)

func (t LabelTemplates) String() string {
	if t == LabelTemplatesFull {
		return "full"
	}
	return "confined"
}

// ParseLabelTemplates reads the value of --label-templates.
func ParseLabelTemplates(s string) (LabelTemplates, error) {
	switch s {
	case "confined":
		return LabelTemplatesConfined, nil
	case "full":
		return LabelTemplatesFull, nil
	}
	return 0, fmt.Errorf("--label-templates %q: want confined or full", s)
}

// confined reports whether the template name of this port is an app's label override that
// must be checked.
func (r *renderer) confined(name string) bool {
	if r.b.cfg.LabelTemplates == LabelTemplatesFull {
		return false
	}
	_, ok := r.s.pl.Templates[name]
	return ok
}

// scope returns what the port owns, for ConfineTemplate.
func (r *renderer) scope(name string) AppScope {
	s := r.s
	sc := NewAppScope(PortLabel(s.idx, name), s.u.key, s.name, s.pl.VHosts)
	for _, n := range s.u.backends {
		if n != s.name {
			sc.Backends = append(sc.Backends, n)
		}
	}
	sc.BindAddr, sc.ServicePort, sc.SSLCert = s.pl.BindAddr, s.port, s.pl.SSLCert
	return sc
}

// confine checks what the label override of template name rendered to.
func (r *renderer) confine(name, rendered string) error {
	return ConfineTemplate(name, rendered, r.scope(name))
}

// The slot a server template is checked with: one sentinel slot serves every backend, so the
// verdict on the rendered text is cached across apps.
const (
	confineSlotName = "s1"
	confineSlotAddr = "192.0.2.1"
	confineSlotHost = "agent.invalid"
	confineSlotPort = "1"
)

// confineServers checks the label overrides of the server templates: the server line is
// rendered for one sentinel slot (with the health check options it would get), the health
// check options with the port's values.
func (r *renderer) confineServers(sr *serverRender, srvHCName string) error {
	if !r.confined(templates.BackendServerOptions) && (sr.hc == nil || !r.confined(srvHCName)) {
		return nil
	}
	v := sr.values()
	hc := ""
	if sr.hc != nil {
		hv := v
		if sr.perSlotCheckPort {
			hv.Set(templates.FieldHealthCheckPort, confineSlotPort)
			hv.Set(templates.FieldHealthCheckPortOptions, " port "+confineSlotPort)
		}
		text, err := sr.hc.Execute(&hv)
		if err != nil {
			return err
		}
		if r.confined(srvHCName) {
			if err := r.confine(srvHCName, text); err != nil {
				return err
			}
		}
		hc = prefixed(" ", strings.TrimSpace(text))
	}
	if !r.confined(templates.BackendServerOptions) {
		return nil
	}
	v.Set(templates.FieldServerName, confineSlotName)
	v.Set(templates.FieldServerID, "1")
	v.Set(templates.FieldHost, confineSlotHost)
	v.Set(templates.FieldHostIPv4, confineSlotAddr)
	v.Set(templates.FieldPort, confineSlotPort)
	v.Set(templates.FieldCookieOptions, "")
	if sr.sticky {
		v.Set(templates.FieldCookieOptions, " cookie "+confineSlotName)
	}
	v.Set(templates.FieldHealthCheckOptions, hc)
	v.Set(templates.FieldOtherOptions, "")
	text, err := sr.tmpl.Execute(&v)
	if err != nil {
		return err
	}
	sc := r.scope(templates.BackendServerOptions)
	sc.ServerName, sc.ServerAddr, sc.ServerHost = confineSlotName, confineSlotAddr, confineSlotHost
	return ConfineTemplate(templates.BackendServerOptions, text, sc)
}

// checkHealthCheck holds the Marathon health check a port renders from to its type: its path
// goes into "option httpchk GET {healthCheckPath}" and its port into "port {healthCheckPort}".
func checkHealthCheck(appID string, hc *discovery.HealthCheck) error {
	if hc.Path != "" && checkHealthCheckPath("", hc.Path) != nil {
		return checkHealthCheckPath("app "+appID+" healthChecks[].path", hc.Path)
	}
	if hc.Port != 0 && CheckPort("", hc.Port) != nil {
		return CheckPort("app "+appID+" healthChecks[].port", hc.Port)
	}
	return nil
}

// checkHealthCheckPath accepts a path of RFC 3986 path and query characters starting with '/'.
func checkHealthCheckPath(field, p string) error {
	if err := CheckText(field, p); err != nil {
		return err
	}
	if p[0] != '/' {
		return refuse(field, p, "want a path starting with /")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !isPathChar(c) && c != '?' {
			return refuse(field, p, fmt.Sprintf("character %q is not allowed", c))
		}
	}
	return nil
}

// checkGroupKey checks HAPROXY_DEPLOYMENT_GROUP as the unit key "/<group>" it becomes: the key
// is written where an app id would be.
func checkGroupKey(g string) error {
	key := g
	if !strings.HasPrefix(key, "/") {
		key = "/" + key
	}
	return CheckAppID("label "+LabelDeploymentGroup, key)
}

// checkPortValues checks port i's label values (CheckPortLabels) and its Marathon service
// port.
func checkPortValues(app *discovery.App, p *PortLabels) error {
	if err := CheckPortLabels(p); err != nil {
		return err
	}
	if p.Index < len(app.Ports) {
		if sp := app.Ports[p.Index].ServicePort; sp != 0 && CheckPort("", sp) != nil {
			return CheckPort("app "+app.ID+" portDefinitions["+strconv.Itoa(p.Index)+"].servicePort", sp)
		}
	}
	return nil
}
