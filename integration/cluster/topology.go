// Package cluster is lodestar's cluster bring-up tooling: a topology file (which host runs
// ZooKeeper, Mesos masters, Marathon, agents, edge load balancers and DNS) is validated once
// and rendered into a docker-compose lab or per-host systemd units and configuration files.
//
// The topology never asks for what can be computed: the Mesos quorum is ⌊masters/2⌋+1, the
// ZooKeeper ids and server lines follow from the hosts, and every address is a host's IP.
package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Roles a host can carry. One host may carry several (an all-in-one lab).
const (
	RoleZK       = "zk"       // a ZooKeeper ensemble member
	RoleMaster   = "master"   // a Mesos master
	RoleMarathon = "marathon" // a Marathon instance
	RoleAgent    = "agent"    // a Mesos agent running Docker and Mesos containers
	RoleLB       = "lb"       // edge lodestars with HAProxy, one per LB group listing the host
	RoleDNS      = "dns"      // a lodestar serving the Mesos DNS domain
	RoleProxy    = "proxy"    // a lodestar serving the leader-only Mesos and Marathon proxies
)

// Roles lists every role in the order rendered output uses.
var Roles = []string{RoleZK, RoleMaster, RoleMarathon, RoleAgent, RoleLB, RoleDNS, RoleProxy}

// Defaults filled in by Parse and Validate for fields left out of the topology file.
const (
	DefaultDomain            = "mesos"
	DefaultZKClientPort      = 2181
	DefaultZKPeerPort        = 2888
	DefaultZKElectionPort    = 3888
	DefaultMasterPort        = 5050
	DefaultAgentPort         = 5051
	DefaultMarathonPort      = 8080
	DefaultDNSPort           = 53
	DefaultDNSAPIPort        = 8123 // mesos-dns' HTTP API port: lodestar serves the same /v1 API
	DefaultProxyMesosPort    = 15050
	DefaultProxyMarathonPort = 18080
	DefaultProxyZKPort       = 12181
	DefaultProxyAPIPort      = 8092
	DefaultProxyStatsPort    = 9092
	DefaultLBHTTPPort        = 80
	DefaultLBHTTPSPort       = 443
	DefaultLBStatsPort       = 9090
	DefaultLBAppIDPort       = 9091
	DefaultLBAPIPort         = 8090
	DefaultMarathonPrincipal = "marathon"
	DefaultMarathonRole      = "marathon"
	DefaultZooKeeperImage    = "zookeeper:3.8"
	DefaultMesosMasterImage  = "mesosphere/mesos-master:1.9.0"
	DefaultMesosAgentImage   = "mesosphere/mesos-slave:1.9.0"
	DefaultMarathonImage     = "mesosphere/marathon:v1.9.109"
	DefaultLodestarImage     = "lodestar:latest"
	DefaultMesosZKPath       = "/mesos"
	DefaultMarathonZKPath    = "/marathon"
)

// Topology is a whole cluster as the topology file describes it. Load or Parse it: both fill
// in the defaults and validate, so every port and id below is set.
type Topology struct {
	// Name is the cluster's name (Mesos --cluster, compose project and network names).
	Name string `yaml:"name"`
	// Domain is the DNS zone lodestar is authoritative for (default "mesos").
	Domain string `yaml:"domain,omitempty"`
	// Network is the lab's bridge network; compose output needs its subnet.
	Network Network `yaml:"network,omitempty"`
	// Images are the container images compose output runs.
	Images Images `yaml:"images,omitempty"`
	// Marathon holds the framework identity Marathon registers with.
	Marathon MarathonConfig `yaml:"marathon,omitempty"`
	// DNSUpstreams are the resolvers (host:port) DNS lodestars forward other names to; empty
	// means each DNS lodestar's /etc/resolv.conf.
	DNSUpstreams []string `yaml:"dns_upstreams,omitempty"`
	// APIAuthFile is the file holding the API credential of every lodestar (one line,
	// token:T or basic:user:pass, as --api-auth reads it). The lodestars listen on their
	// hosts' IPs, so without it their mutating endpoints (bamboo's /api/services, /v1/resync,
	// /_mlb_signal/*) answer 403. compose hands the file (a relative path is relative to the
	// compose file) to the lodestar containers as a secret; systemd hands the file on each
	// host (a relative path lies in /etc/lodestar) to the units as a credential, so that
	// their DynamicUser reads it while the file stays root-only.
	APIAuthFile string `yaml:"api_auth_file,omitempty"`
	// Hosts are the machines (or lab containers), each with its IP and roles.
	Hosts []Host `yaml:"hosts"`
	// LBGroups are the HAPROXY_GROUP tiers and the lb hosts that serve each.
	LBGroups []LBGroup `yaml:"lb_groups,omitempty"`
	// ExpectedApps and ExpectedTasks are the size the cluster is planned for (defaults 1000
	// and 3000): the lodestar units' LimitNOFILE fits the open files HAProxy needs at that
	// size (see LodestarLimitNOFILE).
	ExpectedApps  int `yaml:"expected_apps,omitempty"`
	ExpectedTasks int `yaml:"expected_tasks,omitempty"`
	// ExtraFlags are further flags of a role's component, by role (master, agent, marathon),
	// then flag name as the component spells it (launcher, isolation, log_dir) → value.
	// Hosts' extra_flags override them flag by flag. See extraFlagRoles.
	ExtraFlags map[string]map[string]string `yaml:"extra_flags,omitempty"`
	// Mask names, by role, the systemd units (e.g. mesos-slave on masters: the mesos package
	// ships both daemons) to mask on every host with that role, except units the host runs.
	Mask map[string][]string `yaml:"mask,omitempty"`
	// ZKPaths are the ZooKeeper nodes Mesos and Marathon keep their state under.
	ZKPaths ZKPaths `yaml:"zk_paths,omitempty"`
	// Compose holds what only the one-VM compose form reads.
	Compose ComposeConfig `yaml:"compose,omitempty"`
}

// ZKPaths are ZooKeeper paths (defaults /mesos and /marathon): a cluster sharing its
// ensemble with another needs its own.
type ZKPaths struct {
	Mesos    string `yaml:"mesos,omitempty"`
	Marathon string `yaml:"marathon,omitempty"`
}

// ComposeConfig is the one-VM lab's link to the VM it runs on.
type ComposeConfig struct {
	// VMIP is the VM's own address. Set, the agents run in the VM's network namespace
	// (network_mode: host) and register under it, the address the VM's Docker daemon
	// publishes task ports on, so Marathon health checks and HAProxy reach the tasks. Left
	// out, agents keep their bridge IPs, and only tasks with host networking are reachable.
	VMIP string `yaml:"vm_ip,omitempty"`
}

// Network is the compose lab's bridge network.
type Network struct {
	// Subnet is the bridge's CIDR (e.g. 172.28.0.0/16); every host IP must lie inside it.
	Subnet string `yaml:"subnet,omitempty"`
}

// Images are the container images of each component, with their versions.
type Images struct {
	ZooKeeper   string `yaml:"zookeeper,omitempty"`
	MesosMaster string `yaml:"mesos_master,omitempty"`
	MesosAgent  string `yaml:"mesos_agent,omitempty"`
	Marathon    string `yaml:"marathon,omitempty"`
	Lodestar    string `yaml:"lodestar,omitempty"`
	// LodestarBuild, when set, is the build context (relative to the compose file) the
	// lodestar services build their image from, e.g. "." for this repository.
	LodestarBuild string `yaml:"lodestar_build,omitempty"`
}

// MarathonConfig is the Mesos identity of Marathon. Persistent volumes need both: Marathon
// reserves resources and creates volumes as this principal, for this role.
type MarathonConfig struct {
	Principal string `yaml:"principal,omitempty"`
	Role      string `yaml:"role,omitempty"`
}

// Host is one machine and the roles it carries. Ports left out get the Default… values.
type Host struct {
	Name  string   `yaml:"name"`
	IP    string   `yaml:"ip"`
	Roles []string `yaml:"roles"`
	// IPFrom, instead of ip, is the interface whose IPv4 address the host-IP unit discovers
	// at boot (DHCP hosts). Only agent-only hosts may: no other host's configuration names
	// an agent's address, agents register it with the masters. systemd output only.
	IPFrom string `yaml:"ip_from,omitempty"`

	// ZKID is the ZooKeeper myid (1–255); left out, zk hosts are numbered in file order.
	ZKID           int `yaml:"zk_id,omitempty"`
	ZKClientPort   int `yaml:"zk_client_port,omitempty"`
	ZKPeerPort     int `yaml:"zk_peer_port,omitempty"`
	ZKElectionPort int `yaml:"zk_election_port,omitempty"`

	MasterPort   int `yaml:"master_port,omitempty"`
	MarathonPort int `yaml:"marathon_port,omitempty"`
	AgentPort    int `yaml:"agent_port,omitempty"`

	// AgentAttributes are the agent's Mesos attributes (e.g. rack: r1), for constraints.
	AgentAttributes map[string]string `yaml:"agent_attributes,omitempty"`

	DNSPort    int `yaml:"dns_port,omitempty"`
	DNSAPIPort int `yaml:"dns_api_port,omitempty"`

	ProxyMesosPort    int `yaml:"proxy_mesos_port,omitempty"`
	ProxyMarathonPort int `yaml:"proxy_marathon_port,omitempty"`
	// ProxyZKPort is a TCP proxy to any live ZooKeeper member (--leader-proxy zk=…).
	ProxyZKPort    int `yaml:"proxy_zk_port,omitempty"`
	ProxyAPIPort   int `yaml:"proxy_api_port,omitempty"`
	ProxyStatsPort int `yaml:"proxy_stats_port,omitempty"`

	// Publish, in the compose form, publishes every port this host listens on at the same
	// port of the VM (on compose.vm_ip when set), so the lab is reachable from outside it.
	Publish bool `yaml:"publish,omitempty"`

	// Mask names further systemd units to mask on this host.
	Mask []string `yaml:"mask,omitempty"`

	// ExtraFlags are this host's own extra flags, by role as the topology's are; a flag set
	// here replaces the topology's of the same role and name.
	ExtraFlags map[string]map[string]string `yaml:"extra_flags,omitempty"`
}

// LBGroup is one HAPROXY_GROUP tier: every host listed runs an edge lodestar for it. Two
// groups on one host need different ports.
type LBGroup struct {
	Name      string   `yaml:"name"`
	Hosts     []string `yaml:"hosts"`
	HTTPPort  int      `yaml:"http_port,omitempty"`
	HTTPSPort int      `yaml:"https_port,omitempty"`
	StatsPort int      `yaml:"stats_port,omitempty"`
	AppIDPort int      `yaml:"appid_port,omitempty"`
	APIPort   int      `yaml:"api_port,omitempty"`
}

// Problem is one mistake (or, among warnings, one doubtful choice) in a topology file. Its
// message names the host and the field to look at.
type Problem struct {
	Host    string // the host's name; empty for a cluster-wide field
	Field   string // the field, e.g. "ip", "roles", "lb_groups[1].hosts"
	Message string
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.Host != "" {
		fmt.Fprintf(&b, "host %q: ", p.Host)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, "field %s: ", p.Field)
	}
	b.WriteString(p.Message)
	return b.String()
}

// Load reads and validates a topology file. Warnings (e.g. an even-sized ZooKeeper ensemble)
// do not stop it; errors are every mistake found, joined, one message each.
func Load(path string) (*Topology, []Problem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("topology: %w", err)
	}
	t, warnings, err := Parse(data)
	if err != nil {
		return nil, warnings, fmt.Errorf("topology %s: %w", path, err)
	}
	return t, warnings, nil
}

// Parse decodes a topology file strictly (an unknown field is an error naming it and its
// line), fills in defaults and validates it, as Load does.
func Parse(data []byte) (*Topology, []Problem, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if err := computedFields(&root); err != nil {
		return nil, nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var t Topology
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, errors.New("the file is empty: it needs at least name and hosts")
		}
		return nil, nil, decodeError(err)
	}
	warnings, err := t.Validate()
	if err != nil {
		return nil, warnings, err
	}
	return &t, warnings, nil
}

// computedFields refuses fields people type by hand in other tools but that lodestar
// computes, with a message saying why, before the generic unknown-field error would.
func computedFields(root *yaml.Node) error {
	computed := map[string]string{
		"quorum":       "the Mesos quorum is computed as ⌊masters/2⌋+1 from the hosts with role master; remove it",
		"mesos_quorum": "the Mesos quorum is computed as ⌊masters/2⌋+1 from the hosts with role master; remove it",
		"myid":         "ZooKeeper ids are zk_id (optional, numbered in file order when left out)",
		"zk_servers":   "ZooKeeper server lines are computed from the hosts with role zk; remove it",
	}
	var errs []error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if why, ok := computed[n.Content[i].Value]; ok {
					errs = append(errs, fmt.Errorf("line %d: field %s: %s", n.Content[i].Line, n.Content[i].Value, why))
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	return errors.Join(errs...)
}

// decodeError turns yaml.v3's type errors into one message per field, saying where the
// field was found in words rather than Go type names.
func decodeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	where := strings.NewReplacer(
		"in type cluster.Topology", "of the topology",
		"in type cluster.Host", "of a host",
		"in type cluster.LBGroup", "of an lb group",
		"in type cluster.Images", "of images",
		"in type cluster.Network", "of network",
		"in type cluster.MarathonConfig", "of marathon",
		"in type cluster.ComposeConfig", "of compose",
		"in type cluster.ZKPaths", "of zk_paths",
	)
	errs := make([]error, 0, len(te.Errors))
	for _, e := range te.Errors {
		// "line 7: field hostnme not found in type cluster.Host"
		if line, rest, ok := strings.Cut(e, ": field "); ok {
			if name, typ, ok := strings.Cut(rest, " not found "); ok {
				errs = append(errs, fmt.Errorf("%s: field %s: unknown field %s (the fields are those of examples/cluster.yaml)", line, name, where.Replace(typ)))
				continue
			}
		}
		errs = append(errs, errors.New(e))
	}
	return errors.Join(errs...)
}

// setDefaults fills every field left out with its default.
func (t *Topology) setDefaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defs := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	defs(&t.Domain, DefaultDomain)
	defs(&t.Images.ZooKeeper, DefaultZooKeeperImage)
	defs(&t.Images.MesosMaster, DefaultMesosMasterImage)
	defs(&t.Images.MesosAgent, DefaultMesosAgentImage)
	defs(&t.Images.Marathon, DefaultMarathonImage)
	defs(&t.Images.Lodestar, DefaultLodestarImage)
	defs(&t.Marathon.Principal, DefaultMarathonPrincipal)
	defs(&t.Marathon.Role, DefaultMarathonRole)
	defs(&t.ZKPaths.Mesos, DefaultMesosZKPath)
	defs(&t.ZKPaths.Marathon, DefaultMarathonZKPath)
	used := map[int]bool{}
	for _, h := range t.Hosts {
		if h.has(RoleZK) && h.ZKID != 0 {
			used[h.ZKID] = true
		}
	}
	next := 1
	for i := range t.Hosts {
		h := &t.Hosts[i]
		def(&h.ZKClientPort, DefaultZKClientPort)
		def(&h.ZKPeerPort, DefaultZKPeerPort)
		def(&h.ZKElectionPort, DefaultZKElectionPort)
		def(&h.MasterPort, DefaultMasterPort)
		def(&h.MarathonPort, DefaultMarathonPort)
		def(&h.AgentPort, DefaultAgentPort)
		def(&h.DNSPort, DefaultDNSPort)
		def(&h.DNSAPIPort, DefaultDNSAPIPort)
		def(&h.ProxyMesosPort, DefaultProxyMesosPort)
		def(&h.ProxyMarathonPort, DefaultProxyMarathonPort)
		def(&h.ProxyZKPort, DefaultProxyZKPort)
		def(&h.ProxyAPIPort, DefaultProxyAPIPort)
		def(&h.ProxyStatsPort, DefaultProxyStatsPort)
		if h.has(RoleZK) && h.ZKID == 0 {
			for used[next] {
				next++
			}
			h.ZKID = next
			used[next] = true
		}
	}
	for i := range t.LBGroups {
		g := &t.LBGroups[i]
		def(&g.HTTPPort, DefaultLBHTTPPort)
		def(&g.HTTPSPort, DefaultLBHTTPSPort)
		def(&g.StatsPort, DefaultLBStatsPort)
		def(&g.AppIDPort, DefaultLBAppIDPort)
		def(&g.APIPort, DefaultLBAPIPort)
	}
}

var (
	// nameRe is a DNS label: host names become compose service names and hostnames.
	nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// domainRe is a dot-separated list of DNS labels.
	domainRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	// groupRe is what an HAPROXY_GROUP value may be here.
	groupRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Validate fills in defaults, then checks the whole topology. It returns every mistake,
// joined (errors.Join of Problems), and the warnings, which do not make it fail.
func (t *Topology) Validate() ([]Problem, error) {
	t.setDefaults()
	c := &checker{t: t}
	c.cluster()
	byName, dupIP := c.hosts()
	c.zooKeeper()
	c.lbGroups(byName)
	c.ports(dupIP)
	c.composeVM()
	c.extraFlags()
	c.zkPaths()
	c.masks()
	c.ipFrom()

	out := make([]error, len(c.errs))
	for i, e := range c.errs {
		out[i] = e
	}
	return c.warns, errors.Join(out...)
}

// checker collects the mistakes (errs) and warnings of one Validate, one concern per method.
type checker struct {
	t           *Topology
	errs, warns []Problem
}

func (c *checker) bad(host, field, format string, args ...any) {
	c.errs = append(c.errs, Problem{Host: host, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) warn(host, field, format string, args ...any) {
	c.warns = append(c.warns, Problem{Host: host, Field: field, Message: fmt.Sprintf(format, args...)})
}

// cluster checks the cluster-wide fields.
func (c *checker) cluster() {
	t := c.t
	if t.Name == "" {
		c.bad("", "name", "required: the cluster's name (Mesos --cluster, compose project name)")
	} else if !nameRe.MatchString(t.Name) {
		c.bad("", "name", "%q is not a DNS label (lower-case letters, digits and -)", t.Name)
	}
	if t.ExpectedApps < 0 || t.ExpectedApps > maxExpected {
		c.bad("", "expected_apps", "%d: want 0 (the default, %d) to %d", t.ExpectedApps, defaultExpectedApps, maxExpected)
	}
	if t.ExpectedTasks < 0 || t.ExpectedTasks > maxExpected {
		c.bad("", "expected_tasks", "%d: want 0 (the default, %d) to %d", t.ExpectedTasks, defaultExpectedTasks, maxExpected)
	}
	if n := t.LodestarLimitNOFILE(); n > maxLimitNOFILE && !c.failed("expected_apps", "expected_tasks") {
		c.bad("", "expected_apps", "%d apps and %d tasks need LimitNOFILE=%d, over the kernel's default fs.nr_open %d: spread the apps over more lb_groups",
			t.ExpectedApps, t.ExpectedTasks, n, maxLimitNOFILE)
	}
	if !domainRe.MatchString(t.Domain) {
		c.bad("", "domain", "%q is not a DNS domain (lower-case labels separated by dots)", t.Domain)
	}
	if t.Network.Subnet != "" {
		if _, err := netip.ParsePrefix(t.Network.Subnet); err != nil {
			c.bad("", "network.subnet", "%q is not a CIDR (e.g. 172.28.0.0/16)", t.Network.Subnet)
		}
	}
	for i, u := range t.DNSUpstreams {
		if _, err := netip.ParseAddrPort(u); err != nil {
			c.bad("", fmt.Sprintf("dns_upstreams[%d]", i), "%q is not IP:port (e.g. 10.0.0.1:53)", u)
		}
	}
	if strings.ContainsAny(t.APIAuthFile, "\n\r\t ") {
		c.bad("", "api_auth_file", "%q: a path without white space", t.APIAuthFile)
	}
	if t.APIAuthFile == "" && (len(t.HostsWithRole(RoleLB)) > 0 || len(t.HostsWithRole(RoleDNS)) > 0 || len(t.HostsWithRole(RoleProxy)) > 0) {
		c.warn("", "api_auth_file", "not set: the lodestars' API listens on the hosts' IPs, so its mutating endpoints (bamboo's /api/services, /v1/resync) answer 403; name a file holding token:T or basic:user:pass")
	}
	if t.Marathon.Role == "*" {
		c.bad("", "marathon.role", `"*" cannot hold reservations: persistent volumes need a named role`)
	}
	if len(t.Hosts) == 0 {
		c.bad("", "hosts", "required: at least one host")
	}
}

// hosts checks each host's name, IP, roles and role fields. It returns the hosts' indexes by
// name, and the hosts (by label) whose IP is missing, bad or another host's: their ports are
// not checked again.
func (c *checker) hosts() (byName map[string]int, dupIP map[string]bool) {
	t := c.t
	var subnet netip.Prefix
	if p, err := netip.ParsePrefix(t.Network.Subnet); err == nil {
		subnet = p.Masked()
	}
	byName = map[string]int{}
	dupIP = map[string]bool{}
	byIP := map[netip.Addr]string{}
	for i := range t.Hosts {
		h := &t.Hosts[i]
		label := h.Name
		switch {
		case h.Name == "":
			label = fmt.Sprintf("#%d", i+1)
			c.bad(label, "name", "required")
		case !nameRe.MatchString(h.Name):
			c.bad(h.Name, "name", "%q is not a DNS label (lower-case letters, digits and -)", h.Name)
		}
		if j, ok := byName[h.Name]; ok && h.Name != "" {
			c.bad(h.Name, "name", "the name is already used by host #%d", j+1)
		} else {
			byName[h.Name] = i
		}
		if h.IP == "" && h.IPFrom != "" {
			dupIP[label] = true // no address to check: ipFrom checks the interface
		} else if h.IP == "" {
			c.bad(label, "ip", "required (or ip_from on an agent-only host)")
			dupIP[label] = true
		} else if ip, err := netip.ParseAddr(h.IP); err != nil {
			c.bad(label, "ip", "%q is not an IP address", h.IP)
			dupIP[label] = true
		} else {
			if other, ok := byIP[ip]; ok {
				c.bad(label, "ip", "%s is already used by host %q", h.IP, other)
				dupIP[label] = true
			} else {
				byIP[ip] = label
			}
			if subnet.IsValid() && !subnet.Contains(ip) {
				c.bad(label, "ip", "%s is outside network.subnet %s", h.IP, subnet)
			}
		}
		c.hostRoles(h, label)
	}
	return byName, dupIP
}

// hostRoles checks one host's roles and the fields that belong to a role.
func (c *checker) hostRoles(h *Host, label string) {
	if len(h.Roles) == 0 {
		c.bad(label, "roles", "required: one or more of %s", strings.Join(Roles, ", "))
	}
	seen := map[string]bool{}
	for _, r := range h.Roles {
		switch {
		case !slices.Contains(Roles, r):
			c.bad(label, "roles", "unknown role %q (known: %s)", r, strings.Join(Roles, ", "))
		case seen[r]:
			c.bad(label, "roles", "role %q is listed twice", r)
		}
		seen[r] = true
	}
	if len(h.AgentAttributes) > 0 && !h.has(RoleAgent) {
		c.bad(label, "agent_attributes", "set on a host without role agent")
	}
	for k, v := range h.AgentAttributes {
		if strings.ContainsAny(k+v, ":;, ") || k == "" || v == "" {
			c.bad(label, "agent_attributes", "%q: %q: names and values must be non-empty without ':', ';', ',' or spaces", k, v)
		}
	}
	if h.has(RoleZK) && (h.ZKID < 1 || h.ZKID > 255) {
		c.bad(label, "zk_id", "%d is outside 1–255", h.ZKID)
	}
}

// zooKeeper checks the ensemble's ids and size, and the roles that need masters or Marathon.
func (c *checker) zooKeeper() {
	t := c.t
	zkIDs := map[int]string{}
	var zks []string
	for _, h := range t.Hosts {
		if !h.has(RoleZK) {
			continue
		}
		zks = append(zks, h.Name)
		if other, ok := zkIDs[h.ZKID]; ok {
			c.bad(h.Name, "zk_id", "%d is already the zk_id of host %q", h.ZKID, other)
		} else {
			zkIDs[h.ZKID] = h.Name
		}
	}
	masters := t.HostsWithRole(RoleMaster)
	switch {
	case len(zks) == 0 && len(t.Hosts) > 0:
		c.bad("", "hosts", "no host has role zk: Mesos masters and Marathon keep their state in ZooKeeper")
	case len(zks)%2 == 0 && len(zks) > 0:
		c.warn("", "hosts", "%d ZooKeeper hosts (%s): an even-sized ensemble survives no more failures than %d hosts (quorum %d of %d); use an odd number",
			len(zks), strings.Join(zks, ", "), len(zks)-1, len(zks)/2+1, len(zks))
	}
	if len(masters)%2 == 0 && len(masters) > 0 {
		c.warn("", "hosts", "%d Mesos masters: an even number survives no more failures than %d (quorum %d of %d); use an odd number",
			len(masters), len(masters)-1, len(masters)/2+1, len(masters))
	}
	if len(t.HostsWithRole(RoleMarathon)) == 0 {
		for _, h := range t.HostsWithRole(RoleLB) {
			c.bad(h.Name, "roles", "role lb routes Marathon apps, and no host has role marathon")
		}
	}
	if len(masters) == 0 {
		for _, h := range t.Hosts {
			for _, r := range []string{RoleMarathon, RoleAgent, RoleProxy} {
				if h.has(r) {
					c.bad(h.Name, "roles", "role %s needs a Mesos master, and no host has role master", r)
				}
			}
		}
	}
}

// lbGroups checks the LB groups and that every lb host serves one.
func (c *checker) lbGroups(byName map[string]int) {
	t := c.t
	groups := map[string]bool{}
	served := map[string]bool{}
	for i, g := range t.LBGroups {
		field := fmt.Sprintf("lb_groups[%d]", i)
		switch {
		case g.Name == "":
			c.bad("", field+".name", "required (the HAPROXY_GROUP value apps use)")
		case !groupRe.MatchString(g.Name):
			c.bad("", field+".name", "%q: use letters, digits, - and _", g.Name)
		case groups[g.Name]:
			c.bad("", field+".name", "group %q is listed twice", g.Name)
		}
		groups[g.Name] = true
		if len(g.Hosts) == 0 {
			c.bad("", field+".hosts", "group %q lists no host", g.Name)
		}
		for _, name := range g.Hosts {
			j, ok := byName[name]
			switch {
			case !ok:
				c.bad("", field+".hosts", "group %q: no host is named %q", g.Name, name)
			case !t.Hosts[j].has(RoleLB):
				c.bad(name, "roles", "lb group %q lists this host, which lacks role lb", g.Name)
			default:
				served[name] = true
			}
		}
	}
	for _, h := range t.Hosts {
		if h.has(RoleLB) && !served[h.Name] && h.Name != "" {
			c.bad(h.Name, "roles", "role lb, but no lb_groups entry lists this host")
		}
	}
}

// ports checks that every listener is an IP:port in range that no other listener has.
func (c *checker) ports(dupIP map[string]bool) {
	t := c.t
	used := map[string]string{} // "ip:port" → "host "x" (what)"
	for _, l := range t.listeners() {
		if dupIP[l.host] {
			continue
		}
		if l.port < 1 || l.port > 65535 {
			c.bad(l.host, l.field, "port %d is outside 1–65535", l.port)
			continue
		}
		key := netip.AddrPortFrom(mustAddr(t.hostByName(l.host).IP), uint16(l.port)).String()
		if other, ok := used[key]; ok {
			c.bad(l.host, l.field, "port %d on %s is already used by %s", l.port, t.hostByName(l.host).IP, other)
			continue
		}
		used[key] = fmt.Sprintf("host %q (%s)", l.host, l.what)
	}
}

// listener is one port a role opens on its host's IP.
type listener struct {
	host, field, what string
	port              int
}

// listeners lists every port the topology opens, in host order then role order, so a clash is
// reported on the later of the two.
func (t *Topology) listeners() []listener {
	var out []listener
	for _, h := range t.Hosts {
		add := func(field, what string, port int) {
			out = append(out, listener{host: h.Name, field: field, what: what, port: port})
		}
		if h.has(RoleZK) {
			add("zk_client_port", "zk client", h.ZKClientPort)
			add("zk_peer_port", "zk peer", h.ZKPeerPort)
			add("zk_election_port", "zk election", h.ZKElectionPort)
		}
		if h.has(RoleMaster) {
			add("master_port", "mesos master", h.MasterPort)
		}
		if h.has(RoleMarathon) {
			add("marathon_port", "marathon", h.MarathonPort)
		}
		if h.has(RoleAgent) {
			add("agent_port", "mesos agent", h.AgentPort)
		}
		for i, g := range t.LBGroups {
			if !slices.Contains(g.Hosts, h.Name) || !h.has(RoleLB) {
				continue
			}
			f := fmt.Sprintf("lb_groups[%d].", i)
			add(f+"http_port", "lb "+g.Name+" http", g.HTTPPort)
			add(f+"https_port", "lb "+g.Name+" https", g.HTTPSPort)
			add(f+"stats_port", "lb "+g.Name+" stats", g.StatsPort)
			add(f+"appid_port", "lb "+g.Name+" app-id frontend", g.AppIDPort)
			add(f+"api_port", "lb "+g.Name+" api", g.APIPort)
		}
		if h.has(RoleDNS) {
			add("dns_port", "dns", h.DNSPort)
			add("dns_api_port", "dns api", h.DNSAPIPort)
		}
		if h.has(RoleProxy) {
			add("proxy_mesos_port", "mesos leader proxy", h.ProxyMesosPort)
			add("proxy_marathon_port", "marathon leader proxy", h.ProxyMarathonPort)
			if t.proxiesZK() {
				add("proxy_zk_port", "zookeeper proxy", h.ProxyZKPort)
			}
			add("proxy_api_port", "proxy api", h.ProxyAPIPort)
			add("proxy_stats_port", "proxy stats", h.ProxyStatsPort)
		}
	}
	return out
}

func mustAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

func (t *Topology) hostByName(name string) *Host {
	for i := range t.Hosts {
		if t.Hosts[i].Name == name {
			return &t.Hosts[i]
		}
	}
	return &Host{}
}

// has reports whether the host carries role r.
func (h Host) has(r string) bool { return slices.Contains(h.Roles, r) }

// Has reports whether the host carries role r.
func (h Host) Has(r string) bool { return h.has(r) }

// Host returns the host named name.
func (t *Topology) Host(name string) (Host, bool) {
	for _, h := range t.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// HostsWithRole returns the hosts carrying role r, in file order (zk hosts in zk_id order).
func (t *Topology) HostsWithRole(r string) []Host {
	var out []Host
	for _, h := range t.Hosts {
		if h.has(r) {
			out = append(out, h)
		}
	}
	if r == RoleZK {
		slices.SortStableFunc(out, func(a, b Host) int { return a.ZKID - b.ZKID })
	}
	return out
}

// ZKServers returns the ZooKeeper client addresses, "ip:port", in zk_id order.
func (t *Topology) ZKServers() []string {
	var out []string
	for _, h := range t.HostsWithRole(RoleZK) {
		out = append(out, hostPort(h.IP, h.ZKClientPort))
	}
	return out
}

// ZKURL returns the zk:// URL of path (e.g. "/mesos") on the whole ensemble.
func (t *Topology) ZKURL(path string) string {
	return "zk://" + strings.Join(t.ZKServers(), ",") + "/" + strings.TrimPrefix(path, "/")
}

// Masters returns the Mesos masters' addresses, "ip:port".
func (t *Topology) Masters() []string {
	var out []string
	for _, h := range t.HostsWithRole(RoleMaster) {
		out = append(out, hostPort(h.IP, h.MasterPort))
	}
	return out
}

// Marathons returns the Marathon URLs, "http://ip:port".
func (t *Topology) Marathons() []string {
	var out []string
	for _, h := range t.HostsWithRole(RoleMarathon) {
		out = append(out, "http://"+hostPort(h.IP, h.MarathonPort))
	}
	return out
}

// Agents returns the Mesos agents' addresses, "ip:port", of those with a fixed ip.
func (t *Topology) Agents() []string {
	var out []string
	for _, h := range t.HostsWithRole(RoleAgent) {
		if h.IP == "" {
			continue // ip_from: known at boot only
		}
		out = append(out, hostPort(h.IP, h.AgentPort))
	}
	return out
}

// DNSServers returns the DNS lodestars' addresses, "ip:port".
func (t *Topology) DNSServers() []string {
	var out []string
	for _, h := range t.HostsWithRole(RoleDNS) {
		out = append(out, hostPort(h.IP, h.DNSPort))
	}
	return out
}

// Quorum is the Mesos masters' replicated-log quorum, ⌊masters/2⌋+1. It is never a field of
// the topology: a quorum typed by hand goes stale when masters are added.
func (t *Topology) Quorum() int { return len(t.HostsWithRole(RoleMaster))/2 + 1 }

// ZKQuorum is the number of ZooKeeper members that must be up, ⌊members/2⌋+1.
func (t *Topology) ZKQuorum() int { return len(t.HostsWithRole(RoleZK))/2 + 1 }

// hostPort joins an IP and a port, bracketing IPv6.
func hostPort(ip string, port int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip + ":" + strconv.Itoa(port)
	}
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// failed reports whether a mistake was already found in one of fields.
func (c *checker) failed(fields ...string) bool {
	for _, e := range c.errs {
		if slices.Contains(fields, e.Field) {
			return true
		}
	}
	return false
}
