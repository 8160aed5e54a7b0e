package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrepareRunDir: a run directory of lodestar's own is created and accepted; one others
// could write to, or a symbolic link, is refused with a message naming it.
func TestPrepareRunDir(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "a", "run")
	if err := prepareRunDir(fresh); err != nil {
		t.Fatalf("a new directory: %v", err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm()&0o022 != 0 {
		t.Fatalf("created %v with mode %v", err, fi.Mode())
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(fresh, link); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{open: "writable by others", link: "not a directory"} {
		err := prepareRunDir(dir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("prepareRunDir(%s) = %v, want an error saying %q and naming it", dir, err, want)
		}
	}
	if d := defaultRunDir(); d == "" || (os.Geteuid() == 0 && d != "/run/lodestar") {
		t.Errorf("defaultRunDir() = %q", d)
	}
}
