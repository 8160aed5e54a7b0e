package haproxy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// WriteFileAtomic replaces path with data so that a reader (HAProxy, a reload, a crash in the
// middle) sees either the old file or the new one, never a torn one: the data goes to a temporary
// file in the same directory, is fsynced, gets perm, and is renamed over path; the directory is
// fsynced last so the rename itself survives a power cut. A file directly in a pinned Dir (the
// run dir) is written through the Dir's handle.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if d := pinnedDir(path); d != nil {
		return d.WriteFileAtomic(filepath.Base(path), data, perm)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmpName, path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		// Best effort: some filesystems refuse to fsync a directory; the rename already happened.
		d.Sync()
		d.Close()
	}
	return nil
}

// Dir is a directory opened once, by handle (O_DIRECTORY|O_NOFOLLOW): files written through it
// land in that directory even if its path is later replaced by a symbolic link to another one.
// lodestar opens its run dir as a Dir at start and pins it, so that every WriteFileAtomic into
// the run dir goes through the handle.
type Dir struct {
	path  string
	fd    int
	close sync.Once
}

// OpenDir opens path, which must be a directory and not a symbolic link.
func OpenDir(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", path, err)
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open directory %s (a directory, not a symbolic link): %w", abs, err)
	}
	return &Dir{path: abs, fd: fd}, nil
}

// Path returns the directory's absolute path as it was opened.
func (d *Dir) Path() string { return d.path }

// Close unpins the directory and closes its handle; later calls do nothing.
func (d *Dir) Close() error {
	var err error
	d.close.Do(func() {
		pinnedMu.Lock()
		if pinned[d.path] == d {
			delete(pinned, d.path)
		}
		pinnedMu.Unlock()
		err = unix.Close(d.fd)
	})
	return err
}

// Pin makes WriteFileAtomic write every file directly in d's path through d's handle.
func (d *Dir) Pin() {
	pinnedMu.Lock()
	defer pinnedMu.Unlock()
	pinned[d.path] = d
}

var (
	pinnedMu sync.Mutex
	pinned   = map[string]*Dir{}
)

// pinnedDir returns the pinned Dir holding path directly, nil when there is none.
func pinnedDir(path string) *Dir {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	pinnedMu.Lock()
	defer pinnedMu.Unlock()
	return pinned[filepath.Dir(abs)]
}

// tmpSeq makes the temporary names of Dir.WriteFileAtomic unique within lodestar.
var tmpSeq atomic.Uint64

// WriteFileAtomic is the package's WriteFileAtomic for the file name in d: the temporary file
// is created (O_EXCL|O_NOFOLLOW) and renamed relative to d's handle, never by path.
func (d *Dir) WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	path := filepath.Join(d.path, name)
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("write %s: %q is not a file name in %s", path, name, d.path)
	}
	var tmpName string
	var fd int
	for {
		tmpName = fmt.Sprintf(".%s.tmp-%d-%d", name, os.Getpid(), tmpSeq.Add(1))
		var err error
		fd, err = unix.Openat(d.fd, tmpName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("write %s: create %s: %w", path, tmpName, err)
		}
	}
	tmp := os.NewFile(uintptr(fd), filepath.Join(d.path, tmpName))
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			unix.Unlinkat(d.fd, tmpName, 0)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := unix.Renameat(d.fd, tmpName, d.fd, name); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	ok = true
	unix.Fsync(d.fd) // best effort, as in WriteFileAtomic
	return nil
}
