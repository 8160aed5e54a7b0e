package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Config configures a Scaler.
type Config struct {
	// Interval is how often the apps are sampled and decided on.
	Interval time.Duration
	// Defaults are the settings of an app's labels left out (the flags).
	Defaults Settings
	// Snapshot returns the registry's newest snapshot: the apps, their labels, tasks and
	// deployments, and the Mesos agents.
	Snapshot func() *discovery.Snapshot
	// Counters reads the request totals (request rate mode); nil leaves rps apps unscaled.
	Counters RequestCounters
	// Agents reads the agents' statistics (resource modes); nil leaves those apps unscaled.
	Agents AgentStatistics
	// Marathon is where scales are written.
	Marathon Marathon
	// Leader says whether this instance may scale; nil is Alone.
	Leader Leadership
	// DryRun logs the scales without writing them.
	DryRun bool
	// RetryBase and RetryMax space the attempts for an app Marathon refused or did not answer
	// for (default 2s and 2m).
	RetryBase, RetryMax time.Duration
	Logger              *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Scaler samples the apps that opted in every interval, decides and scales them. One
// goroutine (Run) owns the policies; Status may be called from any.
type Scaler struct {
	cfg      Config
	rates    *RateTracker
	usage    *UsageTracker
	policies map[string]*Policy
	backoffs map[string]*Backoff
	// unreachable spaces the attempts after Marathon as a whole failed to answer, for every
	// app at once: one outage must not cost one timeout per app per interval.
	unreachable *Backoff
	badLabel    map[string]string // the last label error logged, per app

	mu     sync.Mutex
	status map[string]Decision // the last decision per app
}

// New checks cfg.
func New(cfg Config) (*Scaler, error) {
	if cfg.Interval <= 0 {
		return nil, errors.New("autoscale: the interval must be positive")
	}
	if cfg.Snapshot == nil || cfg.Marathon == nil {
		return nil, errors.New("autoscale: a registry and a Marathon are needed")
	}
	if err := cfg.Defaults.Check(); err != nil {
		return nil, fmt.Errorf("autoscale defaults: %w", err)
	}
	if cfg.Leader == nil {
		cfg.Leader = Alone{}
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 2 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Scaler{cfg: cfg, rates: NewRateTracker(), usage: NewUsageTracker(), policies: map[string]*Policy{},
		backoffs: map[string]*Backoff{}, unreachable: &Backoff{Base: cfg.RetryBase, Max: cfg.RetryMax}, badLabel: map[string]string{}, status: map[string]Decision{}}, nil
}

// Run decides every interval until ctx ends.
func (s *Scaler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.Tick(ctx)
	}
}

// optedApp is an app that opted in, with its settings and policy.
type optedApp struct {
	app    *discovery.App
	policy *Policy
}

// Tick samples and decides once.
func (s *Scaler) Tick(ctx context.Context) {
	now := s.cfg.Now()
	lead := s.cfg.Leader.Leading()
	leading.Set(boolFloat(lead))
	var decisions []Decision
	snap := s.cfg.Snapshot()
	if snap != nil {
		opted, bad := s.optedApps(snap, now)
		decisions = append(decisions, bad...)
		decisions = append(decisions, s.decideRates(ctx, now, opted)...)
		decisions = append(decisions, s.decideResources(ctx, now, snap, opted)...)
		for i := range decisions {
			s.act(ctx, now, &decisions[i])
		}
	}
	s.mu.Lock()
	s.status = map[string]Decision{}
	for _, d := range decisions {
		s.status[d.App] = d
	}
	s.mu.Unlock()
}

// optedApps returns the apps that opted in with valid labels, and a skip decision for each
// that opted in with bad ones. Policies of apps gone or opted out are dropped.
func (s *Scaler) optedApps(snap *discovery.Snapshot, now time.Time) ([]optedApp, []Decision) {
	var opted []optedApp
	var bad []Decision
	seen := map[string]bool{}
	for _, a := range snap.Apps.All() {
		set, ok, err := SettingsOf(a.ID, a.Labels, s.cfg.Defaults)
		if !ok {
			continue
		}
		seen[a.ID] = true
		if err != nil {
			if s.badLabel[a.ID] != err.Error() {
				s.cfg.Logger.Warn("autoscale: bad labels, app not scaled", "app", a.ID, "error", err)
				s.badLabel[a.ID] = err.Error()
			}
			delete(s.policies, a.ID)
			bad = append(bad, Decision{App: a.ID, At: now, Action: ActionSkip, From: a.Instances, To: a.Instances,
				Reason: "bad labels: " + err.Error()})
			continue
		}
		delete(s.badLabel, a.ID)
		p := s.policies[a.ID]
		if p == nil || !reflect.DeepEqual(p.Settings(), set) {
			np := NewPolicy(a.ID, set, s.cfg.Interval)
			if p != nil {
				np.lastScaled = p.lastScaled // a label edit does not end a cooldown
			}
			p = np
			s.policies[a.ID] = p
		}
		opted = append(opted, optedApp{a, p})
	}
	for id := range s.policies {
		if !seen[id] {
			delete(s.policies, id)
			delete(s.backoffs, id)
		}
	}
	for id := range s.badLabel {
		if !seen[id] {
			delete(s.badLabel, id)
		}
	}
	labelErrors.Set(float64(len(bad)))
	appsScaled.Set(float64(len(opted)))
	return opted, bad
}

// decideRates reads the request counters of the rps apps once and decides each.
func (s *Scaler) decideRates(ctx context.Context, now time.Time, opted []optedApp) []Decision {
	var apps []optedApp
	var ids []string
	for _, o := range opted {
		if o.policy.Settings().Mode == ModeRate {
			apps = append(apps, o)
			ids = append(ids, o.app.ID)
		}
	}
	if len(apps) == 0 {
		return nil
	}
	var out []Decision
	if s.cfg.Counters == nil {
		for _, o := range apps {
			out = append(out, Decision{App: o.app.ID, Mode: ModeRate, At: now, Action: ActionSkip, From: o.app.Instances,
				To: o.app.Instances, Reason: "request rate mode needs HAProxy here or --lodestar edges"})
		}
		return out
	}
	readings := s.cfg.Counters.RequestTotals(ctx, ids)
	for _, r := range readings {
		if r.Err != nil {
			s.cfg.Logger.Warn("autoscale: request counters unreadable; the rates are incomplete", "edge", r.Edge, "error", r.Err)
		}
	}
	rates := s.rates.Rates(readings)
	for _, o := range apps {
		ports := map[int]PortRate{}
		allowed := o.policy.Settings().ServicePorts
		for _, p := range o.app.Ports {
			if p.ServicePort == 0 || len(allowed) > 0 && !slices.Contains(allowed, p.ServicePort) {
				continue
			}
			if r, ok := rates[RouteKey{o.app.ID, p.ServicePort}]; ok {
				ports[p.ServicePort] = r
			}
		}
		out = append(out, o.policy.DecideRate(now, o.app.Instances, ports, len(o.app.Deployments) > 0))
	}
	return out
}

// decideResources reads the agents running the resource apps' tasks, once each, and decides.
func (s *Scaler) decideResources(ctx context.Context, now time.Time, snap *discovery.Snapshot, opted []optedApp) []Decision {
	var apps []optedApp
	for _, o := range opted {
		if o.policy.Settings().Mode.Resource() {
			apps = append(apps, o)
		}
	}
	if len(apps) == 0 {
		return nil
	}
	var out []Decision
	if s.cfg.Agents == nil || snap.Mesos == nil {
		for _, o := range apps {
			out = append(out, Decision{App: o.app.ID, Mode: o.policy.Settings().Mode, At: now, Action: ActionSkip, From: o.app.Instances,
				To: o.app.Instances, Reason: "resource modes need the Mesos state (--mesos-zk or --mesos-master)"})
		}
		return out
	}
	byAgent, readAt := s.readAgents(ctx, snap, apps)
	live := map[string]bool{}
	for _, o := range apps {
		for _, t := range o.app.Tasks {
			live[t.ID] = true
		}
		rs := s.usage.Sample(o.app, byAgent, readAt)
		out = append(out, o.policy.DecideResource(now, o.app.Instances, rs, len(o.app.Deployments) > 0))
	}
	s.usage.Forget(func(id string) bool { return live[id] })
	return out
}

// readAgents reads every agent that runs a task of apps; an agent that fails leaves its
// tasks without figures. The figures are kept by agent: an agent's word counts only for the
// tasks it runs.
func (s *Scaler) readAgents(ctx context.Context, snap *discovery.Snapshot, apps []optedApp) (AgentUsage, time.Time) {
	need := map[string]bool{}
	for _, o := range apps {
		for _, t := range o.app.Tasks {
			need[t.SlaveID] = true
		}
	}
	byAgent := AgentUsage{}
	readAt := s.cfg.Now()
	for _, agent := range snap.Mesos.Agents {
		if !need[agent.ID] || byAgent[agent.ID] != nil {
			continue
		}
		usage, err := s.cfg.Agents.Statistics(ctx, agent)
		if err != nil {
			s.cfg.Logger.Warn("autoscale: agent statistics unreadable; its tasks have no figures", "agent", agent.ID, "error", err)
			continue
		}
		byExecutor := make(map[string]ExecutorUsage, len(usage))
		for _, u := range usage {
			byExecutor[u.ExecutorID] = u
		}
		// A task's executor id may differ from the task id (a custom executor); its source
		// then names the task. An executor's own id wins over another's source.
		for _, u := range usage {
			if _, taken := byExecutor[u.Source]; u.Source != "" && !taken {
				byExecutor[u.Source] = u
			}
		}
		byAgent[agent.ID] = byExecutor
	}
	return byAgent, readAt
}

// act carries out a decision: a scale is written to Marathon when this instance leads, the
// app is not in a deployment by Marathon's own word and its backoff allows; then the decision
// is logged and counted.
func (s *Scaler) act(ctx context.Context, now time.Time, d *Decision) {
	if d.Action == ActionScale {
		s.scale(ctx, now, d)
	}
	mode := string(d.Mode)
	if mode == "" {
		mode = "none"
	}
	decisionsTotal.WithLabelValues(mode, string(d.Action)).Inc()
	attrs := []any{"app", d.App, "mode", d.Mode, "action", d.Action, "from", d.From, "to", d.To, "reason", d.Reason}
	in := d.Inputs
	if d.Mode == ModeRate {
		attrs = append(attrs, "rps", fmt.Sprintf("%.2f", in.RPS), "port", in.Port, "samples", in.Samples, "incomplete", in.Incomplete)
	} else if d.Mode != "" {
		attrs = append(attrs, "cpu", FormatPercent(in.CPU), "mem", FormatPercent(in.Mem), "tasks", in.Tasks, "with_stats", in.WithStats)
	}
	if d.DryRun {
		attrs = append(attrs, "dry_run", true)
	}
	if d.Error != "" {
		attrs = append(attrs, "error", d.Error)
		s.cfg.Logger.Warn("autoscale decision", attrs...)
		return
	}
	s.cfg.Logger.Info("autoscale decision", attrs...)
}

// scale writes one scale decision, or turns it into a skip saying why not. The lock is asked
// at each write, not once per interval: an interval with many apps and a slow Marathon can
// outlast this instance's hold of the lock.
func (s *Scaler) scale(ctx context.Context, now time.Time, d *Decision) {
	direction := "up"
	if d.To < d.From {
		direction = "down"
	}
	skip := func(reason string) {
		d.Action, d.Reason, d.To = ActionSkip, reason+" (wanted "+fmt.Sprint(d.To)+"; "+d.Reason+")", d.From
	}
	lost := func() bool {
		if s.cfg.Leader.Leading() {
			return false
		}
		skip("another instance holds the autoscale lock")
		return true
	}
	if lost() {
		return
	}
	if t, ok := s.cfg.Leader.(Term); ok {
		var cancel context.CancelFunc
		ctx, cancel = t.Term(ctx)
		defer cancel()
	}
	p := s.policies[d.App]
	if s.cfg.DryRun {
		d.DryRun = true
		p.Scaled(now)
		scalesTotal.WithLabelValues(direction, "dry_run").Inc()
		return
	}
	b := s.backoffs[d.App]
	if b == nil {
		b = &Backoff{Base: s.cfg.RetryBase, Max: s.cfg.RetryMax}
		s.backoffs[d.App] = b
	}
	for _, b := range []*Backoff{s.unreachable, b} {
		if !b.Ready(now) {
			skip(fmt.Sprintf("Marathon failed before; next attempt in %s", b.until.Sub(now).Round(time.Millisecond)))
			return
		}
	}
	fail := func(err error) {
		wait := b.Failed(now)
		if errors.Is(err, ErrMarathonUnavailable) {
			wait = s.unreachable.Failed(now)
		}
		d.Error = fmt.Sprintf("%v (next attempt in %s)", err, wait)
		scalesTotal.WithLabelValues(direction, "error").Inc()
		skip("Marathon failed")
	}
	st, err := s.cfg.Marathon.App(ctx, d.App)
	if err != nil {
		fail(err)
		return
	}
	s.unreachable.Succeeded() // it answered
	switch {
	case st.Deployments > 0:
		skip("in a deployment, by Marathon's word: never scaled")
		scalesTotal.WithLabelValues(direction, "refused").Inc()
		return
	case st.Instances != d.From:
		skip(fmt.Sprintf("Marathon has %d instances now, not %d: deciding again on the next interval", st.Instances, d.From))
		return
	case lost():
		return
	}
	if err := s.cfg.Marathon.Scale(ctx, d.App, d.To); err != nil {
		if !s.cfg.Leader.Leading() {
			d.Error = err.Error()
			skip("the autoscale lock was lost during the write, which was abandoned (Marathon may have had it already)")
			return
		}
		if errors.Is(err, ErrDeploymentLocked) {
			b.Failed(now)
			skip("in a deployment, by Marathon's 409: never scaled")
			scalesTotal.WithLabelValues(direction, "refused").Inc()
			return
		}
		fail(err)
		return
	}
	b.Succeeded()
	p.Scaled(now)
	scalesTotal.WithLabelValues(direction, "ok").Inc()
}

// Status is the autoscaler at a glance, for the status page.
type Status struct {
	Leading  bool          `json:"leading"`
	DryRun   bool          `json:"dry_run"`
	Interval time.Duration `json:"interval"`
	// Apps are the last decision of every app that opted in, by app id.
	Apps []Decision `json:"apps"`
}

// Status returns the last decisions.
func (s *Scaler) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Leading: s.cfg.Leader.Leading(), DryRun: s.cfg.DryRun, Interval: s.cfg.Interval, Apps: []Decision{}}
	for _, d := range s.status {
		st.Apps = append(st.Apps, d)
	}
	slices.SortFunc(st.Apps, func(a, b Decision) int {
		switch {
		case a.App < b.App:
			return -1
		case a.App > b.App:
			return 1
		}
		return 0
	})
	return st
}

// FormatPercent shows a usage figure as a decision's input does: "12.3%", or "unknown".
func FormatPercent(p *float64) string {
	if p == nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f%%", *p)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
