package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Checks of Marathon, leader proxies and lodestar.
const (
	CheckMarathon          = "marathon"
	CheckMarathonLeader    = "marathon leader"
	CheckMarathonFramework = "marathon framework"
	CheckMarathonConfig    = "marathon config"
	CheckProxy             = "leader proxy"
	CheckLodestar          = "lodestar"
)

// marathonInfo is the part of /v2/info the doctor reads.
type marathonInfo struct {
	Version     string `json:"version"`
	Leader      string `json:"leader"`
	Elected     *bool  `json:"elected"`
	FrameworkID string `json:"frameworkId"`
	Config      struct {
		Role      string `json:"mesos_role"`
		Principal string `json:"mesos_authentication_principal"`
		Hostname  string `json:"hostname"`
	} `json:"marathon_config"`
	HTTP struct {
		Port int `json:"http_port"`
	} `json:"http_config"`
}

// marathonView is what one Marathon instance said.
type marathonView struct {
	target string
	base   string
	err    error
	info   marathonInfo
	leader string // from /v2/leader; "" when none
}

func (d *Doctor) probeMarathon(ctx context.Context, target string) marathonView {
	v := marathonView{target: target, base: baseURL(target)}
	if err := d.getJSON(ctx, v.base+"/v2/info", &v.info); err != nil {
		v.err = err
		return v
	}
	code, body, _, err := d.get(ctx, v.base+"/v2/leader")
	switch {
	case err != nil:
		v.err = err
	case code == http.StatusNotFound:
		v.leader = "" // "There is no leader"
	case code != http.StatusOK:
		v.err = fmt.Errorf("GET %s/v2/leader: %d %s", v.base, code, firstLine(string(body)))
	default:
		var l struct {
			Leader string `json:"leader"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			v.err = fmt.Errorf("GET %s/v2/leader: not the JSON expected: %w", v.base, err)
		}
		v.leader = l.Leader
	}
	return v
}

// urlHostPort is the host:port of a base URL, with the scheme's default port.
func urlHostPort(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// marathonResult is what the Marathon checks learnt.
type marathonResult struct {
	leader string        // host:port every instance names
	info   *marathonInfo // the leader's /v2/info, else any instance's
	base   string        // base URL of the instance info came from
}

// checkMarathon probes every instance: reachable, one leader, the leader reachable.
func (d *Doctor) checkMarathon(ctx context.Context, out *findings) marathonResult {
	views := make([]marathonView, len(d.cfg.Marathon))
	var wg sync.WaitGroup
	for i, m := range d.cfg.Marathon {
		wg.Go(func() { views[i] = d.probeMarathon(ctx, m) })
	}
	wg.Wait()

	var res marathonResult
	named := map[string][]string{}
	for _, v := range views {
		f := Finding{Check: CheckMarathon, Target: v.target}
		if v.err != nil {
			f.Severity, f.Message = SeverityError, "unreachable: "+v.err.Error()
			f.Fix = "start Marathon or open its HTTP port to this host"
			out.add(f)
			continue
		}
		named[v.leader] = append(named[v.leader], v.target)
		f.Severity = SeverityOK
		f.Message = fmt.Sprintf("reachable (version %s); names %s leader", v.info.Version, orNone(v.leader))
		out.add(f)
		if res.info == nil || urlHostPort(v.base) == v.leader {
			info := v.info
			res.info, res.base = &info, v.base
		}
	}
	if len(named) == 0 {
		return res
	}
	lf := Finding{Check: CheckMarathonLeader, Target: strings.Join(d.cfg.Marathon, ",")}
	leaders := mapKeys(named)
	switch {
	case len(leaders) > 1:
		var parts []string
		for _, l := range leaders {
			parts = append(parts, fmt.Sprintf("%s name %s", strings.Join(named[l], ", "), orNone(l)))
		}
		lf.Severity, lf.Message = SeverityError, "Marathon instances disagree on the leader: "+strings.Join(parts, "; ")
		lf.Fix = "every instance must use the same --zk; restart those naming a stale leader"
	case leaders[0] == "":
		lf.Severity, lf.Message = SeverityError, "no Marathon leader elected"
		lf.Fix = "Marathon elects its leader through ZooKeeper: check the zookeeper checks and Marathon's --zk"
	default:
		res.leader = leaders[0]
		lf.Target = res.leader
		if err := d.marathonReachable(ctx, res.leader, views); err != nil {
			lf.Severity, lf.Message = SeverityError, "the leader "+res.leader+" is unreachable from here: "+err.Error()
			lf.Fix = "open the leader's HTTP port to this host, or start Marathon with --hostname set to a name that resolves to a reachable address"
		} else {
			lf.Severity, lf.Message = SeverityOK, "every instance names "+res.leader+" leader, and it answers"
		}
	}
	out.add(lf)
	if res.info != nil {
		out.add(judgeMarathonConfig(orNone(res.leader), res.info, d.cfg.MarathonIdentity))
	}
	return res
}

// marathonReachable checks that the leader answers /ping, unless it was probed already.
func (d *Doctor) marathonReachable(ctx context.Context, leader string, views []marathonView) error {
	for _, v := range views {
		if v.err == nil && urlHostPort(v.base) == leader {
			return nil
		}
	}
	code, body, _, err := d.get(ctx, "http://"+leader+"/ping")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET /ping: %d %s", code, firstLine(string(body)))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no leader"
	}
	return s
}

// judgeMarathonConfig wants a principal and a role: without them Marathon cannot reserve
// resources or create persistent volumes, and masters that authenticate reject it. When
// expect has them, they must be those: the masters' ACLs were rendered for them.
func judgeMarathonConfig(target string, info *marathonInfo, expect MarathonConfig) Finding {
	f := Finding{Check: CheckMarathonConfig, Target: target}
	var missing []string
	if info.Config.Principal == "" {
		missing = append(missing, "no principal (--mesos_authentication_principal)")
	}
	if info.Config.Role == "" || info.Config.Role == "*" {
		missing = append(missing, "no role (--mesos_role)")
	}
	if len(missing) > 0 {
		f.Severity = SeverityWarn
		f.Message = "Marathon runs with " + strings.Join(missing, " and ") + ": it cannot reserve resources or create persistent volumes"
		f.Fix = "start Marathon with --mesos_authentication_principal and --mesos_role (and grant them in the masters' --acls)"
		return f
	}
	var differs []string
	if expect.Principal != "" && info.Config.Principal != expect.Principal {
		differs = append(differs, fmt.Sprintf("principal %q (the topology says %q)", info.Config.Principal, expect.Principal))
	}
	if expect.Role != "" && info.Config.Role != expect.Role {
		differs = append(differs, fmt.Sprintf("role %q (the topology says %q)", info.Config.Role, expect.Role))
	}
	if len(differs) > 0 {
		f.Severity = SeverityWarn
		f.Message = "Marathon runs with " + strings.Join(differs, " and ") + ": the masters' ACLs rendered from the topology grant the topology's, so reservations and volumes may be refused"
		f.Fix = fmt.Sprintf("start Marathon with --mesos_authentication_principal %s --mesos_role %s (as `lodestar cluster render` writes them), or change the topology's marathon: and render again",
			cmp.Or(expect.Principal, info.Config.Principal), cmp.Or(expect.Role, info.Config.Role))
		return f
	}
	f.Severity = SeverityOK
	f.Message = fmt.Sprintf("principal %q, role %q", info.Config.Principal, info.Config.Role)
	return f
}

// checkFramework looks for Marathon's framework among the leading master's frameworks.
func checkFramework(mesosLeader string, st *mesosState, info *marathonInfo) Finding {
	f := Finding{Check: CheckMarathonFramework, Target: info.FrameworkID}
	if info.FrameworkID == "" {
		f.Target = "marathon"
		f.Severity, f.Message = SeverityError, "Marathon reports no framework id: it has not registered with Mesos"
		f.Fix = "check Marathon's --master and its log; with framework authentication, its --mesos_authentication_principal and secret"
		return f
	}
	for _, fw := range st.Frameworks {
		if fw.ID != info.FrameworkID {
			continue
		}
		if fw.Active != nil && !*fw.Active {
			f.Severity = SeverityWarn
			f.Message = fmt.Sprintf("registered with the leading master %s as %q but inactive (disconnected)", mesosLeader, fw.Name)
			f.Fix = "Marathon lost its connection to the master: check Marathon's log and the network between them"
			return f
		}
		f.Severity, f.Message = SeverityOK, fmt.Sprintf("registered with the leading master %s as %q", mesosLeader, fw.Name)
		return f
	}
	f.Severity = SeverityError
	f.Message = fmt.Sprintf("Marathon's framework is not registered with the leading master %s", mesosLeader)
	f.Fix = "Marathon talks to another Mesos cluster or failed to register: check its --master (the masters' ZooKeeper path) and its log"
	return f
}

// doctorACLEntity is a principal or role set of a Mesos ACL: type SOME (the default, with values),
// ANY or NONE.
type doctorACLEntity struct {
	Type   string   `json:"type"`
	Values []string `json:"values"`
}

// matches follows Mesos's local authorizer: ANY and NONE match every request (NONE then
// denies), SOME matches its values.
func (e *doctorACLEntity) matches(v string) bool {
	if e == nil {
		return false
	}
	switch strings.ToUpper(e.Type) {
	case "ANY", "NONE":
		return true
	}
	return slices.Contains(e.Values, v)
}

func (e *doctorACLEntity) allows() bool { return e == nil || strings.ToUpper(e.Type) != "NONE" }

type doctorACLRule struct {
	Principals *doctorACLEntity `json:"principals"`
	Roles      *doctorACLEntity `json:"roles"`
}

// doctorACLs is the part of the masters' --acls the doctor reads.
type doctorACLs struct {
	Permissive       *bool           `json:"permissive"`
	ReserveResources []doctorACLRule `json:"reserve_resources"`
	CreateVolumes    []doctorACLRule `json:"create_volumes"`
}

// allowed decides like Mesos: the first rule whose principals and roles match decides; when
// none matches, "permissive" does (default true).
func (a doctorACLs) allowed(rules []doctorACLRule, principal, role string) bool {
	for _, r := range rules {
		if r.Principals.matches(principal) && r.Roles.matches(role) {
			return r.Principals.allows() && r.Roles.allows()
		}
	}
	return a.Permissive == nil || *a.Permissive
}

// checkACLs checks that the masters' ACLs let Marathon's principal reserve resources and
// create volumes for its role.
func (d *Doctor) checkACLs(ctx context.Context, leader string, st *mesosState, info *marathonInfo) Finding {
	role, principal := info.Config.Role, info.Config.Principal
	f := Finding{Check: CheckMesosACLs, Target: leader}
	flags := st.Flags
	if flags == nil {
		var doc struct {
			Flags map[string]string `json:"flags"`
		}
		if err := d.getJSON(ctx, "http://"+leader+"/flags", &doc); err != nil {
			f.Severity, f.Message = SeverityWarn, "cannot read the leading master's flags: "+err.Error()
			f.Fix = "let this host read the master's /flags"
			return f
		}
		flags = doc.Flags
	}
	raw := strings.TrimSpace(flags["acls"])
	if raw == "" {
		f.Severity = SeverityOK
		f.Message = fmt.Sprintf("no --acls: every principal may reserve resources and create volumes for role %q", role)
		return f
	}
	var acls doctorACLs
	if err := json.Unmarshal([]byte(raw), &acls); err != nil {
		f.Severity = SeverityWarn
		f.Message = "cannot read the masters' --acls as JSON: " + err.Error()
		f.Fix = "check the --acls of the masters by hand: " + principal + " needs reserve_resources and create_volumes for role " + role
		return f
	}
	var denied []string
	for _, action := range []struct {
		name  string
		rules []doctorACLRule
	}{{"reserve_resources", acls.ReserveResources}, {"create_volumes", acls.CreateVolumes}} {
		if !acls.allowed(action.rules, principal, role) {
			denied = append(denied, action.name)
		}
	}
	if len(denied) > 0 {
		f.Severity = SeverityError
		f.Message = fmt.Sprintf("the masters' ACLs do not grant %s to Marathon's principal %q for its role %q: resident apps (persistent volumes) cannot start",
			strings.Join(denied, " and "), principal, role)
		var rules []string
		for _, a := range denied {
			rules = append(rules, fmt.Sprintf(`"%s": [{"principals": {"values": [%q]}, "roles": {"values": [%q]}}]`, a, principal, role))
		}
		f.Fix = "add to the masters' --acls: " + strings.Join(rules, ", ")
		return f
	}
	f.Severity = SeverityOK
	f.Message = fmt.Sprintf("ACLs grant reserve_resources and create_volumes to %q for role %q", principal, role)
	return f
}

// checkProxy checks that a leader-proxy address reaches the current leader.
func (d *Doctor) checkProxy(ctx context.Context, p Proxy, mesosLeader, marathonLeader string) Finding {
	f := Finding{Check: CheckProxy, Target: p.Name + "=" + p.Addr}
	base := baseURL(p.Addr)
	switch p.Name {
	case "mesos":
		v := d.probeMaster(ctx, p.Addr)
		switch {
		case v.err != nil:
			f.Severity, f.Message = SeverityError, "unreachable: "+v.err.Error()
			f.Fix = "start the proxy (HAProxy/lodestar) listening on " + p.Addr
		case v.state == nil:
			f.Severity = SeverityError
			f.Message = fmt.Sprintf("reaches a master that does not lead (it redirects to %s)", orNone(v.leader))
			f.Fix = "the proxy's backend must follow the leader: check its health check (e.g. GET /master/redirect or the leader's /master/state)"
		case v.self != v.leader:
			f.Severity = SeverityError
			f.Message = fmt.Sprintf("reaches %s, which does not lead (it names %s)", v.self, orNone(v.leader))
			f.Fix = "the proxy's backend must follow the leader: check its health check"
		case mesosLeader != "" && v.self != mesosLeader:
			f.Severity = SeverityError
			f.Message = fmt.Sprintf("reaches %s, a leader the masters do not agree on (they name %s)", v.self, mesosLeader)
			f.Fix = "the proxy talks to another Mesos cluster: check its backends"
		default:
			f.Severity, f.Message = SeverityOK, "reaches the leading master "+v.self
		}
	case "marathon":
		var info marathonInfo
		err := d.getJSON(ctx, base+"/v2/info", &info)
		answered := net.JoinHostPort(info.Config.Hostname, strconv.Itoa(info.HTTP.Port))
		switch {
		case err != nil:
			f.Severity, f.Message = SeverityError, "unreachable: "+err.Error()
			f.Fix = "start the proxy listening on " + p.Addr
		case info.Elected != nil && !*info.Elected:
			f.Severity = SeverityError
			f.Message = fmt.Sprintf("reaches Marathon %s, which does not lead (it names %s)", answered, orNone(info.Leader))
			f.Fix = "the proxy's backend must follow Marathon's leader: check its health check (e.g. GET /v2/leader)"
		case marathonLeader != "" && info.Leader != marathonLeader:
			f.Severity = SeverityError
			f.Message = fmt.Sprintf("reaches a Marathon that names %s leader, not %s", orNone(info.Leader), marathonLeader)
			f.Fix = "the proxy talks to another Marathon cluster: check its backends"
		default:
			f.Severity, f.Message = SeverityOK, "reaches the Marathon leader "+orNone(info.Leader)
		}
	case "zk":
		// Any live member will do: it answers ruok through the proxy.
		out, err := fourLetterWord(ctx, urlHostPort(base), "ruok", d.cfg.Timeout)
		switch {
		case err != nil:
			f.Severity, f.Message = SeverityError, "unreachable: "+err.Error()
			f.Fix = "start the proxy listening on " + p.Addr
		case out == "imok":
			f.Severity, f.Message = SeverityOK, "reaches a live ZooKeeper member (ruok: imok)"
		case strings.Contains(out, zkNotWhitelisted):
			f.Severity, f.Message = SeverityOK, "reaches a ZooKeeper member (ruok is not whitelisted there, so its health is not asked)"
		default:
			f.Severity = SeverityError
			f.Message = fmt.Sprintf("a ZooKeeper member answers ruok with %q through the proxy", firstLine(out))
			f.Fix = "the proxy's backend must hold only live members: check its health check and the ensemble"
		}
	default:
		var dialer net.Dialer
		dctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		c, err := dialer.DialContext(dctx, "tcp", urlHostPort(base))
		cancel()
		if err != nil {
			f.Severity, f.Message = SeverityError, "unreachable: "+err.Error()
			f.Fix = "start the proxy listening on " + p.Addr
			return f
		}
		c.Close()
		f.Severity, f.Message = SeverityOK, "accepts connections (only mesos and marathon proxies are checked for the leader)"
	}
	return f
}

// judgeReadyLodestar judges a lodestar whose /readyz answered 200 by its checks: any
// "degraded: …" (a source failing since its last sync, a replica without its hub) is a warning.
func judgeReadyLodestar(f Finding, checks map[string]string) Finding {
	var degraded []string
	for _, name := range mapKeys(checks) {
		if why, ok := strings.CutPrefix(checks[name], "degraded: "); ok {
			degraded = append(degraded, name+": "+why)
		}
	}
	if len(degraded) == 0 {
		f.Severity, f.Message = SeverityOK, "ready: synced with its sources"
		return f
	}
	f.Severity, f.Message = SeverityWarn, "ready but degraded: "+strings.Join(degraded, "; ")
	f.Fix = "it serves what it had; see the failing source's finding (Marathon, Mesos, ZooKeeper) or lodestar's status page"
	return f
}

// checkLodestar asks a lodestar instance's /readyz whether it synced with its sources.
func (d *Doctor) checkLodestar(ctx context.Context, target string) Finding {
	f := Finding{Check: CheckLodestar, Target: target}
	code, body, _, err := d.get(ctx, baseURL(target)+"/readyz")
	if err != nil {
		f.Severity, f.Message = SeverityError, "unreachable: "+err.Error()
		f.Fix = "start lodestar, or check its --api-listen address"
		return f
	}
	var ready struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	_ = json.Unmarshal(body, &ready) // an answer that is not JSON is judged by its status alone
	if code == http.StatusOK {
		return judgeReadyLodestar(f, ready.Checks)
	}
	var failing []string
	for _, name := range mapKeys(ready.Checks) {
		if ready.Checks[name] != "ok" {
			failing = append(failing, name+": "+ready.Checks[name])
		}
	}
	if len(failing) == 0 {
		failing = append(failing, fmt.Sprintf("/readyz answered %d %s", code, firstLine(string(body))))
	}
	f.Severity, f.Message = SeverityError, "not ready: "+strings.Join(failing, "; ")
	f.Fix = "see lodestar's log: it cannot sync with Marathon or Mesos, or HAProxy does not run"
	return f
}
