//go:build !linux

package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// serveUDP is the read loop of one UDP socket, a packet at a time (Linux reads batches). In-zone queries are answered here, from the
// compiled answers, without allocating; everything else (forwarding, malformed or unusual
// queries) is handed to a goroutine that goes through miekg/dns.
func (s *Server) serveUDP(sock udpSocket, seed uint32) error {
	var (
		in     = make([]byte, maxTCPSize)
		out    = make([]byte, 0, maxUDPSize)
		oob    = make([]byte, 256)
		outOOB = make([]byte, 0, 256)
		keyBuf [256]byte
		q      query
		rot    = seed
	)
	for {
		var (
			n, oobn int
			from    netip.AddrPort
			err     error
		)
		if sock.pktinfo {
			n, oobn, _, from, err = sock.conn.ReadMsgUDPAddrPort(in, oob)
		} else {
			n, from, err = sock.conn.ReadFromUDPAddrPort(in)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading DNS queries on %s: %w", sock.conn.LocalAddr(), err)
		}
		start := time.Now()
		rot++
		reply, rcode, ok := s.answerPacket(from.Addr(), start, in[:n], out[:0], &q, keyBuf[:0], rot)
		forwarded := false
		if !ok {
			reply, rcode, ok = s.forwardPacket(sock, from, in[:n], oob[:oobn], out[:0], &q, keyBuf[:0], start)
			forwarded = true
		}
		if !ok {
			s.handOff(sock, from, in[:n], oob[:oobn])
			continue
		}
		if reply == nil {
			continue // dropped by response-rate limiting, or forwarded: answered later
		}
		if sock.pktinfo {
			outOOB = replyOOB(outOOB, oob[:oobn])
			_, _, err = sock.conn.WriteMsgUDPAddrPort(reply, outOOB, from)
		} else {
			_, err = sock.conn.WriteToUDPAddrPort(reply, from)
		}
		if err != nil {
			srvWriteErrors.Inc()
		}
		observeQuery(q.qtype, rcode, start, forwarded)
	}
}
