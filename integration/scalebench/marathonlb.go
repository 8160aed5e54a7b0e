package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/internal/scalegen"
)

// marathonLB runs marathon-lb's own script from a checkout against a fake Marathon.
type marathonLB struct {
	Dir    string // the checkout (MARATHON_LB_DIR)
	Python string // an interpreter with marathon-lb's modules (pycurl, requests, …)
}

// renderMarathonLB serves spec's apps from the in-tree fake Marathon, has marathon-lb print
// its configuration for them (--dry, with --group external --health-check as lodestar's
// defaults), makes it loadable outside marathon-lb's container (see outsideContainer) and
// writes it to dir.
func (mlb marathonLB) renderMarathonLB(ctx context.Context, spec scalegen.Spec, dir string) (rendered, error) {
	data, err := spec.MarathonJSON()
	if err != nil {
		return rendered{}, err
	}
	fm := fakemarathon.New()
	if err := fm.LoadApps(data); err != nil {
		return rendered{}, err
	}
	if err := fm.Start(); err != nil {
		return rendered{}, err
	}
	defer fm.Close()
	cert := filepath.Join(dir, "cert.pem")
	if _, err := haproxy.EnsureSelfSignedCert(cert); err != nil {
		return rendered{}, err
	}
	cmd := exec.CommandContext(ctx, mlb.Python, "marathon_lb.py", "--dry",
		"--marathon", fm.URL(), "--group", "external", "--health-check",
		"--ssl-certs", cert, "--syslog-socket", "/dev/null", "--log-level", "WARNING")
	cmd.Dir = mlb.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return rendered{}, fmt.Errorf("marathon-lb --dry: %w\n%s", err, lastLines(stderr.String(), 15))
	}
	cfg := outsideContainer(stdout.Bytes(), mlb.Dir, dir)
	if !bytes.Contains(cfg, []byte("\nbackend ")) {
		return rendered{}, fmt.Errorf("marathon-lb --dry printed no backend:\n%s", lastLines(stderr.String(), 15))
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		return rendered{}, err
	}
	return rendered{Path: path, Bytes: len(cfg), Counts: countConfig(cfg)}, nil
}

// mlbContainerPaths are the global lines of marathon-lb's HEAD that name files of its
// container image: its Lua scripts under /marathon-lb, the stats socket's directory and the
// server-state directory.
var mlbContainerPaths = regexp.MustCompile(`(?m)^(\s*)(lua-load|stats socket|server-state-base)\s+(\S+)(.*)$`)

// outsideContainer rewrites what marathon-lb's configuration needs from its container and
// nothing else: the Lua scripts are loaded from the checkout (mlbDir) instead of
// /marathon-lb, as the image copies them there; the stats socket and the server-state
// directory move into dir. Sections, servers and options are untouched.
func outsideContainer(cfg []byte, mlbDir, dir string) []byte {
	return mlbContainerPaths.ReplaceAllFunc(cfg, func(line []byte) []byte {
		m := mlbContainerPaths.FindSubmatch(line)
		indent, key, path, rest := string(m[1]), string(m[2]), string(m[3]), string(m[4])
		var local string
		switch key {
		case "lua-load":
			local = filepath.Join(mlbDir, filepath.Base(path))
		case "stats socket":
			local = filepath.Join(dir, "mlb-stats.sock")
		case "server-state-base":
			local = filepath.Join(dir, "mlb-state") + "/"
		}
		return []byte(indent + key + " " + local + rest)
	})
}
