package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/integration/deploy"
)

// `lodestar deploy`: marathon-lb's zdd.py, with its option names (docs/deploy.md maps each).
// The work is integration/deploy's; this file is flags and wiring.

const deployDetails = `
Blue/green deployment of a Marathon app carrying HAPROXY_DEPLOYMENT_GROUP and
HAPROXY_DEPLOYMENT_ALT_PORT: the other colour is created beside the current one on the
alternate service port, scaled up in steps while lodestar drains the old tasks, and the old
colour is deleted once every edge given by --lodestar reports all its servers drained. Any
failure rolls back to the old colour. FILE is the app definition ('-' reads stdin).

zdd.py's names are accepted: --json/-j FILE, -m (--marathon), --marathon-lb/-l (--lodestar),
-d (--dry-run), -f (--force), -s (--step-delay), -i (--initial-instances), -r (--resume),
-w (--max-wait), -n (--new-instances), -c (--complete-cur), -p (--complete-prev),
--auth-credentials (--marathon-auth), --longhelp (--help). --step-delay and --max-wait take
seconds (zdd.py's) or a Go duration (500ms).

Examples:
  lodestar deploy web.json -m http://marathon:8080 -l http://lb1:8090,http://lb2:8090 --force
  lodestar deploy --dry-run --json web.json --marathon http://marathon:8080
`

// deployAliases are zdd.py's short and alternative option names, with lodestar's.
var deployAliases = map[string]string{
	"j": "json", "m": "marathon", "l": "lodestar", "marathon-lb": "lodestar", "d": "dry-run",
	"f": "force", "s": "step-delay", "i": "initial-instances", "r": "resume", "w": "max-wait",
	"n": "new-instances", "c": "complete-cur", "p": "complete-prev",
	"auth-credentials": "marathon-auth", "longhelp": "help", "h": "help",
}

// deployIgnored are zdd.py options accepted for its command lines, without effect: deploy
// reports on stdout (and --events-json), not through syslog.
var deployIgnored = map[string]bool{"syslog-socket": true, "log-format": true, "log-level": true}

// secondsFlag is a duration given as zdd.py's whole seconds ("5") or a Go duration ("500ms").
type secondsFlag struct{ d time.Duration }

func (s *secondsFlag) String() string { return s.d.String() }

func (s *secondsFlag) Set(v string) error {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if n < 0 {
			return fmt.Errorf("%q: want seconds ≥ 0", v)
		}
		s.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 {
		return fmt.Errorf("%q: want seconds (5) or a duration (500ms)", v)
	}
	s.d = d
	return nil
}

// deployFlags are the flags of `lodestar deploy`.
type deployFlags struct {
	file                                        *string
	marathon, lodestar                          *listFlag
	auth, credFile, caCert, dcosAuth            *string
	initial, linear, newInstances               *int
	stepDelay, maxWait                          *secondsFlag
	resume, force, dryRun, completeCur, compPrv *bool
	preKillHook                                 *string
	eventsJSON                                  *bool
}

func deployCommand(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *command {
	c := newCommand("deploy", "Blue/green deploy of a Marathon app through lodestar's drains (marathon-lb's zdd.py).",
		"FILE|- [flags]", deployDetails)
	fs := c.fs
	f := &deployFlags{marathon: newList(), lodestar: newList(),
		stepDelay: &secondsFlag{5 * time.Second}, maxWait: &secondsFlag{300 * time.Second}}
	f.file = fs.String("json", "", "the app definition `FILE` (also the first argument; '-' reads stdin)")
	fs.Var(f.marathon, "marathon", "Marathon `URL`s, comma-separated; a member that cannot be reached is skipped")
	fs.Var(f.lodestar, "lodestar", "lodestar API `URL`s of every edge serving the app (http://lb1:8090,http://lb2:8090): drains are read there")
	f.auth = fs.String("marathon-auth", "", "Marathon basic auth as `user:password`")
	f.credFile = fs.String("marathon-auth-credential-file", "", "`file` holding Marathon basic auth as user:password on its first line")
	f.caCert = fs.String("marathon-ca-cert", "", "PEM `file` of CA certificates trusted for https Marathon URLs")
	f.dcosAuth = fs.String("dcos-auth-credentials", "", "DC/OS service-account credentials: not supported (use --marathon-auth)")
	f.initial = fs.Int("initial-instances", 1, "the new colour's first instance count (at most the current one's)")
	f.linear = fs.Int("linear-increase", 0, "scale the new colour by this many instances a step instead of by half of its instances")
	f.newInstances = fs.Int("new-instances", 0, "hybrid deploy: stop with this many new instances beside the rest of the old ones")
	fs.Var(f.stepDelay, "step-delay", "pause after each change to Marathon, in seconds or as a duration")
	fs.Var(f.maxWait, "max-wait", "longest wait without progress (health, edges, drains) before rolling back, in seconds or as a duration")
	f.resume = fs.Bool("resume", false, "continue the deployment under way in the group")
	f.force = fs.Bool("force", false, "do not ask before each change (needed when stdin is not a terminal)")
	f.dryRun = fs.Bool("dry-run", false, "print the plan and the app definition, write nothing (reads only GET /v2/apps)")
	f.completeCur = fs.Bool("complete-cur", false, "finish a hybrid deployment on the newer colour")
	f.compPrv = fs.Bool("complete-prev", false, "finish a hybrid deployment on the older colour")
	f.preKillHook = fs.String("pre-kill-hook", "", "`program` run before tasks are removed, with the old app, the task ids and the new app as JSON arguments; a non-zero exit rolls back")
	f.eventsJSON = fs.Bool("events-json", false, "write progress as JSON lines on stdout (the step lines go to stderr)")
	c.run = func() error { return f.run(ctx, stdin, stdout, stderr) }
	return c
}

// parseDeploy takes zdd.py's command line: short and alternative names, the app file as an
// argument anywhere among the flags.
func parseDeploy(c *command, args []string, getenv func(string) string) error {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if long, ok := deployAliases[name]; ok {
			name = long
		}
		if name == "help" {
			return flag.ErrHelp
		}
		if deployIgnored[name] {
			if !hasValue {
				i++
			}
			continue
		}
		f := c.fs.Lookup(name)
		if f == nil {
			return fmt.Errorf("unknown flag %s (see lodestar deploy --help)", a)
		}
		if hasValue {
			flags = append(flags, "--"+name+"="+value)
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			flags = append(flags, "--"+name)
			continue
		}
		if i+1 >= len(args) {
			return fmt.Errorf("flag %s needs a value (see lodestar deploy --help)", a)
		}
		flags = append(flags, "--"+name+"="+args[i+1])
		i++
	}
	if err := c.parse(flags, getenv); err != nil {
		return err
	}
	file := c.fs.Lookup("json")
	switch {
	case len(positional) > 1:
		return fmt.Errorf("one app file, got %q", positional)
	case len(positional) == 1 && file.Value.String() != "" && file.Value.String() != positional[0]:
		return fmt.Errorf("the app file is given twice: %s and --json %s", positional[0], file.Value.String())
	case len(positional) == 1:
		return file.Value.Set(positional[0])
	}
	return nil
}

// maxAppFile bounds the app definition read from FILE or stdin.
const maxAppFile = 4 << 20

// readApp reads the app definition from the file or stdin.
func (f *deployFlags) readApp(stdin io.Reader) (deploy.App, error) {
	in := stdin
	switch *f.file {
	case "":
		return nil, errors.New("no app definition: give FILE, --json FILE, or - for stdin")
	case "-":
	default:
		file, err := os.Open(*f.file)
		if err != nil {
			return nil, fmt.Errorf("reading the app definition: %w", err)
		}
		defer file.Close()
		in = file
	}
	// Bounded like every other input: a definition is kilobytes, /dev/zero is not one.
	data, err := io.ReadAll(io.LimitReader(in, maxAppFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading the app definition: %w", err)
	}
	if len(data) > maxAppFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not one app definition", *f.file, maxAppFile)
	}
	a, err := deploy.ParseApp(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", *f.file, err)
	}
	return a, nil
}

func (f *deployFlags) options() (deploy.Options, error) {
	o := deploy.Options{
		InitialInstances: *f.initial, LinearIncrease: *f.linear, NewInstances: *f.newInstances,
		Resume: *f.resume, CompleteCur: *f.completeCur, CompletePrev: *f.compPrv,
		StepDelay: f.stepDelay.d, MaxWait: f.maxWait.d, PreKillHook: *f.preKillHook,
	}
	for name, v := range map[string]int{"initial-instances": o.InitialInstances, "linear-increase": o.LinearIncrease, "new-instances": o.NewInstances} {
		if v < 0 || v > deploy.MaxInstances {
			return o, fmt.Errorf("--%s %d: want 0-%d", name, v, deploy.MaxInstances)
		}
	}
	if o.MaxWait < time.Second {
		return o, fmt.Errorf("--max-wait %s: must be at least 1s", o.MaxWait)
	}
	if *f.dcosAuth != "" {
		return o, errors.New("--dcos-auth-credentials: DC/OS service accounts are not supported; use --marathon-auth or --marathon-auth-credential-file")
	}
	return o, nil
}

func (f *deployFlags) marathonClient() (*deploy.Marathon, error) {
	s := &sourceFlags{marathonAuth: f.auth, marathonCredFile: f.credFile}
	user, pass, err := s.credentials()
	if err != nil {
		return nil, err
	}
	return deploy.NewMarathon(deploy.MarathonConfig{URLs: f.marathon.vals, User: user, Password: pass, CACertFile: *f.caCert})
}

func (f *deployFlags) run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	app, err := f.readApp(stdin)
	if err != nil {
		return err
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	m, err := f.marathonClient()
	if err != nil {
		return err
	}
	lines, events := stdout, io.Writer(nil)
	if *f.eventsJSON {
		lines, events = stderr, stdout
	}
	progress := deploy.NewProgress(lines, events, !*f.eventsJSON && isTerminal(stdout), nil)
	cfg := deploy.Config{Marathon: m, Options: opts, Progress: progress}
	plan, err := deploy.PlanFrom(ctx, cfg, app)
	if err != nil {
		return err
	}
	progress.Plan(plan)
	if *f.dryRun {
		return nil
	}
	if cfg.Edges, err = deploy.NewEdges(f.lodestar.vals, 0); err != nil {
		return err
	}
	if !*f.force {
		if *f.file == "-" || !isTerminal(stdin) {
			return errors.New("stdin is not a terminal to answer the prompts on: give --force")
		}
		cfg.Confirm = promptYesNo(bufio.NewReader(stdin), stdout)
	}
	return deploy.Run(ctx, cfg, plan)
}

// promptYesNo asks a question on out and reads y/n (default yes, as zdd.py's).
func promptYesNo(in *bufio.Reader, out io.Writer) func(string) (bool, error) {
	return func(q string) (bool, error) {
		for {
			fmt.Fprintf(out, "%s [Y/n] ", q)
			line, err := in.ReadString('\n')
			switch strings.ToLower(strings.TrimSpace(line)) {
			case "", "y", "yes":
				if err != nil && line == "" {
					return false, fmt.Errorf("reading the answer: %w", err)
				}
				return true, nil
			case "n", "no":
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("reading the answer: %w", err)
			}
			fmt.Fprintln(out, "Please answer yes or no.")
		}
	}
}

// isTerminal reports whether v is a character device (a terminal).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
