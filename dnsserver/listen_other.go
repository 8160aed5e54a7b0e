//go:build !linux

package dnsserver

import "syscall"

// reusePortSupported is false outside Linux: the server reads one UDP socket.
const reusePortSupported = false

// udpControl sets nothing outside Linux; replies to a wildcard address leave from the address
// the route picks.
func udpControl(bool) func(network, address string, c syscall.RawConn) error { return nil }

// replyOOB has no control messages to echo outside Linux.
func replyOOB(dst, _ []byte) []byte { return dst[:0] }
