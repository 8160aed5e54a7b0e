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

// Names of the leader-only proxies.
const (
	LeaderMesos    = "mesos"
	LeaderMarathon = "marathon"
)

// leaderProxyIDs are the backend ids of the leader proxies, below the 1000 and up that apps'
// backends get, so they never meet and never move.
var leaderProxyIDs = map[string]int{LeaderMarathon: 901, LeaderMesos: 902}

// LeaderProxy is a frontend whose backend holds only the current leader of Mesos or Marathon.
type LeaderProxy struct {
	// Name is LeaderMesos or LeaderMarathon.
	Name string
	// Bind is the frontend's bind, "host:port" ("*:port" or ":port" for every address).
	Bind string
}

// LeaderProxyName is the name of a leader proxy's frontend and backend, "leader_<name>".
func LeaderProxyName(name string) string { return "leader_" + name }

// LeaderProxyOwner is the owner of a leader proxy's configuration lines (Rendered.Owner,
// Exclusion.AppID, Config.Exclude): "(leader-proxy <name>)", which no app id can be, so that
// HAProxy rejecting these lines never blames an app.
func LeaderProxyOwner(name string) string { return "(leader-proxy " + name + ")" }

// Validate checks the name and the bind address.
func (p LeaderProxy) Validate() error {
	if _, ok := leaderProxyIDs[p.Name]; !ok {
		return fmt.Errorf("leader proxy %q: unknown name: want %s or %s", p.Name, LeaderMesos, LeaderMarathon)
	}
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
		fe := &Frontend{Name: name, Owner: owner, Port: n, BindAddr: host, Mode: ModeHTTP,
			Text: "\nfrontend " + name + "\n  bind " + bind + "\n  mode " + ModeHTTP + "\n  use_backend " + name + "\n"}
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
		// A leader proxy's backend is made from its name and its slot only: the previous one
		// of that name, made here too (its shape says so), is unchanged when the slot is.
		if b.prev != nil {
			if prev := b.prev.Backend(name); prev != nil && prev.shape == leaderShape && slices.Equal(prev.Slots, be.Slots) {
				be = prev
			}
		}
		b.m.Frontends = append(b.m.Frontends, fe)
		b.m.Backends = append(b.m.Backends, be)
	}
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
