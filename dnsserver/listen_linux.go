package dnsserver

import (
	"encoding/binary"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported: several UDP sockets share the port and the kernel spreads queries over
// them by source address and port.
const reusePortSupported = true

// udpControl sets SO_REUSEPORT on every UDP socket and, for a wildcard address, asks for the
// packets' destination address (IP_PKTINFO, IPV6_RECVPKTINFO) so replies leave from the address
// the query was sent to.
func udpControl(pktinfo bool) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		var opErr error
		err := c.Control(func(fd uintptr) {
			opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if opErr != nil || !pktinfo {
				return
			}
			if network == "udp4" {
				opErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			} else {
				// IPv4 packets on a dual-stack socket come with an IPv4-mapped IPV6_PKTINFO.
				opErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			}
		})
		if err != nil {
			return err
		}
		return opErr
	}
}

// replyOOB turns the control messages of a received packet into those of its reply: the
// packet-info messages, which set the reply's source address to the query's destination. The
// interface index is cleared (the route decides), except for IPv6 link-local addresses, which
// need it. It writes into dst and returns it.
func replyOOB(dst, oob []byte) []byte {
	dst = append(dst[:0], oob...)
	for off := 0; off+unix.SizeofCmsghdr <= len(dst); {
		h := dst[off:]
		var l int
		if unix.SizeofCmsghdr == 16 {
			l = int(binary.NativeEndian.Uint64(h))
		} else {
			l = int(binary.NativeEndian.Uint32(h))
		}
		level := int32(binary.NativeEndian.Uint32(h[unix.SizeofCmsghdr-8:]))
		typ := int32(binary.NativeEndian.Uint32(h[unix.SizeofCmsghdr-4:]))
		if l < unix.SizeofCmsghdr || off+l > len(dst) {
			return dst[:0]
		}
		data := h[unix.SizeofCmsghdr:l]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= 4:
			clear(data[:4]) // ipi_ifindex
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= 20:
			if !(data[0] == 0xfe && data[1]&0xc0 == 0x80) {
				clear(data[16:20]) // ipi6_ifindex
			}
		}
		off += unix.CmsgSpace(l - unix.SizeofCmsghdr)
	}
	return dst
}
