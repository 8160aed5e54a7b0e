package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Severity says how bad a Finding is.
type Severity string

// Severities, from good to bad.
const (
	SeverityOK    Severity = "ok"
	SeverityWarn  Severity = "warn"
	SeverityError Severity = "error"
)

func (s Severity) rank() int {
	switch s {
	case SeverityWarn:
		return 1
	case SeverityError:
		return 2
	}
	return 0
}

// Finding is one result of the doctor: what was checked, on which target, how it went, and what
// to do about it when it is not ok.
type Finding struct {
	// Check names the check, e.g. "zookeeper quorum", "mesos leader", "agent flags".
	Check string `json:"check"`
	// Target is what was probed: a host:port, a URL, an agent's hostname.
	Target   string   `json:"target"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Fix says what to change; empty for ok findings.
	Fix string `json:"fix,omitempty"`
}

// Proxy is a leader-proxy address to check: a listener (HAProxy, lodestar) that forwards to the
// current leader of Name ("mesos" or "marathon"; any other name gets a TCP connect check).
type Proxy struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// Targets are the parts of a cluster the doctor probes. Empty lists skip their checks.
type Targets struct {
	// ZooKeeper are the ensemble's members as host:port (client port).
	ZooKeeper []string
	// MesosZKPath is the Mesos masters' ZooKeeper path (e.g. /mesos). With ZooKeeper set, the
	// doctor reads the masters' json.info_ nodes: the masters to probe when MesosMasters is
	// empty, and when the current leader registered.
	MesosZKPath string
	// MesosMasters are the masters as host:port or base URLs (http://host:5050).
	MesosMasters []string
	// Marathon are Marathon instances' base URLs (http://host:8080).
	Marathon []string
	// MarathonIdentity is the principal and role Marathon should run with (the topology's,
	// which its masters' ACLs grant); a Marathon running with others is a warning. Empty
	// fields are not compared.
	MarathonIdentity MarathonConfig
	// Proxies are leader-proxy addresses that must reach the current leader.
	Proxies []Proxy
	// Lodestar are lodestar API base URLs; each must answer /readyz with 200.
	Lodestar []string
}

// Empty reports whether there is nothing to probe.
func (t Targets) Empty() bool {
	return len(t.ZooKeeper) == 0 && len(t.MesosMasters) == 0 && len(t.Marathon) == 0 &&
		len(t.Proxies) == 0 && len(t.Lodestar) == 0
}

// Resolver looks a host name up, returning its addresses; tests inject one so that no DNS
// query leaves the machine.
type Resolver func(ctx context.Context, host string) ([]string, error)

// Config configures a Doctor.
type Config struct {
	Targets
	// Resolver resolves masters' and agents' host names; nil means net.DefaultResolver.
	Resolver Resolver
	// Client makes every HTTP request; nil means a client with Timeout that does not follow
	// redirects (the doctor reads Mesos's redirects to learn whom a master names leader).
	Client *http.Client
	// Timeout bounds each probe (one HTTP request, one ZooKeeper command); default 5s.
	Timeout time.Duration
	// FlapWindow: a Mesos leader elected more recently than this is reported as a leader
	// change (flapping); default 5m.
	FlapWindow time.Duration
	// MinExecutorTimeout is the least executor_registration_timeout an agent should have
	// (docker pulls take minutes); default 5m.
	MinExecutorTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Dial opens the TCP connections that check agents' advertised addresses; tests inject
	// one so that no connection leaves the machine. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// MasterWorkDir is the work_dir of a Mesos master on the doctor's own host, checked
	// against the masters' addresses (doctor_workdir.go); "" skips the check.
	MasterWorkDir string

	// Smoke launches a one-instance app through Marathon, waits until its task runs and
	// deletes it; with no Marathon given, it runs a task through the leading Mesos master's
	// scheduler API instead (doctor_smoke_mesos.go).
	Smoke bool
	// SmokeTimeout bounds the wait for the smoke app's task to run; default 2m.
	SmokeTimeout time.Duration
	// SmokePoll is how often the smoke app is polled; default 1s.
	SmokePoll time.Duration
	// SmokeAppID is the smoke app's id; default /lodestar-doctor-smoke-<time>.
	SmokeAppID string
	// SmokeFramework is the smoke framework's user, role and credentials (Mesos path only).
	SmokeFramework SmokeFramework
}

// Doctor probes a live cluster. Create it with New; Run may be called any number of times.
type Doctor struct {
	cfg Config
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Doctor, error) {
	if cfg.Targets.Empty() {
		return nil, errors.New("cluster doctor: nothing to check: give ZooKeeper members, Mesos masters, Marathon URLs, proxies or lodestar URLs")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.FlapWindow <= 0 {
		cfg.FlapWindow = 5 * time.Minute
	}
	if cfg.MinExecutorTimeout <= 0 {
		cfg.MinExecutorTimeout = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver.LookupHost
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Smoke {
		if len(cfg.Marathon) == 0 && len(cfg.MesosMasters) == 0 && (len(cfg.ZooKeeper) == 0 || cfg.MesosZKPath == "") {
			return nil, errors.New("cluster doctor: the smoke test launches its task through Marathon or a Mesos master: give Marathon URLs or Mesos masters")
		}
		fw, err := checkSmokeFramework(cfg.SmokeFramework)
		if err != nil {
			return nil, err
		}
		cfg.SmokeFramework = fw
		if cfg.SmokeAppID != "" {
			if err := checkSmokeAppID(cfg.SmokeAppID); err != nil {
				return nil, err
			}
		}
		if cfg.SmokeTimeout <= 0 {
			cfg.SmokeTimeout = defaultSmokeTimeout
		}
		if cfg.SmokePoll <= 0 {
			cfg.SmokePoll = defaultSmokePoll
		}
	}
	for _, p := range cfg.Proxies {
		if p.Name == "" || p.Addr == "" {
			return nil, fmt.Errorf("cluster doctor: proxy %q=%q: want a name and an address", p.Name, p.Addr)
		}
	}
	return &Doctor{cfg: cfg}, nil
}

// Report is the outcome of one Run: its findings in check order.
type Report struct {
	Time     time.Time `json:"time"`
	Findings []Finding `json:"findings"`
}

// Worst is the worst severity among the findings (ok when there are none).
func (r Report) Worst() Severity {
	w := SeverityOK
	for _, f := range r.Findings {
		if f.Severity.rank() > w.rank() {
			w = f.Severity
		}
	}
	return w
}

// OK reports whether every finding is ok: no warning, no error.
func (r Report) OK() bool { return r.Worst() == SeverityOK }

// Count returns how many findings have severity s.
func (r Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Find returns the findings of check (every check when empty) whose severity is s (every
// severity when empty).
func (r Report) Find(check string, s Severity) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if (check == "" || f.Check == check) && (s == "" || f.Severity == s) {
			out = append(out, f)
		}
	}
	return out
}

// WriteTable writes the findings as an aligned table, each fix on the line below its finding,
// and a summary line.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tCHECK\tTARGET\tMESSAGE")
	for _, f := range r.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.ToUpper(string(f.Severity)), f.Check, f.Target, oneLine(f.Message))
		if f.Fix != "" {
			fmt.Fprintf(tw, "\t\t\t  fix: %s\n", oneLine(f.Fix))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d ok, %s, %s\n",
		r.Count(SeverityOK), plural(r.Count(SeverityWarn), "warning"), plural(r.Count(SeverityError), "error"))
	return err
}

// WriteJSON writes the report as one indented JSON object: "ok", "worst", "time" and
// "findings".
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	findings := r.Findings
	if findings == nil {
		findings = []Finding{}
	}
	return enc.Encode(struct {
		OK       bool      `json:"ok"`
		Worst    Severity  `json:"worst"`
		Time     time.Time `json:"time"`
		Findings []Finding `json:"findings"`
	}{r.OK(), r.Worst(), r.Time, findings})
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// findings collects findings from concurrent checks.
type findings struct {
	mu   sync.Mutex
	list []Finding
	seen map[string]bool
}

func (fs *findings) add(f Finding) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.list = append(fs.list, f)
}

// first reports whether key is seen for the first time: a host name named by several masters
// is checked once.
func (fs *findings) first(key string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.seen[key] {
		return false
	}
	if fs.seen == nil {
		fs.seen = map[string]bool{}
	}
	fs.seen[key] = true
	return true
}

// checkOrder is the order findings appear in, whatever order the checks finished in.
var checkOrder = []string{
	CheckZKMember, CheckZKQuorum, CheckMesosZK, CheckMesosMaster, CheckMesosLeader, CheckMesosFlapping,
	CheckHostname, CheckAgentAddress, CheckAgentFlags, CheckMesosACLs, CheckMarathon, CheckMarathonLeader, CheckMarathonConfig,
	CheckMarathonFramework, CheckSmoke, CheckProxy, CheckLodestar,
}

func sortFindings(list []Finding) {
	slices.SortStableFunc(list, func(a, b Finding) int {
		ia, ib := slices.Index(checkOrder, a.Check), slices.Index(checkOrder, b.Check)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a.Target, b.Target)
	})
}

// Run probes every target and returns the findings. It never fails: an unreachable target is a
// finding. Independent parts (ZooKeeper and Mesos, Marathon, lodestar) are probed concurrently.
func (d *Doctor) Run(ctx context.Context) Report {
	var out findings
	var mesos mesosResult
	var marathon marathonResult
	var wg sync.WaitGroup
	wg.Go(func() { mesos = d.runZKAndMesos(ctx, &out) })
	if len(d.cfg.Marathon) > 0 {
		wg.Go(func() { marathon = d.checkMarathon(ctx, &out) })
	}
	for _, l := range d.cfg.Lodestar {
		wg.Go(func() { out.add(d.checkLodestar(ctx, l)) })
	}
	wg.Wait()

	if marathon.info != nil && mesos.leaderState != nil {
		out.add(checkFramework(mesos.leader, mesos.leaderState, marathon.info))
		if r := marathon.info.Config.Role; r != "" && r != "*" {
			out.add(d.checkACLs(ctx, mesos.leader, mesos.leaderState, marathon.info))
		}
	}
	for _, p := range d.cfg.Proxies {
		wg.Go(func() { out.add(d.checkProxy(ctx, p, mesos.leader, marathon.leader)) })
	}
	if d.cfg.MasterWorkDir != "" {
		out.add(checkMasterWorkDir(d.cfg.MasterWorkDir, mesos.masters))
	}
	if d.cfg.Smoke {
		wg.Go(func() { d.runSmokeTest(ctx, marathon, mesos, &out) })
	}
	wg.Wait()
	sortFindings(out.list)
	return Report{Time: d.cfg.Now(), Findings: out.list}
}

// runZKAndMesos checks ZooKeeper, then the Mesos masters (those given, or those registered in
// ZooKeeper) and the agents of the leading master.
func (d *Doctor) runZKAndMesos(ctx context.Context, out *findings) mesosResult {
	masters := d.cfg.MesosMasters
	var zkLeader string
	if len(d.cfg.ZooKeeper) > 0 {
		var wg sync.WaitGroup
		wg.Go(func() { d.checkZooKeeper(ctx, out) })
		if d.cfg.MesosZKPath != "" {
			z := d.readMesosZK(ctx)
			out.add(d.judgeMesosZK(z, d.cfg.Now()))
			zkLeader = z.leader()
			if len(masters) == 0 {
				for _, r := range z.regs {
					if r.addr != "" {
						masters = append(masters, r.addr)
					}
				}
			}
		}
		wg.Wait()
	}
	if len(masters) == 0 {
		return mesosResult{}
	}
	res := d.checkMesos(ctx, masters, zkLeader, out)
	res.masters = masters
	if res.leaderState != nil {
		d.checkAgents(ctx, res.leaderState, out)
	}
	return res
}
