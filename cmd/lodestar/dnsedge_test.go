package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/dnsserver"
)

// TestDNSEdgeDefaults: serve limits clients outside --dns-forward-allow and caps TCP by
// default; --dns-rrl-rate 0 turns the limit off.
func TestDNSEdgeDefaults(t *testing.T) {
	config := func(args ...string) dnsserver.Config {
		t.Helper()
		c := newCommand("serve", "", "", "")
		f := addDNSServeFlags(c)
		if err := c.fs.Parse(append([]string{"--dns-listen", "127.0.0.1:0"}, args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.serverConfig(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := config()
	if r := cfg.RRL; r.Rate != defaultRRLRate || r.Slip != 2 || r.Window != 15*time.Second || r.IPv4Prefix != 24 || r.IPv6Prefix != 56 {
		t.Errorf("default RRL %+v, want rate %d, slip 2, window 15s, /24 and /56", r, defaultRRLRate)
	}
	if c := cfg.TCP; c.MaxConns != 0 || c.MaxConnsPerClient != 128 || c.IdleTimeout != 10*time.Second {
		t.Errorf("default TCP limits %+v, want the derived total, 128 a client, 10s idle", c)
	}
	cfg = config("--dns-rrl-rate", "0", "--dns-rrl-slip", "1", "--dns-tcp-max-conns", "500", "--dns-tcp-max-conns-per-client", "7", "--dns-tcp-idle-timeout", "3s")
	if cfg.RRL.Rate != 0 || cfg.RRL.Slip != 1 || cfg.TCP != (dnsserver.TCPConfig{MaxConns: 500, MaxConnsPerClient: 7, IdleTimeout: 3 * time.Second}) {
		t.Errorf("flags not passed on: %+v %+v", cfg.RRL, cfg.TCP)
	}
}
