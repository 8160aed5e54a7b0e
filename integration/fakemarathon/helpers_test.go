package fakemarathon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// start returns a started server that is closed when the test ends.
func start(t *testing.T, configure ...func(*Server)) *Server {
	t.Helper()
	s := New()
	for _, f := range configure {
		f(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func load(t *testing.T, s *Server, files ...string) {
	t.Helper()
	for _, f := range files {
		if err := s.LoadAppsFile("testdata/" + f); err != nil {
			t.Fatal(err)
		}
	}
}

// getJSON fetches path and decodes the JSON body into a generic value.
func getJSON(t *testing.T, s *Server, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(s.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp.StatusCode, body
}

// readFixture decodes a testdata file.
func readFixture(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sseFrame is one parsed SSE frame: an event or a comment (keepalive).
type sseFrame struct {
	Type    string
	Data    string
	Comment bool
}

func (f sseFrame) decode(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(f.Data), &m); err != nil {
		t.Fatalf("event %s: bad data %q: %v", f.Type, f.Data, err)
	}
	return m
}

// stream is an event stream read over a raw connection, so that tests can
// use read deadlines.
type stream struct {
	t    *testing.T
	conn net.Conn
	resp *http.Response
	body *bufio.Reader
}

// dialStream connects to /v2/events and sends the request without
// reading the response.
func dialStream(t *testing.T, s *Server, query url.Values) net.Conn {
	t.Helper()
	u, _ := url.Parse(s.URL())
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	path := "/v2/events"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, u.Host)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// openStream connects to /v2/events and reads the response headers.
func openStream(t *testing.T, s *Server, query url.Values) *stream {
	t.Helper()
	return readStream(t, dialStream(t, s, query))
}

func readStream(t *testing.T, conn net.Conn) *stream {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events: Content-Type %q", ct)
	}
	return &stream{t: t, conn: conn, resp: resp, body: bufio.NewReader(resp.Body)}
}

// frame reads the next frame, waiting at most d.
func (st *stream) frame(d time.Duration) (sseFrame, error) {
	_ = st.conn.SetReadDeadline(time.Now().Add(d))
	var f sseFrame
	seen := false
	for {
		line, err := st.body.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if seen {
				return f, nil
			}
		case strings.HasPrefix(line, ":"):
			f.Comment, seen = true, true
		case strings.HasPrefix(line, "event: "):
			f.Type, seen = strings.TrimPrefix(line, "event: "), true
		case strings.HasPrefix(line, "data: "):
			f.Data, seen = strings.TrimPrefix(line, "data: "), true
		default:
			return f, fmt.Errorf("unexpected line %q", line)
		}
	}
}

// event returns the next event, skipping keepalives.
func (st *stream) event() sseFrame {
	st.t.Helper()
	for {
		f, err := st.frame(5 * time.Second)
		if err != nil {
			st.t.Fatalf("reading event: %v", err)
		}
		if !f.Comment {
			return f
		}
	}
}

// expect reads the next event and checks its type.
func (st *stream) expect(eventType string) map[string]any {
	st.t.Helper()
	f := st.event()
	if f.Type != eventType {
		st.t.Fatalf("got event %s %s, want %s", f.Type, f.Data, eventType)
	}
	return f.decode(st.t)
}

// silence reads for d and returns whatever bytes arrived.
func silence(conn net.Conn, r io.Reader, d time.Duration) (string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	var got []byte
	buf := make([]byte, 512)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return string(got), nil
			}
			return string(got), err
		}
	}
}

func waitSubs(t *testing.T, s *Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitSubscribers(ctx, n); err != nil {
		t.Fatal(err)
	}
}
