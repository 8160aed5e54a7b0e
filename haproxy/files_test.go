package haproxy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := WriteFileAtomic(path, []byte("first\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// A reader holding the old file keeps reading the old content: the new one is renamed over.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := WriteFileAtomic(path, []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "second\n" {
		t.Fatalf("content %q %v", got, err)
	}
	buf := make([]byte, 16)
	if n, _ := old.Read(buf); string(buf[:n]) != "first\n" {
		t.Fatalf("the open old file reads %q: it was rewritten in place", buf[:n])
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v, want 0600", fi.Mode(), err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("directory holds %v (%v), want only haproxy.cfg: a temp file was left", ents, err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x.cfg"), []byte("x"), 0o644); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}
