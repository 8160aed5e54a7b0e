package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long a process gets after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// Proc is a process running inside a lab host, its output in a log file under the host's
// Root/var/log.
type Proc struct {
	Name string // what it is, for messages: "zookeeper.service on zk1"
	Log  string // the log file

	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, valid once done is closed
}

// Start starts args inside the host with env (added to a minimal PATH and HOME), its
// stdout and stderr appended to Root/var/log/<logName>.log, and stops it when the lab ends.
func (h *Host) Start(logName string, env []string, args ...string) (*Proc, error) {
	p, _, err := h.start(logName, env, false, args...)
	return p, err
}

// start is Start; with pipeStdout, the caller reads stdout (a role's ready line) from the
// returned reader instead of the log.
func (h *Host) start(logName string, env []string, pipeStdout bool, args ...string) (*Proc, io.Reader, error) {
	logPath := filepath.Join(h.Root, "var", "log", logName+".log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := h.Command(args...)
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + h.Root}, env...)
	cmd.Dir = h.Root
	cmd.Stderr = out
	var stdout io.Reader
	if pipeStdout {
		r, err := cmd.StdoutPipe()
		if err != nil {
			out.Close()
			return nil, nil, err
		}
		stdout = r
	} else {
		cmd.Stdout = out
	}
	// ip netns exec execs the command (no fork), so the signal reaches the program itself;
	// Pdeathsig takes it down with the test binary should that die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := startFromSpawner(cmd); err != nil {
		out.Close()
		return nil, nil, fmt.Errorf("host %s: starting %s: %w", h.Name, strings.Join(args, " "), err)
	}
	p := &Proc{Name: logName + " on " + h.Name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	return p, stdout, nil
}

// spawnRequests go to the spawner: one goroutine locked to its OS thread for the life of the
// process, which forks every child. Pdeathsig fires when the *thread* that forked a child
// ends, and Go ends threads (a goroutine that exits locked, as Dial's may): children forked
// from an arbitrary thread could be killed at any moment.
var (
	spawnRequests = make(chan func())
	spawnerOnce   sync.Once
)

func startFromSpawner(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for f := range spawnRequests {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnRequests <- func() { errc <- cmd.Start() }
	return <-errc
}

// Stop sends SIGTERM, then SIGKILL after stopTimeout, and waits for the exit. It is
// idempotent.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Wait waits up to timeout for the process to end and returns its exit error.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still runs after %s", p.Name, timeout)
	}
}

// LogTail is the last n bytes of the process's log, for failure messages.
func (p *Proc) LogTail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitLine reads r until a line equal to want, the process exits or timeout passes; the
// rest of r is then copied to the process's log.
func (p *Proc) waitLine(r io.Reader, want string, timeout time.Duration) error {
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if sc.Text() == want {
				found <- nil
				if f, err := os.OpenFile(p.Log, os.O_WRONLY|os.O_APPEND, 0); err == nil {
					_, _ = io.Copy(f, r)
					f.Close()
				}
				return
			}
		}
		found <- errors.New("its output ended")
	}()
	select {
	case err := <-found:
		if err != nil {
			return fmt.Errorf("%s did not print %q: %w\n%s", p.Name, want, err, p.LogTail(3000))
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s did not print %q within %s\n%s", p.Name, want, timeout, p.LogTail(3000))
	}
}
