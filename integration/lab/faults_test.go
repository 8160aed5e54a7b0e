package lab

// Faults made inside one namespace of a running lab cluster, one after the other. For each:
// nothing is lost (the edge routes, DNS answers from what it has), lodestar's status or the
// doctor says what is wrong, and everything recovers after the fault is lifted. Detection and
// recovery times are logged as "lab figure:" lines; the deadlines below are the documented
// bounds of docs/lab.md with room for a loaded machine, not measurements.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/cluster"
)

// Documented bounds (docs/lab.md), doubled or more for a loaded 2-core machine.
const (
	// zkRecoverDeadline: a member rejoins within initLimit·tickTime (20 s) plus an election.
	zkRecoverDeadline = 90 * time.Second
	// stallDetectDeadline: lodestar ends a stream silent for its idle timeout (15 s).
	stallDetectDeadline = 45 * time.Second
	// resyncDeadline: the next reconnect comes within the backoff cap (30 s), then a sync.
	resyncDeadline = 90 * time.Second
	// dnsDetectDeadline: a forwarded query fails after the upstream timeout (2 s).
	dnsDetectDeadline = 30 * time.Second
)

func TestLabCluster(t *testing.T) {
	skipUnlessLab(t)
	start := time.Now()
	c := startCluster(t)
	t.Logf("lab figure: cluster of %d hosts up in %s", len(c.lab.Hosts), time.Since(start).Round(time.Millisecond))
	waitFor(t, "the edge routing "+greenVhost, startDeadline, func() (bool, string) {
		err := c.routed()
		return err == nil, errString(err)
	})
	t.Run("doctor all green", c.testDoctorGreen)
	t.Run("zookeeper member partitioned", c.testZKPartition)
	t.Run("marathon stream stalls", c.testMarathonStall)
	t.Run("dns upstream drops packets", c.testUpstreamDrops)
	t.Run("edge cut off and back", c.testEdgeCutOff)
	t.Logf("lab figure: whole lab test %s", time.Since(start).Round(time.Millisecond))
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// doctorGreen waits until the doctor reports nothing but ok findings.
func (c *labCluster) doctorGreen(t *testing.T, deadline time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, "doctor all green", deadline, func() (bool, string) {
		r := c.doctor(t)
		return r.OK && len(r.Findings) > 0, r.notOK()
	})
}

func (c *labCluster) testDoctorGreen(t *testing.T) {
	c.doctorGreen(t, startDeadline)
	r := c.doctor(t)
	checks := map[string]int{}
	for _, f := range r.Findings {
		checks[f.Check]++
	}
	for _, want := range []string{cluster.CheckZKQuorum, cluster.CheckZKMember, cluster.CheckMesosLeader,
		cluster.CheckMarathon, cluster.CheckMarathonFramework, cluster.CheckAgentFlags, cluster.CheckLodestar} {
		if checks[want] == 0 {
			t.Errorf("the doctor made no %q check: %v", want, checks)
		}
	}
	if checks[cluster.CheckZKMember] != 3 || checks[cluster.CheckLodestar] != 2 {
		t.Errorf("the doctor checked %d ZooKeeper members and %d lodestars, want 3 and 2", checks[cluster.CheckZKMember], checks[cluster.CheckLodestar])
	}
}

// stillServing checks what must hold during every fault: the edge routes and the DNS
// lodestar answers its zone.
func (c *labCluster) stillServing(t *testing.T, during string) {
	t.Helper()
	if err := c.routed(); err != nil {
		t.Errorf("%s: the edge stopped routing: %v", during, err)
	}
	if ip, err := c.answerA("leader.mesos"); err != nil || ip != c.master.IP {
		t.Errorf("%s: leader.mesos = %q, %v; want %s", during, ip, err, c.master.IP)
	}
}

// testZKPartition takes the ensemble's leader off the network (ip link set eth0 down): the
// two others keep a quorum, the lodestars keep their sessions or move them, the doctor names
// the member, and it rejoins once its link is back.
func (c *labCluster) testZKPartition(t *testing.T) {
	modes := c.zkModes()
	victim := -1
	for i, m := range modes {
		if m == "leader" {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("no ZooKeeper leader: %q", modes)
	}
	h := c.zk[victim]
	t.Cleanup(func() { _ = h.LinkUp() })
	if err := h.LinkDown(); err != nil {
		t.Fatal(err)
	}
	faultAt := time.Now()
	detect := waitFor(t, "the doctor naming "+h.Name, zkRecoverDeadline, func() (bool, string) {
		r := c.doctor(t)
		for _, f := range r.Findings {
			if f.Check == cluster.CheckZKMember && strings.HasPrefix(f.Target, h.IP+":") && f.Severity != cluster.SeverityOK {
				return true, ""
			}
		}
		return false, r.notOK()
	})
	t.Logf("lab figure: ZooKeeper leader %s partitioned: the doctor names it after %s", h.Name, detect.Round(time.Millisecond))
	waitFor(t, "a new quorum of the two others", zkRecoverDeadline, func() (bool, string) {
		m := c.zkModes()
		leaders := 0
		for i, mode := range m {
			leaders += btoi(i != victim && mode == "leader")
		}
		return leaders == 1, strings.Join(m, ",")
	})
	t.Logf("lab figure: ZooKeeper: the two others lead again %s after the partition", time.Since(faultAt).Round(time.Millisecond))
	c.stillServing(t, "ZooKeeper leader partitioned")
	// A lodestar whose ZooKeeper session was on the lost member moves it to another.
	sessions := waitFor(t, "every source of both lodestars synced without error", zkRecoverDeadline, func() (bool, string) {
		for _, api := range []string{c.lbAPI, c.dnsAPI} {
			if bad := failingSources(c.client, api); bad != "" {
				return false, bad
			}
		}
		return true, ""
	})
	t.Logf("lab figure: ZooKeeper leader partitioned: both lodestars' sources fine at %s after the partition (waited %s for it)",
		time.Since(faultAt).Round(time.Millisecond), sessions.Round(time.Millisecond))
	if err := h.LinkUp(); err != nil {
		t.Fatal(err)
	}
	recovered := c.doctorGreen(t, zkRecoverDeadline)
	t.Logf("lab figure: ZooKeeper member %s back: doctor all green %s after its link came up", h.Name, recovered.Round(time.Millisecond))
	c.stillServing(t, "after the ZooKeeper partition")
}

// testMarathonStall drops every packet of the Marathon host: lodestar's event stream stalls
// (no FIN, no RST), lodestar notices the silence, keeps routing from what it has and says so
// in its sources, and resyncs once Marathon is reachable again.
func (c *labCluster) testMarathonStall(t *testing.T) {
	t.Cleanup(func() { _ = c.marathon.Heal() })
	if err := c.marathon.DropAll(); err != nil {
		t.Fatal(err)
	}
	detect, why := c.waitSourceError(t, c.client, c.lbAPI, "marathon", stallDetectDeadline)
	t.Logf("lab figure: Marathon partitioned: the edge's /v1/apps reports the Marathon source failing after %s: %s", detect.Round(time.Millisecond), why)
	if !silentPeer(why) {
		t.Errorf("the Marathon source's error %q is not a silent peer's: the partition should stall the stream, not close it", why)
	}
	c.doctorSays(t, cluster.CheckMarathon, "http://"+c.marathon.Addr(cluster.DefaultMarathonPort))
	c.stillServing(t, "Marathon partitioned")
	if err := c.marathon.Heal(); err != nil {
		t.Fatal(err)
	}
	recover := c.waitSourceOK(t, c.client, c.lbAPI, "marathon", resyncDeadline)
	t.Logf("lab figure: Marathon back: the edge's Marathon source synced again %s after the partition was lifted", recover.Round(time.Millisecond))
	c.waitSourceOK(t, c.client, c.dnsAPI, "marathon", resyncDeadline)
	c.stillServing(t, "after the Marathon partition")
}

// failingSources lists the sources of lodestar api that are not synced or report an error,
// "" when there are none.
func failingSources(from *Host, api string) string {
	code, body, err := get(from, api+"/v1/apps")
	if err != nil || code != http.StatusOK {
		return fmt.Sprintf("%s/v1/apps: %d %v", api, code, err)
	}
	var res struct {
		Sources []discovery.SourceStatus `json:"sources"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return err.Error()
	}
	var bad []string
	for _, s := range res.Sources {
		if !s.Synced || s.LastError != "" {
			bad = append(bad, fmt.Sprintf("%s %s: synced %t, error %q", api, s.Name, s.Synced, s.LastError))
		}
	}
	if len(res.Sources) == 0 {
		bad = append(bad, api+": no sources")
	}
	return strings.Join(bad, "; ")
}

// doctorSays checks that the doctor reports check on target as not ok.
func (c *labCluster) doctorSays(t *testing.T, check, target string) {
	t.Helper()
	r := c.doctor(t)
	for _, f := range r.Findings {
		if f.Check == check && strings.HasPrefix(f.Target, target) && f.Severity != cluster.SeverityOK {
			return
		}
	}
	t.Errorf("the doctor does not report %s %s as failing:\n%s", check, target, r.notOK())
}

// waitSourceError waits until lodestar api, read from host from, reports an error for
// source, with the apps it had still listed.
func (c *labCluster) waitSourceError(t *testing.T, from *Host, api, source string, deadline time.Duration) (time.Duration, string) {
	t.Helper()
	var lastError string
	took := waitFor(t, api+" reporting source "+source+" failing", deadline, func() (bool, string) {
		s, apps, err := sourceStatus(from, api, source)
		if err != nil {
			return false, err.Error()
		}
		if s.LastError != "" && !contains(apps, "/nginx-green") {
			t.Fatalf("%s: the apps were dropped while %s fails (%s): %q", api, source, s.LastError, apps)
		}
		lastError = s.LastError
		return s.LastError != "", strings.Join(apps, ",")
	})
	return took, lastError
}

// silentPeer reports whether a source's error is what a partition (a peer that stops
// answering) causes, rather than a refused or reset connection.
func silentPeer(err string) bool {
	for _, s := range []string{"event stream idle", "did not answer within the idle timeout", "timeout", "deadline exceeded"} {
		if strings.Contains(err, s) {
			return true
		}
	}
	return false
}

// waitSourceOK waits until source synced again without error.
func (c *labCluster) waitSourceOK(t *testing.T, from *Host, api, source string, deadline time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, api+" source "+source+" synced again", deadline, func() (bool, string) {
		s, _, err := sourceStatus(from, api, source)
		if err != nil {
			return false, err.Error()
		}
		return s.Synced && s.LastError == "", s.LastError
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// testUpstreamDrops makes the resolver host drop every query: names of the zone and a
// forwarded name still in the cache keep their answers, a new name fails, the upstream's
// failures count in lodestar's metrics, and forwarding works again once the drop is lifted.
func (c *labCluster) testUpstreamDrops(t *testing.T) {
	if ip, err := c.answerA("cached.example.org"); err != nil || ip != upstreamAnswer {
		t.Fatalf("cached.example.org before the fault = %q, %v; want %s", ip, err, upstreamAnswer)
	}
	upstream := `upstream="` + c.upstream.Addr(53) + `"`
	before, err := metricSum(c.client, c.dnsAPI, "lodestar_dnsserver_upstream_failures_total", upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.upstream.Heal() })
	if err := c.upstream.DropIncoming(); err != nil {
		t.Fatal(err)
	}
	n := 0
	detect := waitFor(t, "lodestar counting the upstream's failures", dnsDetectDeadline, func() (bool, string) {
		n++
		m, err := c.query("new"+itoa(n)+".example.org", dns.TypeA)
		if err == nil && len(m.Answer) > 0 {
			t.Fatalf("a name never asked before answered while the upstream drops every query: %v", m.Answer)
		}
		after, err := metricSum(c.client, c.dnsAPI, "lodestar_dnsserver_upstream_failures_total", upstream)
		return err == nil && after > before, errString(err)
	})
	t.Logf("lab figure: DNS upstream dropping: lodestar_dnsserver_upstream_failures_total rises after %s", detect.Round(time.Millisecond))
	if ip, err := c.answerA("cached.example.org"); err != nil || ip != upstreamAnswer {
		t.Errorf("cached.example.org during the fault = %q, %v; want %s from the cache", ip, err, upstreamAnswer)
	}
	c.stillServing(t, "DNS upstream dropping")
	if err := c.upstream.Heal(); err != nil {
		t.Fatal(err)
	}
	recover := waitFor(t, "a new name forwarded again", dnsDetectDeadline, func() (bool, string) {
		n++
		ip, err := c.answerA("back" + itoa(n) + ".example.org")
		return err == nil && ip == upstreamAnswer, errString(err)
	})
	t.Logf("lab figure: DNS upstream back: new names answered %s after the drop was lifted", recover.Round(time.Millisecond))
}

// testEdgeCutOff drops every packet of the edge host: clients cannot reach it (the fault is
// real), while inside it lodestar keeps HAProxy's servers and reports its sources failing;
// once the host is back, clients are routed again and the sources resync.
func (c *labCluster) testEdgeCutOff(t *testing.T) {
	t.Cleanup(func() { _ = c.lb.Heal() })
	if err := c.lb.DropAll(); err != nil {
		t.Fatal(err)
	}
	faultAt := time.Now()
	if err := c.routed(); err == nil {
		t.Fatal("the client still reaches the edge host it was cut off from")
	}
	// Read from the edge host itself: its own address is reached over lo.
	_, why := c.waitSourceError(t, c.lb, c.lbAPI, "marathon", stallDetectDeadline)
	t.Logf("lab figure: edge cut off: its /v1/apps reports the Marathon source failing after %s: %s", time.Since(faultAt).Round(time.Millisecond), why)
	c.doctorSays(t, cluster.CheckLodestar, c.lbAPI)
	code, cfg, err := get(c.lb, c.lbAPI+"/v1/haproxy/config")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/v1/haproxy/config on the cut-off edge: %d %v", code, err)
	}
	for _, p := range backendPorts(t)[:3] {
		if server := c.agent.IP + ":" + p; !strings.Contains(string(cfg), server) {
			t.Errorf("the cut-off edge's HAProxy configuration lost server %s:\n%s", server, cfg)
		}
	}
	if ip, err := c.answerA("leader.mesos"); err != nil || ip != c.master.IP {
		t.Errorf("DNS while the edge is cut off: leader.mesos = %q, %v", ip, err)
	}
	if err := c.lb.Heal(); err != nil {
		t.Fatal(err)
	}
	routedAgain := waitFor(t, "the edge routing again", resyncDeadline, func() (bool, string) {
		err := c.routed()
		return err == nil, errString(err)
	})
	t.Logf("lab figure: edge back: clients routed %s after the cut was lifted", routedAgain.Round(time.Millisecond))
	resync := c.waitSourceOK(t, c.client, c.lbAPI, "marathon", resyncDeadline)
	t.Logf("lab figure: edge back: its Marathon source synced %s after the cut was lifted", (routedAgain + resync).Round(time.Millisecond))
}

func itoa(i int) string { return strconv.Itoa(i) }
