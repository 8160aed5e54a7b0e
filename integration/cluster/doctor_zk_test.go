package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// quorumFinding returns the report's zookeeper quorum finding.
func quorumFinding(t *testing.T, r Report) Finding {
	t.Helper()
	q := r.Find(CheckZKQuorum, "")
	if len(q) != 1 {
		t.Fatalf("%d zookeeper quorum findings, want 1:\n%s", len(q), table(r))
	}
	return q[0]
}

// runUntil runs the doctor until cond holds for its report (ZooKeeper needs a moment to elect
// a leader, or to notice it lost its quorum) and returns that report; it fails t with the last
// report after a minute.
func runUntil(t *testing.T, cfg Config, what string, cond func(Report) bool) Report {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		r := runDoctor(t, cfg)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report with %s within a minute; the last:\n%s", what, table(r))
		}
		<-tick.C
	}
}

// TestDoctorZooKeeperEnsemble runs the doctor against a real 3-member ensemble in which the
// fake Mesos masters register: all green; one member stopped is a warning naming it; two
// stopped is an error.
func TestDoctorZooKeeperEnsemble(t *testing.T) {
	e := zktest.StartEnsemble(t, 3)
	l := newLab(t)
	reg, err := fakemesos.NewZKRegistrar(e.Servers(), "/mesos")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	for _, m := range l.mesos.Masters { // Masters[0] registers first: it leads
		if _, err := reg.Register(fakemesos.NewMasterInfo(m.HostPort()), true); err != nil {
			t.Fatal(err)
		}
	}
	cfg := l.config()
	cfg.ZooKeeper = e.Servers()
	cfg.MesosZKPath = "/mesos"
	cfg.MesosMasters = nil // found in ZooKeeper

	// Just registered: the leadership is younger than the flap window.
	r := runDoctor(t, cfg)
	want(t, r, CheckMesosZK, "", SeverityWarn, "leadership changed")

	// An hour later, with the masters' leader elected an hour before that: all green.
	l.now = time.Now().Add(time.Hour)
	if err := l.mesos.Elect(0, l.now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	r = runDoctor(t, cfg)
	if !r.OK() {
		t.Fatalf("a healthy cluster is not all green:\n%s", table(r))
	}
	want(t, r, CheckZKQuorum, "", SeverityOK, "3 of 3 members in one quorum")
	want(t, r, CheckMesosZK, "", SeverityOK, "3 masters registered; "+l.mesos.Masters[0].HostPort()+" leads")
	want(t, r, CheckMesosLeader, "", SeverityOK, "every reachable master (3 of 3) names "+l.mesos.Masters[0].HostPort())
	modes := 0
	for _, f := range r.Find(CheckZKMember, SeverityOK) {
		if strings.HasPrefix(f.Message, "leader,") || strings.HasPrefix(f.Message, "follower,") {
			modes++
		}
	}
	if modes != 3 {
		t.Errorf("%d members report leader or follower, want 3:\n%s", modes, table(r))
	}

	// A member that leads is ZooKeeper's worst single failure: the others elect anew.
	leader := ""
	for i, m := range e.Members {
		if mode, _ := m.Mode(); mode == "leader" {
			leader = e.Members[i].Addr()
			m.Stop()
		}
	}
	if leader == "" {
		t.Fatal("no member leads")
	}
	r = runUntil(t, cfg, "a quorum of two", func(r Report) bool { return quorumFinding(t, r).Severity == SeverityWarn })
	q := quorumFinding(t, r)
	if !strings.Contains(q.Message, "still a quorum (2 of 3 members serving") || !strings.Contains(q.Message, leader+" down") || !strings.Contains(q.Fix, leader) {
		t.Errorf("quorum finding with %s stopped = %+v, want a warning naming it", leader, q)
	}
	want(t, r, CheckZKMember, leader, SeverityWarn, "down")
	want(t, r, CheckMesosZK, "", SeverityOK, "3 masters registered")
	if r.Worst() != SeverityWarn {
		t.Errorf("worst = %s with one member down, want warn:\n%s", r.Worst(), table(r))
	}

	// A second member down: no quorum.
	var second string
	for _, m := range e.Members {
		if m.Addr() != leader {
			second = m.Addr()
			m.Stop()
			break
		}
	}
	cfg.Timeout = 2 * time.Second
	r = runUntil(t, cfg, "no quorum", func(r Report) bool { return quorumFinding(t, r).Severity == SeverityError })
	q = quorumFinding(t, r)
	if !strings.Contains(q.Message, "no quorum") || !strings.Contains(q.Message, leader) || !strings.Contains(q.Message, second) {
		t.Errorf("quorum finding with two members stopped = %+v, want an error naming %s and %s", q, leader, second)
	}
	want(t, r, CheckZKMember, second, SeverityError, "down")
	want(t, r, CheckMesosZK, "", SeverityError, "")
}
