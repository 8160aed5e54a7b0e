package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// CacheConfig sizes the cache of forwarded answers.
type CacheConfig struct {
	// Size is the most answers kept; 0 turns the cache off.
	Size int
	// MaxTTL caps how long an answer is kept, whatever its TTL (default DefaultCacheMaxTTL).
	MaxTTL time.Duration
}

func (c CacheConfig) withDefaults() (CacheConfig, error) {
	if c.Size < 0 {
		return c, fmt.Errorf("DNS cache size %d (--dns-cache-size): want 0 (off) or more", c.Size)
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = DefaultCacheMaxTTL
	}
	return c, nil
}

// forwardPacket answers a plain UDP query for a name outside the zone from the read loop: a
// refusal, a cached answer (into out), or, sent upstream, later from the upstream socket's
// reader (reply nil). ok is false for anything else, which goes through miekg/dns.
func (s *Server) forwardPacket(sock udpSocket, from netip.AddrPort, pkt, oob, out []byte, q *query, keyBuf []byte, start time.Time) (reply []byte, rcode int, ok bool) {
	if !parseQuery(pkt, q, keyBuf) || keyInZone(q.key, s.apex) {
		return nil, 0, false
	}
	if !s.cfg.Forward || !s.allow.contains(from.Addr()) {
		return appendBare(out, q, false, rcodeRefuse), rcodeRefuse, true // no recursion for this client: no RA
	}
	ups := s.fwd.upstreamsFor(q.key)
	if len(ups) == 0 {
		return appendBare(out, q, s.ra, rcodeFail), rcodeFail, true
	}
	var keyArr [256 + cacheKeyLen]byte
	if c := s.fwd.cache; c != nil {
		if reply, hit := c.get(out, appendCacheKey(keyArr[:0], q), q, s.ra); hit {
			reply = fitReply(reply, clientLimit(q, false))
			return reply, int(reply[3] & 0x0F), true
		}
	}
	select {
	case s.slow <- struct{}{}:
	default:
		srvDropped.WithLabelValues("overload").Inc()
		return nil, 0, true
	}
	s.slowWG.Add(1)
	fq := s.newFwdQuery(pkt, q, ups)
	w := &udpWriter{sock: sock, to: from, oob: append([]byte(nil), oob...)}
	fq.finish = func(msg []byte, info *answerInfo, _ int, err error) {
		defer func() {
			<-s.slow
			s.slowWG.Done()
		}()
		reply := s.relayed(msg, info, err, &fq.q, false)
		w.Write(reply)
		observeQuery(fq.q.qtype, int(reply[3]&0x0F), start, true)
	}
	s.fwd.start(s.life)
	fq.start(start)
	return nil, 0, true
}

// newFwdQuery copies what the query needs of pkt and q: they belong to the caller.
func (s *Server) newFwdQuery(pkt []byte, q *query, ups []string) *fwdQuery {
	fq := &fwdQuery{f: s.fwd, q: *q, ups: ups}
	buf := make([]byte, len(pkt)+len(q.key))
	fq.pkt = buf[:copy(buf, pkt)]
	fq.q.key = buf[len(pkt):]
	copy(fq.q.key, q.key)
	fq.q.qname = fq.pkt[headerLen : headerLen+len(q.qname)]
	return fq
}

// relayed makes the reply to q from the upstream's answer msg (read into info), or SERVFAIL
// for err, and caches the answer when it may be.
func (s *Server) relayed(msg []byte, info *answerInfo, err error, q *query, tcp bool) []byte {
	if err != nil {
		if !errors.Is(err, errUpstreamClosed) {
			s.log.Debug("DNS: forwarding failed", "name", string(q.key), "err", err)
		}
		return appendBare(nil, q, s.ra, rcodeFail)
	}
	// Relayed as the upstream wrote it, compression included: a big answer unpacked and
	// written out in full could pass the 64 kB a TCP reply can carry.
	reply := append(make([]byte, 0, len(msg)), msg...)
	relayHeader(reply, q, s.ra)
	copy(reply[headerLen:], q.qname)
	if c := s.fwd.cache; c != nil {
		var keyArr [256 + cacheKeyLen]byte
		c.put(appendCacheKey(keyArr[:0], q), reply, info)
	}
	return fitReply(reply, clientLimit(q, tcp))
}

// relayHeader makes an upstream's header the reply's to q: q's ID, RD and CD; RA as ra (lodestar
// recursed for the client, even when the upstream, an authoritative server, did not say so);
// AA and Z clear (lodestar relays the answer; it is not the authority for it). QR, opcode, TC,
// AD and the rcode stay.
func relayHeader(msg []byte, q *query, ra bool) {
	binary.BigEndian.PutUint16(msg, q.id)
	msg[2] = msg[2]&^0x05 | byte(q.flags>>8)&0x01
	msg[3] = msg[3]&0x2F | byte(q.flags)&0x10
	if ra {
		msg[3] |= 0x80
	}
}

// clientLimit is the largest reply q's client takes: over TCP, any; over UDP, its EDNS0 buffer
// size, at least 512.
func clientLimit(q *query, tcp bool) int {
	if tcp {
		return maxTCPSize
	}
	if q.edns {
		return max(minUDPSize, int(q.bufSize))
	}
	return minUDPSize
}

// fitReply truncates a reply over limit (rare: an answer cached from a client with a bigger
// buffer), through miekg/dns: records are dropped whole and TC set. A reply that cannot be
// unpacked becomes a bare SERVFAIL.
func fitReply(reply []byte, limit int) []byte {
	if len(reply) <= limit {
		return reply
	}
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		return servfailHeader(reply)
	}
	m.Compress = true
	m.Truncate(limit)
	b, err := m.Pack()
	if err != nil {
		return servfailHeader(reply)
	}
	return b
}

// servfailHeader cuts reply down to its header and question and makes it SERVFAIL.
func servfailHeader(reply []byte) []byte {
	end, err := skipName(reply, headerLen)
	if err != nil || end+4 > len(reply) {
		end = headerLen - 4
		binary.BigEndian.PutUint16(reply[4:], 0)
	}
	reply = reply[:end+4]
	reply[3] = reply[3]&0xF0 | rcodeFail
	clear(reply[6:12])
	return reply
}

// forward answers a query outside the zone that came through miekg/dns (TCP, unusual
// names): from the cache, or from the upstreams, waiting. It returns the rcode, and whether
// the answer is a forwarded one.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg, q *query, tcp bool) (int, bool) {
	if !s.cfg.Forward || !s.fwd.allowed(w.RemoteAddr()) {
		w.Write(appendBare(nil, q, false, rcodeRefuse)) // no recursion for this client: no RA
		return rcodeRefuse, false
	}
	ups := s.fwd.upstreamsFor(q.key)
	if len(ups) == 0 {
		w.Write(appendBare(nil, q, s.ra, rcodeFail))
		return rcodeFail, false
	}
	if c := s.fwd.cache; c != nil {
		var keyArr [256 + cacheKeyLen]byte
		if reply, hit := c.get(nil, appendCacheKey(keyArr[:0], q), q, s.ra); hit {
			reply = fitReply(reply, clientLimit(q, tcp))
			w.Write(reply)
			return int(reply[3] & 0x0F), true
		}
	}
	pkt, err := r.Pack()
	if err != nil || !questionIs(pkt, q) {
		w.Write(appendBare(nil, q, s.ra, rcodeFail))
		return rcodeFail, false
	}
	reply := s.forwardWait(pkt, q, ups, tcp)
	w.Write(reply)
	return int(reply[3] & 0x0F), true
}

// forwardWait asks the upstreams for pkt and waits for the reply. For a TCP client, an answer
// that came back truncated is asked again over TCP of the upstream that gave it.
func (s *Server) forwardWait(pkt []byte, q *query, ups []string, tcp bool) []byte {
	type result struct {
		msg       []byte
		up        int
		truncated bool
		err       error
	}
	done := make(chan result, 1)
	fq := s.newFwdQuery(pkt, q, ups)
	fq.finish = func(msg []byte, info *answerInfo, up int, err error) {
		if err != nil || tcp && info.truncated {
			done <- result{up: up, truncated: err == nil, err: err}
			return
		}
		done <- result{msg: s.relayed(msg, info, nil, q, tcp)}
	}
	start := time.Now()
	s.fwd.start(s.life)
	fq.start(start)
	res := <-done
	switch {
	case res.err != nil:
		return s.relayed(nil, nil, res.err, q, tcp)
	case res.truncated:
		var info answerInfo
		ctx, cancel := context.WithDeadline(s.life, start.Add(s.fwd.timeout))
		defer cancel()
		msg, err := askTCP(ctx, ups[res.up], pkt, q, &info)
		if err != nil {
			srvUpstreamFailures.WithLabelValues(ups[res.up], "error").Inc()
		}
		return s.relayed(msg, &info, err, q, tcp)
	}
	return res.msg
}

// askTCP asks upstream up for pkt over a TCP connection of its own, under a fresh ID, and
// returns its answer, checked as readAnswer checks (into info).
func askTCP(ctx context.Context, up string, pkt []byte, q *query, info *answerInfo) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", up)
	if err != nil {
		return nil, fmt.Errorf("upstream %s over TCP: %w", up, err)
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	id := uint16(rand.Uint32())
	out := make([]byte, 2+len(pkt))
	binary.BigEndian.PutUint16(out, uint16(len(pkt)))
	copy(out[2:], pkt)
	binary.BigEndian.PutUint16(out[2:], id)
	if _, err := conn.Write(out); err != nil {
		return nil, fmt.Errorf("upstream %s over TCP: %w", up, err)
	}
	var n [2]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return nil, fmt.Errorf("upstream %s over TCP: %w", up, err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(conn, msg); err != nil {
		return nil, fmt.Errorf("upstream %s over TCP: %w", up, err)
	}
	if len(msg) < headerLen || binary.BigEndian.Uint16(msg) != id {
		return nil, fmt.Errorf("upstream %s over TCP: answer with another ID", up)
	}
	if err := readAnswer(msg, q, info); err != nil {
		return nil, fmt.Errorf("upstream %s over TCP: %w", up, err)
	}
	if info.rcode != rcodeOK && info.rcode != rcodeNX {
		return nil, fmt.Errorf("upstream %s over TCP: %s", up, strings.ToUpper(dns.RcodeToString[info.rcode]))
	}
	return msg, nil
}
