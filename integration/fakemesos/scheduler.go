package fakemesos

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The v1 scheduler HTTP API (POST /api/v1/scheduler), as a Mesos 1.x master speaks it with
// JSON: SUBSCRIBE answers 200 with a RecordIO stream of events (SUBSCRIBED, OFFERS built from
// the agents of the master's state, UPDATE, HEARTBEAT, ERROR) and a Mesos-Stream-Id header that
// every later call must carry; the other calls answer 202. A master that does not lead answers
// 307 to the leader's "//ip:port/path", or 503 when none is elected. Status updates a task's
// executor would send carry a uuid, and the next one of a task is sent only once the scheduler
// ACKNOWLEDGEd the previous (as the agent's status update manager does); updates the master
// makes itself (TASK_ERROR of an invalid task, TASK_LOST of an unknown one) carry none.
//
// Simplifications: one OFFERS event at subscription (no re-offers after DECLINE, no rescinds),
// unacknowledged updates are not retried, operations other than LAUNCH are accepted and ignored,
// and the frameworks do not appear in the state document.

// Scheduler API paths: Mesos serves the endpoint under the master's process id too.
const (
	PathScheduler       = "/api/v1/scheduler"
	PathMasterScheduler = "/master/api/v1/scheduler"
)

// maxCallBody bounds a call's body; real calls are a few kilobytes.
const maxCallBody = 1 << 20

// defaultHeartbeat is Mesos's heartbeat interval.
const defaultHeartbeat = 15 * time.Second

// SchedulerFaults are the faults of a master's scheduler API; the zero value is a healthy
// master with free agents.
type SchedulerFaults struct {
	// NoOffers: subscribed frameworks get no offers, as when every agent is full or none has
	// resources for the framework's role.
	NoOffers bool
	// FailTask: a launched task goes TASK_STARTING, then TASK_FAILED with this message
	// (REASON_COMMAND_EXECUTOR_FAILED), as a command that exits non-zero.
	FailTask string
	// StallTask: a launched task stays TASK_STARTING.
	StallTask bool
	// ForbidPrincipal: a SUBSCRIBE naming this principal is answered 403, as by a master
	// whose authorizer refuses it the endpoint or by an authorizing proxy in front of it.
	ForbidPrincipal string
	// DenyPrincipal: a SUBSCRIBE naming this principal gets the ERROR event a master's ACLs
	// (register_frameworks) give, and the stream ends.
	DenyPrincipal string
	// Heartbeat is the interval of HEARTBEAT events; 0 means Mesos's 15s.
	Heartbeat time.Duration
}

// scheduler is one master's scheduler API state.
type scheduler struct {
	mu         sync.Mutex
	faults     SchedulerFaults
	frameworks map[string]*framework
	next       int
	calls      map[string]int
	acks       int
}

func (m *Master) scheduler() *scheduler {
	m.schedOnce.Do(func() {
		m.sched = &scheduler{frameworks: map[string]*framework{}, calls: map[string]int{}}
	})
	return m.sched
}

// framework is one subscribed framework.
type framework struct {
	id, name, principal, role string
	multiRole                 bool
	streamID                  string
	failover                  time.Duration
	connected                 bool
	pending                   [][]byte      // events to write on the stream
	wake                      chan struct{} // a pending event or gone (capacity 1)
	gone                      chan struct{} // closed when the framework is removed
	offers                    map[string]fakeOffer
	tasks                     map[string]*fakeTask
}

// fakeOffer is an outstanding offer.
type fakeOffer struct {
	agentID, hostname string
	scalars           map[string]float64
}

// fakeTask is a launched task and the status updates its executor still has to deliver.
type fakeTask struct {
	id, agentID string
	state       string
	queue       []map[string]any // head is in flight when inFlight
	inFlight    bool
	resources   map[string]float64
}

// SetSchedulerFaults sets the faults of this master's scheduler API.
func (m *Master) SetSchedulerFaults(f SchedulerFaults) {
	s := m.scheduler()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SchedulerFrameworks returns the ids of the frameworks subscribed through the scheduler API
// and not yet removed (by TEARDOWN, or their failover timeout after a disconnection), sorted.
func (m *Master) SchedulerFrameworks() []string {
	s := m.scheduler()
	s.mu.Lock()
	defer s.mu.Unlock()
	return mapKeysSorted(s.frameworks)
}

// SchedulerTasks returns the state of every task of the frameworks not removed, by task id.
func (m *Master) SchedulerTasks() map[string]string {
	s := m.scheduler()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, fw := range s.frameworks {
		for id, t := range fw.tasks {
			out[id] = t.state
		}
	}
	return out
}

// SchedulerCalls returns how many calls of this type (SUBSCRIBE, ACCEPT, TEARDOWN…) were
// made, whatever their answer.
func (m *Master) SchedulerCalls(typ string) int {
	s := m.scheduler()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[typ]
}

// SchedulerAcks returns how many ACKNOWLEDGE calls matched an update in flight.
func (m *Master) SchedulerAcks() int {
	s := m.scheduler()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acks
}

// schedCall is the part of a v1 scheduler Call the fake reads.
type schedCall struct {
	Type        string   `json:"type"`
	FrameworkID *idValue `json:"framework_id"`
	Subscribe   *struct {
		FrameworkInfo *frameworkInfo `json:"framework_info"`
	} `json:"subscribe"`
	Accept *struct {
		OfferIDs   []idValue `json:"offer_ids"`
		Operations []struct {
			Type   string `json:"type"`
			Launch *struct {
				TaskInfos []json.RawMessage `json:"task_infos"`
			} `json:"launch"`
		} `json:"operations"`
	} `json:"accept"`
	Decline *struct {
		OfferIDs []idValue `json:"offer_ids"`
	} `json:"decline"`
	Kill *struct {
		TaskID idValue `json:"task_id"`
	} `json:"kill"`
	Acknowledge *struct {
		TaskID  idValue `json:"task_id"`
		AgentID idValue `json:"agent_id"`
		UUID    string  `json:"uuid"`
	} `json:"acknowledge"`
}

type idValue struct {
	Value string `json:"value"`
}

type frameworkInfo struct {
	User            *string  `json:"user"`
	Name            *string  `json:"name"`
	Role            *string  `json:"role"`
	Roles           []string `json:"roles"`
	Principal       string   `json:"principal"`
	FailoverTimeout float64  `json:"failover_timeout"`
	Capabilities    []struct {
		Type string `json:"type"`
	} `json:"capabilities"`
}

// callTypes are the Call types of scheduler.proto; another is not a Call.
var callTypes = []string{"SUBSCRIBE", "TEARDOWN", "ACCEPT", "DECLINE", "ACCEPT_INVERSE_OFFERS",
	"DECLINE_INVERSE_OFFERS", "REVIVE", "KILL", "SHUTDOWN", "ACKNOWLEDGE", "ACKNOWLEDGE_OPERATION_STATUS",
	"RECONCILE", "RECONCILE_OPERATIONS", "MESSAGE", "REQUEST", "SUPPRESS", "UPDATE_FRAMEWORK"}

// serveScheduler serves the scheduler API and reports whether r was for it.
func (m *Master) serveScheduler(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != PathScheduler && r.URL.Path != PathMasterScheduler {
		return false
	}
	m.mu.Lock()
	m.requests[r.URL.Path]++
	close(m.changed)
	m.changed = make(chan struct{})
	status, user, pass, leader, self := m.status, m.user, m.pass, m.leader, m.addr
	m.mu.Unlock()

	// Authentication comes first (libprocess checks it before the handler runs), then
	// leadership, as in Master::Http::scheduler.
	authed := ""
	switch {
	case status != 0:
		plain(w, status, http.StatusText(status))
		return true
	case user != "":
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="mesos"`)
			plain(w, http.StatusUnauthorized, "")
			return true
		}
		authed = u
	}
	if leader != self {
		if leader == "" {
			plain(w, http.StatusServiceUnavailable, "No leader elected")
			return true
		}
		w.Header().Set("Location", "//"+leader+r.URL.RequestURI())
		plain(w, http.StatusTemporaryRedirect, "")
		return true
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		plain(w, http.StatusMethodNotAllowed, "Expecting one of { 'POST' }, but received '"+r.Method+"'")
		return true
	}
	call, code, msg := readCall(r)
	if code != 0 {
		plain(w, code, msg)
		return true
	}
	s := m.scheduler()
	s.mu.Lock()
	s.calls[call.Type]++
	s.mu.Unlock()
	if call.Type == "SUBSCRIBE" {
		m.subscribe(w, r, call, authed)
		return true
	}
	code, msg = s.call(r, call, authed)
	plain(w, code, msg)
	return true
}

// readCall reads and checks a call's body: a JSON Call of a known type, with the fields its
// type requires. A failure is an HTTP status and Mesos's message.
func readCall(r *http.Request) (schedCall, int, string) {
	var call schedCall
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return call, http.StatusBadRequest, "Expecting 'Content-Type' to be present"
	}
	if ct != "application/json" {
		return call, http.StatusUnsupportedMediaType, "Expecting 'Content-Type' of application/json or application/x-protobuf"
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallBody+1))
	if err != nil || len(body) > maxCallBody {
		return call, http.StatusBadRequest, "Failed to read the request body"
	}
	if err := json.Unmarshal(body, &call); err != nil {
		return call, http.StatusBadRequest, "Failed to parse body into JSON: " + err.Error()
	}
	if !slices.Contains(callTypes, call.Type) {
		return call, http.StatusBadRequest, fmt.Sprintf("Failed to convert JSON into Call protobuf: Failed to find enum for '%s'", call.Type)
	}
	if call.Type == "SUBSCRIBE" {
		if call.Subscribe == nil || call.Subscribe.FrameworkInfo == nil {
			return call, http.StatusBadRequest, "Failed to validate scheduler::Call: Expecting 'subscribe' to be present"
		}
		fi := call.Subscribe.FrameworkInfo
		if fi.User == nil || fi.Name == nil {
			return call, http.StatusBadRequest, "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.user, subscribe.framework_info.name"
		}
		return call, 0, ""
	}
	if call.FrameworkID == nil || call.FrameworkID.Value == "" {
		return call, http.StatusBadRequest, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"
	}
	return call, 0, ""
}

// plain writes a plain-text answer, as libprocess does for errors.
func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// acceptsJSON reports whether an Accept header allows application/json (none allows all).
func acceptsJSON(accept string) bool {
	if accept == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && (mt == "application/json" || mt == "application/*" || mt == "*/*") {
			return true
		}
	}
	return false
}

// subscribe answers a SUBSCRIBE: refusals as Mesos gives them, else the event stream until the
// framework is torn down or the client goes away.
func (m *Master) subscribe(w http.ResponseWriter, r *http.Request, call schedCall, authed string) {
	fi := call.Subscribe.FrameworkInfo
	if !acceptsJSON(r.Header.Get("Accept")) {
		plain(w, http.StatusNotAcceptable, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'")
		return
	}
	if r.Header.Get("Mesos-Stream-Id") != "" {
		plain(w, http.StatusBadRequest, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
		return
	}
	if authed != "" && fi.Principal != "" && fi.Principal != authed {
		plain(w, http.StatusBadRequest, fmt.Sprintf("Failed to validate scheduler::Call: Authenticated principal '%s' does not match principal '%s' set in `FrameworkInfo`", authed, fi.Principal))
		return
	}
	if fi.Principal == "" {
		fi.Principal = authed
	}
	s := m.scheduler()
	s.mu.Lock()
	faults := s.faults
	s.mu.Unlock()
	if faults.ForbidPrincipal != "" && fi.Principal == faults.ForbidPrincipal {
		plain(w, http.StatusForbidden, "Forbidden")
		return
	}
	streamID := newUUID()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Mesos-Stream-Id", uuidString(streamID))
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)

	refusal := validateFramework(fi)
	if refusal == "" && faults.DenyPrincipal != "" && fi.Principal == faults.DenyPrincipal {
		refusal = fmt.Sprintf("Not authorized to register framework  with roles { %s }", strings.Join(frameworkRoles(fi), ", "))
	}
	if refusal != "" {
		_, _ = w.Write(recordIO(map[string]any{"type": "ERROR", "error": map[string]any{"message": refusal}}))
		if flusher != nil {
			flusher.Flush()
		}
		return
	}
	fw := s.addFramework(fi, uuidString(streamID))
	m.mu.Lock()
	agents := agentsOf(m.state)
	addr := m.addr
	m.mu.Unlock()
	heartbeat := faults.Heartbeat
	if heartbeat <= 0 {
		heartbeat = defaultHeartbeat
	}
	s.mu.Lock()
	fw.pushLocked(map[string]any{"type": "SUBSCRIBED", "subscribed": map[string]any{
		"framework_id":               map[string]any{"value": fw.id},
		"heartbeat_interval_seconds": heartbeat.Seconds(),
		"master_info":                NewMasterInfo(addr).object(),
	}})
	if !faults.NoOffers {
		s.offerLocked(fw, agents)
	}
	s.mu.Unlock()
	s.stream(w, r, fw, heartbeat)
}

// validateFramework is Mesos's check of a FrameworkInfo's roles ("" when valid).
func validateFramework(fi *frameworkInfo) string {
	multi := slices.ContainsFunc(fi.Capabilities, func(c struct {
		Type string `json:"type"`
	}) bool {
		return c.Type == "MULTI_ROLE"
	})
	switch {
	case multi && fi.Role != nil:
		return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
	case !multi && len(fi.Roles) > 0:
		return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
	case multi && len(fi.Roles) > 1:
		return "the fake master serves frameworks of one role only"
	}
	return ""
}

// frameworkRoles are the roles a FrameworkInfo asks for.
func frameworkRoles(fi *frameworkInfo) []string {
	if len(fi.Roles) > 0 {
		return fi.Roles
	}
	if fi.Role != nil {
		return []string{*fi.Role}
	}
	return []string{"*"}
}

// addFramework registers a subscribed framework under a new id.
func (s *scheduler) addFramework(fi *frameworkInfo, streamID string) *framework {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	fw := &framework{
		id: fmt.Sprintf("fake-framework-%04d", s.next), name: *fi.Name, principal: fi.Principal,
		role: frameworkRoles(fi)[0], multiRole: len(fi.Roles) > 0, streamID: streamID, connected: true,
		wake: make(chan struct{}, 1), gone: make(chan struct{}),
		offers: map[string]fakeOffer{}, tasks: map[string]*fakeTask{},
	}
	if !math.IsNaN(fi.FailoverTimeout) && fi.FailoverTimeout > 0 {
		fw.failover = time.Duration(math.Min(fi.FailoverTimeout, 86400*365) * float64(time.Second))
	}
	s.frameworks[fw.id] = fw
	return fw
}

// stream writes fw's events until it is removed or the client goes away; then a framework
// still registered is disconnected and removed after its failover timeout, as Mesos does.
func (s *scheduler) stream(w http.ResponseWriter, r *http.Request, fw *framework, heartbeat time.Duration) {
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	defer s.disconnect(fw)
	for {
		s.mu.Lock()
		batch := fw.pending
		fw.pending = nil
		s.mu.Unlock()
		for _, rec := range batch {
			if _, err := w.Write(rec); err != nil {
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-fw.wake:
		case <-fw.gone:
			return
		case <-r.Context().Done():
			return
		case <-tick.C:
			s.mu.Lock()
			fw.pushLocked(map[string]any{"type": "HEARTBEAT"})
			s.mu.Unlock()
		}
	}
}

// disconnect marks fw disconnected when its stream ends and removes it after its failover
// timeout unless it was removed already.
func (s *scheduler) disconnect(fw *framework) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frameworks[fw.id] != fw {
		return
	}
	fw.connected = false
	time.AfterFunc(fw.failover, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.frameworks[fw.id] == fw && !fw.connected {
			s.removeLocked(fw)
		}
	})
}

// removeLocked removes fw and its tasks, and ends its stream.
func (s *scheduler) removeLocked(fw *framework) {
	delete(s.frameworks, fw.id)
	close(fw.gone)
}

// pushLocked queues an event for fw's stream.
func (fw *framework) pushLocked(event map[string]any) {
	fw.pending = append(fw.pending, recordIO(event))
	select {
	case fw.wake <- struct{}{}:
	default:
	}
}

// recordIO encodes an event as one RecordIO record: its length in decimal, a newline, the JSON.
func recordIO(event map[string]any) []byte {
	b, err := json.Marshal(event)
	if err != nil {
		// Events are built from strings, numbers and maps of them: they always marshal.
		panic(fmt.Sprintf("fakemesos: marshal event: %v", err))
	}
	return append([]byte(strconv.Itoa(len(b))+"\n"), b...)
}

// newUUID returns 16 random bytes (a UUID's worth).
func newUUID() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

// uuidString writes 16 bytes as a UUID, as Mesos writes a stream id.
func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// encodeUUID is a status update's uuid as JSON carries bytes: Base64.
func encodeUUID(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func mapKeysSorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
