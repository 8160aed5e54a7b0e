package cluster

import (
	"strings"
	"testing"
)

const withExtraFlags = `extra_flags:
  agent: {launcher: posix, isolation: "posix/cpu,posix/mem", containerizers: mesos}
  master: {log_dir: /var/log/mesos}
  marathon: {task_launch_timeout: "600000", env_vars_prefix: "$HOST_"}
`

// Extra flags reach the components: as MESOS_*/MARATHON_* in compose and as flag files of the
// Debian packages in systemd, a host's replacing the topology's flag by flag, and a rendered
// default (containerizers) replaced rather than set twice.
func TestExtraFlagsRendered(t *testing.T) {
	src := strings.Replace(base, "name: t\n", "name: t\n"+withExtraFlags, 1)
	src = strings.Replace(src, "{name: a1, ip: 10.0.0.4, roles: [agent]}", "{name: a1, ip: 10.0.0.4, roles: [agent], extra_flags: {agent: {launcher: linux}}}", 1)
	top, _, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cf := parseCompose(t, top)
	for svc, want := range map[string]map[string]string{
		"a1-agent":     {"MESOS_LAUNCHER": "linux", "MESOS_ISOLATION": "posix/cpu,posix/mem", "MESOS_CONTAINERIZERS": "mesos"},
		"zk2-master":   {"MESOS_LOG_DIR": "/var/log/mesos"},
		"zk1-marathon": {"MARATHON_TASK_LAUNCH_TIMEOUT": "600000", "MARATHON_ENV_VARS_PREFIX": "$$HOST_"},
	} {
		for k, v := range want {
			if got := cf.Services[svc].Environment[k]; got != v {
				t.Errorf("%s: %s=%q, want %q", svc, k, got, v)
			}
		}
	}
	compose := string(render(t, top, FormatCompose)[ComposeFile])
	if n := strings.Count(compose, "MESOS_CONTAINERIZERS"); n != 1 {
		t.Errorf("MESOS_CONTAINERIZERS appears %d times, want once", n)
	}
	files := render(t, top, FormatSystemd)
	for path, want := range map[string]string{
		"a1/etc/mesos-slave/launcher":               "linux\n",
		"a1/etc/mesos-slave/isolation":              "posix/cpu,posix/mem\n",
		"a1/etc/mesos-slave/containerizers":         "mesos\n",
		"zk3/etc/mesos-master/log_dir":              "/var/log/mesos\n",
		"zk1/etc/marathon/conf/task_launch_timeout": "600000\n",
		"zk1/etc/marathon/conf/env_vars_prefix":     "$HOST_\n",
	} {
		if got := string(files[path]); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

func TestExtraFlagsMistakes(t *testing.T) {
	cases := []struct {
		name, flags, want string
	}{
		{"equals in a name", "extra_flags: {agent: {\"launcher=posix\": x}}\n",
			`field extra_flags.agent: "launcher=posix" is not a flag name`},
		{"path in a name", "extra_flags: {master: {\"../../../etc/shadow\": x}}\n",
			`field extra_flags.master: "../../../etc/shadow" is not a flag name`},
		{"leading dashes", "extra_flags: {master: {\"--log_dir\": /x}}\n",
			`"--log_dir" is not a flag name`},
		{"newline in a value", "extra_flags: {agent: {launcher: \"posix\\nip=1.2.3.4\"}}\n",
			`field extra_flags.agent.launcher: "posix\nip=1.2.3.4": a value on one line`},
		{"topology's flag", "extra_flags: {agent: {port: \"5052\"}}\n",
			`field extra_flags.agent.port: rendered from the topology; change agent_port instead`},
		{"role without flags", "extra_flags: {lb: {x: y}}\n",
			`field extra_flags.lb: role "lb" takes no extra flags`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Parse([]byte(strings.Replace(base, "name: t\n", "name: t\n"+c.flags, 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v\nwant one containing %s", err, c.want)
			}
		})
	}
	// A host's flags name the host, and only roles it carries.
	src := strings.Replace(base, "{name: a1, ip: 10.0.0.4, roles: [agent]}", "{name: a1, ip: 10.0.0.4, roles: [agent], extra_flags: {master: {log_dir: /x}}}", 1)
	want := `host "a1": field extra_flags.master: the host lacks role master`
	if _, _, err := Parse([]byte(src)); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v\nwant one containing %s", err, want)
	}
}
