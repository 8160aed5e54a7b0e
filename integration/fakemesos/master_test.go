package fakemesos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

func startMaster(t *testing.T) *Master {
	t.Helper()
	m := New()
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func startCluster(t *testing.T, n int) *Cluster {
	t.Helper()
	c, err := NewCluster(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// get fetches path and returns the status, the Location header and the body.
func get(t *testing.T, m *Master, path string) (int, string, []byte) {
	t.Helper()
	resp, err := noRedirect.Get(m.URL() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), body
}

func decode(t *testing.T, body []byte) *discovery.MesosState {
	t.Helper()
	st, err := discovery.DecodeMesosState(body)
	if err != nil {
		t.Fatalf("decoding the served state: %v\n%.300s", err, body)
	}
	return st
}

func TestLeaderServesStateOnEveryPath(t *testing.T) {
	m := startMaster(t)
	for _, p := range StatePaths {
		code, _, body := get(t, m, p)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d, want 200", p, code)
		}
		st := decode(t, body)
		if st.Leader != m.HostPort() || st.LeaderPID != m.PID() {
			t.Errorf("GET %s: leader %q (pid %q), want the master itself %q", p, st.Leader, st.LeaderPID, m.HostPort())
		}
		if len(st.Frameworks) != 4 || len(st.Agents) != 4 {
			t.Errorf("GET %s: %d frameworks, %d agents; want the seed's 4 and 4", p, len(st.Frameworks), len(st.Agents))
		}
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["pid"] != m.PID() {
			t.Errorf("GET %s: pid %v, want %s", p, raw["pid"], m.PID())
		}
		// Numbers round-trip exactly (the seed has elected_time 1414913536.12863).
		if !strings.Contains(string(body), `"elected_time":1414913536.12863`) {
			t.Errorf("GET %s: elected_time not kept verbatim", p)
		}
	}
}

func TestNonLeaderNamesTheLeaderAndHasNoFrameworks(t *testing.T) {
	c := startCluster(t, 2)
	code, _, body := get(t, c.Masters[1], PathState)
	if code != http.StatusOK {
		t.Fatalf("GET %s from a non-leader: %d, want 200", PathState, code)
	}
	st := decode(t, body)
	if st.Leader != c.Masters[0].HostPort() {
		t.Errorf("non-leader names %q, want %q", st.Leader, c.Masters[0].HostPort())
	}
	if len(st.Frameworks) != 0 || len(st.Agents) != 0 {
		t.Errorf("non-leader serves %d frameworks and %d agents, want none", len(st.Frameworks), len(st.Agents))
	}

	c.SetLeader(1)
	if st := decode(t, c.Masters[1].State()); st.Leader != c.Masters[1].HostPort() || len(st.Frameworks) != 4 {
		t.Errorf("after SetLeader(1): master 1 names %q with %d frameworks; want itself with 4", st.Leader, len(st.Frameworks))
	}
	if st := decode(t, c.Masters[0].State()); st.Leader != c.Masters[1].HostPort() || len(st.Frameworks) != 0 {
		t.Errorf("after SetLeader(1): master 0 names %q with %d frameworks; want master 1 with 0", st.Leader, len(st.Frameworks))
	}

	c.SetLeader(-1)
	code, _, body = get(t, c.Masters[0], PathState)
	if st := decode(t, body); code != http.StatusOK || st.LeaderPID != "" {
		t.Errorf("with no leader: %d, leader pid %q; want 200 and none", code, st.LeaderPID)
	}
}

func TestLeaderInfoIsRewritten(t *testing.T) {
	c := startCluster(t, 2)
	c.EditState(func(st map[string]any) {
		st["leader_info"] = map[string]any{"hostname": "10.1.1.1", "port": 5050, "address": map[string]any{"ip": "10.1.1.1", "port": 5050}}
	})
	st := decode(t, c.Masters[1].State())
	if st.Leader != c.Masters[0].HostPort() {
		t.Errorf("leader from leader_info = %q, want %q", st.Leader, c.Masters[0].HostPort())
	}
}

func TestRedirects(t *testing.T) {
	c := startCluster(t, 2)
	leader := c.Masters[0].HostPort()
	code, loc, _ := get(t, c.Masters[1], PathRedirect)
	if code != http.StatusTemporaryRedirect || loc != "//"+leader {
		t.Errorf("GET /master/redirect: %d to %q, want 307 to //%s", code, loc, leader)
	}

	c.Masters[1].SetRedirect(true)
	code, loc, _ = get(t, c.Masters[1], PathStateJSON)
	if code != http.StatusTemporaryRedirect || loc != "//"+leader+PathStateJSON {
		t.Errorf("redirect mode, non-leader: %d to %q, want 307 to //%s%s", code, loc, leader, PathStateJSON)
	}
	c.Masters[0].SetRedirect(true)
	if code, _, _ := get(t, c.Masters[0], PathState); code != http.StatusOK {
		t.Errorf("redirect mode, leader: %d, want 200", code)
	}

	c.SetLeader(-1)
	if code, _, _ := get(t, c.Masters[1], PathState); code != http.StatusServiceUnavailable {
		t.Errorf("redirect mode, no leader: %d, want 503", code)
	}
	if code, _, _ := get(t, c.Masters[1], PathRedirect); code != http.StatusServiceUnavailable {
		t.Errorf("/master/redirect, no leader: %d, want 503", code)
	}
}

func TestSetPathsAnswers404OnTheOthers(t *testing.T) {
	m := startMaster(t)
	m.SetPaths(PathLegacyState)
	for _, p := range StatePaths {
		want := http.StatusNotFound
		if p == PathLegacyState {
			want = http.StatusOK
		}
		if code, _, _ := get(t, m, p); code != want {
			t.Errorf("GET %s: %d, want %d", p, code, want)
		}
	}
	m.SetPaths()
	if code, _, _ := get(t, m, PathState); code != http.StatusOK {
		t.Errorf("after SetPaths(): GET %s: %d, want 200", PathState, code)
	}
	if code, _, _ := get(t, m, "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", code)
	}
}

func TestBasicAuthAndStatus(t *testing.T) {
	m := startMaster(t)
	m.SetAuth("ops", "s3cret")
	if code, _, _ := get(t, m, PathState); code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", code)
	}
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"ops", "wrong", 401}, {"ops", "s3cret", 200}} {
		req, _ := http.NewRequest(http.MethodGet, m.URL()+PathState, nil)
		req.SetBasicAuth(c.user, c.pass)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("as %s:%s: %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
	}
	m.SetAuth("", "")
	m.SetStatus(http.StatusServiceUnavailable)
	if code, _, _ := get(t, m, PathState); code != http.StatusServiceUnavailable {
		t.Errorf("SetStatus(503): %d", code)
	}
	m.SetStatus(0)
	if code, _, _ := get(t, m, PathState); code != http.StatusOK {
		t.Errorf("SetStatus(0): %d, want 200", code)
	}
}

func TestGoDownAndRestartOnTheSamePort(t *testing.T) {
	m := startMaster(t)
	addr := m.HostPort()
	m.GoDown()
	_, err := noRedirect.Get(m.URL() + PathState)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("GET while down: %v, want connection refused", err)
	}
	m.GoDown() // idempotent
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if m.HostPort() != addr {
		t.Fatalf("restarted on %s, want %s", m.HostPort(), addr)
	}
	if code, _, _ := get(t, m, PathState); code != http.StatusOK {
		t.Errorf("after Restart: %d, want 200", code)
	}
	if err := m.Restart(); err == nil {
		t.Error("Restart while running: want an error")
	}
}

func TestRequestCounters(t *testing.T) {
	m := startMaster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.WaitRequests(ctx, PathStateJSON, 2) }()
	get(t, m, PathState)
	get(t, m, PathStateJSON)
	get(t, m, PathStateJSON)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := m.Requests(PathStateJSON); got != 2 {
		t.Errorf("Requests(%s) = %d, want 2", PathStateJSON, got)
	}
	if got := m.Requests(""); got != 3 {
		t.Errorf("Requests(\"\") = %d, want 3", got)
	}
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if err := m.WaitRequests(short, PathState, 5); err == nil {
		t.Error("WaitRequests for requests never made: want an error once ctx ends")
	}
}

func TestSetState(t *testing.T) {
	m := startMaster(t)
	for _, bad := range []string{"", "null", "[1]", "{"} {
		if err := m.SetState([]byte(bad)); err == nil {
			t.Errorf("SetState(%q): want an error", bad)
		}
	}
	if err := m.SetState([]byte(`{"frameworks":[{"id":"f1","name":"marathon","tasks":[]}],"slaves":[]}`)); err != nil {
		t.Fatal(err)
	}
	st := decode(t, m.State())
	if len(st.Frameworks) != 1 || st.Frameworks[0].Name != "marathon" || st.Leader != m.HostPort() {
		t.Errorf("after SetState: %+v", st)
	}
}

func TestTLS(t *testing.T) {
	m := New()
	m.TLS = true
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(m.CertPEM()) {
		t.Fatal("CertPEM holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(m.URL() + PathState)
	if err != nil {
		t.Fatalf("GET over TLS trusting CertPEM: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET over TLS: %d", resp.StatusCode)
	}
	if _, err := http.Get(m.URL() + PathState); err == nil {
		t.Error("GET without trusting the certificate: want a TLS error")
	}
}
