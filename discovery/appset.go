package discovery

import (
	"slices"
	"sort"
)

// AppSet is an immutable set of apps sorted by ID.
//
// Why not a map or one sorted slice: a task delta must produce a new snapshot in O(changed
// tasks), but copying 10,000 map entries or slice slots per status update costs far more than
// the 20 µs budget. The set is a two-level tree: apps sit in leaves of at most nodeMax apps,
// leaves in branches of at most nodeMax leaves. Replacing one app copies its leaf, its
// branch's leaf index and the root (one slot per ~4,000 apps), so a delta costs about the same
// with 1,000 or 100,000 apps; every other leaf and branch is shared with the previous
// snapshot. The zero AppSet is empty and ready to use.
type AppSet struct {
	root []*branch
	n    int
}

// branch holds consecutive leaves; each leaf is a sorted, non-empty run of apps.
type branch struct {
	leaves [][]*App
}

// Fan-out of leaves and branches. Variables only so that tests can shrink them and reach
// every split and merge of both levels with a few hundred apps.
var (
	nodeMax    = 128 // a leaf or branch that grows past this is split in two
	nodeTarget = 64  // fill of leaves and branches built from scratch
)

// NewAppSet builds a set from apps in any order. Later duplicates of an ID replace earlier ones.
func NewAppSet(apps []*App) AppSet {
	sorted := slices.Clone(apps)
	slices.SortStableFunc(sorted, func(a, b *App) int { return cmpString(a.ID, b.ID) })
	// Keep the last of each run of equal IDs.
	out := sorted[:0]
	for i, a := range sorted {
		if i+1 < len(sorted) && sorted[i+1].ID == a.ID {
			continue
		}
		out = append(out, a)
	}
	s := AppSet{n: len(out)}
	var leaves [][]*App
	for len(out) > 0 {
		k := min(nodeTarget, len(out))
		leaves = append(leaves, out[:k:k])
		out = out[k:]
	}
	for len(leaves) > 0 {
		k := min(nodeTarget, len(leaves))
		s.root = append(s.root, &branch{leaves: leaves[:k:k]})
		leaves = leaves[k:]
	}
	return s
}

// Len is the number of apps.
func (s AppSet) Len() int { return s.n }

// Get returns the app with the given id, or nil.
func (s AppSet) Get(id string) *App {
	bi, li, i, ok := s.find(id)
	if !ok {
		return nil
	}
	return s.root[bi].leaves[li][i]
}

func lastID(leaf []*App) string { return leaf[len(leaf)-1].ID }

// find returns the branch, leaf and index where id is or would be inserted.
func (s AppSet) find(id string) (bi, li, idx int, found bool) {
	if len(s.root) == 0 {
		return 0, 0, 0, false
	}
	// The first branch (then leaf) whose last ID >= id; past the end means "append to the last".
	bi = sort.Search(len(s.root), func(i int) bool {
		ls := s.root[i].leaves
		return lastID(ls[len(ls)-1]) >= id
	})
	bi = min(bi, len(s.root)-1)
	ls := s.root[bi].leaves
	li = min(sort.Search(len(ls), func(i int) bool { return lastID(ls[i]) >= id }), len(ls)-1)
	idx, found = slices.BinarySearchFunc(ls[li], id, func(a *App, id string) int { return cmpString(a.ID, id) })
	return bi, li, idx, found
}

// With returns a set where app replaces the app of the same ID, or is added.
func (s AppSet) With(app *App) AppSet {
	if len(s.root) == 0 {
		return AppSet{root: []*branch{{leaves: [][]*App{{app}}}}, n: 1}
	}
	bi, li, i, found := s.find(app.ID)
	old := s.root[bi].leaves[li]
	n := s.n
	var leaf []*App
	if found {
		leaf = slices.Clone(old)
		leaf[i] = app
	} else {
		leaf = slices.Insert(slices.Clip(old), i, app) // Clip: never write into a shared array
		n++
	}
	return AppSet{root: s.replaceLeaf(bi, li, split(leaf)...), n: n}
}

// Without returns a set without the app of the given id.
func (s AppSet) Without(id string) AppSet {
	bi, li, i, found := s.find(id)
	if !found {
		return s
	}
	leaf := slices.Delete(slices.Clone(s.root[bi].leaves[li]), i, i+1)
	if len(leaf) == 0 {
		return AppSet{root: s.replaceLeaf(bi, li), n: s.n - 1}
	}
	return AppSet{root: s.replaceLeaf(bi, li, leaf), n: s.n - 1}
}

// replaceLeaf returns a new root where leaf li of branch bi is replaced by repl (zero, one or
// two leaves), splitting or dropping the branch as needed. Only the path to the leaf is copied.
func (s AppSet) replaceLeaf(bi, li int, repl ...[]*App) []*branch {
	old := s.root[bi].leaves
	leaves := make([][]*App, 0, len(old)+1)
	leaves = append(leaves, old[:li]...)
	leaves = append(leaves, repl...)
	leaves = append(leaves, old[li+1:]...)
	var branches []*branch
	for _, ls := range split(leaves) {
		branches = append(branches, &branch{leaves: ls})
	}
	root := make([]*branch, 0, len(s.root)+1)
	root = append(root, s.root[:bi]...)
	root = append(root, branches...)
	root = append(root, s.root[bi+1:]...)
	return root
}

// split returns node as is, in two halves when it outgrew nodeMax, or nothing when empty.
func split[T any](node []T) [][]T {
	switch {
	case len(node) == 0:
		return nil
	case len(node) > nodeMax:
		half := len(node) / 2
		return [][]T{node[:half:half], node[half:]}
	}
	return [][]T{node}
}

// All returns every app in ID order, as a new slice.
func (s AppSet) All() []*App {
	out := make([]*App, 0, s.n)
	s.Each(func(a *App) bool {
		out = append(out, a)
		return true
	})
	return out
}

// Each calls fn for every app in ID order until fn returns false.
func (s AppSet) Each(fn func(*App) bool) {
	for _, b := range s.root {
		for _, l := range b.leaves {
			for _, a := range l {
				if !fn(a) {
					return
				}
			}
		}
	}
}
