package haproxy

import (
	"bufio"
	"fmt"
	"io"
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// AccessLog says where HAProxy's traffic log goes. The default HAPROXY_HEAD logs to HAProxy's
// own stdout (`log stdout format raw`), and HAProxy prints its process events and alerts on
// stderr: the supervisor relays stderr into lodestar's log and points stdout at the access
// log's destination, so one request never becomes one lodestar log record.
type AccessLog struct {
	// Kind is AccessLogOff, AccessLogStdout, AccessLogFile or AccessLogSyslog.
	Kind string
	// Target is the file of AccessLogFile, the address of AccessLogSyslog ("" is the local
	// syslog socket; "udp://host:port", "tcp://host:port", or a unix datagram socket path).
	Target string
}

// Access log kinds.
const (
	AccessLogOff    = "off"
	AccessLogStdout = "stdout"
	AccessLogFile   = "file"
	AccessLogSyslog = "syslog"
)

// ParseAccessLog parses the --haproxy-access-log value: off, stdout, file:PATH (or an
// absolute PATH), syslog (the local /dev/log), syslog:udp://HOST:PORT, syslog:tcp://HOST:PORT
// or syslog:/PATH/TO/SOCKET.
func ParseAccessLog(v string) (AccessLog, error) {
	if strings.ContainsAny(v, "\x00\r\n") {
		return AccessLog{}, fmt.Errorf("access log %q: control characters are not allowed", v)
	}
	switch {
	case v == AccessLogOff || v == "":
		return AccessLog{Kind: AccessLogOff}, nil
	case v == AccessLogStdout:
		return AccessLog{Kind: AccessLogStdout}, nil
	case v == AccessLogSyslog:
		return AccessLog{Kind: AccessLogSyslog}, nil
	case strings.HasPrefix(v, "syslog:"):
		target := strings.TrimPrefix(v, "syslog:")
		if _, _, err := syslogAddress(target); err != nil {
			return AccessLog{}, fmt.Errorf("access log %q: %w", v, err)
		}
		return AccessLog{Kind: AccessLogSyslog, Target: target}, nil
	case strings.HasPrefix(v, "file:") || filepath.IsAbs(v):
		path := strings.TrimPrefix(v, "file:")
		if !filepath.IsAbs(path) {
			return AccessLog{}, fmt.Errorf("access log %q: the file must be an absolute path", v)
		}
		return AccessLog{Kind: AccessLogFile, Target: filepath.Clean(path)}, nil
	}
	return AccessLog{}, fmt.Errorf("access log %q: want off, stdout, file:/PATH, syslog, syslog:udp://HOST:PORT, syslog:tcp://HOST:PORT or syslog:/SOCKET", v)
}

// String is the flag form of l.
func (l AccessLog) String() string {
	switch l.Kind {
	case "", AccessLogOff:
		return AccessLogOff
	case AccessLogFile:
		return "file:" + l.Target
	case AccessLogSyslog:
		if l.Target == "" {
			return AccessLogSyslog
		}
		return "syslog:" + l.Target
	}
	return l.Kind
}

// syslogAddress splits a syslog target into log/syslog's network and address.
func syslogAddress(target string) (network, addr string, err error) {
	switch {
	case target == "":
		return "", "", nil
	case strings.HasPrefix(target, "/"):
		return "unixgram", filepath.Clean(target), nil
	case strings.HasPrefix(target, "udp://"), strings.HasPrefix(target, "tcp://"):
		network, addr = target[:3], target[len("udp://"):]
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || port == "" || strings.ContainsAny(host, "/@ ") {
			return "", "", fmt.Errorf("syslog address %q: want HOST:PORT", addr)
		}
		return network, addr, nil
	}
	return "", "", fmt.Errorf("syslog target %q: want udp://HOST:PORT, tcp://HOST:PORT or an absolute socket path", target)
}

// accessLogSink is HAProxy's stdout for one start: the file it writes to, and what to close
// once the master has started (the parent's copy) and once its output is drained.
type accessLogSink struct {
	file *os.File
	// afterStart is run once HAProxy holds its copy of file.
	afterStart func()
}

// open returns the descriptor HAProxy's stdout gets for l. For syslog, a pipe whose lines a
// goroutine forwards (HAProxy's `log stdout` cannot reach a syslog server by itself).
func (l AccessLog) open() (*accessLogSink, error) {
	switch l.Kind {
	case "", AccessLogOff:
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("access log off: %w", err)
		}
		return &accessLogSink{file: f, afterStart: func() { f.Close() }}, nil
	case AccessLogStdout:
		return &accessLogSink{file: os.Stdout, afterStart: func() {}}, nil
	case AccessLogFile:
		f, err := os.OpenFile(l.Target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("access log file: %w", err)
		}
		return &accessLogSink{file: f, afterStart: func() { f.Close() }}, nil
	case AccessLogSyslog:
		network, addr, _ := syslogAddress(l.Target)
		w, err := syslog.Dial(network, addr, syslog.LOG_INFO|syslog.LOG_LOCAL0, "haproxy")
		if err != nil {
			return nil, fmt.Errorf("access log syslog %s: %w", l.String(), err)
		}
		r, pw, err := os.Pipe()
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("access log pipe: %w", err)
		}
		go forwardLines(r, w)
		return &accessLogSink{file: pw, afterStart: func() { pw.Close() }}, nil
	}
	return nil, fmt.Errorf("access log kind %q unknown", l.Kind)
}

// forwardLines sends each line of r to w until every writer of the pipe closed it.
func forwardLines(r *os.File, w io.WriteCloser) {
	defer r.Close()
	defer w.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// A syslog server that went away loses lines; HAProxy must not block on it.
		w.Write(sc.Bytes())
	}
}
