package main

import (
	"strings"
	"testing"
)

// TestBambooConfigExample: bamboo's example production.json sets the Marathon members, the
// ZooKeeper rules, the template and --group '*'; its reload commands, output path, StatsD,
// callback endpoint and reporting delay are warnings.
func TestBambooConfigExample(t *testing.T) {
	c, err := parseServe(t, []string{"--bamboo-config", "testdata/bamboo-production.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"marathon":        "http://marathon1:8080,http://marathon2:8080,http://marathon3:8080",
		"zk-rules":        "zk://zk01.example.com:2181,zk02.example.com:2181/marathon-haproxy/state",
		"bamboo-template": "config/haproxy_template.cfg",
		"group":           "*",
		"marathon-auth":   "",
	} {
		if got := flagString(t, c, name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	_, warnings, err := bambooFlagValues(mustRead(t, "testdata/bamboo-production.json"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ReloadCommand", "OutputPath", "/metrics", "Bamboo.Endpoint", "ReportingDelay"} {
		if !strings.Contains(strings.Join(warnings, "\n"), key) {
			t.Errorf("no warning naming %s in %q", key, warnings)
		}
	}
}

// TestBambooConfigKeys: keys in any case, bamboo's environment overrides over the file, and
// lodestar's own flags and environment over both.
func TestBambooConfigKeys(t *testing.T) {
	for _, tc := range []struct {
		json string
		env  map[string]string
		args []string
		flag string
		want string
	}{
		{`{"marathon": {"endpoint": "http://m1:8080"}}`, nil, nil, "marathon", "http://m1:8080"},
		{`{"Marathon": {"Endpoint": "http://m1:8080", "User": "ops", "Password": "pw"}}`, nil, nil, "marathon-auth", "ops:pw"},
		{`{"Marathon": {"Endpoint": "http://m1:8080", "User": "ops"}}`, nil, nil, "marathon-auth", ""},
		{`{"Marathon": {"Endpoint": "http://m1:8080"}}`, map[string]string{"MARATHON_ENDPOINT": "http://m9:8080"}, nil, "marathon", "http://m9:8080"},
		{`{"Bamboo": {"Zookeeper": {"Host": "zk1:2181", "Path": "/bamboo"}}}`, map[string]string{"BAMBOO_ZK_PATH": "/other"}, nil, "zk-rules", "zk://zk1:2181/other"},
		{`{"HAProxy": {"TemplatePath": "a.cfg"}}`, map[string]string{"HAPROXY_TEMPLATE_PATH": "b.cfg"}, nil, "bamboo-template", "b.cfg"},
		{`{"Marathon": {"Endpoint": "http://m1:8080"}}`, nil, []string{"--marathon", "http://m2:8080"}, "marathon", "http://m2:8080"},
		{`{"Marathon": {"Endpoint": "http://m1:8080"}}`, map[string]string{"LODESTAR_MARATHON": "http://m3:8080"}, nil, "marathon", "http://m3:8080"},
		{`{}`, nil, []string{"--group", "external"}, "group", "external"},
		{`{}`, map[string]string{"LODESTAR_GROUP": "internal"}, nil, "group", "internal"},
	} {
		args := append([]string{"--bamboo-config", writeJSON(t, tc.json)}, tc.args...)
		c, err := parseServe(t, args, tc.env)
		if err != nil {
			t.Errorf("%s %v: %v", tc.json, tc.env, err)
			continue
		}
		if got := flagString(t, c, tc.flag); got != tc.want {
			t.Errorf("%s %v %v: --%s = %q, want %q", tc.json, tc.env, tc.args, tc.flag, got, tc.want)
		}
	}
}

func TestBambooConfigWarningsAndErrors(t *testing.T) {
	_, warnings, err := bambooFlagValues([]byte(`{"Marathon": {"Endpoint": "http://m1:8080", "Timeout": 5}, "Haproxy": {"templatepath": "t.cfg"}, "Extra": 1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], `"Extra"`) || !strings.Contains(warnings[1], `"Marathon.Timeout"`) {
		t.Errorf("warnings %q, want the unknown keys Extra and Marathon.Timeout", warnings)
	}
	for _, tc := range []struct{ json, want string }{
		{`[1]`, "not a JSON object"},
		{`{"Marathon": {"Endpoint": 5}}`, "string"},
		{`{"Bamboo": {"Zookeeper": {"Host": "zk1:2181"}}}`, "Bamboo.Zookeeper"},
		{`{"Bamboo": {"Zookeeper": {"Host": "zk1", "Path": "/b"}}}`, "Bamboo.Zookeeper.Host"},
		{`{"Bamboo": {"Zookeeper": {"Host": "zk1:2181", "Path": "relative"}}}`, "Bamboo.Zookeeper.Path"},
	} {
		_, err := parseServe(t, []string{"--bamboo-config", writeJSON(t, tc.json)}, nil)
		if err == nil {
			_, _, err = bambooFlagValues([]byte(tc.json), nil)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.json, err, tc.want)
		}
	}
	_, err = parseServe(t, []string{"--bamboo-config", "testdata/bamboo-production.json"}, map[string]string{"STATSD_ENABLED": "maybe"})
	if err == nil || !strings.Contains(err.Error(), "STATSD_ENABLED") {
		t.Errorf("a bad STATSD_ENABLED: error %v", err)
	}
	_, err = parseServe(t, []string{"--config", "testdata/bamboo-production.json"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--bamboo-config") {
		t.Errorf("--config with bamboo's file: error %v, want a hint at --bamboo-config", err)
	}
}

// TestBambooTemplateNeedsHAProxyAndAFile: --bamboo-template without HAProxy, or naming a
// template that does not parse, stops serve with the flag named.
func TestBambooTemplateNeedsHAProxyAndAFile(t *testing.T) {
	bad := writeJSON(t, "{{ range .Apps }}")
	for _, args := range [][]string{
		{"--haproxy=false", "--bamboo-template", bad},
		{"--bamboo-template", bad},
		{"--bamboo-template", bad + ".missing"},
	} {
		args = append([]string{"serve", "--run-dir", t.TempDir(), "--apps-file", "../../examples/apps.json"}, args...)
		code, _, errOut := runCmd(t, nil, args...)
		if code == 0 || !strings.Contains(errOut, "--bamboo-template") {
			t.Errorf("%v: exit %d, stderr %q; want a failure naming --bamboo-template", args, code, errOut)
		}
	}
}
