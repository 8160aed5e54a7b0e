package fakemarathon

import (
	"hash/fnv"
	"net"
	"strconv"
	"strings"
	"sync"
)

// loopbackTable remembers LoopbackFor's answers so that the mapping is
// injective: an address hashes to a preferred 127.0.0.x and, if another
// address already holds that x, takes the next free one.
var loopbackTable = struct {
	sync.Mutex
	byAddr map[string]string
	used   map[int]bool
}{byAddr: map[string]string{}, used: map[int]bool{}}

const (
	loopbackMin = 2
	loopbackMax = 250
)

// LoopbackFor maps an address (IP or host name) to a loopback address
// 127.0.0.x with x in 2..250. The same input always yields the same output
// within a process and distinct inputs yield distinct outputs (for up to
// 249 distinct inputs; beyond that outputs are reused). The preferred x is
// a hash of addr, so outputs rarely depend on call order.
func LoopbackFor(addr string) string {
	t := &loopbackTable
	t.Lock()
	defer t.Unlock()
	if out, ok := t.byAddr[addr]; ok {
		return out
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(addr))
	n := loopbackMax - loopbackMin + 1
	first := int(h.Sum32() % uint32(n))
	x := loopbackMin + first
	for i := 0; i < n; i++ {
		cand := loopbackMin + (first+i)%n
		if !t.used[cand] {
			x = cand
			break
		}
	}
	t.used[x] = true
	out := "127.0.0." + strconv.Itoa(x)
	t.byAddr[addr] = out
	return out
}

// isLoopback127 reports whether addr is an IPv4 address in 127.0.0.0/8.
func isLoopback127(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && !strings.Contains(addr, ":") && ip.IsLoopback()
}

// RewriteAddresses replaces every address of the stored tasks that is not
// in 127.0.0.0/8 ("host" and "ipAddresses[].ipAddress"; host names and
// ::1 included) by LoopbackFor(address), so that no test sends packets off
// the loopback interface. It applies to the tasks stored now, not to tasks
// added later.
func (s *Server) RewriteAddresses() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		for _, t := range a.tasks {
			if h, ok := t["host"].(string); ok && !isLoopback127(h) {
				t["host"] = LoopbackFor(h)
			}
			ips, _ := t["ipAddresses"].([]any)
			for _, ip := range ips {
				m, ok := ip.(map[string]any)
				if !ok {
					continue
				}
				if v, ok := m["ipAddress"].(string); ok && !isLoopback127(v) {
					m["ipAddress"] = LoopbackFor(v)
					m["protocol"] = "IPv4"
				}
			}
		}
	}
}
