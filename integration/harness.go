// Package integration holds lodestar's end-to-end tests: the real lodestar binary against fake
// Marathon and Mesos servers (integration/fakemarathon, integration/fakemesos), a real
// ZooKeeper, dig and HAProxy, all on loopback.
//
// This file is the harness the tests share. TestMain builds ./cmd/lodestar once with
// BuildBinary; Start runs `lodestar serve` with a fresh API port and run directory, waits for
// its "lodestar serving" log line and stops it (SIGTERM, exit status 0) when the test ends; Run
// runs any other subcommand to completion. Dig, GetJSON and Eventually are the clients and the
// polling the tests use; nothing here sleeps for a guessed time.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// Timeouts of the harness. They are generous: the machine is a noisy 2-core VM and a test
// that hits one has failed anyway.
const (
	// StartTimeout bounds the wait for "lodestar serving" and for /readyz.
	StartTimeout = 20 * time.Second
	// StopTimeout bounds the wait for lodestar to exit after SIGTERM.
	StopTimeout = 10 * time.Second
	// RunTimeout bounds a subcommand run by Run.
	RunTimeout = 60 * time.Second
	// logHeadBytes and logTailBytes are how much of the start and of the end of lodestar's
	// log a failing test prints (the start says why a process exited at once).
	logHeadBytes = 1500
	logTailBytes = 6000
)

var binary struct {
	sync.Mutex
	path string
}

// BuildBinary builds ./cmd/lodestar of the module this package belongs to into dir with
// `go build` and makes it the binary Start and Run execute. TestMain calls it once. When the
// tests run with -race, so does lodestar: a data race in it then fails the test that stops it.
func BuildBinary(dir string) error {
	out := filepath.Join(dir, "lodestar")
	if err := buildLodestar(out); err != nil {
		return err
	}
	binary.Lock()
	binary.path = out
	binary.Unlock()
	return nil
}

// BuildVersion builds lodestar again with version v, as a newer release of the same code
// would be, into a directory of t's, and returns that binary (for StartBinary).
func BuildVersion(t testing.TB, v string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "lodestar")
	if err := buildLodestar(out, "-ldflags", "-X main.version="+v); err != nil {
		t.Fatal(err)
	}
	return out
}

// buildLodestar runs `go build` of ./cmd/lodestar into out, with -race when the tests run
// with it, and the extra build flags.
func buildLodestar(out string, extra ...string) error {
	goTool, err := goCommand()
	if err != nil {
		return err
	}
	root, err := moduleRoot(goTool)
	if err != nil {
		return err
	}
	args := append([]string{"build", "-o", out}, extra...)
	if raceEnabled() {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, "./cmd/lodestar")...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/lodestar in %s: %w\n%s", root, err, stderr.String())
	}
	return nil
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// goCommand finds the go tool: on PATH, else where `go test` put it (GOROOT in the test's
// environment) or where the README installs it.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, root := range []string{os.Getenv("GOROOT"), "/usr/local/go"} {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); root != "" && err == nil {
			return p, nil
		}
	}
	return "", errors.New("the go tool is neither on PATH nor in /usr/local/go: add /usr/local/go/bin to PATH")
}

// moduleRoot is the directory of the go.mod the current directory belongs to.
func moduleRoot(goTool string) (string, error) {
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the lodestar module")
	}
	return filepath.Dir(mod), nil
}

// Binary returns the lodestar binary BuildBinary built, failing t when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	binary.Lock()
	defer binary.Unlock()
	if binary.path == "" {
		t.Fatal("integration: no lodestar binary: TestMain must call BuildBinary")
	}
	return binary.path
}

// childEnv is the environment lodestar runs with: the test's, without LODESTAR_* variables,
// so that a developer's settings cannot change what a test runs.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LODESTAR_") {
			env = append(env, kv)
		}
	}
	return env
}

// Lodestar is one running `lodestar serve` process.
type Lodestar struct {
	// API is the base URL of the HTTP API, "http://127.0.0.1:PORT".
	API string
	// DNS is the DNS server's "ip:port"; empty without --dns-listen.
	DNS string
	// Log is everything lodestar wrote on stderr (its log), readable while it runs.
	Log *logtest.Buffer

	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been waited for
	err  error         // cmd.Wait's result, valid after done

	stopOnce sync.Once
}

// apiAttr and dnsAttr read the addresses off the "lodestar serving" line (text slog).
var (
	apiAttr = regexp.MustCompile(`\bapi=http://(\S+)`)
	dnsAttr = regexp.MustCompile(`\bdns=(\S+)`)
)

// Start runs `lodestar serve args...`, adding --api-listen on a FreePort and a --run-dir under
// t.TempDir() unless args give them. It returns once lodestar has logged "lodestar serving",
// with API and DNS filled in from that line; it does not wait for readiness (see WaitReady).
// When t ends, lodestar gets SIGTERM and must exit with status 0 within StopTimeout; a failed
// test prints lodestar's log (LogExcerpt).
func Start(t testing.TB, args ...string) *Lodestar {
	t.Helper()
	return StartBinary(t, Binary(t), args...)
}

// StartWithEnv is Start with env ("NAME=value") added to lodestar's environment, LODESTAR_*
// variables included: a test that gives lodestar a secret in its environment.
func StartWithEnv(t testing.TB, env []string, args ...string) *Lodestar {
	t.Helper()
	return start(t, Binary(t), env, args...)
}

// StartBinary is Start with another lodestar binary (BuildVersion).
func StartBinary(t testing.TB, bin string, args ...string) *Lodestar {
	t.Helper()
	return start(t, bin, nil, args...)
}

// start runs `bin serve args…` with env added to its environment, as Start describes.
func start(t testing.TB, bin string, env []string, args ...string) *Lodestar {
	t.Helper()
	// A port of FreePort's, not 127.0.0.1:0: the kernel may hand :0 a port FreePort gave the
	// test for one of HAProxy's binds, which lodestar opens only after its API.
	args = withDefault(args, "--api-listen", fmt.Sprintf("127.0.0.1:%d", FreePort(t)))
	args = withDefault(args, "--run-dir", t.TempDir())
	l := spawn(t, bin, env, args)
	line, err := l.waitLine(StartTimeout, "lodestar serving")
	if err != nil {
		t.Fatalf("lodestar serve %s: no \"lodestar serving\" line: %v", strings.Join(args, " "), err)
	}
	m := apiAttr.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("lodestar serving line without api=: %q", line)
	}
	l.API = "http://" + m[1]
	if m := dnsAttr.FindStringSubmatch(line); m != nil {
		l.DNS = m[1]
	}
	return l
}

// spawn starts `bin serve args…` with env added to its environment, its output in l.Log; it
// is stopped (and its log shown when t failed) at t's cleanup. It waits for nothing.
func spawn(t testing.TB, bin string, env, args []string) *Lodestar {
	t.Helper()
	l := &Lodestar{Log: &logtest.Buffer{}, args: args, done: make(chan struct{})}
	l.cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	l.cmd.Env = append(childEnv(), env...)
	l.cmd.Stdout, l.cmd.Stderr = l.Log, l.Log
	// If the test binary dies without cleaning up, lodestar goes with it.
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("starting lodestar serve %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		l.err = l.cmd.Wait()
		close(l.done)
	}()
	t.Cleanup(func() {
		l.Stop(t)
		if t.Failed() {
			t.Logf("lodestar serve %s — its log:\n%s", strings.Join(l.args, " "), l.LogExcerpt())
		}
	})
	return l
}

// withDefault appends flag and value to args unless args already set flag (as "--flag value",
// "--flag=value", or with one dash).
func withDefault(args []string, flag, value string) []string {
	name := strings.TrimLeft(flag, "-")
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return args
		}
	}
	return append(args, flag, value)
}

// waitLine returns the first complete log line containing every part, waiting up to timeout,
// and fails early when lodestar exits.
func (l *Lodestar) waitLine(timeout time.Duration, parts ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		line, err := l.Log.Wait(ctx, parts...)
		if err != nil {
			select {
			case <-l.done:
				return "", fmt.Errorf("lodestar exited: %v", l.err)
			default:
			}
			return "", fmt.Errorf("after %s: %w", timeout, err)
		}
		// The pipe may deliver a line in pieces: only a line with its newline is whole.
		if strings.Contains(l.Log.String(), line+"\n") {
			return line, nil
		}
		if err := waitWrite(ctx, l.Log, line); err != nil {
			return "", err
		}
	}
}

// waitWrite waits until the log holds more than it did when line was its last, partial line.
func waitWrite(ctx context.Context, b *logtest.Buffer, line string) error {
	n := len(b.String())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(b.String()) == n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("log line %q never completed: %w", line, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// LogExcerpt is lodestar's log for a failure message: all of it when it is short, else its
// start and its end.
func (l *Lodestar) LogExcerpt() string {
	s := l.Log.String()
	if len(s) <= logHeadBytes+logTailBytes {
		return s
	}
	return s[:logHeadBytes] + "\n…\n" + s[len(s)-logTailBytes:]
}

// WaitLog waits up to timeout for a complete log line containing every part and returns it,
// failing t when none comes.
func (l *Lodestar) WaitLog(t testing.TB, timeout time.Duration, parts ...string) string {
	t.Helper()
	line, err := l.waitLine(timeout, parts...)
	if err != nil {
		t.Fatalf("lodestar log: no line with %q: %v", parts, err)
	}
	return line
}

// URL is the API's URL of path ("/v1/axfr").
func (l *Lodestar) URL(path string) string { return l.API + path }

// WaitReady waits until GET /readyz answers 200, failing t after StartTimeout.
func (l *Lodestar) WaitReady(t testing.TB) {
	t.Helper()
	l.WaitReadyWithin(t, StartTimeout)
}

// WaitReadyWithin waits until GET /readyz answers 200, failing t after timeout or when
// lodestar exits first.
func (l *Lodestar) WaitReadyWithin(t testing.TB, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, "lodestar /readyz to answer 200", func() error {
		select {
		case <-l.done:
			t.Fatalf("lodestar exited before it was ready: %v", l.err)
		default:
		}
		code, body, err := Get(l.URL("/readyz"))
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("status %d: %s", code, body)
		}
		return nil
	})
}

// Exited reports whether the process has ended.
func (l *Lodestar) Exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to StopTimeout for lodestar to exit; the test fails unless
// it exits with status 0. It is idempotent; Start's cleanup calls it.
func (l *Lodestar) Stop(t testing.TB) {
	t.Helper()
	l.stopOnce.Do(func() {
		if l.Exited() {
			t.Errorf("lodestar exited before the test stopped it: %v", l.err)
			return
		}
		if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM to lodestar: %v", err)
		}
		select {
		case <-l.done:
		case <-time.After(StopTimeout):
			_ = l.cmd.Process.Kill()
			<-l.done
			t.Errorf("lodestar did not exit within %s of SIGTERM; killed", StopTimeout)
			return
		}
		if strings.Contains(l.Log.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in lodestar (see its log)")
		}
		if l.err != nil {
			t.Errorf("lodestar exited after SIGTERM with %v, want status 0", l.err)
		}
	})
}

// Result is what a subcommand run by Run printed and how it ended.
type Result struct {
	Stdout, Stderr string
	// Code is the exit status.
	Code int
}

// Run runs `lodestar args...` to completion (at most RunTimeout) and returns its output and
// exit status. It fails t only when the binary cannot be run or does not finish.
func Run(t testing.TB, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("lodestar %s did not finish within %s\nstderr:\n%s", strings.Join(args, " "), RunTimeout, res.Stderr)
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running lodestar %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// Eventually calls cond until it returns nil, every 10 ms up to timeout, and fails t with
// what and cond's last error otherwise.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", timeout, what, err)
		}
		<-tick.C
	}
}

// httpClient is the harness's HTTP client: every request is bounded.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// Get fetches url and returns the status code and body.
func Get(url string) (int, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	return resp.StatusCode, body, nil
}

// GetJSON fetches url, decodes its JSON body into v and returns the status code. It fails t
// when the request fails or the body is no JSON of v's shape.
func GetJSON(t testing.TB, url string, v any) int {
	t.Helper()
	code, body, err := Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: status %d, body is not the JSON expected (%T): %v\n%s", url, code, v, err, body)
	}
	return code
}

// digPath is where Debian's dnsutils installs dig.
const digPath = "/usr/bin/dig"

// Dig runs dig against server ("ip:port") with +time=2 +tries=1 and args (the name, type and
// any other dig options) and returns its output. dig's own failures (a timeout, exit status 9)
// are not test failures: they show in the output, which has no status line then (DigStatus
// returns ""). It fails t when dig is not installed.
func Dig(t testing.TB, server string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("dig")
	if err != nil {
		if _, statErr := os.Stat(digPath); statErr != nil {
			t.Fatalf("dig not found: apt-get install dnsutils (bind9-dnsutils), or run make test")
		}
		path = digPath
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		t.Fatalf("Dig: server %q: %v", server, err)
	}
	all := append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, all...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("dig %s did not finish: %v\n%s", strings.Join(all, " "), err, out)
	}
	return string(out)
}

var digStatus = regexp.MustCompile(`status: ([A-Z]+)`)

// DigStatus returns the rcode of a dig output's header (NOERROR, NXDOMAIN, SERVFAIL, REFUSED,
// …), or "" when dig got no answer.
func DigStatus(out string) string {
	if m := digStatus.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// DigRecords returns the data of the records of type rtype in a section ("ANSWER",
// "AUTHORITY" or "ADDITIONAL") of a dig output: for "A", the addresses; for "SRV",
// "priority weight port target".
func DigRecords(out, section, rtype string) []string {
	var recs []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, ";; ") && strings.HasSuffix(line, " SECTION:") {
			in = line == ";; "+section+" SECTION:"
			continue
		}
		if !in || line == "" || strings.HasPrefix(line, ";") {
			if line == "" {
				in = false
			}
			continue
		}
		f := strings.Fields(line)
		// name ttl class type data...
		if len(f) >= 5 && f[3] == rtype {
			recs = append(recs, strings.Join(f[4:], " "))
		}
	}
	return recs
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and is closed now, never
// one returned before in this process (see haproxytest.FreePort).
func FreePort(t testing.TB) int {
	t.Helper()
	return haproxytest.FreePort(t)
}
