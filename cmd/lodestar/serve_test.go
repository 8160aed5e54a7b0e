package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// resyncSource is a source that records Resync calls and fails them with err.
type resyncSource struct {
	name  string
	calls int
	err   error
}

func (s *resyncSource) Name() string                              { return s.name }
func (s *resyncSource) Run(context.Context, discovery.Sink) error { return nil }
func (s *resyncSource) Resync(context.Context) error              { s.calls++; return s.err }

// plainSource cannot resync.
type plainSource struct{}

func (plainSource) Name() string                              { return "plain" }
func (plainSource) Run(context.Context, discovery.Sink) error { return nil }

// TestResyncAsksEverySource: POST /v1/resync reaches every source that is a
// discovery.Resyncer, skips the others, and names the source whose resync failed.
func TestResyncAsksEverySource(t *testing.T) {
	a, b := &resyncSource{name: "a"}, &resyncSource{name: "b"}
	if err := resync(context.Background(), []discovery.Source{a, plainSource{}, b}); err != nil {
		t.Fatal(err)
	}
	if a.calls != 1 || b.calls != 1 {
		t.Errorf("Resync calls: a %d, b %d; want 1 each", a.calls, b.calls)
	}
	bad := &resyncSource{name: "file", err: errors.New("apps.json: unexpected EOF")}
	err := resync(context.Background(), []discovery.Source{bad, a})
	if err == nil || !strings.Contains(err.Error(), "file: apps.json: unexpected EOF") {
		t.Errorf("resync = %v, want the failing source named", err)
	}
}
