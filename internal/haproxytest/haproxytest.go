// Package haproxytest holds helpers for tests that run a real HAProxy: finding the binary,
// free loopback ports, short socket directories, Go HTTP backends that say who answered, and a
// polling wait.
package haproxytest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bin returns the path of the haproxy binary, failing the test with how to install it when
// there is none. LODESTAR_HAPROXY overrides the lookup.
func Bin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LODESTAR_HAPROXY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("LODESTAR_HAPROXY=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("haproxy not found: apt-get install haproxy, or run make test")
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and that no earlier call
// in this process returned: the kernel may hand the same ephemeral port to two listeners opened
// and closed one after the other, and two parallel tests must not both bind it.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, taken := handedOut.LoadOrStore(port, true); !taken {
			return port
		}
	}
	t.Fatalf("free port: 100 ports in a row were ones already handed out")
	return 0
}

// handedOut holds every port FreePort returned or ClaimPort claimed.
var handedOut sync.Map

// ClaimPort records port as handed out to a test, so FreePort never returns it; false when it
// already was.
func ClaimPort(port int) bool {
	_, taken := handedOut.LoadOrStore(port, true)
	return !taken
}

// SocketDir returns a new short directory under the system temp dir, removed after the test.
// t.TempDir() paths grow with the test name and can exceed the 107 bytes a unix socket path may
// have.
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hx")
	if err != nil {
		t.Fatalf("socket dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// HealthPath is the path on which an HTTPBackend answers health checks.
const HealthPath = "/health"

// HTTPBackend is a real HTTP server on 127.0.0.1 that answers every request with its id, in
// the body ("<id>\n") and in the X-Backend-Id header, and counts the requests it served.
type HTTPBackend struct {
	// ID identifies the backend in answers; "backend-<port>" unless set by BackendNamed.
	ID   string
	Port int
	// Addr is "127.0.0.1:<port>".
	Addr string

	srv       *http.Server
	requests  atomic.Int64
	unhealthy atomic.Bool
}

// Backend starts an HTTPBackend on a free port; it stops when the test ends.
func Backend(t testing.TB) *HTTPBackend {
	t.Helper()
	return BackendNamed(t, "")
}

// BackendNamed starts an HTTPBackend whose answers carry id.
func BackendNamed(t testing.TB, id string) *HTTPBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("backend listen: %v", err)
	}
	b := &HTTPBackend{Port: l.Addr().(*net.TCPAddr).Port, Addr: l.Addr().String(), ID: id}
	if b.ID == "" {
		b.ID = "backend-" + strconv.Itoa(b.Port)
	}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.srv.Serve(l)
	}()
	t.Cleanup(func() {
		b.srv.Close()
		wg.Wait()
	})
	return b
}

// ServeHTTP answers health checks on HealthPath (200, or 503 after SetHealthy(false)) and every
// other request with the backend's id.
func (b *HTTPBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend-Id", b.ID)
	w.Header().Set("X-Backend-Port", strconv.Itoa(b.Port))
	if r.URL.Path == HealthPath {
		if b.unhealthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
		return
	}
	b.requests.Add(1)
	fmt.Fprintln(w, b.ID)
}

// Requests returns how many non-health-check requests the backend answered.
func (b *HTTPBackend) Requests() int64 { return b.requests.Load() }

// SetHealthy makes health checks on HealthPath pass (true) or fail with 503 (false).
func (b *HTTPBackend) SetHealthy(ok bool) { b.unhealthy.Store(!ok) }

// WaitFor polls cond every 10ms until it returns true, failing the test with msg when timeout
// passes first.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, msg)
		}
		<-tick.C
	}
}
