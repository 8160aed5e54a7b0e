// Package deploy is `lodestar deploy`: a blue/green (zero-downtime) deployment of a Marathon
// app, as marathon-lb's zdd.py does it, driven through Marathon's REST API and watched through
// lodestar's own HTTP API on every edge.
//
// The labels it writes are the ones lodestar's HAProxy front end reads
// (HAPROXY_DEPLOYMENT_GROUP, _ALT_PORT, _COLOUR, _STARTED_AT, _TARGET_INSTANCES): the apps of
// one group share one backend under the group's HAPROXY_0_PORT, and for each healthy task of
// the newest app (by STARTED_AT) lodestar drains one old task, never more than the target
// instance count allows. deploy only scales the new colour up and removes old tasks that
// every edge reports drained (state "drain", 0 sessions in HAProxy); it never reads server
// names.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The labels deploy reads and writes (marathon-lb's names, as LABELS.md lists them).
const (
	LabelGroup           = "HAPROXY_DEPLOYMENT_GROUP"
	LabelAltPort         = "HAPROXY_DEPLOYMENT_ALT_PORT"
	LabelColour          = "HAPROXY_DEPLOYMENT_COLOUR"
	LabelStartedAt       = "HAPROXY_DEPLOYMENT_STARTED_AT"
	LabelTargetInstances = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES"
	LabelNewInstances    = "HAPROXY_DEPLOYMENT_NEW_INSTANCES"
	LabelAppID           = "HAPROXY_APP_ID"
	LabelPort0           = "HAPROXY_0_PORT"
)

// MaxInstances bounds the instances an app definition may ask for: each is a task deploy
// scales, waits for and drains.
const MaxInstances = 10000

// maxIDLen bounds an app id (with its colour suffix) and a group name.
const maxIDLen = 200

// App is a Marathon app definition as JSON, kept whole: deploy changes only the fields it
// owns (id, instances, the service port of port 0, the deployment labels), so fields its
// types do not know (networks, container.portMappings, …) reach Marathon unchanged.
type App map[string]any

// ParseApp decodes one app definition and checks the fields deploy relies on, with errors
// naming the app and the field or label.
func ParseApp(data []byte) (App, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers go back to Marathon as written
	var a App
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("app definition: not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("app definition: more than one JSON value (give one app, not a list or a group)")
	}
	if a == nil {
		return nil, errors.New("app definition: null")
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// Validate checks what a deployable definition needs: an id, the group and alternate-port
// labels, a fixed service port on port 0 that differs from the alternate one, and a sane
// instance count.
func (a App) Validate() error {
	id, err := a.checkedID()
	if err != nil {
		return err
	}
	if _, err := a.labels(); err != nil {
		return err
	}
	if _, err := a.Group(); err != nil {
		return err
	}
	alt, err := a.portLabel(LabelAltPort, true)
	if err != nil {
		return err
	}
	sp, err := a.ServicePort()
	if err != nil {
		return err
	}
	if sp == alt {
		return fmt.Errorf("app %s: label %s=%d: the alternate port must differ from the service port %d", id, LabelAltPort, alt, sp)
	}
	if _, err := a.Instances(); err != nil {
		return err
	}
	return nil
}

// idSegment is one segment of a Marathon app id, as Marathon's own path check allows it.
var idSegment = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$`)

// CheckAppID checks an absolute Marathon app id ("/shop/web").
func CheckAppID(id string) error {
	if len(id) > maxIDLen {
		return fmt.Errorf("app id %.40q…: longer than %d characters", id, maxIDLen)
	}
	if !strings.HasPrefix(id, "/") || id == "/" {
		return fmt.Errorf("app id %q: want an absolute id such as /shop/web", id)
	}
	for _, seg := range strings.Split(id[1:], "/") {
		if !idSegment.MatchString(seg) {
			return fmt.Errorf("app id %q: segment %q: want lower-case letters, digits, '-' and '.' (Marathon's rule)", id, seg)
		}
	}
	return nil
}

// ID returns the app id with exactly one leading slash ("" when it has none).
func (a App) ID() string {
	id, _ := a["id"].(string)
	if id == "" {
		return ""
	}
	return "/" + strings.TrimLeft(id, "/")
}

func (a App) checkedID() (string, error) {
	raw, ok := a["id"]
	if !ok {
		return "", errors.New("app definition: no \"id\"")
	}
	s, ok := raw.(string)
	if !ok {
		return "", fmt.Errorf("app definition: \"id\" is %s, want a string", jsonType(raw))
	}
	id := "/" + strings.TrimLeft(s, "/")
	if err := CheckAppID(id); err != nil {
		return "", err
	}
	return id, nil
}

// labels returns the app's labels, checked to be strings.
func (a App) labels() (map[string]any, error) {
	raw, ok := a["labels"]
	if !ok || raw == nil {
		return map[string]any{}, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("app %s: \"labels\" is %s, want an object of strings", a.ID(), jsonType(raw))
	}
	for k, v := range m {
		if _, ok := v.(string); !ok {
			return nil, fmt.Errorf("app %s: label %s is %s, want a string", a.ID(), k, jsonType(v))
		}
	}
	return m, nil
}

// Label returns a label's value ("" when absent or not a string).
func (a App) Label(key string) string {
	m, _ := a["labels"].(map[string]any)
	s, _ := m[key].(string)
	return s
}

// SetLabel sets a label, creating the labels object when needed.
func (a App) SetLabel(key, value string) {
	m, ok := a["labels"].(map[string]any)
	if !ok {
		m = map[string]any{}
		a["labels"] = m
	}
	m[key] = value
}

// groupName is a deployment group: the characters of an app id, and "/" between parts, as
// lodestar's HAProxy front end accepts it as a backend key.
var groupName = regexp.MustCompile(`^/?[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

// Group returns HAPROXY_DEPLOYMENT_GROUP, checked.
func (a App) Group() (string, error) {
	m, err := a.labels()
	if err != nil {
		return "", err
	}
	raw, ok := m[LabelGroup]
	if !ok {
		return "", fmt.Errorf("app %s: no label %s (it names the blue/green pair)", a.ID(), LabelGroup)
	}
	g := raw.(string)
	if len(g) > maxIDLen || !groupName.MatchString(g) {
		return "", fmt.Errorf("app %s: label %s=%.60q: want a name of letters, digits, '.', '_', '-' (parts separated by '/')", a.ID(), LabelGroup, g)
	}
	return g, nil
}

// portLabel reads a port label; required says whether it must be present.
func (a App) portLabel(key string, required bool) (int, error) {
	v := a.Label(key)
	if v == "" {
		if required {
			return 0, fmt.Errorf("app %s: no label %s (Marathon needs a second service port for the other colour)", a.ID(), key)
		}
		return 0, nil
	}
	p, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("app %s: label %s=%.20q: want a port 1-65535", a.ID(), key, v)
	}
	return p, nil
}

// AltPort returns HAPROXY_DEPLOYMENT_ALT_PORT.
func (a App) AltPort() (int, error) { return a.portLabel(LabelAltPort, true) }

// Instances returns the app's instances (1 when absent, as Marathon defaults it).
func (a App) Instances() (int, error) {
	raw, ok := a["instances"]
	if !ok {
		return 1, nil
	}
	n, err := wholeNumber(raw)
	if err != nil || n < 0 || n > MaxInstances {
		return 0, fmt.Errorf("app %s: \"instances\" %v: want a whole number 0-%d", a.ID(), raw, MaxInstances)
	}
	return int(n), nil
}

// wholeNumber reads a JSON number (json.Number or float64) that must be a whole number.
func wholeNumber(raw any) (int64, error) {
	switch v := raw.(type) {
	case json.Number:
		return v.Int64()
	case float64:
		if v != float64(int64(v)) {
			return 0, fmt.Errorf("%v is not whole", v)
		}
		return int64(v), nil
	case int:
		return int64(v), nil
	}
	return 0, fmt.Errorf("%T is not a number", raw)
}

// portZero finds where port 0's service port lives: container.docker.portMappings,
// container.portMappings (Marathon 1.5+), portDefinitions or the old "ports" list. It returns
// the object holding it and the key, or the "ports" list itself.
func (a App) portZero() (holder map[string]any, key string, list []any) {
	if c, ok := a["container"].(map[string]any); ok {
		if d, ok := c["docker"].(map[string]any); ok {
			if pm, ok := d["portMappings"].([]any); ok && len(pm) > 0 {
				if m, ok := pm[0].(map[string]any); ok {
					return m, "servicePort", nil
				}
			}
		}
		if pm, ok := c["portMappings"].([]any); ok && len(pm) > 0 {
			if m, ok := pm[0].(map[string]any); ok {
				return m, "servicePort", nil
			}
		}
	}
	if pd, ok := a["portDefinitions"].([]any); ok && len(pd) > 0 {
		if m, ok := pd[0].(map[string]any); ok {
			return m, "port", nil
		}
	}
	if ps, ok := a["ports"].([]any); ok && len(ps) > 0 {
		return nil, "", ps
	}
	return nil, "", nil
}

// ServicePort returns port 0's service port, which must be fixed (not 0, Marathon's "pick
// one"): it is the port HAProxy serves the group on.
func (a App) ServicePort() (int, error) {
	holder, key, list := a.portZero()
	var raw any
	where := ""
	switch {
	case holder != nil:
		raw, where = holder[key], key
	case list != nil:
		raw, where = list[0], "ports[0]"
	default:
		return 0, fmt.Errorf("app %s: no service port (portDefinitions, container.portMappings or ports)", a.ID())
	}
	n, err := wholeNumber(raw)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("app %s: service port %s=%v: want a fixed port 1-65535", a.ID(), where, raw)
	}
	return int(n), nil
}

// SetServicePort sets port 0's service port.
func (a App) SetServicePort(p int) {
	holder, key, list := a.portZero()
	switch {
	case holder != nil:
		holder[key] = p
	case list != nil:
		list[0] = p
	default:
		a["portDefinitions"] = []any{map[string]any{"port": p, "protocol": "tcp"}}
	}
}

// Clone returns a deep copy.
func (a App) Clone() App {
	return cloneValue(map[string]any(a)).(map[string]any)
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = cloneValue(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = cloneValue(x)
		}
		return s
	}
	return v
}

// deploymentTimeLayouts are the forms of HAPROXY_DEPLOYMENT_STARTED_AT lodestar reads: RFC
// 3339 (what deploy writes) and zdd.py's Python isoformat() without a zone.
var deploymentTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"}

// StartedAt returns HAPROXY_DEPLOYMENT_STARTED_AT (zero when absent).
func (a App) StartedAt() (time.Time, error) {
	v := a.Label(LabelStartedAt)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range deploymentTimeLayouts {
		if t, err := time.Parse(layout, strings.TrimSpace(v)); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("app %s: label %s=%.40q: want a timestamp (RFC 3339)", a.ID(), LabelStartedAt, v)
}

// TargetInstances returns HAPROXY_DEPLOYMENT_TARGET_INSTANCES, or the app's instances when the
// label is absent (as zdd.py reads it).
func (a App) TargetInstances() (int, error) {
	v := a.Label(LabelTargetInstances)
	if v == "" {
		return a.Instances()
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > MaxInstances {
		return 0, fmt.Errorf("app %s: label %s=%.20q: want a whole number 0-%d", a.ID(), LabelTargetInstances, v, MaxInstances)
	}
	return n, nil
}

// NewInstances returns HAPROXY_DEPLOYMENT_NEW_INSTANCES (0 when absent): the new colour's
// instances of a hybrid (traffic-split) deployment.
func (a App) NewInstances() (int, error) {
	v := a.Label(LabelNewInstances)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > MaxInstances {
		return 0, fmt.Errorf("app %s: label %s=%.20q: want a whole number 0-%d", a.ID(), LabelNewInstances, v, MaxInstances)
	}
	return n, nil
}

// Colour returns HAPROXY_DEPLOYMENT_COLOUR.
func (a App) Colour() string { return a.Label(LabelColour) }

// jsonType names a decoded JSON value's type for messages.
func jsonType(v any) string {
	switch v.(type) {
	case json.Number, float64, int:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
