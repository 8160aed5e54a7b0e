package fakemarathon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Deployments: every write that changes an app's tasks through the REST API (POST /v2/apps,
// PUT /v2/apps/{id}, POST /v2/tasks/delete without scale) starts a deployment, as Marathon
// does. A deployment launches the tasks its target needs one at a time, every launch delay
// (SetLaunchDelay; 0, the default, launches all at once), and, for a changed definition,
// kills one task of the old version for each task of the new one that is ready. It is listed
// in the app's "deployments" and in GET /v2/deployments until every task it wants runs and,
// where the app has healthChecks, is healthy; so a deployment whose tasks never become healthy
// never ends, as in Marathon. The Go methods ScaleApp, AddTask and KillTask stay immediate and
// start none.

// deployState is the deployment machinery's settings and the deployments under way.
type deployState struct {
	launchDelay  time.Duration
	launchHealth func(appID string) *bool
	start        func(appID, taskID, host string, ports []int) error
	stop         func(taskID string)
	active       map[string]*deployment // by deployment id
	order        []string               // ids of active, oldest first
}

// deployment is one deployment under way.
type deployment struct {
	id, appID, action string
	version           string // tasks of other versions are old and get replaced
	target            int
	prevDef           map[string]any // the definition before, for a rollback; nil for a new app
	ended             chan struct{}  // closed when it finishes or is cancelled
	retrying          bool           // a launch retry is scheduled (no launch delay)
}

// launchRetry is how soon a deployment without a launch delay launches again a task the start
// hook refused: with no ticker, nothing else would move it on.
const launchRetry = 20 * time.Millisecond

// SetLaunchDelay sets how long each new task of a deployment takes to come up after the
// previous one; 0 launches them all at once.
func (s *Server) SetLaunchDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deploys.launchDelay = d
}

// SetLaunchHealth sets the health result a deployment's new task of appID starts with: true or
// false, or nil for none yet. Without it, a task of an app with healthChecks starts healthy and
// others without a result.
func (s *Server) SetLaunchHealth(f func(appID string) *bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deploys.launchHealth = f
}

// SetLauncher sets hooks called when a deployment launches a task (before the task is visible
// to clients, so a test can start a real backend on its ports) and when any task is killed.
// A start error leaves the task out; the deployment tries again at its next step (without a
// launch delay, launchRetry later). Both are called with the server's lock held and must not
// call the Server.
func (s *Server) SetLauncher(start func(appID, taskID, host string, ports []int) error, stop func(taskID string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deploys.start, s.deploys.stop = start, stop
}

// Deployments returns the ids of the deployments under way, oldest first.
func (s *Server) Deployments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deploys.order...)
}

// startDeploymentLocked starts a deployment of a towards its "instances", cancelling any other
// of the app (the callers check the lock first, or were forced).
func (s *Server) startDeploymentLocked(a *app, action string, prevDef map[string]any) (*deployment, error) {
	appID := str(a.def, "id")
	s.cancelDeploymentsLocked(appID)
	target, _ := toInt(a.def["instances"])
	d := &deployment{
		id: newUUID(), appID: appID, action: action, version: str(a.def, "version"),
		target: target, prevDef: prevDef, ended: make(chan struct{}),
	}
	if s.deploys.active == nil {
		s.deploys.active = map[string]*deployment{}
	}
	s.deploys.active[d.id] = d
	s.deploys.order = append(s.deploys.order, d.id)
	s.deployments[appID] = append(s.deployments[appID], d.id)
	if err := s.emitLocked("deployment_info", map[string]any{
		"plan": s.planJSON(d), "currentStep": s.stepJSON(d),
		"eventType": "deployment_info", "timestamp": now(),
	}); err != nil {
		return nil, err
	}
	if s.deploys.launchDelay <= 0 {
		return d, s.runLocked(d)
	}
	go s.tick(d, s.deploys.launchDelay)
	return d, nil
}

// tick advances d one step every delay until it ends.
func (s *Server) tick(d *deployment, delay time.Duration) {
	t := time.NewTicker(delay)
	defer t.Stop()
	for {
		select {
		case <-d.ended:
			return
		case <-t.C:
		}
		s.mu.Lock()
		_, err := s.advanceLocked(d)
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// runLocked advances d until it makes no more progress.
func (s *Server) runLocked(d *deployment) error {
	for {
		progress, err := s.advanceLocked(d)
		if err != nil || !progress {
			return err
		}
	}
}

// kickLocked moves the deployments of appID on after something outside them changed (a
// health result, a task state), when tasks come up at once.
func (s *Server) kickLocked(appID string) error {
	if s.deploys.launchDelay > 0 {
		return nil
	}
	for _, id := range append([]string(nil), s.deploys.order...) {
		if d := s.deploys.active[id]; d != nil && d.appID == appID {
			if err := s.runLocked(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// advanceLocked makes one step of d: it kills a task the target no longer needs or launches
// one it lacks, and ends d when every task it wants is ready. progress says whether it changed
// anything.
func (s *Server) advanceLocked(d *deployment) (progress bool, err error) {
	if !s.isActiveLocked(d) {
		return false, nil
	}
	a := s.apps[d.appID]
	if a == nil {
		s.endLocked(d, false)
		return false, nil
	}
	var fresh, old []int
	readyFresh := 0
	for i, t := range a.tasks {
		if str(t, "version") != d.version {
			old = append(old, i)
			continue
		}
		fresh = append(fresh, i)
		if taskReady(a, t) {
			readyFresh++
		}
	}
	switch {
	case len(fresh) > d.target:
		return true, s.killLocked(a, fresh[len(fresh)-1])
	case len(old) > 0 && len(old) > d.target-readyFresh:
		return true, s.killLocked(a, old[0])
	case len(fresh) < d.target:
		launched, err := s.launchOneLocked(a)
		if err == nil && !launched {
			s.retryLaunchLocked(d)
		}
		return launched, err
	case len(old) == 0 && readyFresh == d.target:
		s.endLocked(d, true)
	}
	return false, nil
}

// retryLaunchLocked runs d again shortly after a refused launch, when no ticker will (a
// launch delay's ticker retries at its next step).
func (s *Server) retryLaunchLocked(d *deployment) {
	if s.deploys.launchDelay > 0 || d.retrying {
		return
	}
	d.retrying = true
	time.AfterFunc(launchRetry, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		d.retrying = false
		_ = s.runLocked(d) // an ended deployment makes no step
	})
}

// taskReady says whether t serves: running, and healthy where the app has health checks.
func taskReady(a *app, t map[string]any) bool {
	if str(t, "state") != "TASK_RUNNING" {
		return false
	}
	if hc, ok := a.def["healthChecks"].([]any); !ok || len(hc) == 0 {
		return true
	}
	rs, ok := t["healthCheckResults"].([]any)
	if !ok || len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		if rm, ok := r.(map[string]any); !ok || rm["alive"] != true {
			return false
		}
	}
	return true
}

// launchOneLocked starts one task of a, with fresh host ports, through the start hook.
func (s *Server) launchOneLocked(a *app) (bool, error) {
	appID := str(a.def, "id")
	ports := make([]int, appPortCount(a.def))
	for i := range ports {
		ports[i] = s.nextPort
		s.nextPort++
	}
	spec := TaskSpec{ID: taskPrefix(appID) + "." + newUUID(), Ports: ports, State: s.launchState}
	if s.deploys.start != nil {
		if err := s.deploys.start(appID, spec.ID, "127.0.0.1", ports); err != nil {
			return false, nil
		}
	}
	if s.deploys.launchHealth != nil {
		spec.Health = s.deploys.launchHealth(appID)
	} else if hc, ok := a.def["healthChecks"].([]any); ok && len(hc) > 0 {
		healthy := true
		spec.Health = &healthy
	}
	_, err := s.addTaskLocked(a, spec)
	return err == nil, err
}

func (s *Server) isActiveLocked(d *deployment) bool {
	return s.deploys.active[d.id] == d
}

// endLocked removes d from the deployments under way; success emits deployment_success.
func (s *Server) endLocked(d *deployment, success bool) {
	if !s.isActiveLocked(d) {
		return
	}
	delete(s.deploys.active, d.id)
	s.deploys.order = without(s.deploys.order, d.id)
	s.deployments[d.appID] = without(s.deployments[d.appID], d.id)
	close(d.ended)
	if success {
		_ = s.emitLocked("deployment_success", map[string]any{
			"id": d.id, "plan": s.planJSON(d), "eventType": "deployment_success", "timestamp": now(),
		})
	}
}

// cancelDeploymentsLocked ends every deployment of appID without success.
func (s *Server) cancelDeploymentsLocked(appID string) {
	for _, id := range append([]string(nil), s.deploys.order...) {
		if d := s.deploys.active[id]; d != nil && d.appID == appID {
			s.endLocked(d, false)
		}
	}
}

// lockingDeploymentsLocked returns the ids of the deployments under way for appID.
func (s *Server) lockingDeploymentsLocked(appID string) []string {
	var ids []string
	for _, id := range s.deploys.order {
		if s.deploys.active[id].appID == appID {
			ids = append(ids, id)
		}
	}
	return ids
}

func without(ids []string, id string) []string {
	out := ids[:0:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// planJSON is d as Marathon's deployment plan.
func (s *Server) planJSON(d *deployment) map[string]any {
	step := map[string]any{"actions": []any{map[string]any{"action": d.action, "app": d.appID}}}
	return map[string]any{
		"id": d.id, "version": d.version, "steps": []any{step},
		"original": map[string]any{"id": "/"}, "target": map[string]any{"id": "/"},
	}
}

func (s *Server) stepJSON(d *deployment) map[string]any {
	return map[string]any{"actions": []any{map[string]any{"action": d.action, "app": d.appID}}}
}

// deploymentJSON is d as GET /v2/deployments lists it.
func (s *Server) deploymentJSON(d *deployment) map[string]any {
	return map[string]any{
		"id": d.id, "version": d.version,
		"affectedApps": []any{d.appID}, "affectedPods": []any{},
		"steps": []any{s.stepJSON(d)},
		"currentActions": []any{map[string]any{
			"action": d.action, "app": d.appID, "readinessCheckResults": []any{},
		}},
		"currentStep": 1, "totalSteps": 1,
	}
}

// sameJSON says whether two decoded JSON values are equal.
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// nextVersion is a version timestamp later than prev.
func nextVersion(prev string) string {
	v := now()
	if v <= prev {
		t, err := time.Parse("2006-01-02T15:04:05.000Z", prev)
		if err != nil {
			return fmt.Sprintf("%s.1", prev)
		}
		v = timestamp(t.Add(time.Millisecond))
	}
	return v
}
