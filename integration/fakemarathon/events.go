package fakemarathon

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// keepAliveFrame is what Marathon sends on an idle stream: an empty SSE
// comment line followed by a blank line.
const keepAliveFrame = ":\n\n"

// stallBarrierTimeout bounds how long StallStreams waits for a write that
// is already in progress (blocked on a client that does not read).
const stallBarrierTimeout = time.Second

// client is one connected event stream.
//
// Emit appends frames to queue under mu and never blocks; the stream's own
// handler goroutine drains the queue to the connection. So a slow reader
// delays only itself, and every client gets the frames in emission order.
type client struct {
	filter map[string]bool // nil: every event type
	wake   chan struct{}   // buffered(1): queue grew or stall ended
	cut    chan struct{}   // closed to end the stream
	once   sync.Once
	// writing is held (a one-slot semaphore) by the handler while it
	// checks for a stall and writes; StallStreams takes it as a barrier so
	// that nothing is written once it returns.
	writing chan struct{}

	mu    sync.Mutex
	queue [][]byte
}

func newClient(filter map[string]bool) *client {
	return &client{
		filter:  filter,
		wake:    make(chan struct{}, 1),
		cut:     make(chan struct{}),
		writing: make(chan struct{}, 1),
	}
}

func (c *client) wants(eventType string) bool {
	return c.filter == nil || c.filter[eventType]
}

func (c *client) push(frame []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, frame)
	c.mu.Unlock()
	c.notify()
}

func (c *client) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *client) take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

func (c *client) close() { c.once.Do(func() { close(c.cut) }) }

// frame formats one SSE event.
func frame(eventType string, data []byte) []byte {
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", eventType, data)
}

// Emit sends an event of eventType to every connected stream that wants it.
// payload is marshalled to one JSON line; if it is a map[string]any without
// "eventType" or "timestamp", those are added (to a copy).
func (s *Server) Emit(eventType string, payload any) error {
	if eventType == "" || strings.ContainsAny(eventType, "\r\n") {
		return fmt.Errorf("fakemarathon: bad event type %q", eventType)
	}
	if m, ok := payload.(map[string]any); ok {
		c := make(map[string]any, len(m)+2)
		for k, v := range m {
			c[k] = v
		}
		if _, ok := c["eventType"]; !ok {
			c["eventType"] = eventType
		}
		if _, ok := c["timestamp"]; !ok {
			c["timestamp"] = now()
		}
		payload = c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.emitLocked(eventType, payload)
}

// EmitRaw writes frame verbatim to every connected stream, ignoring
// filters (for truncated or garbage frame tests).
func (s *Server) EmitRaw(frame string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled.Load() {
		return
	}
	b := []byte(frame)
	for c := range s.clients {
		c.push(b)
	}
}

// emitLocked marshals and queues an event. Holding mu while queueing to
// every client gives all clients the same global order.
func (s *Server) emitLocked(eventType string, payload any) error {
	data, err := marshal(payload)
	if err != nil {
		return fmt.Errorf("fakemarathon: marshal %s: %w", eventType, err)
	}
	if s.stalled.Load() {
		return nil // partitioned: the event is lost for every stream
	}
	f := frame(eventType, data)
	for c := range s.clients {
		if c.wants(eventType) {
			c.push(f)
		}
	}
	return nil
}

// notifySubsLocked wakes WaitSubscribers callers.
func (s *Server) notifySubsLocked() {
	close(s.subsChanged)
	s.subsChanged = make(chan struct{})
}

// detachAllLocked unregisters every stream and returns them (to be closed
// outside mu).
func (s *Server) detachAllLocked() []*client {
	out := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		out = append(out, c)
	}
	clear(s.clients)
	if len(out) > 0 {
		s.notifySubsLocked()
	}
	return out
}

// CutStreams closes every open event stream; clients see EOF. The streams
// are unregistered before it returns, so Subscribers drops at once and
// WaitSubscribers then waits for reconnections.
func (s *Server) CutStreams() {
	s.mu.Lock()
	clients := s.detachAllLocked()
	s.mu.Unlock()
	for _, c := range clients {
		c.close()
	}
}

// StallStreams(true) partitions the event streams: connections stay open
// but nothing at all is written to them: no events, no keepalives, and no
// response headers for streams that connect meanwhile (these still count
// in Subscribers and StreamConnects once their request arrives). Events
// emitted while stalled, and those still queued, are lost. When it returns
// no stream is writing any more (unless a write has been blocked for over
// a second on a client that does not read). StallStreams(false) resumes:
// keepalives and new events flow again.
func (s *Server) StallStreams(on bool) {
	s.mu.Lock()
	s.stalled.Store(on)
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()

	if !on {
		for _, c := range clients {
			c.notify()
		}
		return
	}
	deadline := time.NewTimer(stallBarrierTimeout)
	defer deadline.Stop()
	for _, c := range clients {
		select {
		case c.writing <- struct{}{}:
			c.take() // drop what was queued but not yet written
			<-c.writing
		case <-deadline.C:
			return
		}
	}
}

// handleEvents serves GET /v2/events as Marathon's SSE bus.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if accept := r.Header.Get("Accept"); accept != "" &&
		!strings.Contains(accept, "text/event-stream") && !strings.Contains(accept, "*/*") {
		writeJSON(w, http.StatusNotAcceptable, map[string]any{"message": "Not Acceptable"})
		return
	}
	types := r.URL.Query()["event_type"]
	var filter map[string]bool
	if len(types) > 0 {
		filter = make(map[string]bool, len(types))
		for _, t := range types {
			filter[t] = true
		}
	}
	c := newClient(filter)
	if c.wants("event_stream_attached") {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		data, _ := marshal(map[string]any{
			"remoteAddress": host,
			"eventType":     "event_stream_attached",
			"timestamp":     now(),
		})
		c.queue = append(c.queue, frame("event_stream_attached", data))
	}

	s.mu.Lock()
	if s.down {
		// GoDown has already detached the streams; do not register.
		s.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	s.clients[c] = struct{}{}
	s.connects++
	s.filters = append(s.filters, types)
	keepAlive := s.keepAlive
	s.notifySubsLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, ok := s.clients[c]; ok {
			delete(s.clients, c)
			s.notifySubsLocked()
		}
		s.mu.Unlock()
	}()

	var tick <-chan time.Time
	if keepAlive > 0 {
		t := time.NewTicker(keepAlive)
		defer t.Stop()
		tick = t.C
	}
	rc := http.NewResponseController(w)
	started, keepAliveDue := false, false
	for {
		if !s.writeFrames(w, rc, c, &started, keepAliveDue) {
			return
		}
		keepAliveDue = false
		select {
		case <-c.cut:
			if s.stalled.Load() {
				// Not even the end of the response may be written: drop the
				// connection instead.
				panic(http.ErrAbortHandler)
			}
			return
		case <-r.Context().Done():
			return
		case <-c.wake:
		case <-tick:
			keepAliveDue = true
		}
	}
}

// writeFrames writes the response headers (first time), the queued frames
// and, if due, a keepalive, unless the streams are stalled. It reports
// false when the connection failed.
func (s *Server) writeFrames(w http.ResponseWriter, rc *http.ResponseController, c *client, started *bool, keepAliveDue bool) bool {
	c.writing <- struct{}{}
	defer func() { <-c.writing }()
	if s.stalled.Load() {
		return true
	}
	if !*started {
		*started = true
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		w.WriteHeader(http.StatusOK)
	}
	frames := c.take()
	if keepAliveDue {
		frames = append(frames, []byte(keepAliveFrame))
	}
	for _, f := range frames {
		if _, err := w.Write(f); err != nil {
			return false
		}
	}
	return rc.Flush() == nil
}
