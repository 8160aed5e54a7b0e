package file

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/logtest"
)

// waitTimeout bounds every wait on a signal; tests never sleep.
const waitTimeout = 10 * time.Second

// recordingSink forwards to a registry and signals every ReportSync, so a test can wait for a
// read that changes no snapshot (a garbage file).
type recordingSink struct {
	*discovery.Registry
	syncs chan error
}

func (s *recordingSink) ReportSync(source string, err error) {
	s.Registry.ReportSync(source, err)
	s.syncs <- err
}

// nextSync waits for the next ReportSync.
func (s *recordingSink) nextSync(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.syncs:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("no sync reported")
		return nil
	}
}

// harness runs a registry and a file source on it.
type harness struct {
	t    *testing.T
	src  *Source
	reg  *discovery.Registry
	sink *recordingSink
	logs *logtest.Buffer
}

func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	logger, logs := logtest.New()
	cfg.Logger = logger
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Millisecond
	}
	src, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	reg := discovery.NewRegistry(discovery.WithLogger(slog.New(slog.DiscardHandler)))
	sink := &recordingSink{Registry: reg, syncs: make(chan error, 1000)}
	ctx, cancel := context.WithCancel(context.Background())
	regDone, srcDone := make(chan struct{}), make(chan error, 1)
	go func() { reg.Run(ctx); close(regDone) }()
	go func() { srcDone <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		<-regDone
		if err := <-srcDone; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
	return &harness{t: t, src: src, reg: reg, sink: sink, logs: logs}
}

// waitFor waits until the registry's snapshot satisfies cond.
func (h *harness) waitFor(what string, cond func(*discovery.Snapshot) bool) *discovery.Snapshot {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := h.reg.WaitFor(ctx, cond)
	if err != nil {
		h.t.Fatalf("waiting for %s: %v (snapshot version %d, %d apps)", what, err, s.Version, s.Apps.Len())
	}
	return s
}

// copyFixture copies testdata/name into a fresh temp dir and returns its path.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// editApps decodes the Marathon apps document at path, lets fn change it and returns the
// new JSON.
func editApps(t *testing.T, path string, fn func(apps []map[string]any) []map[string]any) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Apps []map[string]any `json:"apps"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc.Apps = fn(doc.Apps)
	out, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// addTask returns an edit that adds a running task to app id (a scale-up).
func addTask(id, taskID string, port int) func([]map[string]any) []map[string]any {
	return func(apps []map[string]any) []map[string]any {
		for _, a := range apps {
			if a["id"] != id {
				continue
			}
			tasks, _ := a["tasks"].([]any)
			a["tasks"] = append(tasks, map[string]any{
				"id": taskID, "appId": id, "host": "10.0.6.99", "ports": []int{port},
				"startedAt": "2016-02-01T23:00:00.000Z", "stagedAt": "2016-02-01T22:59:58.000Z",
				"slaveId": "1f09399d-0cb0-4484-afd7-f08e99d2acbb-S9",
			})
			a["instances"] = len(tasks) + 1
		}
		return apps
	}
}

// replaceFile writes data to a temp file in path's directory and renames it over path, as
// editors and config management do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInitialLoad(t *testing.T) {
	apps := copyFixture(t, "zdd_apps.json")
	state := copyFixture(t, "state_fake.json")
	h := start(t, Config{AppsFile: apps, MesosStateFile: state})

	s := h.waitFor("apps and Mesos state", func(s *discovery.Snapshot) bool {
		return s.Apps.Len() == 2 && s.Mesos != nil
	})
	green, blue := s.App("/nginx-green"), s.App("/nginx-blue")
	if green == nil || blue == nil {
		t.Fatalf("apps = %v, want /nginx-green and /nginx-blue", appIDs(s))
	}
	if len(green.Tasks) != 3 || len(green.EligibleTasks()) != 3 {
		t.Errorf("/nginx-green: %d tasks, %d eligible; want 3 and 3", len(green.Tasks), len(green.EligibleTasks()))
	}
	if len(blue.Tasks) != 1 || blue.Network != discovery.NetworkBridge {
		t.Errorf("/nginx-blue: %d tasks, network %q; want 1 task, bridge", len(blue.Tasks), blue.Network)
	}
	if got := s.Mesos.Leader; got != "1.2.3.4:5050" {
		t.Errorf("Mesos leader = %q, want 1.2.3.4:5050", got)
	}
	if len(s.Mesos.Frameworks) != 4 || len(s.Mesos.Agents) != 4 {
		t.Errorf("Mesos state has %d frameworks and %d agents, want 4 and 4", len(s.Mesos.Frameworks), len(s.Mesos.Agents))
	}
	if err := h.sink.nextSync(t); err != nil {
		t.Errorf("first sync reported %v, want nil", err)
	}
	st := h.reg.Sources()
	if len(st) != 1 || st[0].Name != "file" || !st[0].Synced || st[0].LastError != "" {
		t.Errorf("sources = %+v, want one synced source named file", st)
	}
	if h.src.Name() != "file" {
		t.Errorf("Name() = %q", h.src.Name())
	}
}

func TestAppsOnly(t *testing.T) {
	h := start(t, Config{AppsFile: copyFixture(t, "zdd_apps.json")})
	h.waitFor("apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })
	if err := h.sink.nextSync(t); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if m := h.reg.Snapshot().Mesos; m != nil {
		t.Errorf("Mesos state = %+v without a state file, want nil", m)
	}
}

func TestScaleUpInPlace(t *testing.T) {
	apps := copyFixture(t, "zdd_apps.json")
	h := start(t, Config{AppsFile: apps})
	h.waitFor("initial apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })

	writeFile(t, apps, editApps(t, apps, addTask("/nginx-blue", "nginx-blue.new-task", 31999)))
	s := h.waitFor("the new task", func(s *discovery.Snapshot) bool {
		a := s.App("/nginx-blue")
		return a != nil && len(a.Tasks) == 2
	})
	task := s.App("/nginx-blue").Task("nginx-blue.new-task")
	if task == nil || !task.Eligible || len(task.Endpoints) != 1 || task.Endpoints[0] != (discovery.Endpoint{Host: "10.0.6.99", Port: 31999}) {
		t.Errorf("new task = %+v, want eligible at 10.0.6.99:31999", task)
	}
	if n := s.App("/nginx-blue").Instances; n != 2 {
		t.Errorf("instances = %d, want 2", n)
	}
}

func TestReplaceByRename(t *testing.T) {
	apps := copyFixture(t, "zdd_apps.json")
	h := start(t, Config{AppsFile: apps})
	h.waitFor("initial apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })

	replaceFile(t, apps, editApps(t, apps, func(as []map[string]any) []map[string]any {
		return as[:1] // /nginx-green only
	}))
	s := h.waitFor("the removal of /nginx-blue", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 1 })
	if s.App("/nginx-green") == nil {
		t.Errorf("apps = %v, want /nginx-green", appIDs(s))
	}
}

func TestGarbageKeepsLastGoodState(t *testing.T) {
	apps := copyFixture(t, "zdd_apps.json")
	h := start(t, Config{AppsFile: apps})
	good := h.waitFor("initial apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })
	if err := h.sink.nextSync(t); err != nil {
		t.Fatalf("first sync: %v", err)
	}

	// A half-written file: the document ends in the middle of the first app.
	data, err := os.ReadFile(apps)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, apps, data[:len(data)/3])
	syncErr := h.sink.nextSync(t)
	// A poll between the truncation and the write sees an empty file first.
	for syncErr != nil && strings.Contains(syncErr.Error(), "empty document") {
		syncErr = h.sink.nextSync(t)
	}
	if syncErr == nil || !strings.Contains(syncErr.Error(), apps) {
		t.Fatalf("sync after garbage reported %v, want an error naming %s", syncErr, apps)
	}
	if s := h.reg.Snapshot(); s.Version != good.Version || s.Apps.Len() != 2 {
		t.Errorf("snapshot changed to version %d with %d apps; the last good state (version %d) should stay",
			s.Version, s.Apps.Len(), good.Version)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "cannot load file") || !strings.Contains(logs, "file="+apps) {
		t.Errorf("log does not report the broken file %s:\n%s", apps, logs)
	}
	if st := h.reg.Sources()[0]; !strings.Contains(st.LastError, apps) || !strings.Contains(st.LastError, "malformed") {
		t.Errorf("source status LastError = %q, want the JSON error naming %s", st.LastError, apps)
	}

	// Fixing the file (with a scale-up) loads the new state and clears the error.
	writeFile(t, apps, editApps(t, copyFixture(t, "zdd_apps.json"), addTask("/nginx-green", "nginx-green.fixed", 31500)))
	h.waitFor("the fixed file", func(s *discovery.Snapshot) bool {
		a := s.App("/nginx-green")
		return a != nil && a.Task("nginx-green.fixed") != nil
	})
	for {
		if err := h.sink.nextSync(t); err == nil {
			break
		}
	}
	if st := h.reg.Sources()[0]; st.LastError != "" || !st.Synced {
		t.Errorf("source status after the fix = %+v, want synced and no error", st)
	}
}

func TestGarbageMesosStateKeepsLastGood(t *testing.T) {
	apps := copyFixture(t, "zdd_apps.json")
	state := copyFixture(t, "state_fake.json")
	h := start(t, Config{AppsFile: apps, MesosStateFile: state})
	h.waitFor("initial load", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 && s.Mesos != nil })
	before := h.reg.Snapshot()

	replaceFile(t, state, []byte(`{"hello": "world"}`))
	err := h.src.Resync(context.Background())
	if err == nil || !strings.Contains(err.Error(), state) || !strings.Contains(err.Error(), "not a Mesos master state") {
		t.Fatalf("Resync = %v, want an error naming %s", err, state)
	}
	if s := h.reg.Snapshot(); s.Mesos != before.Mesos {
		t.Errorf("Mesos state replaced by a broken file")
	}
	// The apps file is fine: only the state file is named.
	if strings.Contains(err.Error(), apps) {
		t.Errorf("Resync error %q names the good apps file", err)
	}
}

func TestBadAppAmongGoodOnes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apps.json")
	writeFile(t, path, []byte(`{"apps": [
		{"id": "/good/one", "instances": 1, "portDefinitions": [{"port": 10001}],
		 "tasks": [{"id": "one.1", "host": "10.0.0.1", "ports": [31001], "state": "TASK_RUNNING"}]},
		{"id": "/bad", "instances": "three"},
		{"id": "good-two", "instances": 0}
	]}`))
	h := start(t, Config{AppsFile: path})

	s := h.waitFor("the good apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })
	if s.App("/good/one") == nil || s.App("/good-two") == nil || s.App("/bad") != nil {
		t.Errorf("apps = %v, want /good-two and /good/one", appIDs(s))
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "app=/bad") || !strings.Contains(logs, "file="+path) || !strings.Contains(logs, "instances") {
		t.Errorf("log does not name the bad app, its field and the file:\n%s", logs)
	}
	// One bad app is not a failed sync: the source is ready with the good ones.
	if err := h.sink.nextSync(t); err != nil {
		t.Errorf("sync reported %v, want nil", err)
	}
}

func TestDuplicateAppIDsRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apps.json")
	writeFile(t, path, []byte(`{"apps": [{"id": "/a"}, {"id": "a"}]}`))
	h := start(t, Config{AppsFile: path})
	err := h.sink.nextSync(t)
	if err == nil || !strings.Contains(err.Error(), "app ids listed more than once: [/a]") || !strings.Contains(err.Error(), path) {
		t.Errorf("sync reported %v, want the duplicate id and the file", err)
	}
	if st := h.reg.Sources()[0]; st.Synced {
		t.Errorf("source synced from a rejected file: %+v", st)
	}
}

func TestFileRemovedAndRestored(t *testing.T) {
	apps := copyFixture(t, "zdd_apps.json")
	h := start(t, Config{AppsFile: apps})
	h.waitFor("initial apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })
	if err := h.sink.nextSync(t); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	data, err := os.ReadFile(apps)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(apps); err != nil {
		t.Fatal(err)
	}
	if err := h.sink.nextSync(t); err == nil || !strings.Contains(err.Error(), apps) {
		t.Fatalf("sync after removal = %v, want an error naming %s", err, apps)
	}
	if n := h.reg.Snapshot().Apps.Len(); n != 2 {
		t.Errorf("%d apps after the file vanished, want the last good 2", n)
	}
	writeFile(t, apps, data)
	if err := h.sink.nextSync(t); err != nil {
		t.Errorf("sync after restore = %v, want nil", err)
	}
}

func TestResync(t *testing.T) {
	apps := copyFixture(t, "zdd_apps.json")
	src, err := New(Config{AppsFile: apps})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Resync(context.Background()); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Resync before Run = %v, want a not-running error", err)
	}

	// An hour-long interval: only Resync can pick up the change.
	h := start(t, Config{AppsFile: apps, Interval: time.Hour})
	h.waitFor("initial apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })
	if err := h.src.Resync(context.Background()); err != nil {
		t.Fatalf("Resync of an unchanged file: %v", err)
	}
	writeFile(t, apps, editApps(t, apps, addTask("/nginx-blue", "nginx-blue.reloaded", 31998)))
	if err := h.src.Resync(context.Background()); err != nil {
		t.Fatalf("Resync: %v", err)
	}
	h.waitFor("the reloaded task", func(s *discovery.Snapshot) bool {
		a := s.App("/nginx-blue")
		return a != nil && a.Task("nginx-blue.reloaded") != nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.src.Resync(ctx); err == nil {
		t.Errorf("Resync with a cancelled context returned nil")
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "apps.json")
	apps := copyFixture(t, "zdd_apps.json")
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no files", Config{}, []string{"no file configured"}},
		{"missing apps file", Config{AppsFile: missing}, []string{missing, "no such file", "Marathon apps JSON"}},
		{"missing state file", Config{AppsFile: apps, MesosStateFile: missing}, []string{missing, "/master/state"}},
		{"directory", Config{MesosStateFile: dir}, []string{dir, "is a directory"}},
		{"negative interval", Config{AppsFile: apps, Interval: -time.Second}, []string{"negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestFileTooLarge(t *testing.T) {
	apps := copyFixture(t, "zdd_apps.json")
	h := start(t, Config{AppsFile: apps})
	h.waitFor("initial apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })
	// A sparse file: its size is over the limit without using the disk space.
	if err := os.Truncate(apps, MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	err := h.src.Resync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "256 MiB limit") || !strings.Contains(err.Error(), apps) {
		t.Errorf("Resync of an oversized file = %v, want the size limit and the path", err)
	}
	if n := h.reg.Snapshot().Apps.Len(); n != 2 {
		t.Errorf("%d apps, want the last good 2", n)
	}
}

func TestRunTwice(t *testing.T) {
	h := start(t, Config{AppsFile: copyFixture(t, "zdd_apps.json")})
	h.waitFor("initial apps", func(s *discovery.Snapshot) bool { return s.Apps.Len() == 2 })
	if err := h.src.Run(context.Background(), h.sink); err == nil {
		t.Error("a second concurrent Run returned nil")
	}
}

func appIDs(s *discovery.Snapshot) []string {
	var ids []string
	for _, a := range s.Apps.All() {
		ids = append(ids, a.ID)
	}
	return ids
}

// TestHashFileMatchesReadHash: the streamed hash of an unchanged file equals the hash of the
// bytes read whole, whatever the buffer boundaries, or every racy re-read would load again.
func TestHashFileMatchesReadHash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	data := make([]byte, 200_003) // three 64 KiB buffers and a ragged end
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	writeFile(t, path, data)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	read, err := readFile(path, fi)
	if err != nil {
		t.Fatal(err)
	}
	got, err := hashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := maphash.Bytes(contentSeed, read); got != want {
		t.Errorf("hashFile = %x, hash of the bytes read = %x", got, want)
	}
	data[len(data)-1] ^= 1
	writeFile(t, path, data)
	if changed, err := hashFile(path); err != nil || changed == got {
		t.Errorf("hashFile after a change = %x, %v; want a hash other than %x", changed, err, got)
	}
}

// TestSyntaxErrorNamesTheLine: a hand-edited file with a JSON syntax error is reported with
// the line and column of the error, in the sync status and the log, for either kind of file.
func TestSyntaxErrorNamesTheLine(t *testing.T) {
	for _, tt := range []struct {
		name, fixture string
		cfg           func(path string) Config
		broken        string
		want          string
	}{
		{
			name: "apps", fixture: "zdd_apps.json",
			cfg:    func(p string) Config { return Config{AppsFile: p} },
			broken: "{\"apps\": [\n  {\"id\": \"/a\",\n   \"instances\": 1,,\n  }\n]}\n",
			want:   "line 3, column 19",
		},
		{
			name: "Mesos state", fixture: "state_fake.json",
			cfg:    func(p string) Config { return Config{MesosStateFile: p} },
			broken: "{\"leader\": \"master@10.0.0.1:5050\",\n \"frameworks\": [\n\n  ]]\n}\n",
			want:   "line 4, column 4",
		},
		{
			name: "truncated", fixture: "zdd_apps.json",
			cfg:    func(p string) Config { return Config{AppsFile: p} },
			broken: "{\"apps\": [\n  {\"id\": \"/a\",\n",
			want:   "line 3, column 1",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := copyFixture(t, tt.fixture)
			h := start(t, tt.cfg(path))
			if err := h.sink.nextSync(t); err != nil {
				t.Fatalf("first sync: %v", err)
			}
			// Replaced whole: a poll must not catch a half-written file, whose error is elsewhere.
			replaceFile(t, path, []byte(tt.broken))
			err := h.sink.nextSync(t)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("sync after a syntax error reported %v; want an error naming %s and %q", err, path, tt.want)
			}
			if !strings.Contains(h.logs.String(), tt.want) {
				t.Errorf("log does not name %q:\n%s", tt.want, h.logs.String())
			}
		})
	}
}
