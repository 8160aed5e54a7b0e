package discovery

// Mirror is a change another lodestar's registry published, as a replica following it
// (discovery/relay) applies it: in one step, so the replica's registry never publishes half of
// a hub's version. Full replaces every app with Apps; otherwise Apps are added or replaced and
// Removed are removed. Each Set* field says whether that part of the state changed.
type Mirror struct {
	Full    bool
	Apps    []*App
	Removed []string
	// Keep names apps a full Mirror could not carry (the replica refused their data): the
	// registry keeps its current version of each, as ReplaceApps does.
	Keep []string

	SetMesos    bool
	Mesos       *MesosState
	SetMarathon bool
	Marathon    *MarathonState
	SetRules    bool
	Rules       map[string]ServiceRule
}

func (u Mirror) apply(st *state) (bool, error) {
	changed := false
	if u.Full {
		c, err := ReplaceApps{Apps: u.Apps, Keep: u.Keep}.apply(st)
		if err != nil {
			return false, err
		}
		changed = c
	} else {
		for _, id := range u.Removed {
			c, _ := RemoveApp{ID: id}.apply(st)
			changed = c || changed
		}
		for _, a := range u.Apps {
			c, _ := UpsertApp{App: a}.apply(st)
			changed = c || changed
		}
	}
	if u.SetMesos {
		c, _ := ReplaceMesosState{State: u.Mesos}.apply(st)
		changed = c || changed
	}
	if u.SetMarathon && !equalMarathon(st.marathon, u.Marathon) {
		st.marathon = u.Marathon
		changed = true
	}
	if u.SetRules {
		c, _ := ReplaceRules{Rules: u.Rules}.apply(st)
		changed = c || changed
	}
	return changed, nil
}

func equalMarathon(a, b *MarathonState) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// DiffApps calls changed for every app of next that is not the same pointer as the app of the
// same id in prev (added or replaced), and removed for every id of prev that next lacks, both
// in id order. Snapshots share unchanged apps by pointer, and unchanged leaves and branches of
// their sets too: those are skipped whole, so a version that changed one app of 10,000 costs
// a few hundred steps, not 10,000.
func DiffApps(prev, next AppSet, changed func(*App), removed func(id string)) {
	p, n := appCursor{s: prev}, appCursor{s: next}
	for {
		pa, na := p.app(), n.app()
		switch {
		case pa == nil && na == nil:
			return
		case p.sharesBranchWith(&n):
			p.skipBranch()
			n.skipBranch()
		case p.sharesLeafWith(&n):
			p.skipLeaf()
			n.skipLeaf()
		case na == nil || (pa != nil && pa.ID < na.ID):
			removed(pa.ID)
			p.advance()
		case pa == nil || na.ID < pa.ID:
			changed(na)
			n.advance()
		default:
			if pa != na {
				changed(na)
			}
			p.advance()
			n.advance()
		}
	}
}

// appCursor walks an AppSet in id order: branch bi, leaf li, app i.
type appCursor struct {
	s         AppSet
	bi, li, i int
}

func (c *appCursor) app() *App {
	if c.bi >= len(c.s.root) {
		return nil
	}
	return c.s.root[c.bi].leaves[c.li][c.i]
}

func (c *appCursor) advance() {
	c.i++
	if c.i < len(c.s.root[c.bi].leaves[c.li]) {
		return
	}
	c.skipLeaf()
}

func (c *appCursor) skipLeaf() {
	c.i = 0
	c.li++
	if c.li < len(c.s.root[c.bi].leaves) {
		return
	}
	c.skipBranch()
}

func (c *appCursor) skipBranch() { c.bi, c.li, c.i = c.bi+1, 0, 0 }

// sharesBranchWith reports whether both cursors stand at the start of the same branch.
func (c *appCursor) sharesBranchWith(o *appCursor) bool {
	return c.li == 0 && c.i == 0 && o.li == 0 && o.i == 0 &&
		c.bi < len(c.s.root) && o.bi < len(o.s.root) && c.s.root[c.bi] == o.s.root[o.bi]
}

// sharesLeafWith reports whether both cursors stand at the start of the same leaf (the same
// backing array and length: leaves are never written once published).
func (c *appCursor) sharesLeafWith(o *appCursor) bool {
	if c.i != 0 || o.i != 0 || c.bi >= len(c.s.root) || o.bi >= len(o.s.root) {
		return false
	}
	a, b := c.s.root[c.bi].leaves[c.li], o.s.root[o.bi].leaves[o.li]
	return len(a) == len(b) && &a[0] == &b[0]
}
