// Package zktest runs a real ZooKeeper (Debian's zookeeper package, standalone) for tests, on
// a free 127.0.0.1 port with its own data directory.
//
// A JVM and ZooKeeper take a few seconds to start, so a test package shares one instance where
// it can: Shared starts it on first use and Main stops it when the package's tests end. A test
// that stops ZooKeeper (to show what happens during an outage) starts its own with Start.
package zktest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ZooKeeper's installation, as Debian's zookeeper package lays it out.
const (
	zkJar     = "/usr/share/java/zookeeper.jar"
	classPath = "/etc/zookeeper/conf:/usr/share/java/*"
	mainClass = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
	install   = "apt-get install zookeeper default-jre-headless, or run make test"
)

// startTimeout bounds one start, JVM included. A start takes 2–4 s on a loaded 2-core VM.
const startTimeout = 60 * time.Second

// Server is one standalone ZooKeeper process. Its methods are safe for concurrent use.
type Server struct {
	dir  string // zoo.cfg, data/ and zookeeper.out live here
	port int

	mu   sync.Mutex
	proc *process // nil while stopped
}

// Start starts a ZooKeeper for t and stops it when t ends; it returns once ZooKeeper gives a
// client a session. It fails t, saying how to install what is missing, when java or
// ZooKeeper is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	if err := Installed(); err != nil {
		t.Fatalf("zktest: %v", err)
	}
	s, err := newServer(t.TempDir())
	if err != nil {
		t.Fatalf("zktest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Installed returns an error saying how to install java and ZooKeeper when either is missing.
func Installed() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("java not found on PATH: %s", install)
	}
	if _, err := os.Stat(zkJar); err != nil {
		return fmt.Errorf("%s missing: %s", zkJar, install)
	}
	return nil
}

// newServer writes a configuration under dir and starts ZooKeeper on a free port, trying
// another port if the chosen one was taken in between.
func newServer(dir string) (*Server, error) {
	var errs []error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{dir: dir, port: port}
		if err := s.writeConfig(); err != nil {
			return nil, err
		}
		if err := s.start(); err != nil {
			errs = append(errs, err)
			continue
		}
		return s, nil
	}
	return nil, errors.Join(errs...)
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) writeConfig() error {
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	// tickTime 500 ms bounds negotiated session timeouts to 1–10 s, so expiry is quick in
	// tests. forceSync=no and a small preAllocSize keep writes and startup fast; the data
	// survives a kill anyway (the OS keeps the page cache). snapshot.trust.empty lets a server
	// killed before its first snapshot start again on its transaction log.
	cfg := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
forceSync=no
preAllocSize=1024
snapshot.trust.empty=true
`, data, s.port)
	return os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(cfg), 0o644)
}

// start launches the process and waits until it gives a client a session.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("ZooKeeper on %s already running", s.Addr())
	}
	p, err := startProcess(filepath.Join(s.dir, "zoo.cfg"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := p.waitServing(ctx, s.Addr(), true); err != nil {
		p.kill()
		return fmt.Errorf("ZooKeeper on %s did not start: %w\n%s", s.Addr(), err, s.logTail(2000))
	}
	s.proc = p
	return nil
}

// ruok sends the ruok four-letter word and reports whether the answer was imok.
func (s *Server) ruok() (bool, error) {
	answer, err := fourLetter(s.Addr(), "ruok")
	return answer == "imok", err
}

// Ready reports whether ZooKeeper answers ruok with imok now.
func (s *Server) Ready() bool {
	ok, _ := s.ruok()
	return ok
}

func (s *Server) logTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "zookeeper.out"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Addr is ZooKeeper's client address, "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Servers is the server list go-zookeeper's zk.Connect takes.
func (s *Server) Servers() []string { return []string{s.Addr()} }

// URL returns a Mesos-style ZooKeeper URL for path, e.g. "zk://127.0.0.1:41234/mesos".
func (s *Server) URL(path string) string { return "zk://" + s.Addr() + path }

// Stop kills ZooKeeper, like a crash, and returns once the process is gone and its port is
// closed. The data directory is kept, so Start brings back every persistent node (and every
// session that has not expired since). Stop is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.kill()
	s.proc = nil
}

// Start starts ZooKeeper again after Stop, on the same port and with the same data, and
// returns once it gives a client a session.
func (s *Server) Start() error {
	var err error
	// The port was ours a moment ago; retry briefly in case the kernel has not released it.
	for range 3 {
		if err = s.start(); err == nil {
			return nil
		}
	}
	return err
}

var shared struct {
	sync.Mutex
	srv *Server
	dir string
	err error
}

// Shared returns the test binary's shared ZooKeeper, starting it on first use. Tests that
// share it must not stop it and should keep to their own paths (for example one per test
// name). The package's TestMain calls Main so that it is stopped at the end.
func Shared(t testing.TB) *Server {
	t.Helper()
	if err := Installed(); err != nil {
		t.Fatalf("zktest: %v", err)
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.srv == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "zktest-")
		if err != nil {
			t.Fatalf("zktest: %v", err)
		}
		shared.dir = dir
		shared.srv, shared.err = newServer(dir)
	}
	if shared.err != nil {
		t.Fatalf("zktest: shared ZooKeeper: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests and then stops the shared ZooKeeper, if one was started. Use it as
// TestMain: func TestMain(m *testing.M) { zktest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	shared.Unlock()
	os.Exit(code)
}
