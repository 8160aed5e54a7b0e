// Command scalebench measures what HAProxy is handed at scale: for N apps × T tasks generated
// inside it (internal/scalegen), it renders lodestar's configuration, runs `haproxy -c` on it
// and reports server lines, configuration size, build+render time, and `haproxy -c` wall time
// and peak RSS (medians of -runs). With MARATHON_LB_DIR set to a marathon-lb checkout it does
// the same with marathon-lb's configuration for the same apps, served by the in-tree fake
// Marathon, and prints the ratios.
//
//	go run ./integration/scalebench -apps 1000,10000 -tasks 3
//	go run ./integration/scalebench -check a.cfg,b.cfg   (measure existing files only)
//
// -keep DIR keeps the written configurations (DIR/<impl>-<apps>/haproxy.cfg) for study.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/lodestar-lb/lodestar/haproxy"
	"github.com/lodestar-lb/lodestar/internal/scalegen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
}

// row is one configuration measured.
type row struct {
	Impl  string
	Apps  int
	Conf  rendered
	Check checkResult
	FDs   int // the open files HAProxy would ask for at start (haproxy.EstimateFDs)
}

func run() error {
	appsFlag := flag.String("apps", "1000,10000", "comma-separated app counts")
	tasks := flag.Int("tasks", 3, "tasks per app")
	runs := flag.Int("runs", 3, "runs of each measurement; the median is reported")
	bin := flag.String("haproxy", "haproxy", "HAProxy binary")
	keep := flag.String("keep", "", "write the configurations under this directory and keep them")
	withMap := flag.Bool("haproxy-map", false, "also measure lodestar's configuration with --haproxy-map (row lodestar-map)")
	check := flag.String("check", "", "comma-separated configuration files: only measure `haproxy -c` on them")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	soft, hard, err := raiseOpenFiles()
	if err != nil {
		return err
	}
	fmt.Printf("open files: soft limit raised to %d (hard %d); %d CPUs; load %s\n", soft, hard, runtime.NumCPU(), loadAverage())
	if *check != "" {
		return checkFiles(ctx, *bin, strings.Split(*check, ","), *runs, int(hard))
	}
	sizes, err := parseSizes(*appsFlag)
	if err != nil {
		return err
	}
	if *tasks < 1 || *runs < 1 {
		return fmt.Errorf("-tasks %d, -runs %d: want at least 1 each", *tasks, *runs)
	}
	mlb := marathonLBFromEnv()
	root := *keep
	if root == "" {
		if root, err = os.MkdirTemp("", "scalebench-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	}
	var rows []row
	for _, n := range sizes {
		spec := scalegen.Spec{Apps: n, Tasks: *tasks, Shape: scalegen.VHostHTTP, Loopback: true}
		size, err := renderSize(ctx, spec, root, mlb, *withMap, *runs, int(hard))
		if err != nil {
			return err
		}
		if err := checkRows(ctx, *bin, size, *runs); err != nil {
			return err
		}
		rows = append(rows, size...)
	}
	printRows(rows, *tasks, *runs)
	if mlb != nil {
		printRatios(rows)
	} else {
		fmt.Println("(set MARATHON_LB_DIR to a marathon-lb checkout to compare with its configuration)")
	}
	if *keep != "" {
		fmt.Println("configurations kept under", *keep)
	}
	return nil
}

// marathonLBFromEnv is the marathon-lb checkout of MARATHON_LB_DIR, nil when unset.
func marathonLBFromEnv() *marathonLB {
	d := os.Getenv("MARATHON_LB_DIR")
	if d == "" {
		return nil
	}
	py := os.Getenv("MARATHON_LB_PYTHON")
	if py == "" {
		py = "python3"
	}
	return &marathonLB{Dir: d, Python: py}
}

// renderSize writes lodestar's configuration for spec, with --haproxy-map too when withMap,
// and marathon-lb's when mlb is set, each into its own directory under root.
func renderSize(ctx context.Context, spec scalegen.Spec, root string, mlb *marathonLB, withMap bool, runs, hard int) ([]row, error) {
	impls := []string{"lodestar"}
	if withMap {
		impls = append(impls, "lodestar-map")
	}
	if mlb != nil {
		impls = append(impls, "marathon-lb")
	}
	var rows []row
	for _, impl := range impls {
		dir := filepath.Join(root, impl+"-"+strconv.Itoa(spec.Apps))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "%s, %d apps × %d tasks: rendering\n", impl, spec.Apps, spec.Tasks)
		var conf rendered
		var err error
		switch impl {
		case "lodestar", "lodestar-map":
			conf, err = renderLodestar(spec, dir, runs, impl == "lodestar-map")
		default:
			conf, err = mlb.renderMarathonLB(ctx, spec, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("%s, %d apps: %w", impl, spec.Apps, err)
		}
		r, err := newRow(impl, spec.Apps, conf, hard)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// newRow is a configuration to check, with the open files HAProxy would ask for to start it.
func newRow(impl string, apps int, conf rendered, hard int) (row, error) {
	data, err := os.ReadFile(conf.Path)
	if err != nil {
		return row{}, err
	}
	fds := haproxy.EstimateFDs(data, false, runtime.NumCPU()).Need()
	if fds > hard {
		// `haproxy -c` does not raise the limit (nor need it), so it still runs; only a
		// start would fail.
		fmt.Fprintf(os.Stderr, "%s, %d apps: HAProxy would need %d open files to start, above the hard limit %d\n", impl, apps, fds, hard)
	}
	return row{Impl: impl, Apps: apps, Conf: conf, FDs: fds}, nil
}

// checkRows runs `haproxy -c` on every row's configuration, runs rounds of one run each in
// turn (on a shared machine the load moves between rounds, and so hits each alike), and
// keeps the medians.
func checkRows(ctx context.Context, bin string, rows []row, runs int) error {
	results := make([][]checkResult, len(rows))
	for round := range runs {
		for i, r := range rows {
			fmt.Fprintf(os.Stderr, "%s, %d apps: haproxy -c, run %d of %d\n", r.Impl, r.Apps, round+1, runs)
			res, err := runCheck(ctx, bin, r.Conf.Path)
			if err != nil {
				return fmt.Errorf("%s, %d apps: %w", r.Impl, r.Apps, err)
			}
			results[i] = append(results[i], res)
		}
	}
	for i := range rows {
		rows[i].Check = medianResult(results[i])
	}
	return nil
}

// checkFiles measures existing configurations (variants edited by hand).
func checkFiles(ctx context.Context, bin string, paths []string, runs, hard int) error {
	var rows []row
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r, err := newRow(p, 0, rendered{Path: p, Bytes: len(data), Counts: countConfig(data)}, hard)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if err := checkRows(ctx, bin, rows, runs); err != nil {
		return err
	}
	printRows(rows, 0, runs)
	return nil
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-apps %q: want positive counts separated by commas", s)
		}
		sizes = append(sizes, n)
	}
	if len(sizes) == 0 {
		return nil, errors.New("-apps: no sizes")
	}
	return sizes, nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func printRows(rows []row, tasks, runs int) {
	fmt.Printf("\nmedians of %d runs; -c CPU is user+system time, peak RSS HAProxy's VmHWM at exit\n", runs)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "config\tapps\ttasks\tfrontends\tbackends\tserver lines\tchecked\tdisabled\tconfig MB\tbuild+render ms\tfds needed\t-c wall s\t-c CPU s\t-c peak MiB\t")
	for _, r := range rows {
		br := "-"
		if r.Conf.BuildRender > 0 {
			br = fmt.Sprintf("%.0f", r.Conf.BuildRender.Seconds()*1000)
		}
		c := r.Conf.Counts
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%s\t%d\t%.2f\t%.2f\t%.1f\t\n",
			r.Impl, r.Apps, r.Apps*tasks, c.Frontends, c.Backends, c.Servers, c.CheckedServers, c.DisabledServers,
			float64(r.Conf.Bytes)/1e6, br, r.FDs, r.Check.Wall.Seconds(), r.Check.CPU.Seconds(), mib(r.Check.MaxRSS))
	}
	_ = w.Flush()
}

// printRatios prints each lodestar row ÷ the marathon-lb row of the same size.
func printRatios(rows []row) {
	fmt.Println("\n÷ marathon-lb for the same apps")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "config\tapps\tserver lines\tconfig bytes\t-c wall\t-c CPU\t-c peak RSS\t")
	for _, l := range rows {
		i := slices.IndexFunc(rows, func(m row) bool { return m.Impl == "marathon-lb" && m.Apps == l.Apps })
		if l.Impl == "marathon-lb" || i < 0 {
			continue
		}
		m := rows[i]
		fmt.Fprintf(w, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", l.Impl, l.Apps,
			ratio(float64(l.Conf.Counts.Servers), float64(m.Conf.Counts.Servers)),
			ratio(float64(l.Conf.Bytes), float64(m.Conf.Bytes)),
			ratio(l.Check.Wall.Seconds(), m.Check.Wall.Seconds()),
			ratio(l.Check.CPU.Seconds(), m.Check.CPU.Seconds()),
			ratio(float64(l.Check.MaxRSS), float64(m.Check.MaxRSS)))
	}
	_ = w.Flush()
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
