package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Checks of Mesos.
const (
	CheckMesosMaster   = "mesos master"
	CheckMesosLeader   = "mesos leader"
	CheckMesosFlapping = "mesos leader changes"
	CheckHostname      = "hostname"
	CheckAgentFlags    = "agent flags"
	CheckMesosACLs     = "mesos acls"
)

// maxBody bounds what the doctor reads of one HTTP answer (a big cluster's state is large).
const maxBody = 256 << 20

// mesosState is the part of a master's state document the doctor reads.
type mesosState struct {
	PID         string            `json:"pid"`
	Leader      string            `json:"leader"`
	Hostname    string            `json:"hostname"`
	Version     string            `json:"version"`
	ElectedTime float64           `json:"elected_time"`
	StartTime   float64           `json:"start_time"`
	Flags       map[string]string `json:"flags"`
	Frameworks  []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Active *bool  `json:"active"`
	} `json:"frameworks"`
	Agents []struct {
		ID       string `json:"id"`
		Hostname string `json:"hostname"`
		PID      string `json:"pid"`
		Active   *bool  `json:"active"`
	} `json:"slaves"`
}

// masterView is what one master said.
type masterView struct {
	target string // as given
	base   string // base URL
	err    error
	// leader is the ip:port the master names leader ("" when none is elected).
	leader string
	// state is set when the master answered its state (it leads, or it is a Mesos 0.2x
	// master that answers for itself).
	state *mesosState
	self  string // the master's own ip:port, from its pid
}

// baseURL turns "host:port" or a URL into a base URL without a trailing slash.
func baseURL(s string) string {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	return strings.TrimRight(s, "/")
}

// pidAddr returns the ip:port of a libprocess pid such as "master@10.0.0.1:5050".
func pidAddr(pid string) string {
	if _, addr, ok := strings.Cut(pid, "@"); ok {
		return addr
	}
	return pid
}

// get makes one GET with the probe timeout and returns the answer's status, body and Location.
func (d *Doctor) get(ctx context.Context, url string) (int, []byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, "", fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	return resp.StatusCode, body, resp.Header.Get("Location"), nil
}

// getJSON GETs url and decodes a 200 answer into v.
func (d *Doctor) getJSON(ctx context.Context, url string, v any) error {
	code, body, _, err := d.get(ctx, url)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, code, firstLine(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: not the JSON expected: %w", url, err)
	}
	return nil
}

// probeMaster asks one master for its state without following redirects: a Mesos 1.x master
// that does not lead redirects to the leader, which names the leader as well as a state.
func (d *Doctor) probeMaster(ctx context.Context, target string) masterView {
	v := masterView{target: target, base: baseURL(target)}
	var code int
	var body []byte
	var location string
	for _, p := range []string{"/master/state", "/state.json"} {
		var err error
		code, body, location, err = d.get(ctx, v.base+p)
		if err != nil {
			v.err = err
			return v
		}
		if code != http.StatusNotFound {
			break
		}
	}
	switch {
	case code == http.StatusOK:
		var st mesosState
		if err := json.Unmarshal(body, &st); err != nil {
			v.err = fmt.Errorf("its state is not the JSON expected: %w", err)
			return v
		}
		v.state, v.self, v.leader = &st, pidAddr(st.PID), pidAddr(st.Leader)
	case code >= 300 && code < 400 && location != "":
		v.leader = redirectHost(location)
	case code == http.StatusServiceUnavailable:
		v.leader = "" // "No leader elected"
	default:
		v.err = fmt.Errorf("GET %s/master/state: %d %s", v.base, code, firstLine(string(body)))
	}
	return v
}

// redirectHost is the host:port of a redirect's Location ("//10.0.0.1:5050/master/state").
func redirectHost(location string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(location, "http:"), "https:"), "//")
	host, _, _ := strings.Cut(s, "/")
	return host
}

// mesosResult is what the Mesos checks learnt, for the checks that depend on them.
type mesosResult struct {
	leader      string      // the ip:port every master agrees on; "" when none or no agreement
	leaderState *mesosState // the leading master's state, when it could be read
	masters     []string    // the masters probed (ip:port), given or found in ZooKeeper
}

// checkMesos probes every master: agreement on one leader, flapping, the masters' host names.
func (d *Doctor) checkMesos(ctx context.Context, masters []string, zkLeader string, out *findings) mesosResult {
	views := make([]masterView, len(masters))
	var wg sync.WaitGroup
	for i, m := range masters {
		wg.Go(func() { views[i] = d.probeMaster(ctx, m) })
	}
	wg.Wait()

	var res mesosResult
	named := map[string][]string{} // leader → the masters naming it
	reachable := 0
	for _, v := range views {
		f := Finding{Check: CheckMesosMaster, Target: v.target}
		if v.err != nil {
			f.Severity, f.Message = SeverityError, "unreachable: "+v.err.Error()
			f.Fix = "start the master or open its port to this host; a master that is down shrinks the replicated log's quorum"
			out.add(f)
			continue
		}
		reachable++
		named[v.leader] = append(named[v.leader], v.target)
		f.Severity = SeverityOK
		switch {
		case v.leader == "":
			f.Message = "reachable; no leader elected"
		case v.state != nil && v.self == v.leader:
			f.Message = "reachable; leads (version " + v.state.Version + ")"
		default:
			f.Message = "reachable; names " + v.leader + " leader"
		}
		out.add(f)
		if v.state != nil && v.state.Hostname != "" {
			d.checkHostname(ctx, "master", v.state.Hostname, out)
		}
	}

	agree := Finding{Check: CheckMesosLeader, Target: strings.Join(masters, ",")}
	leaders := mapKeys(named)
	switch {
	case reachable == 0:
		agree.Severity, agree.Message = SeverityError, "no master reachable"
		agree.Fix = "start the masters; check --mesos-master"
	case len(leaders) > 1:
		var parts []string
		for _, l := range leaders {
			name := l
			if name == "" {
				name = "no leader"
			}
			parts = append(parts, fmt.Sprintf("%s name %s", strings.Join(named[l], ", "), name))
		}
		agree.Severity = SeverityError
		agree.Message = "masters disagree on the leader: " + strings.Join(parts, "; ")
		agree.Fix = "every master must use the same --zk and --quorum and reach ZooKeeper; restart the masters that name a stale leader"
	case leaders[0] == "":
		agree.Severity, agree.Message = SeverityError, "no leader elected"
		agree.Fix = "a quorum of masters (--quorum) must be up and reach ZooKeeper; check the masters' logs"
	case zkLeader != "" && zkLeader != leaders[0]:
		agree.Severity = SeverityError
		agree.Message = fmt.Sprintf("masters name %s leader but ZooKeeper's lowest json.info_ node names %s", leaders[0], zkLeader)
		agree.Fix = "the masters lost their ZooKeeper session or use another --zk path than the one checked; check their --zk"
	default:
		res.leader = leaders[0]
		agree.Severity = SeverityOK
		agree.Message = fmt.Sprintf("every reachable master (%d of %d) names %s leader", reachable, len(masters), res.leader)
	}
	out.add(agree)
	if res.leader == "" {
		return res
	}

	for _, v := range views {
		if v.state != nil && v.self == res.leader {
			res.leaderState = v.state
		}
	}
	if res.leaderState == nil {
		// The leader is not among the targets (or named by another address): ask it directly.
		if v := d.probeMaster(ctx, res.leader); v.err == nil && v.state != nil && v.self == res.leader {
			res.leaderState = v.state
		} else {
			out.add(Finding{Check: CheckMesosLeader, Target: res.leader, Severity: SeverityError,
				Message: "the leader's state cannot be read from here: " + errString(v.err),
				Fix:     "open the leader's port to this host, or start it with an --advertise_ip that is reachable"})
			return res
		}
	}
	out.add(d.judgeElected(res.leader, res.leaderState))
	return res
}

// judgeElected reports a leader elected within the flap window.
func (d *Doctor) judgeElected(leader string, st *mesosState) Finding {
	f := Finding{Check: CheckMesosFlapping, Target: leader, Severity: SeverityOK}
	if st.ElectedTime <= 0 {
		f.Message = "the leader does not report elected_time"
		return f
	}
	sec, frac := math.Modf(st.ElectedTime)
	elected := time.Unix(int64(sec), int64(frac*1e9))
	age := d.cfg.Now().Sub(elected).Round(time.Second)
	if age < d.cfg.FlapWindow {
		f.Severity = SeverityWarn
		f.Message = fmt.Sprintf("the leader was elected %s ago (within the %s flap window): leadership changed recently", age, d.cfg.FlapWindow)
		f.Fix = "if the leader keeps changing, masters are flapping: check their logs for lost ZooKeeper sessions, raise --zk_session_timeout, check the network between masters and ZooKeeper"
		return f
	}
	f.Message = fmt.Sprintf("leader since %s (%s ago)", elected.UTC().Format(time.RFC3339), age)
	return f
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dockerBridge is Docker's default bridge network: an address in it is a container's, reachable
// from its own host only.
var dockerBridge = netip.MustParsePrefix("172.17.0.0/16")

// containerID matches a Docker container's default host name (the short container id).
var containerID = regexp.MustCompile(`^[0-9a-f]{12}$`)

// containerInternal says why an address or host name is a container's own, or "".
func containerInternal(name string) string {
	if ip, err := netip.ParseAddr(name); err == nil {
		if dockerBridge.Contains(ip.Unmap()) {
			return name + " is on Docker's default bridge (172.17.0.0/16), reachable from its own host only"
		}
		return ""
	}
	if containerID.MatchString(name) {
		return name + " looks like a Docker container id, the host name a container gets by default"
	}
	return ""
}

// checkHostname reports whether a master's or agent's host name resolves from here, and to an
// address outside a container.
func (d *Doctor) checkHostname(ctx context.Context, role, host string, out *findings) {
	if !out.first("hostname " + host) {
		return
	}
	f := Finding{Check: CheckHostname, Target: host}
	if _, err := netip.ParseAddr(host); err == nil {
		if why := containerInternal(host); why != "" {
			f.Severity, f.Message = SeverityWarn, role+" advertises "+why
			f.Fix = fmt.Sprintf("start the %s with --hostname and --advertise_ip set to the host's own name and address (docker run --net=host)", role)
		} else {
			f.Severity, f.Message = SeverityOK, role+" advertises an IP address"
		}
		out.add(f)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	addrs, err := d.cfg.Resolver(rctx, host)
	cancel()
	switch {
	case err != nil || len(addrs) == 0:
		f.Severity = SeverityError
		f.Message = fmt.Sprintf("%s host name %s does not resolve from here: %s", role, host, errString(err))
		f.Fix = fmt.Sprintf("add %s to DNS (or /etc/hosts on every host), or start the %s with --hostname set to a name that resolves (or --hostname_lookup=false and --advertise_ip)", host, role)
	case containerInternal(host) != "":
		f.Severity, f.Message = SeverityWarn, role+" host name "+containerInternal(host)
		f.Fix = fmt.Sprintf("start the %s with --hostname set to the host's name (docker run --net=host, or -e MESOS_HOSTNAME)", role)
	default:
		f.Severity, f.Message = SeverityOK, fmt.Sprintf("%s host name resolves to %s", role, strings.Join(addrs, ", "))
		for _, a := range addrs {
			if why := containerInternal(a); why != "" {
				f.Severity, f.Message = SeverityWarn, fmt.Sprintf("%s host name resolves to %s", role, why)
				f.Fix = fmt.Sprintf("make %s resolve to the host's own address, not a container's", host)
			}
		}
	}
	out.add(f)
}

// checkAgents checks every agent the leader knows: host name, advertised address and /flags.
func (d *Doctor) checkAgents(ctx context.Context, st *mesosState, out *findings) {
	if len(st.Agents) == 0 {
		out.add(Finding{Check: CheckAgentFlags, Target: "agents", Severity: SeverityWarn,
			Message: "the leading master knows no agent: no task can run",
			Fix:     "start agents with --master pointing at the masters' ZooKeeper path"})
		return
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, a := range st.Agents {
		name := a.Hostname
		if name == "" {
			name = a.ID
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if a.Hostname != "" {
				d.checkHostname(ctx, "agent", a.Hostname, out)
			}
			if a.Active != nil && !*a.Active {
				out.add(Finding{Check: CheckAgentFlags, Target: name, Severity: SeverityWarn,
					Message: "registered but inactive: the master gets no offers from it",
					Fix:     "check that the agent runs and reaches the leading master; see its log"})
			}
			out.add(d.checkAgentAddress(ctx, name, a.PID, pidAddr(st.PID)))
			d.checkAgentFlags(ctx, name, pidAddr(a.PID), out)
		})
	}
	wg.Wait()
}

// checkAgentFlags reads an agent's /flags: docker containerizer, executor registration
// timeout, host name.
func (d *Doctor) checkAgentFlags(ctx context.Context, name, addr string, out *findings) {
	var doc struct {
		Flags map[string]string `json:"flags"`
	}
	if err := d.getJSON(ctx, "http://"+addr+"/flags", &doc); err != nil {
		out.add(Finding{Check: CheckAgentFlags, Target: name, Severity: SeverityError,
			Message: "cannot read the agent's flags at " + addr + ": " + err.Error(),
			Fix:     "the agent must be reachable on the address of its pid (" + addr + ") from the masters and from here"})
		return
	}
	flags := doc.Flags
	good := []string{}
	bad := 0
	add := func(sev Severity, msg, fix string) {
		bad++
		out.add(Finding{Check: CheckAgentFlags, Target: name, Severity: sev, Message: msg, Fix: fix})
	}
	containerizers := strings.Split(flags["containerizers"], ",")
	if slices.Contains(containerizers, "docker") {
		good = append(good, "containerizers="+flags["containerizers"])
	} else {
		add(SeverityWarn, fmt.Sprintf("containerizers=%q: Docker apps cannot run on this agent", flags["containerizers"]),
			"start the agent with --containerizers=docker,mesos")
	}
	timeout := flags["executor_registration_timeout"]
	if timeout == "" {
		timeout = "1mins" // Mesos's default
	}
	switch dur, err := parseMesosDuration(timeout); {
	case err != nil:
		add(SeverityWarn, fmt.Sprintf("executor_registration_timeout=%q: %v", timeout, err),
			"start the agent with --executor_registration_timeout="+mesosDuration(d.cfg.MinExecutorTimeout))
	case dur < d.cfg.MinExecutorTimeout:
		add(SeverityWarn, fmt.Sprintf("executor_registration_timeout=%s is below %s: tasks whose Docker image takes longer to pull fail", timeout, d.cfg.MinExecutorTimeout),
			"start the agent with --executor_registration_timeout="+mesosDuration(d.cfg.MinExecutorTimeout))
	default:
		good = append(good, "executor_registration_timeout="+timeout)
	}
	if h := flags["hostname"]; h != "" {
		if why := containerInternal(h); why != "" {
			add(SeverityWarn, "--hostname "+why, "start the agent with --hostname set to the host's own name")
		}
	}
	if ip := flags["advertise_ip"]; ip != "" {
		if why := containerInternal(ip); why != "" {
			add(SeverityWarn, "--advertise_ip "+why, "start the agent with --advertise_ip set to the host's own address")
		}
	}
	if bad == 0 {
		out.add(Finding{Check: CheckAgentFlags, Target: name, Severity: SeverityOK, Message: strings.Join(good, ", ")})
	}
}

// mesosUnits are the units of Mesos's Duration flags.
var mesosUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"weeks", 7 * 24 * time.Hour}, {"days", 24 * time.Hour}, {"hrs", time.Hour}, {"mins", time.Minute},
	{"secs", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond},
}

// parseMesosDuration reads a Mesos duration such as "1mins", "30secs" or "1.5hrs".
func parseMesosDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for _, u := range mesosUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("not a Mesos duration (want e.g. 5mins)")
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("not a Mesos duration (want e.g. 5mins)")
}

// mesosDuration writes d in Mesos's flag syntax.
func mesosDuration(d time.Duration) string {
	for _, u := range mesosUnits {
		if d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
