package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// traced is how a traced child ended.
type traced struct {
	Status syscall.WaitStatus
	Usage  syscall.Rusage
	// PeakKiB is VmHWM, the peak resident size of the child's own address space, read at its
	// exit. The rusage ru_maxrss is not that: a child that Go starts shares the parent's
	// address space until its exec (vfork), and Linux keeps that space's peak in the child's
	// ru_maxrss, so a small HAProxy run reported the benchmark's own ~57 MiB.
	PeakKiB int64
}

// runTraced runs cmd to its end under ptrace, stopping it once more at its exit to read
// VmHWM. cmd must not have been started, and its Stdout and Stderr must be files or nil (it
// is never Waited for, so no copying goroutine would be ended).
func runTraced(cmd *exec.Cmd) (traced, error) {
	// Every ptrace request must come from the thread that started the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); err != nil {
		return traced{}, err
	}
	defer func() { _ = cmd.Process.Release() }()
	pid := cmd.Process.Pid
	var t traced
	// The child stops with SIGTRAP right after its exec.
	if err := wait4(pid, &t); err != nil {
		return traced{}, err
	}
	if err := syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACEEXIT); err != nil {
		_ = cmd.Process.Kill()
		_ = wait4(pid, &t)
		return traced{}, fmt.Errorf("ptrace: %w", err)
	}
	sig := 0
	for {
		if err := syscall.PtraceCont(pid, sig); err != nil {
			return traced{}, fmt.Errorf("ptrace: %w", err)
		}
		if err := wait4(pid, &t); err != nil {
			return traced{}, err
		}
		if t.Status.Exited() || t.Status.Signaled() {
			return t, nil
		}
		sig = 0
		switch {
		case t.Status.TrapCause() == syscall.PTRACE_EVENT_EXIT:
			hwm, err := vmHWM(pid)
			if err != nil {
				return traced{}, err
			}
			t.PeakKiB = hwm
		case t.Status.StopSignal() != syscall.SIGTRAP:
			sig = int(t.Status.StopSignal()) // a signal meant for the child: pass it on
		}
	}
}

func wait4(pid int, t *traced) error {
	for {
		_, err := syscall.Wait4(pid, &t.Status, syscall.WALL, &t.Usage)
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				return fmt.Errorf("wait4: %w", err)
			}
			return nil
		}
	}
}

// vmHWM reads VmHWM (KiB) from /proc/<pid>/status.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmHWM(bufio.NewScanner(f))
}

func parseVmHWM(sc *bufio.Scanner) (int64, error) {
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM %q: %w", rest, err)
		}
		return kib, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in the process status")
}
