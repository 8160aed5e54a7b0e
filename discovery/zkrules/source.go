// Package zkrules keeps bamboo-style per-app routing rules in ZooKeeper: it is the registry
// source that watches them and the store the API writes them to.
//
// A rule for app id /grp/app lives at <path>/<url.QueryEscape("/grp/app")> (so
// <path>/%2Fgrp%2Fapp), as bamboo stores it: the node's data is
// {"version":"2","config":{"Acl":"hdr(host) -i x"}}, or, in bamboo's older form, the bare ACL
// text. Both are read; Put always writes version 2. A rule replaces the vhost ACL of its app.
//
// Every lodestar instance runs a Source on the same path: Run watches the path's children and
// each child's data, and sends the whole rule set to the registry (discovery.ReplaceRules)
// whenever it changes, so a rule written through one instance's API reaches every instance's
// HAProxy. A node that holds no usable rule is logged and left out; the others stay. While
// ZooKeeper is unreachable the registry keeps the last rules and the failure is reported
// (discovery.Sink.ReportSync); on reconnection everything is read again.
package zkrules

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Config configures a Source.
type Config struct {
	// URL is zk://[user:password@]host1:2181,host2:2181/path: the ZooKeeper servers and the
	// znode whose children are the rules. Credentials enable ZooKeeper digest
	// authentication.
	URL string
	// SessionTimeout is the ZooKeeper session timeout asked for (default 10 s).
	SessionTimeout time.Duration
	// ConnectWait bounds how long List, Put and Delete keep trying while ZooKeeper cannot be
	// reached (default 10 s); their context may end the wait sooner.
	ConnectWait time.Duration
	// Logger receives the source's log (default slog.Default()).
	Logger *slog.Logger
}

// Defaults for Config.
const (
	DefaultSessionTimeout = 10 * time.Second
	DefaultConnectWait    = 10 * time.Second
)

// Source watches the rules in ZooKeeper (Run) and writes them (List, Put, Delete). Run and
// the writer methods share one ZooKeeper connection, opened on first use. Create it with
// New.
type Source struct {
	target      target
	log         *slog.Logger
	sess        *session
	connectWait time.Duration

	// rules is the set Run last read, by app id; never mutated once stored.
	rules atomic.Pointer[map[string]discovery.ServiceRule]
	// watches counts the ZooKeeper watches Run has armed and not yet seen fire.
	watches atomic.Int64
	// resync asks Run to read every rule again (Resync); a pending request absorbs the next.
	resync chan struct{}
}

// New validates cfg and returns a Source. It does not connect.
func New(cfg Config) (*Source, error) {
	if cfg.URL == "" {
		return nil, errors.New("zkrules: no ZooKeeper URL; want zk://host1:2181,host2:2181/lodestar/services")
	}
	t, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("zkrules: %w", err)
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.ConnectWait <= 0 {
		cfg.ConnectWait = DefaultConnectWait
	}
	log := cmp.Or(cfg.Logger, slog.Default()).With("source", "zkrules")
	return &Source{target: t, log: log, sess: newSession(t, cfg.SessionTimeout, log), connectWait: cfg.ConnectWait,
		resync: make(chan struct{}, 1)}, nil
}

// Name is the source's name in logs, metrics and status.
func (s *Source) Name() string { return "zkrules" }

// Path returns the znode that holds the rules.
func (s *Source) Path() string { return s.target.path }

// Rules returns the rule set Run read last, by app id (nil before the first read). The map
// is a copy.
func (s *Source) Rules() map[string]discovery.ServiceRule {
	if p := s.rules.Load(); p != nil {
		return maps.Clone(*p)
	}
	return nil
}

// Resync asks Run to read every rule again now, whatever the watches say, and send the set to
// the registry (discovery.Resyncer). It never blocks and returns nil.
func (s *Source) Resync(context.Context) error {
	select {
	case s.resync <- struct{}{}:
	default:
	}
	return nil
}

var _ discovery.Resyncer = (*Source)(nil)

// Close closes the ZooKeeper connection. Run closes it when it returns; call Close when the
// writer methods were used without Run, or after it. A later call opens a new connection.
func (s *Source) Close() error {
	s.sess.close()
	return nil
}

// Run watches the rules and sends them to sink until ctx ends, and then returns nil. It
// creates the path (with its parents) if it is missing. Failures are reported to sink and
// retried; the registry keeps the last rules meanwhile. Run is called once at a time.
func (s *Source) Run(ctx context.Context, sink discovery.Sink) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Closing the connection when ctx ends fails a ZooKeeper call in flight at once, so Run
	// returns promptly even while ZooKeeper does not answer.
	stop := context.AfterFunc(ctx, s.sess.close)
	defer func() {
		cancel()
		stop()
		s.sess.close()
		wg.Wait()
	}()
	w := &watcher{
		src:   s,
		ctx:   ctx,
		wg:    &wg,
		fired: make(chan fired, 16),
		nodes: map[string]*node{},
	}
	h := health{src: s, sink: sink}
	var (
		full     = true // read every node again
		sessions uint64 // sessions seen, to tell a reconnection
		backoff  time.Duration
		retry    = time.NewTimer(time.Hour)
	)
	retry.Stop()
	defer retry.Stop()
	for {
		// select picks at random among ready cases, and ending ctx closes the connection,
		// which fires every watch: without this check Run could act on those events, or a
		// retry, and open a new session on its way out.
		if ctx.Err() != nil {
			return nil
		}
		if full {
			retry.Stop()
			if err := w.sync(true); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				h.fail(err, len(w.sent))
				backoff = min(max(2*backoff, 250*time.Millisecond), 5*time.Second)
				retry.Reset(backoff)
			} else {
				full, backoff = false, 0
				if err := w.publish(sink); err != nil {
					return nil // only a cancelled ctx fails Send
				}
				h.ok(len(w.sent))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case f := <-w.fired:
			if ctx.Err() != nil {
				return nil
			}
			if err := w.handle(f); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				h.fail(err, len(w.sent))
				full = true
				continue
			}
			if err := w.publish(sink); err != nil {
				return nil
			}
		case <-s.sess.changed:
			up, n, down := s.sess.status()
			if n != sessions {
				// A new or re-established session: read everything again, whatever the
				// watches report.
				sessions, full = n, true
			} else if !up && down != nil {
				h.fail(down, len(w.sent))
			}
		case <-retry.C:
			full = true
		case <-s.resync:
			full = true
		}
	}
}

// health reports Run's state to the sink and logs its changes once each.
type health struct {
	src  *Source
	sink discovery.Sink
	// state is 0 before the first outcome, 1 while healthy, -1 while failing.
	state int
}

func (h *health) fail(err error, rules int) {
	err = fmt.Errorf("ZooKeeper %s: %w", h.src.target.where(), err)
	h.sink.ReportSync(h.src.Name(), err)
	if h.state >= 0 {
		h.src.log.Warn("cannot read the routing rules in ZooKeeper; keeping the last ones, retrying", "rules", rules, "err", err)
	} else {
		h.src.log.Debug("ZooKeeper still failing", "err", err)
	}
	h.state = -1
}

func (h *health) ok(rules int) {
	h.sink.ReportSync(h.src.Name(), nil)
	switch h.state {
	case 0:
		h.src.log.Info("watching the routing rules in ZooKeeper", "zk", h.src.target.where(), "rules", rules)
	case -1:
		h.src.log.Info("ZooKeeper readable again; routing rules resynced", "zk", h.src.target.where(), "rules", rules)
	}
	h.state = 1
}

// watcher is Run's view of the rules path. Only Run's goroutine uses it.
//
// Every armed ZooKeeper watch gets a token, and a goroutine that forwards its one event to
// fired with that token. A node (or the children list) holds the token of its armed watch;
// only an event with that token re-reads and re-arms, and a read re-arms only where no watch
// is armed. So every watch is re-armed exactly once after it fires, and a re-read after a
// reconnection (when go-zookeeper restores the watches itself) adds none: no pile-up.
type watcher struct {
	src   *Source
	ctx   context.Context
	wg    *sync.WaitGroup
	fired chan fired

	tokens   uint64
	children uint64 // token of the armed children watch, 0 when none
	nodes    map[string]*node

	sent map[string]discovery.ServiceRule // the set last sent, nil before the first
}

// node is one child of the rules path.
type node struct {
	watch uint64 // token of the armed data watch, 0 when none
	rule  discovery.ServiceRule
	err   error // why the data is no rule; nil when rule is valid
}

// fired is a watch's event; name is the child, "" for the children watch.
type fired struct {
	name  string
	token uint64
	ev    zk.Event
}

// arm forwards the event of watch ch to w.fired and returns the watch's token.
func (w *watcher) arm(name string, ch <-chan zk.Event) uint64 {
	w.tokens++
	token := w.tokens
	w.src.watches.Add(1)
	armedWatches.Inc()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() {
			w.src.watches.Add(-1)
			armedWatches.Dec()
		}()
		select {
		case ev := <-ch:
			select {
			case w.fired <- fired{name, token, ev}:
			case <-w.ctx.Done():
			}
		case <-w.ctx.Done():
		}
	}()
	return token
}

// handle re-reads what a fired watch names, if that watch is the current one.
func (w *watcher) handle(f fired) error {
	if f.name == "" {
		if f.token != w.children {
			return nil
		}
		w.children = 0
		watchEvents.WithLabelValues("children", eventName(f.ev)).Inc()
		return w.sync(false)
	}
	n := w.nodes[f.name]
	if n == nil || n.watch != f.token {
		return nil // a watch replaced since, or a node gone since
	}
	n.watch = 0
	watchEvents.WithLabelValues("data", eventName(f.ev)).Inc()
	conn, err := w.src.sess.ready(w.ctx)
	if err != nil {
		return err
	}
	return w.read(conn, f.name)
}

func eventName(ev zk.Event) string {
	switch ev.Type {
	case zk.EventNodeCreated:
		return "created"
	case zk.EventNodeDeleted:
		return "deleted"
	case zk.EventNodeDataChanged:
		return "data_changed"
	case zk.EventNodeChildrenChanged:
		return "children_changed"
	case zk.EventNotWatching:
		return "not_watching"
	}
	return "other"
}

// sync lists the children (creating the path if it is missing) and reads the new ones, or
// every one when all is set. Children no longer listed are dropped.
func (w *watcher) sync(all bool) error {
	conn, err := w.src.sess.ready(w.ctx)
	if err != nil {
		return err
	}
	path := w.src.target.path
	children, err := w.list(conn)
	if errors.Is(err, zk.ErrNoNode) {
		if err := ensurePath(conn, path); err != nil {
			return err
		}
		children, err = w.list(conn)
	}
	if err != nil {
		return fmt.Errorf("listing the rules: %w", err)
	}
	for name := range w.nodes {
		if !slices.Contains(children, name) {
			delete(w.nodes, name)
		}
	}
	for _, name := range children {
		if all || w.nodes[name] == nil {
			if err := w.read(conn, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// list lists the rules path's children, arming the children watch if none is armed.
func (w *watcher) list(conn *zk.Conn) ([]string, error) {
	path := w.src.target.path
	if w.children != 0 {
		children, _, err := conn.Children(path)
		return children, err
	}
	children, _, ch, err := conn.ChildrenW(path)
	if err != nil {
		return nil, err
	}
	w.children = w.arm("", ch)
	return children, nil
}

// read reads one child, arming its data watch if none is armed, and decodes it. A node that
// holds no rule is logged (once per distinct problem) and left out.
func (w *watcher) read(conn *zk.Conn, name string) error {
	n := w.nodes[name]
	if n == nil {
		n = &node{}
	}
	p := w.src.target.path + "/" + name
	var (
		data []byte
		err  error
	)
	if n.watch != 0 {
		data, _, err = conn.Get(p)
	} else {
		var ch <-chan zk.Event
		data, _, ch, err = conn.GetW(p)
		if err == nil {
			n.watch = w.arm(name, ch)
		}
	}
	if errors.Is(err, zk.ErrNoAuth) {
		// A node whose ACL shuts lodestar out (another tool wrote it) is one bad node, not an
		// outage. No watch is armed on it (ZooKeeper sends such a node's events to no one
		// who may not read it); the children watch tells when it goes, and every full
		// resync tries it again.
		err = fmt.Errorf("reading rule node %s: %w (its ACL does not let lodestar read it)", p, err)
	} else if errors.Is(err, zk.ErrNoNode) {
		delete(w.nodes, name) // gone since the listing: the children watch fires for it
		return nil
	} else if err != nil {
		return fmt.Errorf("reading rule node %s: %w", p, err)
	}
	w.nodes[name] = n
	var rule discovery.ServiceRule
	if err == nil {
		rule, err = decodeRule(name, data)
	}
	if err != nil {
		if n.err == nil || n.err.Error() != err.Error() {
			w.src.log.Warn("ignoring a routing rule node in ZooKeeper that holds no usable rule", "node", p, "err", err)
		}
		n.rule, n.err = discovery.ServiceRule{}, err
		return nil
	}
	n.rule, n.err = rule, nil
	return nil
}

// publish sends the rule set to sink if it differs from the one sent last (or none was).
func (w *watcher) publish(sink discovery.Sink) error {
	names := make([]string, 0, len(w.nodes))
	bad := 0
	for name, n := range w.nodes {
		if n.err != nil {
			bad++
			continue
		}
		names = append(names, name)
	}
	badNodes.Set(float64(bad))
	rules := make(map[string]discovery.ServiceRule, len(names))
	for _, r := range byAppID(names, func(name string) discovery.ServiceRule { return w.nodes[name].rule }) {
		rules[r.AppID] = r
	}
	if w.sent != nil && maps.Equal(rules, w.sent) {
		return nil
	}
	// Stored first: whoever sees the set in the registry finds it in Rules() too.
	w.src.rules.Store(&rules)
	if err := sink.Send(w.ctx, discovery.ReplaceRules{Rules: rules}); err != nil {
		return err
	}
	w.sent = rules
	rulesGauge.Set(float64(len(rules)))
	w.src.log.Debug("routing rules sent", "rules", len(rules))
	return nil
}

// byAppID returns the rules of the named nodes sorted by app id. Two nodes may unescape to
// the same app id ("%2Fa" and "%2fa"): the one named as Put names it wins, else the first
// name.
func byAppID(names []string, rule func(name string) discovery.ServiceRule) []discovery.ServiceRule {
	slices.Sort(names)
	byID := map[string]string{} // app id → node name
	for _, name := range names {
		id := rule(name).AppID
		if prev, ok := byID[id]; !ok || (prev != nodeName(id) && name == nodeName(id)) {
			byID[id] = name
		}
	}
	out := make([]discovery.ServiceRule, 0, len(byID))
	for _, name := range byID {
		out = append(out, rule(name))
	}
	slices.SortFunc(out, func(a, b discovery.ServiceRule) int { return cmp.Compare(a.AppID, b.AppID) })
	return out
}

// ensurePath creates path and its missing parents, with an open ACL (as bamboo does).
// Existing nodes are left alone, whatever their ACL.
func ensurePath(conn *zk.Conn, path string) error {
	if ok, _, err := conn.Exists(path); err != nil || ok {
		return err
	}
	for i := 1; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		ok, _, err := conn.Exists(path[:i])
		if err == nil && !ok {
			_, err = conn.Create(path[:i], nil, 0, zk.WorldACL(zk.PermAll))
		}
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("creating %s: %w", path[:i], err)
		}
	}
	return nil
}
