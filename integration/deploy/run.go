package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Config is one deploy run.
type Config struct {
	Marathon *Marathon
	// Edges are lodestar's APIs deploy reads drains from; nil only for a dry run.
	Edges   *Edges
	Options Options
	// Progress reports the run; nil reports nothing.
	Progress *Progress
	// Confirm asks the operator before each change zdd.py asks about (create, remove tasks,
	// delete the old colour); nil proceeds (--force).
	Confirm func(question string) (bool, error)
	// Poll is the interval of the waits (default 250ms).
	Poll time.Duration
	// Now and Sleep default to the real clock.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// ErrDeclined is returned when the operator answers no.
var ErrDeclined = errors.New("declined at the prompt")

// deployer executes a plan.
type deployer struct {
	cfg  Config
	plan *Plan
	// killed are the old tasks already removed (Marathon may list them a while longer).
	killed map[string]bool
}

// PlanFrom reads Marathon's app list and prepares the plan for file, without writing.
func PlanFrom(ctx context.Context, cfg Config, file App) (*Plan, error) {
	cfg = cfg.withDefaults()
	apps, err := cfg.Marathon.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	return Prepare(file, apps, cfg.Options, cfg.Now())
}

func (c Config) withDefaults() Config {
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepCtx
	}
	if c.Options.MaxWait <= 0 {
		c.Options.MaxWait = 5 * time.Minute
	}
	return c
}

// Run executes plan. Any failure after the first write to Marathon rolls back: the old
// colour back at the target instances, the new colour deleted. The error says why it
// failed and what the rollback did.
func Run(ctx context.Context, cfg Config, plan *Plan) error {
	cfg = cfg.withDefaults()
	if cfg.Edges == nil {
		return errors.New("no lodestar edge (--lodestar)")
	}
	d := &deployer{cfg: cfg, plan: plan, killed: map[string]bool{}}
	if plan.OldID != "" {
		if err := d.preflight(ctx); err != nil {
			return err
		}
	}
	if plan.New != nil {
		if ok, err := d.confirm("Continue with deployment?"); err != nil || !ok {
			return errors.Join(ErrDeclined, err)
		}
		if err := cfg.Marathon.CreateApp(ctx, plan.New); err != nil {
			err = fmt.Errorf("creating %s: %w", plan.NewID, err)
			if refused(err) {
				return err
			}
			// No answer, or a 5xx: Marathon may have created the app before it failed.
			return d.rollback(err)
		}
		d.progress().Step("create", fmt.Sprintf("created %s (%s, service port %d) with %d instance(s)", plan.NewID, plan.NewColour, plan.NewServicePort, mustInstances(plan.New)), Counts{})
	}
	var err error
	switch plan.Mode {
	case ModeFirst:
		err = d.waitServing(ctx, plan.NewID, false)
	case ModeCompletePrev:
		err = d.completePrev(ctx)
	default:
		err = d.swap(ctx)
	}
	if err == nil {
		d.progress().Done(fmt.Sprintf("%s serves group %s on port %d", plan.NewID, plan.Group, plan.FrontendPort))
		return nil
	}
	if errors.Is(err, ErrDeclined) || plan.Mode == ModeCompletePrev {
		d.progress().Fail(err.Error())
		return err
	}
	return d.rollback(err)
}

// refused reports whether Marathon answered err as a refusal of the request (a 4xx that
// would not change on a retry): it did not act on it.
func refused(err error) bool {
	var me *MarathonError
	return errors.As(err, &me) && me.Status >= 400 && me.Status < 500 && !me.retryable()
}

func mustInstances(a App) int {
	n, _ := a.Instances()
	return n
}

func (d *deployer) progress() *Progress {
	if d.cfg.Progress == nil {
		return discardProgress
	}
	return d.cfg.Progress
}

func (d *deployer) confirm(q string) (bool, error) {
	if d.cfg.Confirm == nil {
		return true, nil
	}
	return d.cfg.Confirm(q)
}

// preflight checks, before anything is written, that every edge serves the old colour and
// reports HAProxy's view of its servers: without that no drain could ever be confirmed.
func (d *deployer) preflight(ctx context.Context) error {
	var errs []error
	for _, v := range d.cfg.Edges.View(ctx, d.plan.OldID) {
		if v.Err != nil {
			errs = append(errs, v.Err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("before deploying (nothing was written to Marathon): %w", err)
	}
	return nil
}

// state is one reading of both colours from Marathon.
type state struct {
	newApp, oldApp App
	newInst        int
	oldInst        int
	healthy        []string
	oldTasks       []string
}

func (d *deployer) read(ctx context.Context) (*state, error) {
	s := &state{}
	var ok bool
	var err error
	if s.newApp, ok, err = d.cfg.Marathon.GetApp(ctx, d.plan.NewID); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s is gone from Marathon", d.plan.NewID)
	}
	if s.oldApp, ok, err = d.cfg.Marathon.GetApp(ctx, d.plan.OldID); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s is gone from Marathon", d.plan.OldID)
	}
	if s.newInst, err = s.newApp.Instances(); err != nil {
		return nil, err
	}
	if s.oldInst, err = s.oldApp.Instances(); err != nil {
		return nil, err
	}
	s.healthy = healthyTasks(s.newApp.Tasks())
	for _, id := range taskIDs(s.oldApp.Tasks()) {
		if !d.killed[id] {
			s.oldTasks = append(s.oldTasks, id)
		}
	}
	return s, nil
}

// swap moves the traffic from the old colour to the new one, step by step: it removes the
// old tasks every edge reports drained, scales the new colour up when nothing is left to
// remove, and deletes the old colour once all its tasks are drained everywhere. A wait that
// passes --max-wait without progress fails the swap.
func (d *deployer) swap(ctx context.Context) error {
	p, o := d.plan, d.cfg.Options
	since := d.cfg.Now()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		s, err := d.read(ctx)
		if err != nil {
			return err
		}
		c := Counts{NewInstances: s.newInst, NewHealthy: len(s.healthy), Goal: p.Goal, OldInstances: s.oldInst, OldTasks: len(s.oldTasks)}
		waiting := ""
		if deps := s.newApp.Deployments(); deps > 0 || len(s.healthy) < s.newInst {
			waiting = fmt.Sprintf("%s: %d of %d instance(s) healthy, %d deployment(s) under way", p.NewID, len(s.healthy), s.newInst, deps)
		} else if deps := s.oldApp.Deployments(); deps > 0 {
			// Marathon scales the old colour down after a removal: it is locked until then.
			waiting = fmt.Sprintf("%s: %d deployment(s) under way", p.OldID, deps)
		} else {
			a := Assess(d.cfg.Edges.View(ctx, p.NewID), s.oldTasks, s.healthy)
			c.NewServing, c.Drained, c.Draining, c.Sessions = a.NewServing, len(a.Drained), len(a.Draining), a.Sessions
			acted, done, why, err := d.act(ctx, s, a, c)
			if err != nil || done {
				return err
			}
			if acted {
				since = d.cfg.Now()
				if err := d.cfg.Sleep(ctx, o.StepDelay); err != nil {
					return fmt.Errorf("interrupted: %w", err)
				}
				continue
			}
			waiting = why
		}
		if elapsed := d.cfg.Now().Sub(since); elapsed > o.MaxWait {
			return fmt.Errorf("no progress for %s (--max-wait %s): %s", elapsed.Round(time.Millisecond), o.MaxWait, waiting)
		}
		d.progress().Wait(waiting, c)
		if err := d.cfg.Sleep(ctx, d.cfg.Poll); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
	}
}

// act takes the next step of a swap when the edges allow one: acted says it changed
// Marathon, done that the swap is over; otherwise why says what it waits for.
func (d *deployer) act(ctx context.Context, s *state, a Assessment, c Counts) (acted, done bool, why string, err error) {
	p, o := d.plan, d.cfg.Options
	atGoal := s.newInst >= p.Goal
	switch {
	case a.NewServing < len(s.healthy):
		return false, false, a.Waiting, nil
	case !p.Hybrid && atGoal && len(a.Drained) == len(s.oldTasks):
		if err := d.beforeRemoving(ctx, s, a.Drained, fmt.Sprintf("Delete %s?", p.OldID)); err != nil {
			return false, false, "", err
		}
		if err := d.cfg.Marathon.DeleteApp(ctx, p.OldID, false); err != nil {
			return false, false, "", fmt.Errorf("deleting %s: %w", p.OldID, err)
		}
		c.OldTasks, c.Drained = 0, 0
		d.progress().Step("delete", fmt.Sprintf("deleted %s: every edge reported its %d server(s) drained", p.OldID, len(a.Drained)), c)
		return true, true, "", nil
	case len(a.Drained) > 0:
		if err := d.beforeRemoving(ctx, s, a.Drained, fmt.Sprintf("Remove %d drained task(s) of %s?", len(a.Drained), p.OldID)); err != nil {
			return false, false, "", err
		}
		if err := d.cfg.Marathon.KillTasks(ctx, a.Drained); err != nil {
			return false, false, "", fmt.Errorf("removing drained tasks of %s: %w", p.OldID, err)
		}
		for _, id := range a.Drained {
			d.killed[id] = true
		}
		c.OldTasks -= len(a.Drained)
		c.Drained = 0
		d.progress().Step("remove", fmt.Sprintf("removed %d drained task(s) of %s (0 sessions on every edge)", len(a.Drained), p.OldID), c)
		return true, false, "", nil
	case !atGoal:
		n := NextInstances(s.newInst, s.oldInst, p.Goal, o.LinearIncrease, p.Hybrid)
		if err := d.cfg.Marathon.ScaleApp(ctx, p.NewID, n, false); err != nil {
			return false, false, "", fmt.Errorf("scaling %s to %d: %w", p.NewID, n, err)
		}
		c.NewInstances = n
		d.progress().Step("scale", fmt.Sprintf("scaled %s %d → %d instance(s)", p.NewID, s.newInst, n), c)
		return true, false, "", nil
	case p.Hybrid && s.oldInst <= p.Target-p.Goal:
		d.progress().Step("hybrid", fmt.Sprintf("traffic split: %s %d instance(s), %s %d", p.NewID, s.newInst, p.OldID, s.oldInst), c)
		return false, true, "", nil
	}
	if a.Waiting != "" {
		return false, false, a.Waiting, nil
	}
	return false, false, fmt.Sprintf("lodestar to drain the old tasks of %s (%d left)", p.OldID, len(s.oldTasks)), nil
}

// beforeRemoving asks the operator and runs the pre-kill hook with the old app, the tasks
// and the new app as JSON, as zdd.py calls it.
func (d *deployer) beforeRemoving(ctx context.Context, s *state, ids []string, question string) error {
	if hook := d.cfg.Options.PreKillHook; hook != "" {
		args := make([]string, 3)
		for i, v := range []any{s.oldApp, ids, s.newApp} {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			args[i] = string(b)
		}
		hctx, cancel := context.WithTimeout(ctx, d.cfg.Options.MaxWait)
		defer cancel()
		cmd := exec.CommandContext(hctx, hook, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("--pre-kill-hook %s refused removing %s: %w", hook, strings.Join(ids, ", "), err)
		}
	}
	ok, err := d.confirm(question)
	if err != nil {
		return err
	}
	if !ok {
		return ErrDeclined
	}
	return nil
}

// waitServing waits until app id is healthy in Marathon and every edge serves all its tasks;
// with drainedToo, until every edge has them up, drained or not (an older colour, whose tasks
// lodestar drains while a newer one exists).
func (d *deployer) waitServing(ctx context.Context, id string, drainedToo bool) error {
	since := d.cfg.Now()
	for {
		a, ok, err := d.cfg.Marathon.GetApp(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is gone from Marathon", id)
		}
		inst, err := a.Instances()
		if err != nil {
			return err
		}
		healthy := healthyTasks(a.Tasks())
		c := Counts{NewInstances: inst, NewHealthy: len(healthy), Goal: inst}
		var waiting string
		if deps := a.Deployments(); deps > 0 || len(healthy) < inst {
			waiting = fmt.Sprintf("%s: %d of %d instance(s) healthy, %d deployment(s) under way", id, len(healthy), inst, deps)
		} else {
			as := Assess(d.cfg.Edges.View(ctx, id), nil, healthy)
			c.NewServing = as.NewServing
			if as.NewServing >= len(healthy) || drainedToo && as.NewUp >= len(healthy) {
				d.progress().Step("serving", fmt.Sprintf("%s: %d instance(s) healthy and up on every edge", id, len(healthy)), c)
				return nil
			}
			waiting = as.Waiting
		}
		if elapsed := d.cfg.Now().Sub(since); elapsed > d.cfg.Options.MaxWait {
			return fmt.Errorf("no progress for %s (--max-wait %s): %s", elapsed.Round(time.Millisecond), d.cfg.Options.MaxWait, waiting)
		}
		d.progress().Wait(waiting, c)
		if err := d.cfg.Sleep(ctx, d.cfg.Poll); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
	}
}

// completePrev brings the older colour back to the target and then deletes the newer one.
func (d *deployer) completePrev(ctx context.Context) error {
	p := d.plan
	if err := d.cfg.Marathon.ScaleApp(ctx, p.NewID, p.Target, false); err != nil {
		return fmt.Errorf("scaling %s to %d: %w", p.NewID, p.Target, err)
	}
	d.progress().Step("scale", fmt.Sprintf("scaled %s to %d instance(s)", p.NewID, p.Target), Counts{NewInstances: p.Target, Goal: p.Target})
	if err := d.waitServing(ctx, p.NewID, true); err != nil {
		return fmt.Errorf("%s did not come back (%w); %s left in place", p.NewID, err, p.OldID)
	}
	if ok, err := d.confirm(fmt.Sprintf("Delete %s?", p.OldID)); err != nil || !ok {
		return errors.Join(ErrDeclined, err)
	}
	if err := d.cfg.Marathon.DeleteApp(ctx, p.OldID, false); err != nil {
		return fmt.Errorf("deleting %s: %w", p.OldID, err)
	}
	d.progress().Step("delete", "deleted "+p.OldID, Counts{NewInstances: p.Target, Goal: p.Target})
	return nil
}

// rollback returns Marathon to the old colour after cause: the old colour back at the
// target instances (and healthy), then the new colour deleted. It runs on a context of its
// own, so an interrupted deploy still rolls back.
func (d *deployer) rollback(cause error) error {
	p := d.plan
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Options.MaxWait+time.Minute)
	defer cancel()
	d.progress().Step("rollback", "rolling back: "+cause.Error(), Counts{})
	var done []string
	if p.OldID != "" {
		// Both colours stay until the old one is back: --complete-prev finishes from there.
		finish := fmt.Sprintf("%s left in place (lodestar deploy --complete-prev finishes the rollback)", p.NewID)
		old, ok, err := d.cfg.Marathon.GetApp(ctx, p.OldID)
		if err == nil && !ok {
			return fmt.Errorf("%w; rollback failed: %s is gone from Marathon; %s left in place", cause, p.OldID, p.NewID)
		}
		if err != nil {
			return fmt.Errorf("%w; rollback failed: reading %s: %v; %s", cause, p.OldID, err, finish)
		}
		if n, _ := old.Instances(); n != p.Target {
			if err := d.cfg.Marathon.ScaleApp(ctx, p.OldID, p.Target, true); err != nil {
				return fmt.Errorf("%w; rollback failed: scaling %s back to %d: %v; %s", cause, p.OldID, p.Target, err, finish)
			}
		}
		if err := d.waitHealthy(ctx, p.OldID, p.Target); err != nil {
			return fmt.Errorf("%w; rollback incomplete: %v; %s so the group keeps serving", cause, err, finish)
		}
		done = append(done, fmt.Sprintf("%s at %d instance(s)", p.OldID, p.Target))
	}
	// Every plan that rolls back has its new colour in Marathon (or possibly so, after a
	// create whose answer was lost): created by this run, or by the run a resume continues.
	if err := d.cfg.Marathon.DeleteApp(ctx, p.NewID, true); err != nil {
		return fmt.Errorf("%w; rollback failed: deleting %s: %v", cause, p.NewID, err)
	}
	done = append(done, p.NewID+" deleted")
	msg := "rolled back: " + strings.Join(done, ", ")
	d.progress().Fail(cause.Error() + "; " + msg)
	return fmt.Errorf("%w; %s", cause, msg)
}

// waitHealthy waits until app id has n healthy tasks and no deployment.
func (d *deployer) waitHealthy(ctx context.Context, id string, n int) error {
	since := d.cfg.Now()
	for {
		a, ok, err := d.cfg.Marathon.GetApp(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is gone from Marathon", id)
		}
		h := healthyTasks(a.Tasks())
		if len(h) >= n && a.Deployments() == 0 {
			return nil
		}
		if d.cfg.Now().Sub(since) > d.cfg.Options.MaxWait {
			return fmt.Errorf("%s: %d of %d instance(s) healthy after --max-wait %s", id, len(h), n, d.cfg.Options.MaxWait)
		}
		if err := d.cfg.Sleep(ctx, d.cfg.Poll); err != nil {
			return err
		}
	}
}
