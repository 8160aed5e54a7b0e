package discovery

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Update is one change a source sends to the Registry. Only the Registry's goroutine applies
// updates, in the order they were sent.
type Update interface {
	// apply changes st (copy-on-write: it never mutates anything already published) and
	// reports whether anything changed.
	apply(st *state) (changed bool, err error)
}

// state is the registry's working copy between two published snapshots.
type state struct {
	apps     AppSet
	mesos    *MesosState
	marathon *MarathonState
	rules    map[string]ServiceRule
	tasks    int
}

// ErrUnknownApp is returned (and logged by the registry) for a task event naming an app the
// registry does not know.
var ErrUnknownApp = errors.New("unknown app")

// ReplaceApps replaces every app with a full sync's result. Apps equal to the ones already
// held keep their old pointers, so consumers can skip them.
type ReplaceApps struct {
	Apps []*App
	// Keep names apps the sync could not decode: the registry keeps its current version of
	// each (if it has one), so one bad app never vanishes or takes others with it. The
	// registry resolves them itself, so the kept version includes every delta applied so far.
	Keep []string
}

func (u ReplaceApps) apply(st *state) (bool, error) {
	in := u.Apps
	for _, id := range u.Keep {
		if old := st.apps.Get(id); old != nil {
			in = append(in[:len(in):len(in)], old)
		}
	}
	apps := make([]*App, len(in))
	tasks := 0
	changed := len(in) != st.apps.Len()
	for i, a := range in {
		// An app that is already published (kept, above) is prepared and must not be touched.
		if old := st.apps.Get(a.ID); old != a {
			prepare(a)
			if old.Equal(a) {
				a = old
			} else {
				changed = true
			}
		}
		apps[i] = a
		tasks += len(a.Tasks)
	}
	// Reject duplicates before anything else: a full sync naming one id twice is corrupt, and
	// nothing of it may reach the registry, even when the rest looks unchanged.
	set := NewAppSet(apps)
	if set.Len() != len(apps) {
		return false, fmt.Errorf("full sync rejected: %w", duplicateIDs(apps))
	}
	if !changed {
		return false, nil
	}
	st.apps = set
	st.tasks = tasks
	return true, nil
}

// duplicateIDs returns an error naming every app id listed more than once, or nil.
func duplicateIDs(apps []*App) error {
	seen := make(map[string]bool, len(apps))
	var dups []string
	for _, a := range apps {
		if seen[a.ID] && !slices.Contains(dups, a.ID) {
			dups = append(dups, a.ID)
		}
		seen[a.ID] = true
	}
	if len(dups) > 0 {
		return fmt.Errorf("app ids listed more than once: %v", dups)
	}
	return nil
}

// UpsertApp adds or replaces one app (after a refetch of that app).
type UpsertApp struct {
	App *App
}

func (u UpsertApp) apply(st *state) (bool, error) {
	a := u.App
	old := st.apps.Get(a.ID)
	if old == a {
		return false, nil
	}
	prepare(a)
	if old.Equal(a) {
		return false, nil
	}
	if old != nil {
		st.tasks -= len(old.Tasks)
	}
	st.tasks += len(a.Tasks)
	st.apps = st.apps.With(a)
	return true, nil
}

// RemoveApp removes one app (it was destroyed).
type RemoveApp struct {
	ID string
}

func (u RemoveApp) apply(st *state) (bool, error) {
	old := st.apps.Get(u.ID)
	if old == nil {
		return false, nil
	}
	st.tasks -= len(old.Tasks)
	st.apps = st.apps.Without(u.ID)
	return true, nil
}

// TaskStatus is a Marathon status_update_event: a task changed state. A terminal state removes
// the task; any other state adds or updates it. Applied in O(tasks of that app).
type TaskStatus struct {
	AppID       string
	TaskID      string
	State       string
	Host        string
	SlaveID     string
	IPAddresses []string
	Ports       []int
	Version     string
	Timestamp   string
}

func (u TaskStatus) apply(st *state) (bool, error) {
	app := st.apps.Get(u.AppID)
	if app == nil {
		if IsTerminal(u.State) {
			return false, nil // the end of a task of an app already gone: nothing to do
		}
		return false, fmt.Errorf("%s for task %s: %w %s", u.State, u.TaskID, ErrUnknownApp, u.AppID)
	}
	old := app.Task(u.TaskID)
	if IsTerminal(u.State) {
		if old == nil {
			return false, nil
		}
		return replaceTask(st, app, u.TaskID, nil), nil
	}
	t := &Task{ID: u.TaskID, AppID: app.ID}
	if old != nil {
		*t = *old
	}
	t.State = u.State
	if u.Host != "" {
		t.Host = u.Host
	}
	if u.SlaveID != "" {
		t.SlaveID = u.SlaveID
	}
	if len(u.IPAddresses) > 0 {
		t.IPAddresses = u.IPAddresses
	}
	if len(u.Ports) > 0 {
		t.HostPorts = u.Ports
	}
	if u.Version != "" {
		t.Version = u.Version
	}
	if t.StagedAt == "" {
		t.StagedAt = u.Timestamp
	}
	if u.State == StateRunning && t.StartedAt == "" {
		t.StartedAt = u.Timestamp
	}
	if u.State == StateRunning && (old == nil || old.State != StateRunning) && t.Ready == nil &&
		len(app.ReadinessChecks) > 0 && len(app.Deployments) > 0 {
		// A task a deployment started is not ready until Marathon's readiness checks say so,
		// and only a fetch of the app tells (the deployment's step events bring one).
		notReady := false
		t.Ready = &notReady
	}
	app.resolve(t)
	if old.Equal(t) {
		return false, nil
	}
	return replaceTask(st, app, u.TaskID, t), nil
}

// TaskHealth is a Marathon health_status_changed_event for one task.
type TaskHealth struct {
	AppID  string
	TaskID string
	// InstanceID is the Marathon 1.4+ instance the event named, when it named no task. Tasks of
	// Marathon 1.6+ instances carry ids TaskID cannot be rewritten to ("app.instance-UUID._app.1"
	// for instance "app.instance-UUID"): a TaskID that names no task falls back to the tasks of
	// this instance.
	InstanceID string
	Alive      bool
}

func (u TaskHealth) apply(st *state) (bool, error) {
	app := st.apps.Get(u.AppID)
	if app == nil {
		return false, fmt.Errorf("health of task %s: %w %s", u.TaskID, ErrUnknownApp, u.AppID)
	}
	ids := []string{u.TaskID}
	if app.Task(u.TaskID) == nil {
		ids = app.instanceTaskIDs(u.InstanceID)
	}
	if len(ids) == 0 {
		if u.InstanceID != "" {
			return false, fmt.Errorf("health of instance %s of app %s: no task of it known", u.InstanceID, u.AppID)
		}
		return false, fmt.Errorf("health of task %s of app %s: unknown task", u.TaskID, u.AppID)
	}
	changed := false
	for _, id := range ids {
		app = st.apps.Get(u.AppID) // replaceTask published a new copy
		old := app.Task(id)
		t := *old
		// The event carries one verdict for the task: it stands for every check of the app.
		n := max(len(app.HealthChecks), len(old.Health), 1)
		t.Health = make([]HealthResult, n)
		for i := range t.Health {
			t.Health[i].Alive = u.Alive
			if i < len(old.Health) && u.Alive == old.Health[i].Alive {
				t.Health[i].ConsecutiveFailures = old.Health[i].ConsecutiveFailures
			}
		}
		app.resolve(&t)
		if !old.Equal(&t) {
			changed = replaceTask(st, app, id, &t) || changed
		}
	}
	return changed, nil
}

// instanceTaskIDs returns the ids of the tasks of a Marathon instance: those that start with
// the instance id followed by "." or "_" (Marathon's separators before a container name).
func (a *App) instanceTaskIDs(instanceID string) []string {
	if instanceID == "" {
		return nil
	}
	var ids []string
	i, _ := slices.BinarySearchFunc(a.Tasks, instanceID, func(t *Task, id string) int { return cmpString(t.ID, id) })
	for ; i < len(a.Tasks) && strings.HasPrefix(a.Tasks[i].ID, instanceID); i++ {
		if id := a.Tasks[i].ID; len(id) > len(instanceID) && (id[len(instanceID)] == '.' || id[len(instanceID)] == '_') {
			ids = append(ids, id)
		}
	}
	return ids
}

// replaceTask publishes a copy of app with task id replaced by t (nil removes it).
func replaceTask(st *state, app *App, id string, t *Task) bool {
	a := *app
	i, found := slices.BinarySearchFunc(app.Tasks, id, func(x *Task, id string) int { return cmpString(x.ID, id) })
	switch {
	case t == nil && found:
		a.Tasks = slices.Delete(slices.Clone(app.Tasks), i, i+1)
		st.tasks--
	case t != nil && found:
		a.Tasks = slices.Clone(app.Tasks)
		a.Tasks[i] = t
	case t != nil:
		a.Tasks = slices.Insert(slices.Clone(app.Tasks), i, t)
		st.tasks++
	default:
		return false
	}
	st.apps = st.apps.With(&a)
	return true
}

// ReplaceMesosState replaces the Mesos state (frameworks, agents, leader, masters).
type ReplaceMesosState struct {
	State *MesosState
}

func (u ReplaceMesosState) apply(st *state) (bool, error) {
	// Mesos state arrives every poll interval at most, so a deep comparison is affordable.
	if reflect.DeepEqual(st.mesos, u.State) {
		return false, nil
	}
	st.mesos = u.State
	return true, nil
}

// SetMarathonLeader records the Marathon leader, as the Marathon source last learnt it (on
// connecting, and whenever /v2/leader names another member). The same leader again changes
// nothing.
type SetMarathonLeader struct {
	// Leader is the leading member's "host:port" as /v2/leader names it; "" when none is known.
	Leader string
	// Addr is Leader with its host resolved to an IP address, "ip:port"; "" when Leader is
	// empty or its host did not resolve.
	Addr string
}

func (u SetMarathonLeader) apply(st *state) (bool, error) {
	next := MarathonState{Leader: u.Leader, LeaderAddr: u.Addr}
	if st.marathon != nil && *st.marathon == next {
		return false, nil
	}
	st.marathon = &next
	return true, nil
}

// ReplaceRules replaces every bamboo-style routing rule.
type ReplaceRules struct {
	Rules map[string]ServiceRule
}

func (u ReplaceRules) apply(st *state) (bool, error) {
	if maps.Equal(st.rules, u.Rules) {
		return false, nil
	}
	st.rules = maps.Clone(u.Rules)
	return true, nil
}

// prepare sorts an app's tasks and derives their endpoints and eligibility. Apps handed to the
// registry are owned by it from then on.
func prepare(a *App) {
	slices.SortFunc(a.Tasks, func(x, y *Task) int { return cmpString(x.ID, y.ID) })
	for _, t := range a.Tasks {
		a.resolve(t)
	}
}
