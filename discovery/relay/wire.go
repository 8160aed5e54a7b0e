package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// The wire format of GET /v1/stream: server-sent events, one JSON object per event on one
// `data:` line, each event's `id:` being "<hub>.<version>" (what a client sends back as
// Last-Event-ID to resume).
//
//	event: snapshot   the whole registry: {"format":1,"hub":H,"version":V,"apps":[…],
//	                  "mesos":…|null,"marathon":…|null,"rules":{…}|null}
//	event: delta      what changed from version "from" to "version": "apps" added or replaced
//	                  (whole apps with their tasks), "removed" app ids, and "mesos",
//	                  "marathon", "rules" only when they changed (null: now none)
//	: keepalive       a comment, every keepalive interval while nothing changes
//
// Apps carry what Marathon said (labels, ports, checks, tasks with their state, addresses and
// health); what lodestar derives from it (endpoints, eligibility) is derived again by the
// replica's registry. The Mesos and Marathon states and the rules use discovery's field names.

// Format is the version of the wire format; a replica refuses any other.
const Format = 1

// Event types.
const (
	EventSnapshot = "snapshot"
	EventDelta    = "delta"
)

type wireEvent struct {
	Format  int    `json:"format"`
	Hub     string `json:"hub"`
	From    uint64 `json:"from,omitempty"`
	Version uint64 `json:"version"`
	// Time is when the hub's registry made this version: a replica measures propagation with it.
	Time    time.Time       `json:"time,omitzero"`
	Apps    []wireApp       `json:"apps,omitempty"`
	Removed []string        `json:"removed,omitempty"`
	Mesos   json.RawMessage `json:"mesos,omitempty"`
	// Marathon and Rules, like Mesos: absent in a delta when unchanged, null when none.
	Marathon json.RawMessage `json:"marathon,omitempty"`
	Rules    json.RawMessage `json:"rules,omitempty"`
}

type wireApp struct {
	ID              string                     `json:"id"`
	Labels          map[string]string          `json:"labels,omitempty"`
	Instances       int                        `json:"instances"`
	Version         string                     `json:"version,omitempty"`
	ConfigChangedAt time.Time                  `json:"config_changed_at,omitzero"`
	Network         discovery.NetworkMode      `json:"network,omitempty"`
	Ports           []discovery.Port           `json:"ports,omitempty"`
	HealthChecks    []discovery.HealthCheck    `json:"health_checks,omitempty"`
	ReadinessChecks []discovery.ReadinessCheck `json:"readiness_checks,omitempty"`
	Deployments     []string                   `json:"deployments,omitempty"`
	Tasks           []wireTask                 `json:"tasks,omitempty"`
}

type wireTask struct {
	ID          string                   `json:"id"`
	Host        string                   `json:"host,omitempty"`
	SlaveID     string                   `json:"slave_id,omitempty"`
	State       string                   `json:"state"`
	IPAddresses []string                 `json:"ip_addresses,omitempty"`
	HostPorts   []int                    `json:"host_ports,omitempty"`
	StagedAt    string                   `json:"staged_at,omitempty"`
	StartedAt   string                   `json:"started_at,omitempty"`
	Version     string                   `json:"version,omitempty"`
	Health      []discovery.HealthResult `json:"health,omitempty"`
	Ready       *bool                    `json:"ready,omitempty"`
}

func wireAppOf(a *discovery.App) wireApp {
	w := wireApp{
		ID: a.ID, Labels: a.Labels, Instances: a.Instances, Version: a.Version,
		ConfigChangedAt: a.ConfigChangedAt, Network: a.Network, Ports: a.Ports,
		HealthChecks: a.HealthChecks, ReadinessChecks: a.ReadinessChecks, Deployments: a.Deployments,
		Tasks: make([]wireTask, len(a.Tasks)),
	}
	for i, t := range a.Tasks {
		w.Tasks[i] = wireTask{
			ID: t.ID, Host: t.Host, SlaveID: t.SlaveID, State: t.State, IPAddresses: t.IPAddresses,
			HostPorts: t.HostPorts, StagedAt: t.StagedAt, StartedAt: t.StartedAt, Version: t.Version,
			Health: t.Health, Ready: t.Ready,
		}
	}
	return w
}

// eventID is the SSE id of a version of a hub.
func eventID(hub string, version uint64) string { return hub + "." + strconv.FormatUint(version, 10) }

// frame formats one SSE event.
func frame(typ, hub string, version uint64, data []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(data) + 64)
	fmt.Fprintf(&b, "id: %s\nevent: %s\ndata: ", eventID(hub, version), typ)
	b.Write(data)
	b.WriteString("\n\n")
	return b.Bytes()
}

// encodeSnapshot encodes snap as a snapshot event of hub.
func encodeSnapshot(hub string, snap *discovery.Snapshot) ([]byte, error) {
	ev := wireEvent{Format: Format, Hub: hub, Version: snap.Version, Time: snap.Time, Apps: make([]wireApp, 0, snap.Apps.Len())}
	snap.Apps.Each(func(a *discovery.App) bool {
		ev.Apps = append(ev.Apps, wireAppOf(a))
		return true
	})
	var err error
	if ev.Mesos, err = json.Marshal(snap.Mesos); err != nil {
		return nil, fmt.Errorf("encoding the Mesos state: %w", err)
	}
	if ev.Marathon, err = json.Marshal(snap.Marathon); err != nil {
		return nil, fmt.Errorf("encoding the Marathon state: %w", err)
	}
	if ev.Rules, err = json.Marshal(snap.Rules); err != nil {
		return nil, fmt.Errorf("encoding the rules: %w", err)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding snapshot %d: %w", snap.Version, err)
	}
	return frame(EventSnapshot, hub, snap.Version, data), nil
}

// encodeDelta encodes what changed from prev to next as a delta event of hub.
func encodeDelta(hub string, prev, next *discovery.Snapshot) ([]byte, error) {
	ev := wireEvent{Format: Format, Hub: hub, From: prev.Version, Version: next.Version, Time: next.Time}
	discovery.DiffApps(prev.Apps, next.Apps,
		func(a *discovery.App) { ev.Apps = append(ev.Apps, wireAppOf(a)) },
		func(id string) { ev.Removed = append(ev.Removed, id) })
	var err error
	if prev.Mesos != next.Mesos {
		if ev.Mesos, err = json.Marshal(next.Mesos); err != nil {
			return nil, fmt.Errorf("encoding the Mesos state: %w", err)
		}
	}
	if prev.Marathon != next.Marathon {
		if ev.Marathon, err = json.Marshal(next.Marathon); err != nil {
			return nil, fmt.Errorf("encoding the Marathon state: %w", err)
		}
	}
	if !rulesEqual(prev.Rules, next.Rules) {
		if ev.Rules, err = json.Marshal(next.Rules); err != nil {
			return nil, fmt.Errorf("encoding the rules: %w", err)
		}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding delta %d→%d: %w", prev.Version, next.Version, err)
	}
	return frame(EventDelta, hub, next.Version, data), nil
}

func rulesEqual(a, b map[string]discovery.ServiceRule) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// change is one decoded, validated event: what the follower applies.
type change struct {
	Hub      string
	From     uint64 // 0 for a snapshot
	Version  uint64
	Time     time.Time
	Snapshot bool
	Mirror   discovery.Mirror
	// AppErrors name the apps left out because they failed validation; the replica keeps
	// its own version of each.
	AppErrors []error
}

// Limits of what a replica accepts from a hub, beside the event size.
const (
	maxIDLen       = 1024
	maxHealthItems = 64
)

var errFormat = errors.New("not a lodestar registry stream event")

// decodeEvent decodes and validates one event of type typ. Any error but a bad app makes the
// whole event unusable (the follower then takes a fresh snapshot); a bad app is left out and
// named in AppErrors.
func decodeEvent(typ string, data []byte) (*change, error) {
	if typ != EventSnapshot && typ != EventDelta {
		return nil, fmt.Errorf("%w: event type %q", errFormat, typ)
	}
	var ev wireEvent
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("%s event: %w", typ, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s event: data after the JSON object", typ)
	}
	switch {
	case ev.Format != Format:
		return nil, fmt.Errorf("%w: format %d, this lodestar reads format %d (run the same lodestar version on hubs and replicas)", errFormat, ev.Format, Format)
	case !validHubID(ev.Hub):
		return nil, fmt.Errorf("%w: hub id %q", errFormat, truncate(ev.Hub))
	case typ == EventDelta && ev.From >= ev.Version:
		return nil, fmt.Errorf("%w: delta from version %d to %d", errFormat, ev.From, ev.Version)
	case typ == EventSnapshot && (ev.From != 0 || len(ev.Removed) > 0):
		return nil, fmt.Errorf("%w: a snapshot with a from version or removed apps", errFormat)
	}
	c := &change{Hub: ev.Hub, From: ev.From, Version: ev.Version, Time: ev.Time, Snapshot: typ == EventSnapshot}
	c.Mirror.Full = c.Snapshot
	seen := make(map[string]bool, len(ev.Apps))
	var refused []string // sound ids of refused apps, kept by a snapshot unless sent right too
	for i := range ev.Apps {
		a, err := appOf(&ev.Apps[i])
		if err == nil && seen[a.ID] {
			err = fmt.Errorf("app %s: listed twice", a.ID)
		}
		if err != nil {
			c.AppErrors = append(c.AppErrors, err)
			if a != nil {
				refused = append(refused, a.ID)
			}
			continue
		}
		seen[a.ID] = true
		c.Mirror.Apps = append(c.Mirror.Apps, a)
	}
	if c.Snapshot {
		// Apps and Keep must be disjoint and Keep free of repeats: the registry refuses a
		// full sync naming an id twice.
		for _, id := range refused {
			if !seen[id] {
				seen[id] = true
				c.Mirror.Keep = append(c.Mirror.Keep, id)
			}
		}
	}
	for _, id := range ev.Removed {
		if err := checkAppID(id); err != nil {
			return nil, fmt.Errorf("delta %d: removed %w", ev.Version, err)
		}
		c.Mirror.Removed = append(c.Mirror.Removed, id)
	}
	if err := decodeParts(c, &ev); err != nil {
		return nil, fmt.Errorf("%s %d: %w", typ, ev.Version, err)
	}
	return c, nil
}

// decodeParts decodes the Mesos state, the Marathon state and the rules, when present.
func decodeParts(c *change, ev *wireEvent) error {
	if ev.Mesos != nil || c.Snapshot {
		c.Mirror.SetMesos = true
		if err := strictJSON(ev.Mesos, &c.Mirror.Mesos); err != nil {
			return fmt.Errorf("mesos: %w", err)
		}
	}
	if ev.Marathon != nil || c.Snapshot {
		c.Mirror.SetMarathon = true
		if err := strictJSON(ev.Marathon, &c.Mirror.Marathon); err != nil {
			return fmt.Errorf("marathon: %w", err)
		}
	}
	if ev.Rules != nil || c.Snapshot {
		c.Mirror.SetRules = true
		if err := strictJSON(ev.Rules, &c.Mirror.Rules); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		for id, r := range c.Mirror.Rules {
			if r.AppID != id {
				return fmt.Errorf("rules: the rule under %q names app %q", truncate(id), truncate(r.AppID))
			}
			if err := checkAppID(id); err != nil {
				return fmt.Errorf("rules: %w", err)
			}
		}
	}
	return nil
}

// strictJSON decodes data (absent: none) into v, refusing unknown fields.
func strictJSON(data json.RawMessage, v any) error {
	if len(data) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// appOf turns a wire app into a registry app, or says why it cannot be one. The app is
// returned with the error when its id is sound, so the caller can name and keep it.
func appOf(w *wireApp) (*discovery.App, error) {
	if err := checkAppID(w.ID); err != nil {
		return nil, err
	}
	a := &discovery.App{
		ID: w.ID, Labels: w.Labels, Instances: w.Instances, Version: w.Version,
		ConfigChangedAt: w.ConfigChangedAt, Network: w.Network, Ports: w.Ports,
		HealthChecks: w.HealthChecks, ReadinessChecks: w.ReadinessChecks, Deployments: w.Deployments,
		Tasks: make([]*discovery.Task, 0, len(w.Tasks)),
	}
	if err := checkApp(w); err != nil {
		return a, fmt.Errorf("app %s: %w", w.ID, err)
	}
	for i := range w.Tasks {
		wt := &w.Tasks[i]
		a.Tasks = append(a.Tasks, &discovery.Task{
			ID: wt.ID, AppID: a.ID, Host: wt.Host, SlaveID: wt.SlaveID, State: wt.State,
			IPAddresses: wt.IPAddresses, HostPorts: wt.HostPorts, StagedAt: wt.StagedAt,
			StartedAt: wt.StartedAt, Version: wt.Version, Health: wt.Health, Ready: wt.Ready,
		})
	}
	return a, nil
}

// checkApp checks what the registry and the front ends rely on: a known network mode, ports
// in range, task ids present and unique. Labels are checked where they are used, as for apps
// from Marathon.
func checkApp(w *wireApp) error {
	switch w.Network {
	case "", discovery.NetworkHost, discovery.NetworkBridge, discovery.NetworkContainer:
	default:
		return fmt.Errorf("network mode %q", truncate(string(w.Network)))
	}
	if w.Instances < 0 {
		return fmt.Errorf("instances %d", w.Instances)
	}
	for i, p := range w.Ports {
		if !portOK(p.ServicePort) || !portOK(p.ContainerPort) || !portOK(p.HostPort) {
			return fmt.Errorf("port %d: a port number out of 0-65535", i)
		}
	}
	taskIDs := make(map[string]bool, len(w.Tasks))
	for _, t := range w.Tasks {
		switch {
		case t.ID == "" || len(t.ID) > maxIDLen || hasControl(t.ID):
			return fmt.Errorf("task id %q", truncate(t.ID))
		case taskIDs[t.ID]:
			return fmt.Errorf("task %s listed twice", t.ID)
		case len(t.Health) > maxHealthItems:
			return fmt.Errorf("task %s: %d health results", t.ID, len(t.Health))
		}
		taskIDs[t.ID] = true
		for _, p := range t.HostPorts {
			if !portOK(p) {
				return fmt.Errorf("task %s: host port %d", t.ID, p)
			}
		}
	}
	return nil
}

func portOK(p int) bool { return p >= 0 && p <= 65535 }

// checkAppID accepts what the registry keys apps by: a leading slash, bounded length, no
// control characters.
func checkAppID(id string) error {
	if !strings.HasPrefix(id, "/") || len(id) < 2 || len(id) > maxIDLen || hasControl(id) {
		return fmt.Errorf("app id %q is not a Marathon app id", truncate(id))
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// validHubID accepts the hub ids newHubID makes: 32 lower-case hex digits.
func validHubID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// parseEventID parses "<hub>.<version>"; ok is false for anything else.
func parseEventID(s string) (hub string, version uint64, ok bool) {
	hub, v, found := strings.Cut(s, ".")
	if !found || !validHubID(hub) {
		return "", 0, false
	}
	version, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return hub, version, true
}

// truncate shortens hostile strings before they reach a log line or an error (which quote
// them with %q).
func truncate(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
