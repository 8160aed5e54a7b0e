package haproxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of ProcessConfig.
const (
	DefaultStopTimeout       = 10 * time.Second
	DefaultRestartBackoff    = 200 * time.Millisecond
	DefaultMaxRestartBackoff = 10 * time.Second
)

// maxUnixPath is the longest unix socket path Linux accepts (sun_path is 108 bytes with the
// NUL); HAProxy binds to "<path>.<pid>.tmp" first and renames, hence the margin.
const (
	maxUnixPath      = 107
	unixBindTmpExtra = 16
)

// ProcessConfig configures a supervised HAProxy.
type ProcessConfig struct {
	// Bin is the haproxy binary, a path or a name looked up in PATH; default "haproxy".
	Bin string
	// ConfigPath is the configuration file HAProxy loads at start and at every reload.
	ConfigPath string
	// RunDir holds master.sock and haproxy.pid; it is created when missing.
	RunDir string
	// Logger receives HAProxy's output, one record per line; default slog.Default().
	Logger *slog.Logger
	// ExtraArgs are appended to the command line; -D (daemon mode) is refused.
	ExtraArgs []string
	// StopTimeout is how long a soft stop (SIGUSR1: stop listening, finish open connections)
	// may take before the master gets SIGTERM; default DefaultStopTimeout.
	StopTimeout time.Duration
	// RestartBackoff is the wait before restarting HAProxy after it exited, doubled after each
	// quick failure up to MaxRestartBackoff; defaults DefaultRestartBackoff and
	// DefaultMaxRestartBackoff.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// AccessLog is where HAProxy's stdout (the traffic log of `log stdout`) goes; stderr (its
	// process events and alerts) is always relayed to Logger. nil relays stdout to Logger too.
	AccessLog *AccessLog
	// HoldListeners are bind addresses (as written on bind lines) whose listening sockets the
	// Process opens and keeps across HAProxy's restarts (see ListenerSet).
	HoldListeners []string
	// KeepOnExit leaves HAProxy running when Run's context ends, for the next Process on the
	// same run dir to adopt within AdoptWithin (default DefaultAdoptWithin); see keep.
	KeepOnExit  bool
	AdoptWithin time.Duration
}

// ProcessStatus is what the API shows about the supervised HAProxy.
type ProcessStatus struct {
	// Running is true while the master answers on its socket.
	Running bool `json:"running"`
	// PID is the master's process id, 0 when no master runs.
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Restarts counts the times HAProxy was started again after it exited on its own.
	Restarts int `json:"restarts"`
	// LastExit is how the previous master ended ("exit status 137"), empty before any exit.
	LastExit   string    `json:"last_exit,omitempty"`
	LastExitAt time.Time `json:"last_exit_at,omitzero"`
}

// Process supervises one HAProxy master-worker: `haproxy -W -S <run-dir>/master.sock -f <cfg>
// -p <run-dir>/haproxy.pid` in the foreground, its output logged, restarted with backoff when it
// dies, stopped gracefully when Run's context ends.
type Process struct {
	cfg     ProcessConfig
	log     *slog.Logger
	master  *MasterClient
	out     *outputRing
	started chan struct{}
	once    sync.Once
	// restarted gets a value (without blocking: one pending is enough) each time a master
	// started after an exit of its own answers with a worker running.
	restarted chan struct{}
	// failedStarts holds the latest start that exited before it answered, with its alerts.
	failedStarts chan *StartError
	// reloaded gets a value (without blocking) after each confirmed reload, for the count of
	// old workers.
	reloaded chan struct{}
	// listeners holds the sockets of HoldListeners; nil without them.
	listeners *ListenerSet

	runOnce  sync.Mutex // held for the whole of Run: one HAProxy per Process
	seq      int        // starts so far, for the instance tags; used by Run's goroutine only
	reloadMu sync.Mutex // one reload at a time

	mu       sync.Mutex
	status   ProcessStatus
	inst     *instance
	answered bool // a master of this Process has answered with a worker running
	adopted  bool // the first master was adopted, not started
}

// instance is one started master.
type instance struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed when the master has exited and been reaped
	err  error         // Wait's error, readable after done
	// outDone is closed when every holder of the output pipe (master, workers) has closed it.
	outDone chan struct{}
	// answered is set (under Process.mu) once the master answered with a worker running.
	answered bool
	// configSum is the SHA-256 of the configuration file read just before the start.
	configSum [sha256.Size]byte
	// tag is this start's supervisorTagEnv value, inherited by every process it forks or execs.
	tag string
	// escaped lists the processes found outside the group (daemonized), set by exited.
	escaped []int
	// fds maps the bind addresses whose sockets this master inherited to their descriptors.
	fds map[string]int
}

// NewProcess checks cfg and returns a Process ready to Run.
func NewProcess(cfg ProcessConfig) (*Process, error) {
	if cfg.Bin == "" {
		cfg.Bin = "haproxy"
	}
	bin, err := exec.LookPath(cfg.Bin)
	if err != nil {
		return nil, fmt.Errorf("haproxy binary %q: %w (install Debian's haproxy package)", cfg.Bin, err)
	}
	cfg.Bin = bin
	if cfg.ConfigPath == "" {
		return nil, errors.New("haproxy process: ConfigPath is required")
	}
	if slices.Contains(cfg.ExtraArgs, "-D") {
		return nil, errors.New("haproxy process: -D (daemon mode) in the extra arguments: a daemonized HAProxy leaves the supervisor")
	}
	if cfg.RunDir == "" {
		return nil, errors.New("haproxy process: RunDir is required")
	}
	if cfg.ConfigPath, err = filepath.Abs(cfg.ConfigPath); err != nil {
		return nil, fmt.Errorf("haproxy config path: %w", err)
	}
	if cfg.RunDir, err = filepath.Abs(cfg.RunDir); err != nil {
		return nil, fmt.Errorf("haproxy run dir: %w", err)
	}
	sock := filepath.Join(cfg.RunDir, "master.sock")
	if len(sock)+unixBindTmpExtra > maxUnixPath {
		return nil, fmt.Errorf("haproxy run dir %s: the master socket path %s is too long for a unix socket (keep it under %d bytes)", cfg.RunDir, sock, maxUnixPath-unixBindTmpExtra)
	}
	if err := os.MkdirAll(cfg.RunDir, 0o750); err != nil {
		return nil, fmt.Errorf("haproxy run dir: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = DefaultRestartBackoff
	}
	if cfg.AdoptWithin <= 0 {
		cfg.AdoptWithin = DefaultAdoptWithin
	}
	if cfg.MaxRestartBackoff < cfg.RestartBackoff {
		cfg.MaxRestartBackoff = max(DefaultMaxRestartBackoff, cfg.RestartBackoff)
	}
	var listeners *ListenerSet
	if len(cfg.HoldListeners) > 0 {
		listeners = NewListenerSet(cfg.HoldListeners)
	}
	return &Process{
		listeners:    listeners,
		cfg:          cfg,
		log:          cfg.Logger.With("component", "haproxy"),
		master:       NewMasterClient(sock),
		out:          newOutputRing(512),
		started:      make(chan struct{}),
		restarted:    make(chan struct{}, 1),
		failedStarts: make(chan *StartError, 1),
		reloaded:     make(chan struct{}, 1),
	}, nil
}

// MasterSocket returns the master CLI socket path.
func (p *Process) MasterSocket() string { return p.master.Socket() }

// PIDFile returns the pid file HAProxy writes.
func (p *Process) PIDFile() string { return filepath.Join(p.cfg.RunDir, "haproxy.pid") }

// Master returns a client of the master CLI.
func (p *Process) Master() *MasterClient { return p.master }

// Started is closed the first time the master answers on its socket with a worker running.
func (p *Process) Started() <-chan struct{} { return p.started }

// FailedStarts receives, for a start that exited before it ever answered (a bind refused at
// the first start, say), the exit and the [ALERT] lines HAProxy printed. Only the latest
// waits: an older failure not yet received is dropped.
func (p *Process) FailedStarts() <-chan *StartError { return p.failedStarts }

// StartError is a start of HAProxy that exited before it answered.
type StartError struct {
	// Exit is how the master exited.
	Exit string
	// Alerts are the [ALERT] lines HAProxy printed.
	Alerts []Alert
	// ConfigSum is the SHA-256 of the configuration file when HAProxy was started: the alerts'
	// line numbers are those of that file, and only of that file.
	ConfigSum [sha256.Size]byte
}

// Error returns the exit and HAProxy's first alert.
func (e *StartError) Error() string {
	return "haproxy exited while starting (" + e.Exit + ")" + alertSummary(e.Alerts)
}

// failedStart reports inst on FailedStarts when it never answered; its output since mark is
// all read (exited waits for it).
func (p *Process) failedStart(inst *instance, mark uint64) {
	p.mu.Lock()
	answered := inst.answered
	p.mu.Unlock()
	if answered {
		return
	}
	exit := exitText(inst.err)
	if len(inst.escaped) > 0 {
		exit += fmt.Sprintf("; HAProxy daemonized: processes %v left the supervisor's process group and were killed", inst.escaped)
	}
	err := &StartError{
		Exit:      exit,
		Alerts:    ParseAlerts(strings.Join(p.out.since(mark), "\n")),
		ConfigSum: inst.configSum,
	}
	select {
	case <-p.failedStarts:
	default:
	}
	select {
	case p.failedStarts <- err:
	default:
	}
}

// Restarted receives a value each time HAProxy answers again after it exited on its own and
// was restarted (the first start is Started's). The restarted HAProxy knows only its file and
// its server-state file, not what was set at runtime since: the Applier puts that back.
func (p *Process) Restarted() <-chan struct{} { return p.restarted }

// Restarts returns how many times HAProxy was started again after it exited on its own.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status.Restarts
}

// PID returns the master's process id, 0 when none runs.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status.PID
}

// Status returns a copy of the supervisor's view of HAProxy.
func (p *Process) Status() ProcessStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Run starts HAProxy and keeps it running until ctx ends, then stops it (soft stop, then SIGTERM
// after StopTimeout) and returns nil once no HAProxy process of it is left. An exit on its own
// is logged with its status and followed by a restart after a backoff.
func (p *Process) Run(ctx context.Context) error {
	if !p.runOnce.TryLock() {
		return errors.New("haproxy process: Run is already running")
	}
	defer p.runOnce.Unlock()
	defer p.closeListeners()
	backoff := p.cfg.RestartBackoff
	inst := p.previous()
	if inst != nil {
		p.useAdopted(inst)
	}
	for {
		mark := p.out.mark()
		var err error
		if inst == nil {
			inst, err = p.start()
		}
		if err != nil {
			// Start itself failed (binary gone, fork refused): as bad as an immediate exit.
			p.log.Error("haproxy did not start", "err", err, "retry_in", backoff)
		} else {
			ready := make(chan struct{})
			go func() {
				defer close(ready)
				p.watchReady(ctx, inst)
				p.watchOldWorkers(ctx, inst)
			}()
			select {
			case <-ctx.Done():
				if p.cfg.KeepOnExit {
					p.keep(inst)
				} else {
					p.stop(inst)
				}
				<-ready
				return nil
			case <-inst.done:
				<-ready
				p.exited(inst)
				p.failedStart(inst, mark)
				if time.Since(p.Status().StartedAt) > time.Minute {
					backoff = p.cfg.RestartBackoff
				}
			}
		}
		inst = nil
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, p.cfg.MaxRestartBackoff)
		p.mu.Lock()
		p.status.Restarts++
		p.mu.Unlock()
		metricProcessRestarts.Inc()
	}
}

// start launches a master in its own process group, its stderr (the workers inherit it) on a
// pipe that a goroutine turns into log records, its stdout (`log stdout`: the traffic log)
// there too or where AccessLog says, and the held listening sockets as descriptors 3, 4, ….
func (p *Process) start() (*instance, error) {
	// The file is replaced atomically, so what is read here is what HAProxy reads, unless a
	// new one lands in between; then the sum matches neither and alerts are read by name.
	var sum [sha256.Size]byte
	config, readErr := os.ReadFile(p.cfg.ConfigPath)
	if readErr == nil {
		sum = sha256.Sum256(config)
		if line := daemonLine(config); line > 0 {
			p.log.Warn("the configuration asks HAProxy to daemonize; lodestar keeps it in the foreground (-db) to supervise it", "file", p.cfg.ConfigPath, "line", line)
		}
	}
	loadPath, inherited, fds, err := p.prepareListeners(config, readErr == nil)
	if err != nil {
		return nil, err
	}
	// -db keeps HAProxy in the foreground even when the configuration says `daemon`: a
	// daemonizing master forks, calls setsid and lets the process we started exit, which would
	// look like a crash, restart in a loop and leave every daemonized copy running.
	args := append([]string{
		"-W", "-db",
		"-S", p.master.Socket() + ",mode,600",
		"-f", loadPath,
		"-p", p.PIDFile(),
	}, p.cfg.ExtraArgs...)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	p.seq++
	tag := fmt.Sprintf("lodestar-%d-%d-%d", os.Getpid(), p.seq, time.Now().UnixNano())
	cmd := exec.Command(p.cfg.Bin, args...)
	cmd.Env = haproxyEnviron(supervisorTagEnv + "=" + tag)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.ExtraFiles = inherited
	var sink *accessLogSink
	if p.cfg.AccessLog != nil {
		if sink, err = p.cfg.AccessLog.open(); err != nil {
			r.Close()
			w.Close()
			return nil, err
		}
		cmd.Stdout = sink.file
		defer sink.afterStart()
	}
	// Setpgid: the master and its workers form a group that stop can check and clean up as one.
	// Pdeathsig: should lodestar die without stopping it, the master gets SIGTERM and takes its
	// workers down instead of serving a configuration nobody updates. (Go delivers it when the
	// forking OS thread exits; the runtime keeps its threads, so this does not fire spuriously.)
	// A master to be kept for the next lodestar (KeepOnExit) must not die with this one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if p.cfg.KeepOnExit {
		cmd.SysProcAttr.Pdeathsig = 0
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start %s: %w", p.cfg.Bin, err)
	}
	w.Close()
	inst := &instance{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), outDone: make(chan struct{}), configSum: sum, tag: tag, fds: fds}
	go func() {
		defer close(inst.outDone)
		defer r.Close()
		p.readOutput(r)
	}()
	go func() {
		inst.err = cmd.Wait()
		close(inst.done)
	}()
	p.mu.Lock()
	p.inst = inst
	p.status.PID = inst.pid
	p.status.StartedAt = time.Now()
	p.status.Running = false
	p.mu.Unlock()
	p.log.Info("haproxy starting", "pid", inst.pid, "cmd", strings.Join(append([]string{p.cfg.Bin}, args...), " "))
	return inst, nil
}

// watchReady polls the master socket until this instance's master answers with a worker, then
// marks the process running.
func (p *Process) watchReady(ctx context.Context, inst *instance) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		procs, err := p.master.ShowProc(qctx)
		cancel()
		if err == nil && masterProc(procs).PID == inst.pid && len(CurrentWorkers(procs)) > 0 {
			p.mu.Lock()
			if p.inst == inst {
				p.status.Running = true
			}
			inst.answered = true
			again := p.answered
			p.answered = true
			p.mu.Unlock()
			metricProcessUp.Set(1)
			p.log.Info("haproxy running", "pid", inst.pid, "workers", len(CurrentWorkers(procs)))
			p.once.Do(func() { close(p.started) })
			if again {
				select {
				case p.restarted <- struct{}{}:
				default:
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-inst.done:
			return
		case <-tick.C:
		}
	}
}

// oldWorkersInterval is how often the number of old workers is read from the master.
const oldWorkersInterval = 10 * time.Second

// watchOldWorkers keeps lodestar_haproxy_old_workers current while inst runs: old workers
// leave on their own as their connections end, without a reload to notice it.
func (p *Process) watchOldWorkers(ctx context.Context, inst *instance) {
	defer metricOldWorkers.Set(0)
	tick := time.NewTicker(oldWorkersInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-inst.done:
			return
		case <-tick.C:
		case <-p.reloaded:
		}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		p.OldWorkers(qctx)
		cancel()
	}
}

// OldWorkers asks the master how many workers of earlier generations still run (finishing
// their connections after a reload) and records the number in lodestar_haproxy_old_workers.
// hard-stop-after and mworker-max-reloads bound them; this shows how close they come.
func (p *Process) OldWorkers(ctx context.Context) (int, error) {
	procs, err := p.master.ShowProc(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, w := range procs {
		if w.Type == "worker" && w.Old && !w.Program {
			n++
		}
	}
	metricOldWorkers.Set(float64(n))
	return n, nil
}

// exited records an exit HAProxy was not asked for and clears what is left of its group.
func (p *Process) exited(inst *instance) {
	status := exitText(inst.err)
	p.mu.Lock()
	p.status.Running = false
	p.status.PID = 0
	p.status.LastExit = status
	p.status.LastExitAt = time.Now()
	p.mu.Unlock()
	metricProcessUp.Set(0)
	p.log.Error("haproxy exited; restarting", "pid", inst.pid, "status", status)
	if inst.escaped = escapedMembers(inst); len(inst.escaped) > 0 {
		p.log.Error("haproxy processes left the supervisor's process group (daemonized: a `daemon` directive or -D despite -db?); killing them", "pid", inst.pid, "escaped", inst.escaped)
	}
	// A master that died abruptly leaves its workers to notice on their own; make sure none
	// keeps the ports before the next master binds them. With held listeners the ports stay
	// open anyway, so the workers first get a soft stop to finish the requests they are
	// serving (a hard stop would cut them) while new connections wait in the backlog.
	if p.listeners != nil {
		p.killGroup(inst, syscall.SIGUSR1, orphanSoftStop)
	}
	p.killGroup(inst, syscall.SIGTERM, 2*time.Second)
	p.killGroup(inst, syscall.SIGKILL, 2*time.Second)
	p.waitOutput(inst)
}

// stop ends inst: SIGUSR1 (soft stop: listeners close, workers finish their connections and
// exit, then the master), SIGTERM after StopTimeout (hard stop), SIGKILL to the whole group as
// the last resort. It returns when no process of the group is left.
func (p *Process) stop(inst *instance) {
	p.log.Info("haproxy stopping", "pid", inst.pid, "soft_stop_timeout", p.cfg.StopTimeout)
	// The ports close as a soft stop closes HAProxy's listeners, not once lodestar exits.
	p.closeListeners()
	// A master that is re-executing itself for a reload loses a signal sent meanwhile; a soft
	// stop can be asked for again, so it is repeated until the master is gone.
	deadline := time.Now().Add(p.cfg.StopTimeout)
	stopped := false
	for !stopped && time.Now().Before(deadline) {
		syscall.Kill(inst.pid, syscall.SIGUSR1)
		stopped = waitClosed(inst.done, min(250*time.Millisecond, time.Until(deadline)))
	}
	if !stopped {
		p.log.Warn("haproxy soft stop timed out; sending SIGTERM", "pid", inst.pid)
		syscall.Kill(inst.pid, syscall.SIGTERM)
		if !waitClosed(inst.done, 5*time.Second) {
			p.log.Error("haproxy ignored SIGTERM; killing its process group", "pid", inst.pid)
			syscall.Kill(-inst.pid, syscall.SIGKILL)
			<-inst.done
		}
	}
	p.killGroup(inst, syscall.SIGTERM, 2*time.Second)
	p.killGroup(inst, syscall.SIGKILL, 2*time.Second)
	p.waitOutput(inst)
	p.mu.Lock()
	p.status.Running = false
	p.status.PID = 0
	p.mu.Unlock()
	metricProcessUp.Set(0)
	p.log.Info("haproxy stopped", "pid", inst.pid, "status", exitText(inst.err))
}

// killGroup signals the processes left of inst (after its master exited) and waits up to wait
// for them to be gone: its process group, and any process carrying its tag that left the group.
// Zombies count as gone: their parent, not us, must reap them.
func (p *Process) killGroup(inst *instance, sig syscall.Signal, wait time.Duration) {
	pids := instanceMembers(inst.pid, inst.tag)
	if len(pids) == 0 {
		return
	}
	syscall.Kill(-inst.pid, sig)
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
	deadline := time.Now().Add(wait)
	for len(instanceMembers(inst.pid, inst.tag)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// waitOutput gives the output reader a moment to log HAProxy's last lines.
func (p *Process) waitOutput(inst *instance) {
	waitClosed(inst.outDone, 2*time.Second)
}

// instanceMembers lists the live (not zombie) processes of process group pgid, and those
// elsewhere whose environment holds tag (supervisorTagEnv): a daemonized HAProxy calls setsid
// and leaves the group, but keeps the environment it was started with. A process whose
// environment cannot be read (another user's) is not ours.
func instanceMembers(pgid int, tag string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		g, ok := liveProcessGroup(pid)
		if ok && (g == pgid || (tag != "" && environHasTag(pid, tag))) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// escapedMembers lists inst's live processes outside its process group.
func escapedMembers(inst *instance) []int {
	var out []int
	for _, pid := range instanceMembers(inst.pid, inst.tag) {
		if g, ok := liveProcessGroup(pid); ok && g != inst.pid {
			out = append(out, pid)
		}
	}
	return out
}

// liveProcessGroup returns pid's process group; ok is false for a zombie or a process gone.
func liveProcessGroup(pid int) (pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after "(comm)": state ppid pgrp ...; comm may contain spaces and parens.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	g, err := strconv.Atoi(f[2])
	return g, err == nil
}

func environHasTag(pid int, tag string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := supervisorTagEnv + "=" + tag
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if kv == want {
			return true
		}
	}
	return false
}

// daemonLine returns the number of the first line of config that is a `daemon` directive, 0
// when there is none.
func daemonLine(config []byte) int {
	for i, line := range strings.Split(string(config), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "daemon" {
			return i + 1
		}
	}
	return 0
}

// supervisorTagEnv names the variable that marks every process of one HAProxy start.
const supervisorTagEnv = "LB_SUPERVISOR_TAG"

// haproxyPATH is the PATH HAProxy runs with: the system directories, not lodestar's PATH.
const haproxyPATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// haproxyEnviron is the whole environment HAProxy runs with (the supervised master and
// workers, and `haproxy -c`): PATH and extra, nothing of lodestar's own. lodestar's flags (LODESTAR_*), its
// API credentials and whatever else its environment holds would otherwise be one
// `%[env(NAME)]` or "${NAME}" in a template away from any client. lodestar's templates read no
// variable; an operator's template that needs a value writes it into the template instead.
func haproxyEnviron(extra ...string) []string {
	return append([]string{haproxyPATH}, extra...)
}

// GroupPIDs returns the live processes of the current HAProxy (master and workers, old ones
// included), for tests and diagnostics; nil when no master runs.
func (p *Process) GroupPIDs() []int {
	p.mu.Lock()
	inst := p.inst
	p.mu.Unlock()
	if inst == nil {
		return nil
	}
	return instanceMembers(inst.pid, inst.tag)
}

func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Reload reloads HAProxy through the master CLI and confirms it (see MasterClient.Reload). When
// HAProxy refuses the new configuration, the returned *ReloadError carries the [ALERT] lines the
// master printed. It records no metrics: the caller reports with ObserveReload and its reason.
func (p *Process) Reload(ctx context.Context) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	p.mu.Lock()
	inst, running := p.inst, p.status.Running
	p.mu.Unlock()
	if inst == nil || !running {
		return &ReloadError{Message: "haproxy is not running"}
	}
	if err := p.refreshLive(inst); err != nil {
		return err
	}
	mark := p.out.mark()
	_, err := p.master.reload(ctx, inst.done)
	var rerr *ReloadError
	if errors.As(err, &rerr) {
		// The master prints its alerts before it answers again, but our reader may still be
		// catching up with the pipe: wait (briefly) for the line that closes a failed load.
		lines := p.out.waitFor(mark, "Loading failure", time.Second)
		rerr.Alerts = ParseAlerts(strings.Join(lines, "\n"))
		p.afterRefusedReload(inst)
	}
	if err == nil {
		// Every reload adds an old worker while connections are open: have it counted now,
		// by the watcher, so that the reload itself takes no longer.
		select {
		case p.reloaded <- struct{}{}:
		default:
		}
	}
	return err
}

// Output returns HAProxy's most recent output lines (at most the last 512), for diagnostics.
func (p *Process) Output() []string {
	return p.out.since(0)
}

var syslogPrefixRE = regexp.MustCompile(`^<(\d{1,3})>`)

// routineProxyEventRE matches the per-proxy lines every reload and stop prints, one per
// frontend and backend ("Proxy app_80 stopped (cumulated conns: …)", "Paused frontend x."):
// logged at debug, as with a few hundred apps they were most of lodestar's log.
var routineProxyEventRE = regexp.MustCompile(`^(?:Proxy \S+ (?:started|stopped|paused|resumed)\b|(?:Paused|Resumed|Stopping) (?:frontend|backend|proxy) )`)

// readOutput logs each line HAProxy writes. Its own messages carry their level
// ("[WARNING]  (123) : ..."); traffic logs with `log stdout format short` (or rfc3164/rfc5424)
// carry a syslog priority ("<134>..."); `format raw` lines have no level and are logged as info.
func (p *Process) readOutput(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	level := slog.LevelInfo
	// HAProxy prints its own warnings (server DOWN, proxy stopped, …) on stderr and sends the
	// same event to `log stdout` right after; recent messages are kept to log each event once.
	var recent [16]string
	next := 0
	for sc.Scan() {
		line := sc.Text()
		p.out.add(line)
		if strings.TrimSpace(line) == "" {
			continue
		}
		text := line
		switch m := logLineRE.FindStringSubmatch(line); {
		case m != nil:
			level = haproxyLevel(m[1])
			msg := strings.TrimSpace(m[3])
			if routineProxyEventRE.MatchString(msg) {
				level = slog.LevelDebug
			}
			recent[next] = eventKey(msg)
			next = (next + 1) % len(recent)
			p.log.Log(context.Background(), level, msg, "haproxy_pid", m[2])
			continue
		case strings.HasPrefix(strings.TrimLeft(line, " \t"), "| "):
			// Continuation of the previous message: keep its level.
		default:
			level = slog.LevelInfo
			if m := syslogPrefixRE.FindStringSubmatch(line); m != nil {
				pri, _ := strconv.Atoi(m[1])
				level = syslogLevel(pri & 7)
				text = line[len(m[0]):]
			}
		}
		text = strings.TrimSpace(text)
		if slices.Contains(recent[:], eventKey(text)) {
			continue
		}
		if routineProxyEventRE.MatchString(text) {
			level = slog.LevelDebug
		}
		p.log.Log(context.Background(), level, text)
	}
}

// eventKey compares an event as stderr and the log stream word it: the log leaves out the
// quotes around names.
func eventKey(msg string) string { return strings.ReplaceAll(msg, "'", "") }

func haproxyLevel(tag string) slog.Level {
	switch tag {
	case "ALERT":
		return slog.LevelError
	case "WARNING":
		return slog.LevelWarn
	case "DEBUG":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func syslogLevel(severity int) slog.Level {
	switch {
	case severity <= 3: // emerg, alert, crit, err
		return slog.LevelError
	case severity == 4:
		return slog.LevelWarn
	case severity == 7:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// outputRing keeps HAProxy's recent output lines with sequence numbers, so a reload can read
// what the master printed after it began.
type outputRing struct {
	mu      sync.Mutex
	lines   []string
	first   uint64 // sequence number of lines[0]
	max     int
	changed chan struct{}
}

func newOutputRing(n int) *outputRing {
	return &outputRing{max: n, changed: make(chan struct{})}
}

func (o *outputRing) add(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, line)
	if len(o.lines) > o.max {
		drop := len(o.lines) - o.max
		o.lines = append(o.lines[:0:0], o.lines[drop:]...)
		o.first += uint64(drop)
	}
	close(o.changed)
	o.changed = make(chan struct{})
}

// mark returns the sequence number the next line will get.
func (o *outputRing) mark() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.first + uint64(len(o.lines))
}

// since returns the kept lines numbered mark and later.
func (o *outputRing) since(mark uint64) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sinceLocked(mark)
}

func (o *outputRing) sinceLocked(mark uint64) []string {
	i := 0
	if mark > o.first {
		i = int(min(mark-o.first, uint64(len(o.lines))))
	}
	return append([]string(nil), o.lines[i:]...)
}

// waitFor returns the lines since mark once one of them contains substr, or whatever there is
// after d.
func (o *outputRing) waitFor(mark uint64, substr string, d time.Duration) []string {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		o.mu.Lock()
		lines := o.sinceLocked(mark)
		changed := o.changed
		o.mu.Unlock()
		for _, l := range lines {
			if strings.Contains(l, substr) {
				return lines
			}
		}
		select {
		case <-changed:
		case <-timer.C:
			return lines
		}
	}
}
