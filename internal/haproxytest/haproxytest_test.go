package haproxytest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBackendAnswersWithItsID(t *testing.T) {
	b := BackendNamed(t, "blue")
	other := Backend(t)
	if other.ID != fmt.Sprintf("backend-%d", other.Port) || other.Addr != fmt.Sprintf("127.0.0.1:%d", other.Port) {
		t.Fatalf("default id/addr %q %q", other.ID, other.Addr)
	}
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get("http://" + b.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	code, body, hdr := get("/x")
	if code != 200 || body != "blue\n" || hdr.Get("X-Backend-Id") != "blue" || hdr.Get("X-Backend-Port") != fmt.Sprint(b.Port) {
		t.Fatalf("GET /x: %d %q %v", code, body, hdr)
	}
	if code, _, _ := get(HealthPath); code != 200 {
		t.Fatalf("health %d", code)
	}
	b.SetHealthy(false)
	if code, _, _ := get(HealthPath); code != http.StatusServiceUnavailable {
		t.Fatalf("health after SetHealthy(false): %d", code)
	}
	if code, _, _ := get("/y"); code != 200 {
		t.Fatalf("an unhealthy backend still answers traffic, got %d", code)
	}
	if b.Requests() != 2 || other.Requests() != 0 {
		t.Fatalf("requests %d and %d, want 2 (health checks not counted) and 0", b.Requests(), other.Requests())
	}
}

func TestFreePortAndSocketDir(t *testing.T) {
	p := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", p, err)
	}
	l.Close()
	dir := SocketDir(t)
	sock := filepath.Join(dir, "master.sock")
	if len(sock) > 80 {
		t.Fatalf("socket path %s is long", sock)
	}
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ul.Close()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatal(err)
	}
}

func TestBinFindsHAProxy(t *testing.T) {
	bin := Bin(t)
	if !strings.HasSuffix(bin, "haproxy") {
		t.Fatalf("Bin = %q", bin)
	}
}

func TestWaitForPolls(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	WaitFor(t, 5*time.Second, func() bool { return n.Load() == 3 }, "three increments")
}

// TestFreePortNeverRepeats: ports handed out are all different, even when the kernel offers one
// again.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
