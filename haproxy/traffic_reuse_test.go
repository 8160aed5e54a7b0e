package haproxy

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// countingBackend is an HTTP server on 127.0.0.1 that counts the connections it accepted.
type countingBackend struct {
	port    int
	accepts atomic.Int64
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newCountingBackend(t *testing.T) *countingBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &countingBackend{port: l.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Id", "counted")
		fmt.Fprintln(w, "counted")
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(countingListener{l, &b.accepts})
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return b
}

// backendAcceptsFor sends n requests through the app's service port, over keep-alive client
// connections (clients of them, requests spread evenly) or, with clients 0, one connection
// per request, and returns how many connections the backend accepted meanwhile, logging the
// rate.
func backendAcceptsFor(t *testing.T, labels map[string]string, clients, n int) int64 {
	t.Helper()
	be := newCountingBackend(t)
	port := haproxytest.FreePort(t)
	all := map[string]string{"HAPROXY_0_MODE": "http"}
	maps.Copy(all, labels)
	lb := startTraffic(t, trafficApp("/counted", port, all, be.port))
	if !strings.Contains(lb.appLines(), "mode http") {
		t.Fatalf("the app is not in mode http:\n%s", lb.appLines())
	}
	before := be.accepts.Load()
	start := time.Now()
	var conns []*trafficConn
	for range clients {
		conns = append(conns, dialTraffic(t, "127.0.0.1:"+strconv.Itoa(port)))
	}
	for i := 0; i < n; i++ {
		if clients == 0 {
			if r := send(t, trafficReq{url: servicePortURL(port) + "/"}); r.code != 200 || r.id() != "counted" {
				t.Fatalf("request %d: %s", i, r)
			}
			continue
		}
		if code, body, err := conns[i%clients].get("/"); err != nil || code != 200 || strings.TrimSpace(body) != "counted" {
			t.Fatalf("request %d on a keep-alive connection: %d %q %v", i, code, body, err)
		}
	}
	took := time.Since(start)
	got := be.accepts.Load() - before
	t.Logf("%d requests over %d keep-alive client connections (0: one per request): %d backend connections in %v (%.0f requests/s, %.0f backend connections/s)",
		n, clients, got, took.Round(time.Millisecond), float64(n)/took.Seconds(), float64(got)/took.Seconds())
	return got
}

// TestTrafficBackendConnectionsReused: with the default templates, HAProxy keeps its
// connections to a server open and reuses them (http-reuse safe): keep-alive clients do not
// cost a new backend connection per request. (A client that opens a connection per request
// still does: "safe" sends a session's first request over a connection of its own, as a
// server may close an idle connection just as a request is sent on it.)
func TestTrafficBackendConnectionsReused(t *testing.T) {
	t.Parallel()
	const n, clients = 200, 4
	if got := backendAcceptsFor(t, nil, clients, n); got > 2*clients {
		t.Fatalf("%d backend connections for %d requests over %d client connections, want them reused (at most %d)", got, n, clients, 2*clients)
	}
	backendAcceptsFor(t, nil, 0, n) // for the log: one connection per request
}

// TestTrafficServerCloseWhereAsked: an app whose HAPROXY_{n}_BACKEND_HTTP_OPTIONS asks for
// `option http-server-close` gets a new backend connection per request, as before.
func TestTrafficServerCloseWhereAsked(t *testing.T) {
	t.Parallel()
	const n = 200
	labels := map[string]string{"HAPROXY_0_BACKEND_HTTP_OPTIONS": "  option forwardfor\n  option http-server-close\n"}
	if got := backendAcceptsFor(t, labels, 4, n); got < n {
		t.Fatalf("%d backend connections for %d requests with http-server-close, want one per request", got, n)
	}
}
