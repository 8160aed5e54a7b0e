package haproxy

import (
	"slices"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
)

// unitMemo is what one unit rendered to: the next build reuses it as it is when the unit's
// apps, routing rule and ports are the same (see emitUnit).
type unitMemo struct {
	members []*discovery.App
	rule    string
	svcs    []svcKey
	outs    []*out
	errs    []error
	// Most units have one port: their slices live here.
	svcs1 [1]svcKey
	outs1 [1]*out
	errs1 [1]error
}

type svcKey struct {
	idx, port, id int
	name          string
	// lost are the routes the port lost to their owners (see owners).
	lost string
}

// emitUnit renders the ports of one unit, or reuses what the previous build rendered for it.
func (b *builder) emitUnit(group []*svc) {
	u := group[0].u
	memo := &unitMemo{members: u.members, rule: u.rule}
	if len(group) == 1 {
		memo.svcs, memo.outs, memo.errs = memo.svcs1[:], memo.outs1[:], memo.errs1[:]
	} else {
		memo.svcs, memo.outs, memo.errs = make([]svcKey, len(group)), make([]*out, len(group)), make([]error, len(group))
	}
	for k, s := range group {
		memo.svcs[k] = svcKey{idx: s.idx, port: s.port, id: s.id, name: s.name, lost: strings.Join(s.lost, " ")}
	}
	// This is the one place that decides a unit is unchanged, from everything it renders
	// from: its apps (the registry keeps an unchanged app's pointer, so Equal is usually a
	// pointer comparison), its routing rule, its ports (index, service port, backend id and
	// name) and, through b.memo, the build environment; and a build that shrinks slots
	// renders again a unit whose backend has free ones.
	if old := b.memo[u.key]; old != nil && old.rule == u.rule && slices.EqualFunc(old.members, u.members, (*discovery.App).Equal) &&
		slices.Equal(old.svcs, memo.svcs) && !(b.cfg.ShrinkSlots && freeDynamicSlots(old.outs)) {
		b.m.memo[u.key] = old
		for k, s := range group {
			b.commit(s, old.outs[k], old.errs[k])
			b.holdRoutes(s, group, old.errs[k])
		}
		return
	}
	b.m.memo[u.key] = memo
	for k, s := range group {
		o, err := b.render(s)
		memo.outs[k], memo.errs[k] = o, err
		b.commit(s, o, err)
		b.holdRoutes(s, group, err)
	}
}

// holdRoutes: a port left out (err) holds none of its routes.
func (b *builder) holdRoutes(s *svc, group []*svc, err error) {
	if err != nil {
		b.dropRoutes(s, group)
	}
}

// labelsOf parses an app's labels, or reuses the previous build's result for the same app.
func (b *builder) labelsOf(a *discovery.App) *AppLabels {
	al, ok := b.prev.cachedLabels(a)
	if !ok {
		al = ParseLabels(a)
	}
	b.m.labels[a] = al
	return al
}

func (m *Model) cachedLabels(a *discovery.App) (*AppLabels, bool) {
	if m == nil {
		return nil, false
	}
	al, ok := m.labels[a]
	return al, ok
}

// shareBackendParts points be's parts that equal prev's at prev's memory: Plan compares heads,
// shapes and slots, which is fastest on the same memory. It never hands back prev itself: a
// backend that is rendered again is the new one in every field, so no field can be left out
// of a comparison and keep a stale value (a swapped port order kept the old PortIndex that
// way). Whether an app is unchanged as a whole is decided once, from its inputs, in emitUnit.
// The slots are shared by slots.
func shareBackendParts(be, prev *Backend) {
	if prev == nil {
		return
	}
	if be.Head == prev.Head {
		be.Head = prev.Head
	}
	if be.shape == prev.shape {
		be.shape = prev.shape
	}
}

// sameSlices reports whether two slices share their backing array and length.
func sameSlices[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (b *builder) prevFrontend(name string) *Frontend {
	if b.prev == nil {
		return nil
	}
	return b.prev.Frontend(name)
}

func shareFrontend(f, prev *SharedFrontend) *SharedFrontend {
	if f == nil || prev == nil {
		return f
	}
	if f.Name == prev.Name && f.Head == prev.Head && slices.Equal(f.Rules, prev.Rules) {
		return prev
	}
	return f
}
