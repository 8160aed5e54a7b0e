package cluster

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

// extraFlagRoles are the roles extra_flags may name, with the prefix of their component's
// environment variables (MESOS_LAUNCHER=posix reads as --launcher=posix).
var extraFlagRoles = map[string]string{
	RoleMaster:   "MESOS_",
	RoleAgent:    "MESOS_",
	RoleMarathon: "MARATHON_",
}

// topologyFlags are the flags rendered from a topology field, which extra_flags may not
// replace: the field to change instead, by role then flag. The other rendered flags
// (containerizers, executor_registration_timeout, registry, framework_name, …) are defaults
// that extra_flags replaces.
var topologyFlags = map[string]map[string]string{
	RoleMaster: {
		"cluster": "name", "ip": "ip", "hostname": "ip", "port": "master_port",
		"zk": "the zk hosts", "quorum": "the master hosts (it is computed)",
		"work_dir": "none: it is the volume or directory the render sets up",
		"acls":     "marathon",
	},
	RoleAgent: {
		"master": "the zk hosts", "ip": "ip (or compose.vm_ip)", "hostname": "ip (or compose.vm_ip)",
		"port": "agent_port", "attributes": "agent_attributes",
		"work_dir": "none: it is the directory the render shares with the Docker daemon",
	},
	RoleMarathon: {
		"master": "the zk hosts", "zk": "the zk hosts", "hostname": "ip", "http_port": "marathon_port",
		"mesos_authentication_principal": "marathon.principal", "mesos_role": "marathon.role",
	},
}

// flagNameRe is a flag name as Mesos and Marathon spell them: it is also a file name under
// /etc/mesos-master and an environment variable's suffix, so no '/', '=' or '.'.
var flagNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// extraFlags checks the topology's and the hosts' extra_flags.
func (c *checker) extraFlags() {
	t := c.t
	c.extraFlagMap("", "extra_flags", t.ExtraFlags, nil)
	for _, h := range t.Hosts {
		c.extraFlagMap(h.Name, "extra_flags", h.ExtraFlags, &h)
	}
}

// extraFlagMap checks one extra_flags map; h is the host it belongs to, nil for the topology's.
func (c *checker) extraFlagMap(host, field string, m map[string]map[string]string, h *Host) {
	for _, role := range slices.Sorted(maps.Keys(m)) {
		f := field + "." + role
		if _, ok := extraFlagRoles[role]; !ok {
			c.bad(host, f, "role %q takes no extra flags (those that do: agent, marathon, master)", role)
			continue
		}
		if h != nil && !h.has(role) {
			c.bad(host, f, "the host lacks role %s", role)
		}
		for _, name := range slices.Sorted(maps.Keys(m[role])) {
			v := m[role][name]
			switch {
			case !flagNameRe.MatchString(name):
				c.bad(host, f, "%q is not a flag name (lower-case letters, digits and _, as in log_dir; without the leading --)", name)
			case topologyFlags[role][name] != "":
				c.bad(host, f+"."+name, "rendered from the topology; change %s instead", topologyFlags[role][name])
			case strings.ContainsAny(v, "\n\r\x00"):
				c.bad(host, f+"."+name, "%q: a value on one line", v)
			}
		}
	}
}

// roleExtraFlags is host h's extra flags for role: the topology's, replaced flag by flag by
// the host's, sorted by name.
func (t *Topology) roleExtraFlags(h Host, role string) [][2]string {
	merged := maps.Clone(t.ExtraFlags[role])
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, h.ExtraFlags[role])
	out := make([][2]string, 0, len(merged))
	for _, name := range slices.Sorted(maps.Keys(merged)) {
		out = append(out, [2]string{name, merged[name]})
	}
	return out
}

// withExtraEnv is env with host h's extra flags for role as environment variables: one the
// render sets already is replaced in place, others are appended. '$' is doubled: compose
// would otherwise substitute variables into the value.
func (t *Topology) withExtraEnv(env [][2]string, h Host, role string) [][2]string {
	for _, kv := range t.roleExtraFlags(h, role) {
		name := extraFlagRoles[role] + strings.ToUpper(kv[0])
		value := strings.ReplaceAll(kv[1], "$", "$$")
		i := slices.IndexFunc(env, func(e [2]string) bool { return e[0] == name })
		if i >= 0 {
			env[i][1] = value
			continue
		}
		env = append(env, [2]string{name, value})
	}
	return env
}
