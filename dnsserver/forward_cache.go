package dnsserver

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"
)

// The answer cache keeps forwarded answers in wire format, as the upstream sent them, with the
// offsets of their TTLs. A hit is a copy, the client's ID, flags and question name written
// over it, and every TTL counted down by the seconds the entry has been held.
//
// What is cached: NOERROR answers with records, for their smallest TTL; NXDOMAIN and no-data
// answers with an SOA in the authority section, for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5);
// both capped at the maximum TTL. Never: SERVFAIL and other failures, truncated answers, answers
// without an SOA that deny (RFC 2308 §5: they are not to be cached), anything over
// maxCachedAnswer bytes.

// Defaults of the cache (cmd/lodestar's flags; Config's zero CacheSize is off).
const (
	DefaultCacheSize   = 10000
	DefaultCacheMaxTTL = time.Hour
)

// maxCachedAnswer bounds one cached answer: the largest EDNS0 buffer lodestar answers with.
// Bigger answers (over TCP) are relayed, not kept.
const maxCachedAnswer = maxUDPSize

// cacheShards splits the cache so that lookups on different cores seldom share a lock.
const cacheShards = 16

// cacheKeyLen is the fixed tail of a key after the name: type, class and flags.
const cacheKeyLen = 5

// Flag bits of a cache key: answers differ by them. EDNS: an answer to a query without OPT
// has none, and one with OPT must not be given to such a query (RFC 6891 §7). DO: DNSSEC
// records. CD: a validating upstream answers a CD query with data it would otherwise fail.
const (
	keyEDNS = 1 << iota
	keyDO
	keyCD
)

// answerCache is a bounded cache of forwarded answers. When a shard is full, an insert evicts
// an expired entry if the first few it looks at hold one, else one of them at random (Go's map
// iteration starts at a random entry): cheap, and no list to update on every hit.
type answerCache struct {
	now      func() time.Time
	maxTTL   uint32
	perShard int
	seed     maphash.Seed
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*cachedAnswer
}

// cachedAnswer is one answer: msg with ID 0, the TTLs at ttls as the upstream gave them.
type cachedAnswer struct {
	msg     []byte
	ttls    []uint16
	stored  time.Time
	expires time.Time
}

// newAnswerCache returns a cache of about size entries, or nil for size 0 (off).
func newAnswerCache(size int, maxTTL time.Duration, now func() time.Time) *answerCache {
	if size <= 0 {
		return nil
	}
	c := &answerCache{now: now, maxTTL: uint32(min(maxTTL/time.Second, 1<<31-1)),
		perShard: max(1, (size+cacheShards-1)/cacheShards), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*cachedAnswer)
	}
	return c
}

// appendCacheKey appends the cache key of q: its lower-case name key, type, class and the
// flags answers differ by.
func appendCacheKey(b []byte, q *query) []byte {
	b = append(b, q.key...)
	b = binary.BigEndian.AppendUint16(b, q.qtype)
	b = binary.BigEndian.AppendUint16(b, q.qclass)
	var f byte
	if q.edns {
		f |= keyEDNS
	}
	if q.do {
		f |= keyDO
	}
	if q.flags&0x0010 != 0 {
		f |= keyCD
	}
	return append(b, f)
}

func (c *answerCache) shard(key []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, key)%cacheShards]
}

// get appends the cached answer for key to out, made out for q (its ID, RD and CD, its
// question name's case; RA as ra), with its TTLs counted down.
func (c *answerCache) get(out []byte, key []byte, q *query, ra bool) ([]byte, bool) {
	now := c.now()
	sh := c.shard(key)
	sh.mu.RLock()
	e := sh.m[string(key)]
	if e == nil || !now.Before(e.expires) {
		sh.mu.RUnlock()
		cacheMisses.Inc()
		return out, false
	}
	start := len(out)
	out = append(out, e.msg...)
	sh.mu.RUnlock()
	// Entries are never changed once stored, so reading e's fields unlocked is safe.
	elapsed := uint32(now.Sub(e.stored) / time.Second)
	msg := out[start:]
	for _, at := range e.ttls {
		ttl := binary.BigEndian.Uint32(msg[at:])
		binary.BigEndian.PutUint32(msg[at:], ttl-min(ttl, elapsed))
	}
	relayHeader(msg, q, ra)
	copy(msg[headerLen:], q.qname) // the same name (the key says so), in the client's case
	cacheHits.Inc()
	return out, true
}

// put stores msg, an answer to q read by readAnswer into info, if it may be cached. msg is
// copied.
func (c *answerCache) put(key []byte, msg []byte, info *answerInfo) {
	ttl, ok := cacheTTL(info)
	if !ok || len(msg) > maxCachedAnswer {
		return
	}
	ttl = min(ttl, c.maxTTL)
	if ttl == 0 {
		return
	}
	b := append([]byte(nil), msg...)
	if info.optAt >= 0 && info.optEnd > info.optAt+11 {
		// EDNS options (cookies, client subnet, padding) belong to the exchange they came in,
		// not to every later asker: kept only when the OPT record is last, and then cut off.
		if info.optEnd != len(b) {
			return
		}
		b = b[:info.optAt+11]
		b[info.optAt+9], b[info.optAt+10] = 0, 0
	}
	b[0], b[1] = 0, 0
	now := c.now()
	e := &cachedAnswer{msg: b, ttls: append([]uint16(nil), info.ttls...), stored: now,
		expires: now.Add(time.Duration(ttl) * time.Second)}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, replaced := sh.m[string(key)]; !replaced && len(sh.m) >= c.perShard {
		sh.evictOne(now)
	}
	if _, replaced := sh.m[string(key)]; !replaced {
		cacheEntries.Inc()
	}
	sh.m[string(key)] = e
}

// evictOne removes an entry of a full shard: the first expired one among a few, else the
// first of them. The caller holds the lock.
func (sh *cacheShard) evictOne(now time.Time) {
	var victim string
	looked := 0
	for k, e := range sh.m {
		if looked == 0 {
			victim = k
		}
		if !now.Before(e.expires) {
			victim = k
			break
		}
		if looked++; looked == 8 {
			break
		}
	}
	delete(sh.m, victim)
	cacheEntries.Dec()
	cacheEvictions.Inc()
}

// cacheTTL is how long an answer may be cached, and whether at all.
func cacheTTL(info *answerInfo) (uint32, bool) {
	if info.truncated {
		return 0, false
	}
	switch {
	case info.rcode == rcodeOK && info.answers > 0:
		return info.minTTL, true
	case info.rcode == rcodeOK || info.rcode == rcodeNX:
		if !info.hasSOA {
			return 0, false
		}
		// The records of a denial (the SOA, NSEC, a CNAME leading to the name denied) bound
		// it too.
		return min(info.soaTTL, info.minTTL), true
	}
	return 0, false
}

// len is the number of entries, expired ones not yet evicted included.
func (c *answerCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}
