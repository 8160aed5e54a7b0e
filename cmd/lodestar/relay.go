package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lodestar-lb/lodestar/api"
	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/discovery/relay"
)

// relayFlags make lodestar a replica of one or more hubs: another lodestar's registry
// (GET /v1/stream) replaces Marathon, Mesos and the rules as the only source.
type relayFlags struct {
	from     *listFlag
	auth     *string
	ca       *string
	idle     *time.Duration
	maxEvent *int
}

func addRelayFlags(c *command) *relayFlags {
	r := &relayFlags{from: newList()}
	c.fs.Var(r.from, "registry-from", "follow these lodestar hubs' registry (their API `URL`s, comma-separated or repeated: http://hub1:8090,http://hub2:8090) instead of Marathon and Mesos; the next hub takes over when one fails")
	r.auth = c.fs.String("registry-auth", "", "credentials sent to the --registry-from hubs, as a `spec`: token:T, basic:user:pass, or a file holding one of them")
	r.ca = c.fs.String("registry-ca-cert", "", "PEM `file` of CA certificates trusted for https --registry-from hubs")
	r.idle = c.fs.Duration("registry-idle-timeout", relay.DefaultIdleTimeout, "reconnect when a hub's stream sends nothing, keepalives included, for this long")
	r.maxEvent = c.fs.Int("registry-max-event", relay.DefaultMaxEventSize, "largest event accepted from a hub, in `bytes` (a snapshot is one event holding the whole registry)")
	return r
}

// build returns the follower, refusing every other source beside it: a replica's whole state
// is its hub's, and it writes nowhere (so no --zk-rules either).
func (r *relayFlags) build(log *slog.Logger, s *sourceFlags) (*relay.Follower, error) {
	others := map[string]bool{
		"--marathon": len(s.marathon.vals) > 0, "--apps-file": *s.appsFile != "",
		"--mesos-state-file": *s.mesosStateFile != "", "--mesos-zk": *s.mesosZK != "",
		"--mesos-master": len(s.mesosMasters.vals) > 0, "--zk-rules": *s.zkRules != "",
	}
	for _, name := range []string{"--marathon", "--apps-file", "--mesos-state-file", "--mesos-zk", "--mesos-master", "--zk-rules"} {
		if others[name] {
			return nil, fmt.Errorf("--registry-from and %s both give the registry: a replica takes everything from its hubs (and writes nowhere); use one of them", name)
		}
	}
	if err := durationAtLeast("registry-idle-timeout", *r.idle, 100*time.Millisecond); err != nil {
		return nil, err
	}
	if *r.maxEvent < 1<<20 {
		return nil, fmt.Errorf("--registry-max-event %d: want at least 1 MiB (%d bytes)", *r.maxEvent, 1<<20)
	}
	auth, err := api.ParseAuth(*r.auth)
	if err != nil {
		return nil, fmt.Errorf("--registry-auth: %w", err)
	}
	f, err := relay.New(relay.Config{
		URLs: r.from.vals, Token: auth.Token, User: auth.User, Password: auth.Password,
		CACertFile: *r.ca, IdleTimeout: *r.idle, MaxEventSize: *r.maxEvent, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("--registry-from: %w", err)
	}
	return f, nil
}

// serveRelay serves the registry as a stream (GET /v1/stream: any lodestar can be a hub) and,
// on a replica, says in /readyz and on the status page when no hub is reachable. That is a
// degradation, not unreadiness: the replica keeps routing with its last state.
func serveRelay(ctx context.Context, g *errgroup.Group, srv *api.Server, reg *discovery.Registry, sources []discovery.Source, log *slog.Logger) {
	hub := relay.NewHub(reg, relay.HubConfig{Logger: log})
	srv.MountStream(hub)
	g.Go(func() error {
		// A hub serves once its registry has synced: an empty registry of a hub just started
		// would otherwise empty its replicas.
		if err := reg.WaitSynced(ctx); err != nil {
			return nil
		}
		return hub.Run(ctx)
	})
	for _, s := range sources {
		if f, ok := s.(*relay.Follower); ok {
			srv.AddReadyCheck("registry hub", func() error { return api.Degraded(f.Stale()) })
		}
	}
}
