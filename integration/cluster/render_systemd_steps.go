package cluster

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// ReadmeFile is the systemd output's bring-up steps, per host; lodestar cluster render prints it.
const ReadmeFile = "README.md"

// unitNameRe is a systemd unit name as mask takes it: no '/', white space or shell syntax.
var unitNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:_.@-]{0,255}$`)

// unitName is name with ".service" added when it has no unit type.
func unitName(name string) string {
	for _, typ := range []string{".service", ".socket", ".timer", ".target", ".path", ".mount"} {
		if strings.HasSuffix(name, typ) {
			return name
		}
	}
	return name + ".service"
}

// hostUnits are the units the systemd output has for host h, in start order.
func (t *Topology) hostUnits(h Host) []string {
	units := []string{hostIPUnit}
	for _, u := range []struct{ role, unit string }{
		{RoleZK, "zookeeper.service"}, {RoleMaster, "mesos-master.service"},
		{RoleMarathon, "marathon.service"}, {RoleAgent, "mesos-slave.service"},
	} {
		if h.has(u.role) {
			units = append(units, u.unit)
		}
	}
	for _, l := range t.Lodestars() {
		if l.Host == h.Name {
			units = append(units, "lodestar-"+l.Name+".service")
		}
	}
	return units
}

// masks checks the topology's and the hosts' mask lists.
func (c *checker) masks() {
	t := c.t
	for _, role := range slices.Sorted(maps.Keys(t.Mask)) {
		if !slices.Contains(Roles, role) {
			c.bad("", "mask."+role, "unknown role %q (known: %s)", role, strings.Join(Roles, ", "))
		}
		for _, u := range t.Mask[role] {
			if !unitNameRe.MatchString(u) {
				c.bad("", "mask."+role, "%q is not a systemd unit name", u)
			}
		}
	}
	for _, h := range t.Hosts {
		runs := t.hostUnits(h)
		for _, u := range h.Mask {
			switch {
			case !unitNameRe.MatchString(u):
				c.bad(h.Name, "mask", "%q is not a systemd unit name", u)
			case slices.Contains(runs, unitName(u)):
				c.bad(h.Name, "mask", "%q is a unit this host runs (its roles: %s)", u, strings.Join(h.Roles, ", "))
			}
		}
	}
}

// hostMasks are the units to mask on host h: the topology's for its roles and its own, less
// the units it runs, sorted.
func (t *Topology) hostMasks(h Host) []string {
	runs := t.hostUnits(h)
	set := map[string]bool{}
	for _, role := range h.Roles {
		for _, u := range t.Mask[role] {
			set[unitName(u)] = true
		}
	}
	for _, u := range h.Mask {
		set[unitName(u)] = true
	}
	var out []string
	for _, u := range slices.Sorted(maps.Keys(set)) {
		if !slices.Contains(runs, u) {
			out = append(out, u)
		}
	}
	return out
}

// systemdReadme is ReadmeFile: how to install each host's files, and the systemctl lines that
// mask its unwanted units and enable and start its own.
func (t *Topology) systemdReadme() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Cluster %q: bring-up with systemd\n\n", t.Name)
	fmt.Fprintf(&b, "<!-- %s -->\n\n", strings.TrimSpace(generatedBy(FormatSystemd, "")))
	b.WriteString("Each directory holds one host's files as they lie from `/`. On each host: install the\n")
	b.WriteString("zookeeper, mesos and marathon packages and `" + lodestarBin + "`, copy the host's directory\n")
	b.WriteString("onto `/` (e.g. `rsync -a node1/ root@node1:/`), then run the host's lines below, as root.\n")
	if t.APIAuthFile != "" {
		fmt.Fprintf(&b, "Hosts running lodestar need `%s` (token:T or basic:user:pass) first.\n", t.systemdAPIAuthFile())
	}
	b.WriteString("\nA Mesos master whose IP changes must have its work_dir (`" + masterWorkDir + "`) wiped before\n")
	b.WriteString("it starts again: its replicated log still names the old address. mesos-master.service records\n")
	b.WriteString("the address in `" + masterWorkDir + "/" + WorkDirIPFile + "` and does not start when it changed;\n")
	b.WriteString("`lodestar cluster doctor --topology …` on the host reports it too.\n")
	for _, h := range t.Hosts {
		addr := h.IP
		if h.IPFrom != "" {
			addr = "address of " + h.IPFrom
		}
		fmt.Fprintf(&b, "\n## %s (%s: %s)\n\n", h.Name, addr, strings.Join(h.Roles, ", "))
		b.WriteString("    systemctl daemon-reload\n")
		if m := t.hostMasks(h); len(m) > 0 {
			fmt.Fprintf(&b, "    systemctl mask --now %s\n", strings.Join(m, " "))
		}
		fmt.Fprintf(&b, "    systemctl enable --now %s\n", strings.Join(t.hostUnits(h), " "))
	}
	return b.String()
}
