package haproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// OpenFilesLimit, when set, replaces the OpenFilesLimit function: the open files the
	// HAProxy child may have, which each configuration's FDBudget must fit (tests).
	OpenFilesLimit func() (int, error)
	// Build is how configurations are built (groups, binds, templates, …). Build.Exclude is
	// the Applier's: it sets it to drop apps HAProxy's validation blamed.
	Build Config
	// Bin is the haproxy binary, used for `haproxy -c`.
	Bin string
	// ConfigPath is the configuration file HAProxy runs; <RunDir>/haproxy.cfg when empty.
	ConfigPath string
	// ReloadMinWait and ReloadMaxWait coalesce reloads: a structural change waits until no
	// other change came for ReloadMinWait, but never longer than ReloadMaxWait after the first
	// one (consul-template's quiescence). Runtime API changes are applied at once, even while
	// a reload waits (task moves in backends HAProxy runs already), and do not restart the wait.
	// ReloadMinWait 0 is no wait: a structural change reloads at once (cmd passes
	// DefaultReloadMinWait unless --reload-min-wait says otherwise); a ReloadMaxWait of 0 is
	// DefaultReloadMaxWait, or ReloadMinWait when that is longer.
	ReloadMinWait, ReloadMaxWait time.Duration
	// CheckTimeout is the shortest time one `haproxy -c` of a candidate configuration may run
	// before it counts as hung (and the apps whose sections changed are narrowed down); it
	// grows with the configuration's size and the time the last check took, up to
	// ValidateTimeout. DefaultCheckTimeout when 0.
	CheckTimeout time.Duration
	Logger       *slog.Logger
	// Bamboo, when set, renders the configuration from a bamboo template (bamboo_apply.go).
	Bamboo *BambooTemplate
}

// Applier keeps a running HAProxy on the registry's newest snapshot, cheapest way first: a
// snapshot that changes nothing HAProxy sees does nothing; one that changes only servers or
// map entries goes through the Runtime API (and the files on disk are rewritten to match); a
// structural change is validated with `haproxy -c`, installed and reloaded. A configuration
// that fails validation never reaches HAProxy: the apps its alerts point at (by line, or by
// the frontend or backend they name) are left out and the rest is validated once more; a
// validation that hangs or crashes without an alert is narrowed down to the apps whose
// sections changed since the running configuration (apply_hang.go). A reload HAProxy refuses after `haproxy -c` passed (a bind it cannot take) puts the previous
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
	// waiting is the model the pending reload would install, as built from the newest
	// snapshot; nil when no reload is pending. Owned by Run.
	waiting *Model
	// good is the last configuration HAProxy ran (answered with after a start, or took in a
	// reload or a Runtime API update): what a failed start puts back. Owned by Run.
	good struct {
		m *Model
		r *Rendered
	}
	// partial is what partial validation remembers between applies. Owned by Run.
	partial partialState
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
	// ruleChecks holds a token while CheckRule runs `haproxy -c`.
	ruleChecks chan struct{}
	// lastCheckPassed is how long the newest `haproxy -c` that passed took (a time.Duration):
	// a slow machine gives candidates longer before they count as hung.
	lastCheckPassed atomic.Int64
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
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	a := &Applier{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "haproxy"),
		proc:       proc,
		written:    make(chan struct{}),
		requests:   make(chan loopRequest),
		forget:     make(chan struct{}, 1),
		stopped:    make(chan struct{}),
		clock:      systemClock{},
		ruleChecks: make(chan struct{}, 1),
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
				a.reloadPending(ctx, sub.Snapshot(), window)
			}
		}
		timer.set(window.Next())
	}
}

// applyChange applies a new snapshot: runtime changes at once, a structural change into the
// reload window, which reloads at once when it is due already (a min wait of 0). A snapshot
// that changes only what the Runtime API can set, compared with what the pending reload was
// to install, does not restart the window's quiet period.
func (a *Applier) applyChange(ctx context.Context, snap *discovery.Snapshot, window *reloadCoalescer) {
	reload, reason, next := a.apply(ctx, snap, "", false)
	if !reload {
		return
	}
	_, pending := window.Next()
	structural := !pending || a.waiting == nil || MakePlan(a.waiting, next).Reload
	a.waiting = next
	now := a.clock.Now()
	window.Change(now, structural, reason)
	if window.Due(now) {
		a.reloadPending(ctx, snap, window)
	}
}

// reloadPending closes the reload window and reloads.
func (a *Applier) reloadPending(ctx context.Context, snap *discovery.Snapshot, window *reloadCoalescer) {
	a.waiting = nil
	a.apply(ctx, snap, window.Take(), true)
}

// apply builds snap against the running model and applies it. With reloadNow false, a
// structural change is only reported (reload true, with its reason and the model it would
// install) so that Run can coalesce it; what of it the Runtime API can make is applied at
// once, as runtime-only changes are.
func (a *Applier) apply(ctx context.Context, snap *discovery.Snapshot, reason string, reloadNow bool) (reload bool, why string, next *Model) {
	if a.cfg.Bamboo != nil {
		return a.applyBamboo(ctx, snap, reason, reloadNow)
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	start := time.Now()
	running := a.runningModel()
	next = timedBuild(snap, a.buildConfig(a.stillBlamed(snap)), running)
	plan := MakePlan(running, next)
	switch {
	case plan.Empty():
		a.noteExclusions(next)
		return false, "", next
	case !plan.Reload:
		err := a.runtime(ctx, next, plan)
		if err == nil {
			return false, "", next
		}
		a.log.Warn("Runtime API update failed; reloading instead", "err", err)
		reason = "runtime update failed: " + err.Error()
	case reason == "":
		reason = plan.Reason
	}
	if !reloadNow {
		if plan.Reload {
			a.applyRuntimePart(ctx, running, next)
		}
		return true, reason, next
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
	return false, "", next
}

// applyRuntimePart applies at once what of a structural change the Runtime API can make
// (task moves in backends HAProxy runs; see runtimePart), so that it does not wait for the
// reload. A failure is only logged: the reload to come carries the same change.
func (a *Applier) applyRuntimePart(ctx context.Context, running, next *Model) {
	live := runtimePart(running, next)
	if live == running {
		return
	}
	plan := MakePlan(running, live)
	if plan.Reload {
		a.log.Error("the runtime part of a change needs a reload; it waits for the reload", "reason", plan.Reason)
		return
	}
	if err := a.runtime(ctx, live, plan); err != nil {
		a.log.Warn("Runtime API update failed while a reload is pending; the reload carries it", "err", err)
	}
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
	if a.hasProcess() {
		a.markGood()
	}
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
	validated := time.Now()
	rec.Kind, rec.Reason = "reload", reason
	if err != nil {
		a.noteValidationFailed("the last validation failed")
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
	var stateSaved, reloaded time.Time
	if a.hasProcess() {
		a.prepareState(ctx, m)
		stateSaved = time.Now()
		if err := a.proc.Reload(ctx); err != nil {
			ObserveReload(reasonKind(reason), false, time.Since(start))
			retry = a.blameFailedReload(ctx, snap, m, r, err, &rec)
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
		reloaded = time.Now()
		ObserveReload(reasonKind(reason), true, reloaded.Sub(start))
		a.restoreDrain(ctx, m)
	} else {
		rec.Kind = "write"
		a.writtenBeforeStart = a.proc != nil
		stateSaved, reloaded = time.Now(), time.Now()
	}
	a.publish(m, r)
	if a.hasProcess() {
		a.markGood()
	}
	a.record(rec, start, nil, m)
	// Where the time went: building and validating, installing the files and saving the
	// server state, HAProxy's own reload (the master parsing the file again and the new worker
	// taking over), and what follows it.
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	a.log.Info("HAProxy reloaded", "reason", reason, "backends", len(m.Backends),
		"validations", rec.Validations, "validation", rec.Validation, "validated_sections", rec.ValidatedSections,
		"took", ms(time.Since(start)), "validate", ms(validated.Sub(start)), "install", ms(stateSaved.Sub(validated)),
		"haproxy_reload", ms(reloaded.Sub(stateSaved)))
	return false, nil
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

// prepareState readies the server-state file the reload about to happen restores. HAProxy's
// own state, normally; but a HAProxy that started on a file older than the one on disk (the
// Applier wrote while it started, and has not yet handled its start) would save the older
// file's addresses, which the new worker would put over the newer file's: then the reload
// starts from the file alone, and the reload after the start (afterStart) is this one.
func (a *Applier) prepareState(ctx context.Context, m *Model) {
	if a.writtenBeforeStart {
		a.writtenBeforeStart = false
		a.emptyStateFile(m)
		return
	}
	if err := a.saveState(ctx, m); err != nil {
		a.log.Warn("saving HAProxy's server state failed", "err", err)
	}
}

// emptyStateFile leaves the model's server-state-file, if it has one, with no server in it.
func (a *Applier) emptyStateFile(m *Model) {
	if path := a.stateFile(m); path != "" {
		if err := WriteFileAtomic(path, []byte("1\n"), 0o644); err != nil {
			a.log.Warn("emptying HAProxy's server-state file failed", "path", path, "err", err)
		}
	}
}

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
