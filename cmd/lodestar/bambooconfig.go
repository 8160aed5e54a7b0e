package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/haproxy"
)

// A bamboo production.json (--bamboo-config) is read as bamboo reads it: encoding/json into its
// Configuration (keys case-insensitive), then bamboo's environment overrides (MARATHON_ENDPOINT,
// BAMBOO_ZK_HOST, …). Its Marathon and ZooKeeper settings map onto lodestar's flags, which win
// when given otherwise; its HAProxy template is rendered by --bamboo-template; what lodestar does
// itself (reloads, metrics) is a warning. bamboo serves every app: --group '*' follows unless
// --group is given.

// bambooConfig is what lodestar reads of bamboo's Configuration.
type bambooConfig struct {
	Marathon struct {
		Endpoint, User, Password string
		UseEventStream           *bool
	}
	Bamboo struct {
		Endpoint  string
		Zookeeper struct {
			Host, Path     string
			ReportingDelay int64
		}
	}
	HAProxy struct {
		TemplatePath, OutputPath, ReloadCommand, ReloadValidationCommand, ReloadCleanupCommand string
	}
	StatsD struct {
		Enabled      bool
		Host, Prefix string
	}
}

// bambooKeys are the keys of each object of bamboo's configuration, by its path.
var bambooKeys = map[string][]string{
	"":                 {"Marathon", "Bamboo", "HAProxy", "StatsD"},
	"Marathon":         {"Endpoint", "User", "Password", "UseEventStream"},
	"Bamboo":           {"Endpoint", "Zookeeper"},
	"Bamboo.Zookeeper": {"Host", "Path", "ReportingDelay"},
	"HAProxy":          {"TemplatePath", "OutputPath", "ReloadCommand", "ReloadValidationCommand", "ReloadCleanupCommand"},
	"StatsD":           {"Enabled", "Host", "Prefix"},
}

// addBambooConfigFlag adds --bamboo-config to c; notes gathers what it says at start.
func addBambooConfigFlag(c *command, notes *[]compatNote, getenv func(string) string) {
	path := c.fs.String("bamboo-config", "", "read bamboo's production.json `file` (and bamboo's environment overrides): Marathon, ZooKeeper rules and the HAProxy template set the equivalent flags (docs/migrating.md), and --group defaults to '*'")
	c.compatFiles = append(c.compatFiles, func(set map[string]bool) error {
		if *path == "" {
			return nil
		}
		source := "--bamboo-config " + *path
		data, err := os.ReadFile(*path)
		if err != nil {
			return fmt.Errorf("--bamboo-config: %w", err)
		}
		vals, warnings, err := bambooFlagValues(data, getenv)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		for _, w := range warnings {
			*notes = append(*notes, compatNote{warn: true, msg: source + ": " + w})
		}
		if !set["group"] {
			vals = append(vals, flagValue{key: "(bamboo serves every app)", flag: "group", values: []string{"*"}})
			*notes = append(*notes, compatNote{msg: source + ": serving every app (--group '*'), as bamboo does: with lodestar's default --group external, apps without a HAPROXY_GROUP label would get no backend; give --group to choose"})
		}
		return applyFlagValues(c.fs, source, vals, set)
	})
}

// bambooFlagValues maps production.json, with bamboo's environment overrides, onto flags.
func bambooFlagValues(data []byte, getenv func(string) string) ([]flagValue, []string, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("not a JSON object: %w", err)
	}
	warnings := unknownBambooKeys("", raw)
	var b bambooConfig
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, nil, fmt.Errorf("%w", jsonTypeError(err))
	}
	if err := b.applyEnv(getenv); err != nil {
		return nil, nil, err
	}
	vals, err := b.flagValues()
	if err != nil {
		return nil, nil, err
	}
	return vals, append(warnings, b.warnings()...), nil
}

// unknownBambooKeys warns of each key bamboo does not read, by its path.
func unknownBambooKeys(path string, obj map[string]any) []string {
	var warnings []string
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := ""
		for _, name := range bambooKeys[path] {
			if strings.EqualFold(name, k) {
				known = name
			}
		}
		full := strings.TrimPrefix(path+"."+k, ".")
		if known == "" {
			warnings = append(warnings, fmt.Sprintf("unknown key %q ignored: it is no key of bamboo's configuration", full))
			continue
		}
		sub := strings.TrimPrefix(path+"."+known, ".")
		if inner, ok := obj[k].(map[string]any); ok && bambooKeys[sub] != nil {
			warnings = append(warnings, unknownBambooKeys(sub, inner)...)
		}
	}
	return warnings
}

// applyEnv applies bamboo's environment overrides, as bamboo does after reading the file.
func (b *bambooConfig) applyEnv(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	for name, field := range map[string]*string{
		"MARATHON_ENDPOINT": &b.Marathon.Endpoint, "MARATHON_USER": &b.Marathon.User, "MARATHON_PASSWORD": &b.Marathon.Password,
		"BAMBOO_ENDPOINT": &b.Bamboo.Endpoint, "BAMBOO_ZK_HOST": &b.Bamboo.Zookeeper.Host, "BAMBOO_ZK_PATH": &b.Bamboo.Zookeeper.Path,
		"HAPROXY_TEMPLATE_PATH": &b.HAProxy.TemplatePath, "HAPROXY_OUTPUT_PATH": &b.HAProxy.OutputPath,
		"HAPROXY_RELOAD_CMD": &b.HAProxy.ReloadCommand, "HAPROXY_RELOAD_VALIDATION_CMD": &b.HAProxy.ReloadValidationCommand,
		"HAPROXY_RELOAD_CLEANUP_CMD": &b.HAProxy.ReloadCleanupCommand, "STATSD_HOST": &b.StatsD.Host, "STATSD_PREFIX": &b.StatsD.Prefix,
	} {
		if v := getenv(name); v != "" {
			*field = v
		}
	}
	for name, field := range map[string]*bool{"STATSD_ENABLED": &b.StatsD.Enabled} {
		if v := getenv(name); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("environment %s=%q: want true or false", name, v)
			}
			*field = on
		}
	}
	if v := getenv("MARATHON_USE_EVENT_STREAM"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("environment MARATHON_USE_EVENT_STREAM=%q: want true or false", v)
		}
		b.Marathon.UseEventStream = &on
	}
	return nil
}

// flagValues are the flags bamboo's configuration sets.
func (b *bambooConfig) flagValues() ([]flagValue, error) {
	var vals []flagValue
	var members []string
	for _, m := range strings.Split(b.Marathon.Endpoint, ",") {
		if m = strings.TrimSpace(m); m != "" {
			members = append(members, m)
		}
	}
	if len(members) > 0 {
		vals = append(vals, flagValue{key: `"Marathon.Endpoint"`, flag: "marathon", values: members})
	}
	if b.Marathon.User != "" && b.Marathon.Password != "" { // bamboo sends credentials only with both
		vals = append(vals, flagValue{key: `"Marathon.User", "Marathon.Password"`, flag: "marathon-auth", values: []string{b.Marathon.User + ":" + b.Marathon.Password}})
	}
	zk := b.Bamboo.Zookeeper
	switch {
	case zk.Host != "" && zk.Path != "":
		if !strings.HasPrefix(zk.Path, "/") || strings.ContainsAny(zk.Path, " \t\n") {
			return nil, fmt.Errorf("key \"Bamboo.Zookeeper.Path\": %q, want an absolute ZooKeeper path", zk.Path)
		}
		for _, h := range strings.Split(zk.Host, ",") {
			if _, port, ok := strings.Cut(strings.TrimSpace(h), ":"); !ok || !validPort(port) {
				return nil, fmt.Errorf("key \"Bamboo.Zookeeper.Host\": %q, want host:port, comma-separated", h)
			}
		}
		vals = append(vals, flagValue{key: `"Bamboo.Zookeeper"`, flag: "zk-rules", values: []string{"zk://" + strings.ReplaceAll(zk.Host, " ", "") + zk.Path}})
	case zk.Host != "" || zk.Path != "":
		return nil, fmt.Errorf("key \"Bamboo.Zookeeper\": Host and Path go together (Host %q, Path %q)", zk.Host, zk.Path)
	}
	if b.HAProxy.TemplatePath != "" {
		vals = append(vals, flagValue{key: `"HAProxy.TemplatePath"`, flag: "bamboo-template", values: []string{b.HAProxy.TemplatePath}})
	}
	return vals, nil
}

// warnings name what bamboo does that lodestar does its own way.
func (b *bambooConfig) warnings() []string {
	var w []string
	say := func(cond bool, msg string) {
		if cond {
			w = append(w, msg)
		}
	}
	h := b.HAProxy
	say(h.ReloadCommand != "" || h.ReloadValidationCommand != "" || h.ReloadCleanupCommand != "",
		`"HAProxy.ReloadCommand" (and its validation and cleanup commands) unused: lodestar runs HAProxy itself, validates each configuration with haproxy -c and reloads it through its master socket`)
	say(h.OutputPath != "", `"HAProxy.OutputPath" unused: lodestar writes HAProxy's configuration into --run-dir (served at /v1/haproxy/config)`)
	say(b.StatsD.Enabled, `"StatsD" unused: lodestar sends no StatsD; scrape its Prometheus metrics at /metrics on --api-listen`)
	say(b.Marathon.UseEventStream != nil && !*b.Marathon.UseEventStream, `"Marathon.UseEventStream" false unused: lodestar always follows Marathon's event stream`)
	say(b.Bamboo.Endpoint != "", `"Bamboo.Endpoint" unused: lodestar registers no Marathon callback; its API (bamboo's /api/services included) listens on --api-listen`)
	say(b.Bamboo.Zookeeper.ReportingDelay != 0, `"Bamboo.Zookeeper.ReportingDelay" unused: lodestar applies a rule change at once, coalescing reloads (--reload-min-wait)`)
	return w
}

// useBambooTemplate puts the HAProxy front end in bamboo template mode when path is given.
func useBambooTemplate(log *slog.Logger, path string, hap *haproxyFrontEnd) error {
	if path == "" {
		return nil
	}
	if hap == nil {
		return errors.New("--bamboo-template renders HAProxy's configuration: it needs --haproxy")
	}
	tpl, err := haproxy.LoadBambooTemplate(resolvePath(path))
	if err != nil {
		return fmt.Errorf("--bamboo-template: %w", err)
	}
	hap.applier.UseBambooTemplate(tpl)
	log.Info("bamboo template mode: HAProxy's configuration is rendered from the bamboo template; lodestar cannot know its structure, so every change reloads HAProxy (coalesced, validated first) and nothing goes through the Runtime API", "template", path)
	return nil
}

// addBambooTemplateFlag adds --bamboo-template: HAProxy's configuration from a bamboo template.
func addBambooTemplateFlag(c *command) *string {
	return c.fs.String("bamboo-template", "", "render HAProxy's configuration from this bamboo Go template `file` (bamboo's .Apps and .Services, its functions) instead of lodestar's own; every change reloads (coalesced), nothing goes through the Runtime API")
}
