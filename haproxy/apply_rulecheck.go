package haproxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
)

// ErrRuleRejected marks a bamboo rule HAProxy would not take (CheckRule).
var ErrRuleRejected = errors.New("HAProxy rejects the rule")

// CheckRule checks with `haproxy -c` how HAProxy takes acl as the bamboo rule of app appID, as
// the app is in snap: it renders a configuration of only that app (and the other apps of its
// deployment group) with the rule, so that no other app's trouble is counted against it. It
// returns nil when HAProxy accepts it, or when snap has no such app to route (the rule cannot
// be rendered yet); an error wrapping ErrRuleRejected with HAProxy's alerts on the app's
// lines, or saying the check hung or crashed, when HAProxy would not take it; another error
// when the check could not run. It neither installs anything nor touches what the Applier
// runs, and may be called from any goroutine.
func (a *Applier) CheckRule(ctx context.Context, snap *discovery.Snapshot, appID, acl string) error {
	only := ruleSnapshot(snap, appID, acl)
	if only == nil {
		return nil
	}
	// One check at a time: a burst of rule writes must not start a burst of `haproxy -c`.
	select {
	case a.ruleChecks <- struct{}{}:
		defer func() { <-a.ruleChecks }()
	case <-ctx.Done():
		return fmt.Errorf("checking the rule of %s: %w", appID, ctx.Err())
	}
	m := Build(only, a.cfg.Build, nil)
	if m.Err != nil {
		return fmt.Errorf("checking the rule of %s: building: %w", appID, m.Err)
	}
	r, err := Render(m)
	if err != nil {
		return fmt.Errorf("checking the rule of %s: rendering: %w", appID, err)
	}
	for _, ex := range m.Excluded {
		// The build refuses a rule that is not a routing rule's shape before HAProxy sees it.
		if strings.HasPrefix(ex.Reason, "routing rule") {
			return fmt.Errorf("%w: %s", ErrRuleRejected, ex.Reason)
		}
	}
	if !strings.Contains(string(r.Config), acl) {
		return nil // the app is left out for its labels, or has no HTTP port: the rule is not rendered
	}
	f, err := os.CreateTemp(a.cfg.Build.RunDir, ".rule-check-*.cfg")
	if err != nil {
		return fmt.Errorf("checking the rule of %s: %w", appID, err)
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	cleanup, err := writeCandidate(path, r)
	defer cleanup()
	if err != nil {
		return fmt.Errorf("checking the rule of %s: %w", appID, err)
	}
	check := ValidateWithin(ctx, a.cfg.Bin, path, checkTimeout(len(r.Config), 0, a.cfg.CheckTimeout))
	var verr *ValidationError
	var aborted *CheckAbortedError
	switch {
	case check == nil:
		return nil
	case errors.As(check, &aborted):
		return fmt.Errorf("%w: %s with the rule of %s", ErrRuleRejected, aborted.What(), appID)
	case errors.As(check, &verr):
		var mine []string
		for _, al := range verr.Alerts {
			if owner := alertOwner(al, path, m, r); owner != "" {
				al.File = "" // the file is a temporary one: its name says nothing to the caller
				mine = append(mine, al.String())
			}
		}
		if len(mine) == 0 {
			return nil // the configuration around the app is at fault, not the rule
		}
		return fmt.Errorf("%w: %s", ErrRuleRejected, strings.Join(mine, "; "))
	}
	return fmt.Errorf("checking the rule of %s: %w", appID, check)
}

// ruleSnapshot is snap reduced to app appID, and the apps of its deployment group, with acl as
// its only rule; nil when snap has no such app.
func ruleSnapshot(snap *discovery.Snapshot, appID, acl string) *discovery.Snapshot {
	if snap == nil {
		return nil
	}
	app := snap.App(appID)
	if app == nil {
		return nil
	}
	apps := []*discovery.App{app}
	if group := app.Labels[LabelDeploymentGroup]; group != "" {
		snap.Apps.Each(func(o *discovery.App) bool {
			if o != app && o.Labels[LabelDeploymentGroup] == group {
				apps = append(apps, o)
			}
			return true
		})
	}
	rule := discovery.ServiceRule{AppID: appID, ACL: acl}
	return &discovery.Snapshot{Version: snap.Version, Time: snap.Time, Apps: discovery.NewAppSet(apps),
		Mesos: snap.Mesos, Marathon: snap.Marathon, Rules: map[string]discovery.ServiceRule{appID: rule}}
}
