package dnsserver

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Follow builds a record index from every new snapshot of sub and hands it to set, until ctx
// ends. Building happens here, off the serving path; set only swaps a pointer. When cfg has a
// ResolveHost backed by a HostCache, pass that cache as hosts so a finished lookup rebuilds the
// index; hosts may be nil.
func Follow(ctx context.Context, sub *discovery.Subscription, cfg RecordConfig, hosts *HostCache, set func(*RecordIndex)) error {
	var prev *RecordIndex
	var resolved <-chan struct{}
	if hosts != nil {
		resolved = hosts.Changed()
	}
	build := func() {
		snap := sub.Snapshot()
		if snap == nil {
			return
		}
		ix := BuildIndex(snap, cfg, prev)
		if prev == nil || ix.Serial != prev.Serial {
			set(ix)
		}
		prev = ix
	}
	build()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.C():
			build()
		case <-resolved:
			build()
		}
	}
}

// HostCache resolves host names (frameworks without a pid, agents known by name) off the
// serving path: Lookup never blocks; a name it has not seen is resolved in the background and
// Changed fires when the answer arrives, so the index is rebuilt with it. Answers are refreshed
// after TTL. A name no Lookup asked for in hostIdleLimit (agents gone, frameworks removed) is
// forgotten, so the cache does not grow with every host a long-lived cluster ever had.
type HostCache struct {
	lookup  func(ctx context.Context, host string) ([]netip.Addr, error)
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]*hostEntry
	swept   time.Time
	changed chan struct{}
}

type hostEntry struct {
	addrs    []netip.Addr
	expires  time.Time
	used     time.Time
	inFlight bool
}

// hostIdleLimit is how long a cached name lives without a Lookup; sweeps run at most every
// hostSweepEvery. Every index build looks up each name it still needs, so only names nothing
// refers to any more reach the limit.
const (
	hostIdleLimit  = 30 * time.Minute
	hostSweepEvery = time.Minute
)

// NewHostCache returns a cache that resolves with lookup (net.DefaultResolver.LookupNetIP with
// network "ip" in production) and keeps answers for ttl.
func NewHostCache(lookup func(ctx context.Context, host string) ([]netip.Addr, error), ttl time.Duration) *HostCache {
	return &HostCache{lookup: lookup, ttl: ttl, now: time.Now, entries: map[string]*hostEntry{}, changed: make(chan struct{}, 1)}
}

// Changed receives a value after a lookup finished with a different answer.
func (c *HostCache) Changed() <-chan struct{} { return c.changed }

// Lookup returns the cached addresses of host (nil until the first lookup finished) and starts a
// lookup when there is none or the answer is older than the TTL.
func (c *HostCache) Lookup(host string) []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.swept) >= hostSweepEvery {
		c.sweepLocked(now)
	}
	e := c.entries[host]
	if e == nil {
		e = &hostEntry{}
		c.entries[host] = e
	}
	e.used = now
	if !e.inFlight && now.After(e.expires) {
		e.inFlight = true
		go c.resolve(host)
	}
	return e.addrs
}

// sweepLocked forgets the names no Lookup asked for in hostIdleLimit.
func (c *HostCache) sweepLocked(now time.Time) {
	c.swept = now
	for host, e := range c.entries {
		if !e.inFlight && now.Sub(e.used) > hostIdleLimit {
			delete(c.entries, host)
		}
	}
}

// Len returns the number of names cached.
func (c *HostCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *HostCache) resolve(host string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := c.lookup(ctx, host)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[host]
	e.inFlight = false
	e.expires = c.now().Add(c.ttl)
	if err != nil {
		// Keep the last answer: a resolver hiccup must not drop a framework's records.
		return
	}
	// A copy: the resolver's slice is not ours to change, and Lookup hands ours out.
	unmapped := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		unmapped[i] = a.Unmap()
	}
	addrs = unmapped
	if !equalAddrs(e.addrs, addrs) {
		e.addrs = addrs
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
