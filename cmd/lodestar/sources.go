package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/discovery/file"
	"github.com/lodestar-lb/lodestar/discovery/marathon"
	"github.com/lodestar-lb/lodestar/discovery/mesos"
	"github.com/lodestar-lb/lodestar/discovery/zkrules"
	"github.com/lodestar-lb/lodestar/examples"
)

// sourceFlags are the flags that say where apps and Mesos state come from. serve and render
// share them, so `render` sees exactly what `serve` would.
type sourceFlags struct {
	marathon         *listFlag
	marathonAuth     *string
	marathonCredFile *string
	marathonCA       *string
	marathonResync   *time.Duration
	marathonIdle     *time.Duration
	marathonMaxBody  *int64
	appsFile         *string
	mesosStateFile   *string
	filePoll         *time.Duration
	mesosZK          *string
	mesosMasters     *listFlag
	mesosRefresh     *time.Duration
	mesosAuth        *string
	mesosHTTPS       *bool
	mesosCA          *string
	zkRules          *string
	relay            *relayFlags
}

func addSourceFlags(c *command) *sourceFlags {
	fs := c.fs
	s := &sourceFlags{marathon: newList()}
	fs.Var(s.marathon, "marathon", "Marathon `URL`s, comma-separated or repeated (http://m1:8080,http://m2:8080); the leader is preferred")
	s.marathonAuth = fs.String("marathon-auth", "", "Marathon basic auth as `user:password`")
	s.marathonCredFile = fs.String("marathon-auth-credential-file", "", "`file` holding Marathon basic auth as user:password on its first line")
	s.marathonCA = fs.String("marathon-ca-cert", "", "PEM `file` of CA certificates trusted for https Marathon URLs")
	s.marathonResync = fs.Duration("marathon-resync", 5*time.Minute, "period of full syncs of /v2/apps between events")
	s.marathonIdle = fs.Duration("marathon-idle-timeout", 15*time.Second, "reconnect when the event stream sends nothing, keepalives included, for this long")
	s.marathonMaxBody = fs.Int64("marathon-max-body", 32<<20, "largest Marathon response accepted, in `bytes`")
	s.appsFile = fs.String("apps-file", "", "read apps from this Marathon /v2/apps JSON `file` instead of Marathon (re-read when it changes)")
	s.mesosStateFile = fs.String("mesos-state-file", "", "read the Mesos state from this /master/state JSON `file` (re-read when it changes)")
	s.filePoll = fs.Duration("file-poll-interval", file.DefaultInterval, "how often --apps-file and --mesos-state-file are checked for changes")
	s.mesosZK = fs.String("mesos-zk", "", "Mesos ZooKeeper `URL` (zk://h1:2181,h2:2181/mesos): the leading master is found there and its state polled")
	s.mesosMasters = addList(c, "mesos-master", "Mesos master `host:port`s to poll, comma-separated or repeated (without --mesos-zk; with it, the fallback)")
	s.mesosRefresh = fs.Duration("mesos-refresh", mesos.DefaultRefresh, "how often the Mesos state is polled (at once on a leader change)")
	s.mesosAuth = fs.String("mesos-auth", "", "Mesos master basic auth as `user:password`")
	s.mesosHTTPS = fs.Bool("mesos-https", false, "poll the Mesos masters over https")
	s.mesosCA = fs.String("mesos-ca-cert", "", "PEM `file` of CA certificates trusted for https Mesos masters")
	s.zkRules = fs.String("zk-rules", "", "bamboo-style routing rules in ZooKeeper, as a `URL` (zk://h1:2181,h2:2181/lodestar/services, optionally zk://user:pass@…): watched, and written through /api/services")
	s.relay = addRelayFlags(c)
	return s
}

// build returns the configured sources. With no source flag at all, lodestar serves the
// built-in example cluster, written to dir so it can be edited while lodestar runs.
func (s *sourceFlags) build(log *slog.Logger, dir string) ([]discovery.Source, error) {
	if len(s.relay.from.vals) > 0 {
		f, err := s.relay.build(log, s)
		if err != nil {
			return nil, err
		}
		return []discovery.Source{f}, nil
	}
	if len(s.marathon.vals) > 0 && *s.appsFile != "" {
		return nil, errors.New("--marathon and --apps-file both give apps: use one of them")
	}
	if err := errors.Join(
		durationAtLeast("marathon-idle-timeout", *s.marathonIdle, 100*time.Millisecond),
		durationAtLeast("marathon-resync", *s.marathonResync, time.Second),
	); err != nil {
		return nil, err
	}
	var srcs []discovery.Source
	if len(s.marathon.vals) > 0 {
		user, pass, err := s.credentials()
		if err != nil {
			return nil, err
		}
		m, err := marathon.New(marathon.Config{
			URLs: s.marathon.vals, Username: user, Password: pass, CACertFile: *s.marathonCA,
			Resync: *s.marathonResync, IdleTimeout: *s.marathonIdle, MaxBody: *s.marathonMaxBody,
			Logger: log,
		})
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, m)
	}
	appsFile, stateFile := resolvePath(*s.appsFile), resolvePath(*s.mesosStateFile)
	if *s.mesosZK != "" || len(s.mesosMasters.vals) > 0 {
		if stateFile != "" {
			return nil, errors.New("--mesos-state-file and --mesos-zk/--mesos-master both give the Mesos state: use one of them")
		}
		if err := durationAtLeast("mesos-refresh", *s.mesosRefresh, time.Second); err != nil {
			return nil, err
		}
		user, pass, _ := strings.Cut(*s.mesosAuth, ":")
		if *s.mesosAuth != "" && user == "" {
			return nil, errors.New("--mesos-auth must be user:password")
		}
		m, err := mesos.New(mesos.Config{
			ZK: *s.mesosZK, Masters: s.mesosMasters.vals, Refresh: *s.mesosRefresh,
			Username: user, Password: pass, HTTPS: *s.mesosHTTPS, CACertFile: *s.mesosCA, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, m)
	}
	if len(srcs) == 0 && appsFile == "" && stateFile == "" {
		var err error
		if appsFile, stateFile, err = writeExamples(dir); err != nil {
			return nil, err
		}
		log.Warn("no --marathon, --apps-file or --mesos-state-file given: serving the built-in example cluster; edit its files to watch changes go through",
			"apps_file", appsFile, "mesos_state_file", stateFile)
	}
	if *s.zkRules != "" {
		r, err := zkrules.New(zkrules.Config{URL: *s.zkRules, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("--zk-rules: %w", err)
		}
		srcs = append(srcs, r)
	}
	if appsFile != "" || stateFile != "" {
		f, err := file.New(file.Config{AppsFile: appsFile, MesosStateFile: stateFile, Interval: *s.filePoll, Logger: log})
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, f)
	}
	return srcs, nil
}

// credentials reads --marathon-auth or the credential file (marathon-lb's format: user:pass).
func (s *sourceFlags) credentials() (user, pass string, err error) {
	cred := *s.marathonAuth
	if *s.marathonCredFile != "" {
		if cred != "" {
			return "", "", errors.New("give --marathon-auth or --marathon-auth-credential-file, not both")
		}
		b, err := os.ReadFile(*s.marathonCredFile)
		if err != nil {
			return "", "", fmt.Errorf("--marathon-auth-credential-file: %w", err)
		}
		cred, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	}
	if cred == "" {
		return "", "", nil
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(cred), ":")
	if !ok || user == "" {
		return "", "", errors.New("the Marathon credentials must be user:password")
	}
	return user, pass, nil
}

func writeExamples(dir string) (apps, state string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("example cluster: %w", err)
	}
	apps, state = filepath.Join(dir, "example-apps.json"), filepath.Join(dir, "example-state.json")
	for path, data := range map[string][]byte{apps: examples.Apps, state: examples.State} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return "", "", fmt.Errorf("example cluster: %w", err)
		}
	}
	return apps, state, nil
}

// logFlags configure logging; every command that logs has them.
type logFlags struct {
	level, format *string
}

func addLogFlags(c *command) *logFlags {
	return &logFlags{
		level:  c.fs.String("log-level", "info", "log level: debug, info, warn or error"),
		format: c.fs.String("log-format", "text", "log format: text or json"),
	}
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", *l.level)
	}
	if err := oneOf("log-format", *l.format, "text", "json"); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if *l.format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
