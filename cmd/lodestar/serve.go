package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/lodestar-lb/lodestar/api"
	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/integration/autoscale"
)

func serveCommand(ctx context.Context, stderr io.Writer, getenv func(string) string) *command {
	c := newCommand("serve", "Run lodestar: watch the cluster and serve the registry.", "[flags]", `
Apps come from Marathon (--marathon) or from a file (--apps-file); the Mesos state from the
masters (--mesos-zk or --mesos-master) or from a file (--mesos-state-file). With none of them,
lodestar serves a built-in example cluster.
The HTTP API on --api-listen serves a status page at /, the registry (/v1/apps,
/v1/apps/{id}), /healthz, /readyz, /metrics, HAProxy's config and status (/v1/haproxy/*) and
marathon-lb's /_haproxy_* and /_mlb_signal/* endpoints. Its mutating endpoints (POST, PUT,
DELETE, /_mlb_signal/*) need --api-auth, or a loopback --api-listen.
With --dns-listen, lodestar is authoritative DNS for --dns-domain (mesos-dns names; the
mesos-dns HTTP API under /v1/) and forwards every other name upstream.
With --zk-rules, bamboo-style routing rules kept in ZooKeeper replace apps' vhost ACLs; they
are edited through bamboo's /api/services on any instance and reach every instance.
With --registry-from, lodestar is a replica: it follows other lodestars' registries (their
GET /v1/stream) instead of Marathon and Mesos, and serves its last state while none answers.
With --leader-proxy mesos=ADDR or marathon=ADDR, HAProxy also serves a frontend that always
reaches the current Mesos or Marathon leader; with zk=ADDR, a TCP frontend to any live
member of the ZooKeeper ensemble --mesos-zk names.

Examples:
  lodestar serve --marathon http://m1:8080,http://m2:8080
  lodestar serve --apps-file examples/apps.json --mesos-state-file examples/state.json
  lodestar serve --marathon http://m1:8080 --mesos-zk zk://zk1:2181/mesos --dns-listen :53
  lodestar serve --marathon http://m1:8080 --zk-rules zk://zk1:2181/lodestar/services \
    --api-listen :8090 --api-auth /etc/lodestar/api-auth
`)
	f := &serveFlags{
		src:     addSourceFlags(c),
		logs:    addLogFlags(c),
		dns:     addDNSServeFlags(c),
		hap:     addHAProxyServeFlags(c),
		listen:  c.fs.String("api-listen", api.DefaultListen, "`address` of the HTTP API"),
		apiAuth: c.fs.String("api-auth", "", "credentials the API's mutating endpoints (POST, PUT, DELETE, /_mlb_signal/*) require, as a `spec`: token:T (a bearer token), basic:user:pass, or a file holding one of them; without it they answer only on a loopback --api-listen"),
		runDir:  c.fs.String("run-dir", defaultRunDir(), "`directory` for files lodestar writes while running (HAProxy's config, sockets, maps, state, certificate)"),
	}
	addMesosDNSConfigFlag(c, &f.compatNotes)
	addBambooConfigFlag(c, &f.compatNotes, getenv)
	f.bambooTemplate = addBambooTemplateFlag(c)
	f.autoscaleOn = c.fs.Bool("autoscale", false, "also autoscale the apps that opt in (labels LODESTAR_AUTOSCALE_*; see lodestar autoscale --help and the --autoscale-* flags)")
	f.autoscale = addAutoscaleFlags(c, "autoscale-")
	c.run = func() error { return f.serve(ctx, stderr, getenv) }
	return c
}

// serveFlags are serve's flags.
type serveFlags struct {
	src                     *sourceFlags
	logs                    *logFlags
	dns                     *dnsServeFlags
	hap                     *haproxyServeFlags
	listen, apiAuth, runDir *string
	compatNotes             []compatNote // what --mesos-dns-config and --bamboo-config say at start
	bambooTemplate          *string
	autoscaleOn             *bool
	autoscale               *autoscaleFlags
}

// serve runs lodestar until ctx ends or a part fails.
func (f *serveFlags) serve(ctx context.Context, stderr io.Writer, getenv func(string) string) error {
	log, err := f.logs.logger(stderr)
	if err != nil {
		return err
	}
	logCompatNotes(log, f.compatNotes)
	runDirHandle, err := openRunDir(*f.runDir)
	if err != nil {
		return err
	}
	defer runDirHandle.Close()
	s, err := f.build(log, getenv)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	s.start(ctx, g)
	err = g.Wait()
	log.Info("lodestar stopped")
	return err
}

// server is one serve's parts: the sources feed the registry, which the front ends follow;
// the API shows them all. dns and hap are nil when turned off.
type server struct {
	log     *slog.Logger
	sources []discovery.Source
	reg     *discovery.Registry
	api     *api.Server
	dns     *dnsFrontEnd
	hap     *haproxyFrontEnd
	front   api.Frontends
	// autoscaler is nil without --autoscale.
	autoscaler *autoscaler
	// relayed is the socket HAProxy's stats port forwards marathon-lb's endpoints to (mlbstats.go).
	relayed net.Listener
}

// build checks the flags and makes the parts, wired to each other but not running.
func (f *serveFlags) build(log *slog.Logger, getenv func(string) string) (*server, error) {
	s := &server{log: log}
	var err error
	if s.sources, err = f.src.build(log, *f.runDir); err != nil {
		return nil, err
	}
	if s.dns, err = f.dns.build(log, f.src); err != nil {
		return nil, err
	}
	if s.hap, err = f.hap.build(log, *f.runDir, getenv); err != nil {
		return nil, err
	}
	if err := useBambooTemplate(log, *f.bambooTemplate, s.hap); err != nil {
		return nil, err
	}
	s.reg = discovery.NewRegistry(discovery.WithLogger(log))
	for _, src := range s.sources {
		s.reg.RegisterSource(src.Name())
	}
	auth, err := api.ParseAuth(*f.apiAuth)
	if err != nil {
		return nil, fmt.Errorf("--api-auth: %w", err)
	}
	if s.api, err = api.New(api.Config{Listen: *f.listen, Logger: log, Version: version, Auth: auth}, s.reg); err != nil {
		return nil, err
	}
	s.api.AddReadyCheck("first sync", s.reg.Synced)
	// A source failing after its first sync leaves /readyz at 200: the edge keeps serving
	// what it has, and the check says what is stale.
	s.api.AddReadyCheck("sources", func() error { return api.Degraded(s.reg.Failing()) })
	if err := servedRegistry.serve(s.reg); err != nil {
		return nil, err
	}
	resyncAll := resyncer{sources: s.sources}
	if s.hap != nil {
		resyncAll.applier = s.hap.applier
	}
	s.front = api.Frontends{Resync: resyncAll, Rules: rulesOf(s.sources), RuleCheck: ruleChecker{applier: resyncAll.applier, reg: s.reg}}
	if s.dns != nil {
		s.api.AddReadyCheck("DNS listening", s.dns.fe.Listening)
		s.api.MountMesosDNS(s.dns)
		s.front.DNS = s.dns
	}
	if s.hap != nil {
		s.api.AddReadyCheck("first config applied", s.hap.applier.Applied)
		s.api.MountHAProxy(withResync{s.hap, resyncAll})
		s.front.Routing = routing{applier: s.hap.applier, reg: s.reg}
		if s.front.Live, err = newLiveServers(s.hap.applier); err != nil {
			return nil, err
		}
	}
	if *f.autoscaleOn {
		if err := s.buildAutoscaler(log, f); err != nil {
			return nil, err
		}
	}
	s.api.SetFrontends(s.front)
	if s.hap != nil {
		if s.relayed, err = listenRelayed(*f.runDir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// buildAutoscaler makes serve's autoscaler: its request counts come from the HAProxy running
// here (through the API's own view), unless --autoscale-lodestar names edges.
func (s *server) buildAutoscaler(log *slog.Logger, f *serveFlags) error {
	var local autoscale.RequestCounters
	if s.hap != nil {
		local = autoscale.LocalCounters{Routing: s.front.Routing, Live: s.front.Live}
	}
	a, err := f.autoscale.build(log, f.src, s.reg.Snapshot, local)
	if err != nil {
		return fmt.Errorf("--autoscale: %w", err)
	}
	s.autoscaler, s.front.Autoscale = a, a
	return nil
}

// start runs every part in g.
func (s *server) start(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { return s.reg.Run(ctx) })
	for _, src := range s.sources {
		g.Go(func() error {
			if err := src.Run(ctx, s.reg); err != nil {
				return fmt.Errorf("source %s: %w", src.Name(), err)
			}
			return nil
		})
	}
	serveRelay(ctx, g, s.api, s.reg, s.sources, s.log)
	if s.dns != nil {
		sub := s.reg.Subscribe()
		g.Go(func() error {
			defer sub.Close()
			return s.dns.fe.Run(ctx, sub)
		})
	}
	if s.hap != nil {
		s.startHAProxy(ctx, g)
	}
	if s.autoscaler != nil {
		s.autoscaler.start(ctx, g, s.reg)
	}
	g.Go(func() error { return s.api.Run(ctx) })
	if s.relayed != nil {
		g.Go(func() error { return s.api.ServeRelayed(ctx, s.relayed) })
	}
	g.Go(func() error { return s.announce(ctx) })
}

// startHAProxy runs the Applier, and HAProxy once the Applier has written its first file.
func (s *server) startHAProxy(ctx context.Context, g *errgroup.Group) {
	sub := s.reg.Subscribe()
	g.Go(func() error {
		defer sub.Close()
		// The first configuration waits for every source's first sync: HAProxy never
		// starts on a half-known cluster.
		if err := s.reg.WaitSynced(ctx); err != nil {
			return nil
		}
		return s.hap.applier.Run(ctx, sub)
	})
	g.Go(func() error {
		select {
		case <-s.hap.applier.Written():
		case <-ctx.Done():
			return nil
		}
		return s.hap.proc.Run(ctx)
	})
}

// announce logs "lodestar serving" once the API, HAProxy and DNS all serve.
func (s *server) announce(ctx context.Context) error {
	select {
	case <-s.api.Ready():
	case <-ctx.Done():
		return nil
	}
	attrs := []any{"version", version, "api", "http://" + s.api.Addr(), "sources", len(s.sources)}
	if s.hap != nil {
		select {
		case <-s.hap.proc.Started():
			attrs = append(attrs, "haproxy_config", s.hap.applier.ConfigPath())
		case <-ctx.Done():
			return nil
		}
	}
	if s.dns != nil {
		select {
		case <-s.dns.fe.Ready():
			attrs = append(attrs, "dns", s.dns.fe.Addr())
		case <-ctx.Done():
			return nil
		}
	}
	s.log.Info("lodestar serving", attrs...)
	return nil
}

// resync asks every source for a full sync now (marathon-lb's SIGHUP): Marathon refetches
// every app, files are read again, Mesos masters are polled, ZooKeeper rules are read again.
func resync(ctx context.Context, sources []discovery.Source) error {
	for _, src := range sources {
		if r, ok := src.(discovery.Resyncer); ok {
			if err := r.Resync(ctx); err != nil {
				return fmt.Errorf("%s: %w", src.Name(), err)
			}
		}
	}
	return nil
}

// defaultRunDir is where lodestar keeps its files unless --run-dir says otherwise: /run/lodestar
// for root (a systemd unit or a container), else the user's runtime directory, else a
// directory of the user's own under $TMPDIR.
func defaultRunDir() string {
	if os.Geteuid() == 0 {
		return "/run/lodestar"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "lodestar")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("lodestar-%d", os.Geteuid()))
}

// openRunDir prepares the run dir (see prepareRunDir) and opens and pins it: the files lodestar
// writes there go through this handle from then on, so swapping the directory for a link
// cannot send them elsewhere.
func openRunDir(dir string) (*haproxy.Dir, error) {
	if err := prepareRunDir(dir); err != nil {
		return nil, err
	}
	d, err := haproxy.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--run-dir: %w", err)
	}
	d.Pin()
	return d, nil
}

// prepareRunDir creates the run directory and refuses one that others could tamper with:
// HAProxy's configuration and its master socket (which runs commands) live there, so it must
// be a real directory, owned by this user and writable by nobody else, reached by a path that
// nobody else can redirect (see checkRunDirPath). The path is checked before anything is
// created, and again after.
func prepareRunDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("--run-dir %s: %w", dir, err)
	}
	if err := checkRunDirPath(abs); err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return fmt.Errorf("--run-dir: %w", err)
	}
	if err := checkRunDirPath(abs); err != nil {
		return err
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("--run-dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("--run-dir %s is not a directory: give a directory of lodestar's own", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("--run-dir %s belongs to uid %d, not to lodestar's uid %d: give a directory of lodestar's own", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("--run-dir %s is writable by others (mode %v): HAProxy's config and master socket live there; chmod go-w it or give another directory", dir, fi.Mode().Perm())
	}
	return nil
}

// checkRunDirPath refuses a run dir path (absolute) that someone other than lodestar's user
// or root could redirect: a symbolic link anywhere in it (its target may change), or an
// existing ancestor that everyone may write without the sticky bit, or that belongs to another
// user (either could rename the run dir away and put a link in its place). Components that do
// not exist yet are not checked; prepareRunDir checks again once they do.
func checkRunDirPath(abs string) error {
	var parts []string
	for p := abs; ; p = filepath.Dir(p) {
		parts = append(parts, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("--run-dir %s: %w", abs, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, _ := filepath.EvalSymlinks(p)
			return fmt.Errorf("--run-dir %s: %s is a symbolic link (to %s), which could be pointed elsewhere: give the path without links", abs, p, target)
		}
		if i == 0 {
			break // the run dir itself: prepareRunDir checks it more strictly
		}
		if fi.Mode().Perm()&0o002 != 0 && fi.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("--run-dir %s: %s is writable by everyone without the sticky bit (mode %v), so anyone could replace the run dir: give a path under a safe directory", abs, p, fi.Mode())
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("--run-dir %s: %s belongs to uid %d, who could replace the run dir: give a path under directories of root or lodestar's user", abs, p, st.Uid)
		}
	}
	return nil
}
