// Package api is lodestar's HTTP API on gorilla/mux. Other packages mount their endpoints on
// Router; cmd wires the front ends in through the small interfaces of frontends.go
// (Server.SetFrontends), so this package never imports a front end.
//
// Endpoints (JSON unless noted; errors are {"error": "..."}):
//
//	GET  /healthz                    liveness and version
//	GET  /readyz                     readiness checks (503 while one fails)
//	GET  /metrics                    Prometheus metrics (text)
//	GET  /v1/apps                    the registry: every app with its tasks, and every source
//	GET  /v1/apps/{id}               one app (the id keeps its slashes: /v1/apps/shop/web):
//	                                 labels, ports, HAProxy labels as parsed, routes, tasks
//	                                 with eligibility and why, DNS names; 404 for unknown ids
//	GET  /v1/requests                every routed app's per-route cumulative request totals,
//	                                 from one reading of HAProxy (503 when it cannot be read)
//	GET  /v1/dns/records?name=N      every DNS record of a name (needs --dns-listen)
//	GET  /v1/stream                  the registry as a resumable stream (server-sent events;
//	                                 see discovery/relay), mounted by MountStream
//	POST /v1/resync                  full resync of every source
//	GET  /api/services               bamboo: every routing rule, by app id (needs --zk-rules,
//	                                 as do the next three)
//	POST /api/services               bamboo: create or replace a rule
//	PUT  /api/services/{id}          bamboo: create or replace the rule of an app
//	DELETE /api/services/{id}        bamboo: remove the rule of an app
//	GET  /api/state                  bamboo: the template data (apps and rules, from the
//	                                 registry snapshot)
//
// MountHAProxy adds /v1/haproxy/config, /v1/haproxy/status and marathon-lb's /_haproxy_* and
// /_mlb_signal/{hup,usr1}; MountMesosDNS adds mesos-dns's /v1/version, /v1/config,
// /v1/hosts/{host}, /v1/services/{service}, /v1/enumerate and /v1/axfr. The status page is
// served at /.
//
// Mutating requests (POST, PUT, DELETE, PATCH, and every /_mlb_signal/* whatever the method)
// need the credential of Config.Auth (--api-auth); with none configured they are served only
// while the API listens on loopback, and refused with 403 otherwise.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lodestar-lb/lodestar/discovery"
)

// DefaultListen is the API's address when Config.Listen is empty: loopback only, because the
// API can trigger resyncs and reloads.
const DefaultListen = "127.0.0.1:8090"

// DefaultShutdownTimeout is how long Run waits for requests in flight when its context ends,
// when Config.ShutdownTimeout is zero.
const DefaultShutdownTimeout = 5 * time.Second

// Config configures a Server.
type Config struct {
	// Listen is the TCP address to serve on, DefaultListen when empty. Port 0 picks a free
	// port; Addr reports it.
	Listen string
	// Logger receives request logs (debug level) and server errors; slog.Default() when nil.
	Logger *slog.Logger
	// Version is lodestar's version, reported by /healthz.
	Version string
	// ShutdownTimeout bounds the graceful shutdown; DefaultShutdownTimeout when zero.
	ShutdownTimeout time.Duration
	// Auth is the credential mutating requests need (ParseAuth builds it from --api-auth).
	// Without one they are served only while the API listens on loopback.
	Auth Auth
}

// Registry is what the API reads from the service registry. *discovery.Registry implements it.
type Registry interface {
	Snapshot() *discovery.Snapshot
	Sources() []discovery.SourceStatus
}

var _ Registry = (*discovery.Registry)(nil)

// Server is the HTTP API. Create it with New, mount extra handlers on Router, then call Run.
type Server struct {
	cfg    Config
	reg    Registry
	log    *slog.Logger
	router *mux.Router

	mu      sync.Mutex
	checks  map[string]func() error
	front   Frontends
	started bool
	addr    string

	// local says whether the API listens on loopback only: from Config.Listen until Serve
	// knows the bound address. Without Auth, mutating requests need it.
	local atomic.Bool

	ready chan struct{}
}

// New validates cfg and returns a Server with the built-in endpoints mounted. It does not
// listen yet: Run does.
func New(cfg Config, reg Registry) (*Server, error) {
	if reg == nil {
		return nil, errors.New("api: no registry given")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("api: listen address %q: %w (want host:port, e.g. %s or :0)", cfg.Listen, err, DefaultListen)
	}
	if cfg.ShutdownTimeout < 0 {
		return nil, fmt.Errorf("api: shutdown timeout %v is negative", cfg.ShutdownTimeout)
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if err := cfg.Auth.validate(); err != nil {
		return nil, fmt.Errorf("api: auth: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:    cfg,
		reg:    reg,
		log:    cfg.Logger.With("component", "api"),
		router: mux.NewRouter(),
		checks: map[string]func() error{},
		ready:  make(chan struct{}),
	}
	s.local.Store(isLoopbackHostPort(cfg.Listen))
	r := s.router
	// App ids and bamboo rule ids keep their slashes, and clients escape them (%2F): the
	// decoded path then holds "//", which path cleaning would answer with a redirect that
	// PUT and DELETE clients do not follow. No route here depends on cleaned paths.
	r.SkipClean(true)
	// Middlewares run only for matched routes; the 404 and 405 handlers are wrapped by hand so
	// that every request is counted and logged. Authentication runs inside instrument, so
	// refused requests are counted too.
	r.Use(s.instrument, s.authenticate)
	r.NotFoundHandler = s.instrumentAs("(not found)", http.HandlerFunc(notFound))
	r.MethodNotAllowedHandler = s.instrumentAs("(method not allowed)", http.HandlerFunc(methodNotAllowed))

	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/apps", s.apps).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/apps/{id:.+}", s.app).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/requests", s.requestTotals).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/dns/records", s.dnsRecords).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/resync", s.resync).Methods(http.MethodPost)
	r.Handle("/metrics", promhttp.Handler()).Methods(http.MethodGet, http.MethodHead)
	s.MountStatusPage()
	s.mountBamboo()
	return s, nil
}

// Router returns the router, for other packages to mount their handlers on. Every route
// gets request metrics and the debug request log.
func (s *Server) Router() *mux.Router { return s.router }

// AddReadyCheck registers a readiness check: /readyz answers 200 only while every check
// returns nil, and shows each failing check's error under its name. A check must be cheap and
// safe to call concurrently. Adding a name again replaces that check.
func (s *Server) AddReadyCheck(name string, check func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// Ready is closed once Run or Serve listens; Addr is valid from then on.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address Run or Serve listens on (with the real port when Listen asked for
// port 0), or "" before it listens.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run listens on Config.Listen and serves until ctx ends, then shuts down gracefully: it
// stops accepting, waits up to the shutdown timeout for requests in flight, and closes what is
// left. It returns nil after a clean shutdown, and an error when it cannot listen, serving
// fails, or requests had to be cut off.
func (s *Server) Run(ctx context.Context) error {
	if err := s.start(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w (is another process using that address? change the API listen address)",
			s.cfg.Listen, listenCause(err))
	}
	return s.serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (systemd socket activation, tests); it takes
// ln over and closes it. Whether mutating requests need no credential is decided from
// ln.Addr(): only a loopback address (or a unix socket) serves them without Config.Auth.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.start(); err != nil {
		ln.Close()
		return err
	}
	return s.serve(ctx, ln)
}

// start marks the server started; a Server serves once.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("api: Run or Serve called twice")
	}
	s.started = true
	return nil
}

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	srv := s.newHTTPServer(ctx, s.router)
	local := isLoopback(ln.Addr())
	s.local.Store(local)
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	close(s.ready)
	s.log.Info("API listening", "addr", ln.Addr().String(), "auth", s.cfg.Auth.String())
	if !local && !s.cfg.Auth.Enabled() {
		s.log.Warn("the API listens beyond loopback without --api-auth: POST, PUT, DELETE and /_mlb_signal/* are refused (403)",
			"addr", ln.Addr().String())
	}
	if err := s.runHTTP(ctx, srv, ln); err != nil {
		return err
	}
	s.log.Info("API stopped", "addr", ln.Addr().String())
	return nil
}

// newHTTPServer is an http.Server for h with the API's timeouts and log; its requests'
// contexts outlive ctx, so that a shutdown lets running requests finish.
func (s *Server) newHTTPServer(ctx context.Context, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// runHTTP serves srv on ln until ctx ends, then shuts it down: requests still running after
// ShutdownTimeout are cut off, and that is the error.
func (s *Server) runHTTP(ctx context.Context, srv *http.Server, ln net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("api: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-served // http.ErrServerClosed once Shutdown has begun
	if err != nil {
		srv.Close()
		return fmt.Errorf("api: shutdown of %s: requests still running after %v were cut off: %w", ln.Addr(), s.cfg.ShutdownTimeout, err)
	}
	return nil
}

// listenAddr is the bound address once serving, else the configured one.
func (s *Server) listenAddr() string {
	if a := s.Addr(); a != "" {
		return a
	}
	return s.cfg.Listen
}

// listenCause strips net.Listen's "listen tcp ADDR:" prefix, which repeats what the caller
// says, down to the cause ("address already in use"), keeping it in the chain for errors.Is.
func listenCause(err error) error {
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		return sys.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// healthz reports that the process is alive and serving.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Status  string `json:"status"`
		Version string `json:"version,omitempty"`
	}{"ok", s.cfg.Version})
}

// readyz runs every readiness check.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	checks := maps.Clone(s.checks)
	s.mu.Unlock()
	res := struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}{Ready: true, Checks: make(map[string]string, len(checks))}
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		err := checks[name]()
		switch {
		case err == nil:
			res.Checks[name] = "ok"
		case isDegraded(err):
			res.Checks[name] = "degraded: " + err.Error()
		default:
			res.Ready = false
			res.Checks[name] = err.Error()
		}
	}
	code := http.StatusOK
	if !res.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, res)
}

// apps serves the whole registry.
func (s *Server) apps(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, appsResponseOf(s.reg.Snapshot(), s.reg.Sources()))
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
}

// writeJSON writes v as indented JSON with the given status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{Error: "api: encoding the response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

// errorBody is every error response: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

// writeError writes {"error": msg} with the given status code. Handlers mounted by other
// packages should answer errors in the same shape.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

// WriteJSON writes v as JSON with the given status code and Content-Type application/json,
// for handlers mounted on Router by other packages.
func WriteJSON(w http.ResponseWriter, code int, v any) { writeJSON(w, code, v) }

// WriteError writes {"error": msg} with the given status code, the API's error shape.
func WriteError(w http.ResponseWriter, code int, msg string) { writeError(w, code, msg) }
