package main

import (
	"encoding/json"
	"net/http"
	"slices"
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

// TestServeMesosDNSEndpointsEveryAddress: serve wires the DNS front end to the mesos-dns
// endpoints, which give a task on two networks (the fixture's toy-store, network_infos
// [{12.0.1.3}, {12.0.1.2, fd01:b::1:8000:2}]) every address, as mesos-dns does.
func TestServeMesosDNSEndpointsEveryAddress(t *testing.T) {
	base := startServe(t, "--dns-listen", "127.0.0.1:0", "--dns-forward=false",
		"--mesos-state-file", "../../dnsserver/testdata/state_fake.json")
	const name = "toy-store.ipv6-framework.mesos."
	probe(t, base+"/v1/hosts/"+name, func(code int, body []byte) bool {
		var hosts []struct{ Host, IP string }
		if code != http.StatusOK || json.Unmarshal(body, &hosts) != nil {
			return false
		}
		var ips []string
		for _, h := range hosts {
			ips = append(ips, h.IP)
		}
		return slices.Equal(ips, []string{"12.0.1.2", "12.0.1.3", "fd01:b::1:8000:2"})
	})
	probe(t, base+"/v1/axfr", func(code int, body []byte) bool {
		var axfr struct {
			Records struct{ As, AAAAs, SRVs map[string][]string }
		}
		return code == http.StatusOK && json.Unmarshal(body, &axfr) == nil &&
			slices.Equal(axfr.Records.As[name], []string{"12.0.1.2", "12.0.1.3"}) &&
			slices.Equal(axfr.Records.AAAAs["toy-store-go588-3.ipv6-framework.mesos."], []string{"fd01:b::1:8000:2"})
	})
	probe(t, base+"/v1/dns/records?name=_toy-store._tcp.ipv6-framework.mesos", func(code int, body []byte) bool {
		var doc struct{ Records []struct{ Type, Data string } }
		return code == http.StatusOK && json.Unmarshal(body, &doc) == nil && len(doc.Records) == 2 &&
			doc.Records[0].Type == "SRV" && doc.Records[0].Data == "0 1 31354 toy-store-go588-3.ipv6-framework.slave.mesos."
	})
}
