package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/internal/scalegen"
	"github.com/lodestar-lb/lodestar/templates"
)

// rendered is a configuration written to a directory, ready for `haproxy -c`.
type rendered struct {
	Path        string
	Bytes       int
	Counts      configCounts
	BuildRender time.Duration // median; zero for marathon-lb's, which is not timed here
}

// snapshotOf runs a registry over apps and returns its snapshot, so that task endpoints and
// eligibility are derived by discovery itself, as in serve.
func snapshotOf(apps []*discovery.App) (*discovery.Snapshot, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := discovery.NewRegistry()
	done := make(chan error, 1)
	go func() { done <- reg.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	if err := reg.Send(wait, discovery.ReplaceApps{Apps: apps}); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := reg.Barrier(wait); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return reg.Snapshot(), nil
}

// renderLodestar builds and renders lodestar's configuration for spec as `serve` would with
// its default flags (--group external, --health-check) and with --haproxy-map when useMap,
// runs times to take the median build and render time, and writes haproxy.cfg, the map files
// and the default certificate into dir (the run directory the configuration points at).
func renderLodestar(spec scalegen.Spec, dir string, runs int, useMap bool) (rendered, error) {
	apps, err := spec.DiscoveryApps()
	if err != nil {
		return rendered{}, err
	}
	snap, err := snapshotOf(apps)
	if err != nil {
		return rendered{}, err
	}
	if snap.Tasks != spec.Apps*spec.Tasks {
		return rendered{}, fmt.Errorf("lodestar: %d tasks in the snapshot, want %d", snap.Tasks, spec.Apps*spec.Tasks)
	}
	cfg := haproxy.Config{Groups: []string{"external"}, RunDir: dir, HealthCheck: true, HAProxyMap: useMap, Templates: templates.Builtin()}
	var out *haproxy.Rendered
	times := make([]time.Duration, 0, runs)
	for range max(runs, 1) {
		start := time.Now()
		m := haproxy.Build(snap, cfg, nil)
		if m.Err != nil {
			return rendered{}, fmt.Errorf("lodestar build: %w", m.Err)
		}
		if len(m.Excluded) > 0 {
			return rendered{}, fmt.Errorf("lodestar build left out %d apps", len(m.Excluded))
		}
		if out, err = haproxy.Render(m); err != nil {
			return rendered{}, fmt.Errorf("lodestar render: %w", err)
		}
		times = append(times, time.Since(start))
	}
	if _, err := haproxy.EnsureSelfSignedCert(filepath.Join(dir, "default.pem")); err != nil {
		return rendered{}, err
	}
	for path, data := range out.Maps {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return rendered{}, err
		}
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, out.Config, 0o644); err != nil {
		return rendered{}, err
	}
	return rendered{Path: path, Bytes: len(out.Config), Counts: countConfig(out.Config), BuildRender: median(times)}, nil
}
