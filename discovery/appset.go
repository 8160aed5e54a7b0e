package discovery

import (
	"slices"
	"sort"
)

// AppSet is an immutable set of apps sorted by ID.
//
// Why not a map or one sorted slice: a task delta must produce a new snapshot in O(changed
// tasks), but copying 10,000 map entries or slice slots per status update costs far more than
// the 20 µs budget. The set is kept in leaves of at most leafMax apps; replacing one app copies
// that leaf and the leaf index (n/leafMax pointers), and every other leaf is shared with the
// previous snapshot. The zero AppSet is empty and ready to use.
type AppSet struct {
	leaves [][]*App
	n      int
}

const (
	leafMax    = 128
	leafTarget = 64
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
	var s AppSet
	for len(out) > 0 {
		k := min(leafTarget, len(out))
		s.leaves = append(s.leaves, out[:k:k])
		out = out[k:]
	}
	for _, l := range s.leaves {
		s.n += len(l)
	}
	return s
}

// Len is the number of apps.
func (s AppSet) Len() int { return s.n }

// Get returns the app with the given id, or nil.
func (s AppSet) Get(id string) *App {
	li, i, ok := s.find(id)
	if !ok {
		return nil
	}
	return s.leaves[li][i]
}

// find returns the leaf and index where id is or would be inserted.
func (s AppSet) find(id string) (leaf, idx int, found bool) {
	if len(s.leaves) == 0 {
		return 0, 0, false
	}
	// First leaf whose last ID >= id; past the end means "append to the last leaf".
	leaf = sort.Search(len(s.leaves), func(i int) bool {
		l := s.leaves[i]
		return l[len(l)-1].ID >= id
	})
	if leaf == len(s.leaves) {
		leaf--
	}
	l := s.leaves[leaf]
	idx, found = slices.BinarySearchFunc(l, id, func(a *App, id string) int { return cmpString(a.ID, id) })
	return leaf, idx, found
}

// With returns a set where app replaces the app of the same ID, or is added.
func (s AppSet) With(app *App) AppSet {
	if len(s.leaves) == 0 {
		return AppSet{leaves: [][]*App{{app}}, n: 1}
	}
	li, i, found := s.find(app.ID)
	old := s.leaves[li]
	var leaf []*App
	n := s.n
	if found {
		leaf = slices.Clone(old)
		leaf[i] = app
	} else {
		leaf = make([]*App, 0, len(old)+1)
		leaf = append(leaf, old[:i]...)
		leaf = append(leaf, app)
		leaf = append(leaf, old[i:]...)
		n++
	}
	leaves := make([][]*App, 0, len(s.leaves)+1)
	leaves = append(leaves, s.leaves[:li]...)
	if len(leaf) > leafMax {
		half := len(leaf) / 2
		leaves = append(leaves, leaf[:half:half], leaf[half:])
	} else {
		leaves = append(leaves, leaf)
	}
	leaves = append(leaves, s.leaves[li+1:]...)
	return AppSet{leaves: leaves, n: n}
}

// Without returns a set without the app of the given id.
func (s AppSet) Without(id string) AppSet {
	li, i, found := s.find(id)
	if !found {
		return s
	}
	old := s.leaves[li]
	leaves := make([][]*App, 0, len(s.leaves))
	leaves = append(leaves, s.leaves[:li]...)
	if len(old) > 1 {
		leaf := make([]*App, 0, len(old)-1)
		leaf = append(leaf, old[:i]...)
		leaf = append(leaf, old[i+1:]...)
		leaves = append(leaves, leaf)
	}
	leaves = append(leaves, s.leaves[li+1:]...)
	return AppSet{leaves: leaves, n: s.n - 1}
}

// All returns every app in ID order, as a new slice.
func (s AppSet) All() []*App {
	out := make([]*App, 0, s.n)
	for _, l := range s.leaves {
		out = append(out, l...)
	}
	return out
}

// Each calls fn for every app in ID order until fn returns false.
func (s AppSet) Each(fn func(*App) bool) {
	for _, l := range s.leaves {
		for _, a := range l {
			if !fn(a) {
				return
			}
		}
	}
}
