package haproxy

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Leader-only proxies
//
// A lab with three Mesos masters and two Marathons wants one address for "the Mesos leader"
// and one for "the Marathon leader". A LeaderProxy is an HTTP frontend whose backend has one
// server slot holding the current leader, as the registry knows it: Snapshot.Mesos.Leader
// (from ZooKeeper and the masters' state) or Snapshot.Marathon (from /v2/leader). The slot is
// an ordinary fixed slot, so a leader change is `set server leader_<name>/s1 addr …` and
// `state ready` through the runtime API, never a reload; with no leader known the slot is in
// maintenance and HAProxy answers 503.
//
// ZooKeeper has no leader a client must reach: any member that serves will do. Its proxy
// (LeaderZooKeeper) is a TCP frontend whose backend holds every member of the ensemble,
// health-checked by a TCP connect, so a client goes to a live one.

// Names of the leader-only proxies.
const (
	LeaderMesos     = "mesos"
	LeaderMarathon  = "marathon"
	LeaderZooKeeper = "zk"
)

// leaderProxyIDs are the backend ids of the leader proxies, below the 1000 and up that apps'
// backends get, so they never meet and never move.
var leaderProxyIDs = map[string]int{LeaderMarathon: 901, LeaderMesos: 902, LeaderZooKeeper: 903}

// LeaderProxy is a frontend whose backend holds only the current leader of Mesos or Marathon,
// or every member of the ZooKeeper ensemble.
type LeaderProxy struct {
	// Name is LeaderMesos, LeaderMarathon or LeaderZooKeeper.
	Name string
	// Bind is the frontend's bind, "host:port" ("*:port" or ":port" for every address).
	Bind string
	// Members are the ZooKeeper members, "host:port" each (LeaderZooKeeper only; the other
	// proxies follow the leader the snapshot names).
	Members []string
}

// LeaderProxyName is the name of a leader proxy's frontend and backend, "leader_<name>".
func LeaderProxyName(name string) string { return "leader_" + name }

// LeaderProxyOwner is the owner of a leader proxy's configuration lines (Rendered.Owner,
// Exclusion.AppID, Config.Exclude): "(leader-proxy <name>)", which no app id can be, so that
// HAProxy rejecting these lines never blames an app.
func LeaderProxyOwner(name string) string { return "(leader-proxy " + name + ")" }

// Validate checks the name, the bind address and the ZooKeeper members.
func (p LeaderProxy) Validate() error {
	if _, ok := leaderProxyIDs[p.Name]; !ok {
		return fmt.Errorf("leader proxy %q: unknown name: want %s, %s or %s", p.Name, LeaderMesos, LeaderMarathon, LeaderZooKeeper)
	}
	if err := p.ValidateBind(); err != nil {
		return err
	}
	return p.validateMembers()
}

// ValidateBind checks the bind address alone.
func (p LeaderProxy) ValidateBind() error {
	host, port, err := net.SplitHostPort(p.Bind)
	if err != nil {
		return fmt.Errorf("leader proxy %s: bind %q: %w; want host:port, e.g. 127.0.0.1:15050", p.Name, p.Bind, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("leader proxy %s: bind %q: port %q is not a number from 1 to 65535", p.Name, p.Bind, port)
	}
	if host != "" && host != "*" && net.ParseIP(host) == nil {
		return fmt.Errorf("leader proxy %s: bind %q: %q is not an IP address (or * for every address)", p.Name, p.Bind, host)
	}
	return nil
}

// validateMembers checks the ZooKeeper members: they become server lines, so each must be a
// host (IP address or host name) and a port, nothing more.
func (p LeaderProxy) validateMembers() error {
	if p.Name != LeaderZooKeeper {
		if len(p.Members) > 0 {
			return fmt.Errorf("leader proxy %s: members %q: only the %s proxy has members; this one follows the leader", p.Name, p.Members, LeaderZooKeeper)
		}
		return nil
	}
	if len(p.Members) == 0 {
		return fmt.Errorf("leader proxy %s: no ZooKeeper members to forward to", p.Name)
	}
	for _, m := range p.Members {
		host, port, err := net.SplitHostPort(m)
		if err != nil {
			return fmt.Errorf("leader proxy %s: member %q: %w; want host:port, e.g. 10.0.0.1:2181", p.Name, m, err)
		}
		if err := CheckHostAddr("member host", host); err != nil {
			return fmt.Errorf("leader proxy %s: member %q: %w", p.Name, m, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("leader proxy %s: member %q: port %q is not a number from 1 to 65535", p.Name, m, port)
		}
	}
	return nil
}

// LeaderOf returns the leader of name in snap as "host:port", the host being an IP address
// when one is known; "" when no leader is known.
func LeaderOf(snap *discovery.Snapshot, name string) string {
	if snap == nil {
		return ""
	}
	switch name {
	case LeaderMesos:
		if snap.Mesos != nil {
			return snap.Mesos.Leader
		}
	case LeaderMarathon:
		if m := snap.Marathon; m != nil {
			if m.LeaderAddr != "" {
				return m.LeaderAddr
			}
			return m.Leader
		}
	}
	return ""
}

// reserveLeaderProxies claims the leader proxies' ports before any app can: lodestar's own
// binds win. A proxy with a bad name or bind, a name given twice, a port that another of
// lodestar's frontends has, or an owner in Config.Exclude is left out (Model.Excluded).
func (b *builder) reserveLeaderProxies() {
	seen := map[string]bool{}
	for _, p := range b.cfg.LeaderProxies {
		owner := LeaderProxyOwner(p.Name)
		if err := p.Validate(); err != nil {
			b.exclude(owner, -1, err.Error())
			continue
		}
		if seen[p.Name] {
			b.exclude(owner, -1, "given more than once")
			continue
		}
		seen[p.Name] = true
		if reason, ok := b.cfg.Exclude[owner]; ok {
			b.exclude(owner, -1, reason)
			continue
		}
		port, _ := bindPort(p.Bind)
		if what, ok := b.reserved[port]; ok {
			b.exclude(owner, -1, fmt.Sprintf("port %d is taken by %s", port, what))
			continue
		}
		b.reserve(p.Bind, "the leader proxy "+p.Name)
		b.leaders = append(b.leaders, p)
	}
}

// leaderShape is the shape of every leader proxy backend: no app template renders it.
const leaderShape = "leader-proxy"

// emitLeaderProxies adds the frontend and backend of every reserved leader proxy, the slot
// holding the leader snap names.
func (b *builder) emitLeaderProxies(snap *discovery.Snapshot) {
	for _, p := range b.leaders {
		name, owner := LeaderProxyName(p.Name), LeaderProxyOwner(p.Name)
		host, port, _ := net.SplitHostPort(p.Bind)
		if host == "" {
			host = "*"
		}
		bind := net.JoinHostPort(host, port)
		if host == "*" {
			bind = "*:" + port
		}
		n, _ := strconv.Atoi(port)
		mode := ModeHTTP
		if p.Name == LeaderZooKeeper {
			mode = ModeTCP
		}
		text := "\nfrontend " + name + "\n  bind " + bind + "\n  mode " + mode + "\n"
		if mode == ModeTCP {
			// The defaults enable idle-close-on-response, which HAProxy warns about on TCP frontends.
			text += "  no option idle-close-on-response\n"
		}
		fe := &Frontend{Name: name, Owner: owner, Port: n, BindAddr: host, Mode: mode, Text: text + "  use_backend " + name + "\n"}
		if pf := b.prevFrontend(name); pf != nil && *pf == *fe {
			fe = pf
		}
		id := leaderProxyIDs[p.Name]
		be := &Backend{Name: name, ID: id, Owner: owner, Mode: ModeHTTP,
			// A leader change must reach the next request: a server connection kept alive (the
			// defaults reuse them) would stay with the old leader, which is still up.
			Head: "\nbackend " + name + "\n  id " + strconv.Itoa(id) + "\n  mode " + ModeHTTP +
				"\n  option http-server-close\n  http-reuse never\n",
			Slots: []Slot{leaderSlot(LeaderOf(snap, p.Name))},
			// The built-in server line, no health check: one server, and the runtime API
			// can set everything it holds.
			shape: leaderShape, server: &serverRender{}, RuntimeServers: true}
		if p.Name == LeaderZooKeeper {
			be = zooKeeperBackend(name, owner, id, p.Members)
		}
		// A leader proxy's backend is made from its name and its slot only: the previous one
		// of that name, made here too (its shape says so), is unchanged when the slot is.
		if b.prev != nil {
			if prev := b.prev.Backend(name); prev != nil && prev.shape == be.shape && prev.Head == be.Head && slices.Equal(prev.Slots, be.Slots) {
				be = prev
			}
		}
		b.m.Frontends = append(b.m.Frontends, fe)
		b.m.Backends = append(b.m.Backends, be)
	}
}

// zooKeeperBackend is the ZooKeeper proxy's backend: plain TCP to every member, each checked
// by a TCP connect, so that clients reach a live one. The members come from lodestar's flags,
// never from the snapshot, so the backend changes only with them.
func zooKeeperBackend(name, owner string, id int, members []string) *Backend {
	slots := make([]Slot, 0, len(members))
	for i, m := range members {
		host, p, _ := net.SplitHostPort(m)
		port, _ := strconv.Atoi(p)
		slots = append(slots, Slot{Name: slotName(i), TaskID: m, Host: host, Addr: host, Port: port, State: StateReady})
	}
	return &Backend{Name: name, ID: id, Owner: owner, Mode: ModeTCP,
		Head:  "\nbackend " + name + "\n  id " + strconv.Itoa(id) + "\n  mode " + ModeTCP + "\n  balance roundrobin\n",
		Slots: slots, shape: leaderShape + " zk", server: &serverRender{hcOptions: " check"}, RuntimeServers: true}
}

// leaderSlot is the one server of a leader proxy: the leader ("host:port"), or a spare in
// maintenance when there is none or it cannot be parsed.
func leaderSlot(leader string) Slot {
	spare := Slot{Name: slotName(0), Addr: spareAddr, Port: sparePort, State: StateMaint}
	host, p, err := net.SplitHostPort(leader)
	if err != nil || host == "" {
		return spare
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return spare
	}
	return Slot{Name: slotName(0), TaskID: leader, Host: host, Addr: host, Port: port, State: StateReady}
}
