package discovery

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Registry owns the service registry. One goroutine (Run) applies every Update in the order
// sources sent them and publishes a new Snapshot through an atomic pointer; readers call
// Snapshot and never block the owner. Subscribers are told "something changed" through a
// one-slot channel (latest wins): a slow subscriber skips intermediate versions and never
// delays the owner or the other subscribers.
type Registry struct {
	updates chan Update
	cur     atomic.Pointer[Snapshot]
	log     *slog.Logger
	now     func() time.Time

	mu            sync.Mutex
	subs          map[*Subscription]struct{}
	sources       map[string]*SourceStatus
	statusChanged chan struct{} // closed and replaced on every ReportSync
}

// RegistryOption configures a Registry.
type RegistryOption func(*Registry)

// WithLogger sets the registry's logger.
func WithLogger(l *slog.Logger) RegistryOption { return func(r *Registry) { r.log = l } }

// WithQueue sets how many updates may wait for the owner goroutine before Send blocks.
func WithQueue(n int) RegistryOption {
	return func(r *Registry) { r.updates = make(chan Update, n) }
}

// NewRegistry returns a registry holding an empty snapshot (version 0).
func NewRegistry(opts ...RegistryOption) *Registry {
	r := &Registry{
		updates: make(chan Update, 4096),
		log:     slog.Default(),
		now:     time.Now,
		subs:    map[*Subscription]struct{}{},
		sources: map[string]*SourceStatus{},

		statusChanged: make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	r.cur.Store(&Snapshot{Time: r.now()})
	return r
}

// Snapshot returns the current snapshot. It never blocks and never returns nil.
func (r *Registry) Snapshot() *Snapshot { return r.cur.Load() }

// Send queues an update for the owner goroutine. It blocks only while the queue is full
// (backpressure on a source that outruns the registry) or until ctx ends.
func (r *Registry) Send(ctx context.Context, u Update) error {
	select {
	case r.updates <- u:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run applies updates until ctx ends. Updates that are already queued are applied together and
// published as one snapshot, so a burst of events costs one notification, not thousands.
func (r *Registry) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-r.updates:
			cur := r.Snapshot()
			st := state{apps: cur.Apps, mesos: cur.Mesos, marathon: cur.Marathon, rules: cur.Rules, tasks: cur.Tasks}
			var barriers []barrier
			changed := r.applyOne(&st, u, &barriers)
		drain:
			for i := 0; i < cap(r.updates); i++ {
				select {
				case u := <-r.updates:
					changed = r.applyOne(&st, u, &barriers) || changed
				default:
					break drain
				}
			}
			if changed {
				r.publish(cur, st)
			}
			for _, b := range barriers {
				close(b.done)
			}
		}
	}
}

func (r *Registry) applyOne(st *state, u Update, barriers *[]barrier) bool {
	if b, ok := u.(barrier); ok {
		*barriers = append(*barriers, b)
		return false
	}
	changed, err := u.apply(st)
	if err != nil {
		updateErrors.Inc()
		r.log.Warn("registry update rejected; the last good state stays", "update", describe(u), "err", err)
	}
	return changed
}

func (r *Registry) publish(prev *Snapshot, st state) {
	next := &Snapshot{
		Version:  prev.Version + 1,
		Time:     r.now(),
		Apps:     st.apps,
		Mesos:    st.mesos,
		Marathon: st.marathon,
		Rules:    st.rules,
		Tasks:    st.tasks,
	}
	r.cur.Store(next)
	snapshotVersion.Set(float64(next.Version))
	registryApps.Set(float64(next.Apps.Len()))
	registryTasks.Set(float64(next.Tasks))
	r.mu.Lock()
	for s := range r.subs {
		s.notify()
	}
	r.mu.Unlock()
}

// Subscribe returns a subscription that is notified after every new snapshot. Call Close when
// done with it.
func (r *Registry) Subscribe() *Subscription {
	s := &Subscription{c: make(chan struct{}, 1), r: r}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	return s
}

// Subscription is a latest-wins change notification. Receive from C, then read
// Registry.Snapshot: versions published while the subscriber was busy are skipped.
type Subscription struct {
	c chan struct{}
	r *Registry
}

// C is signalled (at most one pending signal) when a newer snapshot exists.
func (s *Subscription) C() <-chan struct{} { return s.c }

// Snapshot returns the registry's current snapshot.
func (s *Subscription) Snapshot() *Snapshot { return s.r.Snapshot() }

// WaitSynced blocks until every source of the registry has synced once (Registry.WaitSynced):
// a front end that must not act on a half-known cluster waits on it before its first snapshot.
func (s *Subscription) WaitSynced(ctx context.Context) error { return s.r.WaitSynced(ctx) }

// Close stops notifications.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	delete(s.r.subs, s)
	s.r.mu.Unlock()
}

func (s *Subscription) notify() {
	select {
	case s.c <- struct{}{}:
	default: // a signal is already pending; the subscriber will read the newest snapshot
	}
}

// WaitFor blocks until the current snapshot satisfies cond or ctx ends, and returns the
// snapshot that did. Tests and start-up code use it instead of sleeping.
func (r *Registry) WaitFor(ctx context.Context, cond func(*Snapshot) bool) (*Snapshot, error) {
	sub := r.Subscribe()
	defer sub.Close()
	for {
		if s := r.Snapshot(); cond(s) {
			return s, nil
		}
		select {
		case <-sub.C():
		case <-ctx.Done():
			return r.Snapshot(), ctx.Err()
		}
	}
}

// barrier is an update that changes nothing; the owner closes done once everything queued
// before it is published.
type barrier struct{ done chan struct{} }

func (b barrier) apply(*state) (bool, error) { return false, nil }

// Barrier returns once every update sent before it has been applied (and published, if it
// changed anything), or when ctx ends.
func (r *Registry) Barrier(ctx context.Context) error {
	b := barrier{done: make(chan struct{})}
	if err := r.Send(ctx, b); err != nil {
		return err
	}
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
