package zktest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
)

// process is one running ZooKeeper JVM.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startProcess starts ZooKeeper on the configuration zooCfg, appending its output to
// zookeeper.out in the configuration's directory (where its other logs go too). It does not
// wait for ZooKeeper to serve: see waitServing.
func startProcess(zooCfg string) (*process, error) {
	dir := filepath.Dir(zooCfg)
	out, err := os.OpenFile(filepath.Join(dir, "zookeeper.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// Serial GC and C1 only: a small test server starts faster and burns less CPU that way.
	cmd := exec.Command("java",
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xms16m", "-Xmx256m",
		"-Dzookeeper.log.dir="+dir, "-Dzookeeper.root.logger=INFO,CONSOLE",
		"-cp", classPath, mainClass, zooCfg)
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: if the test binary dies without cleaning up, the JVM goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting ZooKeeper: %w (%s)", err, install)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// kill kills the process, like a crash, and returns once it is gone.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitServing waits until ZooKeeper at addr answers ruok with imok and, with session, until
// it also gives a client a session: ZooKeeper answers ruok before it serves sessions (a
// second or so while it loads its data), and an ensemble member serves none before a quorum
// formed. It returns an error when the process exits or ctx ends first.
func (p *process) waitServing(ctx context.Context, addr string, session bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	imok := false
	var last error
	for {
		if !imok {
			answer, err := fourLetter(addr, "ruok")
			imok, last = answer == "imok", err
			if err == nil && !imok {
				last = fmt.Errorf("ruok answered %q", answer)
			}
		}
		if imok && !session {
			return nil
		}
		if imok {
			if last = trySession(ctx, addr); last == nil {
				return nil
			}
		}
		select {
		case <-p.done:
			return errors.New("the process exited")
		case <-ctx.Done():
			return fmt.Errorf("not serving (%v): %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}

// trySession connects once to addr and reports whether that connection got a session.
func trySession(ctx context.Context, addr string) error {
	conn, events, err := zk.Connect([]string{addr}, 4*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		return err
	}
	defer conn.Close()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev := <-events:
			switch ev.State {
			case zk.StateHasSession:
				return nil
			case zk.StateDisconnected, zk.StateExpired, zk.StateAuthFailed:
				return fmt.Errorf("no session: connection %s", ev.State)
			}
		case <-timeout.C:
			return errors.New("no session within 10s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// quietLogger drops go-zookeeper's log lines.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
