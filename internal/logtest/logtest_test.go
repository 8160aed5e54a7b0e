package logtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitSeesALineWrittenLater(t *testing.T) {
	log, buf := New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 1)
	go func() {
		line, err := buf.Wait(ctx, "reconnecting", "member=m2")
		if err != nil {
			t.Error(err)
		}
		got <- line
	}()
	log.Info("reconnecting", "member", "m1")
	log.Info("reconnecting", "member", "m2")
	if line := <-got; line == "" || !containsAll(line, "reconnecting", "member=m2") {
		t.Fatalf("Wait returned %q", line)
	}
	if n := len(buf.Lines("reconnecting")); n != 2 {
		t.Errorf("Lines found %d lines, want 2", n)
	}
}

func TestWaitGivesUpWithTheContext(t *testing.T) {
	_, buf := New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := buf.Wait(ctx, "never"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := (&Buffer{}).Wait(ctx, "never"); !errors.Is(err, context.Canceled) {
		t.Fatalf("zero Buffer: err = %v", err)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
