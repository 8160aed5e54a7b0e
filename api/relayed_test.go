package api

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
)

// relayedClient serves s's relayed listener on a unix socket (as HAProxy's stats frontend
// reaches it) and returns a client for it; the API itself is on loopback, where it trusts.
func relayedClient(t *testing.T, s *Server) *http.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "mlb-api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeRelayed(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRelayed: %v", err)
		}
	})
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

func relayedGet(t *testing.T, c *http.Client, path string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://stats"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRelayedNeverTrusted: on the relayed listener (a unix socket, which the API would trust
// as local), marathon-lb's reads answer, /_mlb_signal/* is refused without --api-auth whatever
// the request claims about its origin, and the rest of the API is not served.
func TestRelayedNeverTrusted(t *testing.T) {
	h := &fakeHAProxy{config: []byte("global\n")}
	s := newServer(t, Config{Listen: "127.0.0.1:0"}, newRegistry(t))
	s.MountHAProxy(h)
	c := relayedClient(t, s)
	for _, p := range []string{"/_haproxy_getconfig", "/_haproxy_getpids", "/_haproxy_getvhostmap", "/_haproxy_getappmap"} {
		if code := relayedGet(t, c, p, nil); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, code)
		}
	}
	forged := http.Header{"X-Forwarded-For": {"127.0.0.1"}, "Forwarded": {"for=127.0.0.1"}, "X-Real-Ip": {"127.0.0.1"}}
	for _, hdr := range []http.Header{nil, forged} {
		if code := relayedGet(t, c, "/_mlb_signal/hup", hdr); code != http.StatusForbidden {
			t.Errorf("GET /_mlb_signal/hup (headers %v) = %d, want 403", hdr, code)
		}
	}
	if h.resyncs != 0 {
		t.Errorf("%d resyncs through the relayed listener without a credential", h.resyncs)
	}
	for _, p := range []string{"/v1/apps", "/metrics", "/healthz"} {
		if code := relayedGet(t, c, p, nil); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404 (not forwarded from the stats port)", p, code)
		}
	}
	// The same request on the API's own listener (loopback) is trusted.
	if code, _, body := request(s.Router(), "GET", "/_mlb_signal/hup"); code != http.StatusOK || h.resyncs != 1 {
		t.Errorf("GET /_mlb_signal/hup on the API = %d %s, resyncs %d", code, body, h.resyncs)
	}
}

// TestRelayedWithCredential: with --api-auth, /_mlb_signal/* through the stats port needs its
// credential.
func TestRelayedWithCredential(t *testing.T) {
	h := &fakeHAProxy{}
	auth, err := ParseAuth("token:s3cret")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Config{Listen: "127.0.0.1:0", Auth: auth}, newRegistry(t))
	s.MountHAProxy(h)
	c := relayedClient(t, s)
	if code := relayedGet(t, c, "/_mlb_signal/hup", http.Header{"Authorization": {"Bearer wrong"}}); code != http.StatusUnauthorized {
		t.Errorf("wrong credential: %d, want 401", code)
	}
	if code := relayedGet(t, c, "/_mlb_signal/hup", http.Header{"Authorization": {"Bearer s3cret"}}); code != http.StatusOK || h.resyncs != 1 {
		t.Errorf("right credential: %d, resyncs %d; want 200 and one resync", code, h.resyncs)
	}
}
