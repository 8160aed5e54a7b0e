package haproxy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

func TestParseAccessLog(t *testing.T) {
	good := map[string]AccessLog{
		"":                          {Kind: AccessLogOff},
		"off":                       {Kind: AccessLogOff},
		"stdout":                    {Kind: AccessLogStdout},
		"file:/var/log/haproxy.log": {Kind: AccessLogFile, Target: "/var/log/haproxy.log"},
		"/var/log/x/../haproxy.log": {Kind: AccessLogFile, Target: "/var/log/haproxy.log"},
		"syslog":                    {Kind: AccessLogSyslog},
		"syslog:udp://10.0.0.1:514": {Kind: AccessLogSyslog, Target: "udp://10.0.0.1:514"},
		"syslog:tcp://[::1]:601":    {Kind: AccessLogSyslog, Target: "tcp://[::1]:601"},
		"syslog:/dev/log":           {Kind: AccessLogSyslog, Target: "/dev/log"},
	}
	for in, want := range good {
		got, err := ParseAccessLog(in)
		if err != nil || got != want {
			t.Errorf("ParseAccessLog(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := ParseAccessLog(got.String()); err != nil || again != got {
			t.Errorf("ParseAccessLog(%q.String() = %q) = %+v, %v", in, got.String(), again, err)
		}
	}
	for _, bad := range []string{
		"file:relative.log", "haproxy.log", "syslog:10.0.0.1:514", "syslog:udp://10.0.0.1",
		"syslog:udp://:514", "syslog:udp://a/b:514", "stdout\nfile:/etc/passwd", "file:/tmp/a\x00b",
		"stderr", "syslog:http://x:1",
	} {
		if got, err := ParseAccessLog(bad); err == nil {
			t.Errorf("ParseAccessLog(%q) = %+v, want an error", bad, got)
		}
	}
}

// accessLogBody logs every request at info on HAProxy's stdout, as the default HAPROXY_HEAD
// does (there with format raw).
var accessLogBody = strings.Replace(oneBackend, "log global", "log stdout format short local0 info", 1)

// sendRequests sends n one-connection requests through h and fails on any error.
func sendRequests(t *testing.T, h *testHAProxy, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		h.mustGet("")
	}
}

func TestAccessLogOffKeepsLodestarLogFlatUnderLoad(t *testing.T) {
	b1 := haproxytest.Backend(t)
	off := AccessLog{Kind: AccessLogOff}
	h := startHAProxyWith(t, func(c *ProcessConfig) { c.AccessLog = &off }, accessLogBody, map[string]string{"$B1": b1.Addr})
	// HAProxy's own notices (stderr) still reach lodestar's log.
	if _, err := h.logs.Wait(h.ctx(), "level=INFO", "Loading success", "haproxy_pid="); err != nil {
		t.Fatalf("no 'Loading success' record: %v", err)
	}
	before := len(h.logs.String())
	const n = 400
	sendRequests(t, h, n)
	time.Sleep(200 * time.Millisecond) // let any relayed line arrive
	grown := len(h.logs.String()) - before
	if grown > 1000 || len(h.logs.Lines("GET / HTTP/1.1")) > 0 {
		t.Fatalf("lodestar's log grew by %d bytes over %d requests (request lines: %d), want no per-request growth",
			grown, n, len(h.logs.Lines("GET / HTTP/1.1")))
	}
}

func TestAccessLogFileGetsEveryRequest(t *testing.T) {
	b1 := haproxytest.Backend(t)
	path := filepath.Join(t.TempDir(), "access.log")
	file := AccessLog{Kind: AccessLogFile, Target: path}
	h := startHAProxyWith(t, func(c *ProcessConfig) { c.AccessLog = &file }, accessLogBody, map[string]string{"$B1": b1.Addr})
	const n = 50
	sendRequests(t, h, n)
	var lines int
	haproxytest.WaitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(path)
		lines = strings.Count(string(b), "fe be/s1 ")
		return lines >= n
	}, "every request in the access log file")
	if got := len(h.logs.Lines("GET / HTTP/1.1")); got > 0 {
		t.Fatalf("%d request lines reached lodestar's log as well", got)
	}
}

func TestAccessLogSyslogReceivesRequests(t *testing.T) {
	b1 := haproxytest.Backend(t)
	sock := filepath.Join(haproxytest.SocketDir(t), "syslog.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sl := AccessLog{Kind: AccessLogSyslog, Target: sock}
	h := startHAProxyWith(t, func(c *ProcessConfig) { c.AccessLog = &sl }, accessLogBody, map[string]string{"$B1": b1.Addr})
	sendRequests(t, h, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8192)
	for ctx.Err() == nil {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no request line on the syslog socket: %v", err)
		}
		if msg := string(buf[:n]); strings.Contains(msg, "GET / HTTP/1.1") {
			if !strings.HasPrefix(msg, "<134>") { // local0.info
				t.Fatalf("syslog message %q: want priority <134>", msg)
			}
			return
		}
	}
}

// TestRoutineProxyEventsAtDebug: the per-proxy lines of every reload are logged at debug, an
// event about one proxy that is not routine keeps its level.
func TestRoutineProxyEventsAtDebug(t *testing.T) {
	log, logs := logtest.New()
	p := &Process{log: log, out: newOutputRing(16)}
	p.readOutput(strings.NewReader(strings.Join([]string{
		"[WARNING]  (12) : Proxy app_80 stopped (cumulated conns: FE: 3, BE: 0).",
		"[WARNING]  (12) : Paused frontend marathon_http_in.",
		"[NOTICE]   (12) : Proxy app_81 started.",
		"[WARNING]  (12) : Proxy app_80 has no server available!",
	}, "\n")))
	for _, want := range [][]string{
		{"level=DEBUG", "Proxy app_80 stopped"},
		{"level=DEBUG", "Paused frontend marathon_http_in"},
		{"level=DEBUG", "Proxy app_81 started"},
		{"level=WARN", "Proxy app_80 has no server available!"},
	} {
		if len(logs.Lines(want...)) != 1 {
			t.Errorf("no log record with %q in:\n%s", want, logs.String())
		}
	}
}
