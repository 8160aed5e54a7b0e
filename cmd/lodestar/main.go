// Command lodestar is the service-discovery load balancer for Mesos/Marathon: one daemon that
// replaces marathon-lb and bamboo (HAProxy configuration from Marathon apps) and mesos-dns
// (authoritative DNS for Mesos tasks).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// commands lists the subcommands in the order --help shows them.
func commands(ctx context.Context, stdout, stderr io.Writer, getenv func(string) string) []*command {
	return []*command{
		serveCommand(ctx, stderr, getenv),
		renderCommand(ctx, stdout, stderr, getenv),
		recordsCommand(ctx, stdout, stderr, getenv),
		clusterCommand(ctx, stdout, stderr, getenv),
		marathonLBCommand(ctx, stdout, stderr, getenv),
		deployCommand(ctx, os.Stdin, stdout, stderr, getenv),
		autoscaleCommand(ctx, stderr),
		versionCommand(stdout),
	}
}

// run is main without the process: tests call it with their own args, output and environment
// (getenv nil means the real environment).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmds := commands(ctx, stdout, stderr, getenv)
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			for _, c := range cmds {
				if c.name == args[1] {
					c.printUsage(stdout)
					return 0
				}
			}
		}
		printHelp(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "sse" || args[0] == "poll" { // marathon-lb's image form (its Docker CMD)
		args = append([]string{"marathon-lb"}, args...)
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		if c.name == "cluster" { // subcommands, each with its own flags
			return runCluster(ctx, args[1:], stdout, stderr, getenv)
		}
		parse := c.parse
		if c.name == "marathon-lb" { // marathon_lb.py's flags, not Go's
			parse = func(a []string, g func(string) string) error { return parseMarathonLB(c, a, g) }
		}
		if c.name == "deploy" { // zdd.py's flags, and the app file among them
			parse = func(a []string, g func(string) string) error { return parseDeploy(c, a, g) }
		}
		if err := parse(args[1:], getenv); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.printUsage(stdout)
				return 0
			}
			fmt.Fprintf(stderr, "lodestar %s: %v\n", c.name, err)
			return 2
		}
		if err := c.run(); err != nil {
			fmt.Fprintf(stderr, "lodestar %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "lodestar: unknown command %q\n\n", args[0])
	printHelp(stderr, cmds)
	return 2
}

func printHelp(w io.Writer, cmds []*command) {
	fmt.Fprint(w, `lodestar — service discovery load balancer for Mesos and Marathon.

It watches Marathon's event bus (and the Mesos master state), keeps one in-memory service
registry and drives HAProxy and an authoritative DNS server from it.

Usage: lodestar <command> [flags]

Commands:
`)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'lodestar <command> --help' for its flags. Every flag can also be set through the
environment (LODESTAR_<FLAG>, e.g. LODESTAR_MARATHON) or a --config file (YAML or JSON).
`)
}

func versionCommand(stdout io.Writer) *command {
	c := newCommand("version", "Print lodestar's version.", "", "")
	c.run = func() error {
		_, err := fmt.Fprintf(stdout, "lodestar %s\n", version)
		return err
	}
	return c
}
