package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/haproxy"
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
	for dir, want := range map[string]string{open: "writable by others", link: "symbolic link"} {
		err := prepareRunDir(dir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("prepareRunDir(%s) = %v, want an error saying %q and naming it", dir, err, want)
		}
	}
	if d := defaultRunDir(); d == "" || (os.Geteuid() == 0 && d != "/run/lodestar") {
		t.Errorf("defaultRunDir() = %q", d)
	}
}

// Issue 12, item 13: the whole path to the run dir is checked. Under a directory everyone may
// write without the sticky bit, anyone could rename the run dir away and put a link in its
// place: refused, before anything is created there. Under a sticky one (as /tmp) others cannot
// rename what is ours: accepted. A symbolic link anywhere in the path is refused, and so is an
// ancestor that belongs to another user.
func TestPrepareRunDirChecksTheWholePath(t *testing.T) {
	base := t.TempDir()
	mkdir := func(name string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := mkdir("open", 0o777)
	sticky := mkdir("sticky", 0o777|os.ModeSticky)
	real := mkdir("real", 0o755)
	viaLink := filepath.Join(base, "via")
	if err := os.Symlink(real, viaLink); err != nil {
		t.Fatal(err)
	}

	if err := prepareRunDir(filepath.Join(sticky, "lodestar", "run")); err != nil {
		t.Errorf("under a sticky world-writable directory: %v", err)
	}
	for _, tc := range []struct {
		dir, want, names string
	}{
		{filepath.Join(open, "run"), "without the sticky bit", open},
		{filepath.Join(open, "deeper", "run"), "without the sticky bit", open},
		{filepath.Join(viaLink, "run"), "symbolic link", viaLink},
	} {
		err := prepareRunDir(tc.dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("prepareRunDir(%s) = %v, want an error saying %q and naming %s", tc.dir, err, tc.want, tc.names)
		}
		if _, err := os.Lstat(tc.dir); err == nil {
			t.Errorf("prepareRunDir(%s) created it before refusing", tc.dir)
		}
	}
	if os.Geteuid() == 0 {
		other := mkdir("other", 0o755)
		if err := os.Chown(other, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		err := prepareRunDir(filepath.Join(other, "run"))
		if err == nil || !strings.Contains(err.Error(), "uid 4242") {
			t.Errorf("under a directory of uid 4242: %v, want a refusal naming the uid", err)
		}
	}
}

// serve's run dir is pinned: once it runs, a swap of the directory for a link to another one
// does not redirect the files lodestar writes there.
func TestOpenRunDirPinsIt(t *testing.T) {
	base := t.TempDir()
	run, other, moved := filepath.Join(base, "run"), filepath.Join(base, "other"), filepath.Join(base, "moved")
	d, err := openRunDir(run)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(run, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, run); err != nil {
		t.Fatal(err)
	}
	if err := haproxy.WriteFileAtomic(filepath.Join(run, "haproxy.cfg.new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(moved, "haproxy.cfg.new")); err != nil {
		t.Errorf("the file did not land in the opened run dir: %v", err)
	}
	if ents, _ := os.ReadDir(other); len(ents) > 0 {
		t.Errorf("the link's target got %v", ents)
	}
}
