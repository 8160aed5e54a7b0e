package api

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAuth(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := file("token", "token:s3cret-from-file\n")
	basicFile := file("basic", "basic:ops:pa:ss\r\nsecond line ignored\n")
	badFile := file("bad", "s3cret\n")
	emptyFile := file("empty", "")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		spec    string
		want    Auth
		err     string // substring of the error; "" for success
		private string // must not appear in the error
	}{
		{spec: "", want: Auth{}},
		{spec: "token:abc123", want: Auth{Token: "abc123"}},
		{spec: "basic:ops:pw", want: Auth{User: "ops", Password: "pw"}},
		{spec: "basic:ops:pw:with:colons", want: Auth{User: "ops", Password: "pw:with:colons"}},
		{spec: tokenFile, want: Auth{Token: "s3cret-from-file"}},
		{spec: basicFile, want: Auth{User: "ops", Password: "pa:ss"}},
		{spec: "token:", err: "api auth: token:T has an empty token"},
		{spec: "token:two words", err: "the token contains white space", private: "two words"},
		{spec: "basic:", err: "api auth: basic:user:pass has an empty user"},
		{spec: "basic::pw", err: "has an empty user", private: "pw"},
		{spec: "basic:ops", err: "api auth: basic:ops: has no password (want basic:user:pass)"},
		{spec: "basic:ops:", err: "has no password"},
		{spec: missing, err: "is neither token:T nor basic:user:pass, nor a file that exists"},
		{spec: "tokn:s3cret", err: "nor a file that exists", private: "s3cret"},
		{spec: badFile, err: "api auth file " + badFile + ", line 1: want token:T or basic:user:pass", private: "s3cret"},
		{spec: emptyFile, err: "the file is empty"},
		{spec: file("emptytoken", "token:\n"), err: ", line 1: token:T has an empty token"},
	}
	for _, tc := range tests {
		got, err := ParseAuth(tc.spec)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseAuth(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseAuth(%q) error = %v, want it to contain %q", tc.spec, err, tc.err)
			continue
		}
		if tc.private != "" && strings.Contains(err.Error(), tc.private) {
			t.Errorf("ParseAuth(%q) error %q repeats the secret", tc.spec, err)
		}
	}
	if _, err := ParseAuth(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ParseAuth(missing file) = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestAuthStringRedacts(t *testing.T) {
	for a, want := range map[Auth]string{
		{}:                            "none",
		{Token: "s3cret"}:             "token:(redacted)",
		{User: "ops", Password: "pw"}: "basic:ops:(redacted)",
	} {
		if got := a.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", a, got, want)
		}
	}
}

func TestNewValidatesAuth(t *testing.T) {
	reg := newRegistry(t)
	for _, a := range []Auth{
		{Token: "t", User: "u", Password: "p"},
		{User: "u"},
		{Password: "p"},
		{User: "a:b", Password: "p"},
	} {
		if _, err := New(Config{Auth: a}, reg); err == nil || !strings.HasPrefix(err.Error(), "api: auth: ") {
			t.Errorf("New with auth %s = %v, want an auth error", a, err)
		}
	}
}

// authHandler is a server whose mutating endpoints succeed when reached: the resync fake
// answers 200, so a 200 means the request got through.
func authHandler(t *testing.T, cfg Config) (*Server, *fakeResyncer) {
	t.Helper()
	s := newServer(t, cfg, newRegistry(t))
	rs := &fakeResyncer{}
	s.SetFrontends(Frontends{Resync: rs, Rules: &fakeRules{rules: map[string]string{"/a": "x"}}})
	s.MountHAProxy(&fakeHAProxy{})
	return s, rs
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// authCase is one request against a server and the status it must get.
type authCase struct {
	method, path, authz, body string
	code                      int
}

func checkAuth(t *testing.T, name string, h http.Handler, tests []authCase) {
	t.Helper()
	for _, tc := range tests {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		if tc.authz != "" {
			req.Header.Set("Authorization", tc.authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("%s: %s %s (Authorization %q) = %d, want %d: %s", name, tc.method, tc.path, tc.authz, rec.Code, tc.code, rec.Body)
			continue
		}
		switch rec.Code {
		case http.StatusUnauthorized:
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s: %s %s: 401 without WWW-Authenticate", name, tc.method, tc.path)
			}
			if !strings.Contains(rec.Body.String(), "--api-auth") {
				t.Errorf("%s: %s %s: 401 body %s does not name --api-auth", name, tc.method, tc.path, rec.Body)
			}
		case http.StatusForbidden:
			if !strings.Contains(rec.Body.String(), "set --api-auth") {
				t.Errorf("%s: %s %s: 403 body %s does not say to set --api-auth", name, tc.method, tc.path, rec.Body)
			}
		}
	}
}

func TestAuthToken(t *testing.T) {
	s, rs := authHandler(t, Config{Listen: "10.0.0.1:8090", Auth: Auth{Token: "s3cret"}})
	checkAuth(t, "token", s.Router(), []authCase{
		{method: "GET", path: "/v1/apps", code: 200},
		{method: "HEAD", path: "/healthz", code: 200},
		{method: "POST", path: "/v1/resync", code: 401},
		{method: "POST", path: "/v1/resync", authz: "Bearer wrong", code: 401},
		{method: "POST", path: "/v1/resync", authz: "Bearer s3cre", code: 401},
		{method: "POST", path: "/v1/resync", authz: "Bearer s3cret-", code: 401},
		{method: "POST", path: "/v1/resync", authz: "s3cret", code: 401},
		{method: "POST", path: "/v1/resync", authz: basic("s3cret", "s3cret"), code: 401},
		{method: "GET", path: "/_mlb_signal/hup", code: 401},
		{method: "POST", path: "/_mlb_signal/usr1", code: 401},
		{method: "PUT", path: "/api/services/a", body: `{"acl":"y"}`, code: 401},
		{method: "DELETE", path: "/api/services/a", code: 401},
		{method: "POST", path: "/api/services", body: `{"id":"/b","acl":"y"}`, code: 401},
		{method: "POST", path: "/v1/resync", authz: "Bearer s3cret", code: 200},
		{method: "POST", path: "/v1/resync", authz: "bearer s3cret", code: 200},
		{method: "GET", path: "/_mlb_signal/hup", authz: "Bearer s3cret", code: 200},
		{method: "PUT", path: "/api/services/a", authz: "Bearer s3cret", body: `{"acl":"y"}`, code: 200},
		{method: "DELETE", path: "/api/services/a", authz: "Bearer s3cret", code: 200},
	})
	if n := rs.count(); n != 2 {
		t.Errorf("resyncs = %d, want 2 (only the authenticated ones)", n)
	}
	rec := httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/resync", nil))
	if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="lodestar"` {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
	}
}

func TestAuthBasic(t *testing.T) {
	s, rs := authHandler(t, Config{Listen: "10.0.0.1:8090", Auth: Auth{User: "ops", Password: "pa:ss"}})
	checkAuth(t, "basic", s.Router(), []authCase{
		{method: "GET", path: "/v1/apps", code: 200},
		{method: "POST", path: "/v1/resync", code: 401},
		{method: "POST", path: "/v1/resync", authz: basic("ops", "wrong"), code: 401},
		{method: "POST", path: "/v1/resync", authz: basic("dev", "pa:ss"), code: 401},
		{method: "POST", path: "/v1/resync", authz: basic("ops", "pa"), code: 401},
		{method: "POST", path: "/v1/resync", authz: "Bearer pa:ss", code: 401},
		{method: "GET", path: "/_mlb_signal/hup", code: 401},
		{method: "DELETE", path: "/api/services/a", code: 401},
		{method: "POST", path: "/v1/resync", authz: basic("ops", "pa:ss"), code: 200},
		{method: "POST", path: "/_mlb_signal/usr1", authz: basic("ops", "pa:ss"), code: 200},
		{method: "DELETE", path: "/api/services/a", authz: basic("ops", "pa:ss"), code: 200},
	})
	if n := rs.count(); n != 1 {
		t.Errorf("resyncs = %d, want 1", n)
	}
	rec := httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/resync", nil))
	if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="lodestar"`) {
		t.Errorf("WWW-Authenticate = %q, want a Basic challenge", got)
	}
}

// TestNoAuthDependsOnListenAddress: without --api-auth, mutating requests are served on a
// loopback address only. The server never listens here: Config.Listen is what it would bind.
func TestNoAuthDependsOnListenAddress(t *testing.T) {
	mutations := func(code int) []authCase {
		return []authCase{
			{method: "GET", path: "/v1/apps", code: 200},
			{method: "HEAD", path: "/v1/apps", code: 200},
			{method: "GET", path: "/api/services", code: 200},
			{method: "POST", path: "/v1/resync", code: code},
			{method: "GET", path: "/_mlb_signal/hup", code: code},
			{method: "POST", path: "/_mlb_signal/usr1", code: code},
			{method: "POST", path: "/api/services", body: `{"id":"/b","acl":"y"}`, code: code},
			{method: "PUT", path: "/api/services/b", body: `{"acl":"z"}`, code: code},
			{method: "DELETE", path: "/api/services/b", code: code},
		}
	}
	for listen, code := range map[string]int{
		"127.0.0.1:8090": 200,
		"127.0.0.2:8090": 200,
		"[::1]:8090":     200,
		"localhost:8090": 200,
		"10.0.0.1:8090":  403,
		"0.0.0.0:8090":   403,
		":8090":          403,
		"[::]:8090":      403,
		"lb1.example:80": 403,
	} {
		s, _ := authHandler(t, Config{Listen: listen})
		checkAuth(t, listen, s.Router(), mutations(code))
	}
	s, _ := authHandler(t, Config{Listen: "10.0.0.1:8090"})
	rec := httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/resync", nil))
	want := `"error": "POST /v1/resync changes lodestar's state and the API listens on 10.0.0.1:8090, beyond loopback, ` +
		`without credentials: set --api-auth (token:T or basic:user:pass), or listen on 127.0.0.1"`
	if !strings.Contains(rec.Body.String(), want) {
		t.Errorf("403 body = %s, want %s", rec.Body, want)
	}
}

// fakeAddrListener is a loopback listener that claims to be bound elsewhere, so a test can
// serve "on 10.0.0.1" without a packet leaving the machine.
type fakeAddrListener struct {
	net.Listener
	addr net.Addr
}

func (l fakeAddrListener) Addr() net.Addr { return l.addr }

// TestServeDecidesFromTheListener: Serve judges the listener's address, not Config.Listen.
// Over real TCP on loopback, a listener reporting 10.0.0.1:8090 refuses mutations without
// credentials, and accepts them with.
func TestServeDecidesFromTheListener(t *testing.T) {
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 8090}
	for _, tc := range []struct {
		name  string
		auth  Auth
		authz string
		code  int
	}{
		{"no auth", Auth{}, "", 403},
		{"token, none sent", Auth{Token: "s3cret"}, "", 401},
		{"token", Auth{Token: "s3cret"}, "Bearer s3cret", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Config.Listen is loopback: only the listener says otherwise.
			s, rs := authHandler(t, Config{Listen: "127.0.0.1:0", Auth: tc.auth})
			ln := listenLoopback(t)
			base := "http://" + ln.Addr().String()
			serveAPI(t, s, fakeAddrListener{Listener: ln, addr: remote})
			if got := s.Addr(); got != "10.0.0.1:8090" {
				t.Errorf("Addr = %q, want the listener's 10.0.0.1:8090", got)
			}
			hdr := map[string]string{}
			if tc.authz != "" {
				hdr["Authorization"] = tc.authz
			}
			doStep(t, base, step{method: "GET", path: "/v1/apps", code: 200})
			body := doStep(t, base, step{method: "POST", path: "/v1/resync", header: hdr, code: tc.code})
			if tc.code == 403 && !strings.Contains(string(body), "listens on 10.0.0.1:8090") {
				t.Errorf("403 body = %s, want it to name 10.0.0.1:8090", body)
			}
			doStep(t, base, step{method: "GET", path: "/_mlb_signal/hup", header: hdr, code: tc.code})
			wantResyncs := 0
			if tc.code == 200 {
				wantResyncs = 1
			}
			if n := rs.count(); n != wantResyncs {
				t.Errorf("resyncs = %d, want %d", n, wantResyncs)
			}
		})
	}
}

// TestServeOnLoopbackOverridesListen: a Config.Listen beyond loopback (as cmd might pass with
// socket activation) does not refuse mutations once Serve runs on a loopback listener.
func TestServeOnLoopbackOverridesListen(t *testing.T) {
	s, rs := authHandler(t, Config{Listen: "10.0.0.1:8090"})
	base := serveAPI(t, s, listenLoopback(t))
	doStep(t, base, step{method: "POST", path: "/v1/resync", code: 200, fields: map[string]string{"status": "resynced"}})
	if rs.count() != 1 {
		t.Errorf("resyncs = %d, want 1", rs.count())
	}
}

func TestRefusedRequestsAreCounted(t *testing.T) {
	s, _ := authHandler(t, Config{Listen: "10.0.0.1:8090", Auth: Auth{Token: "s3cret"}})
	checkAuth(t, "metrics", s.Router(), []authCase{{method: "PUT", path: "/api/services/x", code: 401}})
	code, body := get(t, s.Router(), "GET", "/metrics")
	want := `lodestar_api_requests_total{code="401",method="PUT",route="/api/services/{id:.+}"}`
	if code != 200 || !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

func TestServeTwice(t *testing.T) {
	s := newServer(t, Config{}, newRegistry(t))
	serveAPI(t, s, listenLoopback(t))
	ln := listenLoopback(t)
	if err := s.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Serve = %v, want an error", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on the listener a refused Serve was given = %v, want it closed", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[net.Addr]bool{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}:      true,
		&net.TCPAddr{IP: net.IPv6loopback, Port: 1}:            true,
		&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}:       false,
		&net.TCPAddr{IP: net.IPv4zero, Port: 1}:                false,
		&net.UnixAddr{Name: "/run/lodestar.sock", Net: "unix"}: true,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%s) = %t, want %t", addr, got, want)
		}
	}
}
