package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/integration/fakemesos"
)

// mesosDNSConfigSerial is the SOASerial of the test's config.json: far above the clock's Unix
// time, so every serial served is this one or advanced from it by one per record change.
const mesosDNSConfigSerial = 4000000000

// mesosDNSReady waits until ls's /v1/axfr holds the fake master's leader record and returns it.
func mesosDNSReady(t *testing.T, ls *Lodestar) axfrDoc {
	t.Helper()
	var doc axfrDoc
	Eventually(t, StartTimeout, "the Mesos records in /v1/axfr", func() error {
		doc = getAXFR(t, ls)
		if len(doc.Records.As["leader.dc1.example."]) == 0 {
			return fmt.Errorf("no leader.dc1.example. in %v", doc.Records.As)
		}
		return nil
	})
	return doc
}

// digAnswer returns the sorted data of the ANSWER records of type rtype dig gets for name.
func digAnswer(t *testing.T, server, name, rtype string) []string {
	t.Helper()
	out := Dig(t, server, name, rtype)
	if status := DigStatus(out); status != "NOERROR" {
		t.Errorf("dig @%s %s %s: status %q, want NOERROR:\n%s", server, name, rtype, status, out)
	}
	recs := DigRecords(out, "ANSWER", rtype)
	slices.Sort(recs)
	return recs
}

// TestMesosDNSConfigSOAByDig: serve --mesos-dns-config with a config.json of every documented
// key answers dig's SOA query with the configured mname, rname, refresh, retry, expire, minimum
// and serial, and dig gets the same A and SRV answers from it as from serve with the equivalent
// flags.
func TestMesosDNSConfigSOAByDig(t *testing.T) {
	t.Parallel()
	mesos := fakemesos.New()
	if err := mesos.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mesos.Close)
	dnsPort := FreePort(t)
	cfg := filepath.Join(t.TempDir(), "config.json")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`{
  "zk": "",
  "masters": [%q],
  "stateTimeoutSeconds": 300,
  "zkDetectionTimeout": 30,
  "refreshSeconds": 60,
  "ttl": 45,
  "domain": "dc1.example",
  "port": %d,
  "resolvers": ["127.0.0.1"],
  "timeout": 2,
  "listener": "127.0.0.1",
  "SOAMname": "dns1.dc1.example",
  "SOARname": "hostmaster@example.org",
  "SOARefresh": 120,
  "SOARetry": 240,
  "SOAExpire": 3600,
  "SOAMinttl": 15,
  "SOASerial": %d,
  "dnson": true,
  "httpon": true,
  "httpport": %d,
  "externalon": false,
  "recurseon": false,
  "IPSources": ["netinfo", "mesos", "host"],
  "EnforceRFC952": false
}`, mesos.HostPort(), dnsPort, mesosDNSConfigSerial, FreePort(t))), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := Start(t, "--mesos-dns-config", cfg, "--haproxy=false")
	if want := "127.0.0.1:" + strconv.Itoa(dnsPort); fromFile.DNS != want {
		t.Fatalf("DNS served at %q, want %s (listener:port)", fromFile.DNS, want)
	}
	fromFlags := startDNS(t, "--mesos-master", mesos.HostPort(), "--mesos-refresh", "60s", "--dns-ttl", "45",
		"--dns-domain", "dc1.example", "--dns-upstream", "127.0.0.1:53", "--dns-upstream-timeout", "2s",
		"--dns-forward=false", "--dns-negative-ttl", "15",
		"--dns-soa-mname", "dns1.dc1.example", "--dns-soa-rname", "hostmaster@example.org",
		"--dns-soa-refresh", "120", "--dns-soa-retry", "240", "--dns-soa-expire", "3600",
		"--dns-soa-serial", strconv.Itoa(mesosDNSConfigSerial))
	doc := mesosDNSReady(t, fromFile)
	mesosDNSReady(t, fromFlags)

	// dig's SOA data: mname rname serial refresh retry expire minimum.
	soa := digAnswer(t, fromFile.DNS, "dc1.example.", "SOA")
	if len(soa) != 1 {
		t.Fatalf("dig SOA dc1.example.: %v, want one SOA", soa)
	}
	f := strings.Fields(soa[0])
	if len(f) != 7 {
		t.Fatalf("dig SOA data %q: want 7 fields", soa[0])
	}
	if got, want := slices.Concat(f[:2], f[3:]), []string{"dns1.dc1.example.", "hostmaster.example.org.", "120", "240", "3600", "15"}; !slices.Equal(got, want) {
		t.Errorf("dig SOA mname rname refresh retry expire minimum = %v, want %v", got, want)
	}
	serial, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		t.Fatalf("dig SOA serial %q: %v", f[2], err)
	}
	// The first index has the configured serial; each record change since adds one, and the
	// records of a static Mesos state change a few times at most while they are first read.
	if serial < mesosDNSConfigSerial || serial > mesosDNSConfigSerial+10 || serial < uint64(doc.Serial) {
		t.Errorf("dig SOA serial %d, want %d or a few record changes past it (and not below /v1/axfr's %d)", serial, mesosDNSConfigSerial, doc.Serial)
	}
	if flagsSOA := digAnswer(t, fromFlags.DNS, "dc1.example.", "SOA"); len(flagsSOA) != 1 ||
		!slices.Equal(slices.Delete(strings.Fields(flagsSOA[0]), 2, 3), slices.Delete(slices.Clone(f), 2, 3)) {
		t.Errorf("dig SOA with the equivalent flags %v, from config.json %v (serial aside)", flagsSOA, soa)
	}

	// Every name of config.json's records: the same answers from the equivalent flags.
	compared := 0
	for rtype, names := range map[string]map[string][]string{"A": doc.Records.As, "SRV": doc.Records.SRVs} {
		for name := range names {
			a, b := digAnswer(t, fromFile.DNS, name, rtype), digAnswer(t, fromFlags.DNS, name, rtype)
			if len(a) == 0 || !slices.Equal(a, b) {
				t.Errorf("dig %s %s: %v from config.json, %v from the equivalent flags", name, rtype, a, b)
			}
			compared++
		}
	}
	t.Logf("dig SOA serial %d; %d names answered alike", serial, compared)
	if compared < 2 {
		t.Errorf("compared %d names, want the fake master's records", compared)
	}

	// A name outside the zone, forwarding off: refused alike, no answer made up.
	for _, ls := range []*Lodestar{fromFile, fromFlags} {
		out := Dig(t, ls.DNS, "example.com.", "A")
		if status := DigStatus(out); status == "NOERROR" || len(DigRecords(out, "ANSWER", "A")) != 0 {
			t.Errorf("dig example.com. A with forwarding off: status %s:\n%s", status, out)
		}
	}
}
