package sinktest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRecordsAndForwards: updates and reports are recorded in order and reach the registry
// the sink wraps; the wait helpers wake on records made by another goroutine.
func TestRecordsAndForwards(t *testing.T) {
	reg := discovery.NewRegistry()
	reg.RegisterSource("src")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = reg.Run(ctx) }()
	s := New(reg)

	go func() {
		s.ReportSync("src", errors.New("master 127.0.0.1:5050: refused"))
		_ = s.Send(ctx, discovery.RemoveApp{ID: "/a"})
		s.ReportSync("src", nil)
	}()
	i, err := s.WaitReport(waitCtx(t), 0, IsSuccess)
	if err != nil || i != 1 {
		t.Fatalf("WaitReport(success) = %d, %v; want 1, nil", i, err)
	}
	if i, err := s.WaitReport(waitCtx(t), 0, IsErr("127.0.0.1:5050", "refused")); err != nil || i != 0 {
		t.Fatalf("WaitReport(error) = %d, %v; want 0, nil", i, err)
	}
	if err := s.WaitSent(waitCtx(t), func(u discovery.Update) bool { return u == discovery.RemoveApp{ID: "/a"} }); err != nil {
		t.Fatal(err)
	}
	if n, sent := s.ReportCount(), s.Sent(); n != 2 || len(sent) != 1 {
		t.Fatalf("%d reports, %d updates; want 2, 1", n, len(sent))
	}
	if rs := s.ReportsFrom(1); len(rs) != 1 || rs[0] != nil {
		t.Fatalf("ReportsFrom(1) = %v, want [nil]", rs)
	}
	if sum := s.Summary(0); !strings.Contains(sum, "2 since #0") || !strings.Contains(sum, "refused") {
		t.Errorf("Summary(0) = %q", sum)
	}
	st := reg.Sources()[0]
	if !st.Synced || st.LastError != "" {
		t.Errorf("registry status %+v: want the reports forwarded", st)
	}
	if s.Snapshot() == nil {
		t.Error("Snapshot() = nil")
	}
}

// TestWaitEndsWithItsContext: a wait for something that never comes returns the context's
// error; a sink without a next one only records.
func TestWaitEndsWithItsContext(t *testing.T) {
	s := New(nil)
	if err := s.Send(context.Background(), discovery.RemoveApp{ID: "/a"}); err != nil {
		t.Fatal(err)
	}
	if s.Snapshot() == nil {
		t.Fatal("Snapshot() = nil without a next sink")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if i, err := s.WaitReport(ctx, 0, IsSuccess); !errors.Is(err, context.DeadlineExceeded) || i != -1 {
		t.Fatalf("WaitReport = %d, %v; want -1, deadline exceeded", i, err)
	}
	if IsErr("x")(nil) || !IsErr()(errors.New("y")) || IsErr("x")(errors.New("y")) {
		t.Error("IsErr matches wrongly")
	}
}
