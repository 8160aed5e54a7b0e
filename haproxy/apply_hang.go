package haproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// DefaultCheckTimeout is the shortest time one `haproxy -c` of a candidate is given before it
// counts as hung (ApplierConfig.CheckTimeout).
const DefaultCheckTimeout = 5 * time.Second

// checkSecondsPerMB is how much longer a candidate's check may take per MB of configuration:
// `haproxy -c` reads 10,000 apps (6.5 MB) in 4 to 6 s on a loaded 2-core machine.
const checkSecondsPerMB = 3

// maxHangRounds bounds how many apps one apply can find making `haproxy -c` hang or crash:
// each costs a few timed-out checks.
const maxHangRounds = 4

// checkTimeout is how long a check of a size-byte candidate may run before it counts as hung:
// floor, plus checkSecondsPerMB per MB, and at least five times the last check that passed
// (a slow machine), but never more than ValidateTimeout.
func checkTimeout(size int, lastPassed, floor time.Duration) time.Duration {
	t := floor + time.Duration(size)*checkSecondsPerMB*time.Second/(1<<20)
	t = max(t, 5*lastPassed)
	return min(t, ValidateTimeout)
}

// candidate builds snap without the apps of exclude, renders it and checks it with
// `haproxy -c` within timeout (0: checkTimeout's): check is the check's verdict (nil when
// HAProxy accepts it), err an error that stops the apply (rendering, writing the file, ctx
// ended).
func (a *Applier) candidate(ctx context.Context, snap *discovery.Snapshot, running *Model, exclude map[string]string,
	timeout time.Duration, rec *ApplyRecord) (m *Model, r *Rendered, check, err error) {
	// What is validated is reloaded onto: the free slots of dynamic backends go (see
	// Config.ShrinkSlots).
	cfg := a.buildConfig(exclude)
	cfg.ShrinkSlots = true
	m = timedBuild(snap, cfg, running)
	r, err = timedRender(m)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("rendering: %w", err)
	}
	// Only what changed since the configuration HAProxy runs, when that is safe
	// (validate_partial.go).
	pc, why := a.partialCandidate(running, m, r)
	if pc == nil {
		a.log.Debug("checking the whole configuration", "why", why)
	}
	check, err = a.checkCandidate(ctx, a.cfg.ConfigPath+".new", r, pc, timeout, rec)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, r, check, nil
}

// hangSearch is one round of finding an app that makes `haproxy -c` hang or crash.
type hangSearch struct {
	// exclude and alerts are the apply's apps left out so far, with HAProxy's words for them.
	exclude map[string]string
	alerts  map[string][]string
	// last is the configuration HAProxy last accepted (nil: none); failed the candidate whose
	// check hung or crashed, with aborted.
	last, failed *Rendered
	aborted      *CheckAbortedError
	// round counts the rounds of this apply, from 1.
	round int
}

// hangCulprit finds one app that makes the check of s.failed (rendered from snap without the
// apps of s.exclude) hang or crash: the suspects are the apps whose sections changed since
// s.last, and it halves them until one is left (see oneCulprit). From the second round on
// (one culprit is out and the check still fails) it first checks the candidate without any
// suspect: when that fails too, the trouble is not an app's and no one is blamed. "" when no
// app can be blamed.
//
// A candidate HAProxy rejects with alerts did not hang (HAProxy reads on after an error, so a
// hanging line would have hung it): the apps the alerts point at are added to s.exclude, with
// their alerts, and the halving counts that candidate as passed. Narrowing down a crash gives
// every candidate ValidateTimeout: a crash is quick, and a candidate that passes slowly on a
// loaded machine must not count as failing.
func (a *Applier) hangCulprit(ctx context.Context, snap *discovery.Snapshot, running *Model, s hangSearch, rec *ApplyRecord) (string, error) {
	var suspects []string
	for _, owner := range changedOwners(s.last, s.failed) {
		if _, out := s.exclude[owner]; !out {
			suspects = append(suspects, owner)
		}
	}
	if len(suspects) == 0 {
		return "", nil
	}
	var timeout time.Duration
	if !s.aborted.TimedOut {
		timeout = ValidateTimeout
	}
	hangs := func(included []string) (bool, error) {
		ex := maps.Clone(s.exclude)
		for _, o := range suspects {
			if _, out := ex[o]; !out && !slices.Contains(included, o) {
				ex[o] = "left out while finding the app that makes haproxy -c hang"
			}
		}
		m, r, check, err := a.candidate(ctx, snap, running, ex, timeout, rec)
		var verr *ValidationError
		if errors.As(check, &verr) {
			a.blameAlerts(verr, m, r, s.exclude, s.alerts)
			return false, err
		}
		return check != nil, err
	}
	if s.round > 1 {
		if bad, err := hangs(nil); err != nil || bad {
			return "", err
		}
	}
	culprit, err := oneCulprit(suspects, hangs)
	if _, blamed := s.exclude[culprit]; blamed {
		// Its alerts blamed it meanwhile (it was the last one left): it is out already.
		return "", err
	}
	return culprit, err
}

// oneCulprit finds one of suspects that makes a check fail, given that the check with every
// suspect included fails: it checks half of the candidates, keeps the half that fails (or,
// when it passes, keeps that half included and goes on with the other), until one is left.
// That is about log2(len(suspects)) checks, none for a single suspect. fails checks a
// candidate with only the included suspects.
func oneCulprit(suspects []string, fails func(included []string) (bool, error)) (string, error) {
	var passed []string
	cands := suspects
	for len(cands) > 1 {
		half := cands[:len(cands)/2]
		bad, err := fails(append(slices.Clip(passed), half...))
		if err != nil {
			return "", err
		}
		if bad {
			cands = half
			continue
		}
		passed = append(passed, half...)
		cands = cands[len(half):]
	}
	return cands[0], nil
}

// changedOwners returns, sorted, the apps whose lines in next differ from their lines in last
// (or that last lacks); every app of next when last is nil. Lines owned by no app (HEAD, the
// shared frontends' heads) are nobody's.
func changedOwners(last, next *Rendered) []string {
	before := ownerDigests(last)
	var out []string
	for owner, d := range ownerDigests(next) {
		if old, ok := before[owner]; !ok || old != d {
			out = append(out, owner)
		}
	}
	slices.Sort(out)
	return out
}

// ownerDigests sums up each app's lines of r, in order.
func ownerDigests(r *Rendered) map[string][sha256.Size]byte {
	if r == nil {
		return nil
	}
	lines := map[string][]byte{}
	cfg := r.Config
	for _, owner := range r.Owner {
		end := len(cfg)
		if i := bytes.IndexByte(cfg, '\n'); i >= 0 {
			end = i + 1
		}
		if owner != "" {
			lines[owner] = append(lines[owner], cfg[:end]...)
		}
		cfg = cfg[end:]
	}
	out := make(map[string][sha256.Size]byte, len(lines))
	for owner, text := range lines {
		out[owner] = sha256.Sum256(text)
	}
	return out
}
