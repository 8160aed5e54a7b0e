package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeHAProxy records the signals it gets and answers from fields.
type fakeHAProxy struct {
	config    []byte
	healthErr error
	signalErr error
	resyncs   int
	reloads   int
}

func (f *fakeHAProxy) Config() []byte { return f.config }
func (f *fakeHAProxy) Status() any {
	return map[string]any{"last_apply": map[string]string{"kind": "reload", "reason": "backend a_80 added"}}
}
func (f *fakeHAProxy) Healthy() error   { return f.healthErr }
func (f *fakeHAProxy) PIDs() []int      { return []int{100, 101} }
func (f *fakeHAProxy) VhostMap() []byte { return []byte("shop.example.com shop_web_10000\n") }
func (f *fakeHAProxy) AppMap() []byte   { return []byte("/shop/web shop_web_10000\n") }
func (f *fakeHAProxy) Resync(context.Context) error {
	f.resyncs++
	return f.signalErr
}
func (f *fakeHAProxy) Reload(context.Context) error {
	f.reloads++
	return f.signalErr
}

// request serves one request and returns the status, content type and body.
func request(h http.Handler, method, path string) (int, string, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
}

func TestHAProxyEndpoints(t *testing.T) {
	h := &fakeHAProxy{}
	s := newServer(t, Config{}, newRegistry(t))
	s.MountHAProxy(h)
	r := s.Router()

	// Before the first apply: no config, not healthy.
	h.healthErr = errors.New("no configuration applied yet")
	if code, _, body := request(r, "GET", "/_haproxy_getconfig"); code != 503 {
		t.Errorf("getconfig before the first apply = %d %s, want 503", code, body)
	}
	if code, _, body := request(r, "GET", "/_haproxy_health_check"); code != 503 {
		t.Errorf("health check before the first apply = %d %s, want 503", code, body)
	}

	h.config, h.healthErr = []byte("global\n  daemon\n"), nil
	text := "text/plain; charset=utf-8"
	tests := []struct {
		method, path string
		code         int
		ctype, body  string
	}{
		{"GET", "/_haproxy_getconfig", 200, text, "global\n  daemon\n"},
		{"GET", "/v1/haproxy/config", 200, text, "global\n  daemon\n"},
		{"GET", "/_haproxy_health_check", 200, text, "OK\n"},
		{"GET", "/_haproxy_getpids", 200, text, "100 101\n"},
		{"GET", "/_haproxy_getvhostmap", 200, text, "shop.example.com shop_web_10000\n"},
		{"GET", "/_haproxy_getappmap", 200, text, "/shop/web shop_web_10000\n"},
		{"GET", "/v1/haproxy/status", 200, "application/json", ""},
		{"GET", "/_mlb_signal/hup", 200, text, "Resynced and regenerated the HAProxy config\n"},
		{"POST", "/_mlb_signal/usr1", 200, text, "Reloaded HAProxy with the config on disk\n"},
		{"DELETE", "/_mlb_signal/usr1", 405, "application/json", ""},
	}
	for _, tc := range tests {
		code, ctype, body := request(r, tc.method, tc.path)
		if code != tc.code || ctype != tc.ctype || (tc.body != "" && body != tc.body) {
			t.Errorf("%s %s = %d %q %q, want %d %q %q", tc.method, tc.path, code, ctype, body, tc.code, tc.ctype, tc.body)
		}
	}
	if _, _, body := request(r, "GET", "/v1/haproxy/status"); !strings.Contains(body, "backend a_80 added") {
		t.Errorf("status = %s, want the fake's last apply", body)
	}
	if h.resyncs != 1 || h.reloads != 1 {
		t.Errorf("resyncs, reloads = %d, %d; want 1, 1", h.resyncs, h.reloads)
	}

	h.signalErr = errors.New("haproxy -c failed: line 12: unknown keyword")
	if code, _, body := request(r, "GET", "/_mlb_signal/usr1"); code != 500 || !strings.Contains(body, "unknown keyword") {
		t.Errorf("failing reload = %d %s, want 500 naming HAProxy's error", code, body)
	}
}
