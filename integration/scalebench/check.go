package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// checkResult is one `haproxy -c` run.
type checkResult struct {
	Wall time.Duration
	// CPU is user + system time: on a shared machine it moves less with the load than Wall.
	CPU    time.Duration
	MaxRSS int64 // KiB: the peak resident size (VmHWM at exit)
}

// raiseOpenFiles sets this process's soft RLIMIT_NOFILE to its hard limit and returns both.
// Setting it explicitly matters: Go raises the soft limit at start-up by itself, but then
// gives child processes the original one back unless the program set the limit itself.
func raiseOpenFiles() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, lim.Max, nil
}

// runCheck runs `haproxy -c -f cfgPath` once and returns its wall time, CPU time and peak
// RSS; a configuration HAProxy refuses is an error carrying its output.
func runCheck(ctx context.Context, bin, cfgPath string) (checkResult, error) {
	out, err := os.CreateTemp("", "scalebench-check-*.log")
	if err != nil {
		return checkResult{}, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(bin, "-c", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	// runTraced does not watch ctx: an interrupt reaches HAProxy too (same process group).
	if err := ctx.Err(); err != nil {
		return checkResult{}, err
	}
	start := time.Now()
	t, err := runTraced(cmd)
	wall := time.Since(start)
	if err == nil && t.Status.ExitStatus() != 0 {
		err = fmt.Errorf("%v", t.Status)
		if t.Status.Exited() {
			err = fmt.Errorf("exit status %d", t.Status.ExitStatus())
		}
	}
	if err != nil {
		text, _ := os.ReadFile(out.Name())
		return checkResult{}, fmt.Errorf("haproxy -c -f %s: %w\n%s", cfgPath, err, lastLines(string(text), 15))
	}
	cpu := time.Duration(t.Usage.Utime.Nano() + t.Usage.Stime.Nano())
	return checkResult{Wall: wall, CPU: cpu, MaxRSS: t.PeakKiB}, nil
}

// medianResult is the median of each figure of results, taken on its own.
func medianResult(results []checkResult) checkResult {
	var walls, cpus []time.Duration
	var rss []int64
	for _, r := range results {
		walls, cpus, rss = append(walls, r.Wall), append(cpus, r.CPU), append(rss, r.MaxRSS)
	}
	return checkResult{Wall: median(walls), CPU: median(cpus), MaxRSS: median(rss)}
}

// median is the middle value (the lower middle of an even count).
func median[T int64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// configCounts is what a configuration holds, counted by its sections' keywords.
type configCounts struct {
	Frontends, Backends, Servers int
	// CheckedServers are the server lines with `check`.
	CheckedServers int
	// DisabledServers are the server lines with `disabled` (spare slots).
	DisabledServers int
	// LiveChecked are the checked server lines that are not disabled: the tasks.
	LiveChecked int
}

// countConfig counts the frontend and backend sections and the server lines of an HAProxy
// configuration. Only the first word of a line counts, so that a server line's `check` or a
// comment mentioning "server" is not mistaken for a section.
func countConfig(cfg []byte) configCounts {
	var c configCounts
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "frontend":
			c.Frontends++
		case "backend":
			c.Backends++
		case "listen":
			c.Frontends++
			c.Backends++
		case "server":
			c.Servers++
			opts := fields[min(2, len(fields)):] // after the name and address
			checked, disabled := slices.Contains(opts, "check"), slices.Contains(opts, "disabled")
			if checked {
				c.CheckedServers++
			}
			if disabled {
				c.DisabledServers++
			}
			if checked && !disabled {
				c.LiveChecked++
			}
		}
	}
	return c
}
