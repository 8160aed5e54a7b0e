package fakemarathon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// POST /v2/apps and DELETE /v2/apps/{id}: enough of Marathon's write API for a client that
// launches an app, waits for its tasks and removes it (the cluster doctor's smoke test).
// Tasks of a posted app start on 127.0.0.1, in the launch state (SetLaunchState), through a
// deployment (deploy.go): at once unless SetLaunchDelay says otherwise.

// maxPostBody bounds a posted app definition.
const maxPostBody = 1 << 20

// maxPostInstances bounds a posted app's instances.
const maxPostInstances = 100

// postedInstances reads def's "instances" (def when absent): a whole JSON number, and few,
// since each instance is a task the fake keeps. A bad one is answered 422, as Marathon does,
// and ok is false.
func postedInstances(w http.ResponseWriter, def map[string]any, dflt int) (n int, ok bool) {
	v, present := def["instances"]
	if !present {
		return dflt, true
	}
	f, isNum := v.(float64)
	n = int(f)
	if !isNum || float64(n) != f || n < 0 || n > maxPostInstances {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Object is not valid",
			"details": []any{map[string]any{"path": "/instances", "errors": []any{"error.expected.jsnumber"}}}})
		return 0, false
	}
	return n, true
}

// SetLaunchState sets the state the tasks of apps posted to /v2/apps start in: "" (the
// default) is TASK_RUNNING; e.g. TASK_STAGING leaves them never running.
func (s *Server) SetLaunchState(state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.launchState = state
}

// handlePostApp serves POST /v2/apps: 201 with the app, 409 when the id exists, 400 (or 422
// for a bad field, as Marathon answers) when the body is not an app.
func (s *Server) handlePostApp(w http.ResponseWriter, r *http.Request) {
	def, ok := readDef(w, r)
	if !ok {
		return
	}
	id, _ := def["id"].(string)
	if strings.Trim(id, "/") == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Object is not valid",
			"details": []any{map[string]any{"path": "/id", "errors": []any{"error.path.missing"}}}})
		return
	}
	// One lock from the check to the launch: two posts of one id never both succeed.
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.apps[normID(id)]; exists {
		writeJSON(w, http.StatusConflict, map[string]any{"message": fmt.Sprintf("An app with id [%s] already exists.", normID(id))})
		return
	}
	s.createAppLocked(w, def)
}

// readDef reads a request's app definition; a body too large or not a JSON object is
// answered 400 and ok is false.
func readDef(w http.ResponseWriter, r *http.Request) (def map[string]any, ok bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPostBody+1))
	if err != nil || len(body) > maxPostBody {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid JSON: body unreadable or too large"})
		return nil, false
	}
	if err := json.Unmarshal(body, &def); err != nil || def == nil {
		msg := "not an object"
		if err != nil {
			msg = err.Error()
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid JSON: " + msg})
		return nil, false
	}
	return def, true
}

// createAppLocked stores the new app def and starts the deployment that launches its tasks,
// answering 201 with the app.
func (s *Server) createAppLocked(w http.ResponseWriter, def map[string]any) {
	instances, ok := postedInstances(w, def, 1)
	if !ok {
		return
	}
	def["instances"] = 0
	a, err := newApp(def)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": err.Error()})
		return
	}
	if err := s.addAppLocked(a, def); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a.def["instances"] = instances
	if _, err := s.startDeploymentLocked(a, "StartApplication", nil); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out, err := marshal(s.appJSONLocked(a, embedOptions{}))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Location", "/v2/apps"+str(a.def, "id"))
	writeBody(w, http.StatusCreated, out)
}

// handleDeleteApp serves DELETE /v2/apps/{id}: its deployments end, its tasks are killed and
// the app removed; 404 for an unknown id.
func (s *Server) handleDeleteApp(w http.ResponseWriter, r *http.Request) {
	id := normID(r.PathValue("id"))
	s.mu.Lock()
	a, ok := s.apps[id]
	if !ok {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("App '%s' does not exist", id)})
		return
	}
	s.cancelDeploymentsLocked(id)
	a.def["instances"] = 0
	var err error
	for len(a.tasks) > 0 && err == nil {
		err = s.killLocked(a, len(a.tasks)-1)
	}
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.RemoveApp(id)
	writeJSON(w, http.StatusOK, map[string]any{"version": now(), "deploymentId": newUUID()})
}
