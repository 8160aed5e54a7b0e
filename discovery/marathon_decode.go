package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The wire types mirror Marathon's /v2/apps JSON (1.x, including the 1.5+ `networks` and
// `container.portMappings` shapes). They are unexported: every source decodes through
// DecodeMarathonApps and gets App values.
type wireApp struct {
	ID                    string                `json:"id"`
	Instances             int                   `json:"instances"`
	Labels                map[string]string     `json:"labels"`
	Version               string                `json:"version"`
	VersionInfo           *wireVersionInfo      `json:"versionInfo"`
	Ports                 []int                 `json:"ports"`
	PortDefinitions       []wirePortDef         `json:"portDefinitions"`
	Container             *wireContainer        `json:"container"`
	Networks              []wireNetwork         `json:"networks"`
	IPAddress             *wireIPAddress        `json:"ipAddress"`
	HealthChecks          []wireHealthCheck     `json:"healthChecks"`
	ReadinessChecks       []wireReadinessCheck  `json:"readinessChecks"`
	Deployments           []wireDeployment      `json:"deployments"`
	ReadinessCheckResults []wireReadinessResult `json:"readinessCheckResults"`
	Tasks                 []wireTask            `json:"tasks"`
}

// The nested wire types are aliases of unnamed struct types, not named types, so that
// encoding/json's error messages (which print the Go types) read as they always have.
type (
	wireContainer = struct {
		Type         string            `json:"type"`
		Docker       *wireDocker       `json:"docker"`
		PortMappings []wirePortMapping `json:"portMappings"`
	}
	wireDocker = struct {
		Network      string            `json:"network"`
		PortMappings []wirePortMapping `json:"portMappings"`
	}
	wireNetwork   = struct{ Mode, Name string }
	wireIPAddress = struct {
		NetworkName string             `json:"networkName"`
		Discovery   *wireIPAddressDisc `json:"discovery"`
	}
	wireIPAddressDisc = struct {
		Ports []wireDiscoveryPort `json:"ports"`
	}
	wireDiscoveryPort = struct {
		Number   int    `json:"number"`
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
	}
	wireHealthCheck = struct {
		Protocol               string       `json:"protocol"`
		Path                   string       `json:"path"`
		PortIndex              int          `json:"portIndex"`
		Port                   int          `json:"port"`
		Command                *wireCommand `json:"command"`
		GracePeriodSeconds     int          `json:"gracePeriodSeconds"`
		IntervalSeconds        int          `json:"intervalSeconds"`
		TimeoutSeconds         int          `json:"timeoutSeconds"`
		MaxConsecutiveFailures int          `json:"maxConsecutiveFailures"`
		IgnoreHTTP1xx          bool         `json:"ignoreHttp1xx"`
	}
	wireCommand        = struct{ Value string }
	wireReadinessCheck = struct {
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
		Path     string `json:"path"`
		PortName string `json:"portName"`
	}
	wireDeployment  = struct{ ID string }
	wireVersionInfo = struct {
		LastConfigChangeAt string `json:"lastConfigChangeAt"`
	}
	wireReadinessResult = struct {
		TaskID string `json:"taskId"`
		Ready  bool   `json:"ready"`
	}
	wireTaskIP = struct {
		IPAddress string `json:"ipAddress"`
	}
	wireHealthResult = struct {
		Alive               bool `json:"alive"`
		ConsecutiveFailures int  `json:"consecutiveFailures"`
	}
)

type wirePortDef struct {
	Port     int               `json:"port"`
	Protocol string            `json:"protocol"`
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels"`
}

type wirePortMapping struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      int               `json:"hostPort"`
	ServicePort   int               `json:"servicePort"`
	Protocol      string            `json:"protocol"`
	Name          string            `json:"name"`
	Labels        map[string]string `json:"labels"`
}

type wireTask struct {
	ID                 string             `json:"id"`
	AppID              string             `json:"appId"`
	Host               string             `json:"host"`
	SlaveID            string             `json:"slaveId"`
	State              string             `json:"state"`
	StagedAt           string             `json:"stagedAt"`
	StartedAt          string             `json:"startedAt"`
	Version            string             `json:"version"`
	Ports              []int              `json:"ports"`
	IPAddresses        []wireTaskIP       `json:"ipAddresses"`
	HealthCheckResults []wireHealthResult `json:"healthCheckResults"`
}

// AppError is a problem with one app of a payload; the other apps are unaffected.
type AppError struct {
	// AppID is the app's id, or "#N" (its position) when even the id could not be read.
	AppID string
	Err   error
}

func (e *AppError) Error() string { return fmt.Sprintf("app %s: %v", e.AppID, e.Err) }
func (e *AppError) Unwrap() error { return e.Err }

// DecodeMarathonApps decodes a Marathon apps payload: `{"apps":[…]}` (GET /v2/apps),
// `{"app":{…}}` (GET /v2/apps/{id}), a bare app definition, or a JSON array of them. Apps that
// cannot be decoded are left out and reported one AppError each; err is non-nil only when
// the payload as a whole is unreadable.
//
// It uses the hand-written decoder of marathon_fastjson.go, which gives the same results as
// decodeMarathonAppsStd (encoding/json) and hands it every input it is not sure about.
func DecodeMarathonApps(data []byte) (apps []*App, appErrs []error, err error) {
	apps, appErrs, err = decodeMarathonAppsFast(data)
	if err != nil {
		return nil, nil, err
	}
	// Marathon never lists an app twice; a document that does (a hand-edited file) is wrong as
	// a whole, since there is no telling which copy was meant.
	if err := duplicateIDs(apps); err != nil {
		return nil, nil, err
	}
	return apps, appErrs, nil
}

// decodeMarathonAppsStd is DecodeMarathonApps on encoding/json: the reference implementation.
// The fast decoder falls back to it for documents that are not well-formed or unusual, and
// the tests compare the two.
func decodeMarathonAppsStd(data []byte) (apps []*App, appErrs []error, err error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, nil, errors.New("empty document: expected Marathon apps JSON")
	}
	if data[0] == '[' {
		return decodeAppList(data)
	}
	// Fast path: one pass into typed structs. Only when that fails do we go app by app to
	// find which ones are bad.
	var env struct {
		Apps *[]wireApp `json:"apps"`
		App  *wireApp   `json:"app"`
		ID   *string    `json:"id"`
	}
	if jerr := json.Unmarshal(data, &env); jerr == nil {
		switch {
		case env.Apps != nil:
			return convertApps(*env.Apps)
		case env.App != nil:
			return convertApps([]wireApp{*env.App})
		case env.ID != nil:
			var w wireApp
			if jerr := json.Unmarshal(data, &w); jerr != nil {
				return nil, nil, jerr
			}
			return convertApps([]wireApp{w})
		}
		return nil, nil, errors.New(`no "apps", "app" or "id" key: not a Marathon apps document`)
	}
	var raw struct {
		Apps json.RawMessage `json:"apps"`
		App  json.RawMessage `json:"app"`
	}
	if jerr := json.Unmarshal(data, &raw); jerr != nil {
		return nil, nil, fmt.Errorf("malformed Marathon apps JSON: %w", jerr)
	}
	switch {
	case raw.Apps != nil:
		return decodeAppList(raw.Apps)
	case raw.App != nil:
		return decodeAppList(append(append([]byte{'['}, raw.App...), ']'))
	}
	return decodeAppList(append(append([]byte{'['}, data...), ']'))
}

func decodeAppList(data []byte) ([]*App, []error, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, nil, fmt.Errorf("malformed Marathon apps list: %w", err)
	}
	var apps []*App
	var appErrs []error
	for i, item := range items {
		a, _, err := decodeAppItem(item, i)
		if err != nil {
			appErrs = append(appErrs, err)
			continue
		}
		apps = append(apps, a)
	}
	return apps, appErrs, nil
}

// decodeAppItem decodes the i-th app of a list with encoding/json. decoded is false when
// encoding/json rejected it (err is then an AppError naming it); a decoded app can still fail
// convertApp.
func decodeAppItem(item []byte, i int) (a *App, decoded bool, err error) {
	var w wireApp
	if err := json.Unmarshal(item, &w); err != nil {
		return nil, false, &AppError{AppID: appIDOf(item, i), Err: err}
	}
	a, err = convertApp(&w)
	return a, true, err
}

// appIDOf digs the id out of an app that failed to decode, for the error message.
func appIDOf(item json.RawMessage, i int) string {
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(item, &probe) == nil && probe.ID != "" {
		return normalizeAppID(probe.ID)
	}
	return fmt.Sprintf("#%d", i)
}

func convertApps(ws []wireApp) ([]*App, []error, error) {
	apps := make([]*App, 0, len(ws))
	var appErrs []error
	for i := range ws {
		a, err := convertApp(&ws[i])
		if err != nil {
			appErrs = append(appErrs, err)
			continue
		}
		apps = append(apps, a)
	}
	return apps, appErrs, nil
}

func normalizeAppID(id string) string {
	if !strings.HasPrefix(id, "/") {
		return "/" + id
	}
	return id
}

func convertApp(w *wireApp) (*App, error) {
	if w.ID == "" {
		return nil, &AppError{AppID: "(no id)", Err: errors.New(`missing "id"`)}
	}
	a := &App{
		ID:        normalizeAppID(w.ID),
		Labels:    w.Labels,
		Instances: w.Instances,
		Version:   w.Version,
		Network:   networkOf(w),
	}
	if w.VersionInfo != nil {
		a.ConfigChangedAt = configChangedAt(w.VersionInfo.LastConfigChangeAt)
	}
	a.Ports = portsOf(w, a.Network)
	for _, h := range w.HealthChecks {
		hc := HealthCheck{
			Protocol: h.Protocol, Path: h.Path, PortIndex: h.PortIndex, Port: h.Port,
			GracePeriodSeconds: h.GracePeriodSeconds, IntervalSeconds: h.IntervalSeconds,
			TimeoutSeconds: h.TimeoutSeconds, MaxConsecutiveFailures: h.MaxConsecutiveFailures,
			IgnoreHTTP1xx: h.IgnoreHTTP1xx,
		}
		if h.Command != nil {
			hc.Command = h.Command.Value
		}
		a.HealthChecks = append(a.HealthChecks, hc)
	}
	for _, r := range w.ReadinessChecks {
		a.ReadinessChecks = append(a.ReadinessChecks, ReadinessCheck(r))
	}
	for _, d := range w.Deployments {
		a.Deployments = append(a.Deployments, d.ID)
	}
	var ready map[string]bool
	if len(w.ReadinessCheckResults) > 0 {
		ready = make(map[string]bool, len(w.ReadinessCheckResults))
		for _, r := range w.ReadinessCheckResults {
			// A task passes only when every one of its checks is ready.
			prev, seen := ready[r.TaskID]
			ready[r.TaskID] = r.Ready && (!seen || prev)
		}
	}
	a.Tasks = make([]*Task, 0, len(w.Tasks))
	for i := range w.Tasks {
		wt := &w.Tasks[i]
		t := &Task{
			ID: wt.ID, AppID: a.ID, Host: wt.Host, SlaveID: wt.SlaveID, State: wt.State,
			StagedAt: wt.StagedAt, StartedAt: wt.StartedAt, Version: wt.Version, HostPorts: wt.Ports,
		}
		if t.State == "" {
			// Marathon before 1.4 has no task state in /v2/apps: a start time means running.
			t.State = StateStaging
			if t.StartedAt != "" {
				t.State = StateRunning
			}
		}
		if len(wt.IPAddresses) > 0 {
			t.IPAddresses = make([]string, len(wt.IPAddresses))
			for j, ip := range wt.IPAddresses {
				t.IPAddresses[j] = ip.IPAddress
			}
		}
		if len(wt.HealthCheckResults) > 0 {
			t.Health = make([]HealthResult, len(wt.HealthCheckResults))
			for j, h := range wt.HealthCheckResults {
				t.Health[j] = HealthResult(h)
			}
		}
		if r, ok := ready[t.ID]; ok {
			t.Ready = &r
		}
		a.Tasks = append(a.Tasks, t)
	}
	return a, nil
}

// networkOf maps every Marathon networking shape to one mode: 1.5+ `networks`, then the older
// `container.docker.network`, then the pre-1.5 IP-per-task `ipAddress`.
func networkOf(w *wireApp) NetworkMode {
	if len(w.Networks) > 0 {
		switch w.Networks[0].Mode {
		case "container/bridge":
			return NetworkBridge
		case "container":
			return NetworkContainer
		}
		return NetworkHost
	}
	if w.Container != nil && w.Container.Docker != nil {
		switch strings.ToUpper(w.Container.Docker.Network) {
		case "BRIDGE":
			return NetworkBridge
		case "USER":
			return NetworkContainer
		}
	}
	if w.IPAddress != nil {
		return NetworkContainer
	}
	return NetworkHost
}

func portsOf(w *wireApp, mode NetworkMode) []Port {
	if mode != NetworkHost {
		var pms []wirePortMapping
		if w.Container != nil {
			pms = w.Container.PortMappings
			if len(pms) == 0 && w.Container.Docker != nil {
				pms = w.Container.Docker.PortMappings
			}
		}
		if len(pms) > 0 {
			ports := make([]Port, len(pms))
			for i, pm := range pms {
				ports[i] = Port{ServicePort: pm.ServicePort, ContainerPort: pm.ContainerPort, HostPort: pm.HostPort,
					Protocol: pm.Protocol, Name: pm.Name, Labels: pm.Labels}
			}
			return ports
		}
		if w.IPAddress != nil && w.IPAddress.Discovery != nil && len(w.IPAddress.Discovery.Ports) > 0 {
			ps := w.IPAddress.Discovery.Ports
			ports := make([]Port, len(ps))
			for i, p := range ps {
				ports[i] = Port{ContainerPort: p.Number, Name: p.Name, Protocol: p.Protocol}
				if i < len(w.PortDefinitions) {
					ports[i].ServicePort = w.PortDefinitions[i].Port
				}
			}
			return ports
		}
		if mode == NetworkContainer {
			return nil
		}
	}
	if len(w.PortDefinitions) > 0 {
		ports := make([]Port, len(w.PortDefinitions))
		for i, pd := range w.PortDefinitions {
			ports[i] = Port{ServicePort: pd.Port, Protocol: pd.Protocol, Name: pd.Name, Labels: pd.Labels}
		}
		return ports
	}
	ports := make([]Port, len(w.Ports))
	for i, p := range w.Ports {
		ports[i] = Port{ServicePort: p}
	}
	return ports
}

// configChangedAt parses versionInfo.lastConfigChangeAt; a value that is not an RFC 3339 time
// gives the zero time, which ownership treats as "unknown" (never as the oldest).
func configChangedAt(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
