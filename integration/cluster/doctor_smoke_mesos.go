package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The smoke test where no Marathon is given: the doctor is a framework of its own for a moment,
// through the leading Mesos master's v1 scheduler HTTP API, as mesos-execute is. It SUBSCRIBEs
// (following one redirect from a master that does not lead), takes the first offer with room
// for cpus 0.1 and mem 32 and LAUNCHes `sleep 600` on it, DECLINEs every other offer,
// ACKNOWLEDGEs each update that has a uuid, waits for TASK_RUNNING, KILLs the task, waits for
// it to end, and TEARDOWNs the framework whatever happened. Should the teardown fail, the
// framework's short failover_timeout makes the master remove it, and its task, once the
// doctor's connection is closed.

// Defaults and amounts of the smoke test through Mesos.
const (
	smokeFrameworkName = "lodestar-doctor-smoke"
	smokeTaskPrefix    = "lodestar-doctor-smoke-"
	smokeCommand       = "sleep 600"
	smokeCPUs          = 0.1
	smokeMem           = 32
	// smokeFailover is the framework's failover_timeout in seconds: how long the master keeps
	// it after the doctor's connection is gone without a TEARDOWN.
	smokeFailover = 30
	// smokeDeclineSeconds keeps declined offers from coming back to the short-lived framework.
	smokeDeclineSeconds = 120
)

// SmokeFramework is who the smoke test's framework is when it runs through Mesos's scheduler
// API (no Marathon given).
type SmokeFramework struct {
	// User runs the task on the agent; default the doctor's own user, as mesos-execute does.
	User string
	// Role is the role offers are made for; default "*" (unreserved resources).
	Role string
	// Principal goes into framework_info; the masters' ACLs authorize it.
	Principal string
	// Secret authenticates Principal (HTTP basic auth) where the masters require it.
	Secret string
}

var (
	smokeRoleRE = regexp.MustCompile(`^(\*|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}){0,7})$`)
	smokeUserRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	// smokePrincipalRE: printable, no spaces or colons (it is the user of HTTP basic auth).
	smokePrincipalRE = regexp.MustCompile(`^[!-9;-~]{1,255}$`)
)

// checkSmokeFramework checks the framework's identity and fills in its defaults.
func checkSmokeFramework(fw SmokeFramework) (SmokeFramework, error) {
	if fw.User == "" {
		fw.User = "nobody"
		if u, err := user.Current(); err == nil && smokeUserRE.MatchString(u.Username) {
			fw.User = u.Username
		}
	}
	if fw.Role == "" {
		fw.Role = "*"
	}
	switch {
	case !smokeUserRE.MatchString(fw.User):
		return fw, fmt.Errorf("cluster doctor: smoke user %q: want a user name of letters, digits, '_', '.' and '-'", fw.User)
	case !smokeRoleRE.MatchString(fw.Role) || strings.Contains(fw.Role, "/.") || strings.HasSuffix(fw.Role, "."):
		return fw, fmt.Errorf("cluster doctor: smoke role %q: want \"*\" or a Mesos role such as \"ops\" or \"team/ops\"", fw.Role)
	case fw.Principal != "" && !smokePrincipalRE.MatchString(fw.Principal):
		return fw, fmt.Errorf("cluster doctor: smoke principal %q: want printable characters without spaces or ':'", fw.Principal)
	case fw.Secret != "" && fw.Principal == "":
		return fw, errors.New("cluster doctor: a smoke secret needs a smoke principal to go with it")
	}
	return fw, nil
}

// mesosSmoke is one run of the smoke test through a master's scheduler API.
type mesosSmoke struct {
	d           *Doctor
	endpoint    string // the scheduler API of the master that took the subscription
	streamID    string
	frameworkID string
	events      *eventStream
	taskID      string
	agentID     string
	host        string
	launched    time.Time
}

// smokeFailure is why a step failed: the finding's message and fix.
type smokeFailure struct{ msg, fix string }

// runMesosSmoke runs the smoke test through the master at base (the leader, or one that
// redirects to it) and returns its findings: one for the task, and a warning of its own when
// the framework could not be torn down.
func (d *Doctor) runMesosSmoke(ctx context.Context, base string) []Finding {
	s := &mesosSmoke{d: d, endpoint: strings.TrimRight(base, "/") + "/api/v1/scheduler",
		taskID: smokeTaskPrefix + strconv.FormatInt(d.cfg.Now().UnixNano(), 36)}
	f := Finding{Check: CheckSmoke, Target: base + " framework " + smokeFrameworkName}
	// The subscription outlives the smoke timeout, whose end must still leave time for the
	// TEARDOWN: a master refuses calls of a framework whose connection is gone.
	streamCtx, closeStream := context.WithCancel(context.WithoutCancel(ctx))
	defer closeStream()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.SmokeTimeout)
	defer cancel()
	if fail := s.subscribe(streamCtx, ctx); fail != nil {
		f.Severity, f.Message, f.Fix = SeverityError, fail.msg, fail.fix
		return []Finding{f}
	}
	defer s.events.Close()
	f.Target = s.masterBase() + " framework " + s.frameworkID
	if fail := s.runTask(ctx); fail != nil {
		f.Severity, f.Message, f.Fix = SeverityError, fail.msg, fail.fix
	} else {
		f.Severity = SeverityOK
		f.Message = fmt.Sprintf("task %s ran on %s after %s", s.taskID, s.host, time.Since(s.launched).Round(100*time.Millisecond))
		f.Message += s.kill()
	}
	err := s.teardown()
	if err == nil {
		f.Message += "; the framework is torn down"
		return []Finding{f}
	}
	return []Finding{f, {Check: CheckSmoke, Target: f.Target, Severity: SeverityWarn,
		Message: "could not tear the smoke framework down: " + err.Error(),
		Fix: fmt.Sprintf("the master removes it %ds after the doctor's connection closed (its failover_timeout); or now: curl -X POST %s/master/teardown -d frameworkId=%s",
			smokeFailover, s.masterBase(), s.frameworkID)}}
}

// masterBase is the scheme and host of the master that took the subscription.
func (s *mesosSmoke) masterBase() string {
	u, err := url.Parse(s.endpoint)
	if err != nil {
		return s.endpoint
	}
	return u.Scheme + "://" + u.Host
}

// subscribe opens the subscription for as long as streamCtx lasts and reads SUBSCRIBED within
// ctx. A master that does not lead answers 307 naming the leader: that is followed once.
func (s *mesosSmoke) subscribe(streamCtx, ctx context.Context) *smokeFailure {
	fw := s.d.cfg.SmokeFramework
	info := map[string]any{"user": fw.User, "name": smokeFrameworkName, "roles": []string{fw.Role},
		"capabilities": []any{map[string]any{"type": "MULTI_ROLE"}}, "failover_timeout": smokeFailover}
	if fw.Principal != "" {
		info["principal"] = fw.Principal
	}
	body, _ := json.Marshal(map[string]any{"type": "SUBSCRIBE", "subscribe": map[string]any{"framework_info": info}})
	resp, fail := s.post(streamCtx, body)
	if fail == nil && resp.StatusCode == http.StatusTemporaryRedirect {
		resp.Body.Close()
		next, err := redirectTarget(s.endpoint, resp.Header.Get("Location"))
		if err != nil {
			return &smokeFailure{msg: "the master redirected the SUBSCRIBE nowhere usable: " + err.Error(),
				fix: "the master names its leader by --hostname/--advertise_ip: make that an address this host reaches"}
		}
		s.endpoint = next
		resp, fail = s.post(streamCtx, body)
		if fail == nil && resp.StatusCode == http.StatusTemporaryRedirect {
			resp.Body.Close()
			return &smokeFailure{msg: "redirected twice: " + next + " does not lead either (to " + firstLine(resp.Header.Get("Location")) + ")",
				fix: "leadership is moving or the masters disagree: check the mesos leader findings and run again"}
		}
	}
	if fail != nil {
		return fail
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return s.refused(resp.StatusCode, firstLine(string(answer)))
	}
	streamID := resp.Header.Get("Mesos-Stream-Id")
	if !mesosIDRE.MatchString(streamID) || len(streamID) > 128 {
		resp.Body.Close()
		return &smokeFailure{msg: fmt.Sprintf("the SUBSCRIBE answer has no usable Mesos-Stream-Id header (%q)", firstLine(streamID)),
			fix: "check that " + s.endpoint + " is a Mesos master of version 1.0 or later, not a proxy that drops headers"}
	}
	s.streamID = streamID
	s.events = newEventStream(resp.Body)
	ev, err := s.events.next(ctx)
	switch {
	case err != nil:
		s.events.Close()
		return s.streamFailure("before SUBSCRIBED", err)
	case ev.Type == "ERROR" && ev.Error != nil:
		s.events.Close()
		return s.refusedByError(firstLine(ev.Error.Message))
	case ev.Type != "SUBSCRIBED":
		s.events.Close()
		return &smokeFailure{msg: "the event stream began with " + firstLine(ev.Type) + ", not SUBSCRIBED",
			fix: "check that " + s.endpoint + " is a Mesos master of version 1.0 or later"}
	}
	s.frameworkID = ev.Subscribed.FrameworkID.Value
	return nil
}

// post sends the SUBSCRIBE. Its answer streams for as long as the test runs, so the client's
// timeout is off and the probe timeout bounds only the wait for the answer's header.
func (s *mesosSmoke) post(ctx context.Context, body []byte) (*http.Response, *smokeFailure) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &smokeFailure{msg: "cannot make the SUBSCRIBE request: " + err.Error(), fix: "check --mesos-master"}
	}
	s.header(req)
	client := *s.d.cfg.Client
	client.Timeout = 0
	// The probe timeout on the header: a transport deadline would also cut the stream.
	headerCtx, stop := context.WithCancel(ctx)
	expired := time.AfterFunc(s.d.cfg.Timeout, stop)
	resp, err := client.Do(req.WithContext(headerCtx))
	if !expired.Stop() {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, &smokeFailure{msg: fmt.Sprintf("no answer to the SUBSCRIBE within %s", s.d.cfg.Timeout),
			fix: "check the mesos master findings: the leader must answer POST " + s.endpoint + " from here"}
	}
	if err != nil {
		stop()
		return nil, &smokeFailure{msg: "could not subscribe: " + err.Error(),
			fix: "check the mesos master findings: the leader must answer POST " + s.endpoint + " from here"}
	}
	// stop is left to the body: closing it (eventStream.Close) ends the request, and the
	// context's resources go with the parent's cancel.
	return resp, nil
}

// redirectTarget resolves a redirect's Location against the endpoint: Mesos sends
// "//host:port/path"; old releases sent "host:port" alone.
func redirectTarget(endpoint, location string) (string, error) {
	if location == "" {
		return "", errors.New("307 without a Location")
	}
	if !strings.HasPrefix(location, "/") && !strings.Contains(location, "://") {
		location = "//" + location
	}
	base, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	loc, err := url.Parse(location)
	if err != nil {
		return "", fmt.Errorf("redirect Location %q: %w", firstLine(location), err)
	}
	if strings.HasPrefix(location, "//") && loc.Host == "" {
		return "", fmt.Errorf("redirect Location %q names no host", firstLine(location))
	}
	next := base.ResolveReference(loc)
	if next.Path == "" || next.Path == "/" {
		next.Path = base.Path
	}
	if (next.Scheme != "http" && next.Scheme != "https") || next.Host == "" {
		return "", fmt.Errorf("redirect Location %q is not an http(s) URL", firstLine(location))
	}
	return next.String(), nil
}

// refused turns a SUBSCRIBE answered with an HTTP error into a failure.
func (s *mesosSmoke) refused(code int, answer string) *smokeFailure {
	fw := s.d.cfg.SmokeFramework
	switch code {
	case http.StatusUnauthorized:
		fix := "the masters authenticate frameworks (--authenticate_http_frameworks): give --smoke-principal and --smoke-secret-file with a credential of their --credentials"
		if fw.Secret != "" {
			fix = fmt.Sprintf("the masters do not accept principal %q with that secret: check the masters' --credentials", fw.Principal)
		}
		return &smokeFailure{msg: fmt.Sprintf("the master requires framework authentication: %d %s", code, answer), fix: fix}
	case http.StatusForbidden:
		return &smokeFailure{msg: fmt.Sprintf("the master refused the SUBSCRIBE of %s: %d %s", s.principalText(), code, answer), fix: s.aclFix()}
	case http.StatusServiceUnavailable:
		return &smokeFailure{msg: fmt.Sprintf("the master cannot take a framework now: %d %s", code, answer),
			fix: "a master that has no leader or has not recovered answers 503: check the mesos leader findings and run again"}
	}
	return &smokeFailure{msg: fmt.Sprintf("the master refused the SUBSCRIBE: %d %s", code, answer),
		fix: "check that " + s.endpoint + " is a Mesos master of version 1.0 or later; its message says what it wants"}
}

// refusedByError turns an ERROR event in place of SUBSCRIBED into a failure.
func (s *mesosSmoke) refusedByError(msg string) *smokeFailure {
	if strings.Contains(msg, "Not authorized") {
		return &smokeFailure{msg: fmt.Sprintf("the master refused the framework of %s: %s", s.principalText(), msg), fix: s.aclFix()}
	}
	return &smokeFailure{msg: "the master refused the framework: " + msg,
		fix: "the master's message says which field of framework_info it refuses (e.g. a role its --roles or weights do not allow: see --smoke-role)"}
}

func (s *mesosSmoke) principalText() string {
	if p := s.d.cfg.SmokeFramework.Principal; p != "" {
		return fmt.Sprintf("principal %q", p)
	}
	return "a framework without a principal"
}

// aclFix says what the masters' ACLs must grant.
func (s *mesosSmoke) aclFix() string {
	fw := s.d.cfg.SmokeFramework
	if fw.Principal == "" {
		return fmt.Sprintf("the masters' ACLs (--acls) refuse frameworks without a principal: give --smoke-principal with one that register_frameworks grants for role %q (e.g. Marathon's)", fw.Role)
	}
	return fmt.Sprintf("the masters' ACLs (--acls) must let principal %q register_frameworks for role %q and run_tasks as user %q; or give --smoke-principal with one they grant", fw.Principal, fw.Role, fw.User)
}

// streamFailure is a failure of the event stream itself (ended, or not what Mesos sends).
func (s *mesosSmoke) streamFailure(when string, err error) *smokeFailure {
	if errors.Is(err, context.DeadlineExceeded) {
		return &smokeFailure{msg: fmt.Sprintf("no event %s within %s", when, s.d.cfg.SmokeTimeout),
			fix: "a proxy between here and " + s.endpoint + " may buffer the chunked stream: reach the master directly"}
	}
	return &smokeFailure{msg: fmt.Sprintf("the event stream failed %s: %v", when, err),
		fix: "check that " + s.endpoint + " is a Mesos master of version 1.0 or later and that nothing between rewrites its chunked answer"}
}
