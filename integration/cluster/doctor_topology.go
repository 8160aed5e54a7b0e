package cluster

// TargetsFromTopology lists everything the doctor probes in a cluster described by t: the
// ZooKeeper ensemble, the Mesos masters and their ZooKeeper path, Marathon and the principal
// and role it should run with, the leader proxies of proxy hosts, and every lodestar's API
// (lb groups, dns and proxy hosts).
func TargetsFromTopology(t *Topology) Targets {
	tg := Targets{
		ZooKeeper:    t.ZKServers(),
		MesosMasters: t.Masters(),
		Marathon:     t.Marathons(),
	}
	if len(tg.Marathon) > 0 {
		tg.MarathonIdentity = t.Marathon
	}
	if len(tg.ZooKeeper) > 0 && len(tg.MesosMasters) > 0 {
		// Where the rendered masters register: the topology's zk_paths.mesos.
		tg.MesosZKPath = t.ZKPaths.Mesos
		if tg.MesosZKPath == "" {
			tg.MesosZKPath = DefaultMesosZKPath
		}
	}
	for _, g := range t.LBGroups {
		for _, name := range g.Hosts {
			if h, ok := t.Host(name); ok {
				tg.Lodestar = append(tg.Lodestar, "http://"+hostPort(h.IP, g.APIPort))
			}
		}
	}
	for _, h := range t.HostsWithRole(RoleDNS) {
		tg.Lodestar = append(tg.Lodestar, "http://"+hostPort(h.IP, h.DNSAPIPort))
	}
	for _, h := range t.HostsWithRole(RoleProxy) {
		tg.Lodestar = append(tg.Lodestar, "http://"+hostPort(h.IP, h.ProxyAPIPort))
		tg.Proxies = append(tg.Proxies,
			Proxy{Name: "mesos", Addr: hostPort(h.IP, h.ProxyMesosPort)},
			Proxy{Name: "marathon", Addr: hostPort(h.IP, h.ProxyMarathonPort)})
		if t.proxiesZK() {
			tg.Proxies = append(tg.Proxies, Proxy{Name: "zk", Addr: hostPort(h.IP, h.ProxyZKPort)})
		}
	}
	return tg
}
