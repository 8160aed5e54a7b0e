package main

import (
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/integration/fakemesos"
)

// TestLeaderProxyFlagErrors: every mistake in --leader-proxy is refused with a message that
// says what to write instead.
func TestLeaderProxyFlagErrors(t *testing.T) {
	apps := "../../examples/apps.json"
	cases := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"--leader-proxy", "zookeeper=127.0.0.1:12181"}, nil, []string{`unknown leader "zookeeper": want mesos, marathon or zk`}},
		{[]string{"--leader-proxy", "zk=zk1:12181"}, nil, []string{"leader proxy zk", `"zk1" is not an IP address`}},
		{[]string{"--apps-file", apps, "--leader-proxy", "zk=127.0.0.1:12181"}, nil,
			[]string{"--leader-proxy zk=127.0.0.1:12181 needs the ZooKeeper ensemble: give --mesos-zk zk://h1:2181,h2:2181/mesos"}},
		// Hostile: a member name that is no host name never reaches a server line.
		{[]string{"--apps-file", apps, "--mesos-zk", "zk://127.0.0.1:2181,zk_2:2181/mesos", "--leader-proxy", "zk=127.0.0.1:12181"}, nil,
			[]string{"--leader-proxy zk=127.0.0.1:12181: its members come from --mesos-zk", `member "zk_2:2181"`, "RFC 1123 host name"}},
		{[]string{"--leader-proxy", "127.0.0.1:15050"}, nil, []string{"want name=host:port, e.g. mesos=127.0.0.1:15050"}},
		{[]string{"--leader-proxy", "mesos=127.0.0.1"}, nil, []string{"leader proxy mesos", "missing port"}},
		{[]string{"--leader-proxy", "mesos=127.0.0.1:99999"}, nil, []string{`port "99999" is not a number from 1 to 65535`}},
		{[]string{"--leader-proxy", "mesos=master1:15050"}, nil, []string{`"master1" is not an IP address`}},
		{[]string{"--leader-proxy", "mesos=127.0.0.1:15050", "--leader-proxy", "mesos=127.0.0.1:15051"}, nil,
			[]string{"leader proxy mesos given twice (127.0.0.1:15050 and 127.0.0.1:15051)"}},
		{nil, map[string]string{"LODESTAR_LEADER_PROXY": "mesos=127.0.0.1:15050,mesos=127.0.0.1:15051"},
			[]string{"LODESTAR_LEADER_PROXY", "given twice"}},
		{[]string{"--apps-file", apps, "--leader-proxy", "mesos=127.0.0.1:15050"}, nil,
			[]string{"--leader-proxy mesos=127.0.0.1:15050 needs the Mesos masters to follow: give --mesos-zk or --mesos-master"}},
		{[]string{"--apps-file", apps, "--leader-proxy", "marathon=127.0.0.1:18080"}, nil,
			[]string{"--leader-proxy marathon=127.0.0.1:18080 needs Marathon to follow: give --marathon"}},
		{[]string{"--apps-file", apps, "--mesos-master", "127.0.0.1:5050", "--stats-bind", "127.0.0.1:9090", "--leader-proxy", "mesos=127.0.0.1:9090"}, nil,
			[]string{"--leader-proxy mesos=127.0.0.1:9090: its port is --stats-bind's (127.0.0.1:9090)"}},
	}
	for _, tc := range cases {
		args := append([]string{"render", "--run-dir", t.TempDir()}, tc.args...)
		code, _, errOut := runCmd(t, tc.env, args...)
		if code == 0 {
			t.Errorf("%v: exit 0, want an error", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v %v: stderr %q lacks %q", tc.args, tc.env, errOut, w)
			}
		}
	}
}

// TestRenderLeaderProxy: render with --leader-proxy mesos and a Mesos master prints the proxy
// with the leader it found as its one server.
func TestRenderLeaderProxy(t *testing.T) {
	m := fakemesos.New()
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	code, out, errOut := runCmd(t, nil, "render", "--apps-file", "../../examples/apps.json", "--group", "*",
		"--run-dir", t.TempDir(), "--mesos-master", m.HostPort(), "--leader-proxy", "mesos=127.0.0.1:15050")
	if code != 0 {
		t.Fatalf("render exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"\nfrontend leader_mesos\n  bind 127.0.0.1:15050\n  mode http\n  use_backend leader_mesos\n",
		"\nbackend leader_mesos\n  id 902\n  mode http\n  option http-server-close\n  http-reuse never\n  server s1 " + m.HostPort() + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q", want)
		}
	}
}
