package dnsserver

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTransientRecvErrors: errors a UDP socket reports for an earlier packet or a short lack of
// memory keep the server reading; a broken socket stops it.
func TestTransientRecvErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{unix.ECONNREFUSED, true},
		{fmt.Errorf("recvmmsg: %w", unix.ENOBUFS), true},
		{unix.EHOSTUNREACH, true},
		{unix.EBADF, false},
		{unix.ENOTSOCK, false},
	} {
		if got := transientRecvError(c.err); got != c.want {
			t.Errorf("transientRecvError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
