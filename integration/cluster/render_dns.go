package cluster

import (
	"fmt"
	"strings"
)

// renderDNS renders what the company's resolvers need to reach the DNS lodestars:
// dns/named.conf.<domain>, a bind9 forward zone to include from named.conf.local, and
// dns/resolv.conf, the nameserver lines for hosts that ask lodestar first.
func renderDNS(t *Topology, format string) map[string][]byte {
	dns := t.HostsWithRole(RoleDNS)
	var zone strings.Builder
	fmt.Fprintf(&zone, "// bind9 forward zone for %q, the Mesos domain of cluster %q: include it from named.conf.local.\n", t.Domain, t.Name)
	zone.WriteString(generatedBy(format, "//"))
	fmt.Fprintf(&zone, "// lodestar does not sign the zone: with dnssec-validation on, add\n//   validate-except { %q; };\n// to the options block, or bind answers SERVFAIL for every name in it.\n", t.Domain)
	if len(dns) == 0 {
		zone.WriteString("// No host of the topology has role dns: there is nothing to forward to.\n")
	} else {
		fmt.Fprintf(&zone, "zone %q {\n\ttype forward;\n\tforward only;\n\tforwarders {", t.Domain)
		for _, h := range dns {
			fmt.Fprintf(&zone, " %s port %d;", h.IP, h.DNSPort)
		}
		zone.WriteString(" };\n};\n")
	}

	var resolv strings.Builder
	fmt.Fprintf(&resolv, "# resolv.conf lines for hosts that ask lodestar first (cluster %q): lodestar answers %q\n", t.Name, t.Domain)
	resolv.WriteString("# and forwards every other name to its upstreams. Put them before the other nameserver lines.\n")
	resolv.WriteString(generatedBy(format, "#"))
	for _, h := range dns {
		if h.DNSPort != DefaultDNSPort {
			fmt.Fprintf(&resolv, "# host %q serves DNS on port %d, which resolv.conf cannot name: use the bind forward zone.\n", h.Name, h.DNSPort)
			continue
		}
		fmt.Fprintf(&resolv, "nameserver %s\n", h.IP)
	}
	return map[string][]byte{
		"dns/named.conf." + t.Domain: []byte(zone.String()),
		"dns/resolv.conf":            []byte(resolv.String()),
	}
}
