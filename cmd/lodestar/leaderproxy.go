package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery/mesos"
	"github.com/lodestar-lb/lodestar/haproxy"
)

// leaderProxyFlag is the repeatable --leader-proxy name=host:port: an HTTP frontend on
// host:port whose backend holds only the current Mesos or Marathon leader, switched through
// HAProxy's runtime API when the leader changes; or, for zk, a TCP frontend to every member of
// the ZooKeeper ensemble --mesos-zk names, health-checked.
type leaderProxyFlag struct {
	proxies []haproxy.LeaderProxy
	// fs is the command's flag set: apply reads the source flags from it.
	fs *flag.FlagSet
}

// addLeaderProxyFlag registers --leader-proxy on c.
func addLeaderProxyFlag(c *command) *leaderProxyFlag {
	f := &leaderProxyFlag{fs: c.fs}
	c.fs.Var(f, "leader-proxy", "`name=host:port`: an HTTP frontend whose backend is only the current leader, switched without a reload; "+
		"name is mesos (needs --mesos-zk or --mesos-master) or marathon (needs --marathon); "+
		"zk=host:port is instead a TCP frontend to any live member of --mesos-zk's ensemble; repeatable, e.g. mesos=127.0.0.1:15050")
	return f
}

// String implements flag.Value.
func (f *leaderProxyFlag) String() string {
	if f == nil {
		return ""
	}
	parts := make([]string, len(f.proxies))
	for i, p := range f.proxies {
		parts[i] = p.Name + "=" + p.Bind
	}
	return strings.Join(parts, ",")
}

// Set implements flag.Value: one name=host:port, or several separated by commas (as an
// environment variable gives them).
func (f *leaderProxyFlag) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parseLeaderProxy(item)
		if err != nil {
			return err
		}
		for _, q := range f.proxies {
			if q.Name == p.Name {
				return fmt.Errorf("leader proxy %s given twice (%s and %s): one frontend per leader", p.Name, q.Bind, p.Bind)
			}
		}
		f.proxies = append(f.proxies, p)
	}
	return nil
}

// parseLeaderProxy reads "name=host:port".
func parseLeaderProxy(s string) (haproxy.LeaderProxy, error) {
	name, bind, ok := strings.Cut(s, "=")
	if !ok {
		return haproxy.LeaderProxy{}, fmt.Errorf("%q: want name=host:port, e.g. mesos=127.0.0.1:15050", s)
	}
	p := haproxy.LeaderProxy{Name: strings.ToLower(strings.TrimSpace(name)), Bind: strings.TrimSpace(bind)}
	if p.Name != haproxy.LeaderMesos && p.Name != haproxy.LeaderMarathon && p.Name != haproxy.LeaderZooKeeper {
		return p, fmt.Errorf("%q: unknown leader %q: want %s, %s or %s", s, p.Name, haproxy.LeaderMesos, haproxy.LeaderMarathon, haproxy.LeaderZooKeeper)
	}
	// The ZooKeeper members come later, from --mesos-zk (apply): check the bind alone here.
	if err := p.ValidateBind(); err != nil {
		return p, err
	}
	return p, nil
}

// apply checks that every leader proxy has a source for its leader and a port of its own, and
// adds the proxies to cfg.
func (f *leaderProxyFlag) apply(cfg *haproxy.Config) error {
	set := func(name string) bool {
		fl := f.fs.Lookup(name)
		return fl != nil && fl.Value.String() != ""
	}
	var errs []error
	for i, p := range f.proxies {
		switch p.Name {
		case haproxy.LeaderZooKeeper:
			members, err := f.zooKeeperMembers(p)
			if err != nil {
				errs = append(errs, err)
			}
			f.proxies[i].Members = members
		case haproxy.LeaderMesos:
			if !set("mesos-zk") && !set("mesos-master") {
				errs = append(errs, fmt.Errorf("--leader-proxy %s=%s needs the Mesos masters to follow: give --mesos-zk or --mesos-master", p.Name, p.Bind))
			}
		case haproxy.LeaderMarathon:
			if !set("marathon") {
				errs = append(errs, fmt.Errorf("--leader-proxy %s=%s needs Marathon to follow: give --marathon", p.Name, p.Bind))
			}
		}
		for _, other := range ownBinds(cfg) {
			if samePort(p.Bind, other.bind) {
				errs = append(errs, fmt.Errorf("--leader-proxy %s=%s: its port is --%s's (%s)", p.Name, p.Bind, other.flag, other.bind))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cfg.LeaderProxies = append(cfg.LeaderProxies, f.proxies...)
	return nil
}

// zooKeeperMembers are the members of the ensemble --mesos-zk names, "host:port" each, for the
// proxy p.
func (f *leaderProxyFlag) zooKeeperMembers(p haproxy.LeaderProxy) ([]string, error) {
	fl := f.fs.Lookup("mesos-zk")
	if fl == nil || fl.Value.String() == "" {
		return nil, fmt.Errorf("--leader-proxy %s=%s needs the ZooKeeper ensemble: give --mesos-zk zk://h1:2181,h2:2181/mesos", p.Name, p.Bind)
	}
	servers, _, err := mesos.ParseZKURL(fl.Value.String())
	if err != nil {
		return nil, fmt.Errorf("--leader-proxy %s=%s: its members come from --mesos-zk: %w", p.Name, p.Bind, err)
	}
	p.Members = servers
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("--leader-proxy %s=%s: its members come from --mesos-zk: %w", p.Name, p.Bind, err)
	}
	return servers, nil
}

type ownBind struct{ flag, bind string }

// ownBinds are the binds of lodestar's other frontends in cfg.
func ownBinds(cfg *haproxy.Config) []ownBind {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	binds := []ownBind{{"stats-bind", or(cfg.StatsBind, haproxy.DefaultStatsBind)}}
	if !cfg.DontBindHTTPHTTPS {
		binds = append(binds, ownBind{"http-bind", or(cfg.HTTPBind, haproxy.DefaultHTTPBind)},
			ownBind{"https-bind", or(cfg.HTTPSBind, haproxy.DefaultHTTPSBind)})
	}
	if !cfg.NoAppIDFrontend {
		binds = append(binds, ownBind{"appid-bind", or(cfg.AppIDBind, haproxy.DefaultAppIDBind)})
	}
	return binds
}

// samePort reports whether two "host:port[ options]" binds have the same port.
func samePort(a, b string) bool {
	port := func(s string) string {
		s, _, _ = strings.Cut(s, " ")
		_, p, err := net.SplitHostPort(s)
		if err != nil {
			return ""
		}
		return p
	}
	pa := port(a)
	return pa != "" && pa == port(b)
}
