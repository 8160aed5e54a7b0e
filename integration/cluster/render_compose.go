package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"
)

// Paths inside the compose lab's containers.
const (
	composeMasterWorkDir = "/var/lib/mesos/master"
	// composeAgentWorkRoot holds each agent's work_dir. The path is the same on the machine and
	// in the agent's container: the machine's Docker daemon mounts task sandboxes from it.
	composeAgentWorkRoot = "/var/tmp/lodestar-cluster"
)

// container is one compose service before it becomes YAML.
type container struct {
	name        string
	comment     string
	image       string
	build       string
	hostname    string
	command     []string
	entrypoint  []string
	env         [][2]string
	volumes     []string
	secrets     []string
	privileged  bool
	pidHost     bool
	networkHost string // the holder service whose network namespace this container joins
	vmNetwork   bool   // the container runs in the VM's network namespace (network_mode: host)
	ports       []string
	ip          string // a fixed address on the lab network (a container owning its host's IP)
}

// renderCompose renders one docker-compose.yml for the whole topology. Each host gets its IP on
// one bridge network. A host running one container gives that container the IP; a host
// running several gets a holder container that owns the IP and host name, and the others join
// its network namespace, so they share the IP as processes on one machine would (which is why
// Validate refuses two listeners on one IP:port).
func renderCompose(t *Topology) (map[string][]byte, error) {
	if err := composeRefusals(t); err != nil {
		return nil, err
	}
	var services []container
	var volumes []string
	lodestars := map[string][]Lodestar{}
	for _, l := range t.Lodestars() {
		lodestars[l.Host] = append(lodestars[l.Host], l)
	}
	for _, h := range t.Hosts {
		var cs []container
		if h.has(RoleZK) {
			cs = append(cs, t.composeZK(h))
			volumes = append(volumes, h.Name+"-zk-data", h.Name+"-zk-datalog")
		}
		if h.has(RoleMaster) {
			cs = append(cs, t.composeMaster(h))
			volumes = append(volumes, h.Name+"-master-work")
		}
		if h.has(RoleMarathon) {
			cs = append(cs, t.composeMarathon(h))
		}
		if h.has(RoleAgent) && t.agentsOnVMNetwork() {
			// Apart from the host's other containers: they keep its lab IP.
			services = append(services, t.composeAgent(h))
		} else if h.has(RoleAgent) {
			cs = append(cs, t.composeAgent(h))
		}
		for _, l := range lodestars[h.Name] {
			cs = append(cs, t.composeLodestar(h, l))
		}
		if len(cs) == 0 {
			continue
		}
		if len(cs) == 1 {
			cs[0].hostname, cs[0].ip, cs[0].ports = h.Name, h.IP, t.composePorts(h)
			services = append(services, cs...)
			continue
		}
		holder := container{
			name:       h.Name,
			comment:    fmt.Sprintf("Host %q: owns %s and the host name; its other containers join its network.", h.Name, h.IP),
			image:      t.Images.Lodestar,
			build:      t.Images.LodestarBuild,
			hostname:   h.Name,
			entrypoint: []string{"sleep", "infinity"},
			ip:         h.IP,
			ports:      t.composePorts(h),
		}
		services = append(services, holder)
		for _, c := range cs {
			c.networkHost = h.Name
			services = append(services, c)
		}
	}

	root := mapping()
	root.HeadComment = strings.TrimSpace(fmt.Sprintf(`
Lab cluster %q on one machine: every host of the topology is one IP on the bridge network
%q; a host with several containers has a holder container owning its IP, and the
others join its network namespace. Mesos quorum %d (of %d masters), ZooKeeper %s.
%s`, t.Name, t.Name, t.Quorum(), len(t.Masters()), strings.Join(t.ZKServers(), ","),
		strings.TrimSpace(generatedBy(FormatCompose, ""))))
	add(root, "name", str(t.Name))
	svcs := mapping()
	for _, c := range services {
		add(svcs, c.name, c.node(t.Name))
		svcs.Content[len(svcs.Content)-2].HeadComment = c.comment
	}
	add(root, "services", svcs)
	ipam := mapping()
	add(ipam, "config", seq(mappingOf("subnet", str(t.Network.Subnet))))
	net := mapping()
	add(net, "driver", str("bridge"))
	add(net, "ipam", ipam)
	add(root, "networks", mappingOf(t.Name, net))
	if len(volumes) > 0 {
		vols := mapping()
		for _, v := range volumes {
			add(vols, v, mapping())
		}
		add(root, "volumes", vols)
	}
	if t.APIAuthFile != "" {
		add(root, "secrets", mappingOf(composeAPIAuthSecret, mappingOf("file", str(t.APIAuthFile))))
		root.Content[len(root.Content)-2].HeadComment = "The lodestars' API credential (token:T or basic:user:pass): create the file before `up`,\nreadable by uid 10001 (the image's lodestar user): compose mounts it with its own owner and mode."
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	return map[string][]byte{ComposeFile: out.Bytes()}, nil
}

// composeRefusals is why the topology cannot run as a compose lab, if it cannot.
func composeRefusals(t *Topology) error {
	if t.Network.Subnet == "" {
		return Problem{Field: "network.subnet", Message: "required for --format compose: the CIDR of the lab's bridge network (e.g. 172.28.0.0/16)"}
	}
	for _, h := range t.Hosts {
		if h.IPFrom != "" {
			return Problem{Host: h.Name, Field: "ip_from", Message: "--format compose gives every host a fixed ip on the lab's bridge: set ip instead"}
		}
		if a, _ := netip.ParseAddr(h.IP); !a.Is4() {
			return Problem{Host: h.Name, Field: "ip", Message: fmt.Sprintf("%s: --format compose needs IPv4 addresses", h.IP)}
		}
	}
	return composeNamesAvoidMesos(t)
}

// mesosContainerPrefix is the prefix of the container names Mesos's docker containerizer
// takes as its own: an agent that finds a container so named and unknown to it (at start-up
// or on recovery) kills it, so a lab named "mesos" would have its agents kill the lab.
const mesosContainerPrefix = "mesos"

// composeNamesAvoidMesos refuses a compose project name (the cluster's name, which compose
// puts first in every container's name) and host names (the first word of every service's
// name, which operators reuse as a container name with docker run --name) beginning with
// "mesos". Only compose needs this: systemd hosts run no containers of their own.
func composeNamesAvoidMesos(t *Topology) error {
	var errs []error
	why := "--format compose names containers after it, and Mesos's docker containerizer kills containers named mesos-* as its own"
	if strings.HasPrefix(t.Name, mesosContainerPrefix) {
		errs = append(errs, Problem{Field: "name", Message: fmt.Sprintf("%q: %s; name the cluster e.g. %q", t.Name, why, "lab-"+t.Name)})
	}
	for _, h := range t.Hosts {
		if strings.HasPrefix(h.Name, mesosContainerPrefix) {
			errs = append(errs, Problem{Host: h.Name, Field: "name", Message: fmt.Sprintf("%q: %s; name the host e.g. %q", h.Name, why, "node-"+h.Name)})
		}
	}
	return errors.Join(errs...)
}

func (t *Topology) composeZK(h Host) container {
	var servers []string
	for _, z := range t.HostsWithRole(RoleZK) {
		servers = append(servers, fmt.Sprintf("server.%d=%s;%d", z.ZKID, zkServerLine(z), z.ZKClientPort))
	}
	return container{
		name:    h.Name + "-zk",
		comment: fmt.Sprintf("ZooKeeper member %d of %d.", h.ZKID, len(servers)),
		image:   t.Images.ZooKeeper,
		env: [][2]string{
			{"ZOO_MY_ID", itoa(h.ZKID)},
			{"ZOO_SERVERS", strings.Join(servers, " ")},
			{"ZOO_STANDALONE_ENABLED", fmt.Sprint(len(servers) == 1)},
			{"ZOO_ADMINSERVER_ENABLED", "false"},
			{"ZOO_4LW_COMMANDS_WHITELIST", fourLetterWords},
		},
		volumes: []string{h.Name + "-zk-data:/data", h.Name + "-zk-datalog:/datalog"},
	}
}

func (t *Topology) composeMaster(h Host) container {
	return container{
		name:    h.Name + "-master",
		comment: fmt.Sprintf("Mesos master: ip and hostname set, or it advertises an address the others cannot reach and loses leadership; quorum %d of %d.", t.Quorum(), len(t.Masters())),
		image:   t.Images.MesosMaster,
		env: t.withExtraEnv([][2]string{
			{"MESOS_CLUSTER", t.Name},
			{"MESOS_IP", h.IP},
			{"MESOS_HOSTNAME", h.IP},
			{"MESOS_PORT", itoa(h.MasterPort)},
			{"MESOS_ZK", t.MesosZK()},
			{"MESOS_QUORUM", itoa(t.Quorum())},
			{"MESOS_REGISTRY", "replicated_log"},
			{"MESOS_WORK_DIR", composeMasterWorkDir},
			{"MESOS_ACLS", compactJSON(t.ACLs())},
		}, h, RoleMaster),
		volumes: []string{h.Name + "-master-work:" + composeMasterWorkDir},
	}
}

func (t *Topology) composeMarathon(h Host) container {
	return container{
		name:    h.Name + "-marathon",
		comment: fmt.Sprintf("Marathon, framework principal %q and role %q (persistent volumes need both).", t.Marathon.Principal, t.Marathon.Role),
		image:   t.Images.Marathon,
		env: t.withExtraEnv([][2]string{
			{"MARATHON_MASTER", t.MesosZK()},
			{"MARATHON_ZK", t.MarathonZK()},
			{"MARATHON_HOSTNAME", h.IP},
			{"MARATHON_HTTP_PORT", itoa(h.MarathonPort)},
			{"MARATHON_FRAMEWORK_NAME", "marathon"},
			{"MARATHON_MESOS_AUTHENTICATION_PRINCIPAL", t.Marathon.Principal},
			{"MARATHON_MESOS_ROLE", t.Marathon.Role},
		}, h, RoleMarathon),
	}
}

func (t *Topology) composeAgent(h Host) container {
	workDir := fmt.Sprintf("%s/%s/%s", composeAgentWorkRoot, t.Name, h.Name)
	ip, comment := h.IP, "Mesos agent: registered under its IP (not a name only the data centre's DNS knows); Docker through the machine's daemon."
	if t.agentsOnVMNetwork() {
		ip = t.Compose.VMIP
		comment = fmt.Sprintf("Mesos agent on the VM's network, registered under %s: the VM's Docker daemon publishes task ports there, where health checks and HAProxy reach them.", ip)
	}
	env := [][2]string{
		{"MESOS_MASTER", t.MesosZK()},
		{"MESOS_IP", ip},
		{"MESOS_HOSTNAME", ip},
		{"MESOS_PORT", itoa(h.AgentPort)},
		{"MESOS_CONTAINERIZERS", "docker,mesos"},
		{"MESOS_EXECUTOR_REGISTRATION_TIMEOUT", executorRegistrationTimeout},
		{"MESOS_DOCKER_MESOS_IMAGE", t.Images.MesosAgent},
		{"MESOS_SYSTEMD_ENABLE_SUPPORT", "false"},
		{"MESOS_WORK_DIR", workDir},
	}
	if a := agentAttributes(h); a != "" {
		env = append(env, [2]string{"MESOS_ATTRIBUTES", a})
	}
	env = t.withExtraEnv(env, h, RoleAgent)
	return container{
		name:       h.Name + "-agent",
		comment:    comment,
		image:      t.Images.MesosAgent,
		env:        env,
		vmNetwork:  t.agentsOnVMNetwork(),
		privileged: true,
		pidHost:    true,
		volumes: []string{
			"/var/run/docker.sock:/var/run/docker.sock",
			"/sys/fs/cgroup:/sys/fs/cgroup",
			workDir + ":" + workDir,
		},
	}
}

func (t *Topology) composeLodestar(h Host, l Lodestar) container {
	var comment string
	switch l.Kind {
	case RoleLB:
		comment = fmt.Sprintf("Edge lodestar with HAProxy for LB group %q.", l.Group)
	case RoleDNS:
		comment = fmt.Sprintf("DNS lodestar, authoritative for %q.", t.Domain)
	case RoleProxy:
		comment = "lodestar serving the leader-only Mesos and Marathon proxies."
	}
	c := container{
		name:    h.Name + "-" + l.Name,
		comment: comment,
		image:   t.Images.Lodestar,
		build:   t.Images.LodestarBuild,
		command: l.Args,
	}
	if t.APIAuthFile != "" {
		c.secrets = []string{composeAPIAuthSecret}
	}
	return c
}

// composeAPIAuthSecret is the compose secret holding APIAuthFile; containers read it at
// composeAPIAuth.
const (
	composeAPIAuthSecret = "lodestar_api_auth"
	composeAPIAuth       = "/run/secrets/" + composeAPIAuthSecret
)

// node is the container's compose service.
func (c container) node(network string) *yaml.Node {
	n := mapping()
	add(n, "image", str(c.image))
	if c.build != "" {
		add(n, "build", str(c.build))
	}
	if c.hostname != "" {
		add(n, "hostname", str(c.hostname))
	}
	if c.entrypoint != nil {
		add(n, "entrypoint", strs(c.entrypoint))
	}
	if c.command != nil {
		add(n, "command", strs(c.command))
	}
	if c.privileged {
		add(n, "privileged", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	}
	if c.pidHost {
		add(n, "pid", str("host"))
	}
	if len(c.env) > 0 {
		env := mapping()
		for _, kv := range c.env {
			add(env, kv[0], str(kv[1]))
		}
		add(n, "environment", env)
	}
	if len(c.volumes) > 0 {
		add(n, "volumes", strs(c.volumes))
	}
	if len(c.secrets) > 0 {
		add(n, "secrets", strs(c.secrets))
	}
	if len(c.ports) > 0 {
		// Quoted: YAML 1.1 readers take an unquoted 22:22 for a base-60 number.
		ports := strs(c.ports)
		for _, p := range ports.Content {
			p.Style = yaml.DoubleQuotedStyle
		}
		add(n, "ports", ports)
	}
	switch {
	case c.vmNetwork:
		add(n, "network_mode", str("host"))
	case c.networkHost != "":
		add(n, "network_mode", str("service:"+c.networkHost))
		add(n, "depends_on", strs([]string{c.networkHost}))
	default:
		add(n, "networks", mappingOf(network, mappingOf("ipv4_address", str(c.ip))))
	}
	add(n, "restart", str("unless-stopped"))
	return n
}

// compactJSON is the JSON on one line, for an environment variable.
func compactJSON(b []byte) string {
	var out strings.Builder
	inString, escaped := false, false
	for _, c := range string(b) {
		switch {
		case inString:
			out.WriteRune(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
			out.WriteRune(c)
		case c == ' ' || c == '\n' || c == '\t':
		default:
			out.WriteRune(c)
		}
	}
	return out.String()
}

// YAML node builders: keys keep the order they are added in.

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func mappingOf(key string, v *yaml.Node) *yaml.Node {
	n := mapping()
	add(n, key, v)
	return n
}

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}

// str is a string scalar; the encoder quotes it when it would read as another type.
func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func strs(ss []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	for _, s := range ss {
		n.Content = append(n.Content, str(s))
	}
	return n
}

func seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Content: items}
}
