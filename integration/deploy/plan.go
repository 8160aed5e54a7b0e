package deploy

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options are zdd.py's options (their names are the flags of `lodestar deploy`).
type Options struct {
	// InitialInstances is the new colour's first instance count (--initial-instances); at
	// most the target.
	InitialInstances int
	// LinearIncrease scales the new colour by this many instances a step instead of by half
	// of its instances (--linear-increase); 0 is zdd's ×1.5.
	LinearIncrease int
	// NewInstances makes a hybrid (traffic-split) deployment: the new colour stops at this
	// many instances and the old keeps target minus that (--new-instances).
	NewInstances int
	// Resume, CompleteCur and CompletePrev act on a group that already has two colours.
	Resume, CompleteCur, CompletePrev bool
	// StepDelay is the pause after each change to Marathon (--step-delay).
	StepDelay time.Duration
	// MaxWait bounds every wait: for the new colour to become healthy, for the edges to show
	// it, for old tasks to drain (--max-wait). Past it, the deploy rolls back.
	MaxWait time.Duration
	// PreKillHook is run before old tasks are removed (--pre-kill-hook).
	PreKillHook string
}

// Mode is what a run does.
type Mode string

const (
	// ModeFirst creates the first colour of a group: nothing to swap.
	ModeFirst Mode = "first deploy"
	// ModeSwap creates the other colour and moves the traffic to it.
	ModeSwap Mode = "blue/green"
	// ModeResume continues a swap whose two colours exist (--resume, --complete-cur).
	ModeResume Mode = "resume"
	// ModeCompletePrev returns a group with two colours to the older one (--complete-prev).
	ModeCompletePrev Mode = "complete previous"
)

// Plan is what a deploy will do, decided from the app file and Marathon's app list alone.
type Plan struct {
	Mode  Mode
	Group string
	// Source is the app id of the file; New is the definition to create (nil when resuming)
	// and NewID the colour that takes the traffic; OldID the colour that gives it up ("" on a
	// first deploy).
	Source           string
	New              App
	NewID, NewColour string
	OldID, OldColour string
	// FrontendPort is HAPROXY_0_PORT: where HAProxy serves the group. NewServicePort and
	// OldServicePort are the colours' Marathon service ports (they alternate with
	// HAPROXY_DEPLOYMENT_ALT_PORT).
	FrontendPort, NewServicePort, OldServicePort int
	// OldInstances is the old colour's instances now; Target the group's instances;
	// Goal the new colour's final instances (Target, or --new-instances in a hybrid).
	OldInstances, Target, Goal int
	Hybrid                     bool
	// Steps are the new colour's instance counts, one per scaling step, as lodestar's drains
	// (one old task per healthy new one, within the target) make them.
	Steps []int
	// Notes are things the operator should know (a port that changed, a clamped count).
	Notes []string
}

// Prepare decides the plan: which colour is next, on which service port, with which labels
// and instances. file is the checked app definition; apps is Marathon's GET /v2/apps.
func Prepare(file App, apps []App, opts Options, now time.Time) (*Plan, error) {
	group, err := file.Group()
	if err != nil {
		return nil, err
	}
	members, err := groupMembers(group, apps)
	if err != nil {
		return nil, err
	}
	if opts.CompleteCur && opts.CompletePrev {
		return nil, errors.New("--complete-cur and --complete-prev: give one")
	}
	if len(members) > 1 {
		return resumePlan(group, file, members, opts)
	}
	if opts.CompleteCur || opts.CompletePrev {
		return nil, fmt.Errorf("group %s is not in a hybrid state (it has %d app): --complete-cur and --complete-prev finish a deployment that has two colours", group, len(members))
	}
	return newPlan(group, file, members, opts, now)
}

// colourName is a HAPROXY_DEPLOYMENT_COLOUR deploy accepts from Marathon (it writes "blue"
// and "green"; it prints the colour and picks the next one from it).
var colourName = regexp.MustCompile(`^[A-Za-z0-9_-]{0,40}$`)

// groupMembers are the apps of Marathon's list in the group, checked and oldest first.
func groupMembers(group string, apps []App) ([]App, error) {
	var members []App
	for _, a := range apps {
		if strings.TrimPrefix(a.Label(LabelGroup), "/") != strings.TrimPrefix(group, "/") {
			continue
		}
		if err := CheckAppID(a.ID()); err != nil {
			return nil, fmt.Errorf("group %s: Marathon app: %w", group, err)
		}
		if _, err := a.labels(); err != nil {
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
		if c := a.Colour(); !colourName.MatchString(c) {
			return nil, fmt.Errorf("group %s: app %s: label %s=%.40q: want letters, digits, '_' or '-'", group, a.ID(), LabelColour, c)
		}
		if _, err := a.StartedAt(); err != nil {
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
		if _, err := a.Instances(); err != nil {
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
		members = append(members, a)
	}
	slices.SortFunc(members, func(x, y App) int {
		tx, _ := x.StartedAt()
		ty, _ := y.StartedAt()
		return cmp.Or(tx.Compare(ty), strings.Compare(x.ID(), y.ID()))
	})
	return members, nil
}

// newPlan prepares a first deploy or a swap from the one existing colour.
func newPlan(group string, file App, members []App, opts Options, now time.Time) (*Plan, error) {
	mainPort, err := file.ServicePort()
	if err != nil {
		return nil, err
	}
	alt, err := file.AltPort()
	if err != nil {
		return nil, err
	}
	target, err := file.Instances()
	if err != nil {
		return nil, err
	}
	p := &Plan{Mode: ModeFirst, Group: group, Source: file.ID(), FrontendPort: mainPort, NewColour: "blue", NewServicePort: mainPort}
	initial := target
	if len(members) == 1 {
		old := members[0]
		p.Mode, p.OldID, p.OldColour = ModeSwap, old.ID(), old.Colour()
		if p.OldServicePort, err = old.ServicePort(); err != nil {
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
		if p.OldInstances, err = old.Instances(); err != nil {
			return nil, err
		}
		if p.OldColour == "blue" {
			p.NewColour = "green"
		}
		p.NewServicePort = alt
		if p.OldServicePort == alt {
			p.NewServicePort = mainPort
		}
		if op, _ := old.portLabel(LabelPort0, false); op != 0 && op != mainPort {
			p.Notes = append(p.Notes, fmt.Sprintf("%s serves the group on port %d (%s) and the file on %d: HAProxy keeps %d until %s is deleted", p.OldID, op, LabelPort0, mainPort, op, p.OldID))
		}
		target = p.OldInstances
		initial = max(1, min(opts.InitialInstances, target))
		if opts.NewInstances > 0 {
			p.Hybrid = true
			if opts.NewInstances > target {
				p.Notes = append(p.Notes, fmt.Sprintf("--new-instances %d is more than the %d instances of %s: %d", opts.NewInstances, target, p.OldID, target))
			}
			initial = max(1, min(opts.InitialInstances, opts.NewInstances, target))
		}
	}
	p.Target, p.Goal = target, target
	if p.Hybrid {
		p.Goal = min(opts.NewInstances, target)
	}
	p.NewID = strings.TrimSuffix(file.ID(), "/") + "-" + p.NewColour
	if err := CheckAppID(p.NewID); err != nil {
		return nil, err
	}
	if p.OldID == p.NewID {
		return nil, fmt.Errorf("group %s: the next colour of %s would be %s itself (its %s label is %q)", group, p.OldID, p.NewID, LabelColour, p.OldColour)
	}
	n := file.Clone()
	n.SetLabel(LabelAppID, file.ID())
	n["id"] = p.NewID
	n.SetLabel(LabelPort0, strconv.Itoa(mainPort))
	n.SetServicePort(p.NewServicePort)
	n.SetLabel(LabelTargetInstances, strconv.Itoa(target))
	n.SetLabel(LabelColour, p.NewColour)
	n.SetLabel(LabelStartedAt, now.UTC().Format(time.RFC3339Nano))
	n.SetLabel(LabelNewInstances, strconv.Itoa(p.Goal*boolInt(p.Hybrid)))
	n["instances"] = initial
	p.New = n
	p.Steps = Steps(initial, p.Goal, p.OldInstances, target, opts.LinearIncrease, p.Hybrid)
	return p, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resumePlan continues or completes a group that has two colours.
func resumePlan(group string, file App, members []App, opts Options) (*Plan, error) {
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID()
	}
	if !opts.Resume && !opts.CompleteCur && !opts.CompletePrev {
		return nil, fmt.Errorf("group %s has a deployment in progress (%s): give --resume or --complete-cur to finish it, --complete-prev to go back", group, strings.Join(ids, ", "))
	}
	if len(members) > 2 {
		return nil, fmt.Errorf("group %s has %d apps (%s): deploy handles two colours; remove the extra ones first", group, len(members), strings.Join(ids, ", "))
	}
	older, newer := members[0], members[1]
	p := &Plan{Mode: ModeResume, Group: group, Source: file.ID()}
	var err error
	if p.FrontendPort, err = newer.portLabel(LabelPort0, false); err != nil {
		return nil, err
	}
	if p.FrontendPort == 0 {
		if p.FrontendPort, err = file.ServicePort(); err != nil {
			return nil, err
		}
	}
	if p.Target, err = newer.TargetInstances(); err != nil {
		return nil, err
	}
	newInst, err := newer.NewInstances()
	if err != nil {
		return nil, err
	}
	take, give := newer, older
	if opts.CompletePrev {
		p.Mode, take, give = ModeCompletePrev, older, newer
	}
	p.NewID, p.NewColour, p.OldID, p.OldColour = take.ID(), take.Colour(), give.ID(), give.Colour()
	if p.NewServicePort, err = take.ServicePort(); err != nil {
		return nil, err
	}
	if p.OldServicePort, err = give.ServicePort(); err != nil {
		return nil, err
	}
	if p.OldInstances, err = give.Instances(); err != nil {
		return nil, err
	}
	cur, err := take.Instances()
	if err != nil {
		return nil, err
	}
	p.Goal = p.Target
	if opts.Resume && !opts.CompleteCur && newInst > 0 {
		p.Hybrid, p.Goal = true, min(newInst, p.Target)
	}
	if p.Mode == ModeCompletePrev {
		// lodestar drains the older colour's tasks for the newer one's, never the other way:
		// the older colour is brought back to the target, then the newer one is removed.
		p.Steps = []int{p.Target}
		return p, nil
	}
	p.Steps = Steps(max(cur, 1), p.Goal, p.OldInstances, p.Target, opts.LinearIncrease, p.Hybrid)
	return p, nil
}

// NextInstances is zdd.py's scaling step: the new colour grows by half of its instances
// (or by linear), and goes straight to the goal once it would reach the old colour's
// instances; never past the goal, always by at least one.
func NextInstances(cur, oldInstances, goal, linear int, hybrid bool) int {
	n := cur + (cur+1)/2
	if linear > 0 {
		n = cur + linear
	}
	if !hybrid && linear <= 0 && n >= oldInstances {
		n = goal
	}
	return min(goal, max(n, cur+1))
}

// lodestarDrains is how many old tasks lodestar's HAProxy front end drains in a deployment
// group: one per healthy task of the newest app, as long as new and old together keep the
// target (haproxy/build_services.go, mergeDeployment).
func lodestarDrains(healthyNew, oldInstances, oldTasks, target int) int {
	return min(oldTasks, healthyNew, max(0, healthyNew+oldInstances-target))
}

// Steps simulates a swap: the new colour's instance count at each step, with the old
// colour losing the tasks lodestar drains for it.
func Steps(initial, goal, oldInstances, target, linear int, hybrid bool) []int {
	steps := []int{initial}
	cur, old := initial, oldInstances
	for cur < goal {
		old -= lodestarDrains(cur, old, old, target)
		cur = NextInstances(cur, old, goal, linear, hybrid)
		steps = append(steps, cur)
	}
	return steps
}
