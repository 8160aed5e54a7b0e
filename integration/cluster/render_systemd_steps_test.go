package cluster

import (
	"path"
	"slices"
	"strings"
	"testing"
)

// README.md holds, per host, the systemctl lines masking the units its roles do not run and
// enabling exactly the units rendered for it.
func TestSystemdReadmeSteps(t *testing.T) {
	src := strings.Replace(base, "name: t\n", "name: t\nmask: {master: [mesos-slave], agent: [mesos-master.service]}\n", 1)
	src = strings.Replace(src, "{name: a1, ip: 10.0.0.4, roles: [agent]}", "{name: a1, ip: 10.0.0.4, roles: [agent], mask: [chronos, zookeeper.service]}", 1)
	src = strings.Replace(src, "{name: zk3, ip: 10.0.0.3, roles: [zk, master]}", "{name: zk3, ip: 10.0.0.3, roles: [zk, master, agent]}", 1)
	top, _, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	files := render(t, top, FormatSystemd)
	readme := string(files[ReadmeFile])
	for _, want := range []string{
		"## zk1 (10.0.0.1: zk, master, marathon)\n\n    systemctl daemon-reload\n    systemctl mask --now mesos-slave.service\n    systemctl enable --now lodestar-host-ip.service zookeeper.service mesos-master.service marathon.service\n",
		// zk3 runs both daemons: the role masks leave them alone.
		"## zk3 (10.0.0.3: zk, master, agent)\n\n    systemctl daemon-reload\n    systemctl enable --now lodestar-host-ip.service zookeeper.service mesos-master.service mesos-slave.service\n",
		"    systemctl mask --now chronos.service mesos-master.service zookeeper.service\n    systemctl enable --now lodestar-host-ip.service mesos-slave.service\n",
		"work_dir (`/var/lib/mesos/master`) wiped",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks\n%s\nin\n%s", want, readme)
		}
	}
	// The enable line of each host names exactly its rendered unit files.
	for _, h := range top.Hosts {
		var rendered []string
		for p := range files {
			if strings.HasPrefix(p, h.Name+"/"+systemdUnitDir) {
				rendered = append(rendered, path.Base(p))
			}
		}
		units := top.hostUnits(h)
		if slices.Sort(rendered); !slices.Equal(rendered, slices.Sorted(slices.Values(units))) {
			t.Errorf("%s: enables %v, renders %v", h.Name, units, rendered)
		}
	}
	if _, ok := render(t, top, FormatCompose)[ReadmeFile]; ok {
		t.Error("compose output has the systemd README")
	}
}

func TestMaskMistakes(t *testing.T) {
	cases := []struct{ from, to, want string }{
		{"name: t\n", "name: t\nmask: {master: [\"mesos-slave; rm -rf /\"]}\n",
			`field mask.master: "mesos-slave; rm -rf /" is not a systemd unit name`},
		{"name: t\n", "name: t\nmask: {mastr: [mesos-slave]}\n",
			`field mask.mastr: unknown role "mastr"`},
		{"roles: [agent]}", "roles: [agent], mask: [../../etc/passwd]}",
			`host "a1": field mask: "../../etc/passwd" is not a systemd unit name`},
		{"roles: [agent]}", "roles: [agent], mask: [mesos-slave]}",
			`host "a1": field mask: "mesos-slave" is a unit this host runs (its roles: agent)`},
		{"roles: [lb, dns, proxy]}", "roles: [lb, dns, proxy], mask: [lodestar-dns.service]}",
			`host "lb1": field mask: "lodestar-dns.service" is a unit this host runs`},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if !strings.Contains(base, c.from) {
				t.Fatalf("case edits %q, which base lacks", c.from)
			}
			_, _, err := Parse([]byte(strings.Replace(base, c.from, c.to, 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v\nwant one containing %s", err, c.want)
			}
		})
	}
}
