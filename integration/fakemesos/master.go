// Package fakemesos is an in-process fake Mesos master for tests.
//
// A Master serves a master's state document on the paths Mesos has used over the years
// (/master/state, /master/state.json, /state.json) and /master/redirect, and claims whichever
// master the test says leads. The state is seeded from a real Mesos state document
// (testdata/state_fake.json, embedded) and stored as raw JSON, so every field round-trips.
// Only the addresses that a client follows are rewritten: "pid", "leader" and "leader_info"
// always name the fake masters' own 127.0.0.1 addresses. SetMesosState serves a state built
// from discovery types (EncodeState).
//
// Like a Mesos master of the 0.2x era, a master that does not lead answers with the leader
// named and no frameworks or agents; SetRedirect makes it answer 307 to the leader instead, as
// Mesos 1.x does. Faults: GoDown and Restart (same port), SetPaths (404 on the newer paths),
// SetStatus, SetAuth. Request counters (Requests, WaitRequests) let tests wait on signals.
//
// ZKRegistrar writes the json.info_ nodes through which Mesos masters announce themselves in
// ZooKeeper. Every method is safe for concurrent use.
package fakemesos

import (
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// SeedState is the state document every Master starts with: the Mesos state of mesos-dns's
// test fixture (four frameworks, four agents, IPv4 and IPv6 tasks).
//
//go:embed testdata/state_fake.json
var SeedState []byte

// State paths, newest first: Mesos 1.x serves all three, 0.2x only the .json ones, and the
// oldest releases only /state.json.
const (
	PathState         = "/master/state"
	PathStateJSON     = "/master/state.json"
	PathLegacyState   = "/state.json"
	PathRedirect      = "/master/redirect"
	defaultListenAddr = "127.0.0.1:0"
)

// StatePaths are every state path, newest first.
var StatePaths = []string{PathState, PathStateJSON, PathLegacyState}

// Master is one fake Mesos master. Create it with New, then Start it.
type Master struct {
	// Addr is the address to listen on; empty means "127.0.0.1:0". Start replaces it with
	// the address bound. Read by Start only.
	Addr string
	// TLS serves HTTPS with a self-signed certificate for 127.0.0.1 (see CertPEM). Read by
	// Start only.
	TLS bool

	// life serialises Start, Restart and GoDown.
	life    sync.Mutex
	started bool
	srv     *http.Server
	done    chan struct{} // closed when srv's Serve returned
	tlsConf *tls.Config   // set by Start when TLS
	certPEM []byte

	mu       sync.Mutex
	addr     string // bound address, kept for Restart
	state    map[string]any
	rendered map[bool][]byte // the served document, leader and non-leader form; nil when stale
	leader   string          // "ip:port" this master claims leads; "" = none elected
	self     bool            // it claims to lead itself (until SetLeader), whatever its address
	paths    map[string]bool // state paths served; the others answer 404
	redirect bool
	status   int
	user     string
	pass     string
	requests map[string]int
	changed  chan struct{} // closed and replaced on every request

	schedOnce sync.Once
	sched     *scheduler // the v1 scheduler API's state (scheduler.go), made on first use
}

// New returns a stopped master seeded with SeedState, claiming to lead itself once started.
func New() *Master {
	m := &Master{
		paths:    map[string]bool{PathState: true, PathStateJSON: true, PathLegacyState: true},
		requests: map[string]int{},
		changed:  make(chan struct{}),
		self:     true,
	}
	if err := m.SetState(SeedState); err != nil {
		panic(fmt.Sprintf("fakemesos: embedded seed state: %v", err))
	}
	return m
}

// Start listens on Addr (default 127.0.0.1:0) and serves.
func (m *Master) Start() error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.started {
		return errors.New("fakemesos: already started")
	}
	addr := m.Addr
	if addr == "" {
		addr = defaultListenAddr
	}
	if m.TLS {
		cert, certPEM, err := selfSigned()
		if err != nil {
			return err
		}
		m.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		m.certPEM = certPEM
	}
	if err := m.listen(addr); err != nil {
		return err
	}
	m.started = true
	m.Addr = m.HostPort()
	return nil
}

// Restart serves again on the same address after GoDown. State and settings are kept.
func (m *Master) Restart() error {
	m.life.Lock()
	defer m.life.Unlock()
	if !m.started {
		return errors.New("fakemesos: Restart before Start")
	}
	if m.srv != nil {
		return errors.New("fakemesos: already running")
	}
	return m.listen(m.HostPort())
}

func (m *Master) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakemesos: %w", err)
	}
	if m.tlsConf != nil {
		ln = tls.NewListener(ln, m.tlsConf)
	}
	srv := &http.Server{Handler: http.HandlerFunc(m.serve), ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	m.mu.Lock()
	m.addr = ln.Addr().String()
	if m.self {
		m.leader = m.addr
	}
	m.rendered = nil
	m.mu.Unlock()
	m.srv, m.done = srv, done
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return nil
}

// GoDown makes the master vanish like a dead host: the listener and every connection are
// closed, so new connections are refused. Restart brings it back. GoDown is idempotent.
func (m *Master) GoDown() {
	m.life.Lock()
	defer m.life.Unlock()
	if m.srv == nil {
		return
	}
	_ = m.srv.Close()
	<-m.done
	m.srv, m.done = nil, nil
}

// Close stops the master for good (it is GoDown; Restart would still work).
func (m *Master) Close() { m.GoDown() }

// HostPort is the bound "127.0.0.1:port" (empty before Start).
func (m *Master) HostPort() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Port is the bound port (0 before Start).
func (m *Master) Port() int {
	_, p, _ := net.SplitHostPort(m.HostPort())
	n, _ := strconv.Atoi(p)
	return n
}

// PID is the master's libprocess pid, "master@127.0.0.1:port".
func (m *Master) PID() string { return "master@" + m.HostPort() }

// URL is the master's base URL, "http://127.0.0.1:port" (https with TLS).
func (m *Master) URL() string {
	if m.TLS {
		return "https://" + m.HostPort()
	}
	return "http://" + m.HostPort()
}

// CertPEM is the PEM of the self-signed certificate a TLS master serves (nil without TLS):
// clients trust it as their CA bundle.
func (m *Master) CertPEM() []byte {
	m.life.Lock()
	defer m.life.Unlock()
	return m.certPEM
}

// SetLeader sets the "ip:port" of the master this one claims leads ("" = no leader elected).
// A master leads when it names its own HostPort.
func (m *Master) SetLeader(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leader, m.self = addr, false
	m.rendered = nil
}

// Leader returns the "ip:port" this master claims leads.
func (m *Master) Leader() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}

// SetState replaces the state document. raw must be a JSON object in the Mesos state format
// (or anything discovery.DecodeMesosState reads); its "pid", "leader" and "leader_info" are
// replaced by the fake's own whenever it is served.
func (m *Master) SetState(raw []byte) error {
	st, err := decodeObject(raw)
	if err != nil {
		return fmt.Errorf("fakemesos: SetState: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state, m.rendered = st, nil
	return nil
}

// EditState changes the state document in place, under the master's lock: edit gets the
// decoded JSON object (numbers as json.Number).
func (m *Master) EditState(edit func(state map[string]any)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	edit(m.state)
	m.rendered = nil
}

// State returns the state document as this master serves it now.
func (m *Master) State() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.renderLocked()
}

// SetPaths sets which state paths are served; the others answer 404, as on a Mesos release
// that predates them. With no argument every path is served again.
func (m *Master) SetPaths(paths ...string) {
	if len(paths) == 0 {
		paths = StatePaths
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paths = map[string]bool{}
	for _, p := range paths {
		m.paths[p] = true
	}
}

// SetRedirect makes a master that does not lead answer state requests with 307 to the leader
// (Mesos 1.x) instead of a state that names the leader (Mesos 0.2x).
func (m *Master) SetRedirect(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.redirect = on
}

// SetStatus makes every request answer this HTTP status with a short body; 0 restores
// normal answers.
func (m *Master) SetStatus(code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = code
}

// SetAuth requires HTTP basic auth with these credentials; an empty user turns it off.
func (m *Master) SetAuth(user, pass string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.user, m.pass = user, pass
}

// Requests returns how many requests were made for path, whatever their answer; "" counts
// every path.
func (m *Master) Requests(path string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requestsLocked(path)
}

func (m *Master) requestsLocked(path string) int {
	if path != "" {
		return m.requests[path]
	}
	n := 0
	for _, c := range m.requests {
		n += c
	}
	return n
}

// WaitRequests waits until Requests(path) reaches n or ctx ends.
func (m *Master) WaitRequests(ctx context.Context, path string, n int) error {
	for {
		m.mu.Lock()
		got, changed := m.requestsLocked(path), m.changed
		m.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fakemesos %s: %d requests for %q, waiting for %d: %w", m.HostPort(), got, path, n, ctx.Err())
		}
	}
}

// answer is what one request gets, decided under the lock and written without it.
type answer struct {
	status   int
	location string
	header   http.Header
	body     []byte
}

func (m *Master) serve(w http.ResponseWriter, r *http.Request) {
	if m.serveScheduler(w, r) { // the v1 scheduler API streams: scheduler.go
		return
	}
	a := m.decide(r)
	for k, v := range a.header {
		w.Header()[k] = v
	}
	if a.location != "" {
		w.Header().Set("Location", a.location)
	}
	if a.status == http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}

func (m *Master) decide(r *http.Request) answer {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[r.URL.Path]++
	close(m.changed)
	m.changed = make(chan struct{})

	if m.status != 0 {
		return answer{status: m.status, body: []byte(http.StatusText(m.status) + "\n")}
	}
	if m.user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != m.user || p != m.pass {
			return answer{status: http.StatusUnauthorized, header: http.Header{"Www-Authenticate": {`Basic realm="Mesos master"`}}}
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return answer{status: http.StatusMethodNotAllowed, body: []byte("Expecting 'GET'\n")}
	}
	switch {
	case r.URL.Path == PathRedirect:
		if m.leader == "" {
			return answer{status: http.StatusServiceUnavailable, body: []byte("No leader elected\n")}
		}
		return answer{status: http.StatusTemporaryRedirect, location: "//" + m.leader}
	case slices.Contains(StatePaths, r.URL.Path) && m.paths[r.URL.Path]:
		if m.redirect && m.leader != m.addr {
			if m.leader == "" {
				return answer{status: http.StatusServiceUnavailable, body: []byte("No leader elected\n")}
			}
			return answer{status: http.StatusTemporaryRedirect, location: "//" + m.leader + r.URL.Path}
		}
		return answer{status: http.StatusOK, body: m.renderLocked()}
	}
	return answer{status: http.StatusNotFound}
}

// renderLocked returns the state as served now: the master's own pid, the leader it claims,
// and, unless it leads, no frameworks or agents (a master that does not lead has none).
func (m *Master) renderLocked() []byte {
	leads := m.leader != "" && m.leader == m.addr
	if b, ok := m.rendered[leads]; ok {
		return b
	}
	st := maps.Clone(m.state)
	st["pid"] = "master@" + m.addr
	delete(st, "leader")
	delete(st, "leader_info")
	if m.leader != "" {
		st["leader"] = "master@" + m.leader
		if _, had := m.state["leader_info"]; had {
			st["leader_info"] = leaderInfo(m.leader)
		}
	}
	if !leads {
		st["frameworks"] = []any{}
		st["slaves"] = []any{}
	}
	b, err := json.Marshal(st)
	if err != nil {
		// The state came from JSON and only gained strings: it always marshals.
		panic(fmt.Sprintf("fakemesos: marshal state: %v", err))
	}
	if m.rendered == nil {
		m.rendered = map[bool][]byte{}
	}
	m.rendered[leads] = b
	return b
}

// leaderInfo is the MasterInfo Mesos 1.x puts in a state's "leader_info".
func leaderInfo(addr string) map[string]any {
	info := NewMasterInfo(addr)
	return info.object()
}

func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var st map[string]any
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("state is not a JSON object: %w", err)
	}
	if st == nil {
		return nil, errors.New("state is null, want a JSON object")
	}
	return st, nil
}
