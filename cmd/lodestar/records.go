package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/lodestar-lb/lodestar/dnsserver"
)

func recordsCommand(ctx context.Context, stdout, stderr io.Writer, getenv func(string) string) *command {
	c := newCommand("records", "Sync once and print the DNS records lodestar would serve, then exit.", "[flags]", `
Reads the same sources as 'serve' (one full sync) and prints every record of the zone:
as a table (name, type, value), or with --format axfr as the JSON of mesos-dns's GET /v1/axfr.

Examples:
  lodestar records --mesos-state-file examples/state.json
  lodestar records --mesos-state-file state.json --ip-sources netinfo,host --format axfr
`)
	src := addSourceFlags(c)
	logs := addLogFlags(c)
	rec := addDNSRecordFlags(c)
	format := c.fs.String("format", "table", "output `format`: table or axfr")
	timeout := c.fs.Duration("timeout", 30*time.Second, "give up when the sources have not synced within this time")
	c.run = func() error {
		if err := oneOf("format", *format, "table", "axfr"); err != nil {
			return err
		}
		rc, err := rec.config()
		if err != nil {
			return err
		}
		log, err := logs.logger(stderr)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "lodestar-records-")
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
		rc.ResolveHost = func(host string) []netip.Addr {
			// A framework without a pid is named by its host name, resolved as serve would.
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil {
				log.Warn("cannot resolve a framework host name; it gets no records", "host", host, "err", err)
				return nil
			}
			for i, a := range addrs {
				addrs[i] = a.Unmap()
			}
			return addrs
		}
		ix := dnsserver.BuildIndex(snap, rc, nil)
		if *format == "axfr" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(ix.AXFR())
		}
		return ix.WriteTable(stdout)
	}
	return c
}
