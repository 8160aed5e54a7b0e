package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/dnsserver"
)

// TestMesosDNSConfigRedacted: /v1/config never shows a ZooKeeper or Mesos password, even in
// URLs net/url cannot parse (a % in the password, a host list, a / or @ in the password).
func TestMesosDNSConfigRedacted(t *testing.T) {
	for _, tc := range []struct{ zk, want string }{
		{"zk://bob:s3cr%t@127.0.0.1:1/mesos", "zk://bob:xxxxx@127.0.0.1:1/mesos"},
		{"zk://bob:s3cret@[::1]:2181,[::2]:2181/mesos", "zk://bob:xxxxx@[::1]:2181,[::2]:2181/mesos"},
		{"zk://bob:s3cret@h1:2181,h2:2181/mesos", "zk://bob:xxxxx@h1:2181,h2:2181/mesos"},
		{"zk://bob:s3/cr@t@h1:2181/mesos", "zk://bob:xxxxx@h1:2181/mesos"},
		{"zk://h1:2181/mesos", "zk://h1:2181/mesos"},
	} {
		c := newCommand("serve", "", "", "")
		src := addSourceFlags(c)
		if err := c.fs.Parse([]string{"--mesos-zk", tc.zk, "--mesos-auth", "ops:s3cret-too"}); err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(mesosDNSConfig(dnsserver.Config{}, dnsserver.RecordConfig{}, src))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Zk               string
			MesosCredentials map[string]string
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "s3") || got.Zk != tc.want {
			t.Errorf("%s: /v1/config %s, want Zk %s and no password", tc.zk, data, tc.want)
		}
		if got.MesosCredentials["Principal"] != "ops" || got.MesosCredentials["Secret"] != redacted {
			t.Errorf("%s: MesosCredentials %v", tc.zk, got.MesosCredentials)
		}
	}
}
