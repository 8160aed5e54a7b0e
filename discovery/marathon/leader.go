package marathon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// DefaultLeaderCheck is how often the connected member is asked who leads. GET /v2/leader is
// cheap, and a leader-only proxy in front of Marathon follows a leader change within it, well
// inside a second.
const DefaultLeaderCheck = 500 * time.Millisecond

// resolveTimeout bounds the lookup of the leader's host name.
const resolveTimeout = 2 * time.Second

// resolveRetry is how long a leader host name that did not resolve waits for its next lookup.
// Every lookup holds up the session's events (up to resolveTimeout while DNS does not answer),
// so it is not repeated on every leader check.
const resolveRetry = 10 * time.Second

// sendLeader sends the Marathon leader to the registry when it is not what was sent last, with
// its host resolved to an IP address (a proxy's runtime API takes only addresses). A name that
// did not resolve is tried again after resolveRetry, or at once when the leader changes. Only
// the Run goroutine calls it.
func (s *Source) sendLeader(ctx context.Context, sink discovery.Sink, leader string) error {
	last := s.sentLeader
	if last != nil && last.Leader == leader && (leader == "" || last.Addr != "" || time.Since(s.resolvedAt) < resolveRetry) {
		return nil
	}
	u := discovery.SetMarathonLeader{Leader: leader}
	if leader != "" {
		addr, err := s.resolveLeader(ctx, leader)
		s.resolvedAt = time.Now()
		if err != nil && (last == nil || last.Leader != leader) {
			s.log.Warn("cannot resolve the Marathon leader's host name; a leader proxy cannot follow it until it resolves",
				"leader", leader, "err", err)
		}
		u.Addr = addr
	}
	if err := sink.Send(ctx, u); err != nil {
		return err
	}
	if last == nil || last.Leader != leader {
		if last != nil {
			leaderChanges.Inc()
		}
		s.log.Info("Marathon leader", "leader", leader, "addr", u.Addr, "previous", prevLeader(last))
	}
	s.sentLeader = &u
	return nil
}

func prevLeader(u *discovery.SetMarathonLeader) string {
	if u == nil {
		return ""
	}
	return u.Leader
}

// resolveLeader turns "host:port" into "ip:port": an IP address is kept, a name is looked up
// (IPv4 preferred, as Marathon's own --hostname usually is).
func (s *Source) resolveLeader(ctx context.Context, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("leader %q: %w", hostport, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.JoinHostPort(ip.Unmap().String(), port), nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := s.lookupIP(ctx, "ip", host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("%s has no address", host)
	}
	i := max(slices.IndexFunc(ips, func(ip netip.Addr) bool { return ip.Unmap().Is4() }), 0)
	return net.JoinHostPort(ips[i].Unmap().String(), port), nil
}
