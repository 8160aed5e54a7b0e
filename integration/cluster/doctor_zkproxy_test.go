package cluster

import (
	"io"
	"net"
	"testing"
)

// answerOnce is a TCP listener on 127.0.0.1 that reads a four-letter word and answers with
// answer, like a ZooKeeper member (or what sits behind a proxy) would.
func answerOnce(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			_, _ = io.ReadFull(c, buf)
			_, _ = io.WriteString(c, answer)
			c.Close()
		}
	}()
	return l.Addr().String()
}

// TestDoctorZooKeeperProxy: a zk proxy is judged by what answers ruok through it: a live
// member (imok), a member that does not whitelist ruok, something else, or nothing.
func TestDoctorZooKeeperProxy(t *testing.T) {
	live, quiet, odd := answerOnce(t, "imok"), answerOnce(t, "ruok is not executed because it is not in the whitelist."), answerOnce(t, "HTTP/1.1 400 Bad Request\r\n")
	closed := answerOnce(t, "")
	dead := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	r := runDoctor(t, Config{Targets: Targets{Proxies: []Proxy{{"zk", live}, {"zk", quiet}, {"zk", odd}, {"zk", dead}, {"zk", closed}}}})
	want(t, r, CheckProxy, "zk="+live, SeverityOK, "reaches a live ZooKeeper member")
	want(t, r, CheckProxy, "zk="+quiet, SeverityOK, "not whitelisted")
	want(t, r, CheckProxy, "zk="+odd, SeverityError, `answers ruok with "HTTP/1.1 400 Bad Request"`)
	want(t, r, CheckProxy, "zk="+dead, SeverityError, "unreachable")
	want(t, r, CheckProxy, "zk="+closed, SeverityError, `answers ruok with ""`)
}
