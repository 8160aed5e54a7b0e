package mesos

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/discovery"
)

// infoPrefix names the nodes Mesos masters (0.24 and later) announce themselves with: one
// ephemeral sequential node each, holding MasterInfo as JSON. The lowest sequence leads.
const infoPrefix = "json.info_"

const defaultZKPort = "2181"

// zkTarget is a parsed --mesos-zk URL.
type zkTarget struct {
	servers []string // "host:port"
	path    string   // e.g. "/mesos"
	auth    string   // "user:password" for ZooKeeper digest auth, or ""
}

// ParseZKURL parses a Mesos ZooKeeper URL, zk://[user:password@]host[:port][,host[:port]…]/path
// (as given to mesos-master --zk), into "host:port" servers (port 2181 when omitted) and the
// znode path. Credentials, if any, are accepted and not returned.
func ParseZKURL(s string) (servers []string, path string, err error) {
	t, err := parseZKURL(s)
	return t.servers, t.path, err
}

func parseZKURL(s string) (zkTarget, error) {
	var t zkTarget
	want := func(why string) error {
		return fmt.Errorf("bad ZooKeeper URL %q: %s; want zk://host1:2181,host2:2181/mesos", discovery.RedactZKURL(s), why)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "zk://")
	if !ok {
		return t, want("it does not start with zk://")
	}
	hosts, path, found := strings.Cut(rest, "/")
	if !found {
		return t, want("no path")
	}
	if i := strings.LastIndex(hosts, "@"); i >= 0 {
		t.auth, hosts = hosts[:i], hosts[i+1:]
		if user, _, _ := strings.Cut(t.auth, ":"); user == "" {
			return t, want("credentials without a user name")
		}
	}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return t, want("an empty host")
		}
		server, err := withDefaultPort(h, defaultZKPort)
		if err != nil && t.auth == "" && strings.Contains(path, "@") {
			// Credentials whose password holds a "/": the host named is part of it.
			return t, want(`the password holds a "/", which the URL cannot carry`)
		}
		if err != nil {
			return t, want(err.Error())
		}
		t.servers = append(t.servers, server)
	}
	path = "/" + strings.TrimRight(path, "/")
	if path == "/" {
		return t, want("no path")
	}
	for _, part := range strings.Split(path[1:], "/") {
		if part == "" || part == "." || part == ".." {
			return t, want(fmt.Sprintf("bad path %q", path))
		}
	}
	t.path = path
	return t, nil
}

// withDefaultPort validates "host[:port]" (IPv6 in brackets) and adds port when it is missing.
func withDefaultPort(h, port string) (string, error) {
	host, p, err := net.SplitHostPort(h)
	if err != nil {
		// No port: a bare name or IPv4, or an IPv6 address with or without brackets.
		bracketed := strings.HasPrefix(h, "[")
		host, p = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), port
		if bracketed != strings.HasSuffix(h, "]") || strings.ContainsAny(host, "[]") ||
			(strings.Contains(host, ":") && net.ParseIP(host) == nil) {
			return "", fmt.Errorf("bad host %q", h)
		}
	}
	if host == "" || strings.ContainsAny(host, " /@") {
		return "", fmt.Errorf("bad host %q", h)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port in %q", h)
	}
	return net.JoinHostPort(host, p), nil
}

// wireMasterInfo is the JSON Mesos writes into a json.info_ node (the MasterInfo protobuf).
type wireMasterInfo struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	// IP is the IPv4 address as a uint32 in network byte order (Mesos before 1.0 wrote only
	// this). uint64 so that an out-of-range value is an error of ours, not of json.
	IP      uint64 `json:"ip"`
	Port    int    `json:"port"`
	PID     string `json:"pid"`
	Address *struct {
		Hostname string `json:"hostname"`
		IP       string `json:"ip"`
		Port     int    `json:"port"`
	} `json:"address"`
}

// parseMasterInfo reads a json.info_ node: the address from "address" (Mesos 1.0+), else the
// uint32 "ip" with "port", else the "pid".
func parseMasterInfo(data []byte) (discovery.Master, error) {
	var w wireMasterInfo
	if err := json.Unmarshal(data, &w); err != nil {
		return discovery.Master{}, fmt.Errorf("malformed MasterInfo JSON: %w", err)
	}
	m := discovery.Master{ID: w.ID, Hostname: w.Hostname, Port: w.Port}
	if a := w.Address; a != nil {
		if a.Hostname != "" {
			m.Hostname = a.Hostname
		}
		if a.Port != 0 {
			m.Port = a.Port
		}
		if ip := net.ParseIP(a.IP); ip != nil {
			m.IP = ip.String()
		} else if a.IP != "" {
			return m, fmt.Errorf("MasterInfo address.ip %q is not an IP address", a.IP)
		}
	}
	if m.IP == "" && w.IP != 0 {
		if w.IP > 0xffffffff {
			return m, fmt.Errorf("MasterInfo ip %d is not a uint32", w.IP)
		}
		m.IP = uint32ToIP(uint32(w.IP))
	}
	if m.IP == "" || m.Port == 0 {
		// Only the pid is left: "master@ip:port".
		if _, hp, ok := strings.Cut(w.PID, "@"); ok {
			if host, p, err := net.SplitHostPort(hp); err == nil && net.ParseIP(host) != nil {
				port, _ := strconv.Atoi(p)
				m.IP, m.Port = cmp.Or(m.IP, net.ParseIP(host).String()), cmp.Or(m.Port, port)
			}
		}
	}
	if m.IP == "" {
		return m, errors.New(`MasterInfo has no address: no "address.ip", "ip" or "pid"`)
	}
	if m.Port < 1 || m.Port > 65535 {
		return m, fmt.Errorf("MasterInfo port %d out of range", m.Port)
	}
	return m, nil
}

// uint32ToIP decodes Mesos's MasterInfo.ip: the address's bytes in network order, held in a
// uint32 that Mesos (on little-endian hosts) writes as a number, so 127.0.0.1 is 16777343.
func uint32ToIP(v uint32) string {
	return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String()
}

// masterAddr is the "ip:port" a master is polled at.
func masterAddr(m discovery.Master) string {
	host := cmp.Or(m.IP, m.Hostname)
	return net.JoinHostPort(host, strconv.Itoa(m.Port))
}

// infoNodes returns the json.info_ children in sequence order (other children, such as the
// protobuf info_ nodes and log_replicas, are ignored).
func infoNodes(children []string) []string {
	type node struct {
		name string
		seq  int64
	}
	var nodes []node
	for _, c := range children {
		s, ok := strings.CutPrefix(c, infoPrefix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseInt(s, 10, 64)
		if err != nil || seq < 0 {
			continue
		}
		nodes = append(nodes, node{c, seq})
	}
	slices.SortFunc(nodes, func(a, b node) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.name
	}
	return out
}

// zkView is what ZooKeeper last told about the masters.
type zkView struct {
	// masters and leader are from the latest listing; they are kept while ZooKeeper is
	// unreachable.
	masters []discovery.Master // in sequence order
	leader  string             // "ip:port" of the lowest sequence, "" when none or unreadable
	err     error              // the current problem with ZooKeeper, nil when healthy
}

func (v zkView) same(o zkView) bool {
	return v.leader == o.leader && slices.Equal(v.masters, o.masters) &&
		errString(v.err) == errString(o.err)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// detector watches the json.info_ children of the Mesos path and publishes a zkView each
// time the masters, the leader or ZooKeeper's health change. Run reads the view; changed
// holds one pending signal (latest wins).
type detector struct {
	target  zkTarget
	session time.Duration
	log     *slog.Logger

	closing atomic.Bool
	// watches counts the watches list armed that have not fired yet: at most one (see run).
	watches atomic.Int64

	mu      sync.Mutex
	view    zkView
	changed chan struct{}
}

func newDetector(t zkTarget, session time.Duration, log *slog.Logger) *detector {
	return &detector{target: t, session: session, log: log, changed: make(chan struct{}, 1)}
}

// current returns the latest view.
func (d *detector) current() zkView {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.view
}

func (d *detector) update(f func(v *zkView)) {
	d.mu.Lock()
	old := d.view
	f(&d.view)
	v := d.view
	d.mu.Unlock()
	if old.same(v) {
		return
	}
	zkUp.Set(boolFloat(v.err == nil))
	if errString(v.err) != errString(old.err) {
		if v.err != nil {
			d.log.Warn("Mesos leader detection through ZooKeeper failing; keeping the last known masters", "err", v.err)
		} else {
			d.log.Info("Mesos leader detection through ZooKeeper working", "masters", len(v.masters), "leader", v.leader)
		}
	}
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *detector) fail(err error) {
	d.update(func(v *zkView) { v.err = err })
}

// run connects to ZooKeeper and keeps the view current until ctx ends. It never gives up:
// go-zookeeper keeps cycling through the servers (a member down at start is skipped), and
// every failure is retried.
func (d *detector) run(ctx context.Context) {
	where := strings.Join(d.target.servers, ",") + d.target.path
	conn, events, err := zk.Connect(d.target.servers, d.session,
		zk.WithHostProvider(&serverList{}), zk.WithLogInfo(false), zk.WithLogger(zkLogger{d.log}))
	if err != nil {
		// Only an empty server list fails here, and New rejects that.
		d.fail(fmt.Errorf("ZooKeeper %s: %w", where, err))
		<-ctx.Done()
		return
	}
	// watchSession reads events until conn.Close closes the channel; run waits for it.
	sessions := make(chan struct{}, 1)
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		d.watchSession(events, sessions, where)
	}()
	defer func() {
		// Closing reports a disconnection, which is no failure.
		d.closing.Store(true)
		conn.Close()
		<-watcherDone
	}()

	authed := d.target.auth == ""
	retry := time.Duration(0)
	// armed is the one watch armed (on the children, or on the path's creation), nil when
	// none. go-zookeeper keeps a watch across reconnections to the same session (it sets it
	// again on the new connection, and the server fires it for any change made meanwhile)
	// until it fires; an expired session's watches fire with EventNotWatching. So a new watch
	// is armed only once the last one has fired: arming one on each reconnection would pile
	// them up. listed is the view of the last complete listing since armed was armed, nil
	// when there was none.
	var (
		armed  <-chan zk.Event
		listed *zkView
	)
	fired := func(ev zk.Event) {
		armed, listed = nil, nil
		d.watches.Add(-1)
		zkWatches.Dec()
		d.log.Debug("ZooKeeper watch fired", "type", ev.Type.String(), "path", ev.Path, "err", ev.Err)
	}
	defer func() {
		// conn.Close fires whatever is still armed.
		zkWatches.Sub(float64(d.watches.Swap(0)))
	}()
	for ctx.Err() == nil {
		if !backOff(ctx, retry, sessions) {
			return
		}
		retry = min(max(2*retry, 250*time.Millisecond), 5*time.Second)
		if !authed {
			if err := conn.AddAuth("digest", []byte(d.target.auth)); err != nil {
				d.fail(fmt.Errorf("ZooKeeper %s: digest auth: %w", where, err))
				continue
			}
			authed = true
		}
		// An expired session's watch has fired by the time the new session is signalled.
		select {
		case ev := <-armed:
			fired(ev)
		default:
		}
		if listed != nil {
			// Back on the same session with the watch armed since a complete listing: that
			// listing is still current, or the watch would fire. Asking nothing here also
			// keeps clear of a data race in go-zookeeper (Conn.lastZxid, read while it sets
			// the watches again on a new connection, written by the answer to a request sent
			// meanwhile).
			v := *listed
			d.update(func(cur *zkView) { *cur = v })
		} else {
			view, w, err := d.list(conn, where, armed)
			armed = w
			if err != nil {
				d.fail(err)
				continue
			}
			if armed != nil {
				listed = &view
			}
			d.update(func(cur *zkView) { *cur = view })
		}
		retry = 0
		select {
		case <-ctx.Done():
			return
		case ev := <-armed:
			fired(ev)
		case <-sessions:
			// A new or re-established session (the view says ZooKeeper failed meanwhile).
		}
	}
}

// backOff waits retry (none when 0), cut short by a new session; false when ctx ended first.
func backOff(ctx context.Context, retry time.Duration, sessions <-chan struct{}) bool {
	if retry <= 0 {
		return true
	}
	t := time.NewTimer(retry)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-sessions:
	case <-t.C:
	}
	return true
}

// list reads the children and their MasterInfo and returns the view they give. armed is a
// watch still armed from an earlier listing, or nil: then list arms one, on the children (or
// on the path's creation while it does not exist). It returns the watch armed now, also with
// an error.
func (d *detector) list(conn *zk.Conn, where string, armed <-chan zk.Event) (zkView, <-chan zk.Event, error) {
	path := d.target.path
	var children []string
	var err error
	if armed != nil {
		children, _, err = conn.Children(path)
	} else {
		var w <-chan zk.Event
		children, _, w, err = conn.ChildrenW(path)
		if err == nil {
			armed = d.armed(w)
		}
	}
	if errors.Is(err, zk.ErrNoNode) {
		if armed == nil {
			exists, _, w, err := conn.ExistsW(path)
			if err != nil {
				return zkView{}, nil, fmt.Errorf("ZooKeeper %s: %w", where, err)
			}
			if exists {
				// Created since ChildrenW. ExistsW armed a watch on the node's data, which
				// is not the one wanted; it fires, unread, when the node changes. The retry
				// arms a children watch.
				return zkView{}, nil, fmt.Errorf("ZooKeeper %s: path created while listing it", where)
			}
			armed = d.armed(w)
		}
		return zkView{err: fmt.Errorf("ZooKeeper %s: no such path: no Mesos master has registered there (check --mesos-zk)", where)}, armed, nil
	}
	if err != nil {
		return zkView{}, armed, fmt.Errorf("ZooKeeper %s: listing masters: %w", where, err)
	}
	var masters []discovery.Master
	// leaderRead: the lowest node still there, the leader's, was read. When it cannot be,
	// no leader is named: the next readable master does not lead, and naming it would make
	// every poll look like an election under way (see Source.disagrees).
	leaderRead, first := false, true
	for _, name := range infoNodes(children) {
		data, _, err := conn.Get(path + "/" + name)
		if errors.Is(err, zk.ErrNoNode) {
			continue // gone since the listing: the watch fires for it
		}
		if err != nil {
			return zkView{}, armed, fmt.Errorf("ZooKeeper %s: reading %s: %w", where, name, err)
		}
		m, err := parseMasterInfo(data)
		isFirst := first
		first = false
		if err != nil {
			// A node we cannot read is skipped, not fatal: the masters we can read still
			// name the leader when one of them is asked.
			d.log.Warn("skipping a Mesos master node in ZooKeeper", "node", path+"/"+name, "err", err)
			masterInfoErrors.Inc()
			continue
		}
		leaderRead = leaderRead || isFirst
		masters = append(masters, m)
	}
	zkMasters.Set(float64(len(masters)))
	v := zkView{masters: masters}
	switch {
	case len(masters) == 0:
		v.err = fmt.Errorf("ZooKeeper %s lists no Mesos master (no readable %s nodes)", where, infoPrefix)
	case leaderRead:
		v.leader = masterAddr(masters[0])
	}
	return v, armed, nil
}

// armed counts a watch just armed and returns it.
func (d *detector) armed(w <-chan zk.Event) <-chan zk.Event {
	d.watches.Add(1)
	zkWatches.Inc()
	return w
}

// watchSession turns session events into view errors (connection lost, session expired) and
// signals sessions when a session is (re)established, so that run lists again.
func (d *detector) watchSession(events <-chan zk.Event, sessions chan<- struct{}, where string) {
	for ev := range events {
		if ev.Type != zk.EventSession || d.closing.Load() {
			continue
		}
		switch ev.State {
		case zk.StateDisconnected:
			d.fail(fmt.Errorf("ZooKeeper %s: connection lost", where))
		case zk.StateExpired:
			d.fail(fmt.Errorf("ZooKeeper %s: session expired", where))
		case zk.StateAuthFailed:
			d.fail(fmt.Errorf("ZooKeeper %s: authentication failed", where))
		case zk.StateHasSession:
			select {
			case sessions <- struct{}{}:
			default:
			}
		}
	}
}

// serverList is a zk.HostProvider over the servers as configured. go-zookeeper's default
// provider resolves every name once, at Connect, and fails outright if one does not resolve;
// this one leaves names to the dialer, so a member whose name does not resolve is skipped like
// one that is down, and is tried again on the next round.
type serverList struct {
	mu      sync.Mutex
	servers []string
	cur     int
	last    int // the server of the last successful connection; -1 before any
}

// Init implements zk.HostProvider.
func (l *serverList) Init(servers []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(servers) == 0 {
		return errors.New("no ZooKeeper server")
	}
	l.servers, l.cur, l.last = slices.Clone(servers), -1, -1
	return nil
}

// Len implements zk.HostProvider.
func (l *serverList) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.servers)
}

// Next implements zk.HostProvider: round robin; retryStart is true once every server was tried
// since the last successful connection (go-zookeeper then pauses a second and fails waiting
// requests with ErrNoServer).
func (l *serverList) Next() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur = (l.cur + 1) % len(l.servers)
	retryStart := l.cur == l.last
	if l.last == -1 {
		l.last = 0
	}
	return l.servers[l.cur], retryStart
}

// Connected implements zk.HostProvider.
func (l *serverList) Connected() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = l.cur
}

// zkLogger sends go-zookeeper's log lines (connection chatter) to debug level.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug("zookeeper: " + fmt.Sprintf(format, args...))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
