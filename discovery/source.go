package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Source feeds the registry: it runs until ctx ends, sending Updates to sink. A source never
// knows which front ends exist.
type Source interface {
	// Name identifies the source in logs, metrics and status ("marathon", "file", "mesos", …).
	Name() string
	Run(ctx context.Context, sink Sink) error
}

// Resyncer is a source that can be asked for a full sync now (marathon-lb's SIGHUP, the API's
// POST /v1/resync): Marathon refetches every app, files are read again, the Mesos masters are
// polled, the rules in ZooKeeper are read again. Resync returns once the sync is asked for, or,
// for a source that syncs on the spot (files), once it is done, with what went wrong.
type Resyncer interface {
	Resync(ctx context.Context) error
}

// Sink is what a source sends to; the Registry is one. Sources may read the current snapshot
// (for example to learn whether an event names an app the registry already knows).
type Sink interface {
	Send(ctx context.Context, u Update) error
	Snapshot() *Snapshot
	// ReportSync records the outcome of a sync attempt: err == nil for success.
	ReportSync(source string, err error)
}

// SourceStatus is the sync state of one source, for status pages and readiness.
type SourceStatus struct {
	Name string `json:"name"`
	// Synced is true once the source has completed a sync.
	Synced   bool      `json:"synced"`
	LastSync time.Time `json:"last_sync,omitzero"`
	// LastError is the error of the latest attempt, empty when it succeeded.
	LastError string    `json:"last_error,omitempty"`
	ErrorAt   time.Time `json:"error_at,omitzero"`
}

// RegisterSource makes a source known before its first sync, so readiness can wait for it.
func (r *Registry) RegisterSource(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sources[name] == nil {
		r.sources[name] = &SourceStatus{Name: name}
	}
}

// ReportSync records a sync attempt of a source.
func (r *Registry) ReportSync(source string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sources[source]
	if s == nil {
		s = &SourceStatus{Name: source}
		r.sources[source] = s
	}
	now := r.now()
	// Wake WaitSynced callers: sync reports change no snapshot, so subscribers are not told.
	close(r.statusChanged)
	r.statusChanged = make(chan struct{})
	if err != nil {
		s.LastError, s.ErrorAt = err.Error(), now
		syncErrors.WithLabelValues(source).Inc()
		return
	}
	s.Synced, s.LastSync, s.LastError = true, now, ""
	lastSync.WithLabelValues(source).Set(float64(now.Unix()))
}

// WaitSynced blocks until every registered source has synced once and the registry has
// applied what they sent by then, or until ctx ends (returning why not, with each source's
// last error).
func (r *Registry) WaitSynced(ctx context.Context) error {
	for {
		r.mu.Lock()
		changed := r.statusChanged
		r.mu.Unlock()
		if r.Synced() == nil {
			// A source reports its sync after queueing the update: let the owner apply it.
			return r.Barrier(ctx)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			var errs []error
			for _, s := range r.Sources() {
				if s.LastError != "" {
					errs = append(errs, fmt.Errorf("%s: %s", s.Name, s.LastError))
				}
			}
			return errors.Join(r.Synced(), errors.Join(errs...), ctx.Err())
		}
	}
}

// Sources returns the status of every source, sorted by name.
func (r *Registry) Sources() []SourceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SourceStatus, 0, len(r.sources))
	for _, s := range r.sources {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b SourceStatus) int { return cmpString(a.Name, b.Name) })
	return out
}

// Synced returns nil once every registered source has synced at least once, else an error
// naming those that have not.
func (r *Registry) Synced() error {
	var missing []string
	for _, s := range r.Sources() {
		if !s.Synced {
			missing = append(missing, s.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("waiting for the first sync of %v", missing)
	}
	return nil
}

// Failing returns an error naming each source that synced once but whose latest attempt
// failed (a Marathon partitioned after the first sync, a Mesos master gone), or nil. The
// registry still serves what those sources gave last.
func (r *Registry) Failing() error {
	var failing []string
	for _, s := range r.Sources() {
		if s.Synced && s.LastError != "" {
			failing = append(failing, s.Name+": "+s.LastError)
		}
	}
	if len(failing) == 0 {
		return nil
	}
	return fmt.Errorf("serving the last sync of %d source(s) whose latest attempt failed: %s",
		len(failing), strings.Join(failing, "; "))
}

// describe names an update in a log line without dumping its payload.
func describe(u Update) string {
	switch u := u.(type) {
	case ReplaceApps:
		return fmt.Sprintf("full sync of %d apps", len(u.Apps))
	case UpsertApp:
		return "app " + u.App.ID
	case RemoveApp:
		return "removal of app " + u.ID
	case TaskStatus:
		return fmt.Sprintf("status %s of task %s (app %s)", u.State, u.TaskID, u.AppID)
	case TaskHealth:
		return fmt.Sprintf("health alive=%t of task %s (app %s)", u.Alive, u.TaskID, u.AppID)
	case ReplaceMesosState:
		return "Mesos state"
	case ReplaceRules:
		return fmt.Sprintf("%d routing rules", len(u.Rules))
	case SetMarathonLeader:
		return "Marathon leader " + u.Leader
	case Mirror:
		return fmt.Sprintf("hub version (full %t): %d apps, %d removed", u.Full, len(u.Apps), len(u.Removed))
	}
	return fmt.Sprintf("%T", u)
}
