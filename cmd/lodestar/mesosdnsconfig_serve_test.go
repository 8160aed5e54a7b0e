package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// runServe runs serve with exactly args (HAProxy off, its own run directory) until the test
// ends, and returns its API's base URL and its log.
func runServe(t *testing.T, args ...string) (string, *logtest.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logtest.Buffer{}
	done := make(chan int, 1)
	args = append([]string{"serve", "--haproxy=false", "--run-dir", t.TempDir()}, args...)
	go func() { done <- run(ctx, args, io.Discard, logs, func(string) string { return "" }) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d; log:\n%s", code, logs)
		}
	})
	waitCtx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	line, err := logs.Wait(waitCtx, `msg="lodestar serving"`)
	if err != nil {
		t.Fatalf("serve did not start (%v); log:\n%s", err, logs)
	}
	m := regexp.MustCompile(` api=(http://\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no api address in %q", line)
	}
	return m[1], logs
}

// soaOf asks addr for the zone's SOA until it has one.
func soaOf(t *testing.T, addr, zone string) *dns.SOA {
	t.Helper()
	c := &dns.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		m := new(dns.Msg)
		m.SetQuestion(zone, dns.TypeSOA)
		r, _, err := c.Exchange(m, addr)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			if soa, ok := r.Answer[0].(*dns.SOA); ok {
				return soa
			}
		}
		last = fmt.Sprint(r, err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no SOA for %s from %s: %s", zone, addr, last)
	return nil
}

// axfrRecords is /v1/axfr's Records once it holds the Mesos master's and the fixture's
// framework without a pid (named from its host name, which is resolved off the build).
func axfrRecords(t *testing.T, base string) map[string]map[string][]string {
	t.Helper()
	var records map[string]map[string][]string
	probe(t, base+"/v1/axfr", func(code int, body []byte) bool {
		var doc struct {
			Records map[string]map[string][]string
		}
		if code != http.StatusOK || json.Unmarshal(body, &doc) != nil {
			return false
		}
		records = doc.Records
		return len(records["As"]["leader.dc1.example."]) > 0 && len(records["As"]["nopid.dc1.example."]) > 0
	})
	return records
}

// TestServeMesosDNSConfig: serve --mesos-dns-config with a config.json of every documented key
// serves DNS and the HTTP API where the file says, polls the masters it names, answers the SOA
// with its fields, and serves the same records as serve with the equivalent flags.
func TestServeMesosDNSConfig(t *testing.T) {
	mesos := fakemesos.New()
	if err := mesos.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mesos.Close)
	dnsPort, httpPort := haproxytest.FreePort(t), haproxytest.FreePort(t)
	cfg := writeJSON(t, fmt.Sprintf(`{
  "masters": [%q],
  "stateTimeoutSeconds": 300,
  "refreshSeconds": 1,
  "ttl": 45,
  "domain": "dc1.example",
  "port": %d,
  "resolvers": ["127.0.0.1"],
  "timeout": 2,
  "listener": "127.0.0.1",
  "httpListener": "127.0.0.1",
  "SOAMname": "dns1.dc1.example",
  "SOARname": "hostmaster@example.org",
  "SOARefresh": 120,
  "SOARetry":   240,
  "SOAExpire":  3600,
  "SOAMinttl": 15,
  "SOASerial": 4000000000,
  "dnson": true,
  "httpon": true,
  "httpport": %d,
  "externalon": false,
  "recurseon": false,
  "srvRecordDefaultWeight": 1,
  "IPSources": ["netinfo", "mesos", "host"],
  "EnforceRFC952": false,
  "EnumerationOn": true
}`, mesos.HostPort(), dnsPort, httpPort))
	base, logs := runServe(t, "--mesos-dns-config", cfg)
	if want := "http://127.0.0.1:" + strconv.Itoa(httpPort); base != want {
		t.Errorf("API at %s, want %s (httpListener:httpport)", base, want)
	}
	if !strings.Contains(logs.String(), "stateTimeoutSeconds") {
		t.Errorf("no warning about stateTimeoutSeconds; log:\n%s", logs)
	}
	dnsAddr := "127.0.0.1:" + strconv.Itoa(dnsPort)
	soa := soaOf(t, dnsAddr, "dc1.example.")
	want := dns.SOA{Ns: "dns1.dc1.example.", Mbox: "hostmaster.example.org.", Refresh: 120, Retry: 240, Expire: 3600, Minttl: 15}
	if soa.Ns != want.Ns || soa.Mbox != want.Mbox || soa.Refresh != want.Refresh || soa.Retry != want.Retry ||
		soa.Expire != want.Expire || soa.Minttl != want.Minttl || soa.Serial < 4000000000 || soa.Hdr.Ttl != 45 {
		t.Errorf("SOA %v, want %v, serial from 4000000000, TTL 45", soa, &want)
	}
	fromFile := axfrRecords(t, base)

	flagsBase, _ := runServe(t, "--api-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0",
		"--mesos-master", mesos.HostPort(), "--mesos-refresh", "1s", "--dns-ttl", "45", "--dns-domain", "dc1.example",
		"--dns-upstream", "127.0.0.1:53", "--dns-upstream-timeout", "2s", "--dns-forward=false", "--dns-negative-ttl", "15")
	fromFlags := axfrRecords(t, flagsBase)
	for kind, names := range fromFile {
		for name, rrs := range names {
			if !reflect.DeepEqual(rrs, fromFlags[kind][name]) {
				t.Errorf("%s %s: %v from config.json, %v from the equivalent flags", kind, name, rrs, fromFlags[kind][name])
			}
		}
		if len(names) != len(fromFlags[kind]) {
			t.Errorf("%s: %d names from config.json, %d from the equivalent flags", kind, len(names), len(fromFlags[kind]))
		}
	}
}
