// Package lab makes "hosts" for multi-host tests out of Linux network namespaces: each host is
// a namespace with one interface (eth0) on a private subnet, 10.213.0.0/24, which exists only
// inside the namespaces the lab creates; the hosts are joined by a bridge that lives in a
// namespace of its own (the switch), so the machine's own namespace gets no new interface,
// address or route. Each host also gets a directory that stands in for its /etc, /run and /var
// (Host.Root), so that hosts never share or overwrite each other's files and nothing is written
// to the machine's /etc.
//
// Processes run inside a host through `ip netns exec` (Host.Command, Host.Start). In-process
// Go fakes (fakemesos, fakemarathon, a backend, a DNS upstream) run as child processes too: the
// test binary re-executed with LODESTAR_LAB_ROLE naming the role (see roles.go and RunRole),
// rather than a goroutine that enters the namespace with setns. A child cannot leak a thread
// into the wrong namespace, a fault (nft, ip link) affects it exactly as it affects a real
// daemon, and `ip netns pids` finds it at teardown. The test itself talks to the hosts through
// Host.Dial, which creates each socket on a locked OS thread that entered the namespace.
//
// Everything needs root and iproute2; Available says what is missing. A lab is torn down
// when its test ends, failed or not, and a lab left behind by a killed test run is removed
// when the next one starts (names carry the creating process's pid).
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Subnet is the lab's private network; host i (from 0) gets 10.213.0.(11+i).
const Subnet = "10.213.0.0/24"

// namePrefix starts every namespace a lab creates: "lodestar-lab-<pid>-<host>".
const namePrefix = "lodestar-lab-"

// commandTimeout bounds each ip or nft command the lab runs.
const commandTimeout = 30 * time.Second

// Available returns an error saying what is missing when labs cannot be made here: root, or
// iproute2's ip with network namespace support.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces, veth pairs and a bridge): run the tests as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the lab needs iproute2's ip (apt-get install iproute2)")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("the kernel has no network namespaces: %w", err)
	}
	return nil
}

// Lab is a set of hosts on one bridge.
type Lab struct {
	t        testing.TB
	id       string // "lodestar-lab-<pid>"
	switchNS string // the namespace holding the bridge
	Hosts    []*Host

	mu    sync.Mutex
	procs []*Proc
}

// Host is one network namespace of a lab.
type Host struct {
	Name string
	// IP is the host's address on eth0, in Subnet.
	IP string
	// NetNS is the namespace's name, for `ip netns exec`.
	NetNS string
	// Root is the host's own directory: its /etc, /run and /var are Root/etc, Root/run and
	// Root/var (see Reroot).
	Root string

	lab *Lab
}

// New makes a lab of hosts named names, each with its IP in Subnet, and tears it down when t
// ends. It first removes labs that earlier test processes, now dead, left behind.
func New(t testing.TB, names ...string) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	if len(names) == 0 || len(names) > 200 {
		t.Fatalf("lab: %d hosts: want 1 to 200", len(names))
	}
	removeStale()
	// The hosts' directories are made before the teardown is registered: cleanups run last
	// first, so the processes writing there are gone before the directories are removed.
	root := t.TempDir()
	l := &Lab{t: t, id: namePrefix + strconv.Itoa(os.Getpid())}
	// Cleanup is registered before anything is made, so a failure half-way still tears down.
	t.Cleanup(l.teardown)
	l.switchNS = l.id + "-switch"
	must := func(args ...string) {
		t.Helper()
		if out, err := run(args...); err != nil {
			t.Fatalf("lab: %v\n%s", err, out)
		}
	}
	must("ip", "netns", "add", l.switchNS)
	must("ip", "-n", l.switchNS, "link", "add", "br0", "type", "bridge")
	must("ip", "-n", l.switchNS, "link", "set", "br0", "up")
	for i, name := range names {
		if !hostNameOK(name) {
			t.Fatalf("lab: host name %q: want 1 to 20 lower-case letters, digits or -", name)
		}
		h := &Host{Name: name, IP: "10.213.0." + strconv.Itoa(11+i), NetNS: l.id + "-" + name, Root: filepath.Join(root, name), lab: l}
		port := "p" + strconv.Itoa(i) // the switch side of the host's cable
		must("ip", "netns", "add", h.NetNS)
		must("ip", "-n", l.switchNS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NetNS)
		must("ip", "-n", l.switchNS, "link", "set", port, "master", "br0", "up")
		must("ip", "-n", h.NetNS, "addr", "add", h.IP+"/24", "dev", "eth0")
		must("ip", "-n", h.NetNS, "link", "set", "eth0", "up")
		must("ip", "-n", h.NetNS, "link", "set", "lo", "up")
		for _, dir := range []string{"etc", "run", "var/lib", "var/log", "tmp"} {
			if err := os.MkdirAll(filepath.Join(h.Root, dir), 0o755); err != nil {
				t.Fatalf("lab: %v", err)
			}
		}
		l.Hosts = append(l.Hosts, h)
	}
	return l
}

func hostNameOK(name string) bool {
	if name == "" || len(name) > 20 {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// Host returns the host called name, failing the test when there is none.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	l.t.Fatalf("lab: no host %q", name)
	return nil
}

// teardown stops the processes the lab started, kills whatever else still runs in its
// namespaces (HAProxy workers, say) and deletes the namespaces, which deletes their veths.
func (l *Lab) teardown() {
	l.mu.Lock()
	procs := l.procs
	l.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
	for _, h := range l.Hosts {
		deleteNetNS(h.NetNS)
	}
	deleteNetNS(l.switchNS)
}

// deleteNetNS kills every process in namespace ns and deletes it; a missing one is fine.
func deleteNetNS(ns string) {
	out, _ := run("ip", "netns", "pids", ns)
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_, _ = run("ip", "netns", "delete", ns)
}

// removeStale deletes the namespaces of labs whose process is gone (a test run that was
// killed before its cleanup ran).
func removeStale() {
	out, err := run("ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, namePrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		deleteNetNS(name)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// run runs a command with commandTimeout and returns its combined output.
func run(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return out.Bytes(), nil
}

// Run runs a command inside the host and returns its combined output; the error names the
// command and the host.
func (h *Host) Run(args ...string) ([]byte, error) {
	out, err := run(append([]string{"ip", "netns", "exec", h.NetNS}, args...)...)
	if err != nil {
		return out, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return out, nil
}

// MustRun is Run that fails the test on an error.
func (h *Host) MustRun(args ...string) []byte {
	h.lab.t.Helper()
	out, err := h.Run(args...)
	if err != nil {
		h.lab.t.Fatalf("lab: %v\n%s", err, out)
	}
	return out
}

// Command is a command that runs inside the host (through ip netns exec).
func (h *Host) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NetNS}, args...)...)
}

// Dial connects to addr from inside the host: the socket is created on an OS thread that
// entered the host's namespace, which then returns to the test's namespace. Should that
// return fail, the goroutine exits still locked and Go ends the thread rather than reuse it
// in the wrong namespace.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer home.Close()
		ns, err := os.Open(filepath.Join("/run/netns", h.NetNS))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("host %s: %w", h.Name, err)}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("host %s: setns: %w", h.Name, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.conn, r.err
}

// Addr is "IP:port" on the host.
func (h *Host) Addr(port int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(h.IP), uint16(port)).String()
}

// HTTPClient is an HTTP client whose connections start inside the host, each request
// bounded by timeout.
func (h *Host) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: h.Dial, DisableKeepAlives: true},
	}
}
