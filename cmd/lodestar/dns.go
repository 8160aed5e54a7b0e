package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/dnsserver"
)

// dnsRecordFlags say how records are named; serve and records share them.
type dnsRecordFlags struct {
	domain        *string
	ipSources     *listFlag
	enforceRFC952 *bool
	healthyOnly   *bool
	framework     *string
	srvWeight     *uint
	soa           *soaFlags
}

func addDNSRecordFlags(c *command) *dnsRecordFlags {
	fs := c.fs
	return &dnsRecordFlags{
		domain:        fs.String("dns-domain", "mesos", "`zone` lodestar is authoritative for"),
		ipSources:     addList(c, "ip-sources", "where a task's IP comes from, first that yields one wins: netinfo, mesos, docker, host", "netinfo", "mesos", "host"),
		enforceRFC952: fs.Bool("enforce-rfc952", false, "name labels per RFC 952 (at most 24 characters, no leading digit), as mesos-dns's EnforceRFC952"),
		healthyOnly:   fs.Bool("dns-healthy-only", false, "leave out tasks Marathon reports unhealthy"),
		framework:     fs.String("marathon-framework-name", "marathon", "Mesos framework `name` of Marathon: tasks known from Marathon's events are named under it before the next Mesos poll"),
		srvWeight:     fs.Uint("dns-srv-weight", uint(dnsserver.DefaultSRVWeight), "`weight` of every SRV record, 0 to 65535 (mesos-dns answers 1)"),
		soa:           addSOAFlags(c),
	}
}

func addList(c *command, name, usage string, def ...string) *listFlag {
	l := newList(def...)
	c.fs.Var(l, name, usage)
	return l
}

func (f *dnsRecordFlags) config() (dnsserver.RecordConfig, error) {
	for _, s := range f.ipSources.vals {
		if err := oneOf("ip-sources", s, "netinfo", "mesos", "docker", "host"); err != nil {
			return dnsserver.RecordConfig{}, err
		}
	}
	if *f.srvWeight > 65535 {
		return dnsserver.RecordConfig{}, fmt.Errorf("--dns-srv-weight %d: want 0 to 65535", *f.srvWeight)
	}
	weight := uint16(*f.srvWeight)
	rc := dnsserver.RecordConfig{
		Domain:            strings.TrimSuffix(strings.ToLower(*f.domain), "."),
		IPSources:         f.ipSources.vals,
		EnforceRFC952:     *f.enforceRFC952,
		HealthyOnly:       *f.healthyOnly,
		MarathonFramework: *f.framework,
		SRVWeight:         &weight,
	}
	if err := f.soa.apply(&rc); err != nil {
		return dnsserver.RecordConfig{}, err
	}
	return rc, nil
}

// dnsServeFlags configure the DNS server of `serve`.
type dnsServeFlags struct {
	records         *dnsRecordFlags
	listen          *string
	ttl             *uint
	negativeTTL     *uint
	forward         *bool
	upstreams       *listFlag
	zoneUpstreams   *listFlag
	forwardAllow    *listFlag
	upstreamTimeout *time.Duration
	cacheSize       *int
	cacheMaxTTL     *time.Duration
	edge            *dnsEdgeFlags
}

func addDNSServeFlags(c *command) *dnsServeFlags {
	fs := c.fs
	return &dnsServeFlags{
		records:     addDNSRecordFlags(c),
		listen:      fs.String("dns-listen", "", "serve DNS on this UDP and TCP `address` (e.g. 127.0.0.1:8053 or :53); empty turns DNS off"),
		ttl:         fs.Uint("dns-ttl", 60, "TTL of answers, in seconds"),
		negativeTTL: fs.Uint("dns-negative-ttl", 5, "SOA minimum, the TTL of NXDOMAIN and no-data answers, in seconds"),
		forward:     fs.Bool("dns-forward", true, "forward names outside --dns-domain upstream; false answers REFUSED"),
		upstreams: addList(c, "dns-upstream",
			"upstream resolvers `host:port` for other names, comma-separated or repeated (default: the nameservers of /etc/resolv.conf)"),
		zoneUpstreams: addList(c, "dns-zone-upstream",
			"per-zone resolvers as `zone=host:port` (repeatable); the longest matching zone wins"),
		forwardAllow: addList(c, "dns-forward-allow",
			"client `CIDR`s lodestar forwards for; others get REFUSED (lodestar is no open resolver)",
			"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
		upstreamTimeout: fs.Duration("dns-upstream-timeout", 2*time.Second, "how long one forwarded query waits for the upstreams"),
		cacheSize: fs.Int("dns-cache-size", dnsserver.DefaultCacheSize,
			"forwarded answers kept for their TTL (`n`, up to 4 kB each; negative answers per RFC 2308); 0 turns the cache off"),
		cacheMaxTTL: fs.Duration("dns-cache-max-ttl", dnsserver.DefaultCacheMaxTTL, "keep a forwarded answer at most this `long`, whatever its TTL"),
		edge:        addDNSEdgeFlags(c),
	}
}

func (f *dnsServeFlags) enabled() bool { return *f.listen != "" }

// serverConfig checks the DNS flags and returns the server's configuration.
func (f *dnsServeFlags) serverConfig(log *slog.Logger) (dnsserver.Config, error) {
	rc, err := f.records.config()
	if err != nil {
		return dnsserver.Config{}, err
	}
	zones := map[string][]string{}
	for _, zu := range f.zoneUpstreams.vals {
		zone, addr, ok := strings.Cut(zu, "=")
		if !ok || zone == "" || addr == "" {
			return dnsserver.Config{}, fmt.Errorf("--dns-zone-upstream %q: want zone=host:port", zu)
		}
		zones[zone] = append(zones[zone], addr)
	}
	var allow []netip.Prefix
	for _, s := range f.forwardAllow.vals {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return dnsserver.Config{}, fmt.Errorf("--dns-forward-allow %q: %w", s, err)
		}
		allow = append(allow, p)
	}
	if *f.ttl > 1<<31 || *f.negativeTTL > 1<<31 {
		return dnsserver.Config{}, fmt.Errorf("--dns-ttl and --dns-negative-ttl must be below 2^31 seconds")
	}
	if err := durationAtLeast("dns-upstream-timeout", *f.upstreamTimeout, 10*time.Millisecond); err != nil {
		return dnsserver.Config{}, err
	}
	if err := durationAtLeast("dns-cache-max-ttl", *f.cacheMaxTTL, time.Second); err != nil {
		return dnsserver.Config{}, err
	}
	rrl, tcp, err := f.edge.config()
	if err != nil {
		return dnsserver.Config{}, err
	}
	return dnsserver.Config{
		Listen:          *f.listen,
		Domain:          rc.Domain,
		TTL:             uint32(*f.ttl),
		NegativeTTL:     uint32(*f.negativeTTL),
		Forward:         *f.forward,
		Upstreams:       f.upstreams.vals,
		ZoneUpstreams:   zones,
		ForwardAllow:    allow,
		UpstreamTimeout: *f.upstreamTimeout,
		Logger:          log,
		RRL:             rrl,
		TCP:             tcp,
		Cache:           dnsserver.CacheConfig{Size: *f.cacheSize, MaxTTL: *f.cacheMaxTTL},
	}, nil
}

// dnsFrontEnd is the DNS front end of `serve` and its /v1/config; frontends.go shows it to
// the api package.
type dnsFrontEnd struct {
	fe     *dnsserver.FrontEnd
	config any
}

// build checks the DNS flags and makes the front end; nil when --dns-listen is empty.
func (f *dnsServeFlags) build(log *slog.Logger, src *sourceFlags) (*dnsFrontEnd, error) {
	if !f.enabled() {
		return nil, nil
	}
	cfg, err := f.serverConfig(log)
	if err != nil {
		return nil, err
	}
	rc, err := f.records.config()
	if err != nil {
		return nil, err
	}
	rc.Logger = log
	rc.RefreshSeconds = int(src.mesosRefresh.Seconds())
	fe, err := dnsserver.NewFrontEnd(dnsserver.FrontEndConfig{Server: cfg, Records: rc})
	if err != nil {
		return nil, err
	}
	return &dnsFrontEnd{fe: fe, config: mesosDNSConfig(cfg, rc, src)}, nil
}

// redacted replaces the Mesos secret in /v1/config.
const redacted = "(redacted)"

// mesosDNSConfig is /v1/config: mesos-dns's field names where one exists, secrets redacted.
func mesosDNSConfig(cfg dnsserver.Config, rc dnsserver.RecordConfig, src *sourceFlags) any {
	zk := discovery.RedactZKURL(*src.mesosZK)
	var creds any
	if user, _, ok := strings.Cut(*src.mesosAuth, ":"); ok {
		creds = map[string]string{"Principal": user, "Secret": redacted}
	}
	return map[string]any{
		"Masters":           src.mesosMasters.vals,
		"Zk":                zk,
		"MesosCredentials":  creds,
		"MesosHTTPSOn":      *src.mesosHTTPS,
		"RefreshSeconds":    int(src.mesosRefresh.Seconds()),
		"TTL":               cfg.TTL,
		"SOAMinttl":         cfg.NegativeTTL,
		"Domain":            rc.Domain,
		"Listener":          cfg.Listen,
		"Resolvers":         cfg.Upstreams,
		"ZoneResolvers":     cfg.ZoneUpstreams,
		"ExternalOn":        cfg.Forward,
		"ForwardAllow":      cfg.ForwardAllow,
		"Timeout":           cfg.UpstreamTimeout.Seconds(),
		"IPSources":         rc.IPSources,
		"EnforceRFC952":     rc.EnforceRFC952,
		"HealthyOnly":       rc.HealthyOnly,
		"MarathonFramework": rc.MarathonFramework,
		"Mname":             rc.SOAMname,
		"Email":             rc.SOARname,
		"SOAMname":          rc.SOAMname,
		"SOARname":          rc.SOARname,
		"SOARefresh":        rc.SOARefresh,
		"SOARetry":          rc.SOARetry,
		"SOAExpire":         rc.SOAExpire,
		"DnsOn":             true,
		"HttpOn":            true,
	}
}
