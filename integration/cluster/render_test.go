package cluster

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files and the top-level docker-compose.yml")

const exampleTopology = "../../examples/cluster.yaml"

func loadExample(t *testing.T) *Topology {
	t.Helper()
	top, warnings, err := Load(exampleTopology)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("examples/cluster.yaml gives warnings: %v", warnings)
	}
	return top
}

func render(t *testing.T, top *Topology, format string) map[string][]byte {
	t.Helper()
	files, err := Render(top, format)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Rendered files for examples/cluster.yaml equal the golden files, file for file.
func TestGolden(t *testing.T) {
	top := loadExample(t)
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			files := render(t, top, format)
			dir := filepath.Join("testdata", "golden", format)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if _, err := WriteFiles(dir, files, false); err != nil {
					t.Fatal(err)
				}
			}
			golden := map[string][]byte{}
			err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(path)
				rel, _ := filepath.Rel(dir, path)
				golden[filepath.ToSlash(rel)] = b
				return err
			})
			if err != nil {
				t.Fatalf("%v (go test ./integration/cluster -update writes the golden files)", err)
			}
			if got, want := slices.Sorted(maps.Keys(files)), slices.Sorted(maps.Keys(golden)); !slices.Equal(got, want) {
				t.Fatalf("rendered files\n%q\ngolden files\n%q\n(go test ./integration/cluster -update)", got, want)
			}
			for p, want := range golden {
				if !bytes.Equal(files[p], want) {
					t.Errorf("%s differs from %s (go test ./integration/cluster -update):\n%s", p, filepath.Join(dir, p), firstDiff(files[p], want))
				}
			}
		})
	}
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

// The repository's docker-compose.yml is the compose render of examples/cluster.yaml.
func TestTopLevelComposeIsRendered(t *testing.T) {
	want := render(t, loadExample(t), FormatCompose)[ComposeFile]
	const committed = "../../docker-compose.yml"
	if *update {
		if err := os.WriteFile(committed, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docker-compose.yml differs from a fresh render of examples/cluster.yaml:\n%s\nrun `go test ./integration/cluster -run TestTopLevelComposeIsRendered -update`, or `go run ./cmd/lodestar cluster render --topology examples/cluster.yaml --format compose --out DIR` and copy DIR/docker-compose.yml",
			firstDiff(got, want))
	}
}

type composeFile struct {
	Name     string `yaml:"name"`
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       string            `yaml:"build"`
		Hostname    string            `yaml:"hostname"`
		Command     []string          `yaml:"command"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Secrets     []string          `yaml:"secrets"`
		Ports       []string          `yaml:"ports"`
		Privileged  bool              `yaml:"privileged"`
		PID         string            `yaml:"pid"`
		NetworkMode string            `yaml:"network_mode"`
		DependsOn   []string          `yaml:"depends_on"`
		Networks    map[string]struct {
			IPv4 string `yaml:"ipv4_address"`
		} `yaml:"networks"`
		Restart string `yaml:"restart"`
	} `yaml:"services"`
	Networks map[string]struct {
		Driver string `yaml:"driver"`
		IPAM   struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]struct{} `yaml:"volumes"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// The compose file is valid YAML with every service, fixed address and setting the lab needs.
func TestComposeContent(t *testing.T) {
	top := loadExample(t)
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader(render(t, top, FormatCompose)[ComposeFile]))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		t.Fatal(err)
	}
	if cf.Name != "lab" || cf.Networks["lab"].Driver != "bridge" || len(cf.Networks["lab"].IPAM.Config) != 1 || cf.Networks["lab"].IPAM.Config[0].Subnet != "172.28.0.0/16" {
		t.Fatalf("name %q networks %+v", cf.Name, cf.Networks)
	}
	// Every host's IP is owned by exactly one service: the host's only container, or its holder.
	owners := map[string]string{}
	for name, s := range cf.Services {
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart %q", name, s.Restart)
		}
		if s.NetworkMode != "" {
			holder := strings.TrimPrefix(s.NetworkMode, "service:")
			if _, ok := cf.Services[holder]; !ok || !slices.Equal(s.DependsOn, []string{holder}) {
				t.Errorf("%s: network_mode %q, depends_on %v", name, s.NetworkMode, s.DependsOn)
			}
			continue
		}
		ip := s.Networks["lab"].IPv4
		if other, dup := owners[ip]; dup || ip == "" {
			t.Errorf("%s: ipv4_address %q (also %q)", name, ip, other)
		}
		owners[ip] = name
	}
	for _, h := range top.Hosts {
		if owners[h.IP] == "" {
			t.Errorf("host %s: no service owns %s", h.Name, h.IP)
		}
	}
	env := func(svc, key, want string) {
		t.Helper()
		s, ok := cf.Services[svc]
		if !ok {
			t.Errorf("no service %s", svc)
			return
		}
		if got := s.Environment[key]; got != want {
			t.Errorf("%s: %s=%q, want %q", svc, key, got, want)
		}
	}
	zk := "zk://172.28.0.11:2181,172.28.0.12:2181,172.28.0.13:2181"
	env("node2-zk", "ZOO_MY_ID", "2")
	env("node2-zk", "ZOO_SERVERS", "server.1=172.28.0.11:2888:3888;2181 server.2=172.28.0.12:2888:3888;2181 server.3=172.28.0.13:2888:3888;2181")
	env("node2-zk", "ZOO_4LW_COMMANDS_WHITELIST", "ruok,srvr,stat,mntr,conf,isro")
	env("node3-master", "MESOS_IP", "172.28.0.13")
	env("node3-master", "MESOS_HOSTNAME", "172.28.0.13")
	env("node3-master", "MESOS_QUORUM", "2")
	env("node3-master", "MESOS_ZK", zk+"/mesos")
	env("node3-master", "MESOS_WORK_DIR", "/var/lib/mesos/master")
	env("node2-marathon", "MARATHON_MASTER", zk+"/mesos")
	env("node2-marathon", "MARATHON_ZK", zk+"/marathon")
	env("node2-marathon", "MARATHON_HOSTNAME", "172.28.0.12")
	env("node2-marathon", "MARATHON_MESOS_AUTHENTICATION_PRINCIPAL", "marathon")
	env("node2-marathon", "MARATHON_MESOS_ROLE", "marathon")
	env("agent1-agent", "MESOS_HOSTNAME", "172.28.0.21")
	env("agent1-agent", "MESOS_CONTAINERIZERS", "docker,mesos")
	env("agent1-agent", "MESOS_EXECUTOR_REGISTRATION_TIMEOUT", "5mins")
	env("agent1-agent", "MESOS_ATTRIBUTES", "rack:r1")
	if !slices.Contains(cf.Services["node1-master"].Volumes, "node1-master-work:/var/lib/mesos/master") {
		t.Errorf("node1-master volumes %v", cf.Services["node1-master"].Volumes)
	}
	var acls map[string]any
	if err := json.Unmarshal([]byte(cf.Services["node1-master"].Environment["MESOS_ACLS"]), &acls); err != nil {
		t.Errorf("MESOS_ACLS: %v", err)
	}
	for _, name := range []string{"agent1-agent", "agent2-agent"} {
		a := cf.Services[name]
		if !a.Privileged || a.PID != "host" || !slices.Contains(a.Volumes, "/var/run/docker.sock:/var/run/docker.sock") || !slices.Contains(a.Volumes, "/sys/fs/cgroup:/sys/fs/cgroup") {
			t.Errorf("%s: privileged %v pid %q volumes %v", name, a.Privileged, a.PID, a.Volumes)
		}
	}
	for _, v := range []string{"node1-zk-data", "node3-master-work"} {
		if _, ok := cf.Volumes[v]; !ok {
			t.Errorf("volume %s not declared", v)
		}
	}
	// The lodestars: one edge per LB group, the DNS one, the leader-proxy one.
	cmd := func(svc string) string { return strings.Join(cf.Services[svc].Command, " ") }
	for svc, want := range map[string][]string{
		"lb1-lb-external":   {"serve ", "--group external", "--http-bind 172.28.0.31:80", "--zk-rules " + zk + "/lodestar/services", "--mesos-zk " + zk + "/mesos"},
		"lb1-lb-internal":   {"--group internal", "--http-bind 172.28.0.31:8000", "--api-listen 172.28.0.31:8190"},
		"dns1-dns":          {"--dns-listen 172.28.0.41:53", "--dns-domain mesos", "--haproxy=false"},
		"dns1-leader-proxy": {"--leader-proxy mesos=172.28.0.41:15050", "--leader-proxy marathon=172.28.0.41:18080"},
	} {
		for _, w := range want {
			if !strings.Contains(cmd(svc), w) {
				t.Errorf("%s: command %q lacks %q", svc, cmd(svc), w)
			}
		}
		if s := cf.Services[svc]; s.Image != "lodestar:latest" || s.Build != "." {
			t.Errorf("%s: image %q build %q", svc, s.Image, s.Build)
		}
		// The API credential: a compose secret, which each lodestar reads with --api-auth.
		if s := cf.Services[svc]; !slices.Equal(s.Secrets, []string{"lodestar_api_auth"}) || !strings.Contains(cmd(svc), "--api-auth /run/secrets/lodestar_api_auth") {
			t.Errorf("%s: secrets %v, command %q; want the secret lodestar_api_auth read with --api-auth", svc, s.Secrets, cmd(svc))
		}
	}
	if f := cf.Secrets["lodestar_api_auth"].File; f != "lodestar-api-auth" {
		t.Errorf("secret lodestar_api_auth from file %q, want examples/cluster.yaml's api_auth_file", f)
	}
	for name, s := range cf.Services {
		if len(s.Secrets) > 0 && !strings.Contains(name, "-lb-") && !strings.HasSuffix(name, "-dns") && !strings.HasSuffix(name, "-leader-proxy") {
			t.Errorf("%s is not a lodestar and gets secrets %v", name, s.Secrets)
		}
	}
}

// The systemd files carry the traps' fixes: ip and hostname, quorum, executor timeout, ACLs,
// Marathon's principal and role, the host-IP unit.
func TestSystemdContent(t *testing.T) {
	files := render(t, loadExample(t), FormatSystemd)
	want := map[string]string{
		"node2/etc/zookeeper/conf/myid":                          "2\n",
		"node1/etc/mesos/zk":                                     "zk://172.28.0.11:2181,172.28.0.12:2181,172.28.0.13:2181/mesos\n",
		"node3/etc/mesos-master/quorum":                          "2\n",
		"node3/etc/mesos-master/ip":                              "172.28.0.13\n",
		"node3/etc/mesos-master/hostname":                        "172.28.0.13\n",
		"node3/etc/mesos-master/work_dir":                        "/var/lib/mesos/master\n",
		"node3/etc/mesos-master/acls":                            "/etc/mesos/acls.json\n",
		"agent2/etc/mesos-slave/hostname":                        "172.28.0.22\n",
		"agent2/etc/mesos-slave/executor_registration_timeout":   "5mins\n",
		"agent2/etc/mesos-slave/containerizers":                  "docker,mesos\n",
		"node1/etc/marathon/conf/mesos_authentication_principal": "marathon\n",
		"node1/etc/marathon/conf/mesos_role":                     "marathon\n",
		"node1/etc/marathon/conf/zk":                             "zk://172.28.0.11:2181,172.28.0.12:2181,172.28.0.13:2181/marathon\n",
		"node2/etc/marathon/conf/hostname":                       "172.28.0.12\n",
	}
	for p, w := range want {
		if got := string(files[p]); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	zoo := string(files["node1/etc/zookeeper/conf/zoo.cfg"])
	for _, line := range []string{"server.1=172.28.0.11:2888:3888", "server.3=172.28.0.13:2888:3888", "clientPortAddress=172.28.0.11", "admin.enableServer=false", "4lw.commands.whitelist=ruok,srvr,stat,mntr,conf,isro"} {
		if !strings.Contains(zoo, line+"\n") {
			t.Errorf("zoo.cfg lacks %q", line)
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(files["node1/etc/mesos/acls.json"], &raw); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"register_frameworks", "run_tasks", "reserve_resources", "unreserve_resources", "create_volumes", "destroy_volumes"} {
		var rules []map[string]struct {
			Values []string `json:"values"`
		}
		if err := json.Unmarshal(raw[action], &rules); err != nil || len(rules) != 1 || !slices.Equal(rules[0]["principals"].Values, []string{"marathon"}) {
			t.Errorf("acls %s = %s, want Marathon's principal granted (%v)", action, raw[action], err)
		}
	}
	agent := string(files["agent1/etc/systemd/system/mesos-slave.service"])
	for _, line := range []string{"Requires=lodestar-host-ip.service docker.service", "After=network-online.target lodestar-host-ip.service docker.service", "Restart=always", "EnvironmentFile=" + HostEnvFile} {
		if !strings.Contains(agent, line+"\n") {
			t.Errorf("mesos-slave.service lacks %q:\n%s", line, agent)
		}
	}
	lb := string(files["lb1/etc/systemd/system/lodestar-lb-internal.service"])
	for _, line := range []string{"--http-bind ${HOST_IP}:8000", "--run-dir /run/lodestar-lb-internal", "RuntimeDirectory=lodestar-lb-internal", "AmbientCapabilities=CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(lb, line) {
			t.Errorf("lodestar-lb-internal.service lacks %q", line)
		}
	}
	script := string(files["dns1/usr/local/lib/lodestar-cluster/host-ip.sh"])
	if !strings.Contains(script, "addr=172.28.0.41\n") || !strings.Contains(script, HostEnvFile) {
		t.Errorf("host-ip.sh:\n%s", script)
	}
	for _, f := range []string{"dns/named.conf.mesos", "dns/resolv.conf"} {
		if len(files[f]) == 0 {
			t.Errorf("no %s", f)
		}
	}
	if !strings.Contains(string(files["dns/named.conf.mesos"]), "forwarders { 172.28.0.41 port 53; };") {
		t.Errorf("named.conf.mesos:\n%s", files["dns/named.conf.mesos"])
	}
	if !strings.Contains(string(files["dns/resolv.conf"]), "\nnameserver 172.28.0.41\n") {
		t.Errorf("resolv.conf:\n%s", files["dns/resolv.conf"])
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	top := loadExample(t)
	for _, format := range Formats {
		a, b := render(t, top, format), render(t, top, format)
		if !maps.EqualFunc(a, b, bytes.Equal) {
			t.Errorf("%s: two renders differ", format)
		}
	}
	if _, err := Render(top, "helm"); err == nil || !strings.Contains(err.Error(), `format "helm": use compose or systemd`) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestComposeNeedsSubnet(t *testing.T) {
	top, _, err := Parse([]byte(strings.Replace(base, "network: {subnet: 10.0.0.0/24}\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(top, FormatCompose); err == nil || !strings.Contains(err.Error(), "field network.subnet: required for --format compose") {
		t.Fatalf("err %v", err)
	}
	if _, err := Render(top, FormatSystemd); err != nil {
		t.Fatalf("systemd needs no subnet: %v", err)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{"a/b.txt": []byte("one\n"), "c.sh": []byte("#!/bin/sh\n")}
	written, err := WriteFiles(dir, files, false)
	if err != nil || !slices.Equal(written, []string{"a/b.txt", "c.sh"}) {
		t.Fatalf("written %v, %v", written, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "c.sh")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("c.sh mode: %v %v", st, err)
	}
	if written, err := WriteFiles(dir, files, false); err != nil || len(written) != 0 {
		t.Fatalf("same content again: written %v, %v", written, err)
	}
	changed := map[string][]byte{"a/b.txt": []byte("two\n"), "new.txt": []byte("x")}
	if _, err := WriteFiles(dir, changed, false); err == nil || !strings.Contains(err.Error(), "a/b.txt") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrite without force: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); !os.IsNotExist(err) {
		t.Fatal("a refused render wrote new.txt")
	}
	if _, err := WriteFiles(dir, changed, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a/b.txt")); string(b) != "two\n" {
		t.Fatalf("a/b.txt = %q after --force", b)
	}
	if _, err := WriteFiles(dir, map[string][]byte{"../x": nil}, true); err == nil {
		t.Fatal("wrote outside the directory")
	}
}

// systemd hands api_auth_file to every lodestar unit, and only to those, as a credential its
// DynamicUser can read (%d is the unit's credentials directory); a relative path lies in
// /etc/lodestar, an absolute one stays; without the field no unit asks for a credential.
func TestSystemdAPIAuthCredential(t *testing.T) {
	for _, c := range []struct{ field, want string }{
		{"lodestar-api-auth", "/etc/lodestar/lodestar-api-auth"},
		{"/srv/secrets/lb-auth", "/srv/secrets/lb-auth"},
		{"", ""},
	} {
		top := loadExample(t)
		top.APIAuthFile = c.field
		lodestarUnits := 0
		for path, b := range render(t, top, FormatSystemd) {
			unit := string(b)
			isLodestar := strings.Contains(path, "/lodestar-") && strings.HasSuffix(path, ".service") && !strings.HasSuffix(path, hostIPUnit)
			hasCred := strings.Contains(unit, "LoadCredential=")
			switch {
			case !isLodestar && hasCred:
				t.Errorf("api_auth_file %q: %s is not a lodestar unit and loads a credential", c.field, path)
			case !isLodestar:
			case c.want == "" && (hasCred || strings.Contains(unit, "--api-auth")):
				t.Errorf("api_auth_file unset: %s still has a credential or --api-auth:\n%s", path, unit)
			case c.want != "" && (!strings.Contains(unit, "LoadCredential=lodestar-api-auth:"+c.want+"\n") || !strings.Contains(unit, "--api-auth %d/lodestar-api-auth")):
				t.Errorf("api_auth_file %q: %s lacks LoadCredential=lodestar-api-auth:%s or --api-auth %%d/lodestar-api-auth:\n%s", c.field, path, c.want, unit)
			default:
				lodestarUnits++
			}
		}
		if lodestarUnits != 4 {
			t.Errorf("api_auth_file %q: %d lodestar units checked, want 4", c.field, lodestarUnits)
		}
	}
}

// Compose names starting with "mesos" are refused (Mesos agents kill containers named
// mesos-* as their own); systemd output, which names no container, accepts them.
func TestComposeRefusesMesosNames(t *testing.T) {
	cases := []struct {
		name, from, to string
		want           []string
	}{
		{"cluster", "name: t\n", "name: mesos\n",
			[]string{`field name: "mesos": --format compose names containers after it, and Mesos's docker containerizer kills containers named mesos-* as its own; name the cluster e.g. "lab-mesos"`}},
		{"host", "name: a1,", "name: mesos-agent1,",
			[]string{`host "mesos-agent1": field name: "mesos-agent1": --format compose`, `name the host e.g. "node-mesos-agent1"`}},
		{"prefix without dash", "name: t\n", "name: mesoslab\n",
			[]string{`field name: "mesoslab"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			top, _, err := Parse([]byte(strings.Replace(base, c.from, c.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Render(top, FormatCompose)
			if err == nil {
				t.Fatalf("rendered, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks\n%s", err, w)
				}
			}
			if _, err := Render(top, FormatSystemd); err != nil {
				t.Errorf("systemd: %v", err)
			}
		})
	}
	// A name merely containing "mesos" is fine.
	top, _, err := Parse([]byte(strings.Replace(base, "name: t\n", "name: lab-mesos\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(top, FormatCompose); err != nil {
		t.Fatalf("lab-mesos: %v", err)
	}
}
