// Package marathon is the registry source for Marathon: a full sync of /v2/apps at start, after
// every reconnect and periodically, and the /v2/events stream applied strictly in order in
// between (task deltas without refetching; app changes by refetching that one app).
//
// Member handling and HTTP are lodestar's own rather than go-marathon v0.7.1's client: that
// client marks a member down on any error and revives it only from a /ping loop that runs
// until the member answers and cannot be stopped, and it knows nothing of contexts or of the
// Marathon leader. go-marathon's types are used for the REST payloads they describe
// (marathon.Info); the app payload is decoded by discovery.DecodeMarathonApps because those
// types predate Marathon 1.5 (no `networks`, `container.portMappings`, readiness results).
package marathon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	gomarathon "github.com/gambol99/go-marathon"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Config configures the Marathon source.
type Config struct {
	// URLs are the Marathon members, e.g. http://m1:8080. The leader is preferred.
	URLs []string
	// Username and Password enable HTTP basic auth.
	Username, Password string
	// CACertFile is a PEM bundle trusted (in addition to the system roots) for https members.
	CACertFile string
	// Resync is the period of full syncs between events (default 5 min).
	Resync time.Duration
	// IdleTimeout ends a stream that sent no byte, keepalives included, for this long (15 s).
	IdleTimeout time.Duration
	// LeaderCheck is how often the connected member is asked who leads (DefaultLeaderCheck,
	// 500 ms): the leader goes to the registry (Snapshot.Marathon, for leader-only proxies), and
	// a connection to a member that does not lead moves to the leader.
	LeaderCheck time.Duration
	// RequestTimeout bounds each REST request (30 s).
	RequestTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay (500 ms, 30 s); jitter is added.
	BackoffMin, BackoffMax time.Duration
	// MaxBody bounds a REST response body (32 MiB).
	MaxBody int64
	Logger  *slog.Logger
}

// Source streams Marathon into the registry. Create it with New.
type Source struct {
	cfg     Config
	members []*url.URL
	rest    *http.Client // REST requests, each bounded by RequestTimeout
	stream  *http.Client // the event stream, bounded by the idle watchdog instead
	log     *slog.Logger
	resync  chan struct{}

	// known holds the ids of the apps the registry has from us. Only the Run goroutine uses it:
	// it tells an event for a new app (refetch it first) from one for a known app without
	// racing the registry's queue.
	known map[string]bool
	// gone holds the ids of apps a refetch found deleted since the last full sync: events of
	// their tasks, which keep reporting while Mesos kills them, are dropped without fetching
	// the app again for each. Only the Run goroutine uses it.
	gone map[string]bool
	// connected is the member the stream is on, for status ("" when none).
	connected atomic.Pointer[string]
	// sentLeader is the leader sent to the registry last, nil before any. Only the Run
	// goroutine uses it.
	sentLeader *discovery.SetMarathonLeader
	// resolvedAt is when the leader's host name was last looked up. Only the Run goroutine
	// uses it.
	resolvedAt time.Time
	// lookupIP resolves the leader's host name (net.DefaultResolver's; tests replace it).
	lookupIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
	// namedLeader is the "host:port" a member's /v2/leader named last. Only the Run goroutine
	// uses it (redirects are followed inside its requests).
	namedLeader string
	// leaderless is set by choose when no member served /v2/leader but one served /v2/apps:
	// the session then does not ask who leads. Only the Run goroutine uses it.
	leaderless bool
}

// New validates cfg and returns a Source.
func New(cfg Config) (*Source, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("marathon: no URL given (--marathon http://host:8080[,http://host2:8080])")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Resync, 5*time.Minute)
	def(&cfg.IdleTimeout, 15*time.Second)
	def(&cfg.LeaderCheck, DefaultLeaderCheck)
	def(&cfg.RequestTimeout, 30*time.Second)
	def(&cfg.BackoffMin, 500*time.Millisecond)
	def(&cfg.BackoffMax, 30*time.Second)
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 32 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Source{
		cfg: cfg, log: cfg.Logger.With("source", "marathon"), resync: make(chan struct{}, 1),
		known: map[string]bool{}, gone: map[string]bool{}, lookupIP: net.DefaultResolver.LookupNetIP,
	}
	for _, raw := range cfg.URLs {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(strings.TrimRight(raw, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("marathon: bad URL %q: want http://host:port or https://host:port", raw)
		}
		s.members = append(s.members, u)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = cfg.RequestTimeout
	if cfg.CACertFile != "" {
		conf, err := discovery.TLSClientConfig(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("marathon: %w", err)
		}
		tr.TLSClientConfig = conf
	}
	s.rest = &http.Client{Transport: tr, CheckRedirect: s.checkRedirect}
	s.stream = &http.Client{Transport: tr, CheckRedirect: s.checkRedirect}
	return s, nil
}

// Name is the source's name in logs, metrics and status.
func (s *Source) Name() string { return "marathon" }

// Resync asks for a full sync as soon as the current event is applied (discovery.Resyncer).
// It never blocks and returns nil.
func (s *Source) Resync(context.Context) error {
	select {
	case s.resync <- struct{}{}:
	default:
	}
	return nil
}

var _ discovery.Resyncer = (*Source)(nil)

// Connected returns the member the event stream is on, or "" while disconnected.
func (s *Source) Connected() string {
	if p := s.connected.Load(); p != nil {
		return *p
	}
	return ""
}

// Run keeps the registry in step with Marathon until ctx ends. Errors are logged and retried
// with capped exponential backoff and jitter; Run returns nil when ctx ends.
func (s *Source) Run(ctx context.Context, sink discovery.Sink) error {
	attempt := 0
	for {
		member, err := s.choose(ctx)
		if err == nil {
			var synced bool
			synced, err = s.session(ctx, member, sink)
			if synced {
				attempt = 0
			}
		}
		s.connected.Store(nil)
		if ctx.Err() != nil {
			return nil
		}
		var sw *errSwitch
		if errors.As(err, &sw) {
			s.log.Info("switching Marathon member", "from", member.String(), "to", sw.to, "why", sw.why)
			reconnects.WithLabelValues("leader").Inc()
			continue
		}
		sink.ReportSync(s.Name(), err)
		reconnects.WithLabelValues(reason(err)).Inc()
		delay := s.backoff(attempt)
		attempt++
		if member == nil {
			s.log.Warn("no Marathon member reachable; keeping the last good state and retrying",
				"err", err, "retry_in", delay.Round(time.Millisecond))
		} else {
			s.log.Warn("Marathon connection lost; keeping the last good state and reconnecting",
				"member", member.String(), "err", err, "retry_in", delay.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// backoff is min(BackoffMax, BackoffMin·2^attempt) scaled by a random factor in [0.5, 1):
// capped exponential with jitter, so a fleet of lodestars does not reconnect in lockstep.
func (s *Source) backoff(attempt int) time.Duration {
	d := s.cfg.BackoffMax
	if attempt < 30 {
		d = min(s.cfg.BackoffMax, s.cfg.BackoffMin<<attempt)
	}
	return time.Duration(float64(d) * (0.5 + rand.Float64()/2))
}

// errSwitch ends a healthy session to move to a better member (the leader).
type errSwitch struct{ to, why string }

func (e *errSwitch) Error() string { return "switching to " + e.to + ": " + e.why }

// errIdle is returned when the stream sent nothing for IdleTimeout.
var errIdle = errors.New("event stream idle")

func reason(err error) string {
	var ue *url.Error
	switch {
	case errors.Is(err, errIdle):
		return "idle"
	case errors.Is(err, errEventTooLarge), errors.Is(err, errEventTooSlow):
		return "event_limit"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &ue):
		return "network"
	}
	return "error"
}

// choose picks the member to use: the leader when some member names it and it answers, else
// the first member that answers at all. When no member serves /v2/leader and some refuse it
// with a 4xx (a proxy in front of Marathon that passes only /v2/apps and /v2/events, a very old
// Marathon), it is the first of those that answers /v2/apps, and the session then asks nobody
// who leads (s.leaderless).
func (s *Source) choose(ctx context.Context) (*url.URL, error) {
	var errs []error
	var hidden []*url.URL // members that answer HTTP but refuse /v2/leader (4xx)
	for _, m := range s.members {
		leader, err := s.leaderOf(ctx, m)
		if err != nil {
			errs = append(errs, err)
			var se *statusError
			if errors.As(err, &se) && se.code/100 == 4 {
				hidden = append(hidden, m)
			}
			continue
		}
		s.leaderless = false
		if lm := s.memberFor(leader); lm != nil && lm != m {
			if _, err := s.leaderOf(ctx, lm); err == nil {
				return lm, nil
			}
		}
		return m, nil
	}
	// A member that is down or unavailable (5xx: no leader elected) would not serve /v2/apps
	// either; one that refuses only /v2/leader (a proxy passing /v2/apps and /v2/events) may.
	for _, m := range hidden {
		if _, err := s.get(ctx, m, "/v2/apps"); err != nil {
			errs = append(errs, err)
			continue
		}
		s.leaderless = true
		s.log.Debug("no Marathon member serves /v2/leader; using the first member that serves /v2/apps",
			"member", m.String())
		return m, nil
	}
	return nil, fmt.Errorf("no Marathon member answers: %w", errors.Join(errs...))
}

// memberFor maps a leader "host:port" to a configured member, or nil.
func (s *Source) memberFor(hostport string) *url.URL {
	for _, m := range s.members {
		if strings.EqualFold(m.Host, hostport) {
			return m
		}
	}
	return nil
}

// leaderOf asks member m who leads (GET /v2/leader).
func (s *Source) leaderOf(ctx context.Context, m *url.URL) (string, error) {
	var l struct {
		Leader string `json:"leader"`
	}
	body, err := s.get(ctx, m, "/v2/leader")
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(body, &l); err != nil {
		return "", fmt.Errorf("%s/v2/leader: %w", m, err)
	}
	if l.Leader != "" {
		s.namedLeader = l.Leader
	}
	return l.Leader, nil
}

// info reads /v2/info into go-marathon's type, for the log line that says where we are.
func (s *Source) info(ctx context.Context, m *url.URL) (*gomarathon.Info, error) {
	body, err := s.get(ctx, m, "/v2/info")
	if err != nil {
		return nil, err
	}
	var info gomarathon.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("%s/v2/info: %w", m, err)
	}
	return &info, nil
}

// statusError is a non-2xx answer.
type statusError struct {
	url  string
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", e.url, e.code, strings.TrimSpace(e.body))
}

// get performs one REST GET against member m and returns the body, bounded by MaxBody.
func (s *Source) get(ctx context.Context, m *url.URL, pathAndQuery string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	target := m.String() + pathAndQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	s.authorize(req)
	req.Header.Set("Accept", "application/json")
	resp, err := s.rest.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", target, err)
	}
	if int64(len(body)) > s.cfg.MaxBody {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes (raise --marathon-max-body if your cluster is that big)", target, s.cfg.MaxBody)
	}
	if resp.StatusCode/100 != 2 {
		if len(body) > 200 {
			body = body[:200]
		}
		return nil, &statusError{url: answeredBy(target, resp), code: resp.StatusCode, body: string(body)}
	}
	return body, nil
}

// checkRedirect follows up to 10 redirects, as Go's default does, and keeps the credentials
// on a redirect to a configured member or to the leader a member named. Marathon 1.7+ members
// that do not lead redirect /v2/events to the leader (302), and Go drops the Authorization
// header on a redirect to another host. Never over a downgrade from https to http.
func (s *Source) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Scheme != via[0].URL.Scheme && req.URL.Scheme != "https" {
		return nil
	}
	if s.memberFor(req.URL.Host) != nil || (s.namedLeader != "" && strings.EqualFold(req.URL.Host, s.namedLeader)) {
		s.authorize(req)
	}
	return nil
}

func (s *Source) authorize(req *http.Request) {
	if s.cfg.Username != "" || s.cfg.Password != "" {
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	}
}
