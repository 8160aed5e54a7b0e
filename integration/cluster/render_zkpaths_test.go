package cluster

import (
	"strings"
	"testing"
)

// zk_paths reach every zk:// URL rendered: masters, agents, Marathon and the lodestars.
func TestZKPathsRendered(t *testing.T) {
	top, _, err := Parse([]byte(strings.Replace(base, "name: t\n", "name: t\nzk_paths: {mesos: /prod/mesos, marathon: /prod/marathon}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	const ens = "zk://10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181"
	cf := parseCompose(t, top)
	for svc, want := range map[string]map[string]string{
		"zk1-master":   {"MESOS_ZK": ens + "/prod/mesos"},
		"a1-agent":     {"MESOS_MASTER": ens + "/prod/mesos"},
		"zk1-marathon": {"MARATHON_MASTER": ens + "/prod/mesos", "MARATHON_ZK": ens + "/prod/marathon"},
	} {
		for k, v := range want {
			if got := cf.Services[svc].Environment[k]; got != v {
				t.Errorf("%s: %s=%q, want %q", svc, k, got, v)
			}
		}
	}
	if !strings.Contains(strings.Join(cf.Services["lb1-dns"].Command, " "), "--mesos-zk "+ens+"/prod/mesos") {
		t.Errorf("dns lodestar command %q lacks --mesos-zk …/prod/mesos", cf.Services["lb1-dns"].Command)
	}
	files := render(t, top, FormatSystemd)
	for path, want := range map[string]string{
		"a1/etc/mesos/zk":              ens + "/prod/mesos\n",
		"zk1/etc/mesos/zk":             ens + "/prod/mesos\n",
		"zk1/etc/marathon/conf/zk":     ens + "/prod/marathon\n",
		"zk1/etc/marathon/conf/master": ens + "/prod/mesos\n",
	} {
		if got := string(files[path]); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	for path, content := range files {
		if strings.Contains(string(content), ens+"/mesos") || strings.Contains(string(content), ens+"/marathon") {
			t.Errorf("%s still holds a default path", path)
		}
	}
}

func TestZKPathsMistakes(t *testing.T) {
	cases := []struct{ paths, want string }{
		{"{mesos: mesos}", `field zk_paths.mesos: "mesos" is not a ZooKeeper path`},
		{"{mesos: /mesos/}", `field zk_paths.mesos: "/mesos/" is not a ZooKeeper path`},
		{"{marathon: /a/../mesos}", `field zk_paths.marathon: "/a/../mesos" is not a ZooKeeper path`},
		{"{marathon: \"/m,10.9.9.9:2181/x\"}", `field zk_paths.marathon: "/m,10.9.9.9:2181/x" is not a ZooKeeper path`},
		{"{mesos: /c1, marathon: /c1}", `field zk_paths.marathon: "/c1" and mesos's "/c1" overlap`},
		{"{marathon: /mesos/marathon}", `field zk_paths.marathon: "/mesos/marathon" and mesos's "/mesos" overlap`},
	}
	for _, c := range cases {
		t.Run(c.paths, func(t *testing.T) {
			_, _, err := Parse([]byte(strings.Replace(base, "name: t\n", "name: t\nzk_paths: "+c.paths+"\n", 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v\nwant one containing %s", err, c.want)
			}
		})
	}
	// Siblings sharing a prefix are not nested.
	if _, _, err := Parse([]byte(strings.Replace(base, "name: t\n", "name: t\nzk_paths: {mesos: /m, marathon: /mm}\n", 1))); err != nil {
		t.Fatal(err)
	}
}
