package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lodestar-lb/lodestar/api"
	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/discovery/zkrules"
	"github.com/lodestar-lb/lodestar/haproxy"
)

// The adapters below give the api package its small interfaces over the concrete front ends,
// so that api imports neither haproxy nor dnsserver.

// routing is api.Routing over the HAProxy front end; rules come from the registry.
type routing struct {
	applier *haproxy.Applier
	reg     *discovery.Registry
}

func (r routing) AppRoutes(appID string) []api.Route {
	routes := r.applier.AppRoutes(appID)
	if len(routes) == 0 {
		return nil
	}
	rule := ""
	if rl, ok := r.reg.Snapshot().Rules[appID]; ok {
		rule = rl.ACL
	}
	out := make([]api.Route, len(routes))
	for i, rt := range routes {
		out[i] = api.Route{Port: rt.PortIndex, ServicePort: rt.ServicePort, Mode: rt.Mode, Backend: rt.Backend,
			Frontend: rt.Frontend, VHosts: rt.VHosts, Path: rt.Path, Servers: make([]api.RouteServer, len(rt.Servers))}
		if i == 0 {
			out[i].Rule = rule // a bamboo rule replaces the vhost ACLs of the first port
		}
		for j, s := range rt.Servers {
			out[i].Servers[j] = api.RouteServer{Slot: s.Name, TaskID: s.TaskID, Address: s.Address(), State: s.State.String()}
		}
	}
	return out
}

// AppBackends lists every app's backends in one pass (api.BackendLister, for GET
// /v1/requests).
func (r routing) AppBackends() []api.AppBackend {
	bs := r.applier.AppBackends()
	out := make([]api.AppBackend, len(bs))
	for i, b := range bs {
		out[i] = api.AppBackend{AppID: b.AppID, ServicePort: b.ServicePort, Backend: b.Backend}
	}
	return out
}

func (r routing) AppLabels(appID string) any {
	if v := r.applier.AppLabels(appID); v != nil {
		return v
	}
	return nil
}

func (r routing) Summary() api.RoutingSummary {
	st := r.applier.Status()
	sum := api.RoutingSummary{
		LastApply: applyOf(st.LastApply), LastReload: applyOf(st.LastReload), Reloads: st.Reloads,
		Excluded: make([]api.Excluded, len(st.Excluded)),
		Warnings: make([]api.Warning, len(st.Warnings)),
	}
	for i, e := range st.Excluded {
		sum.Excluded[i] = api.Excluded(e)
	}
	for i, w := range st.Warnings {
		sum.Warnings[i] = api.Warning(w)
	}
	if err := r.applier.Healthy(); err != nil {
		sum.Unhealthy = err.Error()
	}
	return sum
}

// liveServers is api.LiveServers over HAProxy's admin socket, read at most once a second
// however many pages ask.
type liveServers struct{ state *haproxy.LiveState }

func newLiveServers(applier *haproxy.Applier) (liveServers, error) {
	state, err := haproxy.NewLiveState(haproxy.LiveStateConfig{Read: applier.ShowServerStats})
	return liveServers{state}, err
}

func (l liveServers) ServerStates(ctx context.Context) (api.ServerStates, error) {
	res, err := l.state.Servers(ctx)
	if err != nil {
		return nil, err
	}
	return haproxyReading{res}, nil
}

// haproxyReading is api.ServerStates over one reading of HAProxy's servers.
type haproxyReading struct{ servers *haproxy.LiveServers }

func (r haproxyReading) Server(backend, slot string) (api.LiveServer, bool) {
	s, ok := r.servers.Server(backend, slot)
	if !ok {
		return api.LiveServer{}, false
	}
	return api.LiveServer{Status: s.Status, Check: s.CheckStatus, CheckCode: s.CheckCode, CheckDesc: s.CheckDesc,
		LastCheck: s.LastCheck, Weight: s.Weight, Sessions: s.Sessions}, true
}

// BackendRequests is api.BackendStates: the backend's request total from its BACKEND row.
func (r haproxyReading) BackendRequests(backend string) (uint64, bool) {
	b, ok := r.servers.Backend(backend)
	return b.Requests, ok
}

// ReadAt is api.BackendStates: when HAProxy was read.
func (r haproxyReading) ReadAt() time.Time { return r.servers.At }

func applyOf(rec *haproxy.ApplyRecord) *api.Apply {
	if rec == nil {
		return nil
	}
	d, _ := time.ParseDuration(rec.Duration)
	return &api.Apply{Kind: rec.Kind, Reason: rec.Reason, At: rec.At, Duration: d, Error: rec.Error}
}

// The DNS front end as api.MesosDNS and api.DNSRecords.

func (d *dnsFrontEnd) Hosts(name string) []api.HostRecord {
	var out []api.HostRecord
	for _, h := range d.fe.Hosts(name) {
		out = append(out, api.HostRecord(h))
	}
	return out
}

func (d *dnsFrontEnd) Services(name string) []api.ServiceRecord {
	var out []api.ServiceRecord
	for _, s := range d.fe.Services(name) {
		out = append(out, api.ServiceRecord(s))
	}
	return out
}

func (d *dnsFrontEnd) Enumerate() any { return d.fe.Enumerate() }
func (d *dnsFrontEnd) AXFR() any      { return d.fe.AXFR() }
func (d *dnsFrontEnd) Config() any    { return d.config }

func (d *dnsFrontEnd) Records(name string) []api.DNSRecord {
	var out []api.DNSRecord
	for _, r := range d.fe.Records(name) {
		out = append(out, api.DNSRecord(r))
	}
	return out
}

func (d *dnsFrontEnd) AppNames(appID string) []string { return d.fe.AppNames(appID) }

// resyncer is api.Resyncer: POST /v1/resync and /_mlb_signal/hup both resync every source and
// let HAProxy try again the apps it rejected (applier is nil without HAProxy).
type resyncer struct {
	sources []discovery.Source
	applier *haproxy.Applier
}

func (r resyncer) Resync(ctx context.Context) error {
	if r.applier != nil {
		r.applier.ForgetBlame()
	}
	return resync(ctx, r.sources)
}

// servedRegistry is the registry whose sources /metrics reports the sync age of. A process
// serves one registry; tests run serve many times in one process, so the collector is
// registered once and follows the newest registry.
var servedRegistry = &registryCollector{}

type registryCollector struct {
	once sync.Once
	err  error
	cur  atomic.Pointer[discovery.Registry]
}

func (c *registryCollector) serve(reg *discovery.Registry) error {
	c.cur.Store(reg)
	c.once.Do(func() {
		if err := prometheus.Register(c); err != nil {
			c.err = fmt.Errorf("registering the sync age metric: %w", err)
		}
	})
	return c.err
}

func (c *registryCollector) Describe(ch chan<- *prometheus.Desc) {
	(*discovery.Registry)(nil).SyncAgeCollector().Describe(ch) // Describe reads no registry
}

func (c *registryCollector) Collect(ch chan<- prometheus.Metric) {
	if reg := c.cur.Load(); reg != nil {
		reg.SyncAgeCollector().Collect(ch)
	}
}

// ruleStore is api.RuleStore over the ZooKeeper rules source, translating its errors into the
// API's (a bad rule is a 400, a missing one a 404).
type ruleStore struct{ src *zkrules.Source }

// rulesOf returns the rule store of the --zk-rules source among sources, nil without one.
func rulesOf(sources []discovery.Source) api.RuleStore {
	for _, s := range sources {
		if r, ok := s.(*zkrules.Source); ok {
			return ruleStore{r}
		}
	}
	return nil
}

func (r ruleStore) List(ctx context.Context) ([]api.ServiceRule, error) {
	rules, err := r.src.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.ServiceRule, len(rules))
	for i, rl := range rules {
		out[i] = api.ServiceRule{ID: rl.AppID, ACL: rl.ACL}
	}
	return out, nil
}

func (r ruleStore) Put(ctx context.Context, rule api.ServiceRule) error {
	return ruleError(r.src.Put(ctx, discovery.ServiceRule{AppID: rule.ID, ACL: rule.ACL}))
}

func (r ruleStore) Delete(ctx context.Context, id string) error {
	return ruleError(r.src.Delete(ctx, id))
}

func ruleError(err error) error {
	var invalid *zkrules.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return fmt.Errorf("%w: %w", api.ErrInvalidRule, err)
	case errors.Is(err, zkrules.ErrNoRule):
		return fmt.Errorf("%w: %w", api.ErrNoRule, err)
	}
	return err
}

// ruleChecker is api.RuleChecker: a rule must pass haproxy.CheckRuleACL (one ACL of safe
// words) and, when HAProxy runs here, `haproxy -c` of its app with the rule applied.
type ruleChecker struct {
	applier *haproxy.Applier // nil without HAProxy
	reg     *discovery.Registry
}

func (c ruleChecker) CheckRule(ctx context.Context, rule api.ServiceRule) error {
	if err := haproxy.CheckRuleACL("acl", rule.ACL); err != nil {
		return fmt.Errorf("%w: %w", api.ErrInvalidRule, err)
	}
	if c.applier == nil {
		return nil
	}
	err := c.applier.CheckRule(ctx, c.reg.Snapshot(), rule.ID, rule.ACL)
	if errors.Is(err, haproxy.ErrRuleRejected) {
		return fmt.Errorf("%w: %w", api.ErrInvalidRule, err)
	}
	return err
}
