// Package sinktest records what a discovery.Source sends and reports, for the sources' tests.
//
// A Sink stands where the registry would: it records every update and sync report in order,
// then passes it on to the sink it wraps (usually a *discovery.Registry), if any. Tests wait on
// what was recorded with the Wait methods, which wake on every new record and give up when
// their context's deadline passes; they never sleep.
package sinktest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/lodestar-lb/lodestar/discovery"
)

// Sink is a discovery.Sink that records updates and sync reports. Create it with New. Its
// methods are safe for concurrent use.
type Sink struct {
	next discovery.Sink

	mu      sync.Mutex
	updates []discovery.Update
	reports []error
	changed chan struct{} // closed and replaced on every update and report
}

// New returns a Sink that passes what it records on to next; with next nil it only records,
// Send returns nil and Snapshot an empty snapshot.
func New(next discovery.Sink) *Sink {
	return &Sink{next: next, changed: make(chan struct{})}
}

// Send records u, then sends it to the wrapped sink and returns its error.
func (s *Sink) Send(ctx context.Context, u discovery.Update) error {
	s.mu.Lock()
	s.updates = append(s.updates, u)
	s.signalLocked()
	s.mu.Unlock()
	if s.next == nil {
		return nil
	}
	return s.next.Send(ctx, u)
}

// Snapshot returns the wrapped sink's snapshot, or an empty one.
func (s *Sink) Snapshot() *discovery.Snapshot {
	if s.next == nil {
		return &discovery.Snapshot{}
	}
	return s.next.Snapshot()
}

// ReportSync passes the report on to the wrapped sink first, so that a test woken by the
// record sees the report in the registry's status too, then records err.
func (s *Sink) ReportSync(source string, err error) {
	if s.next != nil {
		s.next.ReportSync(source, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, err)
	s.signalLocked()
}

func (s *Sink) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Sent returns every update sent so far, in order.
func (s *Sink) Sent() []discovery.Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates)
}

// ReportCount returns how many sync reports were made so far.
func (s *Sink) ReportCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reports)
}

// ReportsFrom returns the sync reports from index from on (nil entries are successes).
func (s *Sink) ReportsFrom(from int) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reports[min(from, len(s.reports)):])
}

// Summary describes the reports from index from on, for failure messages: how many, and the
// last few.
func (s *Sink) Summary(from int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.reports[min(from, len(s.reports)):]
	const last = 4
	var b strings.Builder
	fmt.Fprintf(&b, "%d since #%d", len(rs), from)
	if len(rs) > last {
		b.WriteString(", the last ones")
		rs = rs[len(rs)-last:]
	}
	for _, r := range rs {
		fmt.Fprintf(&b, "; %v", r)
	}
	return b.String()
}

// Wait waits until cond holds and returns nil, or returns ctx's error. cond is called with
// everything recorded so far, under the sink's lock, at once and after every new record: it
// must not keep the slices or call the sink.
func (s *Sink) Wait(ctx context.Context, cond func(updates []discovery.Update, reports []error) bool) error {
	for {
		s.mu.Lock()
		ok, changed := cond(s.updates, s.reports), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitReport waits for a sync report at index from or later that match accepts, and returns
// its index; -1 and ctx's error when none came in time.
func (s *Sink) WaitReport(ctx context.Context, from int, match func(error) bool) (int, error) {
	found := -1
	err := s.Wait(ctx, func(_ []discovery.Update, reports []error) bool {
		for i := from; i < len(reports); i++ {
			if match(reports[i]) {
				found = i
				return true
			}
		}
		return false
	})
	if err != nil {
		return -1, err
	}
	return found, nil
}

// WaitSent waits until an update that match accepts has been sent.
func (s *Sink) WaitSent(ctx context.Context, match func(discovery.Update) bool) error {
	i := 0 // updates before i did not match: each one is looked at once
	return s.Wait(ctx, func(updates []discovery.Update, _ []error) bool {
		for ; i < len(updates); i++ {
			if match(updates[i]) {
				return true
			}
		}
		return false
	})
}

// IsErr returns a report matcher that accepts a failure whose message holds every one of
// parts.
func IsErr(parts ...string) func(error) bool {
	return func(err error) bool {
		if err == nil {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				return false
			}
		}
		return true
	}
}

// IsSuccess is a report matcher that accepts a success.
func IsSuccess(err error) bool { return err == nil }
