package haproxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
)

// units groups the snapshot's apps: zero-downtime deployment groups are merged.
func (b *builder) units(snap *discovery.Snapshot) []*unit {
	var out []*unit
	groups := map[string][]*unit{}
	snap.Apps.Each(func(a *discovery.App) bool {
		if reason, ok := b.cfg.Exclude[a.ID]; ok {
			b.exclude(a.ID, -1, reason)
			return true
		}
		u := &unit{key: a.ID, base: a, labels: b.labelsOf(a), members: []*discovery.App{a}}
		if g := u.labels.Deployment.Group; g != "" && u.labels.Err == nil {
			key := g
			if !strings.HasPrefix(key, "/") {
				key = "/" + key
			}
			groups[key] = append(groups[key], u)
			return true
		}
		out = append(out, u)
		return true
	})
	for key, members := range groups {
		if reason, ok := b.cfg.Exclude[key]; ok {
			b.exclude(key, -1, reason)
			continue
		}
		out = append(out, mergeDeployment(key, members))
	}
	slices.SortFunc(out, func(x, y *unit) int { return strings.Compare(x.key, y.key) })
	b.own.units = out
	for _, u := range out {
		if r, ok := snap.Rules[u.key]; ok {
			u.rule = r.ACL
		} else if r, ok := snap.Rules[u.base.ID]; ok {
			u.rule = r.ACL
		}
	}
	return out
}

// mergeDeployment merges the apps of one deployment group as marathon-lb did: the oldest app
// (by HAPROXY_DEPLOYMENT_STARTED_AT) defines the backend, every member's tasks serve it, and
// for each healthy task of the newest app one old task is drained, never more than the
// target instance count allows.
func mergeDeployment(key string, members []*unit) *unit {
	slices.SortFunc(members, func(x, y *unit) int {
		if c := x.labels.Deployment.StartedAt.Compare(y.labels.Deployment.StartedAt); c != 0 {
			return c
		}
		if c := strings.Compare(x.base.Version, y.base.Version); c != 0 {
			return c
		}
		return strings.Compare(x.base.ID, y.base.ID)
	})
	base := members[0]
	u := &unit{key: key, base: base.base, labels: base.labels}
	for _, m := range members {
		u.members = append(u.members, m.base)
	}
	if len(members) < 2 {
		return u
	}
	newest := members[len(members)-1]
	healthyNew := 0
	for _, t := range newest.base.Tasks {
		if t.Eligible && (len(newest.base.HealthChecks) == 0 || len(t.Health) > 0) {
			healthyNew++
		}
	}
	oldInstances := 0
	var oldTasks []*discovery.Task
	for _, m := range members[:len(members)-1] {
		oldInstances += m.base.Instances
		oldTasks = append(oldTasks, m.base.Tasks...)
	}
	slices.SortFunc(oldTasks, func(x, y *discovery.Task) int { return strings.Compare(x.ID, y.ID) })
	target := newest.labels.Deployment.TargetInstances
	if target < 0 {
		target = 1
	}
	n := min(len(oldTasks), healthyNew, max(0, healthyNew+oldInstances-target))
	if n > 0 {
		u.drained = make(map[string]bool, n)
		for _, t := range oldTasks[:n] {
			u.drained[t.ID] = true
		}
	}
	return u
}

// serves reports whether this instance serves an app port with these groups.
func (b *builder) serves(groups []string) bool {
	for _, g := range b.cfg.Groups {
		if g == "*" || slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

// services selects the ports this instance serves, gives each its service port and backend
// name, and leaves out ports with bad labels or conflicting binds.
func (b *builder) services(units []*unit) []*svc {
	nports := 0
	for _, u := range units {
		nports += len(u.labels.Ports)
	}
	slab := make([]svc, 0, nports)
	out := make([]*svc, 0, nports)
	var auto, served []*svc
	for _, u := range units {
		al := u.labels
		served = served[:0]
		for i := range al.Ports {
			pl := &al.Ports[i]
			groups := al.Groups
			if pl.GroupSet {
				groups = pl.Groups
			}
			if !b.serves(groups) {
				continue
			}
			// A port with malformed labels is reported rather than silently not enabled.
			if pl.Err == nil && (b.cfg.StrictMode && !(pl.EnabledSet && pl.Enabled) || !b.cfg.StrictMode && pl.EnabledSet && !pl.Enabled) {
				continue
			}
			slab = append(slab, svc{u: u, idx: i, pl: pl})
			served = append(served, &slab[len(slab)-1])
		}
		if len(served) == 0 {
			continue
		}
		b.m.Warnings = append(b.m.Warnings, al.Warnings...)
		if al.Err != nil {
			b.exclude(u.key, -1, al.Err.Error())
			continue
		}
		for _, s := range served {
			switch {
			case s.pl.Err != nil:
				b.exclude(u.key, s.idx, s.pl.Err.Error())
				continue
			case !proxiedProtocol(u.base.Ports[s.idx].Protocol):
				b.exclude(u.key, s.idx, fmt.Sprintf("protocol %q: HAProxy proxies TCP only", u.base.Ports[s.idx].Protocol))
				continue
			case s.pl.Port > 0:
				s.port = s.pl.Port
			case u.base.Ports[s.idx].ServicePort > 0:
				s.port = u.base.Ports[s.idx].ServicePort
			case u.base.Network == discovery.NetworkContainer:
				auto = append(auto, s)
			default:
				b.exclude(u.key, s.idx, "no service port (set servicePort or "+PortLabel(s.idx, SuffixPort)+")")
				continue
			}
			out = append(out, s)
		}
	}
	b.assignAutoPorts(out, auto)
	numbered := out[:0]
	for _, s := range out {
		if s.port != 0 {
			numbered = append(numbered, s)
		}
	}
	b.names = make(map[string]string, len(numbered))
	kept := b.bindAll(numbered)
	b.ownRoutes(kept)
	return kept
}

// proxiedProtocol reports whether HAProxy can serve a port of this Marathon protocol: "tcp"
// (also when left out) or a list that holds it, such as "udp,tcp". HAProxy proxies no UDP, so
// a "udp" port would get a TCP frontend nobody's datagrams reach.
func proxiedProtocol(protocol string) bool {
	if strings.TrimSpace(protocol) == "" {
		return true
	}
	for p := range strings.SplitSeq(protocol, ",") {
		if strings.EqualFold(strings.TrimSpace(p), "tcp") {
			return true
		}
	}
	return false
}

// assignAutoPorts gives IP-per-task ports without a service port one from the configured
// range, as marathon-lb did; a port keeps what it had in prev.
func (b *builder) assignAutoPorts(all, auto []*svc) {
	if len(auto) == 0 {
		return
	}
	lo, hi := b.cfg.MinServPortIPPerTask, b.cfg.MaxServPortIPPerTask
	taken := map[int]bool{}
	// claimants are the apps that set each port explicitly: a port assigned before stays with
	// its app unless one of them owns it (see owners); the others then lose it in bind.
	claimants := map[int][]string{}
	for _, s := range all {
		if s.port > 0 {
			taken[s.port] = true
			claimants[s.port] = append(claimants[s.port], s.u.key)
		}
	}
	for p := range b.reserved {
		taken[p] = true
	}
	kept := map[int]bool{}
	var fresh []*svc
	for _, s := range auto {
		key := s.u.key + "#" + strconv.Itoa(s.idx)
		if b.prev != nil {
			if p, ok := b.prev.autoPorts[key]; ok && p >= lo && p <= hi && !kept[p] && b.keepsAutoPort(s.u.key, p, claimants[p]) {
				kept[p] = true
				s.port = p
				taken[p] = true
				b.m.autoPorts[key] = p
				continue
			}
		}
		fresh = append(fresh, s)
	}
	next := lo
	for _, s := range fresh {
		for next <= hi && taken[next] {
			next++
		}
		if next > hi {
			b.exclude(s.u.key, s.idx, fmt.Sprintf("no service port: every port of --min-serv-port-ip-per-task..--max-serv-port-ip-per-task (%d-%d) is taken", lo, hi))
			continue
		}
		s.port = next
		taken[next] = true
		b.m.autoPorts[s.u.key+"#"+strconv.Itoa(s.idx)] = next
	}
}

// keepsAutoPort reports whether an app keeps the service port p it was assigned before: p
// is none of lodestar's own ports, and no app that sets p explicitly comes before the app in
// ownership order.
func (b *builder) keepsAutoPort(key string, p int, claimants []string) bool {
	if _, ok := b.reserved[p]; ok {
		return false
	}
	for _, c := range claimants {
		if c == key || b.own.compare(b.own.portResource(p), c, key) < 0 {
			return false
		}
	}
	return true
}

// bind names the service's backend and claims its frontend port. Services come in
// ownership order (bindAll), so the owner of a contested port or name keeps it.
func (b *builder) bind(s *svc) bool {
	if what, ok := b.reserved[s.port]; ok {
		b.exclude(s.u.key, s.idx, fmt.Sprintf("port %d is taken by %s", s.port, what))
		return false
	}
	addr := s.pl.BindAddr
	for _, other := range b.bound[s.port] {
		if !wildcard(addr) && !wildcard(other.addr) && addr != other.addr {
			continue
		}
		if other.owner == s.u.key {
			b.exclude(s.u.key, s.idx, fmt.Sprintf("port %d is taken by another port of this app", s.port))
		} else {
			b.exclude(s.u.key, s.idx, b.own.taken(b.own.portResource(s.port), other.owner, s.u.key))
		}
		return false
	}
	s.name = backendName(s.u.key, s.port)
	if other, ok := b.names[s.name]; ok {
		b.exclude(s.u.key, s.idx, b.own.taken(resource{"backend name " + s.name, b.own.portResource(s.port).held}, other, s.u.key))
		return false
	}
	b.names[s.name] = s.u.key
	b.bound[s.port] = append(b.bound[s.port], binding{addr: addr, owner: s.u.key})
	return true
}

func wildcard(addr string) bool {
	return addr == "*" || addr == "" || addr == "0.0.0.0" || addr == "::"
}

// backendName is marathon-lb's: the app id without its leading "/", "/" → "_", then
// "_<port>"; characters HAProxy does not allow in names become "_".
func backendName(key string, port int) string {
	var sb strings.Builder
	sb.Grow(len(key) + 6)
	for _, c := range []byte(strings.TrimPrefix(key, "/")) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == ':':
			sb.WriteByte(c)
		default:
			sb.WriteByte('_')
		}
	}
	sb.WriteByte('_')
	sb.WriteString(strconv.Itoa(port))
	return sb.String()
}

// cleanedUp is marathon-lb's identifier cleaning: [^a-zA-Z0-9-] → "_".
func cleanedUp(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// assignIDs gives every backend its id from prev, or the next unused one in name order.
func (b *builder) assignIDs(svcs []*svc) {
	next := 999
	if b.prev != nil {
		for _, be := range b.prev.Backends {
			next = max(next, be.ID)
		}
	}
	byName := slices.Clone(svcs)
	slices.SortFunc(byName, func(x, y *svc) int { return strings.Compare(x.name, y.name) })
	for _, s := range byName {
		if b.prev != nil {
			if pb := b.prev.Backend(s.name); pb != nil {
				s.id = pb.ID
				continue
			}
		}
		next++
		s.id = next
	}
}
