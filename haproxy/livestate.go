package haproxy

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// HAProxy's own view of its servers: what its health checks say, which can differ from what
// Marathon's health checks say (a task Marathon reports healthy can fail HAProxy's check, from
// a different host, on a different port or path). It is read from the admin socket on demand
// and reused for a second, so a status page refreshed by many browsers costs HAProxy one
// `show stat` per second at most.

// LiveServer is one server as HAProxy's `show stat` reports it.
type LiveServer struct {
	Backend string
	Server  string
	// Status is HAProxy's status of the server: UP, DOWN, MAINT, DRAIN, NOLB, "no check"
	// (up, not checked), a transition such as "UP 1/3" (up, checks failing) or "DOWN 1/2"
	// (down, checks passing), or "MAINT (via b/s)" for a tracking server.
	Status string
	// CheckStatus is the last health check's result (L4OK, L4CON, L7STS, …), "" when no check
	// ran; CheckCode the L7 response code, CheckDesc what CheckStatus means ("Layer4
	// connection problem").
	CheckStatus string
	CheckCode   string
	CheckDesc   string
	// LastCheck is the last check's detail ("Connection refused", or the reason phrase of the
	// server's HTTP answer). It comes from the backend server: escape it wherever it is shown.
	LastCheck string
	Addr      string
	Weight    int
	Sessions  int
}

// liveTextLimit bounds the free-text fields taken from a stats row: LastCheck carries text a
// backend server chose.
const liveTextLimit = 200

// LiveBackend is one backend as HAProxy's `show stat` reports it (its BACKEND row).
type LiveBackend struct {
	Backend string
	// Requests is the backend's cumulative total since this HAProxy process started: HTTP
	// requests (req_tot) in HTTP mode, sessions (stot) in TCP mode, where there is no
	// req_tot. It restarts from 0 at every reload, as the new worker counts afresh.
	Requests uint64
}

// ParseLiveStats reads the server rows and the backend rows of `show stat` output (CSV with a
// "# pxname,…" header line); frontend and listener rows are skipped. It reads only the
// columns it needs rather than keeping every column of every row: a large configuration has
// tens of thousands of servers, read again every second while someone looks.
func ParseLiveStats(out string) ([]LiveServer, []LiveBackend, error) {
	out = strings.TrimLeft(out, "\n")
	if !strings.HasPrefix(out, "# pxname,") {
		return nil, nil, fmt.Errorf("show stat: no CSV header in %q", firstLine(out))
	}
	r := csv.NewReader(strings.NewReader(out[len("# "):]))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("show stat header: %w", err)
	}
	col := statColumns(header)
	if col.proxy < 0 || col.server < 0 || col.status < 0 {
		return nil, nil, fmt.Errorf("show stat: header %q lacks pxname, svname or status", firstLine(out))
	}
	var servers []LiveServer
	var backends []LiveBackend
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return servers, backends, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("show stat line %d: %w", line, err)
		}
		if s, ok := col.liveServer(rec); ok {
			servers = append(servers, s)
		} else if b, ok := col.liveBackend(rec); ok {
			backends = append(backends, b)
		}
	}
}

// statCols are the indexes of the `show stat` columns a LiveServer is made of, -1 for a
// column the header lacks.
type statCols struct {
	proxy, server, status, kind, checkStatus, checkCode, checkDesc, lastCheck, addr, weight, sessions int
	sessionsTotal, requestsTotal                                                                      int
}

func statColumns(header []string) statCols {
	c := statCols{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}
	at := map[string]*int{
		"pxname": &c.proxy, "svname": &c.server, "status": &c.status, "type": &c.kind,
		"check_status": &c.checkStatus, "check_code": &c.checkCode, "check_desc": &c.checkDesc,
		"last_chk": &c.lastCheck, "addr": &c.addr, "weight": &c.weight, "scur": &c.sessions,
		"stot": &c.sessionsTotal, "req_tot": &c.requestsTotal,
	}
	for i, name := range header {
		if p, ok := at[name]; ok && *p < 0 {
			*p = i
		}
	}
	return c
}

// liveServer turns a row into a LiveServer; ok is false for a row that is not a server.
func (c statCols) liveServer(rec []string) (LiveServer, bool) {
	field := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return rec[i]
	}
	name := field(c.server)
	if c.kind >= 0 {
		if field(c.kind) != "2" { // 0 frontend, 1 backend, 2 server, 3 listener
			return LiveServer{}, false
		}
	} else if name == "FRONTEND" || name == "BACKEND" || name == "" {
		return LiveServer{}, false
	}
	num := func(i int) int {
		n, _ := strconv.Atoi(field(i))
		return n
	}
	return LiveServer{
		Backend: field(c.proxy), Server: name, Status: field(c.status),
		// "* L4OK": HAProxy marks the result of a check that is running again.
		CheckStatus: strings.TrimPrefix(field(c.checkStatus), "* "),
		CheckCode:   field(c.checkCode),
		CheckDesc:   boundedText(field(c.checkDesc)),
		LastCheck:   boundedText(field(c.lastCheck)),
		Addr:        field(c.addr), Weight: num(c.weight), Sessions: num(c.sessions),
	}, true
}

// liveBackend turns a BACKEND row into a LiveBackend; ok is false for any other row.
func (c statCols) liveBackend(rec []string) (LiveBackend, bool) {
	field := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return rec[i]
	}
	if c.kind >= 0 && field(c.kind) != "1" || c.kind < 0 && field(c.server) != "BACKEND" {
		return LiveBackend{}, false
	}
	// req_tot is empty in TCP mode: the sessions are what was asked of the backend then.
	total, err := strconv.ParseUint(field(c.requestsTotal), 10, 64)
	if err != nil {
		total, _ = strconv.ParseUint(field(c.sessionsTotal), 10, 64)
	}
	return LiveBackend{Backend: field(c.proxy), Requests: total}, true
}

// boundedText cuts s to liveTextLimit bytes of valid UTF-8.
func boundedText(s string) string {
	if len(s) > liveTextLimit {
		s = s[:liveTextLimit]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// LiveServers is one reading of HAProxy's servers.
type LiveServers struct {
	// At is when the reading started.
	At time.Time
	// Err is why HAProxy could not be read; the servers are then unknown.
	Err      error
	byName   map[string]LiveServer
	backends map[string]LiveBackend
}

// Server returns backend/server as HAProxy reported it; ok is false when the reading failed
// or HAProxy has no such server (yet).
func (l *LiveServers) Server(backend, server string) (LiveServer, bool) {
	if l == nil {
		return LiveServer{}, false
	}
	s, ok := l.byName[backend+"/"+server]
	return s, ok
}

// Backend returns the backend's BACKEND row as HAProxy reported it; ok is false when the
// reading failed or HAProxy has no such backend.
func (l *LiveServers) Backend(name string) (LiveBackend, bool) {
	if l == nil {
		return LiveBackend{}, false
	}
	b, ok := l.backends[name]
	return b, ok
}

// Len is the number of servers read.
func (l *LiveServers) Len() int {
	if l == nil {
		return 0
	}
	return len(l.byName)
}

// DefaultLiveStateTTL is how long one reading of HAProxy's servers is reused.
const DefaultLiveStateTTL = time.Second

// defaultLiveReadTimeout bounds one `show stat`.
const defaultLiveReadTimeout = 5 * time.Second

// LiveStateConfig configures a LiveState.
type LiveStateConfig struct {
	// Read returns `show stat` output with the servers' rows (Applier.ShowServerStats).
	Read func(ctx context.Context) (string, error)
	// TTL is how long a reading is reused; default DefaultLiveStateTTL.
	TTL time.Duration
	// Timeout bounds one Read; default 5s.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// LiveState reads HAProxy's servers on demand and reuses a reading for TTL. Callers that ask
// while a reading is under way share it: there is at most one `show stat` at a time.
type LiveState struct {
	cfg LiveStateConfig

	mu     sync.Mutex
	last   *LiveServers
	flight *liveRead // the reading under way, nil when none
}

// liveRead is one reading under way; done is closed once res is set.
type liveRead struct {
	done    chan struct{}
	res     *LiveServers
	waiters int // callers waiting on it, for tests
}

// NewLiveState returns a LiveState over cfg.Read.
func NewLiveState(cfg LiveStateConfig) (*LiveState, error) {
	if cfg.Read == nil {
		return nil, errors.New("haproxy: LiveState needs a Read function")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultLiveStateTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultLiveReadTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &LiveState{cfg: cfg}, nil
}

// Servers returns a reading at most TTL old, reading HAProxy again when the last one is
// older. A failed reading is reused too, with its Err, and returned as the error. ctx bounds
// only this caller's wait: the reading itself runs to its own timeout for every caller
// sharing it.
func (l *LiveState) Servers(ctx context.Context) (*LiveServers, error) {
	l.mu.Lock()
	if l.last != nil && l.cfg.Now().Sub(l.last.At) < l.cfg.TTL {
		res := l.last
		l.mu.Unlock()
		return res, res.Err
	}
	f := l.flight
	if f == nil {
		f = &liveRead{done: make(chan struct{})}
		l.flight = f
		go l.read(context.WithoutCancel(ctx), f)
	}
	f.waiters++
	l.mu.Unlock()
	select {
	case <-f.done:
		return f.res, f.res.Err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for HAProxy's server states: %w", ctx.Err())
	}
}

// read runs one reading for every caller waiting on f.
func (l *LiveState) read(ctx context.Context, f *liveRead) {
	res := &LiveServers{At: l.cfg.Now()}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	out, err := l.cfg.Read(ctx)
	cancel()
	var servers []LiveServer
	var backends []LiveBackend
	if err == nil {
		servers, backends, err = ParseLiveStats(out)
	}
	if err != nil {
		res.Err = fmt.Errorf("reading HAProxy's server states: %w", err)
	} else {
		res.byName = make(map[string]LiveServer, len(servers))
		for _, s := range servers {
			res.byName[s.Backend+"/"+s.Server] = s
		}
		res.backends = make(map[string]LiveBackend, len(backends))
		for _, b := range backends {
			res.backends[b.Backend] = b
		}
	}
	l.mu.Lock()
	l.last, l.flight, f.res = res, nil, res
	l.mu.Unlock()
	close(f.done)
}

// ErrHAProxyNotRunning is returned by ShowServerStats before HAProxy has started.
var ErrHAProxyNotRunning = errors.New("HAProxy is not running")

// ShowServerStats returns the servers' and backends' rows of `show stat` from the running
// HAProxy, over the socket the Applier sends its runtime commands to.
func (a *Applier) ShowServerStats(ctx context.Context) (string, error) {
	if !a.hasProcess() {
		return "", ErrHAProxyNotRunning
	}
	// -1 6 -1: every proxy, its servers (type bit 4) and its BACKEND row (bit 2, the
	// request counters), every server.
	return a.runtimeClient(a.runningModel()).Exec(ctx, "show stat -1 6 -1")
}
