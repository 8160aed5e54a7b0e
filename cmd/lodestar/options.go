package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Every flag can also be given as an environment variable LODESTAR_<FLAG> (upper case, "-"
// becomes "_") or as a key of the --config file (YAML or JSON, keys are the flag names).
// Precedence: command line, then environment, then config file, then the built-in default.

// envName is the environment twin of a flag.
func envName(flagName string) string {
	return "LODESTAR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a repeatable flag that also accepts comma-separated values
// (--group a --group b, --group a,b, LODESTAR_GROUP=a,b, or a YAML list).
type listFlag struct {
	vals []string
	set  bool
}

func newList(def ...string) *listFlag { return &listFlag{vals: def} }

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	if !l.set { // the first explicit value replaces the default
		l.vals, l.set = nil, true
	}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l.vals = append(l.vals, p)
		}
	}
	return nil
}

// command is one subcommand: its flags and what it does.
type command struct {
	name    string
	summary string
	// usage is the line after "lodestar"; details follow it in --help.
	usage, details string
	fs             *flag.FlagSet
	config         *string
	run            func() error
	// compatFiles read another tool's configuration file (--mesos-dns-config, --bamboo-config)
	// onto the flags that the command line, the environment and --config left unset.
	compatFiles []func(set map[string]bool) error
}

func newCommand(name, summary, usage, details string) *command {
	c := &command{name: name, summary: summary, usage: usage, details: details}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would print the usage (and a parse error) itself, to its output, and
	// the caller prints them again: --help came out twice on a terminal. It stays silent, and
	// the caller prints --help once, to stdout, and an error once, to stderr.
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	c.config = c.fs.String("config", "", "read flag values from this YAML or JSON file (keys are flag names)")
	return c
}

func (c *command) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: lodestar %s %s\n\n%s\n", c.name, c.usage, c.summary)
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.details))
	}
	fmt.Fprintf(w, "\nFlags (each also read from the environment variable shown, or from --config):\n")
	c.fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n      %s", usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "\n      env %s\n", envName(f.Name))
	})
}

// parse parses args, then fills every flag not given on the command line from the environment
// and then from the config file.
func (c *command) parse(args []string, getenv func(string) string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w (see lodestar %s --help)", err, c.name)
	}
	if c.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --; see lodestar %s --help)", c.fs.Arg(0), c.name)
	}
	onCmdline := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { onCmdline[f.Name] = true })

	var errs []error
	c.fs.VisitAll(func(f *flag.Flag) {
		if onCmdline[f.Name] {
			return
		}
		if v, ok := lookupEnv(getenv, envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
			onCmdline[f.Name] = true
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if *c.config != "" {
		if err := c.applyConfigFile(*c.config, onCmdline); err != nil {
			return err
		}
	}
	for _, read := range c.compatFiles {
		if err := read(onCmdline); err != nil {
			return err
		}
	}
	return nil
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	if getenv == nil {
		return os.LookupEnv(name)
	}
	v := getenv(name)
	return v, v != ""
}

// applyConfigFile sets every flag named in the file that was not set by flag or environment.
// Unknown keys are errors: a typo in a config file must not be silently ignored. alreadySet
// gains the flags it sets.
func (c *command) applyConfigFile(path string, alreadySet map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var kv map[string]any
	if err := yaml.Unmarshal(data, &kv); err != nil { // YAML is a superset of JSON
		return fmt.Errorf("--config %s: not valid YAML or JSON: %w", path, err)
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		f := c.fs.Lookup(k)
		if f == nil || k == "config" {
			errs = append(errs, fmt.Errorf("--config %s: unknown key %q (valid keys are the flag names of 'lodestar %s --help'%s)", path, k, c.name, c.foreignConfigHint(k)))
			continue
		}
		if alreadySet[k] {
			continue
		}
		alreadySet[k] = true
		for _, v := range configValues(kv[k]) {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("--config %s: key %q: %w", path, k, err))
			}
		}
	}
	return errors.Join(errs...)
}

// configValues turns a YAML value into flag strings: lists give one value each.
func configValues(v any) []string {
	switch v := v.(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	case nil:
		return []string{""}
	}
	return []string{fmt.Sprint(v)}
}

// resolvePath makes a relative path from a config file relative to the working directory.
func resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return abs
}

// durationAtLeast checks a duration flag's lower bound with an error naming the flag.
func durationAtLeast(name string, d, lo time.Duration) error {
	if d < lo {
		return fmt.Errorf("--%s %s: must be at least %s", name, d, lo)
	}
	return nil
}

func oneOf(name, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("--%s %q: want one of %s", name, v, strings.Join(allowed, ", "))
}
