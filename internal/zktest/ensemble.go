package zktest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Member is one ZooKeeper ensemble member started from a zoo.cfg the test wrote or rendered.
// Its methods are safe for concurrent use.
type Member struct {
	cfg  string // the zoo.cfg path
	log  string // zookeeper.out, next to the configuration
	addr string // client address, from clientPortAddress and clientPort

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartMember starts ZooKeeper with the configuration at zooCfg, whose dataDir must already hold
// the member's myid, and stops it when t ends. It returns once the process answers ruok; an
// ensemble member serves requests only after a quorum formed (see WaitQuorum).
func StartMember(t testing.TB, zooCfg string) *Member {
	t.Helper()
	if err := Installed(); err != nil {
		t.Fatalf("zktest: %v", err)
	}
	m, err := newMember(zooCfg)
	if err != nil {
		t.Fatalf("zktest: %v", err)
	}
	if err := m.Start(); err != nil {
		t.Fatalf("zktest: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

func newMember(zooCfg string) (*Member, error) {
	props, err := readProperties(zooCfg)
	if err != nil {
		return nil, err
	}
	host := props["clientPortAddress"]
	if host == "" {
		host = "127.0.0.1"
	}
	if props["clientPort"] == "" {
		return nil, fmt.Errorf("%s: no clientPort", zooCfg)
	}
	return &Member{
		cfg:  zooCfg,
		log:  filepath.Join(filepath.Dir(zooCfg), "zookeeper.out"),
		addr: net.JoinHostPort(host, props["clientPort"]),
	}, nil
}

// readProperties reads a zoo.cfg (key=value lines, # comments).
func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			props[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return props, sc.Err()
}

// Addr is the member's client address, "ip:port".
func (m *Member) Addr() string { return m.addr }

// Start starts the member (again, after Stop) and returns once it answers ruok. It serves
// sessions only once it is part of a quorum: WaitQuorum waits for that.
func (m *Member) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		return fmt.Errorf("ZooKeeper member %s already running", m.addr)
	}
	p, err := startProcess(m.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := p.waitServing(ctx, m.addr, false); err != nil {
		p.kill()
		return fmt.Errorf("ZooKeeper member %s did not start: %w\n%s", m.addr, err, m.LogTail(3000))
	}
	m.proc = p
	return nil
}

// Stop kills the member, like a crash, and returns once the process is gone. It keeps the
// data directory, so Start rejoins the ensemble. Stop is idempotent.
func (m *Member) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return
	}
	m.proc.kill()
	m.proc = nil
}

// Mode is the member's role from the srvr four-letter word: "leader", "follower",
// "observer", "standalone", or "" while it serves no requests (no quorum).
func (m *Member) Mode() (string, error) {
	out, err := fourLetter(m.addr, "srvr")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", nil
}

// LogTail returns the last n bytes of the member's log, for failure messages.
func (m *Member) LogTail(n int) string {
	b, _ := os.ReadFile(m.log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// WaitQuorum polls srvr on every member until exactly one is the leader and the others are
// followers, and each member gives a client a session; it returns the modes by member index.
// It fails t with each member's last answer and log when that does not happen within timeout.
func WaitQuorum(t testing.TB, members []*Member, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		modes := make([]string, len(members))
		var errs []error
		leaders, followers := 0, 0
		for i, m := range members {
			mode, err := m.Mode()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m.addr, err))
			}
			modes[i] = mode
			switch mode {
			case "leader":
				leaders++
			case "follower":
				followers++
			}
		}
		if leaders == 1 && followers == len(members)-1 {
			// A quorum: each member should now give a client a session.
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			for _, m := range members {
				if err := trySession(ctx, m.addr); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", m.addr, err))
				}
			}
			cancel()
			if len(errs) == 0 {
				return modes
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, m := range members {
				fmt.Fprintf(&b, "\n--- member %s mode %q, log tail:\n%s", m.addr, modes[i], m.LogTail(1500))
			}
			t.Fatalf("zktest: no quorum within %s (modes %q, errors %v):%s", timeout, modes, errors.Join(errs...), b.String())
		}
		<-tick.C
	}
}

// fourLetter sends a ZooKeeper four-letter word to addr and returns the answer.
func fourLetter(addr, word string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(word)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// FreePort returns a TCP port that was free on ip a moment ago (ip may be any 127.0.0.x).
func FreePort(ip string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Ensemble is n ZooKeeper members on 127.0.0.2, 127.0.0.3, … with free ports, each with its
// own zoo.cfg and data directory.
type Ensemble struct {
	Members []*Member
}

// StartEnsemble starts an n-member ensemble for t, waits until it has a quorum and stops it
// when t ends.
func StartEnsemble(t testing.TB, n int) *Ensemble {
	t.Helper()
	type peer struct {
		ip                     string
		client, peer, election int
	}
	peers := make([]peer, n)
	for i := range peers {
		p := peer{ip: "127.0.0." + strconv.Itoa(i+2)}
		for _, port := range []*int{&p.client, &p.peer, &p.election} {
			v, err := FreePort(p.ip)
			if err != nil {
				t.Fatalf("zktest: %v", err)
			}
			*port = v
		}
		peers[i] = p
	}
	var servers strings.Builder
	for i, p := range peers {
		fmt.Fprintf(&servers, "server.%d=%s:%d:%d\n", i+1, p.ip, p.peer, p.election)
	}
	e := &Ensemble{}
	for i, p := range peers {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatalf("zktest: %v", err)
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(i+1)+"\n"), 0o644); err != nil {
			t.Fatalf("zktest: %v", err)
		}
		cfg := fmt.Sprintf("tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir=%s\nclientPort=%d\nclientPortAddress=%s\n"+
			"maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=*\nforceSync=no\npreAllocSize=1024\n%s",
			data, p.client, p.ip, servers.String())
		path := filepath.Join(dir, "zoo.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatalf("zktest: %v", err)
		}
		e.Members = append(e.Members, StartMember(t, path))
	}
	WaitQuorum(t, e.Members, startTimeout)
	return e
}

// Servers returns the members' client addresses, "ip:port".
func (e *Ensemble) Servers() []string {
	out := make([]string, len(e.Members))
	for i, m := range e.Members {
		out[i] = m.Addr()
	}
	return out
}
