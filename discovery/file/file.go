// Package file is a discovery source that reads apps and Mesos state from JSON files: the apps
// in Marathon's GET /v2/apps format and the state in a Mesos master's /master/state format,
// decoded by the same functions as the live sources. It is the embedded default (lodestar runs
// with no cluster) and the demo.
//
// Files are re-read when they change. The source polls os.Stat instead of using inotify: it is
// simple, works on every filesystem (NFS, overlay, bind mounts) and follows files that editors
// or Kubernetes ConfigMaps replace by rename. A file that does not parse is logged and the last
// good state stays in the registry.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
)

// DefaultInterval is how often files are checked for changes when Config.Interval is zero.
const DefaultInterval = time.Second

// MaxFileSize is the largest file the source reads. A Marathon apps document of 10,000 apps
// is a few tens of MiB; anything past this is a mistake (a log file, a disk image) that would
// otherwise be read into memory every time it changes.
const MaxFileSize = 256 << 20

// racyWindow: a file modified this recently may change again without its mtime or size
// changing (filesystems with coarse timestamps), so it is re-read on the next poll too. The
// content hash makes those re-reads free when nothing changed. This is git's "racy git" fix.
const racyWindow = 2 * time.Second

// Config configures a Source.
type Config struct {
	// AppsFile holds Marathon apps JSON, as GET /v2/apps?embed=apps.tasks returns it.
	AppsFile string
	// MesosStateFile holds a Mesos master's /master/state JSON.
	MesosStateFile string
	// Interval is how often the files are checked for changes; DefaultInterval when zero.
	Interval time.Duration
	// Logger receives load errors and per-app problems; slog.Default() when nil.
	Logger *slog.Logger
}

// Source reads apps and Mesos state from files and sends them to the registry whenever they
// change. Create it with New; it implements discovery.Source.
type Source struct {
	interval time.Duration
	log      *slog.Logger
	files    []*watchedFile

	// reloads carries Resync requests to the Run goroutine, which alone reads the files and
	// owns their state: a forced reload never races a poll.
	reloads chan chan error
	mu      sync.Mutex
	running chan struct{} // non-nil while Run runs; closed when it returns
}

// kind is what a watched file holds.
type kind int

const (
	kindApps kind = iota
	kindMesosState
)

// watchedFile is the state of one file. Only the Run goroutine touches it.
type watchedFile struct {
	path string
	kind kind

	info   os.FileInfo // last stat seen; nil before the first read
	racy   bool        // modified within racyWindow of the last read: re-read next poll
	hash   uint64      // hash (contentSeed) of the last content read
	hashed bool
	err    error // current problem; nil once the latest content loaded
	logged string
}

func (k kind) String() string {
	if k == kindApps {
		return "apps"
	}
	return "Mesos state"
}

// what tells a user what the file should contain.
func (k kind) what() string {
	if k == kindApps {
		return "Marathon apps JSON as GET /v2/apps?embed=apps.tasks returns it"
	}
	return "a Mesos master's /master/state JSON"
}

// New validates cfg and returns a Source. At least one file must be configured and every
// configured file must exist now; an empty or broken file is not an error here (it is
// reported by Run and retried when it changes).
func New(cfg Config) (*Source, error) {
	if cfg.AppsFile == "" && cfg.MesosStateFile == "" {
		return nil, errors.New("file source: no file configured: set an apps file (Marathon /v2/apps JSON), a Mesos state file (/master/state JSON), or both")
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("file source: poll interval %v is negative", cfg.Interval)
	}
	s := &Source{
		interval: cfg.Interval,
		log:      cfg.Logger,
		reloads:  make(chan chan error),
	}
	if s.interval == 0 {
		s.interval = DefaultInterval
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("source", "file")
	for _, f := range []*watchedFile{
		{path: cfg.AppsFile, kind: kindApps},
		{path: cfg.MesosStateFile, kind: kindMesosState},
	} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			return nil, fmt.Errorf("file source: %s file: %w (it should exist and hold %s)", f.kind, err, f.kind.what())
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("file source: %s file %s is a directory; it should be a file holding %s", f.kind, f.path, f.kind.what())
		}
		s.files = append(s.files, f)
	}
	return s, nil
}

// Name returns "file".
func (s *Source) Name() string { return "file" }

// Run reads the files, sends their content to sink, and re-reads a file whenever its
// modification time, size or identity changes, until ctx ends. After every read it reports
// the outcome with sink.ReportSync("file", err). It returns nil when ctx ends.
func (s *Source) Run(ctx context.Context, sink discovery.Sink) error {
	s.mu.Lock()
	if s.running != nil {
		s.mu.Unlock()
		return errors.New("file source: Run is already running")
	}
	done := make(chan struct{})
	s.running = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = nil
		s.mu.Unlock()
		close(done)
	}()

	s.poll(ctx, sink, true)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s.poll(ctx, sink, false)
		case res := <-s.reloads:
			res <- s.poll(ctx, sink, true)
		}
	}
}

// Resync re-reads every file now, whether it changed or not, and sends the result to the
// registry (discovery.Resyncer). It returns the problems found (nil when every file loaded).
// It needs Run to be running; it waits for the read to finish or ctx to end.
func (s *Source) Resync(ctx context.Context) error {
	s.mu.Lock()
	done := s.running
	s.mu.Unlock()
	if done == nil {
		return errors.New("file source: resync: the source is not running")
	}
	// Checked first: when the loop is idle, select picks at random among ready cases, so a
	// cancelled context could otherwise still run (and report) a reload.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file source: resync: %w", err)
	}
	res := make(chan error, 1)
	select {
	case s.reloads <- res:
	case <-done:
		return errors.New("file source: resync: the source stopped")
	case <-ctx.Done():
		return fmt.Errorf("file source: resync: %w", ctx.Err())
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return fmt.Errorf("file source: resync: %w", ctx.Err())
	}
}

var _ discovery.Resyncer = (*Source)(nil)

// poll checks every file and loads those that changed (all of them when force is set). When
// anything was read it reports the combined state of all files to the sink, so the source's
// status shows a broken file until it is fixed even if the other file loads fine. It returns
// that combined error.
func (s *Source) poll(ctx context.Context, sink discovery.Sink, force bool) error {
	read := false
	for _, f := range s.files {
		if s.check(ctx, sink, f, force) {
			read = true
		}
	}
	var errs []error
	for _, f := range s.files {
		if f.err != nil {
			errs = append(errs, f.err)
		}
	}
	err := errors.Join(errs...)
	if read && ctx.Err() == nil {
		sink.ReportSync(s.Name(), err)
	}
	return err
}

// check loads f if it changed since the last read. It reports whether the source's status
// may have changed (content loaded, or a new problem).
func (s *Source) check(ctx context.Context, sink discovery.Sink, f *watchedFile, force bool) bool {
	fi, err := os.Stat(f.path)
	if err != nil {
		// The file is gone or unreadable (maybe mid-replace): keep the last good state, and
		// read it again once it is back.
		f.info = nil
		return s.fail(f, fmt.Errorf("%s file: %w", f.kind, err))
	}
	if !force && !f.racy && f.info != nil && sameFile(f.info, fi) {
		return false
	}
	f.info = fi
	f.racy = time.Since(fi.ModTime()) < racyWindow
	if !force && f.hashed && f.err == nil && fi.Size() <= MaxFileSize {
		// Most re-reads (racy ones, a touched file) find the same bytes: hash them as they
		// stream past instead of holding a copy of a file of tens of MiB next to the state
		// decoded from it.
		if sum, err := hashFile(f.path); err == nil && sum == f.hash {
			return false
		}
	}
	data, err := readFile(f.path, fi)
	if err != nil {
		return s.fail(f, fmt.Errorf("%s file %s: %w", f.kind, f.path, err))
	}
	sum := maphash.Bytes(contentSeed, data)
	if !force && f.hashed && sum == f.hash && f.err == nil {
		return false // touched or re-read, same bytes: nothing to do
	}
	f.hash, f.hashed = sum, true
	loadStart := time.Now()
	if err := s.load(ctx, sink, f, data); err != nil {
		if ctx.Err() != nil {
			f.hashed = false // not sent: shutting down
			return false
		}
		loads.WithLabelValues(f.kind.metric(), "error").Inc()
		where := f.path
		if pos := syntaxPosition(data); pos != "" {
			where += ": " + pos
		}
		s.fail(f, fmt.Errorf("%s file %s: %w (the last good state stays until the file is fixed; it should hold %s)",
			f.kind, where, err, f.kind.what()))
		return true
	}
	loads.WithLabelValues(f.kind.metric(), "ok").Inc()
	loadSeconds.WithLabelValues(f.kind.metric()).Observe(time.Since(loadStart).Seconds())
	if f.err != nil {
		s.log.Info("file loads again", "file", f.path, "kind", f.kind.String())
	}
	f.err, f.logged = nil, ""
	return true
}

// fail records a problem with f and logs it once: polling must not repeat the same error
// every interval. It reports whether the problem is new.
func (s *Source) fail(f *watchedFile, err error) bool {
	f.err = err
	msg := err.Error()
	if msg == f.logged {
		return false
	}
	f.logged = msg
	s.log.Error("cannot load file; keeping the last good state", "file", f.path, "kind", f.kind.String(), "err", err)
	return true
}

// load decodes data and sends it to the registry. A document-level error sends nothing.
func (s *Source) load(ctx context.Context, sink discovery.Sink, f *watchedFile, data []byte) error {
	switch f.kind {
	case kindApps:
		apps, appErrs, err := discovery.DecodeMarathonApps(data)
		if err != nil {
			return err
		}
		var keep []string
		for _, e := range appErrs {
			id := "?"
			if ae, ok := errors.AsType[*discovery.AppError](e); ok {
				id = ae.AppID
				keep = append(keep, id)
			}
			appErrors.Inc()
			s.log.Error("app of the apps file skipped, keeping its last good version; the other apps load", "app", id, "file", f.path, "err", e)
		}
		if apps == nil {
			apps = []*discovery.App{}
		}
		return sink.Send(ctx, discovery.ReplaceApps{Apps: apps, Keep: keep})
	default:
		st, err := discovery.DecodeMesosState(data)
		if err != nil {
			return err
		}
		return sink.Send(ctx, discovery.ReplaceMesosState{State: st})
	}
}

// syntaxPosition returns where data stops being JSON, as "line L, column C" (1-based, C in
// bytes), or "" when data is well-formed. The decoders' syntax errors give no position (and
// may count from trimmed input), and a hand-edited file is fixed by line. Only a file that
// failed to load is scanned again.
func syntaxPosition(data []byte) string {
	var raw json.RawMessage
	se, ok := errors.AsType[*json.SyntaxError](json.Unmarshal(data, &raw))
	if !ok {
		return ""
	}
	// Offset counts the bytes read up to and including the one that is wrong; at the end of
	// the input nothing is wrong but the input's end.
	i := int(min(max(se.Offset-1, 0), int64(len(data))))
	if se.Offset >= int64(len(data)) && strings.HasPrefix(se.Error(), "unexpected end") {
		i = len(data)
	}
	line := 1 + bytes.Count(data[:i], []byte("\n"))
	col := i - bytes.LastIndexByte(data[:i], '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// contentSeed seeds the content hashes, which are only compared within the process. The hash
// tells a re-read file whose stat did not change from one whose bytes did; it need not resist
// an adversary (whoever can write the file can write any state), and it runs at memory speed,
// several times faster than a cryptographic hash on a state of tens of MiB.
var contentSeed = maphash.MakeSeed()

// hashFile hashes a file's content (at most MaxFileSize+1 bytes) as readFile's data would
// hash, reading it through a small buffer.
func hashFile(path string) (uint64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	var h maphash.Hash
	h.SetSeed(contentSeed)
	if _, err := io.CopyBuffer(&h, io.LimitReader(fh, MaxFileSize+1), make([]byte, 64<<10)); err != nil {
		return 0, err
	}
	return h.Sum64(), nil
}

// readFile reads at most MaxFileSize bytes; the limit also holds when the file grows between
// the stat and the read.
func readFile(path string, fi os.FileInfo) ([]byte, error) {
	if fi.IsDir() {
		return nil, errors.New("is a directory")
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("is %d bytes, more than the %d MiB limit", fi.Size(), MaxFileSize>>20)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(fh, MaxFileSize+1)); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if buf.Len() > MaxFileSize {
		return nil, fmt.Errorf("is more than the %d MiB limit", MaxFileSize>>20)
	}
	return buf.Bytes(), nil
}

// sameFile reports whether two stats describe the same unchanged file: same inode (a file
// replaced by rename is a new inode even with equal mtime and size), mtime and size.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
