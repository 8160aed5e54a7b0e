package marathon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/lodestar-lb/lodestar/discovery"
)

const (
	appsQuery = "?embed=apps.tasks&embed=apps.deployments&embed=apps.readiness"
	appQuery  = "?embed=app.tasks&embed=app.deployments&embed=app.readiness"
)

// session runs one connection to member m: open the event stream, full sync, then apply events
// in order until something fails. The stream is opened before the sync so that no event falls
// between the two; events that arrive during the sync wait in the stream and are applied after
// it (they are idempotent against the synced state). synced reports whether the full sync
// succeeded, which resets the reconnect backoff.
func (s *Source) session(ctx context.Context, m *url.URL, sink discovery.Sink) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// lastActive is the time of the last sign of life, as an offset from epoch: time.Since
	// reads the monotonic clock, so a step of the wall clock cannot fake idleness.
	epoch := time.Now()
	var lastActive atomic.Int64
	touch := func() { lastActive.Store(int64(time.Since(epoch))) }
	touch()
	frames, taken, streamErr, err := s.openStream(ctx, m, touch)
	if err != nil {
		return false, err
	}
	leader, leaderKnown := "", false
	if info, err := s.info(ctx, m); err == nil {
		s.log.Info("connected to Marathon", "member", m.String(), "version", info.Version,
			"leader", info.Leader, "framework", info.MarathonConfig.FrameworkName)
		leader, leaderKnown = info.Leader, true
	}
	// The leader goes first: the sync's report then covers it (WaitSynced's barrier).
	if leaderKnown {
		if err := s.sendLeader(ctx, sink, leader); err != nil {
			return false, err
		}
	}
	if err := s.fullSync(ctx, m, sink); err != nil {
		return false, err
	}
	name := m.String()
	s.connected.Store(&name)

	resync := time.NewTicker(s.cfg.Resync)
	defer resync.Stop()
	watchdog := time.NewTicker(max(s.cfg.IdleTimeout/4, time.Millisecond))
	defer watchdog.Stop()
	leaderCheck := time.NewTicker(s.cfg.LeaderCheck)
	defer leaderCheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case f, ok := <-frames:
			if !ok {
				return true, <-streamErr
			}
			taken(f)
			if err := s.handle(ctx, m, sink, f); err != nil {
				return true, err
			}
			touch()
		case <-resync.C:
			if err := s.fullSync(ctx, m, sink); err != nil {
				return true, err
			}
		case <-s.resync:
			if err := s.fullSync(ctx, m, sink); err != nil {
				return true, err
			}
		case <-watchdog.C:
			// Frames waiting for us mean the reader stopped because we were busy (a slow sync
			// while events piled up), not because Marathon went quiet; the frames touch it.
			if idle := time.Since(epoch) - time.Duration(lastActive.Load()); idle > s.cfg.IdleTimeout && len(frames) == 0 {
				return true, fmt.Errorf("%w: no byte for %s (keepalives included)", errIdle, idle.Round(time.Millisecond))
			}
		case <-leaderCheck.C:
			if err := s.checkLeader(ctx, m, sink); err != nil {
				return true, err
			}
		}
	}
}

// checkLeader sends the leader m names to the registry (when it changed), and ends the
// session with errSwitch when another configured member leads and answers. It asks nothing
// when the member was chosen without /v2/leader (s.leaderless).
func (s *Source) checkLeader(ctx context.Context, m *url.URL, sink discovery.Sink) error {
	if s.leaderless {
		return nil
	}
	// Each question is bounded by the idle timeout, not RequestTimeout: the check runs on the
	// session's loop, which reads no event and runs no idle watchdog meanwhile, so a
	// partitioned member (silent, not refusing) went unnoticed for a whole RequestTimeout.
	lctx, cancel := context.WithTimeout(ctx, s.cfg.IdleTimeout)
	leader, err := s.leaderOf(lctx, m)
	silent := errors.Is(lctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	if silent {
		return fmt.Errorf("leader check: %s/v2/leader did not answer within the idle timeout (%s): %w", m, s.cfg.IdleTimeout, err)
	}
	if err != nil {
		return err
	}
	if err := s.sendLeader(ctx, sink, leader); err != nil {
		return err
	}
	lm := s.memberFor(leader)
	if lm == nil || lm == m {
		return nil
	}
	lctx, cancel = context.WithTimeout(ctx, s.cfg.IdleTimeout)
	defer cancel()
	if _, err := s.leaderOf(lctx, lm); err != nil {
		return nil // the leader is not reachable from here: stay where we are
	}
	return &errSwitch{to: lm.String(), why: "it is the Marathon leader"}
}

// maxQueuedBytes bounds the frames read but not yet taken by the session. The queue holds up to
// 1024 frames so that a burst of small events does not stall the reader, but each may be up to
// maxEventSize: without a byte budget a busy session could let it fill with 16 GiB.
const maxQueuedBytes = 64 << 20

// openStream connects to /v2/events and starts a goroutine that parses frames into the
// returned channel, in order; the session calls taken with each frame it receives, which frees
// its bytes in the queue's budget. When the stream ends, the channel is closed and the reason
// is sent on streamErr.
func (s *Source) openStream(ctx context.Context, m *url.URL, touch func()) (<-chan frame, func(frame), <-chan error, error) {
	q := url.Values{"event_type": discovery.MarathonEventTypes}
	target := m.String() + "/v2/events?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	s.authorize(req)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := s.stream.Do(req)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("event stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, nil, nil, &statusError{url: answeredBy(target, resp), code: resp.StatusCode}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, nil, nil, fmt.Errorf("event stream %s: Content-Type %q, want text/event-stream", target, ct)
	}
	streamConnects.Inc()
	frames := make(chan frame, 1024)
	budget := semaphore.NewWeighted(maxQueuedBytes)
	weight := func(f frame) int64 { return min(max(f.size(), 1), maxQueuedBytes) }
	taken := func(f frame) { budget.Release(weight(f)) }
	streamErr := make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		defer close(frames)
		r := newSSEReader(resp.Body, touch)
		for {
			f, err := r.next()
			if err != nil {
				streamErr <- fmt.Errorf("event stream: %w", err)
				return
			}
			if err := budget.Acquire(ctx, weight(f)); err != nil {
				streamErr <- err
				return
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				streamErr <- ctx.Err()
				return
			}
		}
	}()
	return frames, taken, streamErr, nil
}

// answeredBy names the URL a request went to, and the one that answered it when a redirect was
// followed (a standby sends /v2/events to the leader).
func answeredBy(target string, resp *http.Response) string {
	if resp.Request != nil && resp.Request.URL.String() != target {
		return target + " (redirected to " + resp.Request.URL.String() + ")"
	}
	return target
}

// handle applies one event. Only failures to talk to Marathon end the session; a malformed
// event is logged and skipped (the periodic full sync repairs whatever it would have changed).
func (s *Source) handle(ctx context.Context, m *url.URL, sink discovery.Sink, f frame) error {
	ev, err := discovery.DecodeMarathonEvent(f.Event, f.Data)
	if err != nil {
		eventErrors.Inc()
		s.log.Error("bad Marathon event skipped", "type", f.Event, "err", err, "data", truncate(f.Data, 300))
		return nil
	}
	events.WithLabelValues(eventLabel(f.Event, ev.Ignored)).Inc()
	switch {
	case ev.Ignored:
		s.log.Debug("Marathon event ignored", "type", f.Event)
		return nil
	case ev.Resync:
		s.log.Debug("Marathon event names no app; full sync", "type", f.Event)
		return s.fullSync(ctx, m, sink)
	case len(ev.Refetch) > 0:
		for _, id := range ev.Refetch {
			if err := s.refetch(ctx, m, sink, id); err != nil {
				return err
			}
		}
		return nil
	}
	if th, ok := ev.Update.(discovery.TaskHealth); ok && th.Alive && s.known[th.AppID] {
		if a := sink.Snapshot().App(th.AppID); a != nil && len(a.HealthChecks) > 1 {
			// Marathon sends one event per health check that flips, without saying which: one
			// check passing again says nothing of the others. The app's results do.
			s.log.Debug("a health check passes again; reading the app's results for its other checks", "app", th.AppID, "task", th.TaskID)
			return s.refetch(ctx, m, sink, th.AppID)
		}
	}
	if st, ok := ev.Update.(discovery.TaskStatus); ok && discovery.IsTerminal(st.State) && !s.known[st.AppID] {
		s.log.Debug("end of a task of an app not known (already removed); nothing to do", "task", st.TaskID, "app", st.AppID)
		return nil
	}
	if appID := taskAppID(ev.Update); appID != "" && !s.known[appID] {
		if s.gone[appID] {
			// Tasks of a deleted app keep reporting while Mesos kills them.
			s.log.Debug("event for a task of a removed app; nothing to do", "type", f.Event, "app", appID)
			return nil
		}
		// A task of an app we have not seen (created since the last sync): fetch the app; its
		// definition comes with the task, and the event is applied after it either way.
		s.log.Info("event for an app not yet known; fetching it", "type", f.Event, "app", appID)
		if err := s.refetch(ctx, m, sink, appID); err != nil {
			return err
		}
	}
	return sink.Send(ctx, ev.Update)
}

func taskAppID(u discovery.Update) string {
	switch u := u.(type) {
	case discovery.TaskStatus:
		return u.AppID
	case discovery.TaskHealth:
		return u.AppID
	}
	return ""
}

// fullSync replaces every app with GET /v2/apps. An app Marathon returns but that cannot be
// decoded keeps its last good version: one bad app must not make the others, or itself, vanish.
func (s *Source) fullSync(ctx context.Context, m *url.URL, sink discovery.Sink) error {
	start := time.Now()
	body, err := s.get(ctx, m, "/v2/apps"+appsQuery)
	if err != nil {
		return fmt.Errorf("full sync: %w", err)
	}
	apps, appErrs, err := discovery.DecodeMarathonApps(body)
	if err != nil {
		return fmt.Errorf("full sync from %s: %w", m, err)
	}
	var keep []string
	for _, e := range appErrs {
		s.log.Error("Marathon app skipped; keeping its last good version", "err", e)
		var ae *discovery.AppError
		if errors.As(e, &ae) {
			keep = append(keep, ae.AppID)
		}
	}
	known := make(map[string]bool, len(apps)+len(keep))
	for _, a := range apps {
		known[a.ID] = true
	}
	for _, id := range keep {
		known[id] = true
	}
	if err := sink.Send(ctx, discovery.ReplaceApps{Apps: apps, Keep: keep}); err != nil {
		return err
	}
	s.known = known
	clear(s.gone)
	sink.ReportSync(s.Name(), nil)
	syncs.Inc()
	syncDuration.Observe(time.Since(start).Seconds())
	s.log.Debug("full sync", "apps", len(apps), "bad_apps", len(appErrs), "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// refetch reads one app again: a 404 means it is gone.
func (s *Source) refetch(ctx context.Context, m *url.URL, sink discovery.Sink, id string) error {
	refetches.Inc()
	body, err := s.get(ctx, m, "/v2/apps"+escapeAppID(id)+appQuery)
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusNotFound {
		delete(s.known, id)
		s.gone[id] = true
		return sink.Send(ctx, discovery.RemoveApp{ID: id})
	}
	if err != nil {
		return fmt.Errorf("refetch of app %s: %w", id, err)
	}
	apps, appErrs, err := discovery.DecodeMarathonApps(body)
	if err == nil && len(appErrs) > 0 {
		err = appErrs[0]
	}
	if err == nil && (len(apps) != 1 || apps[0].ID != id) {
		err = fmt.Errorf("the Marathon answer holds %d apps, not just %s", len(apps), id)
	}
	if err != nil {
		// Keep the last good version of the app; the next full sync retries.
		s.log.Error("Marathon app skipped; keeping its last good version", "app", id, "err", err)
		return nil
	}
	s.known[id] = true
	delete(s.gone, id)
	return sink.Send(ctx, discovery.UpsertApp{App: apps[0]})
}

// escapeAppID escapes each segment of "/group/app" for use in a URL path.
func escapeAppID(id string) string {
	parts := strings.Split(strings.TrimPrefix(id, "/"), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/" + strings.Join(parts, "/")
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
