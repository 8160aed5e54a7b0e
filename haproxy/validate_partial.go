package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Partial validation: at 10,000 apps `haproxy -c` of the whole configuration takes seconds,
// and every structural change (one new app, one label) would pay it before its reload. When
// HAProxy runs a configuration it took (the Applier marked it good) and the new one differs
// from it only in per-app sections, the candidate `haproxy -c` reads is the HEAD (global,
// defaults, stats) and the userlists as they are, the sections that changed or are new, the
// shared frontends' lines of the apps whose routes changed, the unchanged sections those name
// in a way a stub cannot stand in for, and a stub ("backend <name>" with its mode, no
// servers) for every other backend they route to. Deleted sections need no check.
//
// Why that is safe. Every section of the running configuration passed a check and then a
// reload, in this same context (the same HEAD and defaults, the same run directory and map
// mode): what can fail now is in what changed, and in what it names, which the candidate
// holds. What a changed section can break elsewhere without naming it (a backend that
// another app's unchanged rule tests with srv_is_up(b/s3) lost that server) is not seen
// before the reload; but the reload itself is HAProxy reading the whole file, and when it
// refuses it the master keeps the old worker serving and the Applier puts the last good file
// back (reload). Only the blame would be lost, so after a partial check whose reload fails
// the whole configuration is checked before anyone is blamed (blameFailedReload), and the
// next validation is a full one. Partial checks are never used when lodestar cannot reason
// about the text: bamboo templates, --label-templates full, a HEAD, defaults or shared
// frontend head that changed, a changed section holding another section header or a
// conditional block (".if"), a deleted section or ACL still named somewhere, a backend whose
// mode changed, or an alert that points at a stub. There is no periodic full check: each
// successful reload is one.

// partialState is what partial validation remembers between applies. Owned by Run.
type partialState struct {
	// fullNext says why the next validation must check the whole configuration ("" when it
	// need not): the last validation or reload failed.
	fullNext string
	// secsOf and secs are the sections of the last good rendering, sliced once.
	secsOf *Rendered
	secs   *sectionMap
}

// Validation kinds, as ApplyRecord.Validation reports them.
const (
	validationFull    = "full"
	validationPartial = "partial"
)

// span is a byte range of a rendered configuration and the 1-based line it starts on.
type span struct{ start, end, line int }

// sectionMap locates a model's sections in its rendering, in Render's order.
type sectionMap struct {
	head      span
	userlists []span
	shared    [3]sharedSpans // HTTP, AppID, HTTPS
	frontends []span
	backends  []span
}

type sharedSpans struct {
	head  span
	rules []span
}

// sharedOf is m's shared frontends in Render's order.
func sharedOf(m *Model) [3]*SharedFrontend { return [3]*SharedFrontend{m.HTTP, m.AppID, m.HTTPS} }

// sliceRendered finds m's sections in r, which Render made of m; false when r is not laid out
// as expected (then nothing partial is attempted).
func sliceRendered(m *Model, r *Rendered) (*sectionMap, bool) {
	cfg := r.Config
	pos, line := 0, 1
	take := func(text string) (span, bool) {
		if len(cfg)-pos < len(text) || string(cfg[pos:pos+len(text)]) != text {
			return span{}, false
		}
		sp := span{pos, pos + len(text), line}
		pos, line = sp.end, line+strings.Count(text, "\n")
		return sp, true
	}
	s := &sectionMap{}
	var ok bool
	if s.head, ok = take(m.Head); !ok {
		return nil, false
	}
	for _, u := range m.Userlists {
		sp, ok := take(u.Text)
		if !ok {
			return nil, false
		}
		s.userlists = append(s.userlists, sp)
	}
	for i, f := range sharedOf(m) {
		if f == nil {
			continue
		}
		if s.shared[i].head, ok = take(f.Head); !ok {
			return nil, false
		}
		for _, rule := range f.Rules {
			sp, ok := take(rule.Text + "\n")
			if !ok {
				return nil, false
			}
			s.shared[i].rules = append(s.shared[i].rules, sp)
		}
	}
	for _, f := range m.Frontends {
		sp, ok := take(f.Text)
		if !ok {
			return nil, false
		}
		s.frontends = append(s.frontends, sp)
	}
	for i, b := range m.Backends {
		if b.Head == "" || string(cfg[pos:min(len(cfg), pos+len(b.Head))]) != b.Head {
			return nil, false
		}
		end := len(cfg)
		if i+1 < len(m.Backends) {
			next := m.Backends[i+1].Head
			at := bytes.Index(cfg[pos+len(b.Head):], []byte(next))
			if next == "" || at < 0 {
				return nil, false
			}
			end = pos + len(b.Head) + at
		}
		sp := span{pos, end, line}
		s.backends = append(s.backends, sp)
		pos, line = end, line+bytes.Count(cfg[sp.start:end], []byte{'\n'})
	}
	return s, pos == len(cfg)
}

// partialCandidate is a candidate made of what changed, and how its lines map back.
type partialCandidate struct {
	// config is the candidate's text; it reads the full configuration's map files.
	config []byte
	// lines[i] is the line of the full configuration that line i+1 of the candidate is; 0
	// for a stub's lines.
	lines []int
	// stubs are the backends written as stubs.
	stubs map[string]bool
	// sections counts the changed or new sections (frontends, backends, apps' shared
	// frontend lines) the candidate checks.
	sections int
}

// partialCandidate returns the partial candidate of r (rendered from m) against the last good
// configuration, or nil and why the whole configuration must be checked.
func (a *Applier) partialCandidate(running, m *Model, r *Rendered) (*partialCandidate, string) {
	switch {
	case a.cfg.Bamboo != nil:
		return nil, "bamboo template"
	case a.cfg.Build.LabelTemplates == LabelTemplatesFull:
		return nil, "--label-templates full"
	case running == nil || a.good.m == nil || a.good.r == nil || running != a.good.m:
		return nil, "no running configuration known good"
	case a.partial.fullNext != "":
		return nil, a.partial.fullNext
	}
	old := a.good.m
	if old.Head != m.Head || old.RunDir != m.RunDir || old.HAProxyMap != m.HAProxyMap {
		return nil, "HEAD, run directory or map mode changed"
	}
	oldShared, newShared := sharedOf(old), sharedOf(m)
	for i := range newShared {
		if (oldShared[i] == nil) != (newShared[i] == nil) || (newShared[i] != nil && oldShared[i].Head != newShared[i].Head) {
			return nil, "a shared frontend's head changed"
		}
	}
	if a.partial.secsOf != a.good.r {
		a.partial.secsOf, a.partial.secs = a.good.r, nil
		if secs, ok := sliceRendered(old, a.good.r); ok {
			a.partial.secs = secs
		}
	}
	secs, ok := sliceRendered(m, r)
	if !ok || a.partial.secs == nil {
		return nil, "configuration not laid out as rendered"
	}
	p := newPartialBuilder(m, r, secs)
	if why := p.diff(old, a.good.r, a.partial.secs); why != "" {
		return nil, why
	}
	if why := p.close(); why != "" {
		return nil, why
	}
	return p.write(), ""
}

// partialBuilder decides what goes into a partial candidate.
type partialBuilder struct {
	m    *Model
	cfg  []byte
	secs *sectionMap
	// backends and frontends index m's sections by name; shared names the shared frontends.
	backends, frontends map[string]int
	shared              map[string]int
	// real marks the sections written as they are, stub the backends written as stubs, rules
	// the shared frontends' lines written (per shared frontend), sharedIn the shared frontends
	// written at all.
	realB, realF, stubB []bool
	rules               [3][]bool
	sharedIn            [3]bool
	// acls are, per shared frontend, the lines defining each ACL name.
	acls [3]map[string][]int
	// todo are the texts still to be read for what they name; sections counts changes.
	todo     []scanItem
	sections int
}

// scanItem is a text of the candidate to read for the names in it: a section (whose own
// header is header, "" for a shared frontend line, which has none), in shared frontend
// shared (-1 for none).
type scanItem struct {
	sp     span
	header string
	shared int
	// head is set for the HEAD, which is unchanged and holds sections of its own.
	head bool
}

func newPartialBuilder(m *Model, r *Rendered, secs *sectionMap) *partialBuilder {
	p := &partialBuilder{m: m, cfg: r.Config, secs: secs,
		backends: make(map[string]int, len(m.Backends)), frontends: make(map[string]int, len(m.Frontends)), shared: map[string]int{},
		realB: make([]bool, len(m.Backends)), stubB: make([]bool, len(m.Backends)), realF: make([]bool, len(m.Frontends))}
	for i, b := range m.Backends {
		p.backends[b.Name] = i
	}
	for i, f := range m.Frontends {
		p.frontends[f.Name] = i
	}
	for i, f := range sharedOf(m) {
		if f != nil {
			p.shared[f.Name] = i
			p.rules[i] = make([]bool, len(f.Rules))
		}
	}
	return p
}

// diff marks what changed since old (rendered as oldR, sliced as oldSecs); it returns why
// the whole configuration must be checked, "" when it need not.
func (p *partialBuilder) diff(old *Model, oldR *Rendered, oldSecs *sectionMap) string {
	oldB := make(map[string]int, len(old.Backends))
	for i, b := range old.Backends {
		oldB[b.Name] = i
	}
	for i, b := range p.m.Backends {
		j, ok := oldB[b.Name]
		if ok && old.Backends[j].Owner == b.Owner && bytes.Equal(spanOf(oldR.Config, oldSecs.backends[j]), spanOf(p.cfg, p.secs.backends[i])) {
			continue
		}
		if ok && old.Backends[j].Mode != b.Mode {
			return "backend " + b.Name + " changed its mode"
		}
		p.sections++
		p.markBackend(i, true)
	}
	for i, f := range p.m.Frontends {
		if of := old.Frontend(f.Name); of != nil && of.Owner == f.Owner && of.Text == f.Text {
			continue
		}
		p.sections++
		p.markFrontend(i)
	}
	var gone []string
	for _, b := range old.Backends {
		if _, ok := p.backends[b.Name]; !ok {
			gone = append(gone, b.Name)
		}
	}
	for _, f := range old.Frontends {
		if _, ok := p.frontends[f.Name]; !ok {
			gone = append(gone, f.Name)
		}
	}
	for _, u := range old.Userlists {
		if !slices.ContainsFunc(p.m.Userlists, func(n *Userlist) bool { return n.Name == u.Name }) {
			gone = append(gone, u.Name)
		}
	}
	oldShared := sharedOf(old)
	for i, f := range sharedOf(p.m) {
		if f == nil {
			continue
		}
		gone = append(gone, p.diffRules(i, oldShared[i], f)...)
	}
	return p.stillNamed(gone)
}

// diffRules marks the lines of the apps whose lines in shared frontend i changed, and returns
// the ACL names it no longer defines.
func (p *partialBuilder) diffRules(i int, old, f *SharedFrontend) []string {
	byOwner := func(rules []Rule) map[string][]string {
		out := map[string][]string{}
		for _, r := range rules {
			out[r.Owner] = append(out[r.Owner], r.Text)
		}
		return out
	}
	before, now := byOwner(old.Rules), byOwner(f.Rules)
	changed := map[string]bool{}
	for owner, texts := range now {
		if !slices.Equal(before[owner], texts) {
			changed[owner] = true
			p.sections++
		}
	}
	p.acls[i] = map[string][]int{}
	defined := map[string]bool{}
	for k, r := range f.Rules {
		if name, ok := aclName(r.Text); ok {
			p.acls[i][name] = append(p.acls[i][name], k)
			defined[name] = true
		}
	}
	var gone []string
	for _, r := range old.Rules {
		if name, ok := aclName(r.Text); ok && !defined[name] {
			gone = append(gone, name)
		}
	}
	if len(changed) == 0 {
		return gone
	}
	for k, r := range f.Rules {
		if changed[r.Owner] || r.Owner == "" {
			p.markRule(i, k)
		}
	}
	return gone
}

// maxGoneNames bounds the deleted names looked for in the new configuration, each a scan of
// the whole file: past it, the whole configuration is checked instead.
const maxGoneNames = 64

// stillNamed returns why the whole configuration must be checked when a deleted section or ACL
// is still named anywhere in the new configuration (an unchanged section would lose what it
// refers to, which a partial check cannot see), "" when none is.
func (p *partialBuilder) stillNamed(gone []string) string {
	if len(gone) > maxGoneNames {
		return fmt.Sprintf("%d sections or ACLs deleted", len(gone))
	}
	for _, name := range gone {
		if containsToken(p.cfg, name) {
			return "deleted " + name + " is still named"
		}
	}
	return ""
}

// containsToken reports whether name occurs in text as a whole name (not inside a longer one).
func containsToken(text []byte, name string) bool {
	for rest, off := text, 0; ; {
		at := bytes.Index(rest[off:], []byte(name))
		if at < 0 {
			return false
		}
		at += off
		before := at == 0 || !isNameByte(rest[at-1])
		after := at+len(name) == len(rest) || !isNameByte(rest[at+len(name)])
		if before && after {
			return true
		}
		off = at + 1
	}
}

// isNameByte reports whether c may be part of a proxy, userlist or ACL name.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':'
}

// aclName is the name an "acl <name> …" line defines.
func aclName(line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) >= 2 && f[0] == "acl" {
		return f[1], true
	}
	return "", false
}

func spanOf(cfg []byte, sp span) []byte { return cfg[sp.start:sp.end] }

func (p *partialBuilder) markBackend(i int, real bool) {
	if !real {
		if !p.realB[i] {
			p.stubB[i] = true
		}
		return
	}
	if p.realB[i] {
		return
	}
	p.realB[i], p.stubB[i] = true, false
	p.todo = append(p.todo, scanItem{sp: p.secs.backends[i], header: "backend " + p.m.Backends[i].Name, shared: -1})
}

func (p *partialBuilder) markFrontend(i int) {
	if p.realF[i] {
		return
	}
	p.realF[i] = true
	p.todo = append(p.todo, scanItem{sp: p.secs.frontends[i], header: "frontend " + p.m.Frontends[i].Name, shared: -1})
}

func (p *partialBuilder) markRule(i, k int) {
	if !p.sharedIn[i] {
		p.sharedIn[i] = true
		p.todo = append(p.todo, scanItem{sp: p.secs.shared[i].head, header: "frontend " + sharedOf(p.m)[i].Name, shared: i})
	}
	if p.rules[i][k] {
		return
	}
	p.rules[i][k] = true
	p.todo = append(p.todo, scanItem{sp: p.secs.shared[i].rules[k], shared: i})
}

// close reads every text the candidate holds for the names it refers to, and adds what they
// name until nothing new is named; it returns why the whole configuration must be checked
// instead, "" when it need not.
func (p *partialBuilder) close() string {
	p.todo = append(p.todo, scanItem{sp: p.secs.head, shared: -1, head: true})
	for _, sp := range p.secs.userlists {
		p.todo = append(p.todo, scanItem{sp: sp, header: "userlist", shared: -1})
	}
	for len(p.todo) > 0 {
		it := p.todo[len(p.todo)-1]
		p.todo = p.todo[:len(p.todo)-1]
		if why := p.scan(it); why != "" {
			return why
		}
	}
	return ""
}

// scan reads one text of the candidate line by line: a section header other than the text's
// own, or a conditional block, makes the whole configuration be checked; the target of a
// use_backend or default_backend line that is not in the candidate gets a stub; any other
// name of a section or ACL not in the candidate brings that in as it is.
func (p *partialBuilder) scan(it scanItem) string {
	ownHeader := false
	for _, line := range strings.Split(string(spanOf(p.cfg, it.sp)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if !it.head {
			if strings.HasPrefix(f[0], ".") {
				return "a changed section holds the directive " + f[0]
			}
			if _, ok := sectionKeywords[f[0]]; ok { // confine_rules.go
				own := it.header != "" && !ownHeader && (strings.Join(f[:min(2, len(f))], " ") == it.header || it.header == "userlist" && f[0] == "userlist")
				if !own {
					return "a changed section holds a section header: " + line
				}
				ownHeader = true
				continue
			}
		}
		target := ""
		if len(f) >= 2 && (f[0] == "use_backend" || f[0] == "default_backend") {
			target = f[1]
		}
		if why := p.names(line, target, it.shared); why != "" {
			return why
		}
	}
	return ""
}

// names brings in what the names in line refer to; target (the use_backend or default_backend
// target of the line) may be a stub.
func (p *partialBuilder) names(line, target string, shared int) string {
	for i := 0; i < len(line); {
		if !isNameByte(line[i]) {
			i++
			continue
		}
		j := i
		for j < len(line) && isNameByte(line[j]) {
			j++
		}
		name := line[i:j]
		i = j
		k, ok := p.backends[name]
		if ok && name == target {
			// The first mention of the target is the target: a stub will do.
			p.markBackend(k, !stubbable(p.m.Backends[k]))
			target = ""
			continue
		}
		if ok {
			p.markBackend(k, true)
		}
		if k, ok := p.frontends[name]; ok {
			p.markFrontend(k)
		}
		if k, ok := p.shared[name]; ok && k != shared && !p.sharedIn[k] {
			return "a changed section names the shared frontend " + name
		}
		if shared >= 0 {
			for _, rule := range p.acls[shared][name] {
				p.markRule(shared, rule)
			}
		}
	}
	return ""
}

// write assembles the candidate: HEAD, userlists, the chosen shared frontend lines, frontends
// and backends in the full configuration's order, then the stubs.
func (p *partialBuilder) write() *partialCandidate {
	pc := &partialCandidate{stubs: map[string]bool{}, sections: p.sections}
	var buf []byte
	add := func(sp span) {
		buf = append(buf, spanOf(p.cfg, sp)...)
		for k := range bytes.Count(spanOf(p.cfg, sp), []byte{'\n'}) {
			pc.lines = append(pc.lines, sp.line+k)
		}
	}
	add(p.secs.head)
	for _, sp := range p.secs.userlists {
		add(sp)
	}
	for i := range p.secs.shared {
		if !p.sharedIn[i] {
			continue
		}
		add(p.secs.shared[i].head)
		for k, in := range p.rules[i] {
			if in {
				add(p.secs.shared[i].rules[k])
			}
		}
	}
	for i, in := range p.realF {
		if in {
			add(p.secs.frontends[i])
		}
	}
	for i, in := range p.realB {
		if in {
			add(p.secs.backends[i])
		}
	}
	for i, in := range p.stubB {
		if !in {
			continue
		}
		b := p.m.Backends[i]
		buf = fmt.Appendf(buf, "backend %s\n  mode %s\n", b.Name, b.Mode)
		pc.lines = append(pc.lines, 0, 0)
		pc.stubs[b.Name] = true
	}
	pc.config = buf
	return pc
}

// stubbable reports whether b can be stood in for by a stub: its mode is one a stub can
// write.
func stubbable(b *Backend) bool { return b.Mode == "http" || b.Mode == "tcp" }

// checkCandidate writes r (or, when pc is set, the partial candidate) as tmp and checks it
// within timeout (0: checkTimeout's). A partial check's alerts are given the full
// configuration's line numbers, so that blame reads r's owners; an alert that points at a
// stub (its line or its proxy) makes the whole configuration be checked instead.
func (a *Applier) checkCandidate(ctx context.Context, tmp string, r *Rendered, pc *partialCandidate, timeout time.Duration, rec *ApplyRecord) (check, err error) {
	text := r
	if pc != nil {
		text = &Rendered{Config: pc.config, Maps: r.Maps}
	}
	cleanup, err := writeCandidate(tmp, text)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	rec.Validations++
	rec.Validation, rec.ValidatedSections = validationFull, 0
	if pc != nil {
		rec.Validation, rec.ValidatedSections = validationPartial, pc.sections
	}
	start := time.Now()
	if timeout == 0 {
		timeout = checkTimeout(len(text.Config), time.Duration(a.lastCheckPassed.Load()), a.cfg.CheckTimeout)
	}
	check = ValidateWithin(ctx, a.cfg.Bin, tmp, timeout)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("checking the configuration: %w", ctx.Err())
	}
	ObserveValidation(check == nil)
	if check == nil {
		if pc == nil {
			a.partial.fullNext = ""
			a.lastCheckPassed.Store(int64(time.Since(start)))
		}
		return nil, nil
	}
	var verr *ValidationError
	if pc != nil && errors.As(check, &verr) && !pc.remap(verr, tmp) {
		a.log.Info("a partial haproxy -c pointed at a stub; checking the whole configuration", "alerts", len(verr.Alerts))
		return a.checkCandidate(ctx, tmp, r, nil, timeout, rec)
	}
	return check, nil
}

// remap gives verr's alerts on the candidate tmp the full configuration's line numbers; false
// when one points at a stub.
func (pc *partialCandidate) remap(verr *ValidationError, tmp string) bool {
	for i := range verr.Alerts {
		al := &verr.Alerts[i]
		if al.Line > 0 && sameFile(al.File, tmp) {
			if al.Line > len(pc.lines) || pc.lines[al.Line-1] == 0 {
				return false
			}
			al.Line = pc.lines[al.Line-1]
		}
		if pc.stubs[al.Proxy] {
			return false
		}
	}
	return true
}

// noteValidationFailed makes the next validation check the whole configuration.
func (a *Applier) noteValidationFailed(why string) { a.partial.fullNext = why }

// blameFailedReload blames the apps a reload HAProxy refused points at. When only a partial
// candidate was checked before it, the whole configuration is checked first: its alerts name
// lines of the file, which the reload's alerts may not (a reference a partial candidate could
// not see). The next validation is a full one either way.
func (a *Applier) blameFailedReload(ctx context.Context, snap *discovery.Snapshot, m *Model, r *Rendered, reloadErr error, rec *ApplyRecord) bool {
	a.partial.fullNext = "the last reload failed"
	if rec.Validation != validationPartial {
		return a.blameReload(snap, m, r, reloadErr)
	}
	tmp := a.cfg.ConfigPath + ".new"
	check, err := a.checkCandidate(ctx, tmp, r, nil, 0, rec)
	os.Remove(tmp)
	var verr *ValidationError
	if err == nil && errors.As(check, &verr) {
		alerts := slices.Clone(verr.Alerts)
		for i := range alerts {
			if sameFile(alerts[i].File, tmp) {
				alerts[i].File = a.cfg.ConfigPath // the lines are those of r, the file just reloaded
			}
		}
		if a.blame(snap, m, r, alerts, true) {
			return true
		}
	}
	return a.blameReload(snap, m, r, reloadErr)
}
