package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseServe parses serve's flags as the command line args and environment env give them.
func parseServe(t *testing.T, args []string, env map[string]string) (*command, error) {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	c := serveCommand(context.Background(), io.Discard, getenv)
	return c, c.parse(args, getenv)
}

func writeJSON(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func flagString(t *testing.T, c *command, name string) string {
	t.Helper()
	f := c.fs.Lookup(name)
	if f == nil {
		t.Fatalf("no flag --%s", name)
	}
	return f.Value.String()
}

// TestMesosDNSConfigSample: mesos-dns's sample config.json (every key it documents) sets the
// equivalent flags.
func TestMesosDNSConfigSample(t *testing.T) {
	c, err := parseServe(t, []string{"--mesos-dns-config", "testdata/mesos-dns-config.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"mesos-zk": "zk://127.0.0.1:2181/mesos", "mesos-master": "127.0.0.1:5050", "mesos-refresh": "1m0s",
		"dns-ttl": "60", "dns-domain": "mesos", "dns-listen": "0.0.0.0:8053", "dns-upstream": "8.8.8.8:53",
		"dns-upstream-timeout": "5s", "dns-soa-mname": "ns1.mesos", "dns-soa-rname": "root.ns1.mesos",
		"dns-soa-refresh": "60", "dns-soa-retry": "600", "dns-soa-expire": "86400", "dns-negative-ttl": "60",
		"api-listen": "0.0.0.0:8123", "dns-forward": "true", "dns-srv-weight": "1", "ip-sources": "mesos,host",
		"enforce-rfc952": "false",
	} {
		if got := flagString(t, c, name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	_, warnings, err := mesosDNSFlagValues(mustRead(t, "testdata/mesos-dns-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], `"ns"`) || !strings.Contains(warnings[1], "stateTimeoutSeconds") {
		t.Errorf("warnings %q, want one for \"ns\" (mesos-dns ignores it too) and one for stateTimeoutSeconds", warnings)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMesosDNSConfigKeys: each key of mesos-dns's Config, spelt as its documentation or
// another case spells it, sets its flag.
func TestMesosDNSConfigKeys(t *testing.T) {
	for _, tc := range []struct{ json, flag, want string }{
		{`"zk": "zk://10.0.0.1:2181/mesos"`, "mesos-zk", "zk://10.0.0.1:2181/mesos"},
		{`"ZK": "zk://10.0.0.1:2181/mesos"`, "mesos-zk", "zk://10.0.0.1:2181/mesos"},
		{`"masters": ["10.0.0.1:5050", "10.0.0.2:5050"]`, "mesos-master", "10.0.0.1:5050,10.0.0.2:5050"},
		{`"refreshSeconds": 15`, "mesos-refresh", "15s"},
		{`"REFRESHSECONDS": 15`, "mesos-refresh", "15s"},
		{`"port": 5353`, "dns-listen", "0.0.0.0:5353"},
		{`"listener": "127.0.0.2"`, "dns-listen", "127.0.0.2:53"},
		{`"listener": "::1", "port": 5353`, "dns-listen", "[::1]:5353"},
		{`"dnson": false`, "dns-listen", ""},
		{`"DnsOn": false`, "dns-listen", ""},
		{`"httpport": 9123`, "api-listen", "0.0.0.0:9123"},
		{`"HttpPort": 9123, "httpListener": "127.0.0.3"`, "api-listen", "127.0.0.3:9123"},
		{`"HTTPLISTENER": "127.0.0.3"`, "api-listen", "127.0.0.3:8123"},
		{`"httpon": false`, "api-listen", "127.0.0.1:8090"},
		{`"ttl": 30`, "dns-ttl", "30"},
		{`"timeout": 3`, "dns-upstream-timeout", "3s"},
		{`"srvRecordDefaultWeight": 0`, "dns-srv-weight", "0"},
		{`"SOASerial": 2024010100`, "dns-soa-serial", "2024010100"},
		{`"SOARefresh": 120`, "dns-soa-refresh", "120"},
		{`"soaretry": 300`, "dns-soa-retry", "300"},
		{`"SOAExpire": 7200`, "dns-soa-expire", "7200"},
		{`"SOAMinttl": 10`, "dns-negative-ttl", "10"},
		{`"SOAMname": "dns.example.com"`, "dns-soa-mname", "dns.example.com"},
		{`"SOARname": "hostmaster@example.com"`, "dns-soa-rname", "hostmaster@example.com"},
		{`"resolvers": ["10.0.0.53", "10.0.0.54:5353", "fd00::53"]`, "dns-upstream", "10.0.0.53:53,10.0.0.54:5353,[fd00::53]:53"},
		{`"ZoneResolvers": {"corp": ["10.1.0.53"], "a.corp": ["10.2.0.53:54"]}`, "dns-zone-upstream", "a.corp=10.2.0.53:54,corp=10.1.0.53:53"},
		{`"externalon": false`, "dns-forward", "false"},
		{`"IPSources": ["docker", "host"]`, "ip-sources", "docker,host"},
		{`"domain": "dc1.example"`, "dns-domain", "dc1.example"},
		{`"EnforceRFC952": true`, "enforce-rfc952", "true"},
		{`"MesosHTTPSOn": true`, "mesos-https", "true"},
		{`"CACertFile": "/etc/ssl/mesos-ca.pem"`, "mesos-ca-cert", "/etc/ssl/mesos-ca.pem"},
		{`"MesosAuthentication": "basic", "MesosCredentials": {"principal": "ops", "secret": "s3"}`, "mesos-auth", "ops:s3"},
		{`"MesosCredentials": {"principal": "ops", "secret": "s3"}`, "mesos-auth", ""},
		{`"zk": "zk://a:1/m", "Zk": "zk://b:2/m"`, "mesos-zk", "zk://b:2/m"},
		{`"zk": null`, "mesos-zk", ""},
	} {
		c, err := parseServe(t, []string{"--mesos-dns-config", writeJSON(t, "{"+tc.json+"}")}, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.json, err)
			continue
		}
		if got := flagString(t, c, tc.flag); got != tc.want {
			t.Errorf("%s: --%s = %q, want %q", tc.json, tc.flag, got, tc.want)
		}
	}
}

// TestMesosDNSConfigWarnings: a key mesos-dns does not read, and keys without effect under
// lodestar, are warnings naming the key; honest keys are not.
func TestMesosDNSConfigWarnings(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`"mastres": ["10.0.0.1:5050"]`, `unknown key "mastres"`},
		{`"stateTimeoutSeconds": 10`, "stateTimeoutSeconds"},
		{`"ZkDetectionTimeout": 0`, "zkDetectionTimeout"},
		{`"SetTruncateBit": false`, "SetTruncateBit"},
		{`"EnumerationOn": false`, "EnumerationOn"},
		{`"recurseon": false`, "recurseOn"},
		{`"httpon": false`, "httpon"},
		{`"CertFile": "c.pem", "KeyFile": "k.pem"`, "CertFile"},
		{`"IAMConfigFile": "/iam.json"`, "IAMConfigFile"},
		{`"File": "/etc/mesos-dns/config.json"`, "File"},
		{`"MesosCredentials": {"principal": "ops", "secret": "s3"}`, "MesosAuthentication"},
	} {
		_, warnings, err := mesosDNSFlagValues([]byte("{" + tc.json + "}"))
		if err != nil {
			t.Errorf("%s: %v", tc.json, err)
			continue
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], tc.want) {
			t.Errorf("%s: warnings %q, want one naming %s", tc.json, warnings, tc.want)
		}
	}
	_, warnings, err := mesosDNSFlagValues([]byte(`{"recurseon": true, "externalon": true, "SetTruncateBit": true, "zk": "zk://a:1/m"}`))
	if err != nil || len(warnings) != 0 {
		t.Errorf("honest keys: warnings %q, err %v", warnings, err)
	}
}

// TestMesosDNSConfigExplicitFlagWins: the command line, the environment and --config each win
// over config.json.
func TestMesosDNSConfigExplicitFlagWins(t *testing.T) {
	mdns := writeJSON(t, `{"ttl": 30, "zk": "zk://10.0.0.1:2181/mesos", "port": 5353, "SOAMname": "from.json", "masters": ["10.0.0.1:5050"]}`)
	own := filepath.Join(t.TempDir(), "lodestar.yaml")
	if err := os.WriteFile(own, []byte("mesos-master: [10.9.9.9:5050]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseServe(t,
		[]string{"--mesos-dns-config", mdns, "--dns-ttl", "7", "--dns-listen", "127.0.0.1:0", "--config", own},
		map[string]string{"LODESTAR_DNS_SOA_MNAME": "from.env"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"dns-ttl": "7", "dns-listen": "127.0.0.1:0", "dns-soa-mname": "from.env",
		"mesos-master": "10.9.9.9:5050", "mesos-zk": "zk://10.0.0.1:2181/mesos",
	} {
		if got := flagString(t, c, name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}

// TestMesosDNSConfigBadValues: a value mesos-dns would refuse is an error naming its key.
func TestMesosDNSConfigBadValues(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"port": "53"}`, `"port"`},
		{`{"port": 70000}`, `"port"`},
		{`{"port": 0}`, `"port"`},
		{`{"httpport": -1}`, `"httpport"`},
		{`{"ttl": 1.5}`, `"ttl"`},
		{`{"SOARefresh": -5}`, `"SOARefresh"`},
		{`{"SOASerial": 4294967296}`, `"SOASerial"`},
		{`{"srvRecordDefaultWeight": 65536}`, `"srvRecordDefaultWeight"`},
		{`{"masters": "10.0.0.1:5050"}`, `"masters"`},
		{`{"masters": ["10.0.0.1"]}`, `"masters"`},
		{`{"dnson": "yes"}`, `"dnson"`},
		{`{"listener": "not-an-ip"}`, `"listener"`},
		{`{"resolvers": ["dns.example.com"]}`, `"resolvers"`},
		{`{"ZoneResolvers": {"corp": ["10.0.0.1:99999"]}}`, `"ZoneResolvers"`},
		{`{"refreshSeconds": 0}`, `"refreshSeconds"`},
		{`{"MesosAuthentication": "iam"}`, `"MesosAuthentication"`},
		{`{"MesosAuthentication": "kerberos"}`, `"MesosAuthentication"`},
		{`{"MesosAuthentication": "basic"}`, `"MesosCredentials"`},
		{`{"IPSources": ["rkt"]}`, `"IPSources"`},
		{`{"SOAMname": "bad name"}`, `"SOAMname"`},
		{`["not", "an", "object"]`, "not a JSON object"},
		{`{"zk": "a"} trailing`, "not valid JSON"},
	} {
		_, err := parseServe(t, []string{"--mesos-dns-config", writeJSON(t, tc.json)}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.json, err, tc.want)
		}
	}
}

// TestConfigHintsAtMesosDNSConfig: serve --config with mesos-dns's config.json still stops
// at its first key, and says which flag reads that file.
func TestConfigHintsAtMesosDNSConfig(t *testing.T) {
	_, err := parseServe(t, []string{"--config", "testdata/mesos-dns-config.json"}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown key") || !strings.Contains(err.Error(), "--mesos-dns-config") {
		t.Errorf("error %v, want unknown key with a hint at --mesos-dns-config", err)
	}
	own := writeJSON(t, `{"dns-tll": 5}`)
	_, err = parseServe(t, []string{"--config", own}, nil)
	if err == nil || strings.Contains(err.Error(), "--mesos-dns-config") {
		t.Errorf("a typo of a lodestar key: error %v, want no mesos-dns hint", err)
	}
}
