package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/api"
	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
)

// marathonFrameworkID is the id of the "marathon" framework in fakemesos's seed state.
const marathonFrameworkID = "20140703-014514-3041283216-5050-5348-0000"

// grantACLs let Marathon's principal reserve resources and create volumes for its role, and
// nothing else (permissive false).
const grantACLs = `{"permissive": false,
	"reserve_resources": [{"principals": {"values": ["marathon"]}, "roles": {"values": ["marathon"]}}],
	"create_volumes": [{"principals": {"values": ["marathon"]}, "roles": {"values": ["marathon"]}}]}`

// lab is a healthy cluster of fakes: three masters agreeing on Masters[0], elected an hour
// ago; two agents; a Marathon with principal and role, registered with the leader.
type lab struct {
	mesos    *fakemesos.Cluster
	agents   []*fakemesos.Agent
	marathon *fakemarathon.Server
	// hosts is the resolver's table: names not in it do not resolve.
	hosts map[string][]string
	now   time.Time
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{
		hosts: map[string][]string{"localhost": {"127.0.0.1"}},
		now:   time.Now(),
	}
	c, err := fakemesos.NewCluster(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l.mesos = c
	for i := range 2 {
		l.addAgent(t, fmt.Sprintf("agent-%d.test", i+1), true)
	}
	if err := c.Elect(0, l.now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.SetMasterFlag("acls", grantACLs)

	m := fakemarathon.New()
	m.SetInfo(func(info map[string]any) {
		info["frameworkId"] = marathonFrameworkID
		mc := info["marathon_config"].(map[string]any)
		mc["mesos_role"] = "marathon"
		mc["mesos_authentication_principal"] = "marathon"
	})
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	l.marathon = m
	return l
}

// addAgent starts an agent and lists every agent in the masters' state; resolvable puts its
// host name in the resolver's table.
func (l *lab) addAgent(t *testing.T, hostname string, resolvable bool) *fakemesos.Agent {
	t.Helper()
	a, err := fakemesos.StartAgent(fmt.Sprintf("S%d", len(l.agents)), hostname)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	l.agents = append(l.agents, a)
	if resolvable {
		l.hosts[hostname] = []string{"127.0.0.1"}
	}
	l.mesos.SetAgents(l.agents...)
	return a
}

func (l *lab) resolve(_ context.Context, host string) ([]string, error) {
	if addrs, ok := l.hosts[host]; ok {
		return addrs, nil
	}
	return nil, errors.New("no such host")
}

func (l *lab) config() Config {
	return Config{
		Targets: Targets{
			MesosMasters: l.mesos.Addrs(),
			Marathon:     []string{l.marathon.URL()},
		},
		Resolver: l.resolve,
		Timeout:  5 * time.Second,
		Now:      func() time.Time { return l.now },
	}
}

func runDoctor(t *testing.T, cfg Config) Report {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Run(ctx)
}

// want fails t unless the report has a finding of check, naming target (any target when
// empty), with severity sev and a message containing msg. It returns the finding.
func want(t *testing.T, r Report, check, target string, sev Severity, msg string) Finding {
	t.Helper()
	for _, f := range r.Find(check, "") {
		if (target == "" || f.Target == target) && f.Severity == sev && strings.Contains(f.Message, msg) {
			if sev != SeverityOK && f.Fix == "" {
				t.Errorf("finding %+v has no fix", f)
			}
			return f
		}
	}
	t.Errorf("no %s finding %q for %q containing %q; report:\n%s", sev, check, target, msg, table(r))
	return Finding{}
}

func table(r Report) string {
	var b strings.Builder
	_ = r.WriteTable(&b)
	return b.String()
}

func TestDoctorHealthyMesosAndMarathon(t *testing.T) {
	l := newLab(t)
	r := runDoctor(t, l.config())
	if !r.OK() {
		t.Fatalf("a healthy cluster is not all ok:\n%s", table(r))
	}
	leader := l.mesos.Masters[0].HostPort()
	want(t, r, CheckMesosLeader, "", SeverityOK, "every reachable master (3 of 3) names "+leader+" leader")
	want(t, r, CheckMesosFlapping, leader, SeverityOK, "1h0m0s ago")
	want(t, r, CheckHostname, "agent-1.test", SeverityOK, "resolves to 127.0.0.1")
	want(t, r, CheckHostname, "localhost", SeverityOK, "master host name resolves")
	want(t, r, CheckAgentFlags, "agent-2.test", SeverityOK, "containerizers=docker,mesos, executor_registration_timeout=5mins")
	want(t, r, CheckMesosACLs, leader, SeverityOK, `grant reserve_resources and create_volumes to "marathon" for role "marathon"`)
	want(t, r, CheckMarathonFramework, marathonFrameworkID, SeverityOK, "registered with the leading master "+leader+` as "marathon"`)
	want(t, r, CheckMarathonConfig, "", SeverityOK, `principal "marathon", role "marathon"`)
	want(t, r, CheckMarathonLeader, "", SeverityOK, "and it answers")
	for _, a := range l.agents {
		if a.Requests("/flags") != 1 {
			t.Errorf("agent %s: %d requests for /flags, want 1", a.Hostname, a.Requests("/flags"))
		}
	}
}

// A Marathon running with another role than the topology's (whose ACLs the masters got) is
// a warning naming both; the same role is ok.
func TestDoctorMarathonIdentityAgainstTopology(t *testing.T) {
	l := newLab(t)
	cfg := l.config()
	cfg.MarathonIdentity = MarathonConfig{Principal: "marathon", Role: "marathon"}
	want(t, runDoctor(t, cfg), CheckMarathonConfig, "", SeverityOK, `principal "marathon", role "marathon"`)
	cfg.MarathonIdentity = MarathonConfig{Principal: "marathon", Role: "web"}
	f := want(t, runDoctor(t, cfg), CheckMarathonConfig, "", SeverityWarn, `role "marathon" (the topology says "web")`)
	if !strings.Contains(f.Fix, "--mesos_role web") {
		t.Errorf("fix %q does not give the topology's role", f.Fix)
	}
}

func TestDoctorMastersNamingDifferentLeaders(t *testing.T) {
	l := newLab(t)
	stale := l.mesos.Masters[2]
	stale.SetLeader(l.mesos.Masters[1].HostPort())
	r := runDoctor(t, l.config())
	f := want(t, r, CheckMesosLeader, "", SeverityError, "masters disagree on the leader")
	if !strings.Contains(f.Message, stale.HostPort()+" name "+l.mesos.Masters[1].HostPort()) ||
		!strings.Contains(f.Message, "name "+l.mesos.Masters[0].HostPort()) {
		t.Errorf("the disagreement %q does not say which master names which leader", f.Message)
	}
	if r.OK() || r.Worst() != SeverityError {
		t.Errorf("report worst = %s, want error", r.Worst())
	}

	// Mesos 1.x masters redirect to the leader they name: the same disagreement shows.
	for _, m := range l.mesos.Masters {
		m.SetRedirect(true)
	}
	r = runDoctor(t, l.config())
	want(t, r, CheckMesosLeader, "", SeverityError, stale.HostPort()+" name "+l.mesos.Masters[1].HostPort())

	l.mesos.SetLeader(-1)
	r = runDoctor(t, l.config())
	want(t, r, CheckMesosLeader, "", SeverityError, "no leader elected")
}

func TestDoctorUnreachableMaster(t *testing.T) {
	l := newLab(t)
	down := l.mesos.Masters[1]
	down.GoDown()
	r := runDoctor(t, l.config())
	want(t, r, CheckMesosMaster, down.HostPort(), SeverityError, "unreachable")
	want(t, r, CheckMesosLeader, "", SeverityOK, "every reachable master (2 of 3)")
}

func TestDoctorFlappingLeader(t *testing.T) {
	l := newLab(t)
	cfg := l.config()
	base := l.now
	// The leadership moves every 3 seconds; the doctor looks a second after each change.
	for i := range 4 {
		elected := base.Add(time.Duration(3*i) * time.Second)
		if err := l.mesos.Elect(i%3, elected); err != nil {
			t.Fatal(err)
		}
		l.now = elected.Add(time.Second)
		r := runDoctor(t, cfg)
		leader := l.mesos.Masters[i%3].HostPort()
		want(t, r, CheckMesosFlapping, leader, SeverityWarn, "elected 1s ago (within the 5m0s flap window)")
		want(t, r, CheckMesosLeader, "", SeverityOK, "names "+leader+" leader")
	}
	// Once the leader has held on for longer than the window, the warning goes.
	l.now = l.now.Add(6 * time.Minute)
	r := runDoctor(t, cfg)
	want(t, r, CheckMesosFlapping, "", SeverityOK, "leader since")
	if !r.OK() {
		t.Errorf("a leader elected 6 minutes ago is still reported:\n%s", table(r))
	}
}

func TestDoctorUnresolvableAgent(t *testing.T) {
	l := newLab(t)
	l.addAgent(t, "agent-3.invalid", false)
	r := runDoctor(t, l.config())
	f := want(t, r, CheckHostname, "agent-3.invalid", SeverityError, "agent host name agent-3.invalid does not resolve from here")
	if !strings.Contains(f.Fix, "--hostname") {
		t.Errorf("fix %q does not name --hostname", f.Fix)
	}
	want(t, r, CheckHostname, "agent-1.test", SeverityOK, "resolves")
}

func TestDoctorAgentFlags(t *testing.T) {
	l := newLab(t)
	l.agents[0].SetFlag("executor_registration_timeout", "1mins")
	l.agents[1].SetFlag("containerizers", "mesos")
	l.agents[1].SetFlag("hostname", "0123456789ab")
	r := runDoctor(t, l.config())
	f := want(t, r, CheckAgentFlags, "agent-1.test", SeverityWarn, "executor_registration_timeout=1mins is below 5m0s")
	if !strings.Contains(f.Fix, "--executor_registration_timeout=5mins") {
		t.Errorf("fix %q does not give the flag", f.Fix)
	}
	want(t, r, CheckAgentFlags, "agent-2.test", SeverityWarn, `containerizers="mesos"`)
	want(t, r, CheckAgentFlags, "agent-2.test", SeverityWarn, "--hostname 0123456789ab looks like a Docker container id")
	if r.Worst() != SeverityWarn {
		t.Errorf("worst = %s, want warn:\n%s", r.Worst(), table(r))
	}

	// No flag at all is Mesos's default of one minute.
	l.agents[0].SetFlag("executor_registration_timeout", "")
	r = runDoctor(t, l.config())
	want(t, r, CheckAgentFlags, "agent-1.test", SeverityWarn, "executor_registration_timeout=1mins")

	l.mesos.EditState(func(st map[string]any) { st["slaves"].([]any)[1].(map[string]any)["active"] = false })
	l.agents[0].Close()
	r = runDoctor(t, l.config())
	want(t, r, CheckAgentFlags, "agent-2.test", SeverityWarn, "registered but inactive")
	want(t, r, CheckAgentFlags, "agent-1.test", SeverityError, "cannot read the agent's flags at "+l.agents[0].HostPort())
}

func TestDoctorContainerAddresses(t *testing.T) {
	l := newLab(t)
	l.hosts["agent-1.test"] = []string{"172.17.0.5"}
	r := runDoctor(t, l.config())
	want(t, r, CheckHostname, "agent-1.test", SeverityWarn, "172.17.0.5 is on Docker's default bridge")
}

func TestDoctorACLsWithoutCreateVolumes(t *testing.T) {
	l := newLab(t)
	l.mesos.SetMasterFlag("acls", `{"permissive": false,
		"reserve_resources": [{"principals": {"values": ["marathon"]}, "roles": {"values": ["marathon"]}}]}`)
	r := runDoctor(t, l.config())
	f := want(t, r, CheckMesosACLs, l.mesos.Masters[0].HostPort(), SeverityError,
		`do not grant create_volumes to Marathon's principal "marathon" for its role "marathon"`)
	if !strings.Contains(f.Fix, `"create_volumes": [{"principals": {"values": ["marathon"]}, "roles": {"values": ["marathon"]}}]`) {
		t.Errorf("fix %q does not give the ACL to add", f.Fix)
	}

	// Without a role Marathon reserves nothing: the ACLs are not checked, the missing role is.
	l.marathon.SetInfo(func(info map[string]any) { info["marathon_config"].(map[string]any)["mesos_role"] = "*" })
	r = runDoctor(t, l.config())
	if got := r.Find(CheckMesosACLs, ""); len(got) != 0 {
		t.Errorf("ACLs checked for Marathon without a role: %+v", got)
	}
	want(t, r, CheckMarathonConfig, "", SeverityWarn, "no role (--mesos_role)")

	// No --acls at all: Mesos allows everything.
	l.marathon.SetInfo(func(info map[string]any) { info["marathon_config"].(map[string]any)["mesos_role"] = "marathon" })
	l.mesos.SetMasterFlag("acls", "")
	r = runDoctor(t, l.config())
	want(t, r, CheckMesosACLs, "", SeverityOK, "no --acls")
}

func TestDoctorMarathonNotRegistered(t *testing.T) {
	l := newLab(t)
	l.marathon.SetInfo(func(info map[string]any) {
		info["frameworkId"] = "another-cluster-0001"
		delete(info["marathon_config"].(map[string]any), "mesos_authentication_principal")
	})
	r := runDoctor(t, l.config())
	want(t, r, CheckMarathonFramework, "another-cluster-0001", SeverityError, "not registered with the leading master "+l.mesos.Masters[0].HostPort())
	want(t, r, CheckMarathonConfig, "", SeverityWarn, "no principal")

	l.marathon.GoDown()
	r = runDoctor(t, l.config())
	want(t, r, CheckMarathon, l.marathon.URL(), SeverityError, "unreachable")
}

func TestDoctorMarathonInstancesDisagree(t *testing.T) {
	l := newLab(t)
	other := fakemarathon.New()
	other.Leader = "127.0.0.1:1" // names a leader that is not there
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	cfg := l.config()
	cfg.Marathon = append(cfg.Marathon, other.URL())
	r := runDoctor(t, cfg)
	want(t, r, CheckMarathonLeader, "", SeverityError, "Marathon instances disagree on the leader")

	cfg.Marathon = []string{other.URL()}
	r = runDoctor(t, cfg)
	want(t, r, CheckMarathonLeader, "127.0.0.1:1", SeverityError, "the leader 127.0.0.1:1 is unreachable from here")
}

// forward starts a reverse proxy to target, as HAProxy's leader proxy would be.
func forward(t *testing.T, target string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	t.Cleanup(p.Close)
	return p
}

func TestDoctorLeaderProxies(t *testing.T) {
	l := newLab(t)
	toLeader := forward(t, l.mesos.Masters[0].URL())
	toFollower := forward(t, l.mesos.Masters[1].URL())
	toMarathon := forward(t, l.marathon.URL())
	cfg := l.config()
	cfg.Proxies = []Proxy{
		{"mesos", toLeader.Listener.Addr().String()},
		{"mesos", toFollower.Listener.Addr().String()},
		{"marathon", toMarathon.Listener.Addr().String()},
	}
	r := runDoctor(t, cfg)
	want(t, r, CheckProxy, "mesos="+toLeader.Listener.Addr().String(), SeverityOK, "reaches the leading master "+l.mesos.Masters[0].HostPort())
	want(t, r, CheckProxy, "mesos="+toFollower.Listener.Addr().String(), SeverityError,
		"reaches "+l.mesos.Masters[1].HostPort()+", which does not lead")
	want(t, r, CheckProxy, "marathon="+toMarathon.Listener.Addr().String(), SeverityOK, "reaches the Marathon leader")

	for _, m := range l.mesos.Masters {
		m.SetRedirect(true)
	}
	l.marathon.SetInfo(func(info map[string]any) { info["elected"] = false })
	r = runDoctor(t, cfg)
	want(t, r, CheckProxy, "mesos="+toFollower.Listener.Addr().String(), SeverityError, "reaches a master that does not lead (it redirects to "+l.mesos.Masters[0].HostPort())
	want(t, r, CheckProxy, "marathon="+toMarathon.Listener.Addr().String(), SeverityError, "which does not lead")

	toLeader.Close()
	r = runDoctor(t, Config{Targets: Targets{Proxies: []Proxy{{"mesos", toLeader.Listener.Addr().String()}, {"zookeeper", toLeader.Listener.Addr().String()}}}})
	want(t, r, CheckProxy, "mesos="+toLeader.Listener.Addr().String(), SeverityError, "unreachable")
	want(t, r, CheckProxy, "zookeeper="+toLeader.Listener.Addr().String(), SeverityError, "unreachable")
}

func TestDoctorLodestarReadiness(t *testing.T) {
	reg := discovery.NewRegistry(discovery.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	reg.RegisterSource("marathon")
	s, err := api.New(api.Config{Logger: slog.New(slog.DiscardHandler)}, reg)
	if err != nil {
		t.Fatal(err)
	}
	s.AddReadyCheck("first sync", reg.Synced)
	s.AddReadyCheck("sources", func() error { return api.Degraded(reg.Failing()) }) // as serve does
	srv := httptest.NewServer(s.Router())
	t.Cleanup(srv.Close)

	cfg := Config{Targets: Targets{Lodestar: []string{srv.URL}}}
	r := runDoctor(t, cfg)
	want(t, r, CheckLodestar, srv.URL, SeverityError, "not ready: first sync: waiting for the first sync of [marathon]")

	reg.ReportSync("marathon", nil)
	r = runDoctor(t, cfg)
	want(t, r, CheckLodestar, srv.URL, SeverityOK, "ready")
	if !r.OK() {
		t.Errorf("a synced lodestar is not ok:\n%s", table(r))
	}
	// Marathon partitioned after the first sync: still ready (200), and the doctor warns.
	reg.ReportSync("marathon", errors.New("GET /v2/leader: i/o timeout"))
	r = runDoctor(t, cfg)
	want(t, r, CheckLodestar, srv.URL, SeverityWarn, "ready but degraded: sources: serving the last sync of 1 source(s) whose latest attempt failed: marathon: GET /v2/leader: i/o timeout")
	reg.ReportSync("marathon", nil)
	want(t, runDoctor(t, cfg), CheckLodestar, srv.URL, SeverityOK, "ready")
	srv.Close()
	r = runDoctor(t, cfg)
	want(t, r, CheckLodestar, srv.URL, SeverityError, "unreachable")
}
