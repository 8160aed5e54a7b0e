package haproxy

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Bamboo template mode: HAProxy's configuration rendered from a bamboo Go template, fed bamboo's
// template data (BambooData: .Apps and .Services, in bamboo's shapes and field names) made from
// the same snapshot the native renderer reads, with bamboo's template functions. lodestar cannot
// know what a user's template makes of the data, so there is no Runtime API path: every change
// of the rendered text is a reload (coalesced like any other), after `haproxy -c`.

// BambooData is what a bamboo template sees: the apps in id order and the routing rules by app id.
type BambooData struct {
	Apps     []BambooApp
	Services map[string]BambooService
}

// BambooApp is one Marathon app, in bamboo's shape.
type BambooApp struct {
	Id                  string // "/shop/web"
	MesosDnsId          string // "web-shop"
	EscapedId           string // "::shop::web"
	HealthCheckPath     string // of the first HTTP or HTTPS health check
	HealthCheckProtocol string
	HealthChecks        []BambooHealthCheck
	ReadinessCheckPath  string
	Tasks               []BambooTask
	ServicePort         int
	ServicePorts        []int
	// Env is always empty: lodestar does not keep apps' environment (it may hold secrets).
	Env       map[string]string
	Labels    map[string]string
	SplitId   []string // "/shop/web" split at "/": "", "shop", "web"
	IpAddress BambooIPAddress
}

// BambooHealthCheck is one of an app's health checks.
type BambooHealthCheck struct {
	Protocol  string
	Path      string
	PortIndex int
}

// BambooIPAddress is an IP-per-task app's discovery information.
type BambooIPAddress struct {
	Discovery struct{ Ports []BambooPort }
}

// BambooPort is one discovery port of an IP-per-task app.
type BambooPort struct {
	Number   int
	Name     string
	Protocol string
}

// BambooTask is one task with an address: Host and Port are where its first port is served.
type BambooTask struct {
	Id    string
	Host  string
	Port  int
	Ports []int
	Alive bool // every health check has a result and all of them are alive
	State string
	Ready bool // its readiness result, else whether lodestar sends it traffic
}

// BambooService is a routing rule (bamboo's /api/services), Acl also as Config["Acl"].
type BambooService struct {
	Id     string
	Acl    string
	Config map[string]string
}

// BambooTemplate is a parsed bamboo template.
type BambooTemplate struct {
	path string
	tpl  *template.Template
}

// bambooFuncs are the functions bamboo's templates call.
var bambooFuncs = template.FuncMap{
	"hasKey": func(services map[string]BambooService, appID string) bool {
		_, ok := services[appID]
		return ok
	},
	"getService": func(services map[string]BambooService, appID string) BambooService { return services[appID] },
	"Split":      strings.Split,
	"Contains":   strings.Contains,
	"Join":       strings.Join,
	"Replace":    strings.Replace,
	"ToUpper":    strings.ToUpper,
	"ToLower":    strings.ToLower,
	"ToInt":      strconv.Atoi,
}

// LoadBambooTemplate reads and parses a bamboo template.
func LoadBambooTemplate(path string) (*BambooTemplate, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bamboo template: %w", err)
	}
	return ParseBambooTemplate(path, string(text))
}

// ParseBambooTemplate parses a bamboo template's text; name names it in errors.
func ParseBambooTemplate(name, text string) (*BambooTemplate, error) {
	tpl, err := template.New(name).Funcs(bambooFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("bamboo template %s: %w", name, err)
	}
	return &BambooTemplate{path: name, tpl: tpl}, nil
}

// Render renders the configuration of snap for the apps of groups ("*": every app).
func (t *BambooTemplate) Render(snap *discovery.Snapshot, groups []string) ([]byte, error) {
	var buf bytes.Buffer
	if err := t.tpl.Execute(&buf, NewBambooData(snap, groups)); err != nil {
		return nil, fmt.Errorf("bamboo template %s: %w", t.path, err)
	}
	return buf.Bytes(), nil
}

// NewBambooData makes bamboo's template data of snap. A value with a line break or another
// control character (an app id, a label, a rule, a host) would let one app write HAProxy
// configuration lines of its own through the template: such an app, label, rule or task is
// left out.
func NewBambooData(snap *discovery.Snapshot, groups []string) BambooData {
	d := BambooData{Services: map[string]BambooService{}}
	if snap == nil {
		return d
	}
	for _, r := range snap.Rules {
		if !templateSafe(r.AppID) || !templateSafe(r.ACL) {
			continue
		}
		d.Services[r.AppID] = BambooService{Id: r.AppID, Acl: r.ACL, Config: map[string]string{"Acl": r.ACL}}
	}
	snap.Apps.Each(func(a *discovery.App) bool {
		if templateSafe(a.ID) && inBambooGroups(a, groups) {
			d.Apps = append(d.Apps, newBambooApp(a))
		}
		return true
	})
	return d
}

// inBambooGroups says whether the app's HAPROXY_GROUP is one of groups ("*": any app).
func inBambooGroups(a *discovery.App, groups []string) bool {
	if slices.Contains(groups, "*") {
		return true
	}
	for _, g := range strings.Split(a.Labels["HAPROXY_GROUP"], ",") {
		if g = strings.TrimSpace(g); g != "" && slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

func newBambooApp(a *discovery.App) BambooApp {
	id := "/" + strings.TrimPrefix(a.ID, "/")
	app := BambooApp{
		Id:         id,
		MesosDnsId: reversedGroups(id),
		EscapedId:  strings.ReplaceAll(a.ID, "/", "::"),
		Env:        map[string]string{},
		Labels:     map[string]string{},
		SplitId:    strings.Split(a.ID, "/"),
	}
	for k, v := range a.Labels {
		if templateSafe(k) && templateSafe(v) {
			app.Labels[k] = v
		}
	}
	for _, hc := range a.HealthChecks {
		app.HealthChecks = append(app.HealthChecks, BambooHealthCheck{Protocol: hc.Protocol, Path: hc.Path, PortIndex: hc.PortIndex})
		if app.HealthCheckProtocol == "" && (hc.Protocol == "HTTP" || hc.Protocol == "HTTPS") && templateSafe(hc.Path) {
			app.HealthCheckPath, app.HealthCheckProtocol = hc.Path, hc.Protocol
		}
	}
	if len(a.ReadinessChecks) > 0 && templateSafe(a.ReadinessChecks[0].Path) {
		app.ReadinessCheckPath = a.ReadinessChecks[0].Path
	}
	for _, p := range a.Ports {
		app.ServicePorts = append(app.ServicePorts, p.ServicePort)
		if a.Network == discovery.NetworkContainer {
			app.IpAddress.Discovery.Ports = append(app.IpAddress.Discovery.Ports, BambooPort{Number: p.ContainerPort, Name: p.Name, Protocol: p.Protocol})
		}
	}
	if len(app.ServicePorts) > 0 {
		app.ServicePort = app.ServicePorts[0]
	}
	for _, t := range a.Tasks {
		if bt, ok := newBambooTask(a, t); ok {
			app.Tasks = append(app.Tasks, bt)
		}
	}
	return app
}

// newBambooTask is the task in bamboo's shape; false when it has no address yet.
func newBambooTask(a *discovery.App, t *discovery.Task) (BambooTask, bool) {
	if len(t.Endpoints) == 0 || t.Endpoints[0].Host == "" || t.Endpoints[0].Port == 0 || !templateSafe(t.Endpoints[0].Host) || !templateSafe(t.ID) {
		return BambooTask{}, false
	}
	alive := len(t.Health) >= len(a.HealthChecks)
	for _, h := range t.Health {
		alive = alive && h.Alive
	}
	ready := t.Eligible
	if t.Ready != nil {
		ready = *t.Ready && t.State == "TASK_RUNNING"
	}
	return BambooTask{
		Id: t.ID, Host: t.Endpoints[0].Host, Port: t.Endpoints[0].Port, Ports: slices.Clone(t.HostPorts),
		Alive: alive, State: t.State, Ready: ready,
	}, true
}

// reversedGroups is the app id's parts in reverse, joined by "-" ("/shop/web" → "web-shop").
func reversedGroups(id string) string {
	var parts []string
	for _, p := range slices.Backward(strings.Split(id, "/")) {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "-")
}

// templateSafe: no control characters, so a value stays on its line of the configuration.
func templateSafe(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
