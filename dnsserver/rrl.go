package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Response-rate limiting (RRL) for in-zone UDP answers, with bind9's semantics: every client
// prefix (a /24 of IPv4, a /56 of IPv6) has an account credited Rate responses a second, at
// most Rate ahead (a burst of one second's worth). Every response is debited, sent or not, so
// a flood stays limited until it has been quiet for up to Window. A limited response is
// dropped, except every Slip-th, which goes out truncated (TC, no records): a real client,
// whose address a flood may be forging, retries over TCP and is answered, while the forged
// victim receives nothing bigger than the query.
//
// Unlike bind, which keeps an account per prefix and answer, an account here is per prefix
// alone: that needs no qname in the key and holds against a flood that varies its names.
// RRL applies to clients outside ForwardAllow only; lodestar's own clients are never limited.

// Defaults of RRLConfig.
const (
	DefaultRRLSlip       = 2
	DefaultRRLWindow     = 15 * time.Second
	DefaultRRLIPv4Prefix = 24
	DefaultRRLIPv6Prefix = 56
	DefaultRRLMaxClients = 65536
	// maxRRLRate keeps the interval between credits at a microsecond or more.
	maxRRLRate = 1_000_000
	// outsideAnswerFactor caps a UDP answer to a client outside ForwardAllow at this many
	// times the query's size (but never below minOutsideAnswer): bigger ones go out truncated
	// and the client retries over TCP, so a forged query cannot be amplified much.
	outsideAnswerFactor = 4
	minOutsideAnswer    = 128
)

// RRLConfig configures response-rate limiting. Rate 0 turns it off.
type RRLConfig struct {
	// Rate is the responses a second each client prefix outside ForwardAllow gets; 0 is off.
	Rate int
	// Slip: every Slip-th limited response is sent truncated instead of dropped; 0 drops
	// them all, 1 truncates them all. cmd/lodestar's default is DefaultRRLSlip.
	Slip int
	// Window is how long a flood is remembered: a prefix that sent more than Rate a second is
	// limited until it has been quiet for up to Window (default 15s; at least 1s).
	Window time.Duration
	// IPv4Prefix and IPv6Prefix are the client prefix lengths sharing one account
	// (default 24 and 56).
	IPv4Prefix, IPv6Prefix int
	// MaxClients bounds the accounts kept (default 65536, some 3 MB); when full, an expired
	// one is reused, else an arbitrary one.
	MaxClients int
}

// withDefaults fills in unset fields and checks the rest.
func (c RRLConfig) withDefaults() (RRLConfig, error) {
	if c.Rate == 0 {
		return c, nil
	}
	var errs []error
	if c.Rate < 0 || c.Rate > maxRRLRate {
		errs = append(errs, fmt.Errorf("DNS RRL rate %d: want 0 (off) to %d responses a second", c.Rate, maxRRLRate))
	}
	if c.Slip < 0 || c.Slip > 10 {
		errs = append(errs, fmt.Errorf("DNS RRL slip %d: want 0 (never) to 10", c.Slip))
	}
	if c.Window == 0 {
		c.Window = DefaultRRLWindow
	}
	if c.Window < time.Second || c.Window > time.Hour {
		errs = append(errs, fmt.Errorf("DNS RRL window %s: want 1s to 1h", c.Window))
	}
	if c.IPv4Prefix == 0 {
		c.IPv4Prefix = DefaultRRLIPv4Prefix
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = DefaultRRLIPv6Prefix
	}
	if c.IPv4Prefix < 1 || c.IPv4Prefix > 32 || c.IPv6Prefix < 1 || c.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("DNS RRL prefix lengths /%d, /%d: want 1-32 for IPv4 and 1-128 for IPv6", c.IPv4Prefix, c.IPv6Prefix))
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultRRLMaxClients
	}
	if c.MaxClients < rrlShards {
		errs = append(errs, fmt.Errorf("DNS RRL table size %d: want at least %d", c.MaxClients, rrlShards))
	}
	return c, errors.Join(errs...)
}

// rrlVerdict is what to do with a response.
type rrlVerdict uint8

const (
	rrlSend rrlVerdict = iota
	rrlDrop
	rrlSlip // send it truncated
)

// rrlShards spreads the accounts over this many locks, so the UDP read loops rarely wait on
// each other.
const rrlShards = 16

// rrlLimiter keeps the accounts. An account is a GCRA cell: tat, the time its credit is used
// up to; a response at now is within the rate when tat, after its debit, is at most one
// second (the burst) ahead of now.
type rrlLimiter struct {
	cfg      RRLConfig
	interval int64 // ns of credit per response: 1s / Rate
	burst    int64
	debt     int64 // how far tat may run ahead of now: burst + Window
	now      func() time.Time
	// fixedClock: now is a test's clock, which the server reads instead of the time its
	// read loops pass.
	fixedClock bool
	perShard   int
	shards     [rrlShards]rrlShard
}

type rrlShard struct {
	mu       sync.Mutex
	accounts map[rrlKey]*rrlAccount
}

// rrlKey is a client prefix: the masked address, IPv4 in its IPv6-mapped form.
type rrlKey [16]byte

type rrlAccount struct {
	tat     int64 // ns since the Unix epoch
	limited uint32
}

// newRRL returns the limiter of a checked configuration; nil when RRL is off.
func newRRL(cfg RRLConfig, now func() time.Time) *rrlLimiter {
	if cfg.Rate == 0 {
		return nil
	}
	l := &rrlLimiter{
		cfg:      cfg,
		interval: int64(time.Second) / int64(cfg.Rate),
		burst:    int64(time.Second),
		debt:     int64(time.Second + cfg.Window),
		now:      now,
		perShard: cfg.MaxClients / rrlShards,
	}
	for i := range l.shards {
		l.shards[i].accounts = make(map[rrlKey]*rrlAccount)
	}
	return l
}

// key masks a client address to its prefix.
func (l *rrlLimiter) key(ip netip.Addr) rrlKey {
	ip = ip.Unmap().WithZone("")
	bits := l.cfg.IPv6Prefix
	if ip.Is4() {
		bits = l.cfg.IPv4Prefix
	}
	p, _ := ip.Prefix(bits)
	return p.Addr().As16()
}

// account debits one response of the client at ip, at the limiter's time, and says what to
// do with it.
func (l *rrlLimiter) account(ip netip.Addr) rrlVerdict {
	return l.accountAt(ip, l.now())
}

// accountAt is account at a time the caller read: the UDP read loops read the clock once for
// a batch of queries (a clock reading was a fifth of RRL's cost).
func (l *rrlLimiter) accountAt(ip netip.Addr, t time.Time) rrlVerdict {
	k := l.key(ip)
	sh := &l.shards[shardOf(k)]
	now := t.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a, ok := sh.accounts[k]
	if !ok {
		a = sh.newAccount(k, now, l.perShard)
	}
	tat := max(a.tat, now) + l.interval
	a.tat = min(tat, now+l.debt)
	if tat-now <= l.burst {
		a.limited = 0
		return rrlSend
	}
	a.limited++
	if l.cfg.Slip > 0 && a.limited%uint32(l.cfg.Slip) == 0 {
		return rrlSlip
	}
	return rrlDrop
}

// newAccount adds an account, first making room when the shard is full: an expired account
// (its credit full again, so it knows nothing a new one would not) among the first few the
// map yields, else the first of them. Go starts a map's iteration at a random place, so that
// is an arbitrary one.
func (sh *rrlShard) newAccount(k rrlKey, now int64, limit int) *rrlAccount {
	if len(sh.accounts) >= limit {
		var victim rrlKey
		found, tries := false, 0
		for vk, va := range sh.accounts {
			if !found || va.tat <= now {
				victim, found = vk, true
			}
			tries++
			if va.tat <= now || tries == 8 {
				break
			}
		}
		delete(sh.accounts, victim)
		srvRRLEvicted.Inc()
	}
	a := &rrlAccount{}
	sh.accounts[k] = a
	return a
}

// size is the number of accounts kept.
func (l *rrlLimiter) size() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].accounts)
		l.shards[i].mu.Unlock()
	}
	return n
}

// shardOf mixes a key's two halves (the prefix bits are in either) and takes the top bits.
func shardOf(k rrlKey) int {
	h := (binary.LittleEndian.Uint64(k[:8]) ^ binary.LittleEndian.Uint64(k[8:])) * 0x9E3779B97F4A7C15
	return int(h >> 60) // rrlShards = 16
}

// appendSlip writes the truncated answer RRL sends instead of a limited one: the header with
// TC, the question and the OPT record, no records.
func appendSlip(out []byte, q *query, ra bool) []byte {
	out = appendHead(out, q, ra, true, rcodeOK)
	out[2] |= 0x02
	return finishReply(out, q, 0, 0, 0)
}

// outsideLimit is the UDP answer size a client outside ForwardAllow gets for a query of
// qlen bytes: a small multiple of the query, within the client's own limit.
func outsideLimit(clientLimit, qlen int) int {
	return min(clientLimit, max(outsideAnswerFactor*qlen, minOutsideAnswer))
}

// outside reports whether a client is outside ForwardAllow, where RRL applies.
func (s *Server) outside(ip netip.Addr) bool { return !s.allow.contains(ip) }

// prefixSet is a list of prefixes as 128-bit masks, IPv4 ones in their IPv4-mapped form.
// It agrees with the forwarder's check (netip.Prefix.Contains of the unmapped client): an
// IPv4 client, mapped or not, is in IPv4 prefixes only. Why not Contains itself: RRL asks for
// every in-zone UDP query while on, and a masked compare of two words costs a fraction.
type prefixSet []maskedPrefix

type maskedPrefix struct {
	hi, lo, maskHi, maskLo uint64
	v4                     bool
}

func newPrefixSet(ps []netip.Prefix) prefixSet {
	out := make(prefixSet, 0, len(ps))
	for _, p := range ps {
		p = p.Masked()
		bits := p.Bits()
		if p.Addr().Is4() {
			bits += 96
		}
		if !p.IsValid() || bits < 0 {
			continue
		}
		a := p.Addr().As16()
		m := maskedPrefix{v4: p.Addr().Is4()}
		m.hi, m.lo = binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
		m.maskHi, m.maskLo = prefixMask(bits)
		out = append(out, m)
	}
	return out
}

// prefixMask returns the two words of a /bits mask.
func prefixMask(bits int) (hi, lo uint64) {
	switch {
	case bits >= 128:
		return ^uint64(0), ^uint64(0)
	case bits > 64:
		return ^uint64(0), ^uint64(0) << (128 - bits)
	case bits == 0:
		return 0, 0
	}
	return ^uint64(0) << (64 - bits), 0
}

func (ps prefixSet) contains(ip netip.Addr) bool {
	a := ip.As16() // IPv4 as IPv4-mapped, zone left out
	v4 := ip.Is4() || ip.Is4In6()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	for _, p := range ps {
		if p.v4 == v4 && hi&p.maskHi == p.hi && lo&p.maskLo == p.lo {
			return true
		}
	}
	return false
}

// limitUDP applies RRL to an in-zone UDP answer for client, to a query of qlen bytes read at
// now. It returns the size the answer must fit in; or, when RRL limits the answer, done with
// what to send instead: the truncated slip answer, or nothing (reply nil).
func (s *Server) limitUDP(client netip.Addr, now time.Time, q *query, qlen int, out []byte) (limit int, reply []byte, done bool) {
	limit = q.udpLimit()
	if s.rrl == nil || !client.IsValid() || !s.outside(client) {
		return limit, nil, false
	}
	if s.rrl.fixedClock {
		now = s.rrl.now()
	}
	switch s.rrl.accountAt(client, now) {
	case rrlDrop:
		srvRRLDropped.Inc()
		return 0, nil, true
	case rrlSlip:
		srvRRLSlipped.Inc()
		return 0, appendSlip(out, q, s.ra), true
	}
	return outsideLimit(limit, qlen), nil, false
}

// remoteIP is the client address of a miekg/dns response writer.
func remoteIP(w interface{ RemoteAddr() net.Addr }) netip.Addr {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr()
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	}
	return netip.Addr{}
}
