package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/templates"
)

// haproxyFlags are the rendering flags (marathon-lb's names where one existed); serve and
// render share them, so `render` prints exactly what `serve` would run.
type haproxyFlags struct {
	groups         *listFlag
	strict         *bool
	useMap         *bool
	httpBind       *string
	httpsBind      *string
	statsBind      *string
	appIDBind      *string
	dontBind       *bool
	sslCerts       *listFlag
	templatesDir   *string
	maxConn        *int
	hardStopAfter  *time.Duration
	minServPort    *int
	maxServPort    *int
	healthCheck    *bool
	configPath     *string
	noAppIDBinding *bool
	leaderProxies  *leaderProxyFlag
	labelTemplates *string
	staticSlots    *bool
}

func addHAProxyFlags(c *command) *haproxyFlags {
	fs := c.fs
	return &haproxyFlags{
		groups:         addList(c, "group", "HAPROXY_GROUP `value`s this lodestar serves (repeatable); * serves every app, grouped or not", haproxy.DefaultGroup),
		strict:         fs.Bool("strict-mode", false, "expose only ports labelled HAPROXY_{n}_ENABLED=true"),
		useMap:         fs.Bool("haproxy-map", false, "route vhosts and app ids through map files, changed at runtime without reloads"),
		httpBind:       fs.String("http-bind", haproxy.DefaultHTTPBind, "`address` of the shared HTTP frontend (vhost routing)"),
		httpsBind:      fs.String("https-bind", haproxy.DefaultHTTPSBind, "`address` of the shared HTTPS frontend (SNI routing)"),
		statsBind:      fs.String("stats-bind", haproxy.DefaultStatsBind, "`address` of HAProxy's stats page and Prometheus exporter (/metrics)"),
		appIDBind:      fs.String("appid-bind", haproxy.DefaultAppIDBind, "`address` of marathon-lb's X-Marathon-App-Id frontend (see --no-appid-frontend)"),
		dontBind:       fs.Bool("dont-bind-http-https", false, "leave out the shared HTTP and HTTPS frontends"),
		sslCerts:       addList(c, "ssl-certs", "certificate `file`s (PEM with key) of the HTTPS frontend; without them a self-signed one is made in --run-dir"),
		templatesDir:   fs.String("templates-dir", "", "`directory` of HAPROXY_<NAME> template overrides"),
		maxConn:        fs.Int("haproxy-maxconn", haproxy.DefaultMaxConn, "HAProxy's maxconn; it must fit the open-files limit (ulimit -n)"),
		hardStopAfter:  fs.Duration("haproxy-hard-stop-after", haproxy.DefaultHardStopAfter, "how long an old HAProxy worker may keep its connections after a reload (hard-stop-after); the default template also lets a worker outlive at most 10 reloads (mworker-max-reloads)"),
		minServPort:    fs.Int("min-serv-port-ip-per-task", haproxy.DefaultMinServPort, "lowest service port given to IP-per-task apps without one"),
		maxServPort:    fs.Int("max-serv-port-ip-per-task", haproxy.DefaultMaxServPort, "highest service port given to IP-per-task apps without one"),
		healthCheck:    fs.Bool("health-check", true, "leave out tasks whose Marathon health checks fail; false leaves it to HAProxy's own checks, as marathon-lb without --health-check"),
		configPath:     fs.String("haproxy-config", "", "`file` HAProxy runs (default <run-dir>/haproxy.cfg)"),
		noAppIDBinding: fs.Bool("no-appid-frontend", false, "leave out marathon-lb's X-Marathon-App-Id frontend"),
		leaderProxies:  addLeaderProxyFlag(c),
		staticSlots:    fs.Bool("haproxy-static-slots", false, "give every backend spare server slots in blocks of 10 instead of one per task plus servers added at run time (add server, HAProxy 2.4+); for an older HAProxy"),
		labelTemplates: fs.String("label-templates", "confined", "`mode` of per-app template labels (HAPROXY_{n}_<TEMPLATE>): confined keeps each to its app's own sections (docs/label-confinement.md); full writes them as they render, as marathon-lb did (single-team clusters)"),
	}
}

// buildConfig checks the flags and returns the build configuration for runDir.
func (f *haproxyFlags) buildConfig(runDir string, getenv func(string) string) (haproxy.Config, error) {
	if getenv == nil { // nil is the process's environment, as for flags (lookupEnv)
		getenv = os.Getenv
	}
	if *f.maxConn < 1 {
		return haproxy.Config{}, fmt.Errorf("--haproxy-maxconn %d: want at least 1", *f.maxConn)
	}
	if *f.hardStopAfter < time.Second {
		return haproxy.Config{}, fmt.Errorf("--haproxy-hard-stop-after %v: want at least 1s", *f.hardStopAfter)
	}
	if *f.minServPort > *f.maxServPort {
		return haproxy.Config{}, fmt.Errorf("--min-serv-port-ip-per-task %d is above --max-serv-port-ip-per-task %d", *f.minServPort, *f.maxServPort)
	}
	if d := *f.templatesDir; d != "" {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return haproxy.Config{}, fmt.Errorf("--templates-dir %s: not a directory", d)
		}
	}
	labelTemplates, err := haproxy.ParseLabelTemplates(*f.labelTemplates)
	if err != nil {
		return haproxy.Config{}, err
	}
	for _, cert := range f.sslCerts.vals {
		if _, err := os.Stat(cert); err != nil {
			return haproxy.Config{}, fmt.Errorf("--ssl-certs: %w", err)
		}
	}
	cfg := haproxy.Config{
		Groups: f.groups.vals, StrictMode: *f.strict, HAProxyMap: *f.useMap,
		HTTPBind: *f.httpBind, HTTPSBind: *f.httpsBind, StatsBind: *f.statsBind, AppIDBind: *f.appIDBind,
		DontBindHTTPHTTPS: *f.dontBind, NoAppIDFrontend: *f.noAppIDBinding,
		RunDir: runDir, TemplatesDir: resolvePath(*f.templatesDir), Getenv: getenv,
		SSLCerts: f.sslCerts.vals, MaxConn: *f.maxConn, HardStopAfter: *f.hardStopAfter,
		MinServPortIPPerTask: *f.minServPort, MaxServPortIPPerTask: *f.maxServPort,
		HealthCheck: *f.healthCheck, LabelTemplates: labelTemplates, StaticSlots: *f.staticSlots,
	}
	if err := f.leaderProxies.apply(&cfg); err != nil {
		return haproxy.Config{}, err
	}
	set, err := templates.Load(cfg.TemplatesDir, getenv)
	if err != nil {
		return haproxy.Config{}, err
	}
	cfg.Templates = set
	return cfg, nil
}

// haproxyServeFlags are the flags of the HAProxy that `serve` runs.
type haproxyServeFlags struct {
	*haproxyFlags
	enabled *bool
	bin     *string
	minWait *time.Duration
	maxWait *time.Duration
	// accessLog is HAProxy's traffic log destination; off by default (see haproxy.AccessLog).
	accessLog *string
	// holdListeners keeps the shared frontends' sockets open across HAProxy's restarts.
	holdListeners *bool
	// onExit is keep or stop: what happens to HAProxy when lodestar exits.
	onExit      *string
	adoptWithin *time.Duration
}

func addHAProxyServeFlags(c *command) *haproxyServeFlags {
	return &haproxyServeFlags{
		haproxyFlags: addHAProxyFlags(c),
		enabled:      c.fs.Bool("haproxy", true, "run and drive HAProxy; false serves DNS and the API only"),
		bin:          c.fs.String("haproxy-bin", "haproxy", "HAProxy `binary` (2.6 or later), found on PATH unless a path is given"),
		minWait:      c.fs.Duration("reload-min-wait", haproxy.DefaultReloadMinWait, "a structural change waits this long for further changes before HAProxy reloads"),
		maxWait:      c.fs.Duration("reload-max-wait", haproxy.DefaultReloadMaxWait, "but never longer than this after the first change"),
		// off: a busy edge writes one line per request, which would bury lodestar's own log
		// (and fill a disk nobody watches); an operator who wants them says where.
		// stop by default: a HAProxy left without lodestar serves a routing table nothing
		// updates while Mesos hands its ports to other tasks; keep is for restarts that follow.
		onExit:        c.fs.String("haproxy-on-exit", "stop", "what happens to HAProxy when lodestar exits: stop, or keep it serving for the next lodestar on the same --run-dir to adopt (upgrades and restarts without an outage; under systemd also set KillMode=process)"),
		adoptWithin:   c.fs.Duration("haproxy-adopt-within", haproxy.DefaultAdoptWithin, "a HAProxy kept by --haproxy-on-exit keep is adopted by a lodestar that starts within this time; a later one stops it and starts its own"),
		holdListeners: c.fs.Bool("haproxy-hold-listeners", true, "lodestar opens the shared frontends' listening sockets (HTTP, HTTPS, stats, app id) and hands them to HAProxy (bind fd@N), so connections wait instead of being refused while a crashed HAProxy restarts"),
		accessLog:     c.fs.String("haproxy-access-log", haproxy.AccessLogOff, "where HAProxy's per-request log goes: off, stdout (lodestar's stdout, apart from its own log on stderr), file:/PATH, syslog (local /dev/log), syslog:udp://HOST:PORT, syslog:tcp://HOST:PORT or syslog:/SOCKET"),
	}
}

// haproxyFrontEnd is the supervised HAProxy and the Applier that keeps it on the registry.
type haproxyFrontEnd struct {
	proc    *haproxy.Process
	applier *haproxy.Applier
}

// build checks the flags, makes the default certificate when needed and returns the front
// end; nil with --haproxy=false.
func (f *haproxyServeFlags) build(log *slog.Logger, runDir string, getenv func(string) string) (*haproxyFrontEnd, error) {
	if !*f.enabled {
		return nil, nil
	}
	bin, err := exec.LookPath(*f.bin)
	if err != nil {
		return nil, fmt.Errorf("--haproxy-bin %s: %w (install HAProxy 2.6+: apt-get install haproxy; or run with --haproxy=false)", *f.bin, err)
	}
	if err := durationAtLeast("reload-min-wait", *f.minWait, 0); err != nil {
		return nil, err
	}
	if err := oneOf("haproxy-on-exit", *f.onExit, "stop", "keep"); err != nil {
		return nil, err
	}
	if err := durationAtLeast("haproxy-adopt-within", *f.adoptWithin, time.Second); err != nil {
		return nil, err
	}
	accessLog, err := haproxy.ParseAccessLog(*f.accessLog)
	if err != nil {
		return nil, fmt.Errorf("--haproxy-access-log: %w", err)
	}
	cfg, err := f.buildConfig(runDir, getenv)
	if err != nil {
		return nil, err
	}
	cfg.FrontendLogs = accessLog.Kind != haproxy.AccessLogOff
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("--run-dir: %w", err)
	}
	if len(cfg.SSLCerts) == 0 {
		path := filepath.Join(runDir, "default.pem")
		created, err := haproxy.EnsureSelfSignedCert(path)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("no --ssl-certs given: made a self-signed certificate for the HTTPS frontend", "path", path)
		}
	}
	configPath := resolvePath(*f.configPath)
	if configPath == "" {
		configPath = filepath.Join(runDir, "haproxy.cfg")
	}
	proc, err := haproxy.NewProcess(haproxy.ProcessConfig{Bin: bin, ConfigPath: configPath, RunDir: runDir, Logger: log, AccessLog: &accessLog,
		HoldListeners: f.heldListeners(cfg),
		KeepOnExit:    *f.onExit == "keep", AdoptWithin: *f.adoptWithin,
	})
	if err != nil {
		return nil, err
	}
	applier, err := haproxy.NewApplier(haproxy.ApplierConfig{
		Build: cfg, Bin: bin, ConfigPath: configPath,
		ReloadMinWait: *f.minWait, ReloadMaxWait: *f.maxWait, Logger: log,
	}, proc)
	if err != nil {
		return nil, err
	}
	return &haproxyFrontEnd{proc: proc, applier: applier}, nil
}

// api.HAProxy, for the HAProxy endpoints; Resync is wired by serve (it needs the sources).

func (h *haproxyFrontEnd) Config() []byte   { return h.applier.Config() }
func (h *haproxyFrontEnd) Status() any      { return h.applier.Status() }
func (h *haproxyFrontEnd) Healthy() error   { return h.applier.Healthy() }
func (h *haproxyFrontEnd) PIDs() []int      { return h.proc.GroupPIDs() }
func (h *haproxyFrontEnd) VhostMap() []byte { return h.applier.VhostMap() }
func (h *haproxyFrontEnd) AppMap() []byte   { return h.applier.AppMap() }
func (h *haproxyFrontEnd) Reload(ctx context.Context) error {
	return h.applier.ReloadFromDisk(ctx)
}

// withResync is the front end plus what /_mlb_signal/hup does (see resyncer); the Applier
// follows the registry, so a resync that changes anything reaches HAProxy by itself.
type withResync struct {
	*haproxyFrontEnd
	resyncer
}

// heldListeners are the bind addresses of the shared frontends cfg renders, whose sockets
// lodestar keeps open across HAProxy's restarts; none with --haproxy-hold-listeners=false.
// Per-app service ports are not held: a master keeps every descriptor it inherited until it
// exits, so a port whose app went away would keep accepting connections nobody serves.
func (f *haproxyServeFlags) heldListeners(cfg haproxy.Config) []string {
	if !*f.holdListeners {
		return nil
	}
	addrs := []string{cfg.StatsBind}
	if !cfg.DontBindHTTPHTTPS {
		addrs = append(addrs, cfg.HTTPBind, cfg.HTTPSBind)
	}
	if !cfg.NoAppIDFrontend {
		addrs = append(addrs, cfg.AppIDBind)
	}
	return addrs
}
