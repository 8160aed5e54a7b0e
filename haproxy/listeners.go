package haproxy

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listening sockets that outlive HAProxy.
//
// HAProxy binds its ports itself, so when its master dies (SIGKILL, OOM) the sockets die with
// it and every SYN until the restarted master binds again is refused. A ListenerSet makes
// lodestar the owner of the listening sockets of chosen bind addresses (the shared frontends):
// it opens them, passes them to each master it starts as inherited descriptors (Cmd.ExtraFiles:
// fd 3, 4, …), and the configuration HAProxy loads says `bind fd@N` instead of the address.
// While HAProxy is down the kernel keeps completing handshakes into the socket's backlog, and
// the next master serves them. HAProxy 2.6's master keeps inherited listener descriptors open
// across its re-executions (reloads), so one start's mapping holds for every reload of it.
//
// The alternative, `-x <socket>` (fetch the listeners from a running process), needs a live
// process to hand them over, which is exactly what a SIGKILLed master is not.

// listenBacklog is the backlog the sockets are opened with (the kernel caps it at somaxconn);
// HAProxy sets its own `backlog` when it starts listening on them again.
const listenBacklog = 10000

// firstInheritedFD is the descriptor number of Cmd.ExtraFiles[0] in the child.
const firstInheritedFD = 3

// ListenerSet owns listening sockets by bind address (as written on a bind line: "*:80",
// "127.0.0.1:8080", "[::]:443").
type ListenerSet struct {
	mu    sync.Mutex
	addrs map[string]bool     // the addresses to hold
	socks map[string]*os.File // the sockets held, by address
	order []string            // addresses in the order they were opened
}

// NewListenerSet returns a set that holds the sockets of addrs once a configuration binds them.
func NewListenerSet(addrs []string) *ListenerSet {
	s := &ListenerSet{addrs: map[string]bool{}, socks: map[string]*os.File{}}
	for _, a := range addrs {
		if a != "" {
			s.addrs[a] = true
		}
	}
	return s
}

// bindLineRE matches a bind line: indentation, "bind", the address, the rest (options).
var bindLineRE = regexp.MustCompile(`^(\s*bind\s+)(\S+)(.*)$`)

// boundAddrs returns the first-word addresses of config's bind lines, in order, once each.
func boundAddrs(config []byte) []string {
	var out []string
	seen := map[string]bool{}
	for line := range strings.SplitSeq(string(config), "\n") {
		if m := bindLineRE.FindStringSubmatch(line); m != nil && !seen[m[2]] {
			seen[m[2]] = true
			out = append(out, m[2])
		}
	}
	return out
}

// forStart opens the sockets of the set's addresses that config binds and are not held yet,
// and returns the held sockets config binds (for Cmd.ExtraFiles, in that order) with the
// descriptor number each address has in the child. An address that cannot be opened (held by
// another process) is left to HAProxy, which reports the clash itself; warn is told.
func (s *ListenerSet) forStart(config []byte, warn func(addr string, err error)) ([]*os.File, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wanted := map[string]bool{}
	for _, a := range boundAddrs(config) {
		if !s.addrs[a] {
			continue
		}
		wanted[a] = true
		if s.socks[a] != nil {
			continue
		}
		f, err := openListener(a)
		if err != nil {
			warn(a, err)
			continue
		}
		s.socks[a] = f
		s.order = append(s.order, a)
	}
	var files []*os.File
	fds := map[string]int{}
	for _, a := range s.order {
		if wanted[a] {
			fds[a] = firstInheritedFD + len(files)
			files = append(files, s.socks[a])
		}
	}
	return files, fds
}

// Held returns the addresses whose sockets the set holds.
func (s *ListenerSet) Held() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// Close closes every socket held; the ports close once HAProxy's copies are closed too.
func (s *ListenerSet) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.socks {
		f.Close()
	}
	s.socks = map[string]*os.File{}
	s.order = nil
}

// hold records f as the socket of addr (taken over from a running HAProxy).
func (s *ListenerSet) hold(addr string, f *os.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.socks[addr]; old != nil {
		old.Close()
	} else {
		s.order = append(s.order, addr)
	}
	s.socks[addr] = f
}

// rewriteBinds replaces the address of each bind line that fds maps with `fd@N`, keeping the
// line's options and the file's line numbers (HAProxy's alerts name lines).
func rewriteBinds(config []byte, fds map[string]int) []byte {
	if len(fds) == 0 {
		return config
	}
	lines := strings.Split(string(config), "\n")
	for i, line := range lines {
		m := bindLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if fd, ok := fds[m[2]]; ok {
			lines[i] = m[1] + "fd@" + strconv.Itoa(fd) + m[3]
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// formatFDs writes fds as lines "N ADDRESS", sorted by descriptor, for the file next to the
// live configuration that tells the next lodestar which descriptor a master it adopts holds
// for which address (the configuration it loaded says only fd@N).
func formatFDs(fds map[string]int) []byte {
	lines := make([]string, 0, len(fds))
	for addr, fd := range fds {
		lines = append(lines, fmt.Sprintf("%d %s\n", fd, addr))
	}
	slices.SortFunc(lines, func(a, b string) int { return cmpFD(a) - cmpFD(b) })
	return []byte(strings.Join(lines, ""))
}

func cmpFD(line string) int {
	n, _ := strconv.Atoi(strings.Fields(line)[0])
	return n
}

// parseFDs reads formatFDs's lines back; a line that is not "N ADDRESS" with N a descriptor
// an inherited socket can have is skipped.
func parseFDs(b []byte) map[string]int {
	fds := map[string]int{}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		fd, err := strconv.Atoi(f[0])
		if err != nil || fd < firstInheritedFD || fd > 1<<20 {
			continue
		}
		if _, err := listenerAddr(f[1]); err != nil {
			continue
		}
		fds[f[1]] = fd
	}
	return fds
}

// listenerAddr parses a bind address lodestar can open itself: "host:port" with an IP
// address, "*" or nothing as host and one port. Prefixed ("ipv4@", "unix@", "fd@"), ranged
// or listed addresses are left to HAProxy.
func listenerAddr(addr string) (*net.TCPAddr, error) {
	if strings.ContainsAny(addr, "@,") {
		return nil, fmt.Errorf("bind address %q: only host:port addresses can be held", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("bind address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("bind address %q: port %q is not a number from 1 to 65535", addr, port)
	}
	ip := net.IPv4zero // "*" and "" are every IPv4 address, as HAProxy reads them
	if host != "" && host != "*" {
		if ip = net.ParseIP(host); ip == nil {
			return nil, fmt.Errorf("bind address %q: %q is not an IP address", addr, host)
		}
	}
	return &net.TCPAddr{IP: ip, Port: p}, nil
}

// openListener opens a listening TCP socket on addr, as HAProxy would (SO_REUSEADDR), and
// returns it without accepting on it: accepting is HAProxy's job.
func openListener(addr string) (*os.File, error) {
	fd, err := boundSocket(addr, false)
	if err != nil {
		return nil, err
	}
	if err := syscall.Listen(fd, listenBacklog); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return os.NewFile(uintptr(fd), "listener "+addr), nil
}

// boundSocket returns a TCP socket bound to addr with SO_REUSEADDR, and SO_REUSEPORT when
// reusePort is set; the error wraps the system's.
func boundSocket(addr string, reusePort bool) (int, error) {
	ta, err := listenerAddr(addr)
	if err != nil {
		return -1, err
	}
	family := syscall.AF_INET
	var sa syscall.Sockaddr
	if ip4 := ta.IP.To4(); ip4 != nil {
		s4 := &syscall.SockaddrInet4{Port: ta.Port}
		copy(s4.Addr[:], ip4)
		sa = s4
	} else {
		family = syscall.AF_INET6
		s6 := &syscall.SockaddrInet6{Port: ta.Port}
		copy(s6.Addr[:], ta.IP.To16())
		sa = s6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return -1, fmt.Errorf("socket for %s: %w", addr, err)
	}
	opts := []int{syscall.SO_REUSEADDR}
	if reusePort {
		opts = append(opts, unix.SO_REUSEPORT)
	}
	for _, opt := range opts {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, opt, 1); err != nil {
			syscall.Close(fd)
			return -1, fmt.Errorf("socket option %d for %s: %w", opt, addr, err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", addr, err)
	}
	return fd, nil
}
