// Package logtest gives tests a log sink they can read and wait on while the code under test
// logs from its own goroutines.
package logtest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Buffer collects log output. It is safe for concurrent use; Wait blocks until a matching
// line is written, so tests wait on the log instead of sleeping.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every Write
}

// New returns a debug-level text logger writing to a new Buffer.
func New() (*slog.Logger, *Buffer) {
	b := &Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// Write appends p (slog's handlers write each record with one call).
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.changed != nil {
		close(b.changed)
	}
	b.changed = make(chan struct{})
	return len(p), nil
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail returns at most the last n bytes, for failure messages.
func (b *Buffer) Tail(n int) string {
	s := b.String()
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Lines returns the lines that contain every one of parts.
func (b *Buffer) Lines(parts ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(b.String(), "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Wait returns the first line containing every one of parts, waiting for it to be written
// until ctx ends.
func (b *Buffer) Wait(ctx context.Context, parts ...string) (string, error) {
	for {
		b.mu.Lock()
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if ls := b.Lines(parts...); len(ls) > 0 {
			return ls[0], nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}
