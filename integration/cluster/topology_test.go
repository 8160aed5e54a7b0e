package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// base is a valid small topology; each bad case changes one thing in it.
const base = `name: t
network: {subnet: 10.0.0.0/24}
hosts:
  - {name: zk1, ip: 10.0.0.1, roles: [zk, master, marathon]}
  - {name: zk2, ip: 10.0.0.2, roles: [zk, master]}
  - {name: zk3, ip: 10.0.0.3, roles: [zk, master]}
  - {name: a1, ip: 10.0.0.4, roles: [agent]}
  - {name: lb1, ip: 10.0.0.5, roles: [lb, dns, proxy]}
lb_groups:
  - {name: external, hosts: [lb1]}
api_auth_file: /etc/lodestar/api-auth
`

func TestParseValid(t *testing.T) {
	top, warnings, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %v, want none", warnings)
	}
	if top.Domain != "mesos" || top.Marathon.Principal != "marathon" || top.Marathon.Role != "marathon" {
		t.Errorf("defaults: domain %q principal %q role %q", top.Domain, top.Marathon.Principal, top.Marathon.Role)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"ZKServers", top.ZKServers(), []string{"10.0.0.1:2181", "10.0.0.2:2181", "10.0.0.3:2181"}},
		{"ZKURL", top.ZKURL("/mesos"), "zk://10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181/mesos"},
		{"Masters", top.Masters(), []string{"10.0.0.1:5050", "10.0.0.2:5050", "10.0.0.3:5050"}},
		{"Marathons", top.Marathons(), []string{"http://10.0.0.1:8080"}},
		{"Agents", top.Agents(), []string{"10.0.0.4:5051"}},
		{"DNSServers", top.DNSServers(), []string{"10.0.0.5:53"}},
		{"Quorum", top.Quorum(), 2},
		{"ZKQuorum", top.ZKQuorum(), 2},
	}
	for _, c := range checks {
		if !equalAny(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	var ids []int
	for _, h := range top.HostsWithRole(RoleZK) {
		ids = append(ids, h.ZKID)
	}
	if !slices.Equal(ids, []int{1, 2, 3}) {
		t.Errorf("zk ids %v, want 1 2 3 in file order", ids)
	}
}

func equalAny(a, b any) bool {
	as, ok1 := a.([]string)
	bs, ok2 := b.([]string)
	if ok1 && ok2 {
		return slices.Equal(as, bs)
	}
	return a == b
}

// Each bad topology gives exactly one message, naming the host and the field.
func TestParseMistakes(t *testing.T) {
	cases := []struct {
		name, from, to string
		want           string
	}{
		{"duplicate ip", "name: a1, ip: 10.0.0.4", "name: a1, ip: 10.0.0.2",
			`host "a1": field ip: 10.0.0.2 is already used by host "zk2"`},
		{"duplicate port", "lb_groups:\n  - {name: external, hosts: [lb1]}", "lb_groups:\n  - {name: external, hosts: [lb1], stats_port: 53}",
			`host "lb1": field dns_port: port 53 on 10.0.0.5 is already used by host "lb1" (lb external stats)`},
		{"zk port clash", "{name: zk2, ip: 10.0.0.2, roles: [zk, master]}", "{name: zk2, ip: 10.0.0.2, roles: [zk, master], master_port: 2181}",
			`host "zk2": field master_port: port 2181 on 10.0.0.2 is already used by host "zk2" (zk client)`},
		{"marathon without master", "roles: [zk, master, marathon]}\n  - {name: zk2, ip: 10.0.0.2, roles: [zk, master]}\n  - {name: zk3, ip: 10.0.0.3, roles: [zk, master]}\n  - {name: a1, ip: 10.0.0.4, roles: [agent]}\n  - {name: lb1, ip: 10.0.0.5, roles: [lb, dns, proxy]}\nlb_groups:\n  - {name: external, hosts: [lb1]}\n",
			"roles: [zk, marathon]}\n",
			`host "zk1": field roles: role marathon needs a Mesos master, and no host has role master`},
		{"quorum typed", "name: t\n", "name: t\nquorum: 2\n",
			"line 2: field quorum: the Mesos quorum is computed as ⌊masters/2⌋+1 from the hosts with role master; remove it"},
		{"unknown field", "{name: a1, ip: 10.0.0.4, roles: [agent]}", "{name: a1, ip: 10.0.0.4, roles: [agent], hostnme: x}",
			"line 7: field hostnme: unknown field of a host (the fields are those of examples/cluster.yaml)"},
		{"bad ip", "ip: 10.0.0.4", "ip: 10.0.0.400",
			`host "a1": field ip: "10.0.0.400" is not an IP address`},
		{"ip outside subnet", "ip: 10.0.0.4", "ip: 10.0.1.4",
			`host "a1": field ip: 10.0.1.4 is outside network.subnet 10.0.0.0/24`},
		{"unknown role", "roles: [agent]", "roles: [agnet]",
			`host "a1": field roles: unknown role "agnet" (known: zk, master, marathon, agent, lb, dns, proxy)`},
		{"duplicate name", "name: a1", "name: zk3",
			`host "zk3": field name: the name is already used by host #3`},
		{"lb host in no group", "roles: [lb, dns, proxy]}", "roles: [lb, dns, proxy]}\n  - {name: lb2, ip: 10.0.0.6, roles: [lb]}",
			`host "lb2": field roles: role lb, but no lb_groups entry lists this host`},
		{"group without hosts", "[lb1]}", "[lb1]}\n  - {name: internal, hosts: []}",
			`field lb_groups[1].hosts: group "internal" lists no host`},
		{"group names a host without lb", "hosts: [lb1]}", "hosts: [lb1, a1]}",
			`host "a1": field roles: lb group "external" lists this host, which lacks role lb`},
		{"duplicate zk id", "roles: [zk, master]}\n  - {name: zk3, ip: 10.0.0.3, roles: [zk, master]}", "roles: [zk, master], zk_id: 7}\n  - {name: zk3, ip: 10.0.0.3, roles: [zk, master], zk_id: 7}",
			`host "zk3": field zk_id: 7 is already the zk_id of host "zk2"`},
		{"marathon role star", "name: t\n", "name: t\nmarathon: {role: \"*\"}\n",
			`field marathon.role: "*" cannot hold reservations: persistent volumes need a named role`},
		{"api auth file with a space", "api_auth_file: /etc/lodestar/api-auth", "api_auth_file: /etc/lodestar/api auth",
			`field api_auth_file: "/etc/lodestar/api auth": a path without white space`},
		{"no name", "name: t\n", "",
			"field name: required: the cluster's name (Mesos --cluster, compose project name)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.from) {
				t.Fatalf("case edits %q, which base lacks", c.from)
			}
			_, _, err := Parse([]byte(strings.Replace(base, c.from, c.to, 1)))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			msgs := strings.Split(err.Error(), "\n")
			if len(msgs) != 1 || !strings.Contains(msgs[0], c.want) {
				t.Fatalf("got %d messages:\n%v\nwant exactly one containing:\n%s", len(msgs), err, c.want)
			}
		})
	}
}

func TestParseCollectsEveryMistake(t *testing.T) {
	bad := strings.NewReplacer("ip: 10.0.0.4", "ip: 10.0.0.2", "roles: [agent]", "roles: [agnet]").Replace(base)
	_, _, err := Parse([]byte(bad))
	var problems []Problem
	for _, e := range unjoin(err) {
		var p Problem
		if !errors.As(e, &p) {
			t.Fatalf("%v is not a Problem", e)
		}
		problems = append(problems, p)
	}
	if len(problems) != 2 || problems[0].Field != "ip" || problems[1].Field != "roles" || problems[0].Host != "a1" {
		t.Fatalf("problems %+v, want a1's ip then a1's roles", problems)
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Without api_auth_file the lodestars' mutating endpoints answer 403 off loopback: a warning
// says so; a topology without lodestars has nothing to warn about.
func TestAPIAuthFileMissingWarns(t *testing.T) {
	without := strings.Replace(base, "api_auth_file: /etc/lodestar/api-auth\n", "", 1)
	_, warnings, err := Parse([]byte(without))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "field api_auth_file: not set") || !strings.Contains(warnings[0].Error(), "403") {
		t.Fatalf("warnings %v, want one about api_auth_file", warnings)
	}
	noLodestar := strings.NewReplacer("roles: [lb, dns, proxy]", "roles: [agent]", "lb_groups:\n  - {name: external, hosts: [lb1]}\n", "").Replace(without)
	if _, warnings, err := Parse([]byte(noLodestar)); err != nil || len(warnings) != 0 {
		t.Fatalf("a topology without lodestars: warnings %v, error %v; want neither", warnings, err)
	}
}

func TestEvenEnsembleWarns(t *testing.T) {
	even := strings.Replace(base, "roles: [agent]", "roles: [agent, zk]", 1)
	top, warnings, err := Parse([]byte(even))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "4 ZooKeeper hosts (zk1, zk2, zk3, a1): an even-sized ensemble survives no more failures than 3 hosts") {
		t.Fatalf("warnings %v, want one about the even ensemble", warnings)
	}
	if top.ZKQuorum() != 3 {
		t.Errorf("ZKQuorum = %d, want 3 of 4", top.ZKQuorum())
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("name: t\nhosts: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+": field hosts: required") {
		t.Fatalf("err %v, want one naming %s and hosts", err, path)
	}
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing file loaded")
	}
}
