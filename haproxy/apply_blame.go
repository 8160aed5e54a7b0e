package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
)

// blame is why an app was left out after HAProxy rejected it, and the definition it was
// rejected with.
type blame struct {
	reason string
	alerts []string
	print  string
}

// blameReload remembers the apps whose lines (or frontend or backend) the alerts of a refused
// reload name, as validation does, and reports whether it found any new one.
func (a *Applier) blameReload(snap *discovery.Snapshot, m *Model, r *Rendered, err error) bool {
	var rerr *ReloadError
	if !errors.As(err, &rerr) {
		return false
	}
	return a.blame(snap, m, r, rerr.Alerts, true)
}

// blame remembers the apps the alerts point at (by the lines of r when lines is set, else
// only by frontend or backend name) and reports whether it found any new one.
func (a *Applier) blame(snap *discovery.Snapshot, m *Model, r *Rendered, alerts []Alert, lines bool) bool {
	file := a.cfg.ConfigPath
	if !lines {
		file = ""
	}
	found := false
	for _, al := range alerts {
		owner := alertOwner(al, file, m, r)
		if owner == "" {
			continue
		}
		if a.blamed == nil {
			a.blamed = map[string]blame{}
		}
		b, seen := a.blamed[owner]
		if !seen {
			found = true
			b = blame{reason: "HAProxy refused to load its configuration: " + al.Message, print: definitionPrint(snap, owner)}
		}
		b.alerts = append(b.alerts, al.String())
		a.blamed[owner] = b
	}
	if found {
		a.log.Warn("HAProxy refused to load the configuration; leaving out the apps its alerts point at",
			"apps", slices.Sorted(maps.Keys(a.blamed)), "alerts", len(alerts))
	}
	return found
}

// alertOwner is the app an alert points at: the owner of the line of file it names, else the
// owner of the per-port frontend or the backend it names; "" when it points at no app. With
// file "", lines are not read.
func alertOwner(al Alert, file string, m *Model, r *Rendered) string {
	if al.Line > 0 && file != "" && sameFile(al.File, file) {
		if owner := r.OwnerOf(al.Line); owner != "" {
			return owner
		}
	}
	if al.Proxy == "" {
		return ""
	}
	if f := m.Frontend(al.Proxy); f != nil {
		return f.Owner
	}
	if b := m.Backend(al.Proxy); b != nil {
		return b.Owner
	}
	return ""
}

// validated builds and renders snap, checks it with `haproxy -c`, and when HAProxy rejects it
// leaves out the apps its alerts point at and checks once more: at most two validations
// whatever the number of apps. A check that hangs or crashes without an alert blames one of
// the apps whose sections changed since the configuration HAProxy runs (see hangCulprit) and
// checks again without it, up to maxHangRounds times.
func (a *Applier) validated(ctx context.Context, snap *discovery.Snapshot, running *Model) (*Model, *Rendered, ApplyRecord, error) {
	if a.cfg.Bamboo != nil {
		return a.bambooValidated(ctx, snap)
	}
	var rec ApplyRecord
	exclude := a.stillBlamed(snap)
	alerts := map[string][]string{}
	for owner := range exclude {
		alerts[owner] = a.blamed[owner].alerts
	}
	var last *Rendered
	if running != nil {
		last = a.renderedNow()
	}
	alertRounds, hangRounds := 0, 0
	hung := map[string]blame{}
	for {
		m, r, check, err := a.candidate(ctx, snap, running, exclude, 0, &rec)
		if err != nil {
			a.keepHangBlame(hung)
			return nil, nil, rec, err
		}
		if check == nil {
			if err := a.checkOpenFiles(r.Config); err != nil {
				os.Remove(a.cfg.ConfigPath + ".new")
				return nil, nil, rec, err
			}
			a.setValidationExclusions(alerts)
			a.blamed = make(map[string]blame, len(exclude))
			for owner, reason := range exclude {
				a.blamed[owner] = blame{reason: reason, alerts: alerts[owner], print: definitionPrint(snap, owner)}
			}
			return m, r, rec, nil
		}
		os.Remove(a.cfg.ConfigPath + ".new")
		var verr *ValidationError
		var aborted *CheckAbortedError
		switch {
		case errors.As(check, &aborted) && hangRounds < maxHangRounds:
			hangRounds++
			before := len(exclude)
			culprit, err := a.hangCulprit(ctx, snap, running,
				hangSearch{exclude: exclude, alerts: alerts, last: last, failed: r, aborted: aborted, round: hangRounds}, &rec)
			if err != nil {
				a.keepHangBlame(hung)
				return nil, nil, rec, err
			}
			if culprit == "" {
				if len(exclude) > before {
					continue // alerts blamed apps while it narrowed down: check without them
				}
				return nil, nil, rec, check
			}
			exclude[culprit] = aborted.What() + " with this app's sections"
			alerts[culprit] = append(alerts[culprit], aborted.Error())
			hung[culprit] = blame{reason: exclude[culprit], alerts: alerts[culprit], print: definitionPrint(snap, culprit)}
			a.log.Warn("haproxy -c hung or crashed; leaving out the app that makes it", "app", culprit, "check", aborted.What(), "validations", rec.Validations)
		case errors.As(check, &verr) && alertRounds == 0:
			alertRounds++
			if !a.blameAlerts(verr, m, r, exclude, alerts) {
				// Nothing to blame on an app (a global template, say): keep what runs.
				return nil, nil, rec, check
			}
		default:
			return nil, nil, rec, check
		}
	}
}

// keepHangBlame remembers the apps found making `haproxy -c` hang when the apply ran out of
// time (or lodestar is stopping) before a configuration without them passed: narrowing down
// among thousands of changed apps (a first configuration) can take longer than one apply, and
// the next apply goes on from there instead of starting over. A hang no app is to blame for
// never gets here: it is found out, and nothing kept, when the candidate without any suspect
// hangs too.
func (a *Applier) keepHangBlame(hung map[string]blame) {
	if len(hung) == 0 {
		return
	}
	if a.blamed == nil {
		a.blamed = map[string]blame{}
	}
	for owner, b := range hung {
		a.blamed[owner] = b
	}
}

// blameAlerts adds to exclude the apps the alerts of verr (a check of r) point at, and
// reports whether it found a new one.
func (a *Applier) blameAlerts(verr *ValidationError, m *Model, r *Rendered, exclude map[string]string, alerts map[string][]string) bool {
	blamed := 0
	for _, al := range verr.Alerts {
		owner := alertOwner(al, a.cfg.ConfigPath+".new", m, r)
		if owner == "" {
			continue
		}
		if _, seen := exclude[owner]; !seen {
			// The first alert is the cause; later ones are often its consequences ("no such
			// ACL" after the ACL's own line was refused).
			blamed++
			exclude[owner] = "HAProxy rejected its configuration: " + al.Message
		}
		alerts[owner] = append(alerts[owner], al.String())
	}
	if blamed > 0 {
		a.log.Warn("HAProxy rejected the configuration; leaving out the apps its alerts point at",
			"apps", slices.Sorted(maps.Keys(exclude)), "alerts", len(verr.Alerts))
	}
	return blamed > 0
}

// stillBlamed returns the apps HAProxy rejected whose definition has not changed since, with
// the reason; an app that changed gets another chance.
func (a *Applier) stillBlamed(snap *discovery.Snapshot) map[string]string {
	out := make(map[string]string, len(a.blamed))
	for owner, b := range a.blamed {
		if p := definitionPrint(snap, owner); p != "" && p == b.print {
			out[owner] = b.reason
		}
	}
	return out
}

// definitionPrint sums up what of an app's definition reaches the configuration (labels,
// ports, health checks, networking, its bamboo rule; not its tasks or instance count). An
// owner that is a zero-downtime deployment group ("/<group>") sums up every app of the group
// and the group's rule. "" when no app has that owner any more. A rule is part of it because
// a rule HAProxy rejects leaves its app out, and removing the rule must bring the app back.
func definitionPrint(snap *discovery.Snapshot, owner string) string {
	one := func(app *discovery.App) string {
		return fmt.Sprint(app.ID, app.Labels, app.Ports, app.HealthChecks, app.Network, snap.Rules[app.ID].ACL)
	}
	if app := snap.App(owner); app != nil {
		return one(app)
	}
	group := strings.TrimPrefix(owner, "/")
	var b strings.Builder
	snap.Apps.Each(func(app *discovery.App) bool {
		if app.Labels[LabelDeploymentGroup] == group {
			b.WriteString(one(app))
		}
		return true
	})
	if b.Len() > 0 {
		b.WriteString(snap.Rules[owner].ACL)
	}
	return b.String()
}

// buildConfig is the build configuration with exclusions.
func (a *Applier) buildConfig(exclude map[string]string) Config {
	c := a.cfg.Build
	c.Exclude = exclude
	return c
}

// writeCandidate writes r as cfgPath for `haproxy -c`, with its map files in a new
// directory next to it and the configuration's map paths pointed there (on the same lines, so
// alerts keep their line numbers): a candidate that fails never touched the live map files.
// cleanup removes the candidate's map files.
func writeCandidate(cfgPath string, r *Rendered) (cleanup func(), err error) {
	cleanup = func() {}
	config := r.Config
	if len(r.Maps) > 0 {
		dir, err := os.MkdirTemp(filepath.Dir(cfgPath), ".maps-check-")
		if err != nil {
			return cleanup, fmt.Errorf("writing map files for validation: %w", err)
		}
		cleanup = func() { os.RemoveAll(dir) }
		for _, path := range slices.Sorted(maps.Keys(r.Maps)) {
			tmp := filepath.Join(dir, filepath.Base(path))
			if err := os.WriteFile(tmp, r.Maps[path], 0o644); err != nil {
				return cleanup, fmt.Errorf("writing map file for validation: %w", err)
			}
			config = bytes.ReplaceAll(config, []byte(path), []byte(tmp))
		}
	}
	if err := WriteFileAtomic(cfgPath, config, 0o644); err != nil {
		return cleanup, fmt.Errorf("writing the HAProxy configuration: %w", err)
	}
	return cleanup, nil
}

// ForgetBlame forgets the apps HAProxy rejected (they otherwise stay out until their
// definition changes) and rebuilds, so that they are tried again: what an operator's full
// resync (/_mlb_signal/hup) asks for. It does not wait.
func (a *Applier) ForgetBlame() {
	select {
	case a.forget <- struct{}{}:
	default: // one is pending already
	}
}

// sameFile reports whether HAProxy's alert file name names path.
func sameFile(alertFile, path string) bool {
	return alertFile == path || filepath.Base(alertFile) == filepath.Base(path)
}

// Check builds snap and validates it the way Run would (leaving out the apps HAProxy's
// alerts point at), without installing it or touching HAProxy: `lodestar render --check`.
// It returns the configuration, every app left out, and how many `haproxy -c` runs it took.
func (a *Applier) Check(ctx context.Context, snap *discovery.Snapshot) ([]byte, []ExcludedApp, int, error) {
	m, r, rec, err := a.validated(ctx, snap, nil)
	if err != nil {
		return nil, nil, rec.Validations, err
	}
	os.Remove(a.cfg.ConfigPath + ".new")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setModelExclusionsLocked(m)
	return r.Config, slices.Clone(a.status.Excluded), rec.Validations, nil
}
