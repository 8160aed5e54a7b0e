package cluster

import (
	"fmt"
	"regexp"
	"strings"
)

// ifaceRe is a Linux interface name (at most 15 bytes), safe to stand in a shell script.
var ifaceRe = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)

// ipFrom checks the hosts' ip_from: an interface name, instead of ip, on agent-only hosts.
func (c *checker) ipFrom() {
	for _, h := range c.t.Hosts {
		if h.IPFrom == "" {
			continue
		}
		switch {
		case !ifaceRe.MatchString(h.IPFrom) || h.IPFrom == "." || h.IPFrom == "..":
			c.bad(h.Name, "ip_from", "%q is not an interface name (e.g. eth0)", h.IPFrom)
		case h.IP != "":
			c.bad(h.Name, "ip_from", "set with ip %s: give ip (fixed) or ip_from (discovered at boot), not both", h.IP)
		}
		for _, r := range h.Roles {
			if r != RoleAgent {
				c.bad(h.Name, "ip_from", "role %s: other hosts' configuration names this host's address, so it needs a fixed ip (ip_from suits agent-only hosts, which register their address with the masters)", r)
			}
		}
	}
}

// hostIPFromScript waits until interface h.IPFrom has an IPv4 address, then writes it to
// HostEnvFile, and as MESOS_IP and MESOS_HOSTNAME for the agent, whose flag files then name
// no address.
func (t *Topology) hostIPFromScript(h Host) string {
	return fmt.Sprintf(`#!/bin/sh
# Waits for interface %[1]s (host %[2]q of cluster %[3]q) to have an IPv4 address, then
# writes it to %[4]s for the cluster's units (EnvironmentFile=): HOST_IP, and MESOS_IP and
# MESOS_HOSTNAME, which the Mesos agent registers under.
%[5]sset -eu
dev=%[1]s
tries=0
while :; do
	addr=$(ip -o -4 addr show dev "$dev" scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
	[ -n "$addr" ] && break
	tries=$((tries + 1))
	if [ "$tries" -ge 120 ]; then
		echo "lodestar-cluster: interface $dev (ip_from of host %[2]s in the topology) has no IPv4 address after 120s: check the interface name or the DHCP lease" >&2
		exit 1
	fi
	sleep 1
done
mkdir -p %[6]s
printf 'HOST_IP=%%s\nHOST_NAME=%%s\nMESOS_IP=%%s\nMESOS_HOSTNAME=%%s\n' "$addr" %[2]s "$addr" "$addr" >%[4]s.tmp
mv %[4]s.tmp %[4]s
`, h.IPFrom, h.Name, t.Name, HostEnvFile, generatedBy(FormatSystemd, "#"), HostEnvFile[:strings.LastIndex(HostEnvFile, "/")])
}
