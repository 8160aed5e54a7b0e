package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cliTimeout bounds one CLI exchange when the caller's context has no deadline.
const cliTimeout = 10 * time.Second

// reloadPollInterval is how often Reload asks the master whether the reload has happened.
const reloadPollInterval = 20 * time.Millisecond

// cliRoundTrip sends one command line to a HAProxy CLI socket (master CLI or stats socket) in
// non-interactive mode and returns everything HAProxy answers. The write side is shut after the
// command: the master CLI keeps a non-interactive connection open until the client half-closes,
// the stats socket closes after one command either way.
func cliRoundTrip(ctx context.Context, socket, cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\r\n") {
		return "", fmt.Errorf("command %q: line breaks are not allowed in one CLI command", cmd)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cliTimeout)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", fmt.Errorf("connect to haproxy socket %s: %w", socket, err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("send %q to %s: %w", cmd, socket, err)
	}
	if err := conn.CloseWrite(); err != nil {
		return "", fmt.Errorf("send %q to %s: %w", cmd, socket, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return string(out), fmt.Errorf("read answer to %q from %s: %w", cmd, socket, err)
	}
	return string(out), nil
}

// MasterClient talks to the master CLI of a HAProxy started with -W -S <socket>.
type MasterClient struct {
	socket string
}

// NewMasterClient returns a client of the master CLI listening on socketPath.
func NewMasterClient(socketPath string) *MasterClient {
	return &MasterClient{socket: socketPath}
}

// Socket returns the master socket path.
func (m *MasterClient) Socket() string { return m.socket }

// Exec runs a master CLI command ("show proc", "@1 show info", "@!1234 show stat", ...) and
// returns HAProxy's answer.
func (m *MasterClient) Exec(ctx context.Context, cmd string) (string, error) {
	return cliRoundTrip(ctx, m.socket, cmd)
}

// ExecWorker runs a Runtime API command on the current worker through the master ("@1 cmd").
// Errors HAProxy reports in its answer ("No such server.") are returned as a *RuntimeError.
func (m *MasterClient) ExecWorker(ctx context.Context, cmd string) (string, error) {
	out, err := cliRoundTrip(ctx, m.socket, "@1 "+cmd)
	if err != nil {
		return out, err
	}
	if msg, bad := runtimeAnswerError(cmd, out); bad {
		return out, &RuntimeError{Command: cmd, Message: msg}
	}
	return out, nil
}

// Proc is one line of the master's `show proc`.
type Proc struct {
	PID int
	// Type is "master" or "worker"; for external programs it is the program's name and
	// Program is true.
	Type    string
	Program bool
	// Reloads is, for the master, how many reloads it went through (failed ones included);
	// for a worker, how many reloads happened since it was started (0 for the current
	// generation).
	Reloads int
	// FailedReloads is the master's count of failed reloads since the last successful one.
	FailedReloads int
	Uptime        time.Duration
	Version       string
	// Old is true for workers (and programs) of a previous generation, still finishing their
	// connections after a reload.
	Old bool
}

var (
	procLineRE = regexp.MustCompile(`^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?\s+(\S+)\s*(\S*)`)
	uptimeRE   = regexp.MustCompile(`^(\d+)d(\d+)h(\d+)m(\d+)s$`)
)

// ParseShowProc parses the master CLI's `show proc` output of HAProxy 2.6:
//
//	#<PID>          <type>          <reloads>       <uptime>        <version>
//	1234            master          2 [failed: 0]   0d00h01m10s     2.6.12
//	# workers
//	1290            worker          0               0d00h00m05s     2.6.12
//	# old workers
//	1250            worker          1               0d00h00m40s     2.6.12
//	# programs
func ParseShowProc(out string) ([]Proc, error) {
	var procs []Proc
	section := "master"
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#<PID>"):
			continue
		case strings.HasPrefix(line, "#"):
			section = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			continue
		}
		m := procLineRE.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("show proc: unexpected line %q", line)
		}
		p := Proc{Type: m[2], Version: m[6]}
		p.PID, _ = strconv.Atoi(m[1])
		p.Reloads, _ = strconv.Atoi(m[3])
		if m[4] != "" {
			p.FailedReloads, _ = strconv.Atoi(m[4])
		}
		if u := uptimeRE.FindStringSubmatch(m[5]); u != nil {
			d, _ := strconv.Atoi(u[1])
			h, _ := strconv.Atoi(u[2])
			mi, _ := strconv.Atoi(u[3])
			s, _ := strconv.Atoi(u[4])
			p.Uptime = time.Duration(((d*24+h)*60+mi)*60+s) * time.Second
		}
		p.Old = strings.HasPrefix(section, "old ")
		p.Program = strings.HasSuffix(section, "programs")
		procs = append(procs, p)
	}
	if masterProc(procs) == nil {
		return nil, fmt.Errorf("show proc: no master line in %q", out)
	}
	return procs, nil
}

func masterProc(procs []Proc) *Proc {
	for i := range procs {
		if procs[i].Type == "master" && !procs[i].Program {
			return &procs[i]
		}
	}
	return nil
}

// CurrentWorkers returns the workers of the current generation (not programs, not old ones).
func CurrentWorkers(procs []Proc) []Proc {
	var out []Proc
	for _, p := range procs {
		if p.Type == "worker" && !p.Program && !p.Old {
			out = append(out, p)
		}
	}
	return out
}

// ShowProc returns the master's process list.
func (m *MasterClient) ShowProc(ctx context.Context) ([]Proc, error) {
	out, err := m.Exec(ctx, "show proc")
	if err != nil {
		return nil, err
	}
	procs, err := ParseShowProc(out)
	if err != nil {
		return nil, fmt.Errorf("master socket %s: %w", m.socket, err)
	}
	return procs, nil
}

// ReloadCount returns the master's reload counter as `show proc` reports it. It counts failed
// reloads too, so an unchanged count proves that no reload was attempted.
func (m *MasterClient) ReloadCount(ctx context.Context) (int, error) {
	procs, err := m.ShowProc(ctx)
	if err != nil {
		return 0, err
	}
	return masterProc(procs).Reloads, nil
}

// ReloadError is returned when HAProxy did not complete a reload.
type ReloadError struct {
	// Message says what was observed.
	Message string
	// Alerts are HAProxy's [ALERT] lines printed during the reload; Process.Reload fills them
	// from the master's output, MasterClient.Reload cannot see that output.
	Alerts []Alert
}

// Error returns the message and HAProxy's first alert.
func (e *ReloadError) Error() string {
	return "haproxy reload: " + e.Message + alertSummary(e.Alerts)
}

// alertSummary is ": " and the first alert, with how many more there are; "" without alerts.
func alertSummary(alerts []Alert) string {
	if len(alerts) == 0 {
		return ""
	}
	msg := ": " + alerts[0].String()
	if n := len(alerts) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more alert(s))", n)
	}
	return msg
}

// Reload asks the master to reload (`reload` on the master CLI, which makes HAProxy 2.6's master
// re-execute itself with the configuration file on disk) and confirms it: the master answers
// again with a higher reload counter, `show proc` lists a worker that was not there before, that
// worker answers a command, and every worker of the previous generation is listed as old
// (leaving). A configuration the master refuses, or an exited master, is a *ReloadError; ctx
// bounds the wait.
func (m *MasterClient) Reload(ctx context.Context) error {
	_, err := m.reload(ctx, nil)
	return err
}

// reload is Reload with an optional channel that is closed when the master process exits, so a
// supervisor can stop waiting at once. It returns the new worker.
func (m *MasterClient) reload(ctx context.Context, exited <-chan struct{}) (Proc, error) {
	before, err := m.ShowProc(ctx)
	if err != nil {
		return Proc{}, fmt.Errorf("haproxy reload: master not answering before the reload: %w", err)
	}
	startCount := masterProc(before).Reloads
	previous := make(map[int]bool)
	for _, p := range before {
		previous[p.PID] = true
	}
	// The master re-executes itself while answering, so the connection may end early or be
	// reset: that is the expected way for the command to finish.
	if _, err := m.Exec(ctx, "reload"); err != nil && !isConnEnd(err) {
		return Proc{}, fmt.Errorf("haproxy reload: %w", err)
	}
	var lastErr error
	for {
		procs, err := m.ShowProc(ctx)
		if err != nil {
			lastErr = err
		} else if master := masterProc(procs); master.Reloads > startCount {
			var fresh *Proc
			stale := 0
			for _, w := range CurrentWorkers(procs) {
				if !previous[w.PID] {
					fresh = &w
				} else {
					stale++
				}
			}
			switch {
			case fresh == nil && master.FailedReloads > 0:
				return Proc{}, &ReloadError{Message: fmt.Sprintf("master %d refused the new configuration (failed reloads: %d); the previous workers keep serving", master.PID, master.FailedReloads)}
			case fresh != nil && stale == 0:
				_, err := m.Exec(ctx, fmt.Sprintf("@!%d show info", fresh.PID))
				if err == nil {
					return *fresh, nil
				}
				lastErr = err
			default:
				lastErr = fmt.Errorf("master reloaded %d time(s), new worker not listed yet", master.Reloads-startCount)
			}
		}
		select {
		case <-ctx.Done():
			return Proc{}, &ReloadError{Message: fmt.Sprintf("not confirmed before %v (last: %v)", ctx.Err(), lastErr)}
		case <-exited:
			return Proc{}, &ReloadError{Message: "the master process exited during the reload"}
		case <-time.After(reloadPollInterval):
		}
	}
}

// isConnEnd reports an error that only says the peer ended the connection.
func isConnEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
