package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ValidateTimeout bounds one `haproxy -c` run when the caller's context has no earlier deadline.
const ValidateTimeout = 30 * time.Second

// Alert is one [ALERT] line of HAProxy's output, with the configuration location it names.
type Alert struct {
	// File and Line locate the offending configuration line; both are zero when HAProxy did not
	// name one (for example "Proxy 'fe': unable to find required use_backend: 'x'.").
	File string
	Line int
	// Message is HAProxy's text without the "[ALERT] (pid) : config :" prefix and without a
	// leading "parsing [file:line] :" location.
	Message string
	// Proxy is the frontend, backend or listen section the alert names, when it names one: the
	// proxy of "Proxy 'x'", "backend 'x'", "frontend x" or the x of "'server x/s'".
	Proxy string
}

// String formats the alert as "file:line: message", or just the message without a location.
func (a Alert) String() string {
	if a.File == "" {
		return a.Message
	}
	return fmt.Sprintf("%s:%d: %s", a.File, a.Line, a.Message)
}

// ValidationError is returned by Validate when HAProxy rejects a configuration.
type ValidationError struct {
	// Path is the configuration file that was checked.
	Path string
	// Alerts are the alerts HAProxy printed, in order; HAProxy's closing summaries ("Fatal
	// errors found in configuration.") are left out when a more specific alert exists.
	Alerts []Alert
	// Output is HAProxy's whole output (stdout and stderr).
	Output string
	// Err is the exit error of the check command.
	Err error
}

// Error names the file and the first alert.
func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "haproxy rejected %s", e.Path)
	if len(e.Alerts) > 0 {
		fmt.Fprintf(&b, ": %s", e.Alerts[0])
		if n := len(e.Alerts) - 1; n > 0 {
			fmt.Fprintf(&b, " (and %d more alert(s))", n)
		}
	} else if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the exit error of the check command.
func (e *ValidationError) Unwrap() error { return e.Err }

// Validate runs `bin -c -f cfgPath` within ValidateTimeout; see ValidateWithin.
func Validate(ctx context.Context, bin, cfgPath string) error {
	return ValidateWithin(ctx, bin, cfgPath, ValidateTimeout)
}

// ValidateWithin runs `bin -c -f cfgPath` and returns nil when HAProxy accepts the
// configuration, a *ValidationError carrying HAProxy's alerts when it rejects it, a
// *CheckAbortedError when the check ran past timeout or died of a signal without an alert (a
// configuration that makes HAProxy read a FIFO or /dev/zero, or crash), or another error when
// the check could not run (missing binary, ctx ended). It records no metrics: the caller
// reports the result with ObserveValidation.
func ValidateWithin(ctx context.Context, bin, cfgPath string, timeout time.Duration) error {
	checkCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(checkCtx, bin, "-c", "-f", cfgPath)
	// Its own process group, killed whole: a check that hangs may have children holding its
	// output open (a wrapper script), and none of them may outlive the check.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Env = haproxyEnviron() // an alert would print a variable the configuration expands
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("check %s with %s: %w", cfgPath, bin, ctx.Err())
	}
	if checkCtx.Err() != nil {
		return &CheckAbortedError{Path: cfgPath, TimedOut: true, After: timeout, Output: string(out)}
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return fmt.Errorf("check %s with %s: %w", cfgPath, bin, err)
	}
	alerts := ParseAlerts(string(out))
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() && len(alerts) == 0 {
		return &CheckAbortedError{Path: cfgPath, Signal: ws.Signal().String(), After: time.Since(start), Output: string(out)}
	}
	verr := &ValidationError{Path: cfgPath, Output: string(out), Err: err, Alerts: alerts}
	if len(verr.Alerts) == 0 {
		// HAProxy exits 2 on "Configuration file has no error but will not start (no
		// listener)" without an [ALERT]; its last words are the best message there is.
		if msg := lastOutputLine(string(out)); msg != "" {
			verr.Alerts = []Alert{{Message: msg}}
		}
	}
	return verr
}

// CheckAbortedError is a `haproxy -c` that never came to a verdict: it ran past its timeout,
// or died of a signal without printing an alert. Nothing in its output says which line is at
// fault; the Applier narrows it down by checking candidates without some apps.
type CheckAbortedError struct {
	// Path is the configuration file that was checked.
	Path string
	// TimedOut is set when the check was killed at its timeout; Signal names the signal it
	// died of otherwise.
	TimedOut bool
	Signal   string
	// After is how long it ran: its timeout when it timed out.
	After time.Duration
	// Output is what it printed before it stopped.
	Output string
}

// What says what happened, as in "haproxy -c timed out after 5s".
func (e *CheckAbortedError) What() string {
	if e.TimedOut {
		return fmt.Sprintf("haproxy -c timed out after %s", e.After.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("haproxy -c crashed (%s) without an alert", e.Signal)
}

// Error names the file and what happened.
func (e *CheckAbortedError) Error() string {
	return fmt.Sprintf("%s on %s", e.What(), e.Path)
}

var (
	// "[ALERT]    (1234) : config : parsing [...]"; HAProxy before 2.4 also printed a date.
	logLineRE = regexp.MustCompile(`^\[(ALERT|WARNING|NOTICE|DEBUG)\]\s+(?:\d+/\d+\s+)?\((\d+)\)\s*:\s?(.*)$`)
	// A location at the start of the message: "parsing [f:12] : ", "Parsing [f:12]: ", "[f:12] : ".
	leadingLocRE = regexp.MustCompile(`^(?:[Pp]arsing\s+)?\[([^\]]+):(\d+)\]\s*:?\s*(.*)$`)
	// A location anywhere: "Binding [f:15] for frontend fe: ...".
	anyLocRE = regexp.MustCompile(`\[([^\]\s]+):(\d+)\]`)
	// Proxy names: "'server be/s1'", then "Proxy 'fe'", "backend 'be'", "frontend fe".
	serverProxyRE = regexp.MustCompile(`'server ([^/' ]+)/`)
	namedProxyRE  = regexp.MustCompile(`(?:[Pp]roxy|backend|frontend|listen)\s+'([^']+)'`)
	bareProxyRE   = regexp.MustCompile(`(?:for|in|Starting)\s+(?:proxy|frontend|backend|listen)\s+([A-Za-z0-9_.:-]+)`)
)

// ParseAlerts extracts the [ALERT] lines of HAProxy output (of `haproxy -c`, or of a master
// whose reload failed). Continuation lines ("   | ...") are appended to their alert. HAProxy's
// closing summaries are dropped when a more specific alert is present.
func ParseAlerts(output string) []Alert {
	var alerts []Alert
	inAlert := false
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := logLineRE.FindStringSubmatch(line); m != nil {
			inAlert = m[1] == "ALERT"
			if inAlert {
				alerts = append(alerts, parseAlertText(m[3]))
			}
			continue
		}
		if rest, ok := strings.CutPrefix(strings.TrimLeft(line, " \t"), "| "); ok && inAlert {
			a := &alerts[len(alerts)-1]
			a.Message += " " + strings.TrimSpace(rest)
			continue
		}
		if strings.TrimSpace(line) != "" {
			inAlert = false
		}
	}
	var specific []Alert
	for _, a := range alerts {
		if !isSummaryAlert(a.Message) {
			specific = append(specific, a)
		}
	}
	if len(specific) > 0 {
		return specific
	}
	return alerts
}

func parseAlertText(text string) Alert {
	text = strings.TrimSpace(text)
	if rest, ok := strings.CutPrefix(text, "config :"); ok {
		text = strings.TrimSpace(rest)
	}
	a := Alert{Message: text}
	if m := leadingLocRE.FindStringSubmatch(text); m != nil {
		a.File, a.Message = m[1], m[3]
		a.Line, _ = strconv.Atoi(m[2])
	} else if m := anyLocRE.FindStringSubmatch(text); m != nil && net.ParseIP(m[1]) == nil {
		// "[127.0.0.1:8080]" at the end of a bind alert is the address, not a location.
		a.File = m[1]
		a.Line, _ = strconv.Atoi(m[2])
	}
	a.Proxy = alertProxy(a.Message)
	return a
}

func alertProxy(msg string) string {
	for _, re := range []*regexp.Regexp{serverProxyRE, namedProxyRE, bareProxyRE} {
		if m := re.FindStringSubmatch(msg); m != nil {
			return strings.TrimRight(m[1], ":")
		}
	}
	return ""
}

func isSummaryAlert(msg string) bool {
	for _, p := range []string{
		"Error(s) found in configuration file",
		"Fatal errors found in configuration",
		"Failed to initialize server(s) addr",
		"Some protocols failed to start their listeners",
	} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// lastOutputLine returns the last non-empty line that is not a [NOTICE].
func lastOutputLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "[NOTICE]") {
			return l
		}
	}
	return ""
}
