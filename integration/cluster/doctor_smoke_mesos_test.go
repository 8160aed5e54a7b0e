package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/fakemesos"
)

// mesosSmokeConfig is the lab's configuration without Marathon and with the smoke test on, so
// that it runs through the leading master's scheduler API.
func mesosSmokeConfig(l *lab) Config {
	cfg := l.config()
	cfg.Marathon = nil
	cfg.Smoke = true
	cfg.SmokeFramework = SmokeFramework{User: "nobody"}
	return cfg
}

// leaderOf is the lab's leading fake master.
func leaderOf(l *lab) *fakemesos.Master { return l.mesos.Masters[0] }

// wantNothingLeft fails t when the master still holds a framework or a task.
func wantNothingLeft(t *testing.T, m *fakemesos.Master) {
	t.Helper()
	if fws := m.SchedulerFrameworks(); len(fws) != 0 {
		t.Errorf("frameworks left after the smoke test: %v", fws)
	}
	if tasks := m.SchedulerTasks(); len(tasks) != 0 {
		t.Errorf("tasks left after the smoke test: %v", tasks)
	}
}

// TestDoctorSmokeMesos: without Marathon, the smoke task runs through the leader's scheduler
// API: it runs, is killed, every update is acknowledged, the other agent's offer declined and
// the framework torn down.
func TestDoctorSmokeMesos(t *testing.T) {
	l := newLab(t)
	r := runDoctor(t, mesosSmokeConfig(l))
	f := want(t, r, CheckSmoke, "", SeverityOK, "task "+smokeTaskPrefix)
	for _, part := range []string{" ran on agent-", "killed (TASK_KILLED)", "the framework is torn down"} {
		if !strings.Contains(f.Message, part) {
			t.Errorf("smoke finding %q lacks %q", f.Message, part)
		}
	}
	if !strings.HasPrefix(f.Target, leaderOf(l).URL()+" framework ") {
		t.Errorf("smoke target %q does not name the leader %s and the framework", f.Target, leaderOf(l).URL())
	}
	if !r.OK() {
		t.Errorf("a healthy cluster with the smoke test is not all ok:\n%s", table(r))
	}
	m := leaderOf(l)
	wantNothingLeft(t, m)
	if got := m.SchedulerAcks(); got != 3 {
		t.Errorf("%d updates acknowledged, want 3 (TASK_STARTING, TASK_RUNNING, TASK_KILLED)", got)
	}
	for typ, n := range map[string]int{"SUBSCRIBE": 1, "ACCEPT": 1, "DECLINE": 1, "KILL": 1, "TEARDOWN": 1} {
		if got := m.SchedulerCalls(typ); got != n {
			t.Errorf("%d %s calls, want %d", got, typ, n)
		}
	}
}

// TestDoctorSmokeMesosNoOffers: no offer is a timeout naming the offers; the framework is
// torn down all the same.
func TestDoctorSmokeMesosNoOffers(t *testing.T) {
	l := newLab(t)
	leaderOf(l).SetSchedulerFaults(fakemesos.SchedulerFaults{NoOffers: true})
	cfg := mesosSmokeConfig(l)
	cfg.SmokeTimeout = 300 * time.Millisecond
	r := runDoctor(t, cfg)
	f := want(t, r, CheckSmoke, "", SeverityError, "no offer within 300ms")
	if !strings.Contains(f.Fix, "agents are registered") || !strings.Contains(f.Message, "the framework is torn down") {
		t.Errorf("finding %+v: want a fix about agents and the framework torn down", f)
	}
	if leaderOf(l).SchedulerCalls("TEARDOWN") != 1 {
		t.Error("no TEARDOWN after the timeout")
	}
	wantNothingLeft(t, leaderOf(l))
}

// TestDoctorSmokeMesosOffersTooSmall: offers that are all too small are declined and named.
func TestDoctorSmokeMesosOffersTooSmall(t *testing.T) {
	l := newLab(t)
	l.mesos.EditState(func(st map[string]any) {
		for _, a := range st["slaves"].([]any) {
			a.(map[string]any)["resources"] = map[string]any{"cpus": 0.05, "mem": 16}
		}
	})
	cfg := mesosSmokeConfig(l)
	cfg.SmokeTimeout = 300 * time.Millisecond
	r := runDoctor(t, cfg)
	want(t, r, CheckSmoke, "", SeverityError, "no offer with cpus 0.1 and mem 32 within 300ms: 2 offers, the largest cpus 0.05 and mem 16")
	if leaderOf(l).SchedulerCalls("DECLINE") != 1 || leaderOf(l).SchedulerCalls("ACCEPT") != 0 {
		t.Errorf("DECLINE %d, ACCEPT %d: want the offers declined, none accepted",
			leaderOf(l).SchedulerCalls("DECLINE"), leaderOf(l).SchedulerCalls("ACCEPT"))
	}
	wantNothingLeft(t, leaderOf(l))
}

// TestDoctorSmokeMesosTaskFails: a task that fails is an error carrying Mesos's message and
// reason, at once.
func TestDoctorSmokeMesosTaskFails(t *testing.T) {
	l := newLab(t)
	leaderOf(l).SetSchedulerFaults(fakemesos.SchedulerFaults{FailTask: "Command exited with status 127 (sh: 1: sleep: not found)"})
	cfg := mesosSmokeConfig(l)
	cfg.SmokeTimeout = time.Hour // a wait for the timeout would fail the test's own deadline
	r := runDoctor(t, cfg)
	f := want(t, r, CheckSmoke, "", SeverityError,
		"went TASK_FAILED on agent-1.test before it ran (REASON_COMMAND_EXECUTOR_FAILED, SOURCE_EXECUTOR): Command exited with status 127 (sh: 1: sleep: not found)")
	if !strings.Contains(f.Fix, "sandbox") {
		t.Errorf("fix %q does not point at the sandbox", f.Fix)
	}
	if leaderOf(l).SchedulerAcks() != 2 {
		t.Errorf("%d updates acknowledged, want 2", leaderOf(l).SchedulerAcks())
	}
	wantNothingLeft(t, leaderOf(l))
}

// TestDoctorSmokeMesosForbidden: a 403 to the SUBSCRIBE names the principal and the ACLs.
func TestDoctorSmokeMesosForbidden(t *testing.T) {
	l := newLab(t)
	leaderOf(l).SetSchedulerFaults(fakemesos.SchedulerFaults{ForbidPrincipal: "doctor"})
	cfg := mesosSmokeConfig(l)
	cfg.SmokeFramework.Principal = "doctor"
	r := runDoctor(t, cfg)
	f := want(t, r, CheckSmoke, "", SeverityError, `the master refused the SUBSCRIBE of principal "doctor": 403 Forbidden`)
	if !strings.Contains(f.Fix, `ACLs (--acls) must let principal "doctor" register_frameworks for role "*"`) {
		t.Errorf("fix %q does not name the principal and the ACL", f.Fix)
	}
	wantNothingLeft(t, leaderOf(l))
}

// TestDoctorSmokeMesosNotAuthorized: the ERROR event a master's ACLs give is a finding with the
// master's message and the ACL fix.
func TestDoctorSmokeMesosNotAuthorized(t *testing.T) {
	l := newLab(t)
	leaderOf(l).SetSchedulerFaults(fakemesos.SchedulerFaults{DenyPrincipal: "doctor"})
	cfg := mesosSmokeConfig(l)
	cfg.SmokeFramework.Principal = "doctor"
	r := runDoctor(t, cfg)
	f := want(t, r, CheckSmoke, "", SeverityError, `the master refused the framework of principal "doctor": Not authorized to register framework`)
	if !strings.Contains(f.Fix, "register_frameworks") {
		t.Errorf("fix %q does not name the ACL", f.Fix)
	}
	wantNothingLeft(t, leaderOf(l))
}

// smokeDoctor is a Doctor for runMesosSmoke against one master.
func smokeDoctor(t *testing.T, fw SmokeFramework, timeout time.Duration) *Doctor {
	t.Helper()
	d, err := New(Config{Targets: Targets{MesosMasters: []string{"127.0.0.1:1"}}, Smoke: true,
		SmokeTimeout: timeout, SmokeFramework: fw, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func runSmokeAt(t *testing.T, d *Doctor, base string) []Finding {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.runMesosSmoke(ctx, base)
}

// TestMesosSmokeFollowsRedirect: a master that does not lead redirects the SUBSCRIBE to the
// leader, which runs the task; a redirect to a master that redirects again is an error.
func TestMesosSmokeFollowsRedirect(t *testing.T) {
	c, err := fakemesos.NewCluster(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	d := smokeDoctor(t, SmokeFramework{User: "nobody"}, time.Hour)
	fs := runSmokeAt(t, d, c.Masters[1].URL())
	if len(fs) != 1 || fs[0].Severity != SeverityOK || !strings.HasPrefix(fs[0].Target, c.Masters[0].URL()+" framework ") {
		t.Fatalf("smoke through a non-leader: %+v, want ok at the leader %s", fs, c.Masters[0].URL())
	}
	if c.Masters[1].Requests(fakemesos.PathScheduler) != 1 || c.Masters[0].SchedulerCalls("TEARDOWN") != 1 {
		t.Errorf("non-leader got %d requests (want the SUBSCRIBE only), leader %d TEARDOWNs (want 1)",
			c.Masters[1].Requests(fakemesos.PathScheduler), c.Masters[0].SchedulerCalls("TEARDOWN"))
	}
	wantNothingLeft(t, c.Masters[0])

	c.Masters[1].SetLeader(c.Masters[2].HostPort())
	c.Masters[2].SetLeader(c.Masters[1].HostPort())
	fs = runSmokeAt(t, d, c.Masters[1].URL())
	if len(fs) != 1 || fs[0].Severity != SeverityError || !strings.Contains(fs[0].Message, "redirected twice") {
		t.Errorf("smoke through a redirect loop: %+v, want one error saying redirected twice", fs)
	}
}

// TestMesosSmokeAuthentication: a master that authenticates frameworks answers 401 without
// credentials (the fix names the flags) and runs the task with the principal's secret.
func TestMesosSmokeAuthentication(t *testing.T) {
	m := fakemesos.New()
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	m.SetAuth("doctor", "s3cret")
	fs := runSmokeAt(t, smokeDoctor(t, SmokeFramework{User: "nobody"}, time.Hour), m.URL())
	if len(fs) != 1 || fs[0].Severity != SeverityError || !strings.Contains(fs[0].Message, "requires framework authentication: 401") ||
		!strings.Contains(fs[0].Fix, "--smoke-principal and --smoke-secret-file") {
		t.Errorf("smoke without credentials: %+v, want a 401 error naming the flags", fs)
	}
	fs = runSmokeAt(t, smokeDoctor(t, SmokeFramework{User: "nobody", Principal: "doctor", Secret: "s3cret"}, time.Hour), m.URL())
	if len(fs) != 1 || fs[0].Severity != SeverityOK {
		t.Errorf("smoke with credentials: %+v, want ok", fs)
	}
	wantNothingLeft(t, m)
}

// hostileMaster is a scheduler API that answers SUBSCRIBE with a SUBSCRIBED event followed by
// raw bytes and then, if hold, keeps the stream open; it counts the calls by type.
type hostileMaster struct {
	*httptest.Server
	mu       sync.Mutex
	calls    map[string]int
	teardown int // status of TEARDOWN answers; 0 is 202
}

func startHostile(t *testing.T, raw string, hold bool) *hostileMaster {
	t.Helper()
	h := &hostileMaster{calls: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var call struct {
			Type string `json:"type"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&call)
		h.mu.Lock()
		h.calls[call.Type]++
		teardown := h.teardown
		h.mu.Unlock()
		if call.Type == "TEARDOWN" && teardown != 0 {
			http.Error(w, "teardown refused by the test", teardown)
			return
		}
		if call.Type != "SUBSCRIBE" {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Mesos-Stream-Id", "0f1e2d3c-aaaa-4bbb-8ccc-000000000001")
		w.Header().Set("Content-Type", "application/json")
		sub := `{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"hostile-0001"},"heartbeat_interval_seconds":15}}`
		fmt.Fprintf(w, "%d\n%s%s", len(sub), sub, raw)
		w.(http.Flusher).Flush()
		if hold {
			<-r.Context().Done()
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hostileMaster) count(typ string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[typ]
}

// record is one RecordIO record of s.
func record(s string) string { return fmt.Sprintf("%d\n%s", len(s), s) }

// offerWith is an OFFERS event of one offer with these cpus and mem JSON values.
func offerWith(cpus, mem string) string {
	return record(`{"type":"OFFERS","offers":{"offers":[{"id":{"value":"o-1"},"framework_id":{"value":"hostile-0001"},"agent_id":{"value":"a-1"},"hostname":"h","resources":[` +
		`{"name":"cpus","type":"SCALAR","scalar":{"value":` + cpus + `},"role":"*"},{"name":"mem","type":"SCALAR","scalar":{"value":` + mem + `},"role":"*"}]}]}}`)
}

// TestMesosSmokeHostileMaster: a master that sends what no Mesos master sends is an error,
// at once and without a huge allocation, and the framework is torn down.
func TestMesosSmokeHostileMaster(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want string
		declined, ends  bool // the bad offer is declined; the answer ends after raw
	}{
		{"huge length prefix", "18446744073709551615\n{", "a record longer than the 16777216-byte limit", false, false},
		{"length beyond uint64", strings.Repeat("9", 40) + "\n", "a record longer than", false, false},
		{"length not digits", "12a\n{}", `a record's length holds 'a'`, false, false},
		{"zero length", "0\n", "a record of length 0", false, false},
		{"garbage JSON", record("{not json"), "not the JSON of a scheduler Event", false, false},
		{"event without a type", record(`{"offers":{}}`), "an event without a type", false, false},
		{"NaN resource", offerWith(`"NaN"`, "64"), `resource cpus: scalar value "NaN" is not a finite number`, true, false},
		{"negative resource", offerWith("1", "-32"), "resource mem: scalar value -32 is not a finite number", true, false},
		{"infinite resource", offerWith("1e999", "64"), "resource cpus: scalar value 1e999 is not a finite number", true, false},
		{"offer id with a newline", record(`{"type":"OFFERS","offers":{"offers":[{"id":{"value":"o\n1"},"agent_id":{"value":"a"}}]}}`), "an offer without a valid id", false, false},
		{"update uuid not Base64", record(`{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"agent_id":{"value":"a"},"state":"TASK_RUNNING","uuid":"%%%"}}}`), "is not the Base64 of a UUID", false, false},
		{"stream ends", "", "the master ended the event stream", false, true},
		{"stream ends inside a record", "100\n{\"type\"", "unexpected EOF", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHostile(t, tc.raw, !tc.ends)
			fs := runSmokeAt(t, smokeDoctor(t, SmokeFramework{User: "nobody"}, time.Hour), h.URL)
			if len(fs) == 0 || fs[0].Severity != SeverityError || !strings.Contains(fs[0].Message, tc.want) || fs[0].Fix == "" {
				t.Fatalf("findings %+v, want an error containing %q with a fix", fs, tc.want)
			}
			if h.count("TEARDOWN") != 1 || h.count("ACCEPT") != 0 {
				t.Errorf("TEARDOWN %d, ACCEPT %d: want the framework torn down, nothing launched", h.count("TEARDOWN"), h.count("ACCEPT"))
			}
			if tc.declined && h.count("DECLINE") != 1 {
				t.Errorf("the bad offer was not declined (%d DECLINE calls)", h.count("DECLINE"))
			}
		})
	}
}

// TestMesosSmokeSilentMaster: a master that says nothing after SUBSCRIBED is a timeout, not a
// hang, and the framework is torn down.
func TestMesosSmokeSilentMaster(t *testing.T) {
	h := startHostile(t, "", true)
	fs := runSmokeAt(t, smokeDoctor(t, SmokeFramework{User: "nobody"}, 200*time.Millisecond), h.URL)
	if len(fs) != 1 || fs[0].Severity != SeverityError || !strings.Contains(fs[0].Message, "no offer within 200ms") {
		t.Errorf("findings %+v, want a no-offer timeout", fs)
	}
	if h.count("TEARDOWN") != 1 {
		t.Errorf("%d TEARDOWN calls, want 1", h.count("TEARDOWN"))
	}
}

// TestMesosSmokeBadSubscribeAnswers: answers to SUBSCRIBE that are no subscription are errors.
func TestMesosSmokeBadSubscribeAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"no stream id", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, record(`{"type":"SUBSCRIBED"}`)) }, "no usable Mesos-Stream-Id"},
		{"stream id with spaces", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Mesos-Stream-Id", "a b")
			fmt.Fprint(w, record(`{"type":"SUBSCRIBED"}`))
		}, "no usable Mesos-Stream-Id"},
		{"redirect nowhere", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "ftp://x/y")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}, "redirected the SUBSCRIBE nowhere usable"},
		{"heartbeat first", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Mesos-Stream-Id", "s-1")
			fmt.Fprint(w, record(`{"type":"HEARTBEAT"}`))
		}, "began with HEARTBEAT, not SUBSCRIBED"},
		{"SUBSCRIBED without framework id", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Mesos-Stream-Id", "s-1")
			fmt.Fprint(w, record(`{"type":"SUBSCRIBED","subscribed":{}}`))
		}, "without a valid framework_id"},
		{"a 400", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Failed to validate scheduler::Call", http.StatusBadRequest)
		}, "the master refused the SUBSCRIBE: 400 Failed to validate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			fs := runSmokeAt(t, smokeDoctor(t, SmokeFramework{User: "nobody"}, time.Hour), srv.URL)
			if len(fs) != 1 || fs[0].Severity != SeverityError || !strings.Contains(fs[0].Message, tc.want) || fs[0].Fix == "" {
				t.Errorf("findings %+v, want one error containing %q with a fix", fs, tc.want)
			}
		})
	}
}

// TestRecordReader reads honest streams record by record and refuses hostile ones without
// allocating what their length claims.
func TestRecordReader(t *testing.T) {
	rr := newRecordReader(strings.NewReader(record("{}")+record(`{"a":1}`)), 16)
	for _, want := range []string{"{}", `{"a":1}`} {
		got, err := rr.next()
		if err != nil || string(got) != want {
			t.Fatalf("next = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := rr.next(); err != io.EOF {
		t.Errorf("after the last record: %v, want io.EOF", err)
	}
	// A length at the limit is read; one past it is refused before its bytes are awaited.
	if got, err := newRecordReader(strings.NewReader(record(strings.Repeat("x", 16))), 16).next(); err != nil || len(got) != 16 {
		t.Errorf("a record at the limit: %d bytes, %v", len(got), err)
	}
	if _, err := newRecordReader(strings.NewReader("17\n"), 16).next(); err == nil || !strings.Contains(err.Error(), "longer than the 16-byte limit") {
		t.Errorf("a record past the limit: %v", err)
	}
	if _, err := newRecordReader(strings.NewReader("\n2\n{}"), 16).next(); err == nil {
		t.Error("an empty length line was taken")
	}
}

// TestCheckSmokeFramework: defaults, and hostile identities refused.
func TestCheckSmokeFramework(t *testing.T) {
	fw, err := checkSmokeFramework(SmokeFramework{})
	if err != nil || fw.Role != "*" || fw.User == "" {
		t.Errorf("defaults: %+v, %v", fw, err)
	}
	for _, ok := range []SmokeFramework{{User: "root", Role: "ops"}, {User: "svc-1", Role: "team/ops", Principal: "doctor", Secret: "x"}} {
		if _, err := checkSmokeFramework(ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []SmokeFramework{{User: "a b"}, {User: "-x"}, {Role: ".."}, {Role: "a/../b"}, {Role: "-r"}, {Role: "a b"},
		{Principal: "a:b"}, {Principal: "a b"}, {Principal: "x\n"}, {Secret: "s"}} {
		if _, err := checkSmokeFramework(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestMesosSmokeTeardownFails: a TEARDOWN that fails is a warning with the command that tears
// the framework down by hand and the failover timeout that removes it anyway.
func TestMesosSmokeTeardownFails(t *testing.T) {
	h := startHostile(t, "", true)
	h.mu.Lock()
	h.teardown = http.StatusInternalServerError
	h.mu.Unlock()
	fs := runSmokeAt(t, smokeDoctor(t, SmokeFramework{User: "nobody"}, 100*time.Millisecond), h.URL)
	if len(fs) != 2 || fs[0].Severity != SeverityError || strings.Contains(fs[0].Message, "torn down") {
		t.Fatalf("findings %+v, want the no-offer error without a claim of teardown, and a warning", fs)
	}
	w := fs[1]
	if w.Severity != SeverityWarn || !strings.Contains(w.Message, "could not tear the smoke framework down: TEARDOWN: 500 teardown refused by the test") ||
		!strings.Contains(w.Fix, "curl -X POST "+h.URL+"/master/teardown -d frameworkId=hostile-0001") || !strings.Contains(w.Fix, "30s") {
		t.Errorf("teardown warning %+v", w)
	}
}

// TestDoctorSmokeMesosNoLeader: with no leader every master names, the smoke test says it
// did not run.
func TestDoctorSmokeMesosNoLeader(t *testing.T) {
	l := newLab(t)
	l.mesos.SetLeader(-1)
	r := runDoctor(t, mesosSmokeConfig(l))
	want(t, r, CheckSmoke, "", SeverityError, "not run: no Mesos leader that every master names")
	if n := leaderOf(l).Requests(fakemesos.PathScheduler); n != 0 {
		t.Errorf("%d scheduler requests with no leader, want none", n)
	}
}

// TestRedirectTarget: Mesos's protocol-relative Location, the bare host:port of old releases,
// a path on the same master; and Locations that lead nowhere.
func TestRedirectTarget(t *testing.T) {
	const from = "http://10.0.0.2:5050/api/v1/scheduler"
	for loc, want := range map[string]string{
		"//10.0.0.1:5050/master/api/v1/scheduler": "http://10.0.0.1:5050/master/api/v1/scheduler",
		"10.0.0.1:5050":            "http://10.0.0.1:5050/api/v1/scheduler",
		"https://m1:5050":          "https://m1:5050/api/v1/scheduler",
		"/master/api/v1/scheduler": "http://10.0.0.2:5050/master/api/v1/scheduler",
	} {
		if got, err := redirectTarget(from, loc); err != nil || got != want {
			t.Errorf("Location %q: %q, %v; want %q", loc, got, err, want)
		}
	}
	for _, loc := range []string{"", "ftp://m1/x", "javascript:alert(1)", "http://", "//"} {
		if got, err := redirectTarget(from, loc); err == nil {
			t.Errorf("Location %q taken as %q", loc, got)
		}
	}
}
