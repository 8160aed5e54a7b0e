package marathon

import (
	"encoding/pem"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An https Marathon (here a TLS proxy on loopback in front of the fake) is trusted through
// --marathon-ca-cert, for the REST calls and the event stream alike, and refused without it.
func TestHTTPSWithCABundle(t *testing.T) {
	fake := newFake(t, "zdd_apps.json")
	target, err := url.Parse(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // pass the event stream through as it comes
	ts := httptest.NewTLSServer(proxy)
	t.Cleanup(ts.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("trusted", func(t *testing.T) {
		cfg := testConfig()
		cfg.URLs, cfg.CACertFile = []string{ts.URL}, ca
		h := start(t, cfg)
		if s := h.waitSynced(); s.Apps.Len() != 2 {
			t.Errorf("synced %d apps over https, want 2", s.Apps.Len())
		}
		if err := fake.WaitSubscribers(waitCtx(t), 1); err != nil {
			t.Errorf("no event stream through https: %v", err)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		cfg := testConfig()
		cfg.URLs = []string{ts.URL}
		h := start(t, cfg)
		h.waitReport(0, "a certificate error", isErr("certificate"))
		if s := h.reg.Snapshot(); s.Apps.Len() != 0 {
			t.Errorf("apps arrived from an untrusted server: %s", dump(s))
		}
	})
	t.Run("bundle without a certificate", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "empty.pem")
		if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := New(Config{URLs: []string{ts.URL}, CACertFile: bad})
		if err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
			t.Errorf("New with a bundle holding no certificate: err = %v", err)
		}
	})
}
