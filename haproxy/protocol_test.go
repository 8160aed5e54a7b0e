package haproxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// TestUDPPortsLeftOut: HAProxy proxies no UDP. A port Marathon declares "udp" is left out of
// HAProxy with a reason (the status page and /v1/haproxy/status list Model.Excluded); a
// "udp,tcp" port is still served as TCP, as is a port with no protocol. The apps come from
// Marathon JSON, so the protocol is the one discovery decodes from portDefinitions and
// portMappings; a protocol that is not a protocol is left out as well.
func TestUDPPortsLeftOut(t *testing.T) {
	const apps = `{"apps": [
	  {"id": "/dns", "labels": {"HAPROXY_GROUP": "external"}, "instances": 1,
	   "portDefinitions": [{"port": 10053, "protocol": "udp"}, {"port": 10054, "protocol": "udp,tcp"},
	                       {"port": 10055, "protocol": "tcp"}, {"port": 10056}]},
	  {"id": "/bridge", "labels": {"HAPROXY_GROUP": "external"}, "instances": 1,
	   "container": {"type": "DOCKER", "docker": {"image": "x", "network": "BRIDGE", "portMappings": [
	     {"containerPort": 53, "servicePort": 10153, "protocol": "udp"},
	     {"containerPort": 80, "servicePort": 10180, "protocol": "tcp"}]}}},
	  {"id": "/hostile", "labels": {"HAPROXY_GROUP": "external"}, "instances": 1,
	   "portDefinitions": [{"port": 10253, "protocol": "tcp\nfrontend evil"}, {"port": 10254, "protocol": " TCP "}]}
	]}`
	decoded, appErrs, err := discovery.DecodeMarathonApps([]byte(apps))
	if err != nil || len(appErrs) > 0 {
		t.Fatalf("decode: %v %v", err, appErrs)
	}
	m := build(t, testConfig(), nil, decoded...)
	want := []string{"bridge_10180", "dns_10054", "dns_10055", "dns_10056", "hostile_10254"}
	if got := backendNames(m); !slices.Equal(got, want) {
		t.Errorf("backends %v, want %v", got, want)
	}
	wantExcluded := []string{
		`/bridge#0: protocol "udp": HAProxy proxies TCP only`,
		`/dns#0: protocol "udp": HAProxy proxies TCP only`,
		`/hostile#0: protocol "tcp\nfrontend evil": HAProxy proxies TCP only`,
	}
	if got := excluded(m); !slices.Equal(got, wantExcluded) {
		t.Errorf("excluded %q, want %q", got, wantExcluded)
	}
	r := render(t, m)
	for _, port := range []string{":10053", ":10153", ":10253", "evil"} {
		if strings.Contains(string(r.Config), port) {
			t.Errorf("the configuration mentions %s", port)
		}
	}
}

// TestUDPPortOfAnUnservedGroup: a UDP port of an app this instance does not serve is not
// reported at all, like the app's other ports.
func TestUDPPortOfAnUnservedGroup(t *testing.T) {
	a := app("/internal-dns", withLabel("HAPROXY_GROUP", "internal"))
	a.Ports = []discovery.Port{{ServicePort: 10053, Protocol: "udp"}}
	m := build(t, testConfig(), nil, a)
	if len(m.Backends) != 0 || len(m.Excluded) != 0 {
		t.Errorf("backends %v, excluded %v", backendNames(m), excluded(m))
	}
}
