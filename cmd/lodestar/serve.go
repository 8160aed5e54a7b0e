package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/lodestar-lb/lodestar/api"
	"github.com/lodestar-lb/lodestar/discovery"
)

func serveCommand(ctx context.Context, stderr io.Writer, getenv func(string) string) *command {
	c := newCommand("serve", "Run lodestar: watch the cluster and serve the registry.", "[flags]", `
Apps come from Marathon (--marathon) or from a file (--apps-file); the Mesos state from
--mesos-state-file. With none of them, lodestar serves a built-in example cluster.
The registry is served over HTTP on --api-listen: GET /v1/apps, /healthz, /readyz, /metrics.

Examples:
  lodestar serve --marathon http://m1:8080,http://m2:8080
  lodestar serve --apps-file examples/apps.json --mesos-state-file examples/state.json
`)
	src := addSourceFlags(c)
	logs := addLogFlags(c)
	listen := c.fs.String("api-listen", api.DefaultListen, "`address` of the HTTP API")
	runDir := c.fs.String("run-dir", filepath.Join(os.TempDir(), "lodestar"), "`directory` for files lodestar writes while running")
	c.run = func() error {
		log, err := logs.logger(stderr)
		if err != nil {
			return err
		}
		sources, err := src.build(log, *runDir)
		if err != nil {
			return err
		}
		reg := discovery.NewRegistry(discovery.WithLogger(log))
		for _, s := range sources {
			reg.RegisterSource(s.Name())
		}
		srv, err := api.New(api.Config{Listen: *listen, Logger: log, Version: version}, reg)
		if err != nil {
			return err
		}
		srv.AddReadyCheck("first sync", reg.Synced)

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
		g.Go(func() error { return srv.Run(ctx) })
		g.Go(func() error {
			select {
			case <-srv.Ready():
				log.Info("lodestar serving", "version", version, "api", "http://"+srv.Addr(), "sources", len(sources))
			case <-ctx.Done():
			}
			return nil
		})
		err = g.Wait()
		log.Info("lodestar stopped")
		return err
	}
	return c
}
