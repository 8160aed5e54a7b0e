package dnsserver

import (
	"net"
	"slices"
	"strconv"

	"github.com/lodestar-lb/lodestar/discovery"
)

// The records of frameworks and their tasks (Mesos state and Marathon apps): the names of
// DNS.md, built into the builder of records.go.

// frameworkRecords: {fw}.{d} and _framework._tcp.{fw}.{d} → {fw}.{d}:{port}, then the records
// of every running task on a known agent.
func (b *builder) frameworkRecords(f *discovery.Framework) {
	var ef *EnumerableFramework
	if b.enum != nil {
		b.enum.Frameworks = append(b.enum.Frameworks, &EnumerableFramework{Name: f.Name, Tasks: []*EnumerableTask{}})
		ef = b.enum.Frameworks[len(b.enum.Frameworks)-1]
	}
	fw := b.frameworkDomain(f.Name)
	if fw == "" {
		return
	}
	host, port, hasPID := splitPID(f.PID)
	if !hasPID {
		host = f.Hostname
	}
	if ips := b.resolve(host); !ips.empty() && !b.onTaskName(fw, f.Name) {
		fwName := fw + b.tail
		b.addNameIP(ips, fwName)
		if hasPID {
			b.addNameSRV(fwName, port, "_framework._tcp.", fwName)
		}
	}
	isMarathon := f.Name == b.cfg.MarathonFramework
	fwTail, slaveTail := b.tails(fw)
	for i := range f.Tasks {
		t := &f.Tasks[i]
		if t.State != discovery.StateRunning {
			continue
		}
		agent, ok := b.agents[t.SlaveID]
		if !ok || !b.keepMesosTask(t.ID, isMarathon) {
			continue
		}
		b.startTask(ef, t.Name, t.ID)
		b.mesosTaskRecords(t, fwTail, slaveTail, agent)
		b.cur = nil
		if b.marathon != nil {
			if _, known := b.marathon[t.ID]; known {
				b.fromMesos[t.ID] = true
			}
		}
	}
}

func (b *builder) startTask(ef *EnumerableFramework, name, id string) {
	if ef == nil {
		return
	}
	b.cur = &EnumerableTask{Name: name, ID: id, Records: []EnumerableRecord{}}
	ef.Tasks = append(ef.Tasks, b.cur)
}

// --- tasks ---

// indexMarathon indexes Marathon's tasks by id, for the merge with the Mesos state.
func (b *builder) indexMarathon() {
	if b.snap.Apps.Len() == 0 {
		return
	}
	b.marathon = make(map[string]*discovery.Task, b.snap.Tasks)
	b.appPrefix = make(map[string]bool, b.snap.Apps.Len())
	b.fromMesos = map[string]bool{}
	b.snap.Apps.Each(func(a *discovery.App) bool {
		b.appPrefix[marathonTaskPrefix(a.ID)] = true
		for _, t := range a.Tasks {
			b.marathon[t.ID] = t
		}
		return true
	})
}

// keepMesosTask decides about a running task of the Mesos state against Marathon's fresher
// view (Marathon's event stream is seconds ahead of the next state poll):
//   - HealthyOnly and Marathon reports the task unhealthy: out;
//   - Marathon reports it TASK_KILLING: out (it is going away);
//   - the task belongs to the Marathon framework and to an app Marathon knows, but Marathon
//     no longer lists the task: it was killed or lost since the poll, out;
//   - otherwise in (Marathon not configured, other frameworks, apps Marathon does not know).
func (b *builder) keepMesosTask(id string, isMarathon bool) bool {
	if b.marathon == nil {
		return true
	}
	if mt, ok := b.marathon[id]; ok {
		if b.cfg.HealthyOnly && !healthy(mt) {
			return false
		}
		return mt.State != discovery.StateKilling && !discovery.IsTerminal(mt.State)
	}
	return !isMarathon || !b.appKnown(id)
}

// appKnown reports whether a task id starts with the id prefix of an app Marathon knows.
// App ids may contain dots, so every dot is a candidate end of the prefix.
func (b *builder) appKnown(taskID string) bool {
	for i := 0; i < len(taskID); i++ {
		if taskID[i] == '.' && b.appPrefix[taskID[:i]] {
			return true
		}
	}
	return false
}

func healthy(t *discovery.Task) bool {
	for _, h := range t.Health {
		if !h.Alive {
			return false
		}
	}
	return true
}

// taskNaming is what the records of one task are built from.
type taskNaming struct {
	fwTail    string   // ".{fw}.{d}."
	slaveTail string   // ".{fw}.slave.{d}."
	id        string   // task id, hashed into the canonical name
	slave     string   // {slave}
	ips       addrList // the task's addresses, in order
	agentIPs  addrPair
	ports     []int // host ports (resources.ports)
	discovery *discovery.DiscoveryInfo
	// hash is the {hash} of the canonical names, made once for the task's two names when it
	// has DiscoveryInfo.
	hash   [hashLen]byte
	hashed bool
}

// tails returns the suffixes of a framework's task names: ".{fw}.{d}." and ".{fw}.slave.{d}.".
func (b *builder) tails(fw string) (string, string) {
	return "." + fw + b.tail, "." + fw + ".slave" + b.tail
}

func (b *builder) mesosTaskRecords(t *discovery.MesosTask, fwTail, slaveTail string, agent *agentInfo) {
	tn := taskNaming{
		fwTail: fwTail, slaveTail: slaveTail, id: t.ID, slave: agent.tail,
		ips: b.taskIPs(t, agent), agentIPs: agent.ips,
		ports: t.Ports,
	}
	if t.Discovery != nil && t.Discovery.Name != "" {
		// mesos-dns names a task with DiscoveryInfo twice: by the raw name (legacy, kept
		// because clients resolve it) and by the cleaned one.
		tn.discovery = t.Discovery
		cleaned := b.clean(t.Discovery.Name)
		if raw := legacyName(t.Discovery.Name); raw != "" && raw != cleaned {
			b.taskRecords(raw, &tn)
		}
		b.taskRecords(cleaned, &tn)
		return
	}
	b.taskRecords(b.clean(t.Name), &tn)
}

// clean is cleanLabel, memoised for the build: an app's tasks share one name.
func (b *builder) clean(name string) string {
	if c, ok := b.cleaned[name]; ok {
		return c
	}
	c := cleanLabel(name, b.rfc952)
	b.cleaned[name] = c
	return c
}

// taskRecords adds the records of one task under one task name:
//
//	{task}.{fw}.{d}, {canonical}.{d}          A/AAAA  the task's addresses
//	{task}.{fw}.slave.{d}, {canonical}.slave.{d}  A/AAAA  the agent's addresses
//	_{task}._{tcp,udp}.{fw}.slave.{d}         SRV     {canonical}.slave.{d}:{hostport}
//	_{task}._{tcp,udp}.{fw}.{d}               SRV     the same, without DiscoveryInfo
//	_{task}._{proto}.{fw}.{d} (+ _{portname}.) SRV    {canonical}.{d}:{discovery port}
//
// where {canonical} is {task}-{hash}-{slave}.{fw}, as in mesos-dns.
func (b *builder) taskRecords(task string, tn *taskNaming) {
	if task == "" {
		return
	}
	fwTail, slaveTail := tn.fwTail, tn.slaveTail
	g := b.group(task, tn)
	if !tn.ips.empty() {
		b.addList(g.taskSet(b), b.enumName2(task, fwTail), &tn.ips)
	}
	if !tn.agentIPs.empty() {
		b.addPair(g.slaveSet(b), b.enumName2(task, slaveTail), tn.agentIPs)
	}

	hasCanonical := tn.slave != ""
	var canonical, canonicalSlave string
	if hasCanonical {
		b.buf = append(b.buf[:0], task...)
		b.buf = append(b.buf, '-')
		if !tn.hashed {
			appendTaskHash(tn.hash[:0], tn.id)
			tn.hashed = true
		}
		b.buf = append(b.buf, tn.hash[:]...)
		b.buf = append(b.buf, '-')
		b.buf = append(b.buf, tn.slave...)
		stem := len(b.buf)
		b.buf = append(b.buf, tn.fwTail...)
		canonical = b.internName(b.buf)
		b.buf = append(b.buf[:stem], tn.slaveTail...)
		canonicalSlave = b.internName(b.buf)
		if !tn.ips.empty() {
			b.addList(b.setString(canonical), b.enumName(canonical), &tn.ips)
		}
		if !tn.agentIPs.empty() {
			b.addPair(b.setString(canonicalSlave), b.enumName(canonicalSlave), tn.agentIPs)
		}
	}
	if !hasCanonical {
		return
	}
	// A task name near 63 characters leaves its canonical names over the label limit: they
	// have no records (set counted them invalid), and SRV records must not name them, since a
	// target that is no DNS name makes the whole reply malformed.
	disc := tn.discovery != nil
	ports := tn.ports
	if !validFQDN(canonicalSlave) {
		ports = nil
	}
	for _, p := range ports {
		if p <= 0 || p > 65535 {
			continue
		}
		rr := SRV{Target: canonicalSlave, Port: uint16(p), Weight: b.weight}
		if disc {
			g.hostPortsDisc = append(g.hostPortsDisc, rr)
		} else {
			g.hostPorts = append(g.hostPorts, rr)
		}
		if b.cur != nil {
			b.enumSRV(rr, "_", task, "._tcp", slaveTail)
			b.enumSRV(rr, "_", task, "._udp", slaveTail)
			if !disc {
				b.enumSRV(rr, "_", task, "._tcp", fwTail)
				b.enumSRV(rr, "_", task, "._udp", fwTail)
			}
		}
	}
	if !disc || !validFQDN(canonical) {
		return
	}
	b.discoverySRVs(g, task, fwTail, canonical, tn.discovery.Ports)
}

// discoverySRVs adds the SRV records of a task's DiscoveryInfo ports:
// _{task}._{proto}.{fw}.{d} (and _{portname}._{task}._{proto}.{fw}.{d}) → {canonical}.{d}:{port}.
func (b *builder) discoverySRVs(g *srvGroup, task, fwTail, canonical string, ports []discovery.DiscoveryPort) {
	for _, dp := range ports {
		if dp.Number <= 0 || dp.Number > 65535 {
			continue
		}
		rr := SRV{Target: canonical, Port: uint16(dp.Number), Weight: b.weight}
		portName := ""
		if dp.Name != "" {
			portName = b.clean(dp.Name)
		}
		protos := [2]string{"tcp", "udp"}
		nProtos := 2
		if dp.Protocol != "" {
			if p := b.clean(dp.Protocol); p != "" {
				protos[0], nProtos = p, 1
			}
		}
		for _, proto := range protos[:nProtos] {
			switch proto {
			case "tcp":
				g.discTCP = append(g.discTCP, rr)
				b.enumSRV(rr, "_", task, "._tcp", fwTail)
			case "udp":
				g.discUDP = append(g.discUDP, rr)
				b.enumSRV(rr, "_", task, "._udp", fwTail)
			default:
				b.addNameSRV(rr.Target, rr.Port, "_", task, "._", proto, fwTail)
			}
			if portName != "" {
				b.addNameSRV(rr.Target, rr.Port, "_", portName, "._", task, "._", proto, fwTail)
			}
		}
	}
}

// internName copies a name (a canonical name, map key and SRV target at once) into the arena.
func (b *builder) internName(name []byte) string {
	return b.arena.intern(name)
}

// srvGroup collects the SRV records mesos-dns gives the four names of a task name in a
// framework, _{task}._tcp and _{task}._udp, in {fw}.{d} and in {fw}.slave.{d}. Why: for
// tasks without DiscoveryInfo all four carry the same records, so the four names share one
// list instead of holding four copies (a quarter of the index's memory at 100,000 tasks),
// and the list is sorted and hashed once.
type srvGroup struct {
	task, fwTail, slaveTail string
	// The A/AAAA sets of {task}.{fw}.{d} and {task}.{fw}.slave.{d}, looked up once per
	// group rather than once per task.
	task4, slave4         *RecordSet
	task4Done, slave4Done bool
	// hostPorts: resources.ports of tasks without DiscoveryInfo (all four names);
	// hostPortsDisc: of tasks with it (the slave names only).
	hostPorts, hostPortsDisc []SRV
	// discTCP, discUDP: DiscoveryInfo ports, to the {fw}.{d} names of their protocol.
	discTCP, discUDP []SRV
}

func (g *srvGroup) taskSet(b *builder) *RecordSet {
	if !g.task4Done {
		g.task4, g.task4Done = b.set(b.name(g.task, g.fwTail)), true
	}
	return g.task4
}

func (g *srvGroup) slaveSet(b *builder) *RecordSet {
	if !g.slave4Done {
		g.slave4, g.slave4Done = b.set(b.name(g.task, g.slaveTail)), true
	}
	return g.slave4
}

// group returns the SRV group of a task name in a framework, creating it.
func (b *builder) group(task string, tn *taskNaming) *srvGroup {
	key := b.name(task, tn.fwTail)
	if g, ok := b.groups[string(key)]; ok {
		return g
	}
	g := &srvGroup{task: task, fwTail: tn.fwTail, slaveTail: tn.slaveTail}
	b.groups[b.arena.intern(key)] = g
	b.groupList = append(b.groupList, g)
	return g
}

// finishGroup gives a group's names their records: a list shared by every name it is the
// whole answer of, and a merged list where a name has more.
func (b *builder) finishGroup(g *srvGroup) {
	plain := sortSRVs(g.hostPorts)
	slave := plain
	if len(g.hostPortsDisc) > 0 {
		slave = mergeSRVs(plain, sortSRVs(g.hostPortsDisc))
	}
	tcp, udp := plain, plain
	if len(g.discTCP) > 0 {
		tcp = mergeSRVs(plain, sortSRVs(g.discTCP))
	}
	if len(g.discUDP) > 0 {
		udp = mergeSRVs(plain, sortSRVs(g.discUDP))
	}
	b.setSRVs(slave, "_", g.task, "._tcp", g.slaveTail)
	b.setSRVs(slave, "_", g.task, "._udp", g.slaveTail)
	b.setSRVs(tcp, "_", g.task, "._tcp", g.fwTail)
	b.setSRVs(udp, "_", g.task, "._udp", g.fwTail)
}

// setSRVs gives a name a sorted SRV list. The list is clipped, so that no later append to
// one sharer can write into another's; a name that already has records (a task named
// "framework" meets _framework._tcp.{fw}.{d}) gets a merged copy.
func (b *builder) setSRVs(list []SRV, parts ...string) {
	if len(list) == 0 {
		return
	}
	rs := b.set(b.name(parts...))
	switch {
	case rs == nil:
	case len(rs.SRV) == 0:
		rs.SRV = slices.Clip(list)
	default:
		rs.SRV = sortSRVs(slices.Concat(rs.SRV, list))
	}
}

// enumSRV records an SRV record of a group for Enumerate.
func (b *builder) enumSRV(rr SRV, parts ...string) {
	if b.cur == nil {
		return
	}
	if n := string(b.name(parts...)); validFQDN(n) {
		b.enumRecord(n, net.JoinHostPort(rr.Target, strconv.Itoa(int(rr.Port))), "SRV")
	}
}

// enumName2 is enumName for a name in two parts.
func (b *builder) enumName2(a, c string) string {
	if b.cur == nil {
		return ""
	}
	return a + c
}

// enumName returns name when records are being enumerated (so they carry their owner), else "".
func (b *builder) enumName(name string) string {
	if b.cur == nil {
		return ""
	}
	return name
}

// marathonRecords adds the running Marathon tasks the Mesos state gave no records for (not
// polled yet), named as Mesos will name them: the app id reversed ("/shop/web" → "web-shop")
// under the Marathon framework. Addresses: the task's own IPs with container networking, else
// the agent's host (an IP, or a name through ResolveHost); SRV records from its host ports.
func (b *builder) marathonRecords() {
	if b.marathon == nil {
		return
	}
	fw := b.frameworkDomain(b.cfg.MarathonFramework)
	if fw == "" {
		return
	}
	fwTail, slaveTail := b.tails(fw)
	var ef *EnumerableFramework
	b.snap.Apps.Each(func(a *discovery.App) bool {
		task := b.clean(marathonTaskName(a.ID))
		for _, t := range a.Tasks {
			if t.State != discovery.StateRunning || b.fromMesos[t.ID] || b.cfg.HealthyOnly && !healthy(t) {
				continue
			}
			if b.enum != nil && ef == nil {
				ef = b.enum.framework(b.cfg.MarathonFramework)
			}
			b.startTask(ef, marathonTaskName(a.ID), t.ID)
			b.marathonTaskRecords(a, t, task, fwTail, slaveTail)
			b.cur = nil
		}
		return true
	})
}

func (b *builder) marathonTaskRecords(a *discovery.App, t *discovery.Task, task, fwTail, slaveTail string) {
	hostIPs := b.resolve(t.Host)
	tn := taskNaming{fwTail: fwTail, slaveTail: slaveTail, id: t.ID, slave: slaveIDTail(t.SlaveID), agentIPs: hostIPs, ports: t.HostPorts}
	tn.ips.addPair(hostIPs)
	if agent, ok := b.agents[t.SlaveID]; ok && t.SlaveID != "" {
		tn.agentIPs = agent.ips
		if hostIPs.empty() {
			tn.ips.addPair(agent.ips)
		}
	}
	if a.Network == discovery.NetworkContainer {
		// Every address, as the Mesos state's netinfo will give them once it is polled.
		var own addrList
		for _, ip := range t.IPAddresses {
			own.addString(ip)
		}
		if !own.empty() {
			tn.ips = own
		}
	}
	b.taskRecords(task, &tn)
}

// --- enumeration ---

// enumRecord appends a record to the task being enumerated, once.
func (b *builder) enumRecord(name, host, rtype string) {
	r := EnumerableRecord{Name: name, Host: host, Rtype: rtype}
	if slices.Contains(b.cur.Records, r) {
		return
	}
	b.cur.Records = append(b.cur.Records, r)
}
