package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestJudgeAgentAddress covers the verdicts on an agent's advertised address.
func TestJudgeAgentAddress(t *testing.T) {
	refused := errors.New("connection refused")
	ip := netip.MustParseAddr
	none := netip.Addr{}
	for _, tc := range []struct {
		agent, master netip.Addr
		dialErr       error
		sev           Severity
		msg, fix      string
	}{
		{ip("127.0.0.1"), ip("127.0.0.1"), nil, SeverityOK, "advertises 127.0.0.1:5051, reachable from here", ""},
		{ip("10.0.0.5"), ip("10.0.0.1"), nil, SeverityOK, "reachable from here", ""},
		{ip("172.28.0.5"), ip("10.0.0.1"), nil, SeverityWarn, "on a Docker network (172.28.0.0/16) that the leading master (10.0.0.1) is not on", "host networking"},
		{ip("172.17.0.3"), none, nil, SeverityWarn, "on a Docker network (172.17.0.0/16) that the leading master (unknown) is not on", "--advertise_ip"},
		// A lab inside one bridge: the masters are on it too.
		{ip("172.28.0.5"), ip("172.28.0.2"), nil, SeverityOK, "reachable from here", ""},
		// Outside Docker's pools: 172.16/16 and 172.32/16.
		{ip("172.16.5.5"), ip("10.0.0.1"), nil, SeverityOK, "reachable from here", ""},
		{ip("172.32.0.1"), ip("10.0.0.1"), nil, SeverityOK, "reachable from here", ""},
		{ip("172.28.0.5"), ip("10.0.0.1"), refused, SeverityError, "advertises 172.28.0.5:5051, on a Docker network (172.28.0.0/16), not reachable from here: connection refused", "network_mode: host"},
		{ip("10.0.0.5"), ip("10.0.0.1"), refused, SeverityError, "advertises 10.0.0.5:5051, not reachable from here", "open port 5051"},
		{ip("127.0.1.1"), ip("10.0.0.1"), nil, SeverityWarn, "loopback address 127.0.1.1:5051 while the leading master is at 10.0.0.1", "127.0.1.1"},
	} {
		f := judgeAgentAddress("agent-1", tc.agent, 5051, tc.master, tc.dialErr)
		if f.Check != CheckAgentAddress || f.Target != "agent-1" || f.Severity != tc.sev || !strings.Contains(f.Message, tc.msg) || !strings.Contains(f.Fix, tc.fix) {
			t.Errorf("agent %s, master %s, dial %v: %+v; want %s %q, fix with %q", tc.agent, tc.master, tc.dialErr, f, tc.sev, tc.msg, tc.fix)
		}
		if tc.sev != SeverityOK && f.Fix == "" {
			t.Errorf("agent %s: %s finding without a fix", tc.agent, tc.sev)
		}
	}
}

// labDialer connects only on loopback: an address in rewrite goes to its loopback stand-in,
// any other that is not 127.x is refused. rewrite is changed only between runs.
type labDialer struct {
	rewrite map[string]string
}

func (l *labDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if to, ok := l.rewrite[addr]; ok {
		addr = to
	} else if !strings.HasPrefix(addr, "127.") {
		return nil, errors.New("no route to host (test)")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// agentLabConfig is the lab's configuration with every connection, HTTP included, through ld.
func agentLabConfig(l *lab, ld *labDialer) Config {
	cfg := l.config()
	cfg.Dial = ld.dial
	cfg.Timeout = 2 * time.Second
	cfg.Client = &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{DialContext: ld.dial},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return cfg
}

// setAgentPID makes the masters' state name pid for the agent with host name host.
func setAgentPID(t *testing.T, l *lab, host, pid string) {
	t.Helper()
	found := false
	l.mesos.EditState(func(st map[string]any) {
		for _, s := range st["slaves"].([]any) {
			if a := s.(map[string]any); a["hostname"] == host {
				a["pid"], found = pid, true
			}
		}
	})
	if !found {
		t.Fatalf("no agent %s in the masters' state", host)
	}
}

// TestDoctorAgentAddresses: agents the masters list at their loopback addresses are reachable;
// one that advertises a Docker network's address is a warning while it answers there (from its
// own host) and an error when not; a pid that names no address is an error.
func TestDoctorAgentAddresses(t *testing.T) {
	l := newLab(t)
	ld := &labDialer{rewrite: map[string]string{}}
	r := runDoctor(t, agentLabConfig(l, ld))
	want(t, r, CheckAgentAddress, "agent-1.test", SeverityOK, "advertises "+l.agents[0].HostPort()+", reachable from here")
	want(t, r, CheckAgentAddress, "agent-2.test", SeverityOK, "reachable from here")

	_, port, _ := net.SplitHostPort(l.agents[0].HostPort())
	bridge := "172.28.0.5:" + port
	setAgentPID(t, l, "agent-1.test", "slave(1)@"+bridge)
	ld.rewrite[bridge] = l.agents[0].HostPort()
	r = runDoctor(t, agentLabConfig(l, ld))
	f := want(t, r, CheckAgentAddress, "agent-1.test", SeverityWarn, "advertises "+bridge+", on a Docker network (172.28.0.0/16) that the leading master (127.0.0.1) is not on")
	if !strings.Contains(f.Fix, "network_mode: host") {
		t.Errorf("fix %q does not name host networking", f.Fix)
	}

	delete(ld.rewrite, bridge)
	r = runDoctor(t, agentLabConfig(l, ld))
	want(t, r, CheckAgentAddress, "agent-1.test", SeverityError, "on a Docker network (172.28.0.0/16), not reachable from here: no route to host")

	for _, pid := range []string{"slave(1)", "slave(1)@agent 1:5051", "slave(1)@127.0.0.1:0", "slave(1)@127.0.0.1:5051\nmore"} {
		setAgentPID(t, l, "agent-1.test", pid)
		r = runDoctor(t, agentLabConfig(l, ld))
		want(t, r, CheckAgentAddress, "agent-1.test", SeverityError, "names no ip:port")
	}
}
