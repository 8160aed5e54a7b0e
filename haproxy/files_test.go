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

// Issue 12, item 13: once the run dir is opened and pinned, swapping it for a symbolic link to
// another directory does not redirect lodestar's writes: they land in the directory that was
// opened (through its handle), and nothing is created in the link's target.
func TestPinnedDirIgnoresASwapForALink(t *testing.T) {
	base := t.TempDir()
	run := filepath.Join(base, "run")
	other := filepath.Join(base, "other")
	for _, d := range []string{run, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenDir(run)
	if err != nil {
		t.Fatal(err)
	}
	d.Pin()
	defer d.Close()
	moved := filepath.Join(base, "run.moved")
	if err := os.Rename(run, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, run); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(run, "haproxy.cfg.new"), []byte("global\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(moved, "haproxy.cfg.new")); err != nil || string(got) != "global\n" {
		t.Errorf("the opened directory holds %q (%v), want the file written", got, err)
	}
	if ents, _ := os.ReadDir(other); len(ents) > 0 {
		t.Errorf("the link's target got %v", ents)
	}
	// Unpinned, the package-level function writes by path again.
	d.Close()
	if err := WriteFileAtomic(filepath.Join(moved, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDirRefusesALink(t *testing.T) {
	base := t.TempDir()
	link := filepath.Join(base, "link")
	if err := os.Symlink(base, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(link); err == nil {
		t.Fatal("OpenDir followed a symbolic link")
	}
	d, err := OpenDir(base)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, name := range []string{"", ".", "..", "a/b"} {
		if err := d.WriteFileAtomic(name, nil, 0o644); err == nil {
			t.Errorf("WriteFileAtomic(%q) accepted a name that is not a file in the directory", name)
		}
	}
}
