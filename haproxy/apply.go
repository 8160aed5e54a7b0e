package haproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Defaults of ApplierConfig.
const (
	DefaultReloadMinWait = 500 * time.Millisecond
	DefaultReloadMaxWait = 5 * time.Second
	// applyTimeout bounds one apply: validation, runtime commands, reload and its confirmation.
	applyTimeout = 2 * time.Minute
	// firstRetry and firstRetryMax bound the wait between attempts at a first configuration
	// HAProxy rejects with nothing to blame on an app (a new snapshot retries at once).
	firstRetry    = time.Second
	firstRetryMax = time.Minute
)

// ApplierConfig configures an Applier.
type ApplierConfig struct {
	// Build is how configurations are built (groups, binds, templates, …). Build.Exclude is
	// the Applier's: it sets it to drop apps HAProxy's validation blamed.
	Build Config
	// Bin is the haproxy binary, used for `haproxy -c`.
	Bin string
	// ConfigPath is the configuration file HAProxy runs; <RunDir>/haproxy.cfg when empty.
	ConfigPath string
	// ReloadMinWait and ReloadMaxWait coalesce reloads: a structural change waits until no
	// other change came for ReloadMinWait, but never longer than ReloadMaxWait after the first
	// one (consul-template's quiescence). Runtime API changes are applied at once.
	// ReloadMinWait 0 is no wait: a structural change reloads at once (cmd passes
	// DefaultReloadMinWait unless --reload-min-wait says otherwise); a ReloadMaxWait of 0 is
	// DefaultReloadMaxWait, or ReloadMinWait when that is longer.
	ReloadMinWait, ReloadMaxWait time.Duration
	Logger                       *slog.Logger
}

// Applier keeps a running HAProxy on the registry's newest snapshot, cheapest way first: a
// snapshot that changes nothing HAProxy sees does nothing; one that changes only servers or
// map entries goes through the Runtime API (and the files on disk are rewritten to match); a
// structural change is validated with `haproxy -c`, installed and reloaded. A configuration
// that fails validation never reaches HAProxy: the apps its alerts point at (by line, or by
// the frontend or backend they name) are left out and the rest is validated once more. A
// reload HAProxy refuses after `haproxy -c` passed (a bind it cannot take) puts the previous
// files back and keeps the previous model; the apps its alerts point at are left out and the
// rest is reloaded at once. Left-out apps stay out until their definition changes or
// ForgetBlame is called.
//
// One goroutine (Run) owns the running model and everything that changes HAProxy, the reload
// of the file on disk (ReloadFromDisk) included; the API reads Status, Config and the maps
// through a mutex-protected copy.
type Applier struct {
	cfg  ApplierConfig
	log  *slog.Logger
	proc *Process

	// written is closed once the first configuration is on disk: HAProxy can start.
	written chan struct{}
	// requests carries work that must not overlap an apply (ReloadFromDisk) into Run's loop;
	// forget asks the loop to forget what HAProxy blamed (ForgetBlame); stopped is closed when
	// Run returns.
	requests chan loopRequest
	forget   chan struct{}
	stopped  chan struct{}
	// clock times the reload window (a fake one in tests).
	clock clock
	// writtenBeforeStart is set when a configuration was installed after the first one but
	// before HAProxy answered: HAProxy may have started on the older file. Owned by Run.
	writtenBeforeStart bool

	mu       sync.Mutex
	running  *Model    // what HAProxy runs (owned by Run; published here for readers)
	rendered *Rendered // its rendering
	status   ApplierStatus
	applied  bool
	// validationAlerts holds, per app, HAProxy's alerts from the newest validation that
	// left it out.
	validationAlerts map[string][]string

	// blamed are the apps (or deployment groups) HAProxy's validation rejected. They stay out,
	// without another validation, until their definition changes. Owned by Run's goroutine.
	blamed map[string]blame
}

// blame is why an app was left out after HAProxy rejected it, and the definition it was
// rejected with.
type blame struct {
	reason string
	alerts []string
	print  string
}

// ApplierStatus is what GET /v1/haproxy/status reports.
type ApplierStatus struct {
	// ConfigPath is the file HAProxy runs.
	ConfigPath string `json:"config_path"`
	// LastApply is the newest apply; nil before the first.
	LastApply *ApplyRecord `json:"last_apply"`
	// LastReload is the newest apply that reloaded HAProxy; nil before the first.
	LastReload *ApplyRecord `json:"last_reload,omitempty"`
	// Reloads and RuntimeApplies count applies of each kind since start.
	Reloads        int `json:"reloads"`
	RuntimeApplies int `json:"runtime_applies"`
	// Excluded are the apps and ports left out of the running configuration: for a label or
	// template error, or because HAProxy's validation failed on their lines.
	Excluded []ExcludedApp `json:"excluded"`
	// Warnings are labels that were ignored.
	Warnings []Warning `json:"warnings"`
	// Process is the supervised HAProxy.
	Process ProcessStatus `json:"process"`
}

// ApplyRecord describes one apply.
type ApplyRecord struct {
	// Kind is "runtime" (Runtime API only), "reload", "write" (before HAProxy runs, the
	// configuration is only written) or "failed".
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Duration is how long the apply took, validation and reload confirmation included.
	Duration string `json:"duration"`
	// Commands is the number of Runtime API commands sent.
	Commands int `json:"commands"`
	// Validations is the number of `haproxy -c` runs (at most 2).
	Validations int    `json:"validations"`
	Error       string `json:"error,omitempty"`
}

// ExcludedApp is an app or port left out, with why.
type ExcludedApp struct {
	AppID string `json:"app_id"`
	// Port is the port index, -1 for the whole app.
	Port   int    `json:"port"`
	Reason string `json:"reason"`
	// HAProxy holds HAProxy's own alert lines when validation excluded the app.
	HAProxy []string `json:"haproxy,omitempty"`
}

// NewApplier checks cfg. proc is the supervised HAProxy the Applier reloads and sends
// Runtime API commands to; nil only renders and installs files (tests, `render`).
func NewApplier(cfg ApplierConfig, proc *Process) (*Applier, error) {
	cfg.Build = cfg.Build.withDefaults()
	if cfg.Bin == "" {
		return nil, errors.New("haproxy: no haproxy binary given (--haproxy-bin)")
	}
	if cfg.ConfigPath == "" {
		cfg.ConfigPath = filepath.Join(cfg.Build.RunDir, "haproxy.cfg")
	}
	if cfg.ReloadMinWait < 0 {
		return nil, fmt.Errorf("haproxy: --reload-min-wait %v is negative", cfg.ReloadMinWait)
	}
	if cfg.ReloadMaxWait <= 0 {
		cfg.ReloadMaxWait = max(DefaultReloadMaxWait, cfg.ReloadMinWait)
	}
	if cfg.ReloadMaxWait < cfg.ReloadMinWait {
		return nil, fmt.Errorf("haproxy: --reload-max-wait %v is shorter than --reload-min-wait %v", cfg.ReloadMaxWait, cfg.ReloadMinWait)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Applier{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "haproxy"),
		proc:     proc,
		written:  make(chan struct{}),
		requests: make(chan loopRequest),
		forget:   make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		clock:    systemClock{},
	}
	a.status.ConfigPath = cfg.ConfigPath
	return a, nil
}

// ConfigPath is the file HAProxy runs.
func (a *Applier) ConfigPath() string { return a.cfg.ConfigPath }

// Written is closed once the first configuration is on disk, validated: HAProxy may start.
func (a *Applier) Written() <-chan struct{} { return a.written }

// loopRequest is work Run's loop does between applies, and where its result goes.
type loopRequest struct {
	do   func(context.Context) error
	done chan error
}

// Run applies every new snapshot of sub until ctx ends. The first snapshot's configuration
// is written before HAProxy starts (see Written); cmd starts the Process after that. A first
// configuration HAProxy rejects without blaming an app is retried (see first): Run returns
// only when ctx ends. Structural changes wait in a reloadCoalescer's window; Run only asks it
// when to look again and whether the reload is due.
func (a *Applier) Run(ctx context.Context, sub *discovery.Subscription) error {
	defer close(a.stopped)
	if !a.first(ctx, sub) {
		return nil
	}
	var started, restarted <-chan struct{}
	var failedStarts <-chan *StartError
	if a.proc != nil {
		started, restarted, failedStarts = a.proc.Started(), a.proc.Restarted(), a.proc.FailedStarts()
	}
	window := newReloadCoalescer(a.cfg.ReloadMinWait, a.cfg.ReloadMaxWait)
	timer := reloadTimer{clock: a.clock}
	defer timer.stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-started:
			started = nil
			a.afterStart(ctx)
		case <-restarted:
			a.afterRestart(ctx)
			// What changed while HAProxy was down failed to apply (the previous files went
			// back on disk): apply the latest snapshot now that it answers again.
			a.apply(ctx, sub.Snapshot(), "changes made while HAProxy was down", true)
		case err := <-failedStarts:
			a.afterFailedStart(ctx, sub.Snapshot(), err)
		case req := <-a.requests:
			req.done <- req.do(ctx)
		case <-a.forget:
			if len(a.blamed) > 0 {
				a.log.Info("forgetting the apps HAProxy rejected: they are tried again", "apps", slices.Sorted(maps.Keys(a.blamed)))
			}
			a.blamed = nil
			a.applyChange(ctx, sub.Snapshot(), window)
		case <-sub.C():
			a.applyChange(ctx, sub.Snapshot(), window)
		case <-timer.c:
			timer.fired()
			if window.Due(a.clock.Now()) {
				a.apply(ctx, sub.Snapshot(), window.Take(), true)
			}
		}
		timer.set(window.Next())
	}
}

// applyChange applies a new snapshot: runtime changes at once, a structural change into the
// reload window, which reloads at once when it is due already (a min wait of 0).
func (a *Applier) applyChange(ctx context.Context, snap *discovery.Snapshot, window *reloadCoalescer) {
	reload, reason := a.apply(ctx, snap, "", false)
	if !reload {
		return
	}
	now := a.clock.Now()
	window.Change(now, true, reason)
	if window.Due(now) {
		a.apply(ctx, snap, window.Take(), true)
	}
}

// afterStart runs once HAProxy first answers. A configuration written while it was starting
// may not be the one it loaded, so it is reloaded with the file on disk; either way the
// draining servers, "disabled" in the file, are set to drain.
func (a *Applier) afterStart(ctx context.Context) {
	reload := a.writtenBeforeStart
	a.writtenBeforeStart = false
	a.startedOnDisk(ctx, reload, "started", "the configuration changed while HAProxy was starting")
}

// afterRestart runs when HAProxy answers again after the supervisor restarted it. It loaded
// the file on disk, which every apply writes before it is done, but it also restored each
// server's address and state from the server-state file, and that may predate the last
// Runtime API changes (HAProxy died between the commands and the save). With a state file it
// is therefore reloaded from the file alone; either way the draining servers go back to drain.
func (a *Applier) afterRestart(ctx context.Context) {
	a.log.Info("HAProxy restarted; putting back what was set at runtime")
	reload := a.writtenBeforeStart || a.stateFile(a.runningModel()) != ""
	a.writtenBeforeStart = false
	a.startedOnDisk(ctx, reload, "restarted",
		"HAProxy restarted: its server-state file may predate the last Runtime API changes")
}

// afterFailedStart runs when HAProxy exited before it answered, at its first start or at a
// restart: a port an app binds may be held by another process, which `haproxy -c` cannot
// know. The apps its alerts point at are left out, as for a refused reload, and the file is
// written without them for the supervisor's next start, which is then reloaded onto the file
// once it answers (it may have read the file before this one was written).
func (a *Applier) afterFailedStart(ctx context.Context, snap *discovery.Snapshot, serr *StartError) {
	m, r := a.runningModel(), a.renderedNow()
	if m == nil || r == nil {
		return
	}
	// HAProxy may have read an older file than the one on record: its line numbers count only
	// when the file it started with is this one.
	if !a.blame(snap, m, r, serr.Alerts, serr.ConfigSum == sha256.Sum256(r.Config)) {
		a.log.Error("HAProxy could not start, and its alerts point at no app not already left out", "err", serr)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	start := time.Now()
	next, nr, rec, err := a.validated(ctx, snap, m)
	rec.Kind, rec.Reason = "write", "HAProxy could not start: leaving out the apps its alerts point at"
	if err == nil {
		err = a.install(nr)
	}
	if err != nil {
		rec.Kind = "failed"
		a.record(rec, start, err, nil)
		a.log.Error("writing the configuration without the apps HAProxy could not start with failed", "err", err)
		return
	}
	a.writtenBeforeStart = true
	a.publish(next, nr)
	a.record(rec, start, nil, next)
	a.log.Info("HAProxy configuration written without the apps HAProxy could not start with", "path", a.cfg.ConfigPath,
		"excluded", len(a.Status().Excluded), "took", time.Since(start).Round(time.Millisecond))
}

// startedOnDisk brings a freshly started HAProxy to the running model: when reload is set, it
// reloads HAProxy onto the file on disk with an empty server-state file (the reason is
// recorded, the metric labelled kind); then it sets the draining servers to drain.
func (a *Applier) startedOnDisk(ctx context.Context, reload bool, kind, reason string) {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	m := a.runningModel()
	if !reload {
		a.restoreDrain(ctx, m)
		return
	}
	start := time.Now()
	// The state HAProxy would save is that of the file it started with, and a reload restores
	// addresses from it over the newer file's: the reload starts from the file alone.
	if path := a.stateFile(m); path != "" {
		if err := WriteFileAtomic(path, []byte("1\n"), 0o644); err != nil {
			a.log.Warn("emptying HAProxy's server-state file failed", "path", path, "err", err)
		}
	}
	rec := ApplyRecord{Kind: "reload", Reason: reason}
	err := a.proc.Reload(ctx)
	ObserveReload(kind, err == nil, time.Since(start))
	if err != nil {
		rec.Kind = "failed"
		a.log.Error("reloading HAProxy onto the configuration on disk failed", "reason", reason, "err", err)
	} else {
		a.restoreDrain(ctx, m)
		a.log.Info("HAProxy reloaded", "reason", reason, "took", time.Since(start).Round(time.Millisecond))
	}
	a.record(rec, start, err, m)
}

// restoreDrain sets m's draining slots to drain: the file says "disabled" (as marathon-lb
// wrote it), so a reload or start leaves them in maintenance, which would cut a draining
// server's sticky clients off before they are done.
func (a *Applier) restoreDrain(ctx context.Context, m *Model) {
	if m == nil {
		return
	}
	var cmds []string
	for _, b := range m.Backends {
		for _, s := range b.Slots {
			if s.State == StateDrain {
				cmds = append(cmds, RuntimeCmd{Kind: CmdSetState, Backend: b.Name, Server: s.Name, State: StateDrain}.String())
			}
		}
	}
	if len(cmds) == 0 {
		return
	}
	err := a.runtimeClient(m).ExecAll(ctx, cmds)
	ObserveRuntime(len(cmds), err == nil)
	if err != nil {
		a.log.Warn("setting draining servers back to drain failed; they stay in maintenance", "servers", len(cmds), "err", err)
	}
}

// first builds and installs the first configuration, and reports whether it did (false:
// ctx ended first). It does not give up: until a valid configuration exists HAProxy cannot
// start, so a failure is recorded (Status, Healthy) and retried with the next snapshot, or
// after a backoff (1s doubling to 1m) in case what failed was outside the snapshot.
func (a *Applier) first(ctx context.Context, sub *discovery.Subscription) bool {
	wait := firstRetry
	for {
		err := a.writeFirst(ctx, sub.Snapshot())
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		a.log.Error("no valid first HAProxy configuration, HAProxy cannot start: retrying", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-sub.C():
		case <-t.C:
		}
		t.Stop()
		wait = min(2*wait, firstRetryMax)
	}
}

// writeFirst validates and installs snap's configuration as the first one.
func (a *Applier) writeFirst(ctx context.Context, snap *discovery.Snapshot) error {
	start := time.Now()
	m, r, rec, err := a.validated(ctx, snap, nil)
	rec.Kind, rec.Reason = "write", "first configuration"
	if err != nil {
		rec.Kind = "failed"
		err = fmt.Errorf("haproxy: the first configuration is not valid, HAProxy cannot start: %w", err)
		a.record(rec, start, err, nil)
		return err
	}
	if err := a.install(r); err != nil {
		rec.Kind = "failed"
		a.record(rec, start, err, nil)
		return err
	}
	if path := a.stateFile(m); path != "" {
		// A missing state file makes HAProxy warn at its first start; a version line alone is
		// an empty state it reads silently.
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := WriteFileAtomic(path, []byte("1\n"), 0o644); err != nil {
				a.log.Warn("creating HAProxy's server-state file failed", "path", path, "err", err)
			}
		}
	}
	a.publish(m, r)
	a.record(rec, start, nil, m)
	close(a.written)
	a.log.Info("HAProxy configuration written", "path", a.cfg.ConfigPath, "backends", len(m.Backends),
		"excluded", len(a.Status().Excluded), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// apply builds snap against the running model and applies it. With reloadNow false, a
// structural change is only reported (reload true, with its reason) so that Run can coalesce
// it; runtime changes are applied at once either way.
func (a *Applier) apply(ctx context.Context, snap *discovery.Snapshot, reason string, reloadNow bool) (reload bool, why string) {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	start := time.Now()
	running := a.runningModel()
	next := timedBuild(snap, a.buildConfig(a.stillBlamed(snap)), running)
	plan := MakePlan(running, next)
	switch {
	case plan.Empty():
		a.noteExclusions(next)
		return false, ""
	case !plan.Reload:
		err := a.runtime(ctx, next, plan)
		if err == nil {
			return false, ""
		}
		a.log.Warn("Runtime API update failed; reloading instead", "err", err)
		reason = "runtime update failed: " + err.Error()
	case reason == "":
		reason = plan.Reason
	}
	if !reloadNow {
		return true, reason
	}
	for attempt := 1; ; attempt++ {
		retry, err := a.reload(ctx, snap, running, reason, start)
		if err == nil {
			break
		}
		a.log.Error("HAProxy reload failed; HAProxy keeps running its previous configuration", "reason", reason, "err", err)
		if !retry || attempt == 2 {
			break
		}
		// HAProxy refused to load what an app asked for (a bind it cannot take): the rest goes
		// live without it, at once.
		start, reason = time.Now(), "retry without the apps HAProxy refused to load: "+reason
	}
	return false, ""
}

// runtime applies a runtime-only plan: commands first, then the files on disk and the saved
// server state, so a later reload or restart starts from the same servers.
func (a *Applier) runtime(ctx context.Context, next *Model, plan Plan) error {
	start := time.Now()
	r, err := timedRender(next)
	if err != nil {
		return err
	}
	rec := ApplyRecord{Kind: "runtime", Reason: "servers or map entries changed", Commands: len(plan.Runtime)}
	if a.hasProcess() && len(plan.Runtime) > 0 {
		cmds := make([]string, len(plan.Runtime))
		for i, c := range plan.Runtime {
			cmds[i] = c.String()
		}
		err := a.runtimeClient(next).ExecAll(ctx, cmds)
		ObserveRuntime(len(cmds), err == nil)
		if err != nil {
			return err
		}
	} else {
		rec.Kind = "write"
		a.writtenBeforeStart = a.proc != nil
	}
	if err := a.install(r); err != nil {
		return err
	}
	if a.hasProcess() {
		if err := a.saveState(ctx, next); err != nil {
			a.log.Warn("saving HAProxy's server state failed; a reload may start servers from the configuration", "err", err)
		}
	}
	a.publish(next, r)
	a.record(rec, start, nil, next)
	a.log.Debug("HAProxy updated through the Runtime API", "commands", len(plan.Runtime), "took", time.Since(start))
	return nil
}

// reload validates, installs and reloads. Runtime commands for the servers that exist in both
// models go first and the server state is saved, because HAProxy restores addresses from the
// state file over the configuration. When HAProxy refuses to load the new configuration (it
// passed `haproxy -c` but, say, a bind cannot be taken), the previous files are put back and
// the previous model stays the running one; retry says that the refusal was blamed on apps,
// which the next validation leaves out.
func (a *Applier) reload(ctx context.Context, snap *discovery.Snapshot, running *Model, reason string, start time.Time) (retry bool, err error) {
	m, r, rec, err := a.validated(ctx, snap, running)
	rec.Kind, rec.Reason = "reload", reason
	if err != nil {
		rec.Kind = "failed"
		a.record(rec, start, err, nil)
		ObserveReload(reasonKind(reason), false, time.Since(start))
		return false, err
	}
	plan := MakePlan(running, m)
	if running != nil && !plan.Reload && reasonKind(reason) != "runtime_failed" {
		// Leaving out what HAProxy rejected brought it back to what runs: no reload needed.
		if plan.Empty() {
			a.noteExclusions(m)
			return false, nil
		}
		return false, a.runtime(ctx, m, plan)
	}
	if a.hasProcess() && len(plan.Runtime) > 0 {
		cmds := make([]string, len(plan.Runtime))
		for i, c := range plan.Runtime {
			cmds[i] = c.String()
		}
		// Best effort: the reload below carries the same change.
		if err := a.runtimeClient(running).ExecAll(ctx, cmds); err != nil {
			a.log.Debug("runtime commands before the reload failed", "err", err)
		}
		rec.Commands = len(cmds)
	}
	if err := a.install(r); err != nil {
		rec.Kind = "failed"
		a.record(rec, start, err, nil)
		return false, err
	}
	if a.hasProcess() {
		if err := a.saveState(ctx, m); err != nil {
			a.log.Warn("saving HAProxy's server state failed", "err", err)
		}
		if err := a.proc.Reload(ctx); err != nil {
			ObserveReload(reasonKind(reason), false, time.Since(start))
			retry = a.blameReload(snap, m, r, err)
			if prev := a.renderedNow(); prev != nil {
				// HAProxy runs the previous configuration: a restart must find that on disk.
				if ierr := a.install(prev); ierr != nil {
					a.log.Error("restoring the previous HAProxy configuration failed", "path", a.cfg.ConfigPath, "err", ierr)
				}
			}
			rec.Kind = "failed"
			err = fmt.Errorf("reload: %w", err)
			a.record(rec, start, err, nil)
			return retry, err
		}
		ObserveReload(reasonKind(reason), true, time.Since(start))
		a.restoreDrain(ctx, m)
	} else {
		rec.Kind = "write"
		a.writtenBeforeStart = a.proc != nil
	}
	a.publish(m, r)
	a.record(rec, start, nil, m)
	a.log.Info("HAProxy reloaded", "reason", reason, "backends", len(m.Backends),
		"validations", rec.Validations, "took", time.Since(start).Round(time.Millisecond))
	return false, nil
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
// whatever the number of apps.
func (a *Applier) validated(ctx context.Context, snap *discovery.Snapshot, running *Model) (*Model, *Rendered, ApplyRecord, error) {
	var rec ApplyRecord
	exclude := a.stillBlamed(snap)
	alerts := map[string][]string{}
	for owner := range exclude {
		alerts[owner] = a.blamed[owner].alerts
	}
	for attempt := 1; ; attempt++ {
		m := timedBuild(snap, a.buildConfig(exclude), running)
		r, err := timedRender(m)
		if err != nil {
			return nil, nil, rec, fmt.Errorf("rendering: %w", err)
		}
		tmp := a.cfg.ConfigPath + ".new"
		cleanup, err := writeCandidate(tmp, r)
		if err != nil {
			cleanup()
			return nil, nil, rec, err
		}
		rec.Validations++
		err = Validate(ctx, a.cfg.Bin, tmp)
		cleanup()
		ObserveValidation(err == nil)
		if err == nil {
			a.setValidationExclusions(alerts)
			a.blamed = make(map[string]blame, len(exclude))
			for owner, reason := range exclude {
				a.blamed[owner] = blame{reason: reason, alerts: alerts[owner], print: definitionPrint(snap, owner)}
			}
			return m, r, rec, nil
		}
		os.Remove(tmp)
		var verr *ValidationError
		if !errors.As(err, &verr) || attempt == 2 {
			return nil, nil, rec, err
		}
		blamed := 0
		for _, al := range verr.Alerts {
			owner := alertOwner(al, tmp, m, r)
			if owner == "" {
				continue
			}
			if _, seen := exclude[owner]; !seen {
				blamed++
			}
			exclude[owner] = "HAProxy rejected its configuration: " + al.Message
			alerts[owner] = append(alerts[owner], al.String())
		}
		if blamed == 0 {
			// Nothing to blame on an app (a global template, say): keep what runs.
			return nil, nil, rec, err
		}
		a.log.Warn("HAProxy rejected the configuration; leaving out the apps its alerts point at",
			"apps", slices.Sorted(maps.Keys(exclude)), "alerts", len(verr.Alerts))
	}
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
// ports, health checks, networking; not its tasks or instance count). An owner that is a
// zero-downtime deployment group ("/<group>") sums up every app of the group. "" when no
// app has that owner any more.
func definitionPrint(snap *discovery.Snapshot, owner string) string {
	one := func(app *discovery.App) string {
		return fmt.Sprint(app.ID, app.Labels, app.Ports, app.HealthChecks, app.Network)
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

// writeFiles writes the map files (HAProxy reads them when it loads cfgPath) and the
// configuration.
func (a *Applier) writeFiles(cfgPath string, r *Rendered) error {
	for _, path := range slices.Sorted(maps.Keys(r.Maps)) {
		if err := WriteFileAtomic(path, r.Maps[path], 0o644); err != nil {
			return fmt.Errorf("writing map file: %w", err)
		}
	}
	if err := WriteFileAtomic(cfgPath, r.Config, 0o644); err != nil {
		return fmt.Errorf("writing the HAProxy configuration: %w", err)
	}
	return nil
}

// install writes r as the running configuration (atomically).
func (a *Applier) install(r *Rendered) error { return a.writeFiles(a.cfg.ConfigPath, r) }

// saveState writes HAProxy's server state to the model's server-state-file, if it has one.
func (a *Applier) saveState(ctx context.Context, m *Model) error {
	path := a.stateFile(m)
	if path == "" {
		return nil
	}
	return a.runtimeClient(m).SaveServerState(ctx, path)
}

// stateFile is the server-state-file of m's HEAD, "" when it has none.
func (a *Applier) stateFile(m *Model) string {
	path := m.HeadInfo.ServerStateFile
	if path != "" && !filepath.IsAbs(path) {
		path = filepath.Join(m.RunDir, path)
	}
	return path
}

// runtimeClient talks to the admin stats socket of m's HEAD when it has one (a batch there is
// about 13 times faster than through the master CLI), else to the worker through the master.
func (a *Applier) runtimeClient(m *Model) *RuntimeClient {
	if m != nil && len(m.HeadInfo.StatsSockets) > 0 {
		return NewRuntimeClient(m.HeadInfo.StatsSockets[0])
	}
	return NewRuntimeClientViaMaster(a.proc.MasterSocket())
}

func (a *Applier) hasProcess() bool {
	if a.proc == nil {
		return false
	}
	select {
	case <-a.proc.Started():
		return true
	default:
		return false
	}
}

// ReloadFromDisk validates the configuration file on disk and reloads HAProxy with it
// (marathon-lb's SIGUSR1). It runs in Run's loop, between two applies, and waits for it: a
// reload of the file must not interleave with an apply that is rewriting it.
func (a *Applier) ReloadFromDisk(ctx context.Context) error {
	if !a.hasProcess() {
		return errors.New("HAProxy is not running")
	}
	req := loopRequest{do: a.reloadFromDisk, done: make(chan error, 1)}
	select {
	case a.requests <- req:
	case <-a.stopped:
		return errors.New("HAProxy is not being managed any more (lodestar is stopping)")
	case <-ctx.Done():
		return fmt.Errorf("reload of the file on disk: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("reload of the file on disk: %w", ctx.Err())
	}
}

func (a *Applier) reloadFromDisk(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	start := time.Now()
	if err := Validate(ctx, a.cfg.Bin, a.cfg.ConfigPath); err != nil {
		ObserveValidation(false)
		return err
	}
	ObserveValidation(true)
	if err := a.saveState(ctx, a.runningModel()); err != nil {
		a.log.Warn("saving HAProxy's server state failed", "err", err)
	}
	err := a.proc.Reload(ctx)
	ObserveReload("signal", err == nil, time.Since(start))
	rec := ApplyRecord{Kind: "reload", Reason: "reload of the file on disk requested", Validations: 1}
	if err != nil {
		rec.Kind = "failed"
	} else {
		a.restoreDrain(ctx, a.runningModel())
	}
	a.record(rec, start, err, nil)
	return err
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

func (a *Applier) runningModel() *Model {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running
}

// renderedNow is the rendering of the running model, nil before the first.
func (a *Applier) renderedNow() *Rendered {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rendered
}

func (a *Applier) publish(m *Model, r *Rendered) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running, a.rendered, a.applied = m, r, true
}

// record stores an apply in the status; m (when not nil) gives the exclusions and warnings.
func (a *Applier) record(rec ApplyRecord, start time.Time, err error, m *Model) {
	rec.At = start
	rec.Duration = time.Since(start).Round(time.Microsecond).String()
	if err != nil {
		rec.Error = err.Error()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status.LastApply = &rec
	switch rec.Kind {
	case "reload":
		a.status.Reloads++
		a.status.LastReload = &rec
	case "runtime":
		a.status.RuntimeApplies++
	}
	if m != nil {
		a.setModelExclusionsLocked(m)
	}
}

// noteExclusions updates the reported exclusions when a build changed only them.
func (a *Applier) noteExclusions(m *Model) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setModelExclusionsLocked(m)
}

// setValidationExclusions keeps HAProxy's alerts per app from the newest validation, for the
// status of the apps it left out.
func (a *Applier) setValidationExclusions(alerts map[string][]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.validationAlerts = alerts
}

func (a *Applier) setModelExclusionsLocked(m *Model) {
	ex := make([]ExcludedApp, 0, len(m.Excluded))
	for _, e := range m.Excluded {
		ex = append(ex, ExcludedApp{AppID: e.AppID, Port: e.Port, Reason: e.Reason, HAProxy: a.validationAlerts[e.AppID]})
	}
	a.status.Excluded = ex
	a.status.Warnings = slices.Clone(m.Warnings)
	metricExcluded.Set(float64(len(ex)))
}

// Status returns the state of the last apply, the apps left out and HAProxy's process.
func (a *Applier) Status() ApplierStatus {
	a.mu.Lock()
	st := a.status
	a.mu.Unlock()
	if st.Excluded == nil {
		st.Excluded = []ExcludedApp{}
	}
	if st.Warnings == nil {
		st.Warnings = []Warning{}
	}
	if a.proc != nil {
		st.Process = a.proc.Status()
	}
	return st
}

// Config returns the configuration HAProxy runs, nil before the first.
func (a *Applier) Config() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rendered == nil {
		return nil
	}
	return a.rendered.Config
}

// Healthy returns nil while HAProxy runs a configuration lodestar applied; before the first,
// the error says why the last attempt failed.
func (a *Applier) Healthy() error {
	a.mu.Lock()
	applied, last := a.applied, a.status.LastApply
	a.mu.Unlock()
	if !applied {
		if last != nil && last.Error != "" {
			return fmt.Errorf("no HAProxy configuration applied yet: %s", last.Error)
		}
		return errors.New("no HAProxy configuration applied yet")
	}
	if a.proc != nil && !a.proc.Status().Running {
		return errors.New("HAProxy is not running")
	}
	return nil
}

// Applied returns nil once the first configuration is applied (the "first config applied"
// readiness check). Apps left out do not make lodestar unready.
func (a *Applier) Applied() error {
	select {
	case <-a.written:
	default:
		return errors.New("no HAProxy configuration written yet")
	}
	if !a.hasProcess() {
		return errors.New("HAProxy has not started yet")
	}
	return nil
}

// VhostMap and AppMap return marathon-lb's domain2backend and app2backend maps of the running
// model.
func (a *Applier) VhostMap() []byte {
	return a.mapText(func(m *Model) []MapEntry { return m.DomainMap })
}

// AppMap returns marathon-lb's app2backend map.
func (a *Applier) AppMap() []byte { return a.mapText(func(m *Model) []MapEntry { return m.AppMap }) }

func (a *Applier) mapText(entries func(*Model) []MapEntry) []byte {
	m := a.runningModel()
	if m == nil {
		return nil
	}
	return mapFile(entries(m))
}

var metricExcluded = promauto.NewGauge(prometheus.GaugeOpts{
	Namespace: "lodestar", Subsystem: "haproxy", Name: "excluded_apps",
	Help: "Apps and ports left out of the running HAProxy configuration, for a label or template error or a failed validation.",
})

// reasonKind turns a reload reason into a metric label of bounded cardinality.
func reasonKind(reason string) string {
	switch {
	case strings.HasPrefix(reason, "runtime update failed"):
		return "runtime_failed"
	case reason == "":
		return "unknown"
	}
	return "structure"
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
