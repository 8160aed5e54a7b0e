// Package fakemarathon is an in-process fake Marathon (1.x) server for tests.
//
// It speaks Marathon's REST API (/v2/apps, /v2/info, /v2/leader, /ping) and
// its server-sent-events bus (/v2/events) with the real wire format. Apps and
// tasks are stored as raw JSON objects, so every field of every Marathon
// version round-trips unchanged. Tests drive it through methods that change
// state and emit the events Marathon would (AddTask, ScaleApp, SetHealth, ...)
// and inject faults (CutStreams, StallStreams, GoDown, SetStatus, ...).
//
// Every method is safe for concurrent use. Mutating methods update the state
// and enqueue the matching events atomically, so a client that reacts to an
// event by fetching /v2/apps always sees the state the event describes.
package fakemarathon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a fake Marathon. Create it with New, seed it, then Start it.
//
// Addr, KeepAlive and Leader are read by Start only: set them before Start
// and use SetKeepAlive and SetLeader afterwards. LegacyHealthEvents may be
// changed between calls, but not concurrently with SetHealth or AddTask.
type Server struct {
	// Addr is the address to listen on; empty means "127.0.0.1:0". Start
	// replaces it with the address actually bound.
	Addr string
	// KeepAlive is the interval between SSE keepalive comments (":" and a
	// blank line) on every event stream; 0 disables them. New sets 1s.
	KeepAlive time.Duration
	// Leader is the "host:port" reported by /v2/leader and /v2/info; empty
	// means the server's own address.
	Leader string
	// LegacyHealthEvents makes health_status_changed_event name the task as
	// "taskId" (Marathon before 1.4) instead of "instanceId". It is read by
	// SetHealth and AddTask when they run.
	LegacyHealthEvents bool
	// NoLeaderEndpoints makes /v2/leader and /v2/info answer 404, as a proxy in front of
	// Marathon that passes only /v2/apps and /v2/events does. Read by Start only.
	NoLeaderEndpoints bool

	// life serialises Start, Restart, Close and GoDown, which wait for
	// handlers and so must not hold mu.
	life      sync.Mutex
	started   bool
	srv       *http.Server
	serveDone chan struct{}
	active    sync.WaitGroup // running handlers; Add only under mu while !down
	conns     sync.WaitGroup // open connections, via http.Server.ConnState

	mux *http.ServeMux

	// stalled is written under mu; stream handlers read it without mu.
	stalled atomic.Bool

	mu          sync.Mutex
	down        bool   // not serving: handlers must not start
	addr        string // bound address, kept for Restart
	keepAlive   time.Duration
	leader      string
	noLeader    bool
	status      int
	appsBody    []byte
	authOn      bool
	user, pass  string
	info        map[string]any
	apps        map[string]*app
	deployments map[string][]string
	readiness   map[string][]any
	nextPort    int
	requests    map[string]int
	clients     map[*client]struct{}
	subsChanged chan struct{} // closed and replaced whenever clients changes
	connects    int
	filters     [][]string
	launchState string // tasks of posted apps start in it; "" is TASK_RUNNING
	deploys     deployState
}

// New returns a stopped server with no apps.
func New() *Server {
	s := &Server{
		KeepAlive:   time.Second,
		down:        true,
		info:        defaultInfo(),
		apps:        map[string]*app{},
		deployments: map[string][]string{},
		readiness:   map[string][]any{},
		nextPort:    31000,
		requests:    map[string]int{},
		clients:     map[*client]struct{}{},
		subsChanged: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", handlePing)
	mux.HandleFunc("GET /v2/ping", handlePing)
	mux.HandleFunc("GET /v2/leader", s.handleLeader)
	mux.HandleFunc("GET /v2/info", s.handleInfo)
	mux.HandleFunc("GET /v2/apps", s.handleApps)
	mux.HandleFunc("GET /v2/apps/{id...}", s.handleApp)
	mux.HandleFunc("GET /v2/events", s.handleEvents)
	mux.HandleFunc("POST /v2/apps", s.handlePostApp)
	mux.HandleFunc("DELETE /v2/apps/{id...}", s.handleDeleteApp)
	mux.HandleFunc("PUT /v2/apps/{id...}", s.handlePutApp)
	mux.HandleFunc("POST /v2/tasks/delete", s.handleDeleteTasks)
	mux.HandleFunc("GET /v2/deployments", s.handleDeployments)
	mux.HandleFunc("DELETE /v2/deployments/{id}", s.handleDeleteDeployment)
	mux.HandleFunc("/", handleNotFound)
	s.mux = mux
	return s
}

// Start starts listening on Addr (default 127.0.0.1:0) and serving.
func (s *Server) Start() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.started {
		return errors.New("fakemarathon: already started")
	}
	addr := s.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s.mu.Lock()
	s.keepAlive = s.KeepAlive
	s.leader = s.Leader
	s.noLeader = s.NoLeaderEndpoints
	s.mu.Unlock()
	if err := s.listen(addr); err != nil {
		return err
	}
	s.started = true
	s.Addr = s.addrLocked()
	return nil
}

// Restart listens again on the port of the previous run, after Close or
// GoDown. All state (apps, tasks, settings, counters) is kept.
func (s *Server) Restart() error {
	s.life.Lock()
	defer s.life.Unlock()
	if !s.started {
		return errors.New("fakemarathon: Restart before Start")
	}
	if s.srv != nil {
		return errors.New("fakemarathon: already running")
	}
	return s.listen(s.addrLocked())
}

func (s *Server) addrLocked() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// listen binds addr and serves in a goroutine. Called with life held.
func (s *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakemarathon: %w", err)
	}
	srv := &http.Server{
		Handler:  http.HandlerFunc(s.serve),
		ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.conns.Done()
			}
		},
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.down = false
	s.mu.Unlock()
	s.srv, s.serveDone = srv, done
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return nil
}

// Close stops the server: it closes the listener and every connection and
// waits for all handlers and goroutines to end. Restart may follow. Close is
// idempotent.
func (s *Server) Close() { s.GoDown() }

// GoDown makes the server vanish like a dead host: the listener and every
// connection (event streams included) are closed, so new connections are
// refused. It returns once all handlers have ended. Restart brings it back.
func (s *Server) GoDown() {
	s.life.Lock()
	defer s.life.Unlock()
	if s.srv == nil {
		return
	}
	s.mu.Lock()
	s.down = true // from now on no handler starts, so active.Wait is safe
	clients := s.detachAllLocked()
	s.mu.Unlock()

	_ = s.srv.Close() // listener and connections
	for _, c := range clients {
		c.close()
	}
	<-s.serveDone   // no more accepts, so no more conns.Add
	s.active.Wait() // handlers returned
	s.conns.Wait()  // connection goroutines finished
	s.srv, s.serveDone = nil, nil
}

// URL returns the base URL, "http://127.0.0.1:PORT".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// serve is the root handler: it counts the request, then applies basic
// auth and the status override before routing.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		panic(http.ErrAbortHandler) // connection is being torn down
	}
	s.active.Add(1)
	defer s.active.Done()
	s.requests[r.URL.Path]++
	status, authOn, user, pass := s.status, s.authOn, s.user, s.pass
	s.mu.Unlock()

	if authOn {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="Mesosphere"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Invalid username or password."})
			return
		}
	}
	if status != 0 {
		writeJSON(w, status, map[string]any{"message": http.StatusText(status)})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// writeJSON writes v with Marathon's content type.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, code, body)
}

func writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func handlePing(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "pong")
}

func handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]any{"message": "Resource not found: " + r.URL.Path})
}

// leaderLocked is the current leader "host:port".
func (s *Server) leaderLocked() string {
	if s.leader != "" {
		return s.leader
	}
	return s.addr
}

func (s *Server) handleLeader(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	leader, hidden := s.leaderLocked(), s.noLeader
	s.mu.Unlock()
	if hidden {
		handleNotFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"leader": leader})
}

// embedOptions are the parsed values of the repeatable "embed" parameter.
type embedOptions struct {
	tasks, readiness bool
}

func parseEmbed(r *http.Request) embedOptions {
	var o embedOptions
	for _, e := range r.URL.Query()["embed"] {
		e = strings.TrimPrefix(strings.TrimPrefix(e, "apps."), "app.")
		switch e {
		case "tasks":
			o.tasks = true
		case "readiness":
			o.readiness = true
		}
		// counts and deployments are always embedded, as in Marathon;
		// other values (lastTaskFailure, taskStats, ...) are ignored.
	}
	return o
}

// handleApps serves GET /v2/apps. Like Marathon, counts and deployments
// are always embedded; tasks and readiness only when asked for.
func (s *Server) handleApps(w http.ResponseWriter, r *http.Request) {
	o := parseEmbed(r)
	s.mu.Lock()
	if s.appsBody != nil {
		body := s.appsBody
		s.mu.Unlock()
		writeBody(w, http.StatusOK, body)
		return
	}
	ids := make([]string, 0, len(s.apps))
	for id := range s.apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	list := make([]any, 0, len(ids))
	for _, id := range ids {
		list = append(list, s.appJSONLocked(s.apps[id], o))
	}
	// Marshal under the lock: the maps are live state.
	body, err := marshal(map[string]any{"apps": list})
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// handleApp serves GET /v2/apps/{id...}, which embeds everything.
func (s *Server) handleApp(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	if strings.Trim(raw, "/") == "" {
		s.handleApps(w, r)
		return
	}
	id := normID(raw)
	s.mu.Lock()
	a, ok := s.apps[id]
	if !ok {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("App '%s' does not exist", id)})
		return
	}
	body, err := marshal(map[string]any{"app": s.appJSONLocked(a, embedOptions{tasks: true, readiness: true})})
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// SetStatus makes every endpoint (REST, /ping and /v2/events) answer code
// with a JSON {"message": ...} body; 0 restores normal answers.
func (s *Server) SetStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

// SetAppsBody makes GET /v2/apps answer 200 with body verbatim (for
// malformed or huge responses); nil restores normal behaviour.
func (s *Server) SetAppsBody(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appsBody = body
}

// SetBasicAuth requires HTTP basic auth with user and pass on every request;
// others get 401 {"message":"Invalid username or password."}. An empty user
// turns auth off again.
func (s *Server) SetBasicAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authOn, s.user, s.pass = user != "", user, pass
}

// SetLeader sets the "host:port" reported by /v2/leader and /v2/info; empty
// means the server's own address.
func (s *Server) SetLeader(hostport string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leader = hostport
}

// SetKeepAlive changes the keepalive interval for streams that connect from
// now on; 0 disables keepalives.
func (s *Server) SetKeepAlive(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepAlive = d
}

// Requests returns how many requests arrived for path (e.g. "/v2/apps"),
// counting rejected ones too.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// Subscribers returns the number of currently connected event streams.
func (s *Server) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// WaitSubscribers blocks until at least n event streams are connected or
// ctx is done.
func (s *Server) WaitSubscribers(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have, changed := len(s.clients), s.subsChanged
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fakemarathon: %d of %d subscribers: %w", have, n, ctx.Err())
		}
	}
}

// StreamConnects returns how many event stream connections were ever
// accepted.
func (s *Server) StreamConnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// EventFilters returns, for every event stream connection ever accepted and
// in order, the event_type values it asked for (nil for no filter).
func (s *Server) EventFilters() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.filters))
	for i, f := range s.filters {
		out[i] = append([]string(nil), f...)
	}
	return out
}
