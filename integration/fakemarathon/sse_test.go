package fakemarathon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStreamAttachedAndHeaders(t *testing.T) {
	s := start(t)
	st := openStream(t, s, nil)
	ev := st.expect("event_stream_attached")
	if ev["remoteAddress"] != "127.0.0.1" || ev["eventType"] != "event_stream_attached" {
		t.Errorf("attached event = %v", ev)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", ev["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	if s.Subscribers() != 1 || s.StreamConnects() != 1 {
		t.Errorf("Subscribers=%d StreamConnects=%d, want 1 1", s.Subscribers(), s.StreamConnects())
	}
	if got := s.Requests("/v2/events"); got != 1 {
		t.Errorf("Requests(/v2/events) = %d", got)
	}
}

// TestStreamWireFormat checks the exact bytes of an event and a keepalive
// against the fixture's format.
func TestStreamWireFormat(t *testing.T) {
	fixture, err := os.ReadFile("testdata/events.sse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fixture), "\n:\n\n") {
		t.Fatal("fixture has no keepalive; format assumption broken")
	}
	s := start(t, func(s *Server) { s.KeepAlive = 50 * time.Millisecond })
	conn := dialStream(t, s, url.Values{"event_type": {"app_terminated_event"}})
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Emit("app_terminated_event", map[string]any{"appId": "/x", "timestamp": "2017-07-19T17:43:00.000Z"}); err != nil {
		t.Fatal(err)
	}
	want := "event: app_terminated_event\n" +
		`data: {"appId":"/x","eventType":"app_terminated_event","timestamp":"2017-07-19T17:43:00.000Z"}` + "\n\n"
	body := bufio.NewReader(resp.Body)
	var got strings.Builder
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.Contains(got.String(), want) {
		b, err := body.ReadByte()
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got.String())
		}
		got.WriteByte(b)
	}
	// Then keepalives, each exactly ":\n\n".
	var ka strings.Builder
	for ka.Len() < 6 {
		b, err := body.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		ka.WriteByte(b)
	}
	if ka.String() != ":\n\n:\n\n" {
		t.Errorf("keepalives = %q", ka.String())
	}
}

func TestStreamBurstOrder(t *testing.T) {
	const n = 2000
	s := start(t)
	fast := openStream(t, s, nil)
	slow := openStream(t, s, nil)
	fast.expect("event_stream_attached")

	// Emit must not wait for readers: the slow stream is not read until
	// every event is emitted, and 2000 events of ~1 KiB overflow the
	// socket buffers.
	pad := strings.Repeat("x", 1024)
	emitted := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.Emit("burst", map[string]any{"seq": i, "pad": pad}); err != nil {
				emitted <- err
				return
			}
		}
		emitted <- nil
	}()
	for i := range n {
		ev := fast.expect("burst")
		if seq := int(ev["seq"].(float64)); seq != i {
			t.Fatalf("fast stream: event %d has seq %d", i, seq)
		}
	}
	select {
	case err := <-emitted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked on a slow stream")
	}
	slow.expect("event_stream_attached")
	for i := range n {
		ev := slow.expect("burst")
		if seq := int(ev["seq"].(float64)); seq != i {
			t.Fatalf("slow stream: event %d has seq %d", i, seq)
		}
	}
}

// TestStreamConcurrentEmitters checks that all streams see one global
// order even when events are emitted from several goroutines.
func TestStreamConcurrentEmitters(t *testing.T) {
	const emitters, each = 4, 500
	s := start(t)
	a, b := openStream(t, s, nil), openStream(t, s, nil)
	var wg sync.WaitGroup
	for g := range emitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Emit("e", map[string]any{"g": g, "i": i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	read := func(st *stream) []string {
		st.expect("event_stream_attached")
		out := make([]string, 0, emitters*each)
		last := map[float64]float64{}
		for range emitters * each {
			ev := st.expect("e")
			g, i := ev["g"].(float64), ev["i"].(float64)
			if prev, ok := last[g]; ok && i != prev+1 {
				t.Fatalf("emitter %v: %v after %v", g, i, prev)
			}
			last[g] = i
			out = append(out, fmt.Sprint(g, "/", i))
		}
		return out
	}
	oa := read(a)
	ob := read(b)
	wg.Wait()
	if !reflect.DeepEqual(oa, ob) {
		t.Error("streams saw different orders")
	}
}

func TestStreamFilter(t *testing.T) {
	s := start(t)
	filtered := openStream(t, s, url.Values{"event_type": {"status_update_event", "app_terminated_event"}})
	withAttached := openStream(t, s, url.Values{"event_type": {"event_stream_attached"}})
	all := openStream(t, s, nil)
	waitSubs(t, s, 3)

	for _, typ := range []string{"api_post_event", "status_update_event", "deployment_info", "app_terminated_event"} {
		if err := s.Emit(typ, map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Emit("event_stream_attached", map[string]any{"marker": true}); err != nil {
		t.Fatal(err)
	}
	filtered.expect("status_update_event")
	filtered.expect("app_terminated_event")
	if ev := withAttached.expect("event_stream_attached"); ev["remoteAddress"] != "127.0.0.1" {
		t.Errorf("first attached event = %v", ev)
	}
	if ev := withAttached.expect("event_stream_attached"); ev["marker"] != true {
		t.Errorf("second attached event = %v", ev)
	}
	all.expect("event_stream_attached")
	for _, typ := range []string{"api_post_event", "status_update_event", "deployment_info", "app_terminated_event", "event_stream_attached"} {
		all.expect(typ)
	}

	want := [][]string{{"status_update_event", "app_terminated_event"}, {"event_stream_attached"}, nil}
	if got := s.EventFilters(); !reflect.DeepEqual(got, want) {
		t.Errorf("EventFilters = %q, want %q", got, want)
	}
}

func TestStreamKeepAlive(t *testing.T) {
	s := start(t, func(s *Server) { s.KeepAlive = 50 * time.Millisecond })
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")
	for range 3 {
		f, err := st.frame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Comment || f.Type != "" || f.Data != "" {
			t.Fatalf("want keepalive, got %+v", f)
		}
	}

	// KeepAlive 0 disables keepalives.
	s.SetKeepAlive(0)
	quiet := openStream(t, s, nil)
	quiet.expect("event_stream_attached")
	got, err := silence(quiet.conn, quiet.body, 300*time.Millisecond)
	if err != nil || got != "" {
		t.Errorf("with keepalives off got %q, %v", got, err)
	}
}

func TestEmitRawAndEmitErrors(t *testing.T) {
	s := start(t)
	st := openStream(t, s, url.Values{"event_type": {"nothing"}})
	waitSubs(t, s, 1)
	s.EmitRaw("event: status_update_event\ndata: {\"trunc\n\n")
	f, err := st.frame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != "status_update_event" || f.Data != `{"trunc` {
		t.Errorf("raw frame = %+v", f)
	}
	if err := s.Emit("bad\ntype", nil); err == nil {
		t.Error("Emit accepted a newline in the event type")
	}
	if err := s.Emit("x", map[string]any{"f": func() {}}); err == nil {
		t.Error("Emit accepted an unmarshallable payload")
	}
}

func TestEventsNotAcceptable(t *testing.T) {
	s := start(t)
	req, _ := http.NewRequest("GET", s.URL()+"/v2/events", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotAcceptable || s.StreamConnects() != 0 {
		t.Errorf("status %d, connects %d", resp.StatusCode, s.StreamConnects())
	}
}

func TestCutStreams(t *testing.T) {
	s := start(t)
	a, b := openStream(t, s, nil), openStream(t, s, nil)
	a.expect("event_stream_attached")
	b.expect("event_stream_attached")
	s.CutStreams()
	if n := s.Subscribers(); n != 0 {
		t.Errorf("Subscribers after cut = %d", n)
	}
	for _, st := range []*stream{a, b} {
		for {
			f, err := st.frame(5 * time.Second)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || !f.Comment {
				t.Fatalf("want EOF, got %+v, %v", f, err)
			}
		}
	}
	c := openStream(t, s, nil)
	c.expect("event_stream_attached")
	waitSubs(t, s, 1)
	if s.StreamConnects() != 3 {
		t.Errorf("StreamConnects = %d", s.StreamConnects())
	}
}

// readUntil reads raw bytes from r until they contain want.
func readUntil(t *testing.T, conn net.Conn, r *bufio.Reader, want string) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got strings.Builder
	for !strings.Contains(got.String(), want) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("waiting for %q: %v (got %q)", want, err, got.String())
		}
		got.WriteByte(b)
	}
	return got.String()
}

func TestStallStreams(t *testing.T) {
	s := start(t, func(s *Server) { s.KeepAlive = 50 * time.Millisecond })

	// An open stream, read raw (the chunked body reader does not survive
	// read timeouts). Sync to just after a keepalive.
	conn := dialStream(t, s, nil)
	br := bufio.NewReader(conn)
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	readUntil(t, conn, br, "event_stream_attached")
	readUntil(t, conn, br, ":\n\n")

	s.StallStreams(true)
	if err := s.Emit("during_stall", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	// A stream connecting during the stall gets nothing, not even headers.
	late := dialStream(t, s, nil)
	waitSubs(t, s, 2)

	// Unstalled, 300ms would bring ~6 keepalives. At most one written
	// just before the stall may still arrive.
	got, err := silence(conn, br, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "event:") || strings.Count(got, ":\n\n") > 1 {
		t.Errorf("stalled stream received %q", got)
	}
	got, err = silence(late, late, 300*time.Millisecond)
	if err != nil || got != "" {
		t.Errorf("stream connected during stall received %q, %v", got, err)
	}

	s.StallStreams(false)
	if err := s.Emit("after_stall", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if got := readUntil(t, conn, br, "event: after_stall"); strings.Contains(got, "during_stall") {
		t.Errorf("event emitted during stall was delivered: %q", got)
	}
	st := readStream(t, late)
	st.expect("event_stream_attached")
	st.expect("after_stall")
}

func TestGoDownAndRestart(t *testing.T) {
	s := start(t)
	load(t, s, "marathon15_apps.json")
	st := openStream(t, s, nil)
	st.expect("event_stream_attached")
	url0 := s.URL()

	s.GoDown()
	for {
		f, err := st.frame(5 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("stream still open after GoDown")
			}
			break
		}
		if !f.Comment {
			t.Fatalf("unexpected event %+v", f)
		}
	}
	if s.Subscribers() != 0 {
		t.Errorf("Subscribers = %d", s.Subscribers())
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(url0, "http://")); err == nil {
		c.Close()
		t.Fatal("connection accepted while down")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err == nil {
		t.Error("Restart while running succeeded")
	}
	if s.URL() != url0 {
		t.Errorf("URL after restart = %s, want %s", s.URL(), url0)
	}
	code, body := getJSON(t, s, "/v2/apps")
	if code != 200 || len(body["apps"].([]any)) != 1 {
		t.Errorf("after restart: %d %v", code, body)
	}
	openStream(t, s, nil).expect("event_stream_attached")

	// Close ends everything too, and Restart works after it as well.
	s.Close()
	s.Close()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if code, _ := getJSON(t, s, "/v2/leader"); code != 200 {
		t.Errorf("leader after second restart: %d", code)
	}
}

func TestWaitSubscribersHonoursContext(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WaitSubscribers(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitSubscribers = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.WaitSubscribers(context.Background(), 2) }()
	openStream(t, s, nil)
	openStream(t, s, nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitSubscribers did not return")
	}
}
