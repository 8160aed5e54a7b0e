package cluster

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func parseCompose(t *testing.T, top *Topology) composeFile {
	t.Helper()
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader(render(t, top, FormatCompose)[ComposeFile]))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		t.Fatal(err)
	}
	return cf
}

// With compose.vm_ip the agents run on the VM's network and register under its address;
// hosts with publish get their ports published there, on their network's owner.
func TestComposeAgentsOnVMNetworkAndPublish(t *testing.T) {
	src := strings.Replace(base, "name: t\n", "name: t\ncompose: {vm_ip: 192.168.1.10}\n", 1)
	src = strings.Replace(src, "roles: [zk, master, marathon]}", "roles: [zk, master, marathon], publish: true}", 1)
	src = strings.Replace(src, "roles: [lb, dns, proxy]}", "roles: [lb, dns, proxy], publish: true}", 1)
	top, _, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cf := parseCompose(t, top)

	agent := cf.Services["a1-agent"]
	if agent.NetworkMode != "host" || len(agent.Networks) != 0 || agent.Hostname != "" {
		t.Errorf("agent: network_mode %q, networks %v, hostname %q; want host, none, none", agent.NetworkMode, agent.Networks, agent.Hostname)
	}
	if agent.Environment["MESOS_IP"] != "192.168.1.10" || agent.Environment["MESOS_HOSTNAME"] != "192.168.1.10" {
		t.Errorf("agent registers under %q/%q, want the VM's 192.168.1.10", agent.Environment["MESOS_IP"], agent.Environment["MESOS_HOSTNAME"])
	}
	if _, ok := cf.Services["a1"]; ok {
		t.Error("an agent-only host on the VM's network still has a service owning its lab IP")
	}
	for _, want := range []string{"192.168.1.10:5050:5050", "192.168.1.10:8080:8080", "192.168.1.10:2181:2181"} {
		if !slices.Contains(cf.Services["zk1"].Ports, want) {
			t.Errorf("zk1 ports %v lack %s", cf.Services["zk1"].Ports, want)
		}
	}
	for _, want := range []string{"192.168.1.10:53:53/udp", "192.168.1.10:53:53/tcp", "192.168.1.10:80:80", "192.168.1.10:15050:15050"} {
		if !slices.Contains(cf.Services["lb1"].Ports, want) {
			t.Errorf("lb1 ports %v lack %s", cf.Services["lb1"].Ports, want)
		}
	}
	if p := cf.Services["zk2"].Ports; len(p) != 0 {
		t.Errorf("zk2 without publish publishes %v", p)
	}
	for name, s := range cf.Services {
		if s.NetworkMode != "" && strings.HasPrefix(s.NetworkMode, "service:") && len(s.Ports) > 0 {
			t.Errorf("%s joins another's network and publishes ports (compose refuses that)", name)
		}
	}
}

// Without vm_ip, agents keep their lab IPs and publish binds all the VM's addresses.
func TestComposePublishWithoutVMIP(t *testing.T) {
	src := strings.Replace(base, "{name: a1, ip: 10.0.0.4, roles: [agent]}", "{name: a1, ip: 10.0.0.4, roles: [agent], publish: true}", 1)
	top, _, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cf := parseCompose(t, top)
	a := cf.Services["a1-agent"]
	if a.Environment["MESOS_IP"] != "10.0.0.4" || a.Networks["t"].IPv4 != "10.0.0.4" || a.NetworkMode != "" {
		t.Errorf("agent: MESOS_IP %q, networks %v, network_mode %q", a.Environment["MESOS_IP"], a.Networks, a.NetworkMode)
	}
	if !slices.Equal(a.Ports, []string{"5051:5051"}) {
		t.Errorf("agent ports %v, want [5051:5051]", a.Ports)
	}
}

func TestComposeVMMistakes(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"vm ip not an address", "name: t\n", "name: t\ncompose: {vm_ip: vm.example}\n",
			`field compose.vm_ip: "vm.example" is not an IPv4 address`},
		{"vm ip v6", "name: t\n", "name: t\ncompose: {vm_ip: \"fd00::1\"}\n",
			`field compose.vm_ip: "fd00::1" is not an IPv4 address`},
		{"vm ip inside the lab", "name: t\n", "name: t\ncompose: {vm_ip: 10.0.0.9}\n",
			`field compose.vm_ip: 10.0.0.9 is inside network.subnet 10.0.0.0/24`},
		{"two published masters", "{name: zk1, ip: 10.0.0.1, roles: [zk, master, marathon]}\n  - {name: zk2, ip: 10.0.0.2, roles: [zk, master]}",
			"{name: zk1, ip: 10.0.0.1, roles: [zk, master, marathon], publish: true}\n  - {name: zk2, ip: 10.0.0.2, roles: [zk, master], publish: true}",
			`host "zk2": field zk_client_port: port 2181 is already opened on the VM by host "zk1" (zk client)`},
		{"unknown compose field", "name: t\n", "name: t\ncompose: {vmip: 10.1.0.1}\n",
			"field vmip: unknown field of compose"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.from) {
				t.Fatalf("case edits %q, which base lacks", c.from)
			}
			_, _, err := Parse([]byte(strings.Replace(base, c.from, c.to, 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v\nwant one containing %s", err, c.want)
			}
		})
	}
	// Two agents on the VM's network share its address, so they need two ports.
	src := strings.Replace(base, "name: t\n", "name: t\ncompose: {vm_ip: 192.168.1.10}\n", 1)
	src = strings.Replace(src, "{name: a1, ip: 10.0.0.4, roles: [agent]}", "{name: a1, ip: 10.0.0.4, roles: [agent]}\n  - {name: a2, ip: 10.0.0.6, roles: [agent]}", 1)
	_, _, err := Parse([]byte(src))
	want := `host "a2": field agent_port: port 5051 is already opened on the VM by host "a1" (mesos agent)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v\nwant one containing %s", err, want)
	}
	if _, _, err := Parse([]byte(strings.Replace(src, "roles: [agent]}\n  - {name: a2, ip: 10.0.0.6, roles: [agent]}", "roles: [agent]}\n  - {name: a2, ip: 10.0.0.6, roles: [agent], agent_port: 5052}", 1))); err != nil {
		t.Fatalf("a2 on 5052: %v", err)
	}
}
