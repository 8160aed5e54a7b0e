package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lodestar-lb/lodestar/discovery"
)

func renderCommand(ctx context.Context, stdout, stderr io.Writer, getenv func(string) string) *command {
	c := newCommand("render", "Sync once and print what lodestar would route, then exit (marathon-lb's --dry).", "[flags]", `
Reads the same sources as 'serve' (one full sync), prints every app with its service ports and
the endpoints of its eligible tasks, and for each task left out, why. Nothing is started.

Examples:
  lodestar render --apps-file examples/apps.json
  lodestar render --marathon http://m1:8080
`)
	src := addSourceFlags(c)
	logs := addLogFlags(c)
	timeout := c.fs.Duration("timeout", 30*time.Second, "give up when the sources have not synced within this time")
	c.run = func() error {
		log, err := logs.logger(stderr)
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
		return printApps(stdout, snap)
	}
	return c
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
