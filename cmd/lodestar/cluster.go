package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/lodestar-lb/lodestar/integration/cluster"
)

const clusterDetails = `
Subcommands:
  render   render a topology file into a docker-compose lab or per-host systemd units and
           configuration files
  doctor   probe a live cluster and report what is wrong and how to fix it

Run 'lodestar cluster render --help' or 'lodestar cluster doctor --help' for their flags.
`

// clusterCommand is 'lodestar cluster', listed in the top-level help. Its subcommands take
// their own flags, so the command line after "cluster" goes to runCluster as it is.
func clusterCommand(ctx context.Context, stdout, stderr io.Writer, getenv func(string) string) *command {
	c := newCommand("cluster", "Bring up a Mesos/Marathon cluster: render its configuration from a topology, or probe it.", "render|doctor [flags]", clusterDetails)
	c.run = func() error {
		if code := runCluster(ctx, c.fs.Args(), stdout, stderr, getenv); code != 0 {
			return fmt.Errorf("exit status %d", code)
		}
		return nil
	}
	return c
}

// runCluster runs 'lodestar cluster' with args (what follows "cluster") and returns the exit
// code: 0 done, 1 failed, 2 a usage error.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		w := stdout
		if len(args) == 0 {
			w = stderr
		}
		clusterCommand(ctx, stdout, stderr, getenv).printUsage(w)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "render":
		return clusterRender(args[1:], stdout, stderr, getenv)
	case "doctor":
		return clusterDoctor(ctx, args[1:], stdout, stderr, getenv)
	}
	fmt.Fprintf(stderr, "lodestar cluster: unknown subcommand %q: use render or doctor (lodestar cluster --help)\n", args[0])
	return 2
}

const clusterRenderDetails = `
Validates the topology (every mistake is listed, one line each, naming the host and the
field; warnings such as an even-sized ZooKeeper ensemble go to stderr and do not stop it) and
writes the rendered files under --out:

  --format compose   docker-compose.yml: the whole topology on one machine, one bridge
                     network with each host's IP fixed (a lab on one VM)
  --format systemd   <host>/etc/... and <host>/usr/local/lib/...: per host, the systemd units
                     (a host-IP unit writing /run/lodestar-cluster/host.env that the others
                     read, agents ordered after docker, Restart=always) and the files of the
                     zookeeper, mesos and marathon packages (/etc/zookeeper/conf,
                     /etc/mesos*, /etc/marathon/conf), masters' ACLs included

Both write dns/named.conf.<domain> (the bind9 forward zone for the Mesos domain) and
dns/resolv.conf (the nameserver lines). What is computed is never typed: the Mesos quorum is
⌊masters/2⌋+1, ZooKeeper ids and server lines follow from the hosts.

Files already in --out with the same content are left alone, other files there are not
touched; a file that exists with different content stops the render before anything is
written, unless --force.

Examples:
  lodestar cluster render --topology examples/cluster.yaml --format compose --out lab
  lodestar cluster render --topology cluster.yaml --format systemd --out /tmp/cluster
  rsync -a /tmp/cluster/m1/ root@m1:/   # then, on m1: systemctl daemon-reload
`

// clusterRender runs 'lodestar cluster render' and returns its exit code.
func clusterRender(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := newCommand("cluster render", "Render a cluster topology into a docker-compose lab or per-host systemd units and configuration.", "--topology FILE --format compose|systemd --out DIR", clusterRenderDetails)
	topology := c.fs.String("topology", "", "cluster topology `file` (YAML; see examples/cluster.yaml)")
	format := c.fs.String("format", "", "output `format`: "+strings.Join(cluster.Formats, " or "))
	out := c.fs.String("out", "", "`directory` to write the files under (created if missing)")
	force := c.fs.Bool("force", false, "overwrite files in --out whose content differs")
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "lodestar cluster render: %v\n", err)
		return code
	}
	if err := c.parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(stdout)
			return 0
		}
		return fail(2, err)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"topology", *topology}, {"format", *format}, {"out", *out}} {
		if f.v == "" {
			missing = append(missing, "--"+f.name)
		}
	}
	if len(missing) > 0 {
		return fail(2, fmt.Errorf("%s required (lodestar cluster render --help)", strings.Join(missing, ", ")))
	}
	if err := oneOf("format", *format, cluster.Formats...); err != nil {
		return fail(2, err)
	}
	t, warnings, err := cluster.Load(resolvePath(*topology))
	for _, w := range warnings {
		fmt.Fprintf(stderr, "lodestar cluster render: warning: %v\n", w)
	}
	if err != nil {
		return fail(1, err)
	}
	files, err := cluster.Render(t, *format)
	if err != nil {
		return fail(1, err)
	}
	written, err := cluster.WriteFiles(*out, files, *force)
	if err != nil {
		return fail(1, err)
	}
	fmt.Fprintf(stdout, "rendered %d files for cluster %q (%s) under %s: %d written, %d unchanged\n",
		len(files), t.Name, *format, *out, len(written), len(files)-len(written))
	for _, p := range written {
		fmt.Fprintf(stdout, "  %s\n", p)
	}
	if steps, ok := files[cluster.ReadmeFile]; ok {
		fmt.Fprintf(stdout, "\n%s", steps)
	}
	return 0
}
