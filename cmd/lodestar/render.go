package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/haproxy"
)

func renderCommand(ctx context.Context, stdout, stderr io.Writer, getenv func(string) string) *command {
	c := newCommand("render", "Sync once and print the HAProxy configuration lodestar would run, then exit (marathon-lb's --dry).", "[flags]", `
Reads the same sources as 'serve' (one full sync) and prints haproxy.cfg to stdout. It takes
every rendering flag 'serve' takes (groups, binds, run directory, templates, map mode,
certificates), so the output is what 'serve' would give HAProxy. Apps left out for a label
error are listed on stderr. With --check, the configuration is also validated with
'haproxy -c', and apps HAProxy rejects are left out as 'serve' would.
What it prints passes 'haproxy -c' as it is: the files it refers to in --run-dir are made
when missing, as 'serve' makes them (the self-signed certificate without --ssl-certs, and
the map files with --haproxy-map; existing ones are kept).
--format table prints the registry instead: every app, its service ports, the endpoints of
its eligible tasks and, for each task left out, why. Nothing is started.

Examples:
  lodestar render --apps-file examples/apps.json
  lodestar render --marathon http://m1:8080 --group internal --check
  lodestar render --apps-file apps.json --format table
`)
	src := addSourceFlags(c)
	logs := addLogFlags(c)
	hap := addHAProxyFlags(c)
	format := c.fs.String("format", "config", "output `format`: config (haproxy.cfg) or table (the registry)")
	check := c.fs.Bool("check", false, "validate the configuration with haproxy -c, leaving out apps HAProxy rejects")
	bin := c.fs.String("haproxy-bin", "haproxy", "HAProxy `binary` for --check")
	runDir := c.fs.String("run-dir", defaultRunDir(), "`directory` the configuration refers to for sockets, maps and state")
	timeout := c.fs.Duration("timeout", 30*time.Second, "give up when the sources have not synced within this time")
	c.run = func() error {
		if err := oneOf("format", *format, "config", "table"); err != nil {
			return err
		}
		log, err := logs.logger(stderr)
		if err != nil {
			return err
		}
		build, err := hap.buildConfig(*runDir, getenv)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "lodestar-render-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sources, err := src.build(log, dir)
		if err != nil {
			return err
		}
		snap, err := syncOnce(ctx, sources, *timeout)
		if err != nil {
			return err
		}
		if *format == "table" {
			return printApps(stdout, snap)
		}
		return printConfig(ctx, stdout, stderr, snap, build, *check, *bin, dir)
	}
	return c
}

// printConfig writes the configuration to stdout and the apps left out to stderr. What it
// prints passes `haproxy -c` as printed: the files the configuration refers to in the run
// directory are made first when missing (see makeReferencedFiles).
func printConfig(ctx context.Context, stdout, stderr io.Writer, snap *discovery.Snapshot, build haproxy.Config, check bool, bin, dir string) error {
	if err := makeDefaultCert(build); err != nil {
		return err
	}
	var (
		r        *haproxy.Rendered
		excluded []haproxy.ExcludedApp
		err      error
	)
	if check {
		r, excluded, err = checkedConfig(ctx, snap, build, bin, dir)
	} else {
		r, excluded, err = uncheckedConfig(snap, build)
	}
	if err != nil {
		return err
	}
	if err := makeMapFiles(r.Maps); err != nil {
		return err
	}
	for _, e := range excluded {
		where := e.AppID
		if e.Port >= 0 {
			where = fmt.Sprintf("%s port %d", e.AppID, e.Port)
		}
		fmt.Fprintf(stderr, "left out: %s: %s\n", where, e.Reason)
	}
	_, err = stdout.Write(r.Config)
	return err
}

// uncheckedConfig builds and renders the configuration as it is.
func uncheckedConfig(snap *discovery.Snapshot, build haproxy.Config) (*haproxy.Rendered, []haproxy.ExcludedApp, error) {
	m := haproxy.Build(snap, build, nil)
	r, err := haproxy.Render(m)
	if err != nil {
		return nil, nil, err
	}
	excluded := make([]haproxy.ExcludedApp, 0, len(m.Excluded))
	for _, e := range m.Excluded {
		excluded = append(excluded, haproxy.ExcludedApp{AppID: e.AppID, Port: e.Port, Reason: e.Reason})
	}
	return r, excluded, nil
}

// checkedConfig validates the configuration with `haproxy -c`, leaving out the apps HAProxy
// rejects, as serve would.
func checkedConfig(ctx context.Context, snap *discovery.Snapshot, build haproxy.Config, bin, dir string) (*haproxy.Rendered, []haproxy.ExcludedApp, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, nil, fmt.Errorf("--check needs HAProxy: --haproxy-bin %s: %w (apt-get install haproxy)", bin, err)
	}
	a, err := haproxy.NewApplier(haproxy.ApplierConfig{Build: build, Bin: path, ConfigPath: filepath.Join(dir, "haproxy.cfg"), Logger: discardLogger()}, nil)
	if err != nil {
		return nil, nil, err
	}
	cfg, excluded, _, err := a.Check(ctx, snap)
	if err != nil {
		return nil, nil, err
	}
	if !build.HAProxyMap {
		return &haproxy.Rendered{Config: cfg}, excluded, nil
	}
	// Check validated its map files in a directory of its own and returns the configuration
	// only: the same build, leaving out the same apps, gives the map files this
	// configuration reads.
	build.Exclude = map[string]string{}
	for _, e := range excluded {
		if e.Port < 0 {
			build.Exclude[e.AppID] = e.Reason
		}
	}
	r, err := haproxy.Render(haproxy.Build(snap, build, nil))
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(r.Config, cfg) {
		return nil, nil, errors.New("the map files of the checked configuration could not be made again: a second build leaving out the same apps differs (a bug: please report it)")
	}
	return r, excluded, nil
}

// makeDefaultCert makes the self-signed certificate serve would make in the run directory,
// unless --ssl-certs are given: the HTTPS frontend refers to it, and `haproxy -c` opens it.
// An existing one is kept.
func makeDefaultCert(build haproxy.Config) error {
	if len(build.SSLCerts) != 0 {
		return nil
	}
	if err := prepareRunDir(build.RunDir); err != nil {
		return err
	}
	_, err := haproxy.EnsureSelfSignedCert(filepath.Join(build.RunDir, "default.pem"))
	return err
}

// makeMapFiles writes the map files the configuration reads (--haproxy-map) that do not exist
// yet. Existing ones are left alone: they belong to a serve using the same run directory,
// whose HAProxy reads them on its next reload, and any well-formed map file passes
// `haproxy -c`.
func makeMapFiles(files map[string][]byte) error {
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if _, err := os.Stat(path); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("map file %s: %w", path, err)
		}
		if err := prepareRunDir(filepath.Dir(path)); err != nil {
			return err
		}
		if err := haproxy.WriteFileAtomic(path, files[path], 0o644); err != nil {
			return fmt.Errorf("map file %s: %w", path, err)
		}
	}
	return nil
}

// syncOnce runs the sources until every one has synced once, and returns that snapshot.
func syncOnce(ctx context.Context, sources []discovery.Source, timeout time.Duration) (*discovery.Snapshot, error) {
	reg := discovery.NewRegistry(discovery.WithLogger(discardLogger()))
	for _, s := range sources {
		reg.RegisterSource(s.Name())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return reg.Run(gctx) })
	for _, s := range sources {
		g.Go(func() error { return s.Run(gctx, reg) })
	}
	var syncErr error
	g.Go(func() error {
		defer cancel() // one sync is all render needs: stop the sources
		if err := reg.WaitSynced(gctx); err != nil {
			syncErr = fmt.Errorf("no complete sync within %s: %w", timeout, err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if syncErr != nil {
		return nil, syncErr
	}
	return reg.Snapshot(), nil
}

func printApps(w io.Writer, snap *discovery.Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tNETWORK\tSERVICE PORTS\tTASK\tENDPOINTS / WHY NOT")
	snap.Apps.Each(func(a *discovery.App) bool {
		ports := make([]string, len(a.Ports))
		for i, p := range a.Ports {
			ports[i] = strconv.Itoa(p.ServicePort)
		}
		first := fmt.Sprintf("%s\t%s\t%s", a.ID, a.Network, strings.Join(ports, ","))
		if len(a.Tasks) == 0 {
			fmt.Fprintf(tw, "%s\t-\t(no tasks)\n", first)
		}
		for _, t := range a.Tasks {
			detail := t.Reason
			if t.Eligible {
				eps := make([]string, len(t.Endpoints))
				for i, e := range t.Endpoints {
					eps[i] = fmt.Sprintf("%s:%d", e.Host, e.Port)
				}
				detail = strings.Join(eps, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", first, t.ID, detail)
			first = "\t\t"
		}
		return true
	})
	return tw.Flush()
}
