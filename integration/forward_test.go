package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bindZone is example.test as bind9 serves it: SOA minimum 60 (the negative TTL), www with
// one address, big with 40 TXT records (over 512 bytes).
func bindZone() string {
	var b strings.Builder
	b.WriteString("$TTL 300\n@ IN SOA ns.example.test. root.example.test. 1 3600 600 86400 60\n@ IN NS ns\nns IN A 127.0.0.1\nwww IN A 127.0.0.55\n")
	for i := range 40 {
		fmt.Fprintf(&b, "big IN TXT \"%s%02d\"\n", strings.Repeat("x", 20), i)
	}
	return b.String()
}

// startBind9 runs bind9 (named -g) authoritative for example.test on a free loopback port
// until the test ends, and returns its address.
func startBind9(t *testing.T) string {
	t.Helper()
	named, err := exec.LookPath("named")
	if err != nil {
		if named = "/usr/sbin/named"; !fileExists(named) {
			t.Fatal("named not found: apt-get install bind9, or run make test")
		}
	}
	dir := t.TempDir()
	port := FreePort(t)
	zone := filepath.Join(dir, "example.test.zone")
	conf := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(zone, []byte(bindZone()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`options {
	directory %q;
	pid-file %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
};
zone "example.test" { type primary; file %q; };
`, dir, filepath.Join(dir, "named.pid"), port, zone)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	cmd := exec.Command(named, "-g", "-c", conf, "-n", "1")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting named: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	Eventually(t, 20*time.Second, "bind9 to answer", func() error {
		select {
		case <-exited:
			t.Fatalf("named exited:\n%s", log.String())
		default:
		}
		if out := Dig(t, addr, "www.example.test", "A"); DigStatus(out) != "NOERROR" {
			return fmt.Errorf("dig www.example.test: %s", DigStatus(out))
		}
		return nil
	})
	return addr
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// lockedBuffer is a bytes.Buffer a child process and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// digTTL is the TTL of the first record of a section in a dig output, or -1.
func digTTL(out, section string) int {
	in := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, ";; ") && strings.HasSuffix(line, " SECTION:") {
			in = line == ";; "+section+" SECTION:"
			continue
		}
		if f := strings.Fields(line); in && len(f) >= 5 && !strings.HasPrefix(line, ";") {
			ttl, _ := strconv.Atoi(f[1])
			return ttl
		}
	}
	return -1
}

// TestForwardingThroughBind9: lodestar forwards to a real bind9 on loopback. Answers come back
// with RA and without AA; a repeated name comes from the cache (bind9 is not asked: the
// cache-hit counter moves) in the asker's case; NXDOMAIN is cached with bind9's SOA; a TCP
// client gets an answer bind9 truncated over UDP in full.
func TestForwardingThroughBind9(t *testing.T) {
	t.Parallel()
	bind := startBind9(t)
	ls := startDNS(t, "--mesos-master", fmt.Sprintf("127.0.0.1:%d", FreePort(t)), "--mesos-refresh", "1h",
		"--dns-upstream", bind, "--dns-forward-allow", "127.0.0.1/32")

	out := Dig(t, ls.DNS, "www.example.test", "A")
	if got := DigRecords(out, "ANSWER", "A"); DigStatus(out) != "NOERROR" || !slices.Equal(got, []string{"127.0.0.55"}) {
		t.Fatalf("dig www.example.test through lodestar: want NOERROR 127.0.0.55\n%s", out)
	}
	if !strings.Contains(out, " ra") || strings.Contains(out, " aa") {
		t.Errorf("flags: want RA and no AA on a forwarded answer\n%s", out)
	}
	hits, _ := sample(scrape(t, ls), "lodestar_dnsserver_cache_hits_total")
	out = Dig(t, ls.DNS, "WWW.example.TEST", "A")
	if got := DigRecords(out, "ANSWER", "A"); !slices.Equal(got, []string{"127.0.0.55"}) || !strings.Contains(out, "WWW.example.TEST.") {
		t.Errorf("the same name again, in other case: want 127.0.0.55 for WWW.example.TEST.\n%s", out)
	}
	if ttl := digTTL(out, "ANSWER"); ttl < 0 || ttl > 300 {
		t.Errorf("cached TTL %d, want at most bind9's 300", ttl)
	}
	if now, _ := sample(scrape(t, ls), "lodestar_dnsserver_cache_hits_total"); now != hits+1 {
		t.Errorf("cache hits %v → %v, want one more", hits, now)
	}

	for i := range 2 {
		out = Dig(t, ls.DNS, "nope.example.test", "A")
		if DigStatus(out) != "NXDOMAIN" || len(DigRecords(out, "AUTHORITY", "SOA")) != 1 {
			t.Fatalf("dig nope.example.test: want NXDOMAIN with bind9's SOA\n%s", out)
		}
		if ttl := digTTL(out, "AUTHORITY"); ttl < 0 || ttl > 60 {
			t.Errorf("query %d: SOA TTL %d in the denial, want at most the SOA minimum 60", i, ttl)
		}
	}
	if now, _ := sample(scrape(t, ls), "lodestar_dnsserver_cache_hits_total"); now != hits+2 {
		t.Errorf("cache hits %v after a repeated NXDOMAIN, want %v", now, hits+2)
	}

	out = Dig(t, ls.DNS, "big.example.test", "TXT", "+tcp")
	if got := DigRecords(out, "ANSWER", "TXT"); DigStatus(out) != "NOERROR" || len(got) != 40 || strings.Contains(out, " tc") {
		t.Errorf("dig +tcp big.example.test TXT: want all 40 records, not truncated (got %d)\n%s", len(got), out)
	}
	out = Dig(t, ls.DNS, "big.example.test", "TXT", "+noedns", "+ignore")
	if !strings.Contains(out, " tc") {
		t.Errorf("dig +noedns big.example.test TXT over UDP: want TC\n%s", out)
	}
}
