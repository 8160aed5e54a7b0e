package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// udpSocket is one of the server's UDP sockets. pktinfo: it listens on a wildcard address and
// receives each packet's destination address, which its reply must leave from.
type udpSocket struct {
	conn    *net.UDPConn
	pktinfo bool
}

// listenAll binds the TCP listener and n UDP sockets on the same port. The TCP listener is bound
// first and without SO_REUSEPORT, so a second server on the same port fails here instead of
// sharing the UDP port with this one. With port 0 a port free for both protocols is searched.
func listenAll(ctx context.Context, addr string, n int) (net.Listener, []udpSocket, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for {
		ln, socks, err := listenOnce(ctx, host, port, n)
		tries--
		if err == nil || tries == 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return ln, socks, err
		}
	}
}

func listenOnce(ctx context.Context, host, port string, n int) (net.Listener, []udpSocket, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, nil, err
	}
	tcpAddr := ln.Addr().(*net.TCPAddr)
	pktinfo := tcpAddr.IP.IsUnspecified()
	lc := net.ListenConfig{Control: udpControl(pktinfo)}
	if !reusePortSupported {
		n = 1
	}
	var socks []udpSocket
	for range n {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(tcpAddr.Port)))
		if err != nil {
			ln.Close()
			for _, s := range socks {
				s.conn.Close()
			}
			return nil, nil, err
		}
		socks = append(socks, udpSocket{conn: pc.(*net.UDPConn), pktinfo: pktinfo})
	}
	return ln, socks, nil
}

// answerPacket answers a UDP query for a name in the zone into out, from the compiled answers;
// ok is false for anything else, which goes through miekg/dns. It does not allocate.
// A nil reply with ok is an answer response-rate limiting dropped (rrl.go).
func (s *Server) answerPacket(from netip.Addr, now time.Time, pkt, out []byte, q *query, keyBuf []byte, rot uint32) (reply []byte, rcode int, ok bool) {
	if !parseQuery(pkt, q, keyBuf) || !keyInZone(q.key, s.apex) {
		return nil, 0, false
	}
	limit, reply, limited := s.limitUDP(from, now, q, len(pkt), out)
	if limited {
		return reply, rcodeOK, true
	}
	reply, rcode = s.answerZone(out, q, limit, rot)
	if limit < q.udpLimit() && len(reply) > 2 && reply[2]&0x02 != 0 {
		srvOutsideTruncated.Inc()
	}
	return reply, rcode, true
}

// handOff answers a query off the read loop, through miekg/dns. Such queries may wait for
// upstreams; at most maxSlowQueries run at once and further ones are dropped (the client
// retries), so a flood of forwarded queries cannot grow the server without bound.
func (s *Server) handOff(sock udpSocket, from netip.AddrPort, pkt, oob []byte) {
	select {
	case s.slow <- struct{}{}:
	default:
		srvDropped.WithLabelValues("overload").Inc()
		return
	}
	pkt = append([]byte(nil), pkt...)
	oob = append([]byte(nil), oob...)
	s.slowWG.Add(1)
	go func() {
		defer func() {
			<-s.slow
			s.slowWG.Done()
		}()
		w := &udpWriter{sock: sock, to: from, oob: oob}
		r := new(dns.Msg)
		if err := r.Unpack(pkt); err != nil {
			// As miekg/dns's server: FORMERR when the header is readable and is a query;
			// nothing otherwise (no replies to replies, nothing that can be amplified).
			srvDropped.WithLabelValues("malformed").Inc()
			if h := new(dns.Msg); len(pkt) >= headerLen && pkt[2]&0x80 == 0 {
				h.Id = uint16(pkt[0])<<8 | uint16(pkt[1])
				h.Response, h.Rcode, h.Opcode = true, dns.RcodeFormatError, int(pkt[2]>>3&0xF)
				w.WriteMsg(h)
			}
			return
		}
		if r.Response {
			srvDropped.WithLabelValues("malformed").Inc()
			return
		}
		s.ServeDNS(w, r)
	}()
}

// udpWriter is the dns.ResponseWriter of a UDP query handled off the read loop.
type udpWriter struct {
	sock udpSocket
	to   netip.AddrPort
	oob  []byte
}

// LocalAddr is the socket's address.
func (w *udpWriter) LocalAddr() net.Addr { return w.sock.conn.LocalAddr() }

// RemoteAddr is the client's address.
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }

// WriteMsg packs and sends m.
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Write sends a packed message, from the address the query was sent to.
func (w *udpWriter) Write(b []byte) (int, error) {
	var (
		n   int
		err error
	)
	if w.sock.pktinfo {
		n, _, err = w.sock.conn.WriteMsgUDPAddrPort(b, replyOOB(nil, w.oob), w.to)
	} else {
		n, err = w.sock.conn.WriteToUDPAddrPort(b, w.to)
	}
	if err != nil {
		srvWriteErrors.Inc()
	}
	return n, err
}

// Close does nothing: the socket is the server's.
func (w *udpWriter) Close() error { return nil }

// TsigStatus: TSIG is not supported.
func (w *udpWriter) TsigStatus() error { return nil }

// TsigTimersOnly: TSIG is not supported.
func (w *udpWriter) TsigTimersOnly(bool) {}

// Hijack does nothing: there is no connection to take over.
func (w *udpWriter) Hijack() {}
