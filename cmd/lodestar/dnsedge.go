package main

import (
	"fmt"
	"time"

	"github.com/lodestar-lb/lodestar/dnsserver"
)

// dnsEdgeFlags bound what a DNS client can take of lodestar: response-rate limiting for
// clients outside --dns-forward-allow, and caps on TCP connections.
type dnsEdgeFlags struct {
	rrlRate, rrlSlip, rrlIPv4, rrlIPv6, rrlTable *int
	rrlWindow                                    *time.Duration
	tcpMax, tcpPerClient                         *int
	tcpIdle                                      *time.Duration
}

// defaultRRLRate is --dns-rrl-rate's default: responses a second per client prefix.
const defaultRRLRate = 20

func addDNSEdgeFlags(c *command) *dnsEdgeFlags {
	fs := c.fs
	return &dnsEdgeFlags{
		rrlRate: fs.Int("dns-rrl-rate", defaultRRLRate, "response-rate limit: in-zone UDP answers a `second` per client prefix outside --dns-forward-allow (their answers are also capped at 4x the query's size); 0 turns both off"),
		rrlSlip: fs.Int("dns-rrl-slip", dnsserver.DefaultRRLSlip, "every `N`th answer over the rate limit goes out truncated (the client retries over TCP) instead of dropped; 0 drops all, 1 truncates all"),
		rrlWindow: fs.Duration("dns-rrl-window", dnsserver.DefaultRRLWindow,
			"a client prefix over the rate limit stays limited until it has been quiet for up to this `long` (1s-1h)"),
		rrlIPv4:  fs.Int("dns-rrl-ipv4-prefix", dnsserver.DefaultRRLIPv4Prefix, "IPv4 clients in one `prefix` length share a rate limit"),
		rrlIPv6:  fs.Int("dns-rrl-ipv6-prefix", dnsserver.DefaultRRLIPv6Prefix, "IPv6 clients in one `prefix` length share a rate limit"),
		rrlTable: fs.Int("dns-rrl-table-size", dnsserver.DefaultRRLMaxClients, "client prefixes the rate limiter remembers at most (`n`, some 50 bytes each)"),
		tcpMax: fs.Int("dns-tcp-max-conns", 0,
			fmt.Sprintf("DNS TCP connections open at once, in all; more are closed on accept (0: a quarter of the descriptor limit, here %d)", dnsserver.DefaultTCPMaxConns())),
		tcpPerClient: fs.Int("dns-tcp-max-conns-per-client", dnsserver.DefaultTCPMaxConnsPerClient, "DNS TCP connections open at once from one client address"),
		tcpIdle:      fs.Duration("dns-tcp-idle-timeout", dnsserver.DefaultTCPIdleTimeout, "close a DNS TCP connection after this `long` without a query"),
	}
}

// config returns the server's limits; dnsserver.New checks their ranges.
func (f *dnsEdgeFlags) config() (dnsserver.RRLConfig, dnsserver.TCPConfig, error) {
	if *f.rrlRate < 0 {
		return dnsserver.RRLConfig{}, dnsserver.TCPConfig{}, fmt.Errorf("--dns-rrl-rate %d: want 0 (off) or more", *f.rrlRate)
	}
	if *f.tcpMax < 0 || *f.tcpPerClient < 1 {
		return dnsserver.RRLConfig{}, dnsserver.TCPConfig{}, fmt.Errorf("--dns-tcp-max-conns %d, --dns-tcp-max-conns-per-client %d: want 0 (the default) or more, and 1 or more", *f.tcpMax, *f.tcpPerClient)
	}
	if err := durationAtLeast("dns-tcp-idle-timeout", *f.tcpIdle, 100*time.Millisecond); err != nil {
		return dnsserver.RRLConfig{}, dnsserver.TCPConfig{}, err
	}
	rrl := dnsserver.RRLConfig{
		Rate: *f.rrlRate, Slip: *f.rrlSlip, Window: *f.rrlWindow,
		IPv4Prefix: *f.rrlIPv4, IPv6Prefix: *f.rrlIPv6, MaxClients: *f.rrlTable,
	}
	tcp := dnsserver.TCPConfig{MaxConns: *f.tcpMax, MaxConnsPerClient: *f.tcpPerClient, IdleTimeout: *f.tcpIdle}
	return rrl, tcp, nil
}
