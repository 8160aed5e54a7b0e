package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Defaults of Config.
const (
	DefaultIdleTimeout  = 3 * DefaultKeepAlive
	DefaultMaxEventSize = 64 << 20
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
)

// SourceName is the follower's name in the registry's sources, metrics and logs.
const SourceName = "relay"

// Config configures a Follower.
type Config struct {
	// URLs are the hubs' API base URLs (http://hub1:8090), tried in turn.
	URLs []string
	// Token, or User and Password, are sent to the hubs (Authorization: Bearer, or basic).
	Token          string
	User, Password string
	// CACertFile is a PEM file of CAs trusted for https hubs; the system's when empty.
	CACertFile string
	// IdleTimeout: a stream that sends nothing, keepalives included, for this long is dropped.
	IdleTimeout time.Duration
	// MaxEventSize bounds one event (a snapshot is one event: the whole registry).
	MaxEventSize int
	// MinBackoff and MaxBackoff bound the wait between rounds of failed connects.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Follower is a discovery.Source that follows a hub's GET /v1/stream: it fails over between
// hubs, resumes from the last version it applied when it reconnects to the same hub instance,
// and keeps its registry as it was while no hub is reachable.
type Follower struct {
	cfg    Config
	urls   []*url.URL
	client *http.Client
	log    *slog.Logger

	mu        sync.Mutex
	hub       string // the hub instance whose version we hold; "" forces a snapshot
	version   uint64
	appliedAt time.Time
	following string // the URL of the hub followed now, "" when none
	lastErr   error  // why no hub is followed, after a whole round failed
	synced    bool
	cancel    context.CancelFunc // ends the current stream
}

// New validates cfg and returns a Follower.
func New(cfg Config) (*Follower, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("relay: no hub URL given")
	}
	f := &Follower{cfg: cfg}
	for _, raw := range cfg.URLs {
		u, err := streamURL(raw)
		if err != nil {
			return nil, err
		}
		f.urls = append(f.urls, u)
	}
	if f.cfg.Token != "" && f.cfg.User != "" {
		return nil, errors.New("relay: give a token or a user and password, not both")
	}
	if f.cfg.User == "" && f.cfg.Password != "" {
		return nil, errors.New("relay: a password without a user")
	}
	if f.cfg.IdleTimeout <= 0 {
		f.cfg.IdleTimeout = DefaultIdleTimeout
	}
	if f.cfg.MaxEventSize <= 0 {
		f.cfg.MaxEventSize = DefaultMaxEventSize
	}
	if f.cfg.MinBackoff <= 0 {
		f.cfg.MinBackoff = DefaultMinBackoff
	}
	if f.cfg.MaxBackoff < f.cfg.MinBackoff {
		f.cfg.MaxBackoff = max(DefaultMaxBackoff, f.cfg.MinBackoff)
	}
	if f.cfg.Logger == nil {
		f.cfg.Logger = slog.Default()
	}
	f.log = f.cfg.Logger.With("source", SourceName)
	tr := f.cfg.Transport
	if tr == nil {
		var err error
		if tr, err = transport(cfg.CACertFile); err != nil {
			return nil, err
		}
	}
	// No overall timeout: a stream lasts as long as the hub. The idle watchdog bounds silence.
	f.client = &http.Client{Transport: tr}
	return f, nil
}

// streamURL turns a hub's base URL into its stream's URL, refusing credentials in it (they
// would end up in logs; --registry-auth carries them).
func streamURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("relay: hub URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("relay: hub URL %q: want http:// or https://", raw)
	case u.Host == "":
		return nil, fmt.Errorf("relay: hub URL %q has no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("relay: hub URL %s holds credentials: give them with the auth option instead", u.Redacted())
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/stream"
	}
	return u, nil
}

func transport(caFile string) (http.RoundTripper, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 10 * time.Second
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("relay: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("relay: CA file %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}

// Name implements discovery.Source.
func (f *Follower) Name() string { return SourceName }

// Resync drops the version held and reconnects: the hub sends a whole snapshot.
func (f *Follower) Resync() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hub, f.version = "", 0
	if f.cancel != nil {
		f.cancel()
	}
}

// Stale returns nil while a hub is followed (or before the first sync, which readiness
// covers), else why none is and what is served meanwhile.
func (f *Follower) Stale() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.following != "" || !f.synced || f.lastErr == nil {
		return nil
	}
	return fmt.Errorf("no registry hub reachable (%v): serving the last state, version %d of hub %s, applied %s ago",
		f.lastErr, f.version, f.hub, time.Since(f.appliedAt).Round(time.Second))
}

// Run follows the hubs until ctx ends. A hub whose stream ends is asked again after the
// shortest backoff (it may resume); a hub that cannot be reached, or whose stream carried
// something wrong, passes the turn to the next; after a round in which none could be followed,
// the follower waits (backoff) and says so in its sync status.
func (f *Follower) Run(ctx context.Context, sink discovery.Sink) error {
	bo := newBackoff(f.cfg.MinBackoff, f.cfg.MaxBackoff)
	i, failed := 0, 0
	var errs []error
	// quiet: every hub has been reported unreachable; further failures are logged at debug
	// level until a hub answers (the sync status keeps saying why).
	quiet := false
	for ctx.Err() == nil {
		u := f.urls[i]
		answered, err := f.follow(ctx, u, sink)
		if ctx.Err() != nil {
			return nil
		}
		f.setFollowing("")
		if answered && !errors.Is(err, errBadStream) {
			f.log.Warn("registry hub stream ended; reconnecting", "hub", u.Redacted(), "err", err)
			failed, errs, quiet = 0, nil, false
			bo.reset()
			if !sleep(ctx, f.cfg.MinBackoff) {
				return nil
			}
			continue
		}
		level := slog.LevelWarn
		if quiet {
			level = slog.LevelDebug
		}
		f.log.Log(ctx, level, "registry hub unreachable or its stream unusable; trying the next", "hub", u.Redacted(), "err", err)
		connects.WithLabelValues("failed").Inc()
		errs = append(errs, fmt.Errorf("%s: %w", u.Redacted(), err))
		i, failed = (i+1)%len(f.urls), failed+1
		if failed < len(f.urls) {
			continue
		}
		all := errors.Join(errs...)
		f.mu.Lock()
		f.lastErr = all
		f.mu.Unlock()
		connected.Set(0)
		if f.isSynced() {
			sink.ReportSync(SourceName, fmt.Errorf("no registry hub reachable, serving the last state: %w", all))
		} else {
			sink.ReportSync(SourceName, fmt.Errorf("no registry hub reachable yet: %w", all))
		}
		failed, errs, quiet = 0, nil, true
		if !sleep(ctx, bo.next()) {
			return nil
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (f *Follower) setFollowing(u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.following = u
	if u != "" {
		f.lastErr = nil
	}
}

func (f *Follower) isSynced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

// errBadStream marks a stream that carried something this replica cannot apply: the next
// hub gets the turn rather than this one again.
var errBadStream = errors.New("unusable registry stream")

// errIdle ends a stream that has been silent for longer than the idle timeout.
var errIdle = errors.New("the hub sent nothing, keepalives included, within the idle timeout")

// follow reads one stream until it ends. answered says whether the hub answered with a stream.
func (f *Follower) follow(ctx context.Context, u *url.URL, sink discovery.Sink) (answered bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	f.mu.Lock()
	f.cancel = func() { cancel(errors.New("resync asked")) }
	hub, version := f.hub, f.version
	f.mu.Unlock()

	resp, err := f.open(ctx, u, hub, version)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	// The hub answered: it is followed from now on, even when it has nothing to send yet (a
	// replica that resumes holding the hub's current version gets nothing until it changes).
	// A replica that holds a version is synced again; one that holds none waits for the
	// snapshot.
	f.setFollowing(u.String())
	connected.Set(1)
	if hub != "" {
		sink.ReportSync(SourceName, nil)
	}
	if hub != "" {
		f.log.Info("following registry hub, resuming", "hub", u.Redacted(), "from", eventID(hub, version))
	} else {
		f.log.Info("following registry hub, from a snapshot", "hub", u.Redacted())
	}
	idle := time.AfterFunc(f.cfg.IdleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()
	r := newSSEReader(resp.Body, f.cfg.MaxEventSize, func() { idle.Reset(f.cfg.IdleTimeout) })
	for first := true; ; first = false {
		ev, err := r.next()
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				err = cause
			}
			if errors.Is(err, errEventTooLarge) {
				// The event is lost: only a snapshot can make up for it.
				f.forget()
				err = fmt.Errorf("%w: %w (raise the replica's event size limit)", errBadStream, err)
			}
			return true, err
		}
		c, err := decodeEvent(ev.Type, ev.Data)
		if err == nil {
			err = f.apply(ctx, sink, c, first)
		}
		if err != nil {
			// Whatever comes next on this stream cannot be trusted to follow: start over.
			f.forget()
			if ctx.Err() == nil {
				err = fmt.Errorf("%w: %w", errBadStream, err)
			}
			return true, err
		}
	}
}

// open starts a stream, resuming from version of hub when there is one.
func (f *Follower) open(ctx context.Context, u *url.URL, hub string, version uint64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if hub != "" {
		req.Header.Set("Last-Event-ID", eventID(hub, version))
	}
	switch {
	case f.cfg.Token != "":
		req.Header.Set("Authorization", "Bearer "+f.cfg.Token)
	case f.cfg.User != "":
		req.SetBasicAuth(f.cfg.User, f.cfg.Password)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the caller names the hub already
		}
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: status %d, content type %q: %s (is it a lodestar hub?)",
			u.Redacted(), resp.StatusCode, ct, strings.TrimSpace(truncate(string(body))))
	}
	return resp, nil
}

// apply sends one change to the registry after checking that it follows what is held: a
// delta must start at the version held, of the same hub instance.
func (f *Follower) apply(ctx context.Context, sink discovery.Sink, c *change, first bool) error {
	f.mu.Lock()
	hub, version := f.hub, f.version
	f.mu.Unlock()
	if !c.Snapshot && (c.Hub != hub || c.From != version) {
		return fmt.Errorf("a delta from version %d of hub %s does not follow version %d of hub %s held here",
			c.From, c.Hub, version, hub)
	}
	for _, err := range c.AppErrors {
		rejectedApps.Inc()
		f.log.Warn("app from the registry hub refused; the last good version of it stays", "err", err)
	}
	if err := sink.Send(ctx, c.Mirror); err != nil {
		return err
	}
	if !c.Snapshot && !c.Time.IsZero() { // a snapshot's version may be old: no measure of delay
		lagSeconds.Observe(max(time.Since(c.Time), 0).Seconds())
	}
	f.mu.Lock()
	f.hub, f.version, f.appliedAt = c.Hub, c.Version, time.Now()
	f.synced = true
	f.mu.Unlock()
	kind := EventDelta
	if c.Snapshot {
		kind = EventSnapshot
	}
	received.WithLabelValues(kind).Inc()
	if first {
		outcome := "resumed"
		if c.Snapshot {
			outcome = "snapshot"
		}
		connects.WithLabelValues(outcome).Inc()
	}
	if c.Snapshot {
		sink.ReportSync(SourceName, nil)
	}
	return nil
}

// forget drops the version held: the next stream starts with a snapshot.
func (f *Follower) forget() {
	f.mu.Lock()
	f.hub, f.version = "", 0
	f.mu.Unlock()
}
