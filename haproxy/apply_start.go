package haproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// afterStart runs once HAProxy first answers. A configuration written while it was starting
// may not be the one it loaded, so it is reloaded with the file on disk; either way the
// draining servers, "disabled" in the file, are set to drain.
func (a *Applier) afterStart(ctx context.Context) {
	reload := a.writtenBeforeStart
	a.writtenBeforeStart = false
	if a.proc.Adopted() {
		// A HAProxy kept by the previous lodestar runs that lodestar's last configuration:
		// one reload brings it onto this one's, whatever changed while nobody watched.
		a.startedOnDisk(ctx, true, "adopted", "adopted a running HAProxy: loading the current configuration")
		return
	}
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
// know. The apps its alerts point at are left out, as for a refused reload; when it printed
// no alert at all and exactly one app changed since the last configuration HAProxy ran, that
// app is. The file is then written without them for the supervisor's next start, which is
// reloaded onto the file once it answers (it may have read the file before this one was
// written). When nothing can be blamed, or the configuration without the blamed apps does not
// validate, the last configuration HAProxy ran is put back: the file that failed never stays
// for the next start.
func (a *Applier) afterFailedStart(ctx context.Context, snap *discovery.Snapshot, serr *StartError) {
	m, r := a.runningModel(), a.renderedNow()
	if m == nil || r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	start := time.Now()
	// HAProxy may have read an older file than the one on record: its line numbers count only
	// when the file it started with is this one.
	sameFile := serr.ConfigSum == sha256.Sum256(r.Config)
	if !a.blame(snap, m, r, serr.Alerts, sameFile) && !(sameFile && a.blameOnlyChange(snap, r, serr)) {
		a.putBackGood(start, r, serr)
		return
	}
	next, nr, rec, err := a.validated(ctx, snap, m)
	rec.Kind, rec.Reason = "write", "HAProxy could not start: leaving out the apps it could not start with"
	if err == nil {
		err = a.install(nr)
	}
	if err != nil {
		rec.Kind = "failed"
		a.record(rec, start, err, nil)
		a.log.Error("writing the configuration without the apps HAProxy could not start with failed", "err", err)
		a.putBackGood(start, r, serr)
		return
	}
	a.writtenBeforeStart = true
	a.publish(next, nr)
	a.record(rec, start, nil, next)
	a.log.Info("HAProxy configuration written without the apps HAProxy could not start with", "path", a.cfg.ConfigPath,
		"excluded", len(a.Status().Excluded), "took", time.Since(start).Round(time.Millisecond))
}

// blameOnlyChange blames the one app whose sections changed between the last configuration
// HAProxy ran and failed, which HAProxy could not start with and printed no alert for (it
// crashed, say), and reports whether it did. With several changed apps, or alerts that point
// at no app (a port of the HEAD is taken), it blames no one: nothing says which.
func (a *Applier) blameOnlyChange(snap *discovery.Snapshot, failed *Rendered, serr *StartError) bool {
	if a.good.r == nil || len(serr.Alerts) > 0 {
		return false
	}
	var changed []string
	for _, owner := range changedOwners(a.good.r, failed) {
		if _, out := a.blamed[owner]; !out {
			changed = append(changed, owner)
		}
	}
	if len(changed) != 1 {
		return false
	}
	owner := changed[0]
	if a.blamed == nil {
		a.blamed = map[string]blame{}
	}
	a.blamed[owner] = blame{reason: "HAProxy could not start with this app's sections (" + serr.Exit + ")",
		alerts: []string{serr.Error()}, print: definitionPrint(snap, owner)}
	a.log.Warn("HAProxy could not start without an alert, and one app changed since the configuration it last ran: leaving it out",
		"app", owner, "err", serr)
	return true
}

// putBackGood installs the last configuration HAProxy ran (started with, or reloaded onto)
// in place of failed, which HAProxy could not start with, and makes it the running model: the
// supervisor's next start reads it.
func (a *Applier) putBackGood(start time.Time, failed *Rendered, serr *StartError) {
	good := a.good
	if good.r == nil || bytes.Equal(good.r.Config, failed.Config) {
		a.log.Error("HAProxy could not start, its alerts point at no app not already left out, and no other configuration it ran is known", "err", serr)
		return
	}
	rec := ApplyRecord{Kind: "write", Reason: "HAProxy could not start with the new configuration (" + serr.Exit + "): the last configuration it ran is put back"}
	if err := a.install(good.r); err != nil {
		rec.Kind = "failed"
		a.record(rec, start, err, nil)
		a.log.Error("putting back the last configuration HAProxy ran failed", "path", a.cfg.ConfigPath, "err", err)
		return
	}
	a.writtenBeforeStart = true
	a.publish(good.m, good.r)
	a.record(rec, start, nil, good.m)
	a.log.Warn("HAProxy could not start with the new configuration; the last configuration it ran is put back", "path", a.cfg.ConfigPath, "err", serr)
}

// markGood notes that HAProxy runs the running model: it answered with it after a start, or
// took it in a reload or a Runtime API update.
func (a *Applier) markGood() {
	a.good.m, a.good.r = a.runningModel(), a.renderedNow()
}

// startedOnDisk brings a freshly started HAProxy to the running model: when reload is set, it
// reloads HAProxy onto the file on disk with an empty server-state file (the reason is
// recorded, the metric labelled kind); then it sets the draining servers to drain.
func (a *Applier) startedOnDisk(ctx context.Context, reload bool, kind, reason string) {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	m := a.runningModel()
	if !reload {
		a.markGood()
		a.restoreDrain(ctx, m)
		return
	}
	start := time.Now()
	// The state HAProxy would save is that of the file it started with, and a reload restores
	// addresses from it over the newer file's: the reload starts from the file alone.
	a.emptyStateFile(m)
	rec := ApplyRecord{Kind: "reload", Reason: reason}
	err := a.proc.Reload(ctx)
	ObserveReload(kind, err == nil, time.Since(start))
	if err != nil {
		rec.Kind = "failed"
		a.log.Error("reloading HAProxy onto the configuration on disk failed", "reason", reason, "err", err)
	} else {
		a.markGood()
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
	said := ""
	for {
		err := a.writeFirst(ctx, sub.Snapshot())
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if IsFDLimit(err) {
			// Only a new snapshot (or a restart with a higher limit) can change this: say it once.
			if err.Error() != said {
				said = err.Error()
				a.log.Error("HAProxy is not started: its configuration needs more open files than it may have; waiting for a change", "err", err)
			}
			select {
			case <-ctx.Done():
				return false
			case <-sub.C():
				continue
			}
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
		if IsFDLimit(err) {
			err = fmt.Errorf("haproxy: HAProxy cannot start with the first configuration: %w", err)
		} else {
			err = fmt.Errorf("haproxy: the first configuration is not valid, HAProxy cannot start: %w", err)
		}
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
		a.markGood()
		a.restoreDrain(ctx, a.runningModel())
	}
	a.record(rec, start, err, nil)
	return err
}
