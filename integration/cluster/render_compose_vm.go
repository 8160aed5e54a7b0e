package cluster

import (
	"fmt"
	"net/netip"
	"slices"
)

// agentsOnVMNetwork reports whether the compose form runs the agents in the VM's network
// namespace (compose.vm_ip is set).
func (t *Topology) agentsOnVMNetwork() bool { return t.Compose.VMIP != "" }

// composeVM checks compose.vm_ip and the ports the compose form opens on the VM: those of
// every host with publish, and the agents' ports when they run on the VM's network. Two of
// them on one port cannot both bind, whatever their lab IPs.
func (c *checker) composeVM() {
	t := c.t
	if t.Compose.VMIP != "" {
		ip, err := netip.ParseAddr(t.Compose.VMIP)
		switch {
		case err != nil || !ip.Is4():
			c.bad("", "compose.vm_ip", "%q is not an IPv4 address (the VM's own address, e.g. 192.168.1.10)", t.Compose.VMIP)
		default:
			if p, err := netip.ParsePrefix(t.Network.Subnet); err == nil && p.Masked().Contains(ip) {
				c.bad("", "compose.vm_ip", "%s is inside network.subnet %s: give the VM's own address, which the lab's bridge does not own", ip, p.Masked())
			}
		}
	}
	used := map[int]string{} // VM port → "host "x" (what)"
	for _, l := range t.listeners() {
		h := t.hostByName(l.host)
		onVM := h.Publish || (l.field == "agent_port" && t.agentsOnVMNetwork())
		if !onVM || l.port < 1 || l.port > 65535 {
			continue
		}
		if other, ok := used[l.port]; ok {
			c.bad(l.host, l.field, "port %d is already opened on the VM by %s (publish, or an agent on the VM's network): give one of them another port", l.port, other)
			continue
		}
		used[l.port] = fmt.Sprintf("host %q (%s)", l.host, l.what)
	}
}

// composePorts is the ports: list of host h's network owner in the compose form: every port
// h listens on, at the same port of the VM (bound to compose.vm_ip when set). An agent on the
// VM's network needs none. DNS is published for UDP and TCP.
func (t *Topology) composePorts(h Host) []string {
	if !h.Publish {
		return nil
	}
	bind := ""
	if t.Compose.VMIP != "" {
		bind = t.Compose.VMIP + ":"
	}
	var out []string
	for _, l := range t.listeners() {
		if l.host != h.Name || (l.field == "agent_port" && t.agentsOnVMNetwork()) {
			continue
		}
		p := fmt.Sprintf("%s%d:%d", bind, l.port, l.port)
		if l.field == "dns_port" {
			out = append(out, p+"/udp", p+"/tcp")
			continue
		}
		out = append(out, p)
	}
	return slices.Clip(out)
}
