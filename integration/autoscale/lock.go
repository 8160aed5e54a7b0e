package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Leadership says whether this instance may scale now. Several lodestars with --autoscale
// on one cluster would fight (each scaling on its own samples); only the one holding the
// lock scales, the others sample and decide but do not write.
type Leadership interface {
	Leading() bool
}

// Term is implemented by a Leadership whose hold can end while a write is in flight: the
// Scaler writes under the context Term returns, which ends when the hold does, so that a
// write held up (a Marathon failing over, its next URL tried) is abandoned rather than sent
// after another instance took the lock.
type Term interface {
	Term(ctx context.Context) (context.Context, context.CancelFunc)
}

// Alone is the Leadership of an instance told it is the only autoscaler (no lock).
type Alone struct{}

// Leading is always true.
func (Alone) Leading() bool { return true }

// ZKLock is a ZooKeeper lock (an ephemeral sequential node under Path; the lowest holds
// it). The instance leads while its session holds the lock and is connected: on a
// disconnection it stops leading at once and starts over with a new session, so that when
// its session ends another instance takes over, never two at a time.
type ZKLock struct {
	servers []string
	path    string
	auth    string
	timeout time.Duration
	log     *slog.Logger

	leading atomic.Bool

	mu   sync.Mutex
	held chan struct{} // closed when the current hold ends; nil or closed while not leading
}

// LockConfig configures a ZKLock.
type LockConfig struct {
	// URL is zk://[user:password@]host:port[,host:port…]/path: the lock's znode.
	URL string
	// SessionTimeout is the ZooKeeper session timeout: how long after this instance dies
	// another takes over. Default 10s.
	SessionTimeout time.Duration
	Logger         *slog.Logger
}

// NewZKLock checks the URL; Run takes the lock.
func NewZKLock(cfg LockConfig) (*ZKLock, error) {
	servers, path, auth, err := parseZKURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &ZKLock{servers: servers, path: path, auth: auth, timeout: cfg.SessionTimeout, log: cfg.Logger}, nil
}

// parseZKURL parses zk://[user:password@]hosts/path; a host without a port gets 2181.
func parseZKURL(raw string) (servers []string, path, auth string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("bad ZooKeeper URL %q: %s; want zk://host1:2181,host2:2181/lodestar/autoscale", discovery.RedactZKURL(raw), why)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(raw), "zk://")
	if !ok {
		return nil, "", "", bad("it does not start with zk://")
	}
	hosts, p, ok := strings.Cut(rest, "/")
	if !ok || strings.Trim(p, "/") == "" {
		return nil, "", "", bad("no znode path after the hosts")
	}
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		auth, hosts = hosts[:at], hosts[at+1:]
		if user, _, _ := strings.Cut(auth, ":"); user == "" {
			return nil, "", "", bad("credentials without a user name")
		}
	}
	for h := range strings.SplitSeq(hosts, ",") {
		h = strings.TrimSpace(h)
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "2181")
		}
		if host, _, _ := net.SplitHostPort(h); host == "" || strings.ContainsAny(host, "/?#@ ") {
			return nil, "", "", bad(fmt.Sprintf("bad host %q", h))
		}
		servers = append(servers, h)
	}
	path = "/" + strings.Trim(p, "/")
	for part := range strings.SplitSeq(path[1:], "/") {
		if part == "" || part == "." || part == ".." {
			return nil, "", "", bad(fmt.Sprintf("znode path %q has an empty, . or .. component", path))
		}
	}
	return servers, path, auth, nil
}

// Leading reports whether this instance holds the lock now.
func (l *ZKLock) Leading() bool { return l.leading.Load() }

// setLeading starts or ends a hold; ending one ends the contexts of its writes.
func (l *ZKLock) setLeading(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case on && !l.leading.Load():
		l.held = make(chan struct{})
	case !on && l.leading.Load():
		close(l.held)
	}
	l.leading.Store(on)
}

// Term is Term: a context that ends with the current hold (at once when there is none).
func (l *ZKLock) Term(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	l.mu.Lock()
	held, on := l.held, l.leading.Load()
	l.mu.Unlock()
	if !on {
		cancel()
		return ctx, cancel
	}
	go func() {
		select {
		case <-held:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Run takes the lock and keeps it until ctx ends, starting over after a lost session.
func (l *ZKLock) Run(ctx context.Context) error {
	retry := Backoff{Base: 500 * time.Millisecond, Max: 10 * time.Second}
	for ctx.Err() == nil {
		err := l.hold(ctx)
		l.setLeading(false)
		if ctx.Err() != nil {
			break
		}
		wait := retry.Failed(time.Now())
		l.log.Warn("autoscale lock lost or not taken; trying again", "lock", l.path, "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

// hold runs one session: take the lock, then lead until the session is disconnected.
func (l *ZKLock) hold(ctx context.Context) error {
	lost := make(chan struct{})
	var lostOnce atomic.Bool
	onEvent := func(ev zk.Event) {
		if ev.Type == zk.EventSession && (ev.State == zk.StateDisconnected || ev.State == zk.StateExpired) {
			// Stop scaling at once: the session may end, and another instance take over.
			l.setLeading(false)
			if lostOnce.CompareAndSwap(false, true) {
				close(lost)
			}
		}
	}
	conn, _, err := zk.Connect(l.servers, l.timeout, zk.WithLogger(nopZKLogger{}), zk.WithEventCallback(onEvent))
	if err != nil {
		return fmt.Errorf("ZooKeeper %s: %w", strings.Join(l.servers, ","), err)
	}
	defer conn.Close() // ends the session: the lock node goes with it
	acl := zk.WorldACL(zk.PermAll)
	if l.auth != "" {
		if err := conn.AddAuth("digest", []byte(l.auth)); err != nil {
			return fmt.Errorf("ZooKeeper auth: %w", err)
		}
		acl = zk.AuthACL(zk.PermAll)
	}
	lock := zk.NewLock(conn, l.path, acl)
	locked := make(chan error, 1)
	go func() { locked <- lock.Lock() }()
	select {
	case <-ctx.Done():
		return nil
	case <-lost:
		return errors.New("ZooKeeper session lost while waiting for the lock")
	case err := <-locked:
		if err != nil {
			return fmt.Errorf("taking the lock %s: %w", l.path, err)
		}
	}
	// The lock recipe watches only the node before one's own: a holder whose node an operator
	// deletes would never hear of it while the next instance takes the lock. So the holder
	// watches its own node, and any event on it (deleted, changed, or the watch lost) ends
	// this session's hold.
	node, err := ownNode(conn, l.path)
	if err != nil {
		return err
	}
	exists, _, nodeEvents, err := conn.ExistsW(node)
	if err != nil {
		return fmt.Errorf("watching the lock node %s: %w", node, err)
	}
	if !exists {
		return fmt.Errorf("the lock node %s was deleted as it was taken", node)
	}
	l.setLeading(true)
	if lostOnce.Load() { // a disconnection between taking the lock and here
		l.setLeading(false)
		return errors.New("ZooKeeper session lost while taking the lock")
	}
	l.log.Info("holding the autoscale lock: this instance scales", "lock", l.path, "node", node)
	select {
	case <-ctx.Done():
		return nil
	case <-lost:
		return errors.New("ZooKeeper session disconnected while holding the lock")
	case ev := <-nodeEvents:
		l.setLeading(false)
		return fmt.Errorf("the lock node %s: %s (deleted by hand?)", node, ev.Type)
	}
}

// ownNode is the lock node of conn's session under path: the lowest it owns.
func ownNode(conn *zk.Conn, path string) (string, error) {
	children, _, err := conn.Children(path)
	if err != nil {
		return "", fmt.Errorf("listing the lock nodes under %s: %w", path, err)
	}
	best, bestSeq := "", ""
	for _, c := range children {
		ok, stat, err := conn.Exists(path + "/" + c)
		if err != nil {
			return "", fmt.Errorf("reading the lock node %s/%s: %w", path, c, err)
		}
		if !ok || stat.EphemeralOwner != conn.SessionID() {
			continue
		}
		// Sequential nodes end in a 10-digit sequence number.
		if seq := c[max(0, len(c)-10):]; best == "" || seq < bestSeq {
			best, bestSeq = path+"/"+c, seq
		}
	}
	if best == "" {
		return "", fmt.Errorf("no lock node of this session under %s (deleted by hand?)", path)
	}
	return best, nil
}

type nopZKLogger struct{}

func (nopZKLogger) Printf(string, ...any) {}
