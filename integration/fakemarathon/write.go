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
// Tasks of a posted app start at once, on 127.0.0.1, in the launch state (SetLaunchState).

// maxPostBody bounds a posted app definition.
const maxPostBody = 1 << 20

// maxPostInstances bounds a posted app's instances.
const maxPostInstances = 100

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
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPostBody+1))
	if err != nil || len(body) > maxPostBody {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid JSON: body unreadable or too large"})
		return
	}
	var def map[string]any
	if err := json.Unmarshal(body, &def); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid JSON: " + err.Error()})
		return
	}
	id, _ := def["id"].(string)
	if strings.Trim(id, "/") == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Object is not valid",
			"details": []any{map[string]any{"path": "/id", "errors": []any{"error.path.missing"}}}})
		return
	}
	instances := 1
	if v, ok := def["instances"]; ok {
		// A whole JSON number, and few: each instance is a task the fake keeps.
		f, ok := v.(float64)
		n := int(f)
		if !ok || float64(n) != f || n < 0 || n > maxPostInstances {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Object is not valid",
				"details": []any{map[string]any{"path": "/instances", "errors": []any{"error.expected.jsnumber"}}}})
			return
		}
		instances = n
	}
	def["instances"] = 0
	a, err := newApp(def)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": err.Error()})
		return
	}
	id = str(a.def, "id")
	// One lock from the check to the launch: two posts of one id never both succeed.
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.apps[id]; exists {
		writeJSON(w, http.StatusConflict, map[string]any{"message": fmt.Sprintf("An app with id [%s] already exists.", id)})
		return
	}
	if err := s.addAppLocked(a, def); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := s.launchLocked(id, instances); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out, err := marshal(s.appJSONLocked(a, embedOptions{}))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Location", "/v2/apps"+id)
	writeBody(w, http.StatusCreated, out)
}

// launchLocked starts n tasks of the app id in the launch state.
func (s *Server) launchLocked(id string, n int) error {
	a := s.apps[id]
	a.def["instances"] = n
	for range n {
		ports := make([]int, appPortCount(a.def))
		for i := range ports {
			ports[i] = s.nextPort
			s.nextPort++
		}
		if _, err := s.addTaskLocked(a, TaskSpec{Ports: ports, State: s.launchState}); err != nil {
			return err
		}
	}
	return nil
}

// handleDeleteApp serves DELETE /v2/apps/{id}: its tasks are killed and the app removed; 404
// for an unknown id.
func (s *Server) handleDeleteApp(w http.ResponseWriter, r *http.Request) {
	id := normID(r.PathValue("id"))
	s.mu.Lock()
	_, ok := s.apps[id]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("App '%s' does not exist", id)})
		return
	}
	if _, err := s.ScaleApp(id, 0); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.RemoveApp(id)
	writeJSON(w, http.StatusOK, map[string]any{"version": now(), "deploymentId": newUUID()})
}
