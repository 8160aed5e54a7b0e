package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Bamboo template mode in the Applier. A user's template can make anything of bamboo's data,
// so lodestar cannot tell which change the Runtime API could make: every change of the rendered
// text is a reload, coalesced in the reload window like a structural change of the native
// configuration, validated with `haproxy -c` first. Nothing is blamed on an app (lines of a
// user's template have no owner): a configuration HAProxy rejects is not installed, and HAProxy
// keeps running the previous one. The model published for status and maps is empty: the
// native model does not describe what HAProxy runs.

// UseBambooTemplate makes the Applier render HAProxy's configuration with t, for the apps of
// its Build.Groups. Call it before Run.
func (a *Applier) UseBambooTemplate(t *BambooTemplate) { a.cfg.Bamboo = t }

// bambooModel stands for what HAProxy runs in bamboo template mode: no backends lodestar
// knows, no server-state file, nothing to set at runtime.
func bambooModel() *Model { return &Model{} }

// bambooValidated renders snap with the bamboo template and checks it with `haproxy -c`.
func (a *Applier) bambooValidated(ctx context.Context, snap *discovery.Snapshot) (*Model, *Rendered, ApplyRecord, error) {
	var rec ApplyRecord
	text, err := a.cfg.Bamboo.Render(snap, a.cfg.Build.Groups)
	if err != nil {
		return nil, nil, rec, fmt.Errorf("rendering: %w", err)
	}
	r := &Rendered{Config: text}
	tmp := a.cfg.ConfigPath + ".new"
	cleanup, err := writeCandidate(tmp, r)
	defer cleanup()
	if err != nil {
		return nil, nil, rec, err
	}
	defer os.Remove(tmp)
	rec.Validations++
	err = Validate(ctx, a.cfg.Bin, tmp)
	ObserveValidation(err == nil)
	if err != nil {
		return nil, nil, rec, fmt.Errorf("the bamboo template's configuration: %w", err)
	}
	return bambooModel(), r, rec, nil
}

// applyBamboo is apply in bamboo template mode: nothing when the rendered text is what runs;
// otherwise a reload, reported to Run for coalescing unless reloadNow.
func (a *Applier) applyBamboo(ctx context.Context, snap *discovery.Snapshot, reason string, reloadNow bool) (bool, string, *Model) {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	start := time.Now()
	text, err := a.cfg.Bamboo.Render(snap, a.cfg.Build.Groups)
	if err != nil {
		a.log.Error("the bamboo template failed; HAProxy keeps running its previous configuration", "err", err)
		a.record(ApplyRecord{Kind: "failed", Reason: "rendering the bamboo template"}, start, err, nil)
		return false, "", nil
	}
	prev := a.renderedNow()
	if prev != nil && bytes.Equal(prev.Config, text) {
		return false, "", bambooModel()
	}
	if reason == "" {
		reason = "the bamboo template's output changed"
	}
	if !reloadNow {
		return true, reason, bambooModel()
	}
	m, r, rec, err := a.bambooValidated(ctx, snap)
	rec.Kind, rec.Reason = "reload", reason
	if err == nil {
		err = a.install(r)
	}
	if err == nil && a.hasProcess() {
		if err = a.proc.Reload(ctx); err != nil && prev != nil {
			// HAProxy runs the previous configuration: a restart must find that on disk.
			if ierr := a.install(prev); ierr != nil {
				a.log.Error("restoring the previous HAProxy configuration failed", "path", a.cfg.ConfigPath, "err", ierr)
			}
		}
		ObserveReload(reasonKind(reason), err == nil, time.Since(start))
	} else if err == nil {
		rec.Kind = "write"
		a.writtenBeforeStart = a.proc != nil
	}
	if err != nil {
		rec.Kind = "failed"
		a.record(rec, start, err, nil)
		a.log.Error("HAProxy reload failed; HAProxy keeps running its previous configuration", "reason", reason, "err", err)
		return false, "", m
	}
	a.publish(m, r)
	a.record(rec, start, nil, m)
	a.log.Info("HAProxy reloaded", "reason", reason, "mode", "bamboo template", "took", time.Since(start).Round(time.Millisecond))
	return false, "", m
}
