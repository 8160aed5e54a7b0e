package haproxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A HAProxy kept for the next lodestar.
//
// With ProcessConfig.KeepOnExit, Run leaves the master (and its current worker) running when
// its context ends and writes keptFile; the next Process on the same run dir adopts it instead
// of starting a second one, if it finds it within AdoptWithin and it is its own: the pid file's
// process is a live HAProxy master of the same binary, started with this run dir's master
// socket, pid file and configuration, in its own process group, carrying lodestar's
// supervisor tag in its environment, and answering on the master socket. A master that is
// lodestar's but was not kept, or not adopted in time, is stopped; one that is not lodestar's
// (another run dir, started by hand) is never touched.

// DefaultAdoptWithin is how long after it was kept a HAProxy may be adopted.
const DefaultAdoptWithin = 10 * time.Minute

// keptFile (in the run dir) says which master was kept, and when: "<pid> <unix seconds>".
const keptFile = "haproxy.kept"

// adoptPollInterval is how often an adopted master (not lodestar's child: it cannot be waited
// for) is checked for having exited.
const adoptPollInterval = 100 * time.Millisecond

// keep leaves inst running for the next lodestar and records it in keptFile.
func (p *Process) keep(inst *instance) {
	line := fmt.Sprintf("%d %d\n", inst.pid, time.Now().Unix())
	if err := WriteFileAtomic(filepath.Join(p.cfg.RunDir, keptFile), []byte(line), 0o600); err != nil {
		p.log.Error("recording the kept HAProxy failed; stopping it instead", "err", err)
		p.stop(inst)
		return
	}
	p.log.Info("leaving HAProxy running for the next lodestar to adopt", "pid", inst.pid, "adopt_within", p.cfg.AdoptWithin)
}

// previous looks for a HAProxy a previous lodestar left on this run dir. It returns the
// instance to adopt, or nil: none, not lodestar's (left alone), or lodestar's but not to be
// adopted (then it is stopped first).
func (p *Process) previous() *instance {
	keptPath := filepath.Join(p.cfg.RunDir, keptFile)
	keptPID, keptAt := readKept(keptPath)
	os.Remove(keptPath)
	b, err := os.ReadFile(p.PIDFile())
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return nil
	}
	tag, why := p.ownMaster(pid)
	if tag == "" {
		if why != "" {
			p.log.Warn("a HAProxy named in the run dir's pid file is not lodestar's; leaving it alone", "pid", pid, "why", why)
		}
		return nil
	}
	inst := adoptedInstance(pid, tag)
	reason := p.adoptable(inst, keptPID, keptAt)
	if reason != "" {
		p.log.Warn("stopping the HAProxy a previous lodestar left running", "pid", pid, "why", reason)
		p.stop(inst)
		return nil
	}
	p.takeListeners(inst)
	p.log.Info("adopted the HAProxy a previous lodestar kept running", "pid", pid, "kept_for", time.Since(keptAt).Round(time.Millisecond))
	return inst
}

// adoptable returns why inst is not to be adopted, "" when it is.
func (p *Process) adoptable(inst *instance, keptPID int, keptAt time.Time) string {
	switch {
	case keptPID != inst.pid:
		return "it was not kept on purpose (no record of it in " + keptFile + ")"
	case time.Since(keptAt) > p.cfg.AdoptWithin:
		return fmt.Sprintf("kept %v ago, longer than the %v a kept HAProxy waits for adoption", time.Since(keptAt).Round(time.Second), p.cfg.AdoptWithin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	procs, err := p.master.ShowProc(ctx)
	if err != nil || masterProc(procs).PID != inst.pid || len(CurrentWorkers(procs)) == 0 {
		return fmt.Sprintf("its master socket does not answer for it with a worker running (%v)", err)
	}
	if p.listeners != nil {
		// The file the master loaded says fd@N; which address N stands for is noted beside it
		// (the configuration on disk may already be this lodestar's, with other lines).
		b, err := os.ReadFile(p.liveFDsPath())
		if err != nil {
			return "the listening sockets it holds are not on record: " + err.Error()
		}
		inst.fds = parseFDs(b)
		for addr := range inst.fds {
			if !p.listeners.addrs[addr] {
				return "it holds a listening socket for " + addr + ", which is not to be held any more"
			}
		}
	}
	return ""
}

// ownMaster returns the supervisor tag of pid when it is a HAProxy master this Process would
// have started; otherwise "" and why not ("" when there is no such process).
func (p *Process) ownMaster(pid int) (tag, why string) {
	proc := "/proc/" + strconv.Itoa(pid)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return "", ""
	}
	exe, err := os.Readlink(proc + "/exe")
	if err != nil {
		return "", "its executable cannot be read: " + err.Error()
	}
	if bin, _ := filepath.EvalSymlinks(p.cfg.Bin); exe != bin && exe != p.cfg.Bin {
		if !strings.Contains(filepath.Base(exe), "haproxy") {
			return "", "" // the pid was reused by an unrelated process
		}
		return "", fmt.Sprintf("it runs %s, not %s", exe, p.cfg.Bin)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	loads := p.cfg.ConfigPath
	if p.listeners != nil {
		loads = p.livePath()
	}
	for flag, want := range map[string]string{"-S": p.master.Socket() + ",mode,600", "-f": loads, "-p": p.PIDFile()} {
		if i := slices.Index(args, flag); i < 0 || i+1 >= len(args) || args[i+1] != want {
			return "", fmt.Sprintf("its command line %q does not have %s %s", args, flag, want)
		}
	}
	if g, ok := liveProcessGroup(pid); !ok || g != pid {
		return "", "it does not lead its own process group"
	}
	env, err := os.ReadFile(proc + "/environ")
	if err != nil {
		return "", "its environment cannot be read: " + err.Error()
	}
	for kv := range strings.SplitSeq(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, supervisorTagEnv+"="); ok && strings.HasPrefix(v, "lodestar-") {
			return v, ""
		}
	}
	return "", "it was not started by lodestar (no supervisor tag in its environment)"
}

// readKept parses keptFile; a zero pid when it is missing or malformed.
func readKept(path string) (int, time.Time) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, time.Time{}
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, time.Time{}
	}
	pid, err1 := strconv.Atoi(f[0])
	sec, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 1 {
		return 0, time.Time{}
	}
	return pid, time.Unix(sec, 0)
}

// adoptedInstance is an instance for a master lodestar did not start in this process: it is
// not a child, so its exit is noticed by polling.
func adoptedInstance(pid int, tag string) *instance {
	inst := &instance{pid: pid, tag: tag, done: make(chan struct{}), outDone: make(chan struct{})}
	close(inst.outDone) // its output went to the previous lodestar
	inst.answered = true
	go func() {
		for {
			if _, ok := liveProcessGroup(pid); !ok {
				inst.err = errors.New("exited (adopted: its status is its parent's)")
				close(inst.done)
				return
			}
			time.Sleep(adoptPollInterval)
		}
	}()
	return inst
}

// takeListeners duplicates the adopted master's inherited listening sockets into the
// Process's ListenerSet, so that they survive that master too. It needs ptrace access to the
// master (same user, or CAP_SYS_PTRACE); without it the next start opens them anew.
func (p *Process) takeListeners(inst *instance) {
	if p.listeners == nil || len(inst.fds) == 0 {
		return
	}
	pidfd, err := unix.PidfdOpen(inst.pid, 0)
	if err != nil {
		p.log.Warn("cannot take the adopted HAProxy's listening sockets", "pid", inst.pid, "err", err)
		return
	}
	defer unix.Close(pidfd)
	for _, addr := range slices.Sorted(maps.Keys(inst.fds)) {
		fd, err := unix.PidfdGetfd(pidfd, inst.fds[addr], 0)
		if err != nil {
			p.log.Warn("cannot take the adopted HAProxy's listening socket", "pid", inst.pid, "bind", addr, "err", err)
			continue
		}
		syscall.CloseOnExec(fd)
		p.listeners.hold(addr, os.NewFile(uintptr(fd), "listener "+addr))
	}
}

// Adopted reports whether the Process's first HAProxy was one a previous lodestar kept: it
// loaded that lodestar's last configuration, not necessarily the one on disk now.
func (p *Process) Adopted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.adopted
}

// useAdopted makes inst, found by previous, the Process's current master.
func (p *Process) useAdopted(inst *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.adopted = true
	p.inst = inst
	p.status.PID = inst.pid
	p.status.StartedAt = time.Now()
	p.status.Running = false
}
