package dnsserver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// startBind runs bind9 on a free loopback port, forwarding the zone "mesos" to lodestar at
// forwardTo (host:port), as DESIGN.md's internal DNS forwarders do. Every other name is forwarded
// to lodestar too and the root hints point at loopback, so bind sends no packet off loopback.
// It returns bind's address once named logs that it is running.
func startBind(t *testing.T, forwardTo string) string {
	t.Helper()
	named, err := exec.LookPath("named")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/named"); statErr != nil {
			t.Fatalf("named is not installed: apt-get install bind9, or run make test")
		}
		named = "/usr/sbin/named"
	}
	fwHost, fwPort, _ := net.SplitHostPort(forwardTo)
	port := freeLoopbackPort(t)
	dir := t.TempDir()
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	query-source address 127.0.0.1;
	dnssec-validation no;
	recursion yes;
	allow-query { any; };
	allow-recursion { any; };
	forward only;
	forwarders { %[3]s port %[4]s; };
	notify no;
};
controls { };
zone "." { type hint; file "%[1]s/root.hint"; };
zone "mesos" { type forward; forward only; forwarders { %[3]s port %[4]s; }; };
`, dir, port, fwHost, fwPort)
	hints := ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.0.0.254\n"
	for name, content := range map[string]string{"named.conf": conf, "root.hint": hints} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(named, "-g", "-4", "-c", filepath.Join(dir, "named.conf"), "-u", "root")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting named: %v", err)
	}
	var (
		mu  sync.Mutex
		log []string
	)
	running := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.OnceFunc(func() { close(running) })
		for sc.Scan() {
			mu.Lock()
			log = append(log, sc.Text())
			mu.Unlock()
			if strings.HasSuffix(sc.Text(), "running") {
				once()
			}
		}
		cmd.Wait()
		close(exited)
	}()
	logTail := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(log[max(0, len(log)-30):], "\n")
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("named's log:\n%s", logTail())
		}
	})
	select {
	case <-running:
	case <-exited:
		t.Fatalf("named exited:\n%s", logTail())
	case <-time.After(30 * time.Second):
		t.Fatalf("named not running after 30s:\n%s", logTail())
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// freeLoopbackPort returns a 127.0.0.1 port that was free for UDP and TCP a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for UDP and TCP")
	return 0
}

func TestBindForwardsTheZoneToLodestar(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	bind := startBind(t, s.Addr())
	t.Run("task name", func(t *testing.T) {
		r := runDig(t, bind, "app-abcde-s1.marathon.mesos", "A")[0]
		if want := zoneText(t, "app-abcde-s1.marathon.mesos. 60 IN A 127.0.0.11"); r.status != "NOERROR" || !slices.Equal(normalizeTTL(r.answer), normalizeTTL(want)) {
			t.Errorf("through bind: %s %q, want %q", r.status, r.answer, want)
		}
	})
	t.Run("app name, three tasks", func(t *testing.T) {
		r := runDig(t, bind, "app.marathon.mesos", "A")[0]
		want := zoneText(t, "app.marathon.mesos. 60 IN A 127.0.0.11", "app.marathon.mesos. 60 IN A 127.0.0.12", "app.marathon.mesos. 60 IN A 127.0.0.13")
		if r.status != "NOERROR" || !slices.Equal(normalizeTTL(r.answer), normalizeTTL(want)) {
			t.Errorf("through bind: %s %q, want %q", r.status, r.answer, want)
		}
	})
	t.Run("20 SRV, complete", func(t *testing.T) {
		answer, _ := srvLines("big", 20)
		r := runDig(t, bind, "_big._tcp.marathon.mesos", "SRV")[0]
		if r.status != "NOERROR" || !slices.Equal(normalizeTTL(r.answer), normalizeTTL(zoneText(t, answer...))) {
			t.Errorf("through bind: %s, %d answers %q, want all 20", r.status, len(r.answer), r.answer)
		}
	})
	t.Run("unknown task: NXDOMAIN", func(t *testing.T) {
		r := runDig(t, bind, "nope.marathon.mesos", "A")[0]
		if r.status != "NXDOMAIN" {
			t.Errorf("through bind: %s, want NXDOMAIN", r.status)
		}
	})
}

// normalizeTTL replaces the TTL of zone-file lines: bind counts cached TTLs down.
func normalizeTTL(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) > 1 {
			f[1] = "TTL"
		}
		out[i] = strings.Join(f, " ")
	}
	slices.Sort(out)
	return out
}
