package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lodestar-lb/lodestar/internal/scalegen"
)

// renderLodestar writes what `haproxy -c` needs and counts every generated task's server.
func TestRenderLodestar(t *testing.T) {
	dir := t.TempDir()
	spec := scalegen.Spec{Apps: 20, Tasks: 3, Shape: scalegen.VHostHTTP, Loopback: true}
	r, err := renderLodestar(spec, dir, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(r.Path)
	if err != nil || len(data) != r.Bytes || r.Bytes == 0 {
		t.Fatalf("config %s: %d bytes read (%v), %d reported", r.Path, len(data), err, r.Bytes)
	}
	if _, err := os.Stat(filepath.Join(dir, "default.pem")); err != nil {
		t.Errorf("no certificate for the HTTPS frontend: %v", err)
	}
	c := r.Counts
	if c.Backends < 20 || c.Frontends < 20 {
		t.Errorf("counts %+v: want a frontend and a backend per app", c)
	}
	// Every task is a checked server that is not a spare slot.
	if c.LiveChecked != 60 {
		t.Errorf("counts %+v: %d live checked servers, want 60", c, c.LiveChecked)
	}
	if r.BuildRender <= 0 {
		t.Errorf("build+render time %v", r.BuildRender)
	}
}
