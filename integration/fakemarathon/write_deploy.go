package fakemarathon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// The REST writes a deployment tool and an autoscaler make: PUT /v2/apps/{id} (scale or
// change an app), POST /v2/tasks/delete (kill given tasks), GET and DELETE /v2/deployments.

// handlePutApp serves PUT /v2/apps/{id}[?force=true]: the body's fields replace the app's
// (Marathon's partial update). A change of "instances" alone scales the app; any other change
// is a new version, whose tasks replace the old ones. 200 with the version and the deployment
// id; 201 with the app when it did not exist; 409 while a deployment holds the app, unless
// force.
func (s *Server) handlePutApp(w http.ResponseWriter, r *http.Request) {
	id := normID(r.PathValue("id"))
	body, ok := readDef(w, r)
	if !ok {
		return
	}
	if bid, present := body["id"]; present {
		if bs, isStr := bid.(string); !isStr || normID(bs) != id {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Object is not valid",
				"details": []any{map[string]any{"path": "/id", "errors": []any{"app id in the body differs from the path"}}}})
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, exists := s.apps[id]
	if !exists {
		body["id"] = id
		s.createAppLocked(w, body)
		return
	}
	cur, _ := toInt(a.def["instances"])
	if _, ok := postedInstances(w, body, cur); !ok {
		return
	}
	if locks := s.lockingDeploymentsLocked(id); len(locks) > 0 && r.URL.Query().Get("force") != "true" {
		writeLocked(w, locks)
		return
	}
	prev := plainCopy(a.def)
	action := "ScaleApplication"
	for k, v := range body {
		if isComputed(k) || k == "id" || k == "version" {
			continue
		}
		if k != "instances" && !sameJSON(a.def[k], v) {
			action = "RestartApplication"
		}
		a.def[k] = v
	}
	if action == "RestartApplication" {
		a.def["version"] = nextVersion(str(prev, "version"))
	}
	if err := s.emitLocked("api_post_event", map[string]any{
		"clientIp": "127.0.0.1", "uri": "/v2/apps" + id, "appDefinition": a.def,
		"eventType": "api_post_event", "timestamp": now(),
	}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	d, err := s.startDeploymentLocked(a, action, prev)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": str(a.def, "version"), "deploymentId": d.id})
}

// writeLocked answers 409 as Marathon does for an app held by deployments.
func writeLocked(w http.ResponseWriter, ids []string) {
	deps := make([]any, len(ids))
	for i, id := range ids {
		deps[i] = map[string]any{"id": id}
	}
	writeJSON(w, http.StatusConflict, map[string]any{
		"message":     fmt.Sprintf("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/%s'.", ids[0]),
		"deployments": deps,
	})
}

func isComputed(k string) bool {
	for _, c := range computedFields {
		if c == k {
			return true
		}
	}
	return false
}

// handleDeleteTasks serves POST /v2/tasks/delete[?scale=true] with {"ids": [...]}: the tasks
// are killed. With scale the apps' instances shrink by as many; without, a deployment of each
// app launches replacements. 404 names the first unknown id, and then nothing is killed.
func (s *Server) handleDeleteTasks(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IDs []string `json:"ids"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPostBody+1))
	if err != nil || len(body) > maxPostBody || json.Unmarshal(body, &req) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": `Invalid JSON: want {"ids": [...]}`})
		return
	}
	scale := r.URL.Query().Get("scale") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range req.IDs {
		if _, _, err := s.findTaskLocked(id); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("Task '%s' does not exist", id)})
			return
		}
	}
	killed := []any{}
	touched := map[*app]bool{}
	for _, id := range req.IDs {
		a, i, err := s.findTaskLocked(id)
		if err != nil {
			continue // named twice
		}
		killed = append(killed, plainCopy(a.tasks[i]))
		if scale {
			n, _ := toInt(a.def["instances"])
			a.def["instances"] = max(n-1, 0)
		}
		touched[a] = true
		if err := s.killLocked(a, i); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	if scale {
		writeJSON(w, http.StatusOK, map[string]any{"version": now(), "deploymentId": newUUID()})
		return
	}
	for a := range touched {
		if _, err := s.startDeploymentLocked(a, "ScaleApplication", plainCopy(a.def)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": killed})
}

// handleDeployments serves GET /v2/deployments: the deployments under way, oldest first.
func (s *Server) handleDeployments(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := []any{}
	for _, id := range s.deploys.order {
		out = append(out, s.deploymentJSON(s.deploys.active[id]))
	}
	body, err := marshal(out)
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// handleDeleteDeployment serves DELETE /v2/deployments/{id}[?force=true]. With force the
// deployment just stops (202), leaving the app as it is; without, it is rolled back: the app
// gets its previous definition back through a new deployment (200 naming it). 404 for an id
// not under way.
func (s *Server) handleDeleteDeployment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deploys.active[id]
	if d == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("DeploymentPlan %s does not exist", id)})
		return
	}
	s.endLocked(d, false)
	if r.URL.Query().Get("force") == "true" {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	a := s.apps[d.appID]
	if a == nil || d.prevDef == nil {
		// A new app's rollback removes it, as Marathon's does.
		if a != nil {
			for len(a.tasks) > 0 {
				_ = s.killLocked(a, len(a.tasks)-1)
			}
			s.removeAppLocked(d.appID)
		}
		writeJSON(w, http.StatusOK, map[string]any{"version": now(), "deploymentId": newUUID()})
		return
	}
	a.def = plainCopy(d.prevDef)
	back, err := s.startDeploymentLocked(a, "RestartApplication", nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": str(a.def, "version"), "deploymentId": back.id})
}
