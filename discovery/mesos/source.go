// Package mesos is the registry source for the Mesos master state: it finds the leading master
// through ZooKeeper (the json.info_ nodes masters register under --mesos-zk's path) or from a
// static --mesos-master list, polls its /master/state, and sends the decoded state, with every
// known master, to the registry.
//
// It does what mesos-dns did not: it never exits and never sends an empty state. While
// ZooKeeper or every master is unreachable the registry keeps the last state; the failure is
// reported (discovery.Sink.ReportSync) so the status shows how old the state is, and polling
// goes on. A leader change seen in ZooKeeper is polled at once, without waiting for the next
// refresh.
package mesos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Config configures the Mesos source. ZK or Masters (or both) must be set.
type Config struct {
	// ZK is the Mesos ZooKeeper URL, zk://[user:pass@]host1:2181,host2:2181/mesos. The leader
	// is the master with the lowest json.info_ sequence there.
	ZK string
	// Masters are "[http[s]://]host[:port]" addresses of Mesos masters (port 5050 when
	// omitted): the masters to poll when ZK is not set; with ZK, they are asked after the
	// masters ZooKeeper names, when none of those answers as leader.
	Masters []string
	// Refresh is the polling period (default 30 s). A leader change is polled at once.
	Refresh time.Duration
	// Username and Password enable HTTP basic auth against the masters.
	Username, Password string
	// HTTPS polls the masters over TLS.
	HTTPS bool
	// CACertFile is a PEM bundle trusted (in addition to the system roots) for HTTPS.
	CACertFile string
	// RequestTimeout bounds one state request, body included (default 30 s).
	RequestTimeout time.Duration
	// ZKSessionTimeout is the ZooKeeper session timeout asked for (default 10 s).
	ZKSessionTimeout time.Duration
	// MaxBody bounds a state document (default 512 MiB).
	MaxBody int64
	Logger  *slog.Logger
}

// DefaultRefresh is the default polling period.
const DefaultRefresh = 30 * time.Second

const defaultMasterPort = "5050"

// Source polls the leading Mesos master into the registry. Create it with New.
type Source struct {
	cfg     Config
	scheme  string
	static  []string // "host:port" from Config.Masters, in order
	det     *detector
	http    *http.Client
	log     *slog.Logger
	refresh chan struct{}

	// Only the Run goroutine uses these.
	paths      map[string]int    // per master address, the index in statePaths that answered
	pids       map[string]string // per master address, the master's own pid (see leads)
	lastLeader string            // address whose state was accepted last
	lastState  *discovery.MesosState

	leader atomic.Pointer[string] // lastLeader, for Leader()
}

// New validates cfg and returns a Source.
func New(cfg Config) (*Source, error) {
	if cfg.ZK == "" && len(cfg.Masters) == 0 {
		return nil, errors.New("mesos: neither a ZooKeeper URL (--mesos-zk zk://host:2181/mesos) nor masters (--mesos-master host:5050,…) given")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Refresh, DefaultRefresh)
	def(&cfg.RequestTimeout, 30*time.Second)
	def(&cfg.ZKSessionTimeout, 10*time.Second)
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 512 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Source{
		cfg:     cfg,
		scheme:  "http",
		log:     cfg.Logger.With("source", "mesos"),
		refresh: make(chan struct{}, 1),
		paths:   map[string]int{},
		pids:    map[string]string{},
	}
	if cfg.HTTPS {
		s.scheme = "https"
	}
	if cfg.ZK != "" {
		t, err := parseZKURL(cfg.ZK)
		if err != nil {
			return nil, fmt.Errorf("mesos: %w", err)
		}
		s.det = newDetector(t, cfg.ZKSessionTimeout, s.log)
	}
	schemes := map[string]bool{}
	for _, raw := range cfg.Masters {
		m, scheme, err := parseMaster(raw)
		if err != nil {
			return nil, fmt.Errorf("mesos: master %q: %w; want host:port, e.g. 10.0.0.1:5050", raw, err)
		}
		if scheme != "" {
			schemes[scheme] = true
			s.scheme = scheme
		}
		if !slices.Contains(s.static, m) {
			s.static = append(s.static, m)
		}
	}
	if len(schemes) > 1 || (cfg.HTTPS && schemes["http"]) {
		return nil, errors.New("mesos: masters mix http:// and https://: all are polled the same way (--mesos-https)")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if cfg.CACertFile != "" {
		conf, err := discovery.TLSClientConfig(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("mesos: %w", err)
		}
		tr.TLSClientConfig = conf
	}
	s.http = &http.Client{
		Transport: tr,
		// Redirects are followed by hand: a 307 from a master that does not lead names the
		// leader, which is polled with the credentials that Go would drop on another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// parseMaster validates "[http[s]://]host[:port]" and returns "host:port" and the scheme
// given, if any.
func parseMaster(raw string) (addr, scheme string, err error) {
	h := strings.TrimRight(strings.TrimSpace(raw), "/")
	for _, sc := range []string{"http", "https"} {
		if rest, ok := strings.CutPrefix(h, sc+"://"); ok {
			h, scheme = rest, sc
		}
	}
	if h == "" {
		return "", "", errors.New("empty address")
	}
	addr, err = withDefaultPort(h, defaultMasterPort)
	return addr, scheme, err
}

// Name is the source's name in logs, metrics and status.
func (s *Source) Name() string { return "mesos" }

// Resync asks for a poll at once (discovery.Resyncer). It never blocks and returns nil.
func (s *Source) Resync(context.Context) error {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
	return nil
}

var _ discovery.Resyncer = (*Source)(nil)

// Leader returns the "host:port" of the master whose state was accepted last, or "".
func (s *Source) Leader() string {
	if p := s.leader.Load(); p != nil {
		return *p
	}
	return ""
}

// Run polls Mesos into sink until ctx ends, and then returns nil. Failures are reported to
// sink and retried; the registry keeps the last state meanwhile. Run is called once.
func (s *Source) Run(ctx context.Context, sink discovery.Sink) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	var changed <-chan struct{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	if s.det != nil {
		changed = s.det.changed
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.det.run(ctx)
		}()
		if len(s.static) == 0 {
			// Nothing to poll before ZooKeeper names a master: the first view starts polling.
			timer.Stop()
		}
	}
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-s.refresh:
		case <-timer.C:
		}
		err := s.poll(ctx, sink)
		if ctx.Err() != nil {
			return nil
		}
		next := s.cfg.Refresh
		switch {
		case err != nil:
			// Retry sooner than the refresh period after a failure, backing off up to it.
			next = min(s.cfg.Refresh, time.Second<<min(failures, 8))
			failures++
		case s.disagrees():
			// ZooKeeper names another leader than the master that answered as one: an
			// election is under way (the new leader may not know yet that it leads). Look
			// again soon rather than after a whole refresh period.
			next = min(s.cfg.Refresh, electionRetry)
			failures = 0
		default:
			failures = 0
		}
		timer.Stop()
		timer.Reset(next)
	}
}

// electionRetry is how soon the state is polled again while ZooKeeper and the masters
// disagree on the leader.
const electionRetry = time.Second

// disagrees reports whether ZooKeeper, while it works, names a leader other than the master
// whose state was accepted last.
func (s *Source) disagrees() bool {
	if s.det == nil {
		return false
	}
	v := s.det.current()
	return v.err == nil && v.leader != "" && v.leader != s.lastLeader
}

// poll fetches the leader's state and sends it, reports the outcome and returns the poll's
// error. A failure's report includes ZooKeeper's trouble, if any; a success is a success.
func (s *Source) poll(ctx context.Context, sink discovery.Sink) error {
	var view zkView
	if s.det != nil {
		view = s.det.current()
	}
	start := time.Now()
	st, addr, err := s.fetchLeader(ctx, s.candidates(view))
	pollDuration.Observe(time.Since(start).Seconds())
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		st.Masters = s.masters(ctx, view)
		if st.Leader == "" {
			st.Leader = addr
		}
		if addr != s.lastLeader {
			if s.lastLeader != "" {
				leaderChanges.Inc()
				s.log.Info("Mesos leader changed", "from", s.lastLeader, "to", addr)
			} else {
				s.log.Info("polling the Mesos leader", "leader", addr)
			}
			s.lastLeader = addr
			s.leader.Store(&addr)
		}
		if err := sink.Send(ctx, discovery.ReplaceMesosState{State: st}); err != nil {
			return err
		}
		s.lastState = st
		polls.WithLabelValues("ok").Inc()
		lastSuccess.SetToCurrentTime()
		// The poll succeeded: that is the sync's outcome, even when it reached the master
		// through the fallback list because ZooKeeper is down. ZooKeeper's trouble is logged
		// and counted by the detector (lodestar_mesos_zookeeper_up).
		sink.ReportSync(s.Name(), nil)
		return nil
	}
	polls.WithLabelValues("error").Inc()
	s.log.Warn("Mesos state poll failed; keeping the last state", "err", err)
	// A failed poll says what is wrong with ZooKeeper too: it is often why no master answered.
	sink.ReportSync(s.Name(), errors.Join(view.err, err))
	return err
}

// candidates lists the masters to ask, best first: the leader ZooKeeper names, the leader
// polled last, the other masters ZooKeeper lists, then the static list.
func (s *Source) candidates(v zkView) []string {
	var out []string
	add := func(a string) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	add(v.leader)
	add(s.lastLeader)
	for _, m := range v.masters {
		add(masterAddr(m))
	}
	for _, a := range s.static {
		add(a)
	}
	return out
}

// masters is the MesosState.Masters list: ZooKeeper's json.info_ nodes in sequence order,
// else the static list, else what the last state had.
func (s *Source) masters(ctx context.Context, v zkView) []discovery.Master {
	if len(v.masters) > 0 {
		return slices.Clone(v.masters)
	}
	if len(s.static) > 0 {
		out := make([]discovery.Master, 0, len(s.static))
		for _, a := range s.static {
			out = append(out, s.staticMaster(ctx, a))
		}
		return out
	}
	if s.lastState != nil {
		return s.lastState.Masters
	}
	return nil
}

// staticMaster describes a --mesos-master entry; a host name is resolved (briefly) so that
// DNS can answer master{N} with an address.
func (s *Source) staticMaster(ctx context.Context, addr string) discovery.Master {
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	m := discovery.Master{Port: port}
	if ip := net.ParseIP(host); ip != nil {
		m.IP = ip.String()
		return m
	}
	m.Hostname = host
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		s.log.Debug("cannot resolve Mesos master", "host", host, "err", err)
		return m
	}
	// Prefer IPv4, as Mesos does for its own address.
	i := slices.IndexFunc(ips, func(ip net.IP) bool { return ip.To4() != nil })
	m.IP = ips[max(i, 0)].String()
	return m
}
