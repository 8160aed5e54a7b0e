package cluster

import (
	"slices"
	"strings"
)

// Lodestar is one lodestar instance a topology runs: an edge load balancer for one LB group on
// one lb host, a DNS server on a dns host, or the leader-only proxies on a proxy host.
type Lodestar struct {
	Host  string // the host's name
	Kind  string // RoleLB, RoleDNS or RoleProxy
	Group string // the LB group, for Kind RoleLB
	// Name is the instance's name on its host: "lb-<group>", "dns" or "leader-proxy"; rendered
	// services and units are named after it.
	Name string
	// Args is the command line after "lodestar": "serve" and its flags, one token each.
	Args []string
}

// leaderProxyGroup is the HAPROXY_GROUP a leader-proxy lodestar serves: no app carries it, so
// that lodestar opens no app frontends, only the proxies.
const leaderProxyGroup = "lodestar-leader-proxy"

// Lodestars returns every lodestar instance of the topology with its command line as a
// compose lab runs it, binding each listener to its host's IP, in host order (LB groups in
// file order, then DNS, then the proxies).
func (t *Topology) Lodestars() []Lodestar {
	return t.lodestars(func(h Host) string { return h.IP }, nil, composeAPIAuth)
}

// lodestars builds the instances; ip gives what a host's binds use (its IP, or a variable the
// systemd unit expands), runDir (when not nil) the --run-dir of an instance, auth where the
// instance reads APIAuthFile (used only when the topology has one).
func (t *Topology) lodestars(ip func(Host) string, runDir func(name string) string, auth string) []Lodestar {
	var out []Lodestar
	sources := t.lodestarSources()
	bind := func(h Host, port int) string {
		addr := ip(h)
		if strings.Contains(addr, ":") {
			addr = "[" + addr + "]"
		}
		return addr + ":" + itoa(port)
	}
	for _, h := range t.Hosts {
		add := func(l Lodestar) {
			if t.APIAuthFile != "" {
				l.Args = append(l.Args, "--api-auth", auth)
			}
			if runDir != nil {
				l.Args = append(l.Args, "--run-dir", runDir(l.Name))
			}
			out = append(out, l)
		}
		if h.has(RoleLB) {
			for _, g := range t.LBGroups {
				if !slices.Contains(g.Hosts, h.Name) {
					continue
				}
				args := append([]string{"serve"}, sources...)
				if len(t.ZKServers()) > 0 {
					args = append(args, "--zk-rules", t.ZKURL("/lodestar/services"))
				}
				args = append(args,
					"--group", g.Name,
					"--http-bind", bind(h, g.HTTPPort),
					"--https-bind", bind(h, g.HTTPSPort),
					"--stats-bind", bind(h, g.StatsPort),
					"--appid-bind", bind(h, g.AppIDPort),
					"--api-listen", bind(h, g.APIPort),
				)
				add(Lodestar{Host: h.Name, Kind: RoleLB, Group: g.Name, Name: "lb-" + g.Name, Args: args})
			}
		}
		if h.has(RoleDNS) {
			args := append([]string{"serve"}, sources...)
			args = append(args,
				"--haproxy=false",
				"--dns-listen", bind(h, h.DNSPort),
				"--dns-domain", t.Domain,
				"--api-listen", bind(h, h.DNSAPIPort),
			)
			if len(t.DNSUpstreams) > 0 {
				args = append(args, "--dns-upstream", strings.Join(t.DNSUpstreams, ","))
			}
			add(Lodestar{Host: h.Name, Kind: RoleDNS, Name: "dns", Args: args})
		}
		if h.has(RoleProxy) {
			args := append([]string{"serve"}, sources...)
			args = append(args, "--leader-proxy", "mesos="+bind(h, h.ProxyMesosPort))
			if len(t.Marathons()) > 0 {
				args = append(args, "--leader-proxy", "marathon="+bind(h, h.ProxyMarathonPort))
			}
			if t.proxiesZK() {
				args = append(args, "--leader-proxy", "zk="+bind(h, h.ProxyZKPort))
			}
			args = append(args,
				"--group", leaderProxyGroup,
				"--dont-bind-http-https",
				"--no-appid-frontend",
				"--stats-bind", bind(h, h.ProxyStatsPort),
				"--api-listen", bind(h, h.ProxyAPIPort),
			)
			add(Lodestar{Host: h.Name, Kind: RoleProxy, Name: "leader-proxy", Args: args})
		}
	}
	return out
}

// proxiesZK says whether proxy hosts also proxy ZooKeeper: the members come from --mesos-zk,
// which lodestars get when the cluster has both an ensemble and masters.
func (t *Topology) proxiesZK() bool { return len(t.ZKServers()) > 0 && len(t.Masters()) > 0 }

// lodestarSources are the flags every lodestar instance reads the cluster with.
func (t *Topology) lodestarSources() []string {
	var args []string
	if m := t.Marathons(); len(m) > 0 {
		args = append(args, "--marathon", strings.Join(m, ","))
	}
	if t.proxiesZK() {
		args = append(args, "--mesos-zk", t.MesosZK())
	}
	return args
}
