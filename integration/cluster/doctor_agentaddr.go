package cluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// The agent address check: tasks, Marathon's health checks and HAProxy reach an agent at the
// address of its pid, which the agent advertises. An agent in a container advertises its
// container's bridge address unless told otherwise (--advertise_ip, or host networking); from
// its own host that address answers, from every other host it does not.

// CheckAgentAddress names the agent address findings.
const CheckAgentAddress = "agent address"

// dockerPools are Docker's default address pools for bridge networks: 172.17.0.0/16 (the
// default bridge) up to 172.31.0.0/16, one /16 per network.
var dockerPools = netip.MustParsePrefix("172.16.0.0/12")

// dockerNetwork returns the /16 Docker would give a bridge network holding ip, and whether ip
// is in Docker's default pools at all.
func dockerNetwork(ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap()
	if !dockerPools.Contains(ip) || ip.As4()[1] == 16 {
		return netip.Prefix{}, false
	}
	p, _ := ip.Prefix(16)
	return p, true
}

// dockerAdvertiseFix is the fix for an agent that advertises a container network's address.
const dockerAdvertiseFix = "the agent advertises its container's bridge address: run it with host networking " +
	"(network_mode: host, docker run --net=host), or set --advertise_ip (MESOS_ADVERTISE_IP) to the host's address and publish its port"

// checkAgentAddress dials the address of an agent's pid and judges it against the leading
// master's address (from its pid; "" when unknown).
func (d *Doctor) checkAgentAddress(ctx context.Context, name, pid, master string) Finding {
	addr := pidAddr(pid)
	ip, port, err := parseIPPort(addr)
	if err != nil {
		return Finding{Check: CheckAgentAddress, Target: name, Severity: SeverityError,
			Message: fmt.Sprintf("its pid %q names no ip:port: %v", firstLine(pid), err),
			Fix:     "start the agent with --advertise_ip set to the host's address"}
	}
	dctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	conn, dialErr := d.cfg.Dial(dctx, "tcp", addr)
	cancel()
	if dialErr == nil {
		conn.Close()
	}
	var masterIP netip.Addr
	if m, _, err := parseIPPort(master); err == nil {
		masterIP = m
	}
	return judgeAgentAddress(name, ip, port, masterIP, dialErr)
}

// parseIPPort reads "ip:port" with a port from 1 to 65535.
func parseIPPort(s string) (netip.Addr, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q is not an IP address", host)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return netip.Addr{}, 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return ip.Unmap(), port, nil
}

// judgeAgentAddress turns what the dial found into a finding: unreachable is an error; a
// reachable address that only its own host can reach (a Docker network the leading master is
// not on, or loopback while the master is not) is a warning.
func judgeAgentAddress(name string, ip netip.Addr, port int, master netip.Addr, dialErr error) Finding {
	f := Finding{Check: CheckAgentAddress, Target: name}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	network, inDocker := dockerNetwork(ip)
	if inDocker && master.IsValid() && network.Contains(master) {
		inDocker = false // the masters share the network: a lab inside one bridge
	}
	switch {
	case dialErr != nil && inDocker:
		f.Severity = SeverityError
		f.Message = fmt.Sprintf("advertises %s, on a Docker network (%s), not reachable from here: %v", addr, network, dialErr)
		f.Fix = dockerAdvertiseFix
	case dialErr != nil:
		f.Severity = SeverityError
		f.Message = fmt.Sprintf("advertises %s, not reachable from here: %v", addr, dialErr)
		f.Fix = fmt.Sprintf("open port %d of the agent to this host and the masters, or start it with --advertise_ip set to an address they reach", port)
	case inDocker:
		f.Severity = SeverityWarn
		f.Message = fmt.Sprintf("advertises %s, on a Docker network (%s) that the leading master (%s) is not on: "+
			"it answers here (the same host?) but not from other hosts, and tasks on the host's docker daemon are not at that address", addr, network, addrString(master))
		f.Fix = dockerAdvertiseFix
	case ip.IsLoopback() && master.IsValid() && !master.IsLoopback():
		f.Severity = SeverityWarn
		f.Message = fmt.Sprintf("advertises the loopback address %s while the leading master is at %s: only its own host reaches it", addr, master)
		f.Fix = "start the agent with --ip and --advertise_ip set to the host's address (a host name that /etc/hosts maps to 127.0.1.1 does this)"
	default:
		f.Severity, f.Message = SeverityOK, "advertises "+addr+", reachable from here"
	}
	return f
}

// addrString is ip as text, "unknown" when not valid.
func addrString(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	return ip.String()
}
