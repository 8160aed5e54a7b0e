// Package relay lets many lodestar replicas share one Marathon and Mesos subscription: a hub
// serves its registry as a resumable stream (Hub, GET /v1/stream), and a replica follows one of
// several hubs as its only source (Follower, --registry-from). The wire format is in wire.go.
//
// A replica is just another source: it sends what a hub published to its own registry, which
// drives its HAProxy and DNS as Marathon would. Replicas never write anywhere.
package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Defaults of HubConfig.
const (
	DefaultKeepAlive     = 10 * time.Second
	DefaultHistoryEvents = 4096
	DefaultHistoryBytes  = 64 << 20
	DefaultWriteTimeout  = 30 * time.Second
)

// Registry is what a hub reads: *discovery.Registry.
type Registry interface {
	Snapshot() *discovery.Snapshot
	Subscribe() *discovery.Subscription
}

// HubConfig configures a Hub; zero fields take the defaults.
type HubConfig struct {
	// KeepAlive is how often an idle stream gets a comment, so replicas can tell a quiet hub
	// from a dead connection.
	KeepAlive time.Duration
	// HistoryEvents and HistoryBytes bound the deltas kept for replicas that reconnect: one
	// that missed more gets a snapshot.
	HistoryEvents int
	HistoryBytes  int
	// WriteTimeout bounds one write to a subscriber: one that does not read for this long is
	// dropped (it reconnects and resumes).
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Hub serves a registry's versions to any number of subscribers. One goroutine (Run) turns
// every new snapshot into one encoded delta kept in a bounded history; each subscriber is only
// a position in that history, so the registry is never blocked and a subscriber costs the same
// whatever the registry's size. A subscriber whose position left the history gets a snapshot
// (encoded once per version, shared by every subscriber that needs it).
type Hub struct {
	reg Registry
	id  string
	cfg HubConfig
	log *slog.Logger

	mu        sync.Mutex
	cur       *discovery.Snapshot // the newest version turned into history; nil before Run
	history   []historyEvent      // contiguous: history[i].to == history[i+1].from
	histBytes int
	changed   chan struct{} // closed and replaced when cur changes
	started   chan struct{} // closed once cur is set
	done      chan struct{} // closed when Run ends: streams end with it
	runOnce   sync.Once
	// active is set by the first subscriber: until then no history is kept, so a lodestar
	// that nobody follows pays nothing for being able to serve the stream.
	active atomic.Bool

	snapMu   sync.Mutex
	snapVer  uint64
	snapData []byte
}

type historyEvent struct {
	from, to uint64
	frame    []byte
}

// NewHub returns a hub of reg with a fresh identity: versions are meaningful only to the hub
// instance that made them, so a replica resumes only with the same instance.
func NewHub(reg Registry, cfg HubConfig) *Hub {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.HistoryEvents <= 0 {
		cfg.HistoryEvents = DefaultHistoryEvents
	}
	if cfg.HistoryBytes <= 0 {
		cfg.HistoryBytes = DefaultHistoryBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Hub{
		reg: reg, id: newHubID(), cfg: cfg, log: cfg.Logger.With("component", "relay"),
		changed: make(chan struct{}), started: make(chan struct{}), done: make(chan struct{}),
	}
}

func newHubID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// ID is the hub's identity, the first part of its event ids.
func (h *Hub) ID() string { return h.id }

// Run follows the registry until ctx ends; open streams end with it. Start it once the
// registry has synced: the stream is served from then on (503 before).
func (h *Hub) Run(ctx context.Context) error {
	again := true
	h.runOnce.Do(func() { again = false })
	if again {
		return errors.New("relay: Hub.Run called twice")
	}
	defer close(h.done)
	sub := h.reg.Subscribe()
	defer sub.Close()
	h.observe(h.reg.Snapshot())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.C():
			h.observe(h.reg.Snapshot())
		}
	}
}

// observe makes next the current version, keeping the delta to it in the history.
func (h *Hub) observe(next *discovery.Snapshot) {
	prev := h.cur // only Run writes cur
	if prev != nil && next.Version == prev.Version {
		return
	}
	var ev historyEvent
	if prev != nil && h.active.Load() {
		start := time.Now()
		data, err := encodeDelta(h.id, prev, next)
		encodeSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			// Not expected (plain data); subscribers past it get a snapshot instead.
			h.log.Error("encoding a registry delta failed; subscribers get a snapshot", "err", err)
		}
		ev = historyEvent{from: prev.Version, to: next.Version, frame: data}
	}
	h.mu.Lock()
	switch {
	case prev == nil:
		close(h.started)
	case ev.frame == nil: // no subscriber yet, or the delta could not be encoded
		h.history, h.histBytes = nil, 0
	default:
		h.history = append(h.history, ev)
		h.histBytes += len(ev.frame)
		h.trimLocked()
	}
	h.cur = next
	close(h.changed)
	h.changed = make(chan struct{})
	historyEvents.Set(float64(len(h.history)))
	historyBytes.Set(float64(h.histBytes))
	h.mu.Unlock()
}

// trimLocked drops the oldest deltas past the history's bounds.
func (h *Hub) trimLocked() {
	n := 0
	for len(h.history)-n > h.cfg.HistoryEvents || (h.histBytes > h.cfg.HistoryBytes && len(h.history)-n > 1) {
		h.histBytes -= len(h.history[n].frame)
		h.history[n] = historyEvent{}
		n++
	}
	if n > 0 {
		h.history = h.history[n:]
	}
}

// sinceLocked is what a subscriber should be sent after version pos: the deltas to the current
// version (none when it is current), or ok false when the history no longer reaches back to
// pos and only a snapshot will do.
func (h *Hub) sinceLocked(pos uint64) (frames []historyEvent, ok bool) {
	if pos == h.cur.Version {
		return nil, true
	}
	i := sort.Search(len(h.history), func(i int) bool { return h.history[i].from >= pos })
	if i == len(h.history) || h.history[i].from != pos {
		return nil, false
	}
	// A copy: the subscriber writes these out after the lock is released, while trimLocked
	// clears dropped entries of the same array (so their frames can be collected).
	return slices.Clone(h.history[i:]), true
}

// snapshotFrame returns snap encoded as a snapshot event, encoding it once per version.
func (h *Hub) snapshotFrame(snap *discovery.Snapshot) ([]byte, error) {
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	if h.snapData != nil && h.snapVer == snap.Version {
		return h.snapData, nil
	}
	start := time.Now()
	data, err := encodeSnapshot(h.id, snap)
	encodeSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	h.snapVer, h.snapData = snap.Version, data
	return data, nil
}

// resumePoint is how a client names the last version it holds: the Last-Event-ID header (what SSE
// clients send on reconnecting), or the last_event_id query parameter.
func resumePoint(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	return r.URL.Query().Get("last_event_id")
}

// ServeHTTP serves GET /v1/stream: a snapshot (or, for a client resuming with an event id of
// this hub still in the history, only what it missed), then every change, until the client
// goes, a write times out, or the hub stops.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-h.started:
	default:
		// Run starts once the registry has synced: until then a replica must not take this
		// hub's (empty) registry for the cluster's. It tries another hub.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"the registry has not synced yet: no stream to serve"}` + "\n"))
		return
	}
	h.active.Store(true)
	// held: the client holds version pos of this hub; otherwise it gets a snapshot first.
	var pos uint64
	held := false
	if hub, ver, ok := parseEventID(resumePoint(r)); ok && hub == h.id {
		pos, held = ver, true
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	sub := &subscriber{rc: http.NewResponseController(w), w: w, timeout: h.cfg.WriteTimeout}
	if err := sub.flush(); err != nil {
		return
	}
	subscribers.Inc()
	defer subscribers.Dec()
	if err := h.stream(r.Context(), sub, pos, held); err != nil {
		dropped.Inc()
		h.log.Debug("registry stream subscriber dropped", "remote", r.RemoteAddr, "err", err)
	}
}

// stream sends everything after version pos (a snapshot when the client holds none), then
// waits for more.
func (h *Hub) stream(ctx context.Context, sub *subscriber, pos uint64, held bool) error {
	keepAlive := time.NewTicker(h.cfg.KeepAlive)
	defer keepAlive.Stop()
	for {
		h.mu.Lock()
		changed, cur := h.changed, h.cur
		events, ok := h.sinceLocked(pos)
		h.mu.Unlock()
		ok = ok && held
		switch {
		case !ok:
			data, err := h.snapshotFrame(cur)
			if err != nil {
				return err
			}
			if err := sub.write(data); err != nil {
				return err
			}
			sent.WithLabelValues(EventSnapshot).Inc()
			pos, held = cur.Version, true
		case len(events) > 0:
			for _, ev := range events {
				if err := sub.write(ev.frame); err != nil {
					return err
				}
			}
			sent.WithLabelValues(EventDelta).Add(float64(len(events)))
			pos = events[len(events)-1].to
		}
		if err := sub.flush(); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-keepAlive.C:
			if err := sub.write([]byte(": keepalive\n\n")); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		case <-h.done:
			return nil
		}
	}
}

// subscriber writes to one stream, every write bounded by the write timeout.
type subscriber struct {
	rc      *http.ResponseController
	w       http.ResponseWriter
	timeout time.Duration
}

func (s *subscriber) write(p []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	_, err := s.w.Write(p)
	return err
}

func (s *subscriber) flush() error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return s.rc.Flush()
}
