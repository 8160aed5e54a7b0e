package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux a UDP socket is read and written in batches: one recvmmsg takes every query waiting
// (up to udpBatch), one sendmmsg sends their answers. Under load this divides the system calls,
// which are most of the cost of a query, by the batch size; with one query waiting it is one
// call each way, as before.

const (
	udpBatch  = 32
	udpInSize = maxUDPSize // queries are small; a bigger datagram is cut (MSG_TRUNC) and dropped
	oobSize   = 128
)

// mmsghdr is the kernel's struct mmsghdr: a msghdr and the length received or sent.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// udpBatchBufs are one read loop's buffers. The headers point into the other fields; they are
// set up once and only their lengths are reset per call.
type udpBatchBufs struct {
	in     [udpBatch]mmsghdr
	inIov  [udpBatch]unix.Iovec
	names  [udpBatch]unix.RawSockaddrInet6
	inBuf  [udpBatch][udpInSize]byte
	inOOB  [udpBatch][oobSize]byte
	out    [udpBatch]mmsghdr
	outIov [udpBatch]unix.Iovec
	outBuf [udpBatch][maxUDPSize]byte
	outOOB [udpBatch][oobSize]byte
}

func newUDPBatchBufs() *udpBatchBufs {
	b := new(udpBatchBufs)
	for i := range b.in {
		b.inIov[i].Base = &b.inBuf[i][0]
		b.in[i].hdr.Iov = &b.inIov[i]
		b.in[i].hdr.SetIovlen(1)
		b.in[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.out[i].hdr.Iov = &b.outIov[i]
		b.out[i].hdr.SetIovlen(1)
	}
	return b
}

// serveUDP is the read loop of one UDP socket. In-zone queries are answered here, from the
// compiled answers, without allocating; everything else (forwarding, malformed or unusual
// queries) is handed to a goroutine that goes through miekg/dns.
func (s *Server) serveUDP(sock udpSocket, seed uint32) error {
	rc, err := sock.conn.SyscallConn()
	if err != nil {
		return err
	}
	var (
		b      = newUDPBatchBufs()
		keyBuf [256]byte
		q      query
		rot    = seed
		n      int
	)
	recv := func(fd uintptr) bool {
		for i := range b.in {
			b.inIov[i].SetLen(udpInSize)
			b.in[i].hdr.Namelen = unix.SizeofSockaddrInet6
			b.in[i].hdr.Flags = 0
			if sock.pktinfo {
				b.in[i].hdr.Control = &b.inOOB[i][0]
				b.in[i].hdr.SetControllen(oobSize)
			}
		}
		for {
			r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), udpBatch, 0, 0, 0)
			switch errno {
			case 0:
				n, err = int(r), nil
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait until readable
			default:
				n, err = 0, errno
			}
			return true
		}
	}
	var sent, toSend int
	send := func(fd uintptr) bool {
		for sent < toSend {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.out[sent])), uintptr(toSend-sent), 0, 0, 0)
			switch errno {
			case 0:
				sent += int(r)
			case unix.EINTR:
			case unix.EAGAIN:
				return false // wait until writable
			default:
				// This packet cannot go (a bad address, say); skip it, send the rest.
				srvWriteErrors.Inc()
				sent++
			}
		}
		return true
	}
	for {
		if rerr := rc.Read(recv); rerr != nil || err != nil {
			if again, ferr := readFailed(sock, rerr, err); !again {
				return ferr
			}
			continue
		}
		start := time.Now()
		toSend = 0
		for i := range n {
			h := &b.in[i]
			pkt := b.inBuf[i][:h.len]
			var oob []byte
			if sock.pktinfo {
				oob = b.inOOB[i][:h.hdr.Controllen]
			}
			if h.hdr.Flags&unix.MSG_TRUNC != 0 {
				srvDropped.WithLabelValues("malformed").Inc()
				continue
			}
			rot++
			from := sockaddrAddrPort(&b.names[i])
			reply, rcode, ok := s.answerPacket(from.Addr(), start, pkt, b.outBuf[i][:0], &q, keyBuf[:0], rot)
			forwarded := false
			if !ok {
				reply, rcode, ok = s.forwardPacket(sock, from, pkt, oob, b.outBuf[i][:0], &q, keyBuf[:0], start)
				forwarded = true
			}
			if !ok {
				s.handOff(sock, from, pkt, oob)
				continue
			}
			if reply == nil {
				continue // dropped by response-rate limiting, or forwarded: answered later
			}
			b.queueReply(toSend, h, reply, oob, sock.pktinfo)
			toSend++
			observeQuery(q.qtype, rcode, start, forwarded)
		}
		if toSend > 0 {
			sent = 0
			if werr := rc.Write(send); werr != nil {
				if errors.Is(werr, net.ErrClosed) {
					return nil
				}
				return fmt.Errorf("writing DNS answers on %s: %w", sock.conn.LocalAddr(), werr)
			}
		}
	}
}

// readFailed says what a failed read of the UDP loop means: again when the socket still works
// (a queued ICMP error, a moment without buffers), else the error to end the loop with (nil
// when the socket was closed, as on shutdown). rerr is the poller's error, err recvmmsg's.
func readFailed(sock udpSocket, rerr, err error) (again bool, ferr error) {
	if errors.Is(rerr, net.ErrClosed) || rerr == nil && errors.Is(err, net.ErrClosed) {
		return false, nil
	}
	if rerr == nil && transientRecvError(err) {
		srvDropped.WithLabelValues("read_error").Inc()
		return true, nil
	}
	return false, fmt.Errorf("reading DNS queries on %s: %w", sock.conn.LocalAddr(), errors.Join(rerr, err))
}

// queueReply puts reply in outgoing slot k, addressed to the sender of the query h, and from
// the address the query came to (oob) when the socket reads that (pktinfo).
func (b *udpBatchBufs) queueReply(k int, h *mmsghdr, reply, oob []byte, pktinfo bool) {
	o := &b.out[k]
	b.outIov[k].Base = &reply[0]
	b.outIov[k].SetLen(len(reply))
	o.hdr.Name, o.hdr.Namelen = h.hdr.Name, h.hdr.Namelen
	o.hdr.Control = nil
	o.hdr.SetControllen(0)
	if pktinfo {
		if c := replyOOB(b.outOOB[k][:0], oob); len(c) > 0 {
			o.hdr.Control = &b.outOOB[k][0]
			o.hdr.SetControllen(len(c))
		}
	}
}

// sockaddrAddrPort converts a received sockaddr_in or sockaddr_in6.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == syscall.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	ip := netip.AddrFrom16(sa.Addr)
	if sa.Scope_id != 0 {
		ip = ip.WithZone(strconv.Itoa(int(sa.Scope_id)))
	}
	return netip.AddrPortFrom(ip, port)
}

// transientRecvError reports whether a recvmmsg error leaves the socket usable: errors
// reported for an earlier packet (ICMP unreachable, refused) or a short lack of memory.
func transientRecvError(err error) bool {
	for _, e := range []error{unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.ENOBUFS, unix.ENOMEM, unix.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
