package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// changeTimeout bounds the wait for a change to show in DNS. DNS.md asks for Marathon events
// within a second; the deadline is generous for a loaded VM, and the measured latency is logged.
const changeTimeout = 10 * time.Second

// Loopback addresses of the small cluster the tests build.
const (
	agentID   = "20150101-000000-1-5050-S1"
	marathonA = "127.0.0.21" // Marathon task hosts
	marathonB = "127.0.0.22"
)

// smallState is a Mesos state on loopback: one agent at agentIP, and the Marathon framework
// with one running task, api.shop (task id shop_api.0001), on host port 31100.
func smallState(agentIP string) *discovery.MesosState {
	return &discovery.MesosState{
		Hostname:  "master",
		LeaderPID: "master@127.0.0.10:5050",
		Agents:    []discovery.Agent{{ID: agentID, Hostname: agentIP, PID: "slave(1)@" + agentIP + ":5051"}},
		Frameworks: []discovery.Framework{{
			ID: "20150101-000000-1-5050-0000", Name: "marathon", PID: "scheduler(1)@127.0.0.30:8080", Hostname: "127.0.0.30",
			Tasks: []discovery.MesosTask{{
				ID: "shop_api.0001", Name: "api.shop", FrameworkID: "20150101-000000-1-5050-0000", SlaveID: agentID,
				State: discovery.StateRunning, Ports: []int{31100},
				Statuses: []discovery.MesosTaskStatus{{State: discovery.StateRunning, Timestamp: 1.7e9}},
			}},
		}},
	}
}

// writeState writes st as a /master/state document into the test's temp dir.
func writeState(t *testing.T, st *discovery.MesosState) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, fakemesos.EncodeState(st), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// query asks server one question over UDP with an in-process client (cheaper than dig, so the
// latency polls resolve milliseconds).
func query(server, name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(4096, false)
	r, _, err := c.Exchange(m, server)
	return r, err
}

// answerAddrs returns the sorted addresses of a reply's A and AAAA answers.
func answerAddrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

// wantAddrs checks a reply: NOERROR with exactly these addresses, or NXDOMAIN for none.
func wantAddrs(addrs ...string) func(*dns.Msg) error {
	slices.Sort(addrs)
	return func(r *dns.Msg) error {
		if len(addrs) == 0 {
			if r.Rcode != dns.RcodeNameError {
				return fmt.Errorf("rcode %s with %v, want NXDOMAIN", dns.RcodeToString[r.Rcode], answerAddrs(r))
			}
			return nil
		}
		if r.Rcode != dns.RcodeSuccess {
			return fmt.Errorf("rcode %s, want NOERROR with %v", dns.RcodeToString[r.Rcode], addrs)
		}
		if got := answerAddrs(r); !slices.Equal(got, addrs) {
			return fmt.Errorf("addresses %v, want %v", got, addrs)
		}
		return nil
	}
}

// waitAnswer polls server every 2 ms until the answer to name/qtype passes check and returns
// the time from since to that answer.
func waitAnswer(t *testing.T, server string, since time.Time, name string, qtype uint16, check func(*dns.Msg) error) time.Duration {
	t.Helper()
	deadline := time.Now().Add(changeTimeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := query(server, name, qtype)
		if err == nil {
			if err = check(r); err == nil {
				return time.Since(since)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: waited %s: %v", dns.TypeToString[qtype], name, changeTimeout, err)
		}
		<-tick.C
	}
}

// digAddrs runs dig for name's A records and checks status and answer.
func digAddrs(t *testing.T, server, name, wantStatus string, want ...string) {
	t.Helper()
	out := Dig(t, server, name, "A")
	got := DigRecords(out, "ANSWER", "A")
	slices.Sort(got)
	slices.Sort(want)
	if DigStatus(out) != wantStatus || !slices.Equal(got, want) {
		t.Fatalf("dig %s A: status %q, answers %v; want %s with %v\n%s", name, DigStatus(out), got, wantStatus, want, out)
	}
}

// startDNS starts `lodestar serve` as a DNS server only (no HAProxy), on 127.0.0.1 with a
// free port unless args give --dns-listen.
func startDNS(t *testing.T, args ...string) *Lodestar {
	t.Helper()
	args = withDefault(args, "--dns-listen", "127.0.0.1:0")
	ls := Start(t, append(args, "--haproxy=false")...)
	if ls.DNS == "" {
		t.Fatal("lodestar serving line without dns=")
	}
	return ls
}

// startMarathon starts a fake Marathon with app /shop/web (one port, no tasks).
func startMarathon(t *testing.T) *fakemarathon.Server {
	t.Helper()
	mar := fakemarathon.New()
	err := mar.AddApp(map[string]any{
		"id": "/shop/web", "instances": 0,
		"portDefinitions": []any{map[string]any{"port": 10000, "protocol": "tcp", "name": "http"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mar.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mar.Close)
	return mar
}

// startWithMarathon starts lodestar on mar and the small state, Mesos refresh 1 h (only
// Marathon's event stream brings changes), and waits until it is ready and subscribed.
func startWithMarathon(t *testing.T, mar *fakemarathon.Server, extra ...string) *Lodestar {
	t.Helper()
	args := append([]string{
		"--marathon", mar.URL(), "--mesos-state-file", writeState(t, smallState("127.0.0.31")), "--mesos-refresh", "1h",
		"--dns-forward=false",
	}, extra...)
	ls := startDNS(t, args...)
	ls.WaitReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := mar.WaitSubscribers(ctx, 1); err != nil {
		t.Fatalf("lodestar never subscribed to Marathon's events: %v", err)
	}
	return ls
}

// TestMarathonEventsInDNS: a task Marathon starts, turns unhealthy (with --dns-healthy-only),
// recovers and kills enters and leaves DNS from the event stream alone.
func TestMarathonEventsInDNS(t *testing.T) {
	t.Parallel()
	mar := startMarathon(t)
	ls := startWithMarathon(t, mar, "--dns-healthy-only")
	const name = "web-shop.marathon.mesos"

	// The Mesos state's own task is served: the state arrived.
	digAddrs(t, ls.DNS, "api-shop.marathon.mesos", "NOERROR", "127.0.0.31")
	digAddrs(t, ls.DNS, name, "NXDOMAIN")

	start := time.Now()
	t1, err := mar.AddTask("/shop/web", fakemarathon.TaskSpec{Host: marathonA, Ports: []int{31005}})
	if err != nil {
		t.Fatal(err)
	}
	lat := waitAnswer(t, ls.DNS, start, name, dns.TypeA, wantAddrs(marathonA))
	t.Logf("event→DNS latency, task started: %s", lat)
	digAddrs(t, ls.DNS, name, "NOERROR", marathonA)

	// SRV: the task's host port, the target resolving to the task's host, in the additional
	// section as well.
	out := Dig(t, ls.DNS, "_web-shop._tcp.marathon.mesos", "SRV")
	srvs := DigRecords(out, "ANSWER", "SRV")
	if DigStatus(out) != "NOERROR" || len(srvs) != 1 {
		t.Fatalf("dig _web-shop._tcp.marathon.mesos SRV: want one SRV record\n%s", out)
	}
	f := strings.Fields(srvs[0]) // priority weight port target
	if len(f) != 4 || f[2] != "31005" {
		t.Fatalf("SRV %q: want port 31005", srvs[0])
	}
	if add := DigRecords(out, "ADDITIONAL", "A"); !slices.Equal(add, []string{marathonA}) {
		t.Errorf("SRV additional section A records %v, want [%s]\n%s", add, marathonA, out)
	}
	digAddrs(t, ls.DNS, f[3], "NOERROR", marathonA)

	start = time.Now()
	t2, err := mar.AddTask("/shop/web", fakemarathon.TaskSpec{Host: marathonB, Ports: []int{31006}})
	if err != nil {
		t.Fatal(err)
	}
	lat = waitAnswer(t, ls.DNS, start, name, dns.TypeA, wantAddrs(marathonA, marathonB))
	t.Logf("event→DNS latency, second task started: %s", lat)

	start = time.Now()
	if err := mar.SetHealth(t2, false); err != nil {
		t.Fatal(err)
	}
	lat = waitAnswer(t, ls.DNS, start, name, dns.TypeA, wantAddrs(marathonA))
	t.Logf("event→DNS latency, task unhealthy (--dns-healthy-only): %s", lat)
	digAddrs(t, ls.DNS, name, "NOERROR", marathonA)

	// With the only healthy task killed, the name is gone.
	start = time.Now()
	if err := mar.KillTask(t1); err != nil {
		t.Fatal(err)
	}
	lat = waitAnswer(t, ls.DNS, start, name, dns.TypeA, wantAddrs())
	t.Logf("event→DNS latency, task killed: %s", lat)
	digAddrs(t, ls.DNS, name, "NXDOMAIN")
	out = Dig(t, ls.DNS, "_web-shop._tcp.marathon.mesos", "SRV")
	if DigStatus(out) != "NXDOMAIN" {
		t.Errorf("SRV of an app without eligible tasks: want NXDOMAIN\n%s", out)
	}

	start = time.Now()
	if err := mar.SetHealth(t2, true); err != nil {
		t.Fatal(err)
	}
	lat = waitAnswer(t, ls.DNS, start, name, dns.TypeA, wantAddrs(marathonB))
	t.Logf("event→DNS latency, task healthy again: %s", lat)
	digAddrs(t, ls.DNS, name, "NOERROR", marathonB)
}

// TestUnhealthyTaskKeptWithoutHealthyOnly: without --dns-healthy-only, Marathon's health
// reports do not change DNS (mesos-dns's behaviour).
func TestUnhealthyTaskKeptWithoutHealthyOnly(t *testing.T) {
	t.Parallel()
	mar := startMarathon(t)
	ls := startWithMarathon(t, mar)
	const name = "web-shop.marathon.mesos"

	t1, err := mar.AddTask("/shop/web", fakemarathon.TaskSpec{Host: marathonA, Ports: []int{31005}})
	if err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, ls.DNS, time.Now(), name, dns.TypeA, wantAddrs(marathonA))
	if err := mar.SetHealth(t1, false); err != nil {
		t.Fatal(err)
	}
	// Events are applied in order: once the next task shows, the health event has been too.
	if _, err := mar.AddTask("/shop/web", fakemarathon.TaskSpec{Host: marathonB, Ports: []int{31006}}); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, ls.DNS, time.Now(), name, dns.TypeA, wantAddrs(marathonA, marathonB))
	digAddrs(t, ls.DNS, name, "NOERROR", marathonA, marathonB)
}

// axfrDoc is GET /v1/axfr.
type axfrDoc struct {
	Domain, Mname, Rname string
	Serial               uint32
	TTL                  uint32
	RefreshSeconds       int
	Records              struct {
		As, AAAAs, SRVs map[string][]string
	}
}

func getAXFR(t *testing.T, ls *Lodestar) axfrDoc {
	t.Helper()
	var doc axfrDoc
	if code := GetJSON(t, ls.URL("/v1/axfr"), &doc); code != http.StatusOK {
		t.Fatalf("GET /v1/axfr: status %d", code)
	}
	return doc
}

// sourceError returns the last_error GET /v1/apps reports for a source.
func sourceError(t *testing.T, ls *Lodestar, source string) string {
	t.Helper()
	var doc struct {
		Sources []discovery.SourceStatus `json:"sources"`
	}
	GetJSON(t, ls.URL("/v1/apps"), &doc)
	for _, s := range doc.Sources {
		if s.Name == source {
			return s.LastError
		}
	}
	t.Fatalf("GET /v1/apps: no source %q in %+v", source, doc.Sources)
	return ""
}

// startMaster starts a fake Mesos master on addr serving st.
func startMaster(t *testing.T, addr string, st *discovery.MesosState) *fakemesos.Master {
	t.Helper()
	m := fakemesos.New()
	m.Addr = addr
	if err := m.SetMesosState(st); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestZooKeeperLeaderDetection: lodestar finds the leading master through a real ZooKeeper,
// follows a leader change at once (the Mesos refresh is 1 h), and keeps serving the last
// records when ZooKeeper goes away.
func TestZooKeeperLeaderDetection(t *testing.T) {
	t.Parallel()
	zk := zktest.Start(t) // its own: the test stops it
	m1 := startMaster(t, "127.0.0.11:0", smallState("127.0.0.41"))
	m2 := startMaster(t, "127.0.0.12:0", smallState("127.0.0.42"))
	m1.SetLeader(m1.HostPort())
	m2.SetLeader(m1.HostPort())

	reg, err := fakemesos.NewZKRegistrar(zk.Servers(), "/mesos")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	n1, err := reg.Register(fakemesos.NewMasterInfo(m1.HostPort()), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(fakemesos.NewMasterInfo(m2.HostPort()), false); err != nil {
		t.Fatal(err)
	}

	ls := startDNS(t, "--mesos-zk", zk.URL("/mesos"), "--mesos-refresh", "1h", "--dns-forward=false")
	ls.WaitReady(t)
	waitAnswer(t, ls.DNS, time.Now(), "leader.mesos", dns.TypeA, wantAddrs("127.0.0.11"))
	digAddrs(t, ls.DNS, "leader.mesos", "NOERROR", "127.0.0.11")
	digAddrs(t, ls.DNS, "slave.mesos", "NOERROR", "127.0.0.41")
	digAddrs(t, ls.DNS, "master.mesos", "NOERROR", "127.0.0.11", "127.0.0.12")
	if doc := getAXFR(t, ls); !slices.Equal(doc.Records.As["slave.mesos."], []string{"127.0.0.41"}) ||
		!slices.Equal(doc.Records.As["leader.mesos."], []string{"127.0.0.11"}) {
		t.Fatalf("/v1/axfr: slave.mesos. %v, leader.mesos. %v; want the first master's state (agent 127.0.0.41, leader 127.0.0.11)",
			doc.Records.As["slave.mesos."], doc.Records.As["leader.mesos."])
	}

	// The first master dies: its node goes, the second one leads.
	m1.SetLeader(m2.HostPort())
	m2.SetLeader(m2.HostPort())
	start := time.Now()
	if err := reg.Unregister(n1); err != nil {
		t.Fatal(err)
	}
	lat := waitAnswer(t, ls.DNS, start, "slave.mesos", dns.TypeA, wantAddrs("127.0.0.42"))
	t.Logf("ZooKeeper leader change→DNS latency: %s", lat)
	digAddrs(t, ls.DNS, "leader.mesos", "NOERROR", "127.0.0.12")
	digAddrs(t, ls.DNS, "slave.mesos", "NOERROR", "127.0.0.42")

	// ZooKeeper goes away. lodestar notices, polls the master it knows once more, and keeps
	// serving.
	polls := m2.Requests("")
	zk.Stop()
	ls.WaitLog(t, changeTimeout, "Mesos leader detection through ZooKeeper failing")
	ctx, cancel := context.WithTimeout(context.Background(), changeTimeout)
	defer cancel()
	if err := m2.WaitRequests(ctx, "", polls+1); err != nil {
		t.Fatalf("no poll of the known leader after ZooKeeper went away: %v", err)
	}
	// Polls of the known leader succeed, so the source stays synced (ready, answering);
	// ZooKeeper's failure shows in the log (waited for above) and in zookeeper_up.
	Eventually(t, changeTimeout, "the poll of the known leader to count as a successful sync", func() error {
		if e := sourceError(t, ls, "mesos"); e != "" {
			return fmt.Errorf("last_error %q", e)
		}
		return nil
	})
	digAddrs(t, ls.DNS, "leader.mesos", "NOERROR", "127.0.0.12")
	digAddrs(t, ls.DNS, "slave.mesos", "NOERROR", "127.0.0.42")
	digAddrs(t, ls.DNS, "api-shop.marathon.mesos", "NOERROR", "127.0.0.42")
	doc := getAXFR(t, ls)
	if !slices.Equal(doc.Records.As["slave.mesos."], []string{"127.0.0.42"}) ||
		!slices.Equal(doc.Records.As["api-shop.marathon.mesos."], []string{"127.0.0.42"}) {
		t.Fatalf("/v1/axfr with ZooKeeper down: slave.mesos. %v, api-shop.marathon.mesos. %v; want 127.0.0.42",
			doc.Records.As["slave.mesos."], doc.Records.As["api-shop.marathon.mesos."])
	}
	if ls.Exited() {
		t.Fatal("lodestar exited when ZooKeeper went away")
	}
}

// upstream is a tiny DNS server on 127.0.0.1 that answers example.test. A 127.0.0.99 and
// NXDOMAIN for every other name, and counts the queries it gets.
type upstream struct {
	addr    string
	queries atomic.Int64
	srv     *dns.Server
	done    chan struct{}
	once    sync.Once
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: pc.LocalAddr().String(), done: make(chan struct{})}
	started := make(chan struct{})
	u.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(u.serve), NotifyStartedFunc: func() { close(started) }}
	go func() {
		defer close(u.done)
		_ = u.srv.ActivateAndServe()
	}()
	select {
	case <-started:
	case <-u.done:
		t.Fatal("upstream DNS server did not start")
	}
	t.Cleanup(u.stop)
	return u
}

func (u *upstream) serve(w dns.ResponseWriter, r *dns.Msg) {
	u.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	if strings.EqualFold(q.Name, "example.test.") {
		if q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Name + " 30 IN A 127.0.0.99")
			m.Answer = append(m.Answer, rr)
		}
	} else {
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

// stop shuts the server down and closes its socket; later queries to it are refused.
func (u *upstream) stop() {
	u.once.Do(func() {
		_ = u.srv.Shutdown()
		<-u.done
	})
}

// TestForwarding: names outside the zone go to the upstream from the start, before any Mesos
// state exists; a dead upstream gives SERVFAIL; clients outside --dns-forward-allow are
// refused without a query upstream.
func TestForwarding(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	closed := FreePort(t) // nothing listens: no Mesos state ever arrives
	ls := startDNS(t, "--mesos-master", fmt.Sprintf("127.0.0.1:%d", closed), "--mesos-refresh", "1h",
		"--dns-upstream", up.addr, "--dns-forward-allow", "127.0.0.1/32",
		"--dns-upstream-timeout", "1s")

	out := Dig(t, ls.DNS, "example.test", "A")
	if got := DigRecords(out, "ANSWER", "A"); DigStatus(out) != "NOERROR" || !slices.Equal(got, []string{"127.0.0.99"}) {
		t.Fatalf("dig example.test through lodestar: want NOERROR 127.0.0.99\n%s", out)
	}
	out = Dig(t, ls.DNS, "other.test", "A")
	if DigStatus(out) != "NXDOMAIN" {
		t.Errorf("dig other.test: want the upstream's NXDOMAIN\n%s", out)
	}
	// There was no Mesos state when forwarding answered, and still is none.
	if code, body, err := Get(ls.URL("/readyz")); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %d %s %v; want 503 while the Mesos master cannot be reached", code, body, err)
	}
	// Names in the zone: SERVFAIL until the first Mesos state (dnsserver.New's contract), so
	// resolvers retry instead of caching an NXDOMAIN for a name that may well exist.
	out = Dig(t, ls.DNS, "leader.mesos", "A")
	if DigStatus(out) != "SERVFAIL" {
		t.Errorf("dig leader.mesos before any source has synced: want SERVFAIL (dnsserver.New: SERVFAIL until the first record index, so resolvers do not cache an NXDOMAIN)\n%s", out)
	}

	// A client outside --dns-forward-allow is refused, and nothing goes upstream.
	before := up.queries.Load()
	out = Dig(t, ls.DNS, "example.test", "A", "-b", "127.0.0.2")
	if DigStatus(out) != "REFUSED" {
		t.Errorf("dig -b 127.0.0.2 example.test (outside --dns-forward-allow 127.0.0.1/32): want REFUSED\n%s", out)
	}
	if n := up.queries.Load() - before; n != 0 {
		t.Errorf("a refused query reached the upstream %d times", n)
	}

	up.stop()
	// Forwarded answers are cached (--dns-cache-size's default): the name asked before still
	// answers; a question not asked before fails.
	out = Dig(t, ls.DNS, "example.test", "A")
	if got := DigRecords(out, "ANSWER", "A"); DigStatus(out) != "NOERROR" || !slices.Equal(got, []string{"127.0.0.99"}) {
		t.Errorf("dig example.test with the upstream down: want the cached 127.0.0.99\n%s", out)
	}
	out = Dig(t, ls.DNS, "www.example.test", "A")
	if DigStatus(out) != "SERVFAIL" {
		t.Errorf("dig www.example.test with the upstream down: want SERVFAIL\n%s", out)
	}
}

// TestMesosDNSAPI: mesos-dns's HTTP API, served by lodestar's API, against a Mesos master
// that wants basic auth.
func TestMesosDNSAPI(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "127.0.0.1:0", smallState("127.0.0.31"))
	m.SetAuth("user", "s3cret")
	ls := startDNS(t, "--mesos-master", m.HostPort(), "--mesos-auth", "user:s3cret", "--mesos-refresh", "1h",
		"--dns-forward=false")
	ls.WaitReady(t)
	waitAnswer(t, ls.DNS, time.Now(), "api-shop.marathon.mesos", dns.TypeA, wantAddrs("127.0.0.31"))

	t.Run("hosts", func(t *testing.T) {
		var hosts []map[string]string
		code := GetJSON(t, ls.URL("/v1/hosts/api-shop.marathon.mesos"), &hosts)
		want := []map[string]string{{"host": "api-shop.marathon.mesos.", "ip": "127.0.0.31"}}
		if code != http.StatusOK || !equalJSON(hosts, want) {
			t.Errorf("/v1/hosts/api-shop.marathon.mesos: %d %v, want 200 %v", code, hosts, want)
		}
		code = GetJSON(t, ls.URL("/v1/hosts/leader.mesos"), &hosts)
		if code != http.StatusOK || len(hosts) != 1 || hosts[0]["ip"] != "127.0.0.1" {
			t.Errorf("/v1/hosts/leader.mesos: %d %v, want the master at 127.0.0.1", code, hosts)
		}
		assertEmpty404(t, ls.URL("/v1/hosts/nope.marathon.mesos"))
	})

	t.Run("services", func(t *testing.T) {
		var svcs []map[string]string
		const svc = "_api-shop._tcp.marathon.mesos"
		code := GetJSON(t, ls.URL("/v1/services/"+svc), &svcs)
		if code != http.StatusOK || len(svcs) != 1 {
			t.Fatalf("/v1/services/%s: %d %v, want 200 and one service", svc, code, svcs)
		}
		s := svcs[0]
		if s["service"] != svc || s["ip"] != "127.0.0.31" || s["port"] != "31100" || !strings.HasPrefix(s["host"], "api-shop-") {
			t.Errorf("/v1/services/%s: %v, want service %s, host api-shop-…, ip 127.0.0.31, port \"31100\"", svc, s, svc)
		}
		assertEmpty404(t, ls.URL("/v1/services/_nope._tcp.marathon.mesos"))
	})

	t.Run("axfr", func(t *testing.T) {
		var raw map[string]json.RawMessage
		GetJSON(t, ls.URL("/v1/axfr"), &raw)
		keys := mapKeys(raw)
		if want := []string{"Domain", "Mname", "Records", "RefreshSeconds", "Rname", "Serial", "TTL"}; !slices.Equal(keys, want) {
			t.Errorf("/v1/axfr fields %v, want mesos-dns's %v", keys, want)
		}
		var recs map[string]json.RawMessage
		if err := json.Unmarshal(raw["Records"], &recs); err != nil {
			t.Fatalf("/v1/axfr Records: %v", err)
		}
		if keys, want := mapKeys(recs), []string{"AAAAs", "As", "SRVs"}; !slices.Equal(keys, want) {
			t.Errorf("/v1/axfr Records fields %v, want %v", keys, want)
		}
		doc := getAXFR(t, ls)
		if doc.Domain != "mesos" || doc.Mname != "ns1.mesos." || doc.Rname != "root.ns1.mesos." ||
			doc.Serial == 0 || doc.TTL != 60 || doc.RefreshSeconds != 3600 {
			t.Errorf("/v1/axfr header %+v, want Domain mesos, Mname ns1.mesos., Rname root.ns1.mesos., a serial, TTL 60, RefreshSeconds 3600", doc)
		}
		if got := doc.Records.As["api-shop.marathon.mesos."]; !slices.Equal(got, []string{"127.0.0.31"}) {
			t.Errorf("As[api-shop.marathon.mesos.] = %v, want [127.0.0.31]", got)
		}
		if got := doc.Records.As["ns1.mesos."]; !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Errorf("As[ns1.mesos.] = %v, want lodestar's listen address [127.0.0.1]", got)
		}
		srv := doc.Records.SRVs["_api-shop._tcp.marathon.mesos."]
		if len(srv) != 1 || !strings.HasSuffix(srv[0], ":31100") {
			t.Errorf("SRVs[_api-shop._tcp.marathon.mesos.] = %v, want one target:31100", srv)
		}
		// The SOA serial of DNS is the one of /v1/axfr.
		r, err := query(ls.DNS, "mesos.", dns.TypeSOA)
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("SOA mesos.: %v %v", r, err)
		}
		if soa, ok := r.Answer[0].(*dns.SOA); !ok || soa.Serial != doc.Serial {
			t.Errorf("SOA %v, want serial %d of /v1/axfr", r.Answer[0], doc.Serial)
		}
	})

	t.Run("config", func(t *testing.T) {
		code, body, err := Get(ls.URL("/v1/config"))
		if err != nil || code != http.StatusOK {
			t.Fatalf("/v1/config: %d %v", code, err)
		}
		if strings.Contains(string(body), "s3cret") {
			t.Errorf("/v1/config shows the Mesos password:\n%s", body)
		}
		var cfg struct {
			MesosCredentials struct{ Principal string }
			Masters          []string
			Domain           string
		}
		if err := json.Unmarshal(body, &cfg); err != nil {
			t.Fatalf("/v1/config: %v\n%s", err, body)
		}
		if cfg.MesosCredentials.Principal != "user" || cfg.Domain != "mesos" || !slices.Equal(cfg.Masters, []string{m.HostPort()}) {
			t.Errorf("/v1/config: %+v, want principal user, domain mesos, masters [%s]\n%s", cfg, m.HostPort(), body)
		}
	})

	t.Run("version", func(t *testing.T) {
		var v struct{ Service, URL, Version string }
		if code := GetJSON(t, ls.URL("/v1/version"), &v); code != http.StatusOK {
			t.Fatalf("/v1/version: status %d", code)
		}
		res := Run(t, "version")
		if res.Code != 0 || strings.TrimSpace(res.Stdout) != "lodestar "+v.Version || v.Service == "" || v.URL == "" {
			t.Errorf("/v1/version %+v; lodestar version printed %q (exit %d): want the same version, a service and a URL", v, res.Stdout, res.Code)
		}
	})

	t.Run("enumerate", func(t *testing.T) {
		var e struct {
			Frameworks []struct {
				Name  string
				Tasks []struct {
					Name, ID string
					Records  []struct{ Name, Host, Rtype string }
				}
			}
		}
		GetJSON(t, ls.URL("/v1/enumerate"), &e)
		for _, f := range e.Frameworks {
			for _, task := range f.Tasks {
				if f.Name == "marathon" && task.ID == "shop_api.0001" {
					for _, r := range task.Records {
						if r.Name == "api-shop.marathon.mesos." && r.Rtype == "A" && r.Host == "127.0.0.31" {
							return
						}
					}
				}
			}
		}
		t.Errorf("/v1/enumerate: no A record api-shop.marathon.mesos. 127.0.0.31 for task shop_api.0001 of marathon: %+v", e)
	})
}

// assertEmpty404 checks that url answers 404 with an empty JSON list.
func assertEmpty404(t *testing.T, url string) {
	t.Helper()
	code, body, err := Get(url)
	if err != nil || code != http.StatusNotFound || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("GET %s: %d %q %v, want 404 []", url, code, body, err)
	}
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// equalJSON compares two values by their JSON encoding.
func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// TestRecordsCommand: `lodestar records` prints mesos-dns's records of the fixture state, the
// same that `lodestar serve` serves on it.
func TestRecordsCommand(t *testing.T) {
	t.Parallel()
	// mesos-dns's state fixture (shared/fixtures/mesos/state_fake.json), as fakemesos embeds it.
	state := filepath.Join(t.TempDir(), "state_fake.json")
	if err := os.WriteFile(state, fakemesos.SeedState, 0o644); err != nil {
		t.Fatal(err)
	}

	res := Run(t, "records", "--mesos-state-file", state, "--format", "axfr")
	if res.Code != 0 {
		t.Fatalf("lodestar records --format axfr: exit %d\n%s", res.Code, res.Stderr)
	}
	var recs axfrDoc
	if err := json.Unmarshal([]byte(res.Stdout), &recs); err != nil {
		t.Fatalf("lodestar records --format axfr: not JSON: %v\n%s", err, res.Stdout)
	}
	// Records the fixture implies: a task on its agent's IP, a task with a Mesos-containerizer
	// IP label, an IPv6 task from netinfo, the leader from the state's pid, every agent, the
	// SRV of a task's two host ports.
	wantA := map[string][]string{
		"car-store.marathon.mesos.": {"1.2.3.11"},
		"nginx.marathon.mesos.":     {"10.3.0.3"},
		"leader.mesos.":             {"1.2.3.4"},
		"slave.mesos.":              {"1.2.3.10", "1.2.3.11", "1.2.3.12"},
	}
	for name, want := range wantA {
		if got := recs.Records.As[name]; !slices.Equal(got, want) {
			t.Errorf("records As[%s] = %v, want %v", name, got, want)
		}
	}
	if got := recs.Records.AAAAs["toy-store.ipv6-framework.mesos."]; !slices.Contains(got, "fd01:b::1:8000:2") {
		t.Errorf("records AAAAs[toy-store.ipv6-framework.mesos.] = %v, want fd01:b::1:8000:2 among them", got)
	}
	if got := recs.Records.SRVs["_car-store._tcp.marathon.mesos."]; len(got) != 2 ||
		!strings.HasSuffix(got[0], ":31364") || !strings.HasSuffix(got[1], ":31365") {
		t.Errorf("records SRVs[_car-store._tcp.marathon.mesos.] = %v, want ports 31364 and 31365", got)
	}
	if recs.Domain != "mesos" || recs.Mname != "ns1.mesos." || recs.Serial == 0 {
		t.Errorf("records header %+v", recs)
	}

	// The table lists the same records, one a line.
	res = Run(t, "records", "--mesos-state-file", state, "--format", "table")
	if res.Code != 0 {
		t.Fatalf("lodestar records --format table: exit %d\n%s", res.Code, res.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	total := 0
	for _, m := range []map[string][]string{recs.Records.As, recs.Records.AAAAs, recs.Records.SRVs} {
		for _, v := range m {
			total += len(v)
		}
	}
	if len(lines) != total {
		t.Errorf("records table has %d lines, the axfr %d records", len(lines), total)
	}
	if !slices.ContainsFunc(lines, func(l string) bool {
		f := strings.Fields(l)
		return len(f) == 3 && f[0] == "car-store.marathon.mesos." && f[1] == "A" && f[2] == "1.2.3.11"
	}) {
		t.Errorf("records table has no line \"car-store.marathon.mesos. A 1.2.3.11\":\n%s", res.Stdout)
	}

	// serve on the same file serves the same records, plus ns1 (its own listen address).
	ls := startDNS(t, "--mesos-state-file", state, "--dns-forward=false")
	ls.WaitReady(t)
	Eventually(t, changeTimeout, "serve's /v1/axfr to equal records' output", func() error {
		doc := getAXFR(t, ls)
		if !slices.Equal(doc.Records.As["ns1.mesos."], []string{"127.0.0.1"}) {
			return fmt.Errorf("As[ns1.mesos.] = %v, want [127.0.0.1]", doc.Records.As["ns1.mesos."])
		}
		delete(doc.Records.As, "ns1.mesos.")
		delete(recs.Records.As, "ns1.mesos.")
		if diff := recordsDiff(recs.Records.As, doc.Records.As); diff != "" {
			return fmt.Errorf("As differ (records vs serve):\n%s", diff)
		}
		if diff := recordsDiff(recs.Records.AAAAs, doc.Records.AAAAs); diff != "" {
			return fmt.Errorf("AAAAs differ (records vs serve):\n%s", diff)
		}
		if diff := recordsDiff(recs.Records.SRVs, doc.Records.SRVs); diff != "" {
			return fmt.Errorf("SRVs differ (records vs serve):\n%s", diff)
		}
		return nil
	})
}

// recordsDiff lists the names whose values differ between two record maps.
func recordsDiff(a, b map[string][]string) string {
	var out []string
	for _, name := range mapKeys(a) {
		if !slices.Equal(a[name], b[name]) {
			out = append(out, fmt.Sprintf("  %s: %v vs %v", name, a[name], b[name]))
		}
	}
	for _, name := range mapKeys(b) {
		if _, ok := a[name]; !ok {
			out = append(out, fmt.Sprintf("  %s: (none) vs %v", name, b[name]))
		}
	}
	return strings.Join(out, "\n")
}
