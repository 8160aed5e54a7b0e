package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/gorilla/mux"

	"github.com/lodestar-lb/lodestar/discovery"
)

// bamboo's HTTP API for per-app routing rules, kept in ZooKeeper by the RuleStore that cmd
// wires in (--zk-rules). The JSON follows bamboo: a service is {"Id", "Acl", "Config":
// {"Acl"}}. Field names are matched without regard to case, so {"id": "/grp/app", "acl":
// "hdr(host) -i x"} is accepted too. As in bamboo, POST and PUT create or replace (there is no
// 409), an id without a leading slash gets one, and success answers 200 with the service.

// ErrInvalidRule marks a rule the RuleStore refuses as invalid (bad id, ACL HAProxy would
// reject): the API answers 400 with the error's text. A RuleStore wraps its validation errors
// with it, e.g. fmt.Errorf("%w: %w", api.ErrInvalidRule, err).
var ErrInvalidRule = errors.New("invalid rule")

// maxRuleBody bounds a rule request's body; a rule is an id and one ACL line.
const maxRuleBody = 64 << 10

// bambooService is a rule in bamboo's JSON shape.
type bambooService struct {
	ID  string `json:"Id"`
	ACL string `json:"Acl"`
	// Config is bamboo's v2 form; its "Acl" key is the ACL. lodestar keeps no other key.
	Config map[string]string `json:"Config"`
}

func bambooServiceOf(rule ServiceRule) bambooService {
	return bambooService{ID: rule.ID, ACL: rule.ACL, Config: map[string]string{"Acl": rule.ACL}}
}

// bambooState is the body of GET /api/state: bamboo's template data, built from the registry
// snapshot HAProxy is rendered from.
type bambooState struct {
	Apps []bambooApp `json:"Apps"`
	// Services are the rules of the snapshot, by app id.
	Services map[string]bambooService `json:"Services"`
}

// bambooApp is an app in bamboo's template data. Env is left out: lodestar's registry does
// not keep apps' environments.
type bambooApp struct {
	ID string `json:"Id"`
	// EscapedID is the id with "/" replaced by "::", as bamboo's templates use it.
	EscapedID       string `json:"EscapedId"`
	HealthCheckPath string `json:"HealthCheckPath"`
	// ServicePort is the first port's service port, ServicePorts every port's.
	ServicePort  int               `json:"ServicePort"`
	ServicePorts []int             `json:"ServicePorts"`
	Labels       map[string]string `json:"Labels"`
	// SplitID is the id split at "/" (its first element is "", as in bamboo).
	SplitID []string     `json:"SplitId"`
	Tasks   []bambooTask `json:"Tasks"`
}

// bambooTask is a task in bamboo's template data. Host and Port are where the first port is
// served; Alive is lodestar's eligibility (running, healthy, not draining).
type bambooTask struct {
	ID    string `json:"Id"`
	Host  string `json:"Host"`
	Port  int    `json:"Port"`
	Ports []int  `json:"Ports"`
	Alive bool   `json:"Alive"`
	State string `json:"State"`
}

// mountBamboo mounts bamboo's endpoints. Rule ids keep their slashes, escaped or not:
// /api/services/grp/app and /api/services/%2Fgrp%2Fapp both name /grp/app.
func (s *Server) mountBamboo() {
	r := s.router
	r.HandleFunc("/api/services", s.listRules).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/api/services", s.createRule).Methods(http.MethodPost)
	r.HandleFunc("/api/services/{id:.+}", s.putRule).Methods(http.MethodPut)
	r.HandleFunc("/api/services/{id:.+}", s.deleteRule).Methods(http.MethodDelete)
	r.HandleFunc("/api/state", s.bambooState).Methods(http.MethodGet, http.MethodHead)
}

// ruleStore returns the wired RuleStore, or answers 503 and returns nil.
func (s *Server) ruleStore(w http.ResponseWriter) RuleStore {
	rs := s.frontends().Rules
	if rs == nil {
		writeError(w, http.StatusServiceUnavailable, "bamboo rules are off: start lodestar with --zk-rules")
	}
	return rs
}

// listRules serves every rule by app id, as bamboo's GET /api/services does.
func (s *Server) listRules(w http.ResponseWriter, r *http.Request) {
	rs := s.ruleStore(w)
	if rs == nil {
		return
	}
	rules, err := rs.List(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rules: "+err.Error())
		return
	}
	out := make(map[string]bambooService, len(rules))
	for _, rule := range rules {
		out[rule.ID] = bambooServiceOf(rule)
	}
	writeJSON(w, http.StatusOK, out)
}

// createRule creates or replaces the rule of the body's id.
func (s *Server) createRule(w http.ResponseWriter, r *http.Request) {
	rs := s.ruleStore(w)
	if rs == nil {
		return
	}
	rule, err := decodeRule(w, r, "")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.putRuleAndAnswer(w, r, rs, rule)
}

// putRule creates or replaces the rule of the URL's id; an id in the body must match it.
func (s *Server) putRule(w http.ResponseWriter, r *http.Request) {
	rs := s.ruleStore(w)
	if rs == nil {
		return
	}
	rule, err := decodeRule(w, r, appID(mux.Vars(r)["id"]))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.putRuleAndAnswer(w, r, rs, rule)
}

func (s *Server) putRuleAndAnswer(w http.ResponseWriter, r *http.Request, rs RuleStore, rule ServiceRule) {
	if check := s.frontends().RuleCheck; check != nil {
		if err := check.CheckRule(r.Context(), rule); err != nil {
			if errors.Is(err, ErrInvalidRule) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("rule of %s: %v", rule.ID, err))
				return
			}
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("checking the rule of %s: %v", rule.ID, err))
			return
		}
	}
	if err := rs.Put(r.Context(), rule); err != nil {
		if errors.Is(err, ErrInvalidRule) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("rule of %s: %v", rule.ID, err))
			return
		}
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("writing the rule of %s: %v", rule.ID, err))
		return
	}
	s.log.Info("bamboo rule written", "app", rule.ID, "acl", rule.ACL, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, bambooServiceOf(rule))
}

// deleteRule removes the rule of the URL's id: 404 when it has none.
func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request) {
	rs := s.ruleStore(w)
	if rs == nil {
		return
	}
	id := appID(mux.Vars(r)["id"])
	if err := rs.Delete(r.Context(), id); err != nil {
		if errors.Is(err, ErrNoRule) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no rule for app %s", id))
			return
		}
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("deleting the rule of %s: %v", id, err))
		return
	}
	s.log.Info("bamboo rule deleted", "app", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, struct{}{})
}

// decodeRule reads a rule from the request body. urlID is the id the URL names (PUT), "" when
// the body must name it (POST). Errors name the field at fault.
func decodeRule(w http.ResponseWriter, r *http.Request, urlID string) (ServiceRule, error) {
	const want = `want {"id": "/grp/app", "acl": "hdr(host) -i app.example.com"}`
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRuleBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return ServiceRule{}, fmt.Errorf("request body: larger than %d bytes", maxRuleBody)
		}
		return ServiceRule{}, fmt.Errorf("request body: %w", err)
	}
	var svc bambooService
	if err := json.Unmarshal(body, &svc); err != nil {
		return ServiceRule{}, fmt.Errorf("request body: not a JSON service: %w (%s)", err, want)
	}
	rule := ServiceRule{ACL: strings.TrimSpace(svc.ACL)}
	for k, v := range svc.Config {
		if !strings.EqualFold(k, "Acl") {
			return ServiceRule{}, fmt.Errorf("field Config.%s: unsupported, lodestar keeps only Acl", k)
		}
		// As in bamboo, Acl overrides Config.Acl.
		if rule.ACL == "" {
			rule.ACL = strings.TrimSpace(v)
		}
	}
	bodyID := strings.TrimSpace(svc.ID)
	switch {
	case bodyID == "" && urlID == "":
		return ServiceRule{}, fmt.Errorf("id: missing, the Marathon app id the rule routes (%s)", want)
	case urlID == "":
		rule.ID = appID(bodyID)
	case bodyID != "" && appID(bodyID) != urlID:
		return ServiceRule{}, fmt.Errorf("id: the body names %s but the URL names %s", appID(bodyID), urlID)
	default:
		rule.ID = urlID
	}
	if rule.ID == "/" {
		return ServiceRule{}, errors.New("id: / is not an app id")
	}
	if hasControl(rule.ID) || strings.ContainsFunc(rule.ID, unicode.IsSpace) {
		return ServiceRule{}, fmt.Errorf("id: %q contains white space or a control character", rule.ID)
	}
	if rule.ACL == "" {
		return ServiceRule{}, fmt.Errorf("acl: missing for %s (to remove a rule, DELETE /api/services%s)", rule.ID, rule.ID)
	}
	// The ACL becomes one line of HAProxy's configuration: a line break would inject more.
	if hasControl(rule.ACL) {
		return ServiceRule{}, fmt.Errorf("acl: %q contains a line break or control character", rule.ACL)
	}
	return rule, nil
}

func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

// bambooState serves bamboo's template data: every app of the registry snapshot, in id order,
// and the snapshot's rules.
func (s *Server) bambooState(w http.ResponseWriter, r *http.Request) {
	res := bambooState{Apps: []bambooApp{}, Services: map[string]bambooService{}}
	snap := s.reg.Snapshot()
	if snap != nil {
		snap.Apps.Each(func(a *discovery.App) bool {
			res.Apps = append(res.Apps, bambooAppOf(a))
			return true
		})
		for id, rule := range snap.Rules {
			res.Services[id] = bambooServiceOf(ServiceRule{ID: rule.AppID, ACL: rule.ACL})
		}
	}
	writeJSON(w, http.StatusOK, res)
}

func bambooAppOf(a *discovery.App) bambooApp {
	out := bambooApp{
		ID:           a.ID,
		EscapedID:    strings.ReplaceAll(a.ID, "/", "::"),
		ServicePorts: make([]int, len(a.Ports)),
		Labels:       a.Labels,
		SplitID:      strings.Split(a.ID, "/"),
		Tasks:        make([]bambooTask, len(a.Tasks)),
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for i, p := range a.Ports {
		out.ServicePorts[i] = p.ServicePort
	}
	if len(a.Ports) > 0 {
		out.ServicePort = a.Ports[0].ServicePort
	}
	for _, hc := range a.HealthChecks {
		if hc.Path != "" {
			out.HealthCheckPath = hc.Path
			break
		}
	}
	for i, t := range a.Tasks {
		bt := bambooTask{ID: t.ID, Host: t.Host, Ports: nonNil(t.HostPorts), Alive: t.Eligible, State: t.State}
		if len(t.Endpoints) > 0 {
			bt.Ports = make([]int, len(t.Endpoints))
			for j, e := range t.Endpoints {
				bt.Ports[j] = e.Port
			}
			bt.Host = t.Endpoints[0].Host
		}
		if len(bt.Ports) > 0 {
			bt.Port = bt.Ports[0]
		}
		out.Tasks[i] = bt
	}
	return out
}
