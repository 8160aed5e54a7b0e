package lab

// The cluster of testdata/lab.yaml in a lab: `lodestar cluster render --format systemd` output
// run on namespace hosts (a three-member ZooKeeper ensemble, a DNS lodestar, an edge lodestar
// with HAProxy), fake Mesos and Marathon hosts, an agent host serving the tasks, a resolver
// host and a client host the test speaks from.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/cluster"
)

const (
	labTopology = "testdata/lab.yaml"
	// labApps is the cluster tests' Marathon fixture: /nginx-green (group external, vhost
	// nginx-green.example.com, three tasks) and /nginx-blue (group internal, not served here).
	labApps = "../cluster/testdata/apps.json"
	// greenVhost is the vhost the edge routes to /nginx-green.
	greenVhost = "nginx-green.example.com"
	// apiToken is the lodestars' API credential (api_auth_file).
	apiToken = "token:lab-secret"
	// marathonFrameworkID is Marathon's framework in the fake master's seed state.
	marathonFrameworkID = "20140703-014514-3041283216-5050-5348-0000"
	// smallJVM keeps the three ZooKeeper JVMs small and quick to start on a loaded machine;
	// the unit's own command line is unchanged (JAVA_TOOL_OPTIONS is read by every JVM).
	smallJVM = "JAVA_TOOL_OPTIONS=-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xms16m -Xmx256m"
	// startDeadline bounds each wait of the bring-up (a JVM, a quorum, a first sync).
	startDeadline = 90 * time.Second
)

// labHosts are the lab's hosts in address order: host i is 10.213.0.(11+i), as the topology
// says for the hosts it names.
var labHosts = []string{"zk1", "zk2", "zk3", "master1", "marathon1", "agent1", "lb1", "dns1", "upstream1", "client"}

// labCluster is a running lab cluster.
type labCluster struct {
	lab                                        *Lab
	top                                        *cluster.Topology
	topoPath                                   string
	bin                                        string // the lodestar binary
	client                                     *Host
	zk                                         []*Host
	zkProcs                                    []*Proc
	master, marathon, agent, lb, dns, upstream *Host
	lbAPI, dnsAPI                              string // base URLs
	dnsAddr                                    string // the DNS lodestar's ip:53
}

func skipUnlessLab(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			// CI runs as root with iproute2 installed: a lab that cannot run there is broken.
			t.Fatalf("multi-host lab not available in CI: %v", err)
		}
		t.Skipf("multi-host lab not available here: %v", err)
	}
	if _, err := os.Stat("/usr/share/java/zookeeper.jar"); err != nil {
		t.Fatalf("ZooKeeper is not installed (/usr/share/java/zookeeper.jar): run make deps-test")
	}
	for _, tool := range []string{"java", "haproxy", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run make deps-test", tool)
		}
	}
}

// startCluster renders the topology, installs each host's files under its root, runs the
// host-IP units, the ZooKeeper units, the fakes and the lodestar units, and returns once the
// ensemble has a quorum and both lodestars are ready.
func startCluster(t *testing.T) *labCluster {
	t.Helper()
	top, _, err := cluster.Load(labTopology)
	if err != nil {
		t.Fatal(err)
	}
	c := &labCluster{lab: New(t, labHosts...), top: top, topoPath: labTopology, bin: lodestarBinary(t)}
	l := c.lab
	c.client, c.master, c.marathon, c.agent = l.Host("client"), l.Host("master1"), l.Host("marathon1"), l.Host("agent1")
	c.lb, c.dns, c.upstream = l.Host("lb1"), l.Host("dns1"), l.Host("upstream1")
	c.zk = []*Host{l.Host("zk1"), l.Host("zk2"), l.Host("zk3")}
	c.lbAPI, c.dnsAPI, c.dnsAddr = "http://"+c.lb.Addr(8090), "http://"+c.dns.Addr(8123), c.dns.Addr(53)
	files, err := cluster.Render(top, cluster.FormatSystemd)
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range top.Hosts {
		h := l.Host(th.Name)
		if h.IP != th.IP {
			t.Fatalf("topology host %s has ip %s, its lab host %s: keep labHosts in the topology's order", th.Name, th.IP, h.IP)
		}
		if _, err := h.Install(files, th.Name); err != nil {
			t.Fatal(err)
		}
		// The host-IP unit checks the address is the host's and writes host.env.
		if _, err := h.StartUnit("lodestar-host-ip.service", UnitOptions{}, startDeadline); err != nil {
			t.Fatal(err)
		}
	}
	c.startZooKeeper(t)
	c.startFakes(t)
	c.startLodestars(t)
	return c
}

func (c *labCluster) startZooKeeper(t *testing.T) {
	t.Helper()
	for _, h := range c.zk {
		// What the zookeeper package installs beside the render's files: its log
		// configuration, and /var/lib/zookeeper/myid linked to /etc/zookeeper/conf/myid.
		if err := h.PackageFiles("/etc/zookeeper/conf", map[string]string{"/var/lib/zookeeper/myid": "/etc/zookeeper/conf/myid"}); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(h.Root, "var/log/zookeeper"), 0o755); err != nil {
			t.Fatal(err)
		}
		p, err := h.StartUnit("zookeeper.service", UnitOptions{Env: []string{smallJVM}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.zkProcs = append(c.zkProcs, p)
	}
	start := time.Now()
	waitFor(t, "a ZooKeeper quorum of 3", startDeadline, func() (bool, string) {
		modes := c.zkModes()
		leaders, followers := 0, 0
		for _, m := range modes {
			leaders += btoi(m == "leader")
			followers += btoi(m == "follower")
		}
		if leaders == 1 && followers == 2 {
			return true, ""
		}
		var b strings.Builder
		fmt.Fprintf(&b, "modes %q", modes)
		for _, p := range c.zkProcs {
			fmt.Fprintf(&b, "\n--- %s:\n%s", p.Name, p.LogTail(1500))
		}
		return false, b.String()
	})
	t.Logf("lab figure: ZooKeeper quorum of 3 hosts %s after the JVMs started", time.Since(start).Round(time.Millisecond))
	// The rendered unit sets ZooKeeper's root logger (Debian's log4j.properties has none
	// without its init script): a member started from it says what it does on its console.
	for _, p := range c.zkProcs {
		if tail := p.LogTail(200000); !strings.Contains(tail, " - INFO ") {
			t.Errorf("%s logged no INFO line from the rendered unit:\n%s", p.Name, tail)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// zkModes are the members' srvr modes, asked from the client host ("" when unreachable).
func (c *labCluster) zkModes() []string {
	modes := make([]string, len(c.zk))
	for i, h := range c.zk {
		out, err := c.fourLetter(h.Addr(2181), "srvr")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "Mode: "); ok {
				modes[i] = strings.TrimSpace(v)
			}
		}
	}
	return modes
}

func (c *labCluster) fourLetter(addr, word string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := c.client.Dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte(word)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// startFakes starts the agent (with the tasks' backends), the Mesos master (registered in the
// ensemble), Marathon and the resolver, each on its host.
func (c *labCluster) startFakes(t *testing.T) {
	t.Helper()
	ports := backendPorts(t)
	start := func(h *Host, role string, env ...string) {
		t.Helper()
		if _, err := h.StartRole(role, env...); err != nil {
			t.Fatal(err)
		}
	}
	start(c.agent, RoleAgent, "LAB_ADDR="+c.agent.Addr(cluster.DefaultAgentPort), "LAB_BACKEND_PORTS="+strings.Join(ports, ","),
		"LAB_FLAGS_DIR="+filepath.Join(c.agent.Root, "etc/mesos-slave"))
	start(c.master, RoleMesosMaster, "LAB_ADDR="+c.master.Addr(cluster.DefaultMasterPort),
		"LAB_AGENT="+c.agent.Addr(cluster.DefaultAgentPort), "LAB_ZK="+strings.Join(c.top.ZKServers(), ","), "LAB_ZK_PATH=/mesos")
	apps, err := filepath.Abs(labApps)
	if err != nil {
		t.Fatal(err)
	}
	start(c.marathon, RoleMarathon, "LAB_ADDR="+c.marathon.Addr(cluster.DefaultMarathonPort), "LAB_APPS="+apps,
		"LAB_TASK_HOST="+c.agent.IP, "LAB_FRAMEWORK_ID="+marathonFrameworkID)
	start(c.upstream, RoleDNSUpstream, "LAB_ADDR="+c.upstream.Addr(53))
}

// backendPorts are the ports of the fixture's tasks, which the agent host serves.
func backendPorts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(labApps)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Apps []struct {
			Tasks []struct {
				Ports []int `json:"ports"`
			} `json:"tasks"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, a := range doc.Apps {
		for _, task := range a.Tasks {
			for _, p := range task.Ports {
				ports = append(ports, strconv.Itoa(p))
			}
		}
	}
	return ports
}

func (c *labCluster) startLodestars(t *testing.T) {
	t.Helper()
	opts := UnitOptions{Programs: map[string]string{"/usr/local/bin/lodestar": c.bin}}
	for _, s := range []struct {
		host *Host
		unit string
		api  string
	}{{c.lb, "lodestar-lb-external.service", c.lbAPI}, {c.dns, "lodestar-dns.service", c.dnsAPI}} {
		auth := filepath.Join(s.host.Root, "etc/lodestar/lodestar-api-auth")
		if err := os.MkdirAll(filepath.Dir(auth), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(auth, []byte(apiToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := s.host.StartUnit(s.unit, opts, 0)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, s.unit+" ready", startDeadline, func() (bool, string) {
			if done, err := p.Exited(); done {
				t.Fatalf("%s exited: %v\n%s", p.Name, err, p.LogTail(4000))
			}
			code, body, err := get(c.client, s.api+"/readyz")
			return err == nil && code == http.StatusOK, fmt.Sprintf("%d %s %v", code, body, err)
		})
		t.Logf("lab figure: %s ready %s after start", s.unit, time.Since(start).Round(time.Millisecond))
	}
}

// get fetches url from inside host.
func get(from *Host, url string) (int, []byte, error) {
	resp, err := from.HTTPClient(5 * time.Second).Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// routed asks the edge, from the client host, for the green app's vhost: nil when a
// backend answered through HAProxy.
func (c *labCluster) routed() error {
	req, err := http.NewRequest(http.MethodGet, "http://"+c.lb.Addr(80)+"/", nil)
	if err != nil {
		return err
	}
	req.Host = greenVhost
	resp, err := c.client.HTTPClient(5 * time.Second).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), "backend ") {
		return fmt.Errorf("edge answered %d %q", resp.StatusCode, b)
	}
	return nil
}

// sourceStatus is source name's status in from's view of lodestar api (/v1/apps).
func sourceStatus(from *Host, api, name string) (discovery.SourceStatus, []string, error) {
	code, body, err := get(from, api+"/v1/apps")
	if err != nil {
		return discovery.SourceStatus{}, nil, err
	}
	var res struct {
		Apps []struct {
			ID string `json:"id"`
		} `json:"apps"`
		Sources []discovery.SourceStatus `json:"sources"`
	}
	if code != http.StatusOK {
		return discovery.SourceStatus{}, nil, fmt.Errorf("/v1/apps: %d %s", code, body)
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return discovery.SourceStatus{}, nil, fmt.Errorf("/v1/apps: %w", err)
	}
	var apps []string
	for _, a := range res.Apps {
		apps = append(apps, a.ID)
	}
	for _, s := range res.Sources {
		if s.Name == name {
			return s, apps, nil
		}
	}
	return discovery.SourceStatus{}, apps, fmt.Errorf("/v1/apps lists no source %q: %+v", name, res.Sources)
}

// query asks the DNS lodestar, from the client host, for name and qtype over UDP.
func (c *labCluster) query(name string, qtype uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.client.Dial(ctx, "udp", c.dnsAddr)
	if err != nil {
		return nil, err
	}
	co := &dns.Conn{Conn: conn}
	defer co.Close()
	_ = co.SetDeadline(time.Now().Add(4 * time.Second))
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	if err := co.WriteMsg(q); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

// answerA is the first A record of name, or an error naming the rcode.
func (c *labCluster) answerA(name string) (string, error) {
	m, err := c.query(name, dns.TypeA)
	if err != nil {
		return "", err
	}
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String(), nil
		}
	}
	return "", fmt.Errorf("%s: %s, no A record", name, dns.RcodeToString[m.Rcode])
}

// doctorReport is `lodestar cluster doctor --json`'s output.
type doctorReport struct {
	OK       bool              `json:"ok"`
	Findings []cluster.Finding `json:"findings"`
}

// doctor runs `lodestar cluster doctor --topology` on the client host.
func (c *labCluster) doctor(t *testing.T) doctorReport {
	t.Helper()
	topo, err := filepath.Abs(c.topoPath)
	if err != nil {
		t.Fatal(err)
	}
	// The master registered in ZooKeeper when the lab started: with the default flap window
	// (5 min) that is reported as a recent leader change.
	cmd := c.client.Command(c.bin, "cluster", "doctor", "--topology", topo, "--json", "--timeout", "3s", "--flap-window", "5s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // exit 1 is a report with findings; the JSON says
	var r doctorReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("doctor: %v\nstdout %s\nstderr %s", err, stdout.String(), stderr.String())
	}
	return r
}

// notOK lists the findings that are not ok, one line each.
func (r doctorReport) notOK() string {
	var b strings.Builder
	for _, f := range r.Findings {
		if f.Severity != cluster.SeverityOK {
			fmt.Fprintf(&b, "%s %s %s: %s\n", f.Severity, f.Check, f.Target, f.Message)
		}
	}
	return b.String()
}

// metricSum sums the samples of a counter from lodestar's /metrics whose labels contain
// every one of labels (`name="value"` strings).
func metricSum(from *Host, api, metric string, labels ...string) (float64, error) {
	code, body, err := get(from, api+"/metrics")
	if err != nil || code != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d %v", code, err)
	}
	sum := 0.0
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics line %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// waitFor polls cond every 250 ms until it holds, failing t with cond's last detail after
// deadline; it returns how long that took.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > deadline {
			t.Fatalf("%s: not within %s; last: %s", what, deadline, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
