package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const ipFromAgent = "{name: a1, ip_from: eth0, roles: [agent]}"

// An agent-only host with ip_from gets a host-IP script that discovers the interface's
// address and writes it, with MESOS_IP and MESOS_HOSTNAME, to the units' environment file;
// its flag files name no address. The script is run here against a stand-in `ip`.
func TestIPFromDiscoversTheAddress(t *testing.T) {
	top, _, err := Parse([]byte(strings.Replace(base, "{name: a1, ip: 10.0.0.4, roles: [agent]}", ipFromAgent, 1)))
	if err != nil {
		t.Fatal(err)
	}
	files := render(t, top, FormatSystemd)
	for _, p := range []string{"a1/etc/mesos-slave/ip", "a1/etc/mesos-slave/hostname"} {
		if _, ok := files[p]; ok {
			t.Errorf("%s rendered: it would name no address", p)
		}
	}
	if got := string(files["a1/etc/mesos-slave/port"]); got != "5051\n" {
		t.Errorf("port file %q", got)
	}
	if !strings.Contains(string(files["a1/"+systemdUnitDir+hostIPUnit]), `host "a1"'s address on eth0`) {
		t.Errorf("host-IP unit:\n%s", files["a1/"+systemdUnitDir+hostIPUnit])
	}
	if !strings.Contains(string(files[ReadmeFile]), "## a1 (address of eth0: agent)") {
		t.Errorf("README:\n%s", files[ReadmeFile])
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// `ip -o -4 addr show dev eth0 scope global` on a host with two addresses.
	fakeIP := "#!/bin/sh\n[ \"$*\" = \"-o -4 addr show dev eth0 scope global\" ] || exit 1\n" +
		"echo '2: eth0    inet 192.168.7.23/24 brd 192.168.7.255 scope global dynamic eth0\\       valid_lft 86000sec preferred_lft 86000sec'\n" +
		"echo '2: eth0    inet 192.168.7.99/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever'\n"
	if err := os.WriteFile(filepath.Join(bin, "ip"), []byte(fakeIP), 0o755); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	script := strings.ReplaceAll(string(files["a1/"+strings.TrimPrefix(hostIPScript, "/")]), filepath.Dir(HostEnvFile), runDir)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	env, err := os.ReadFile(filepath.Join(runDir, filepath.Base(HostEnvFile)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "HOST_IP=192.168.7.23\nHOST_NAME=a1\nMESOS_IP=192.168.7.23\nMESOS_HOSTNAME=192.168.7.23\n"; string(env) != want {
		t.Errorf("env file %q, want %q", env, want)
	}

	if _, err := Render(top, FormatCompose); err == nil || !strings.Contains(err.Error(), `host "a1": field ip_from: --format compose gives every host a fixed ip`) {
		t.Errorf("compose: %v", err)
	}
}

func TestIPFromMistakes(t *testing.T) {
	cases := []struct{ to, want string }{
		{"{name: a1, ip_from: \"eth0; reboot\", roles: [agent]}", `host "a1": field ip_from: "eth0; reboot" is not an interface name`},
		{"{name: a1, ip_from: a-very-long-interface, roles: [agent]}", `"a-very-long-interface" is not an interface name`},
		{"{name: a1, ip_from: \"..\", roles: [agent]}", `".." is not an interface name`},
		{"{name: a1, ip: 10.0.0.4, ip_from: eth0, roles: [agent]}", `host "a1": field ip_from: set with ip 10.0.0.4: give ip (fixed) or ip_from`},
		{"{name: a1, ip_from: eth0, roles: [agent, marathon]}", `host "a1": field ip_from: role marathon: other hosts' configuration names this host's address`},
		{"{name: a1, roles: [agent]}", `host "a1": field ip: required (or ip_from on an agent-only host)`},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			_, _, err := Parse([]byte(strings.Replace(base, "{name: a1, ip: 10.0.0.4, roles: [agent]}", c.to, 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v\nwant one containing %s", err, c.want)
			}
		})
	}
}
