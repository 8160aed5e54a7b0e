package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lodestar-lb/lodestar/api"
	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/autoscale"
)

// autoscaleFlags are the autoscaler's flags: `lodestar autoscale --interval …` (the names of
// marathon-lb-autoscale's and marathon-autoscale's flags), `lodestar serve --autoscale
// --autoscale-interval …` (the same with a prefix). They are the defaults of the apps'
// LODESTAR_AUTOSCALE_* labels.
type autoscaleFlags struct {
	prefix                                                      string
	interval, zkSession                                         *time.Duration
	samples, cooldown, thresholdInstances, intervalsPast        *int
	minInstances, maxInstances, scaleUpFactor, coolDownFactor   *int
	targetRPS, thresholdPercent, cpuMax, cpuMin, memMax, memMin *float64
	multiplier                                                  *float64
	dryRun, alone                                               *bool
	lodestar                                                    *listFlag
	zk                                                          *string
}

func addAutoscaleFlags(c *command, prefix string) *autoscaleFlags {
	fs, d := c.fs, autoscale.DefaultSettings()
	n := func(name string) string { return prefix + name }
	f := &autoscaleFlags{prefix: prefix}
	f.interval = fs.Duration(n("interval"), time.Minute, "how often the apps are sampled and decided on")
	f.samples = fs.Int(n("samples"), d.Samples, "request rate mode: how many intervals' rates are averaged (label LODESTAR_AUTOSCALE_SAMPLES)")
	f.cooldown = fs.Int(n("cooldown"), d.Cooldown, "intervals to wait after a scale before the next (rate mode: plus --samples) (label …_COOLDOWN)")
	f.targetRPS = fs.Float64(n("target-rps"), d.TargetRPS, "request rate mode: requests per second one instance should take (label …_TARGET_RPS)")
	f.thresholdPercent = fs.Float64(n("threshold-percent"), d.ThresholdPercent, "request rate mode: scale only when the rate per instance is off the target by this fraction (0.5 = 50%) … (label …_THRESHOLD_PERCENT)")
	f.thresholdInstances = fs.Int(n("threshold-instances"), d.ThresholdInstances, "… or the instances are off the target by this many (label …_THRESHOLD_INSTANCES)")
	f.intervalsPast = fs.Int(n("intervals-past-threshold"), d.IntervalsPastThreshold, "request rate mode: intervals in a row past the thresholds before a scale (label …_INTERVALS_PAST_THRESHOLD)")
	f.minInstances = fs.Int(n("min-instances"), d.MinInstances, "fewest instances an app is scaled to (label …_MIN_INSTANCES)")
	f.maxInstances = fs.Int(n("max-instances"), d.MaxInstances, fmt.Sprintf("most instances an app is scaled to (label …_MAX_INSTANCES; never above %d)", autoscale.InstancesLimit))
	f.cpuMax = fs.Float64(n("cpu-max"), d.CPUMax, "resource modes: average CPU use above which to scale out, in percent of one CPU (label …_CPU_MAX)")
	f.cpuMin = fs.Float64(n("cpu-min"), d.CPUMin, "resource modes: average CPU use below which to scale in (label …_CPU_MIN)")
	f.memMax = fs.Float64(n("mem-max"), d.MemMax, "resource modes: average memory use above which to scale out, in percent of the limit (label …_MEM_MAX)")
	f.memMin = fs.Float64(n("mem-min"), d.MemMin, "resource modes: average memory use below which to scale in (label …_MEM_MIN)")
	f.multiplier = fs.Float64(n("multiplier"), d.Multiplier, "resource modes: scale out to instances×this, in to instances÷this (label …_MULTIPLIER)")
	f.scaleUpFactor = fs.Int(n("scale-up-factor"), d.ScaleUpFactor, "resource modes: intervals in a row above the range before scaling out (label …_SCALE_UP_FACTOR)")
	f.coolDownFactor = fs.Int(n("cool-down-factor"), d.CoolDownFactor, "resource modes: intervals in a row below the range before scaling in (label …_COOL_DOWN_FACTOR)")
	f.dryRun = fs.Bool(n("dry-run"), false, "decide and log the scales, write none to Marathon")
	f.lodestar = addList(c, n("lodestar"), "lodestar API `URL`s of the edges whose HAProxy request counts are summed (http://lb1:8090,http://lb2:8090); serve reads its own HAProxy without it")
	f.zk = fs.String(n("zk"), "", "ZooKeeper lock `URL` (zk://h1:2181,h2:2181/lodestar/autoscale): only the instance holding it scales; default the hosts of --zk-rules or --mesos-zk with that path")
	f.zkSession = fs.Duration(n("zk-session-timeout"), 10*time.Second, "ZooKeeper session timeout of the lock: how soon another instance takes over from one that died")
	f.alone = fs.Bool(n("alone"), false, "scale without a lock: only when this is the one instance with the autoscaler on")
	return f
}

// defaults are the settings the flags give.
func (f *autoscaleFlags) defaults() autoscale.Settings {
	s := autoscale.DefaultSettings()
	s.Samples, s.Cooldown, s.TargetRPS, s.ThresholdPercent = *f.samples, *f.cooldown, *f.targetRPS, *f.thresholdPercent
	s.ThresholdInstances, s.IntervalsPastThreshold = *f.thresholdInstances, *f.intervalsPast
	s.MinInstances, s.MaxInstances = *f.minInstances, *f.maxInstances
	s.CPUMax, s.CPUMin, s.MemMax, s.MemMin, s.Multiplier = *f.cpuMax, *f.cpuMin, *f.memMax, *f.memMin, *f.multiplier
	s.ScaleUpFactor, s.CoolDownFactor = *f.scaleUpFactor, *f.coolDownFactor
	return s
}

// autoscaler is a built Scaler and the lock it obeys (nil when alone).
type autoscaler struct {
	scaler   *autoscale.Scaler
	lock     *autoscale.ZKLock
	lockDesc string
}

// build makes the autoscaler over the registry's snapshots. local reads the HAProxy running
// here (nil without one); the --lodestar edges replace it.
func (f *autoscaleFlags) build(log *slog.Logger, src *sourceFlags, snapshot func() *discovery.Snapshot, local autoscale.RequestCounters) (*autoscaler, error) {
	flag := func(name string) string { return "--" + f.prefix + name }
	if len(src.marathon.vals) == 0 {
		return nil, fmt.Errorf("the autoscaler scales apps in Marathon: give --marathon")
	}
	if err := durationAtLeast(f.prefix+"interval", *f.interval, 10*time.Millisecond); err != nil {
		return nil, err
	}
	user, pass, err := src.credentials()
	if err != nil {
		return nil, err
	}
	marathonClient, err := httpClientTrusting(*src.marathonCA)
	if err != nil {
		return nil, fmt.Errorf("--marathon-ca-cert: %w", err)
	}
	cfg := autoscale.Config{
		Interval: *f.interval, Defaults: f.defaults(), Snapshot: snapshot, DryRun: *f.dryRun, Logger: log,
		Marathon: autoscale.MarathonClient{URLs: src.marathon.vals, Client: marathonClient, User: user, Password: pass},
		Counters: local,
	}
	if err := cfg.Defaults.Check(); err != nil {
		return nil, fmt.Errorf("autoscale flags (%s…): %w", flag(""), err)
	}
	for _, edge := range f.lodestar.vals {
		// The app's path is appended to it: a query or fragment would swallow it.
		u, err := url.Parse(edge)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%s %q: want http://host:port of a lodestar API", flag("lodestar"), edge)
		}
	}
	if len(f.lodestar.vals) > 0 {
		cfg.Counters = autoscale.EdgeCounters{URLs: f.lodestar.vals, Client: &http.Client{Timeout: 10 * time.Second}}
	}
	if *src.mesosZK != "" || len(src.mesosMasters.vals) > 0 {
		agentClient, err := httpClientTrusting(*src.mesosCA)
		if err != nil {
			return nil, fmt.Errorf("--mesos-ca-cert: %w", err)
		}
		mu, mp, _ := strings.Cut(*src.mesosAuth, ":")
		cfg.Agents = autoscale.HTTPAgents{Client: agentClient, HTTPS: *src.mesosHTTPS, User: mu, Password: mp}
	}
	a := &autoscaler{lockDesc: "alone, no lock"}
	switch lockURL := f.lockURL(src); {
	case *f.alone && *f.zk != "":
		return nil, fmt.Errorf("give %s or %s, not both", flag("zk"), flag("alone"))
	case *f.alone:
	case lockURL == "":
		return nil, fmt.Errorf("two autoscalers on one cluster would fight: give %s zk://…/lodestar/autoscale (only the instance holding that lock scales), or %s if this is the only one", flag("zk"), flag("alone"))
	default:
		if a.lock, err = autoscale.NewZKLock(autoscale.LockConfig{URL: lockURL, SessionTimeout: *f.zkSession, Logger: log}); err != nil {
			return nil, fmt.Errorf("%s: %w", flag("zk"), err)
		}
		cfg.Leader = a.lock
		a.lockDesc = "ZooKeeper lock " + discovery.RedactZKURL(lockURL)
	}
	if a.scaler, err = autoscale.New(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// lockURL is --zk, else the ZooKeeper of --zk-rules or --mesos-zk with the path
// /lodestar/autoscale, else "".
func (f *autoscaleFlags) lockURL(src *sourceFlags) string {
	if *f.zk != "" {
		return *f.zk
	}
	for _, u := range []string{*src.zkRules, *src.mesosZK} {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(u), "zk://"); ok {
			hosts, _, _ := strings.Cut(rest, "/")
			return "zk://" + hosts + "/lodestar/autoscale"
		}
	}
	return ""
}

// start runs the lock and, once the registry has synced, the scaler.
func (a *autoscaler) start(ctx context.Context, g *errgroup.Group, reg *discovery.Registry) {
	if a.lock != nil {
		g.Go(func() error { return a.lock.Run(ctx) })
	}
	g.Go(func() error {
		// Never decide on a half-known cluster.
		if err := reg.WaitSynced(ctx); err != nil {
			return nil
		}
		return a.scaler.Run(ctx)
	})
}

// AutoscaleStatus is api.Autoscaler.
func (a *autoscaler) AutoscaleStatus() api.AutoscaleStatus {
	st := a.scaler.Status()
	out := api.AutoscaleStatus{Leading: st.Leading, DryRun: st.DryRun, Lock: a.lockDesc, Interval: st.Interval}
	for _, d := range st.Apps {
		in := d.Inputs
		inputs := ""
		switch {
		case d.Mode == autoscale.ModeRate:
			inputs = fmt.Sprintf("%.1f req/s on port %d over %d samples (%d incomplete)", in.RPS, in.Port, in.Samples, in.Incomplete)
		case d.Mode != "":
			inputs = fmt.Sprintf("cpu %s, mem %s, %d of %d tasks reported", autoscale.FormatPercent(in.CPU), autoscale.FormatPercent(in.Mem), in.WithStats, in.Tasks)
		}
		out.Decisions = append(out.Decisions, api.AutoscaleDecision{AppID: d.App, Mode: string(d.Mode), Action: string(d.Action),
			From: d.From, To: d.To, Reason: d.Reason, Inputs: inputs, Error: d.Error, At: d.At})
	}
	return out
}

// httpClientTrusting is an HTTP client trusting the PEM CAs of file besides the system's;
// the default client when file is "".
func httpClientTrusting(file string) (*http.Client, error) {
	if file == "" {
		return &http.Client{}, nil
	}
	conf, err := discovery.TLSClientConfig(file)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return &http.Client{Transport: tr}, nil
}

// autoscaleCommand is `lodestar autoscale`: the autoscaler alone, beside lodestar edges.
func autoscaleCommand(ctx context.Context, stderr io.Writer) *command {
	c := newCommand("autoscale", "Scale Marathon apps by request rate or CPU and memory use.", "[flags]", `
Scales the Marathon apps that opt in with the label LODESTAR_AUTOSCALE_MODE (rps, cpu, mem, and,
or): by their request rate through the lodestar edges given with --lodestar, summed over them
(marathon-lb-autoscale's semantics), or by their tasks' CPU and memory use read from the Mesos
agents (marathon-autoscale's). Labels LODESTAR_AUTOSCALE_* override the flags per app; see
docs/autoscale.md. Apps in a deployment are never scaled. Only the instance holding the
ZooKeeper lock (--zk) scales; --alone runs without one. --dry-run logs without writing.
With --api-listen it serves /metrics (lodestar_autoscale_*), /healthz, /readyz and a status
page showing each app's last decision.

Examples:
  lodestar autoscale --marathon http://m1:8080 --lodestar http://lb1:8090,http://lb2:8090 \
    --zk zk://zk1:2181/lodestar/autoscale --interval 30s --target-rps 500
  lodestar autoscale --marathon http://m1:8080 --mesos-zk zk://zk1:2181/mesos --dry-run
`)
	src := addSourceFlags(c)
	logs := addLogFlags(c)
	f := addAutoscaleFlags(c, "")
	listen := c.fs.String("api-listen", "", "`address` of an HTTP API serving /metrics, /healthz, /readyz and the status page (e.g. 127.0.0.1:8092); none when empty")
	c.run = func() error { return runAutoscale(ctx, stderr, src, logs, f, *listen) }
	return c
}

func runAutoscale(ctx context.Context, stderr io.Writer, src *sourceFlags, logs *logFlags, f *autoscaleFlags, listen string) error {
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	if len(src.marathon.vals) == 0 {
		return errors.New("give --marathon: the scales go to it (and the apps come from it, unless --registry-from)")
	}
	sources, err := src.build(log, os.TempDir())
	if err != nil {
		return err
	}
	reg := discovery.NewRegistry(discovery.WithLogger(log))
	for _, s := range sources {
		reg.RegisterSource(s.Name())
	}
	a, err := f.build(log, src, reg.Snapshot, nil)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return reg.Run(ctx) })
	for _, s := range sources {
		g.Go(func() error {
			if err := s.Run(ctx, reg); err != nil {
				return fmt.Errorf("source %s: %w", s.Name(), err)
			}
			return nil
		})
	}
	a.start(ctx, g, reg)
	if listen != "" {
		// Read-only: no front end that writes is wired in, so no --api-auth is needed.
		srv, err := api.New(api.Config{Listen: listen, Logger: log, Version: version}, reg)
		if err != nil {
			return fmt.Errorf("--api-listen: %w", err)
		}
		srv.AddReadyCheck("first sync", reg.Synced)
		srv.AddReadyCheck("sources", func() error { return api.Degraded(reg.Failing()) })
		srv.SetFrontends(api.Frontends{Autoscale: a})
		g.Go(func() error { return srv.Run(ctx) })
	}
	log.Info("lodestar autoscaling", "interval", *f.interval, "lock", a.lockDesc, "dry_run", *f.dryRun, "edges", len(f.lodestar.vals))
	return g.Wait()
}
