package dnsserver

import (
	"net/netip"

	"github.com/lodestar-lb/lodestar/discovery"
)

// addrPair holds the addresses of an agent, master or framework the way mesos-dns keeps them:
// the first IPv4 and the first IPv6 address seen. Tasks keep every address (addrList).
type addrPair struct{ v4, v6 netip.Addr }

func (p *addrPair) offer(ip netip.Addr) {
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		if !p.v4.IsValid() {
			p.v4 = ip
		}
	case ip.Is6():
		if !p.v6.IsValid() {
			p.v6 = ip.WithZone("")
		}
	}
}

func (p addrPair) empty() bool { return !p.v4.IsValid() && !p.v6.IsValid() }

// addrList holds a task's addresses in the order its IP source gave them: mesos-dns publishes
// every one (IPv4 as A, IPv6 as AAAA), for instance every address of every network_info. The
// first two live inline, so the common task (one address, or an agent's IPv4 and IPv6) costs
// no allocation at 100,000 tasks.
type addrList struct {
	inline [2]netip.Addr
	n      int
	more   []netip.Addr
}

// add appends an address, IPv4-mapped IPv6 as IPv4 and without an IPv6 zone (no DNS record
// carries one).
func (l *addrList) add(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	ip = ip.Unmap().WithZone("")
	if l.n < len(l.inline) {
		l.inline[l.n] = ip
		l.n++
		return
	}
	l.more = append(l.more, ip)
}

// addString appends s when it is an IP address; anything else (a host name, a prefix,
// garbage from a label) is dropped, and so is an address with a zone (fe80::1%eth0): it means
// something only on the task's own link, and mesos-dns drops it too.
func (l *addrList) addString(s string) {
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		l.add(ip)
	}
}

// addPair appends a pair's IPv4 and IPv6 address.
func (l *addrList) addPair(p addrPair) {
	l.add(p.v4)
	l.add(p.v6)
}

func (l *addrList) empty() bool { return l.n == 0 }

// addList adds every address of l to rs.
func (b *builder) addList(rs *RecordSet, name string, l *addrList) {
	for _, ip := range l.inline[:l.n] {
		b.addIP(rs, name, ip)
	}
	for _, ip := range l.more {
		b.addIP(rs, name, ip)
	}
}

// latestRunning returns the TASK_RUNNING status with the highest timestamp (the first of equal
// ones), or nil: the status the netinfo, mesos and docker IP sources read.
func latestRunning(st []discovery.MesosTaskStatus) *discovery.MesosTaskStatus {
	var out *discovery.MesosTaskStatus
	for i := range st {
		if st[i].State == discovery.StateRunning && (out == nil || st[i].Timestamp > out.Timestamp) {
			out = &st[i]
		}
	}
	return out
}

// taskIPs applies the IP sources in order; the first that yields an address wins, with every
// address it yields, in order: all addresses of all network_infos (netinfo), every label of the
// key (mesos, docker), the agent's addresses (host).
func (b *builder) taskIPs(t *discovery.MesosTask, agent *agentInfo) addrList {
	status := latestRunning(t.Statuses)
	var l addrList
	for _, src := range b.sources {
		switch src {
		case srcNetinfo:
			if status != nil {
				for _, ip := range status.NetworkIPs {
					l.addString(ip)
				}
			}
		case srcMesos, srcDocker:
			key := mesosIPLabel
			if src == srcDocker {
				key = dockerIPLabel
			}
			if status != nil {
				for _, lb := range status.Labels {
					if lb.Key == key {
						l.addString(lb.Value)
					}
				}
			}
		case srcHost:
			l.addPair(agent.ips)
		}
		if !l.empty() {
			return l
		}
	}
	return l
}
