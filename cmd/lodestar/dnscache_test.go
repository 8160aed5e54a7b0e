package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/dnsserver"
)

// TestDNSCacheFlags: serve caches forwarded answers by default; --dns-cache-size 0 turns the
// cache off, and a maximum TTL under a second is refused.
func TestDNSCacheFlags(t *testing.T) {
	config := func(args ...string) (dnsserver.Config, error) {
		t.Helper()
		c := newCommand("serve", "", "", "")
		f := addDNSServeFlags(c)
		if err := c.fs.Parse(append([]string{"--dns-listen", "127.0.0.1:0"}, args...)); err != nil {
			t.Fatal(err)
		}
		return f.serverConfig(slog.New(slog.DiscardHandler))
	}
	cfg, err := config()
	if err != nil {
		t.Fatal(err)
	}
	if want := (dnsserver.CacheConfig{Size: dnsserver.DefaultCacheSize, MaxTTL: time.Hour}); cfg.Cache != want {
		t.Errorf("default cache %+v, want %+v", cfg.Cache, want)
	}
	cfg, err = config("--dns-cache-size", "0", "--dns-cache-max-ttl", "5m")
	if err != nil {
		t.Fatal(err)
	}
	if want := (dnsserver.CacheConfig{Size: 0, MaxTTL: 5 * time.Minute}); cfg.Cache != want {
		t.Errorf("cache %+v, want %+v", cfg.Cache, want)
	}
	if _, err := config("--dns-cache-max-ttl", "10ms"); err == nil || !strings.Contains(err.Error(), "dns-cache-max-ttl") {
		t.Errorf("--dns-cache-max-ttl 10ms: %v, want an error naming the flag", err)
	}
}
