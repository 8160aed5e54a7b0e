package main

import (
	"strings"
	"testing"
)

// The autoscaler refuses to start where it could fight another, or could not write: no lock
// and no --alone, no Marathon, bad defaults, both a lock and --alone.
func TestAutoscaleFlagsRefuseUnsafeStarts(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no lock", []string{"autoscale", "--marathon", "http://127.0.0.1:1"}, "two autoscalers on one cluster would fight: give --zk"},
		{"serve: no lock", []string{"serve", "--autoscale", "--marathon", "http://127.0.0.1:1", "--haproxy=false"}, "--autoscale: two autoscalers on one cluster would fight: give --autoscale-zk"},
		{"no marathon", []string{"autoscale", "--alone"}, "give --marathon"},
		{"lock and alone", []string{"autoscale", "--marathon", "http://127.0.0.1:1", "--alone", "--zk", "zk://127.0.0.1:1/x"}, "not both"},
		{"bad lock URL", []string{"autoscale", "--marathon", "http://127.0.0.1:1", "--zk", "zk://u:secret@127.0.0.1:1"}, "no znode path"},
		{"bad defaults", []string{"autoscale", "--marathon", "http://127.0.0.1:1", "--alone", "--max-instances", "5000"}, "LODESTAR_AUTOSCALE_MAX_INSTANCES 5000"},
		{"edge URL not http", []string{"autoscale", "--marathon", "http://127.0.0.1:1", "--alone", "--lodestar", "lb1:8090"}, `--lodestar "lb1:8090": want http://host:port`},
		{"edge URL with a query", []string{"autoscale", "--marathon", "http://127.0.0.1:1", "--alone", "--lodestar", "http://lb1:8090/?x=1"}, `--lodestar "http://lb1:8090/?x=1": want http://host:port`},
		{"interval zero", []string{"autoscale", "--marathon", "http://127.0.0.1:1", "--alone", "--interval", "0s"}, "--interval 0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, nil, c.args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want a failure saying %q", code, stderr, c.want)
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("stderr shows the ZooKeeper password: %q", stderr)
			}
		})
	}
}

// The lock's ZooKeeper defaults to that of --zk-rules, then --mesos-zk, at /lodestar/autoscale.
func TestAutoscaleLockURLDefaults(t *testing.T) {
	c := newCommand("t", "", "", "")
	src := addSourceFlags(c)
	f := addAutoscaleFlags(c, "autoscale-")
	if err := c.parse([]string{"--mesos-zk", "zk://m1:2181,m2:2181/mesos"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if got := f.lockURL(src); got != "zk://m1:2181,m2:2181/lodestar/autoscale" {
		t.Errorf("lock URL from --mesos-zk = %q", got)
	}
	*src.zkRules = "zk://u:p@r1:2181/lodestar/services"
	if got := f.lockURL(src); got != "zk://u:p@r1:2181/lodestar/autoscale" {
		t.Errorf("lock URL from --zk-rules = %q", got)
	}
	*f.zk = "zk://z:2181/mine"
	if got := f.lockURL(src); got != "zk://z:2181/mine" {
		t.Errorf("lock URL with --autoscale-zk = %q", got)
	}
}
