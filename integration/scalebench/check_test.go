package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

func TestCountConfig(t *testing.T) {
	cfg := `global
  maxconn 4096
  # a server line in a comment: server x 1.2.3.4:80 check
listen stats
  bind *:9090
frontend web
  bind *:80
  use_backend app
backend app
  option httpchk GET /health
  server s1 127.0.0.1:20000 check inter 3s fall 3
  server s2 127.0.0.1:1 check inter 3s fall 3 disabled
  server s3 127.0.0.1:1 disabled
  server api unix@/run/api.sock
  server
  server-state-file x
  http-request set-header X-Server server
`
	got := countConfig([]byte(cfg))
	want := configCounts{Frontends: 2, Backends: 2, Servers: 5, CheckedServers: 2, DisabledServers: 2, LiveChecked: 1}
	if got != want {
		t.Fatalf("countConfig = %+v, want %+v", got, want)
	}
}

// A line longer than bufio.Scanner's default 64 KiB (a long ACL list) must not stop the count.
func TestCountConfigLongLine(t *testing.T) {
	cfg := "frontend f\n  acl a hdr(host) " + strings.Repeat("x", 200_000) + "\nbackend b\n  server s 127.0.0.1:1 check\n"
	if got := countConfig([]byte(cfg)); got.Backends != 1 || got.Servers != 1 {
		t.Fatalf("countConfig = %+v, want the backend and server after the long line", got)
	}
}

func TestMedian(t *testing.T) {
	if got := median([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("median(3,1,2) = %v", got)
	}
	if got := median([]int64{4, 1, 3, 2}); got != 2 {
		t.Errorf("median(4,1,3,2) = %v, want the lower middle", got)
	}
	if got := median([]int64(nil)); got != 0 {
		t.Errorf("median() = %v", got)
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("1000, 10000")
	if err != nil || len(got) != 2 || got[0] != 1000 || got[1] != 10000 {
		t.Fatalf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "-5", "10,x", "1e3"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
}

func TestOutsideContainer(t *testing.T) {
	dir, mlbDir := t.TempDir(), "/src/marathon-lb"
	cfg := `global
  stats socket /var/run/haproxy/socket expose-fd listeners
  server-state-file global
  server-state-base /var/state/haproxy/
  lua-load /marathon-lb/getpids.lua
defaults
  load-server-state-from-file global
backend b
  server 127_0_0_1_20000 127.0.0.1:20000 id 1947 check inter 3s fall 3
`
	got := string(outsideContainer([]byte(cfg), mlbDir, dir))
	for _, want := range []string{
		"  stats socket " + filepath.Join(dir, "mlb-stats.sock") + " expose-fd listeners\n",
		"  server-state-base " + filepath.Join(dir, "mlb-state") + "/\n",
		"  lua-load /src/marathon-lb/getpids.lua\n",
		"  server-state-file global\n",
		"  server 127_0_0_1_20000 127.0.0.1:20000 id 1947 check inter 3s fall 3\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "/var/") || strings.Contains(got, " /marathon-lb/") {
		t.Errorf("a container path is left:\n%s", got)
	}
	if len(strings.Split(got, "\n")) != len(strings.Split(cfg, "\n")) {
		t.Errorf("lines added or removed:\n%s", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("outsideContainer wrote files: %v", entries)
	}
}

// Each figure's median is taken on its own: the run with the median wall time need not be
// the one with the median RSS.
func TestMedianResult(t *testing.T) {
	got := medianResult([]checkResult{
		{Wall: 5, CPU: 1, MaxRSS: 200},
		{Wall: 1, CPU: 3, MaxRSS: 300},
		{Wall: 3, CPU: 2, MaxRSS: 100},
	})
	if want := (checkResult{Wall: 3, CPU: 2, MaxRSS: 200}); got != want {
		t.Fatalf("medianResult = %+v, want %+v", got, want)
	}
}

// runCheck measures a configuration HAProxy accepts and reports HAProxy's alert for one it
// refuses.
func TestRunCheck(t *testing.T) {
	bin := haproxytest.Bin(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.cfg")
	bad := filepath.Join(dir, "bad.cfg")
	// -c binds nothing, but HAProxy wants a listener and a real port in the file.
	cfg := "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\nfrontend f\n" +
		"  bind 127.0.0.1:" + strconv.Itoa(haproxytest.FreePort(t)) + "\n  default_backend b\nbackend b\n  server s1 127.0.0.1:1 check\n"
	if err := os.WriteFile(good, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(cfg+"  server s2 127.0.0.1:1 chekc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := runCheck(context.Background(), bin, good)
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxRSS <= 0 || r.Wall <= 0 {
		t.Errorf("runCheck = %+v, want a peak RSS and a wall time", r)
	}
	if _, err := runCheck(context.Background(), bin, bad); err == nil || !strings.Contains(err.Error(), "chekc") {
		t.Fatalf("runCheck of a bad configuration: %v, want HAProxy's alert naming chekc", err)
	}
}
