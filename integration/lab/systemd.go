package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// unitDir is where rendered units lie, relative to a host's root.
const unitDir = "etc/systemd/system"

// Install writes the files `lodestar cluster render --format systemd` made for topology host
// name (the keys "<name>/<path>") under the host's Root, as they would lie from /. Paths to
// /etc, /run and /var inside configuration files and scripts are rerooted (see Reroot); unit
// files are written as rendered and rerooted when a unit starts. It returns the paths written.
func (h *Host) Install(rendered map[string][]byte, name string) ([]string, error) {
	var written []string
	for _, key := range slices.Sorted(maps.Keys(rendered)) {
		rel, ok := strings.CutPrefix(key, name+"/")
		if !ok {
			continue
		}
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("host %s: rendered file %q lies outside the host", h.Name, key)
		}
		content := rendered[key]
		if !strings.HasPrefix(rel, unitDir+"/") {
			content = []byte(Reroot(h.Root, string(content)))
		}
		full := filepath.Join(h.Root, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(full, content, mode); err != nil {
			return nil, err
		}
		written = append(written, rel)
	}
	if len(written) == 0 {
		return nil, fmt.Errorf("host %s: the render has no files for host %q", h.Name, name)
	}
	return written, nil
}

// PackageFiles copies what a Debian package would have installed on the host and the
// render does not write: files of the machine's directory dir (e.g. /etc/zookeeper/conf)
// that the host does not have yet, into the same path under Root, and symlinks the package
// makes (link → target, both host paths, rerooted).
func (h *Host) PackageFiles(dir string, links map[string]string) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		dst := filepath.Join(h.Root, dir, e.Name())
		if _, err := os.Stat(dst); err == nil {
			continue // the render's file wins
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	for link, target := range links {
		l := filepath.Join(h.Root, link)
		if err := os.MkdirAll(filepath.Dir(l), 0o755); err != nil {
			return err
		}
		_ = os.Remove(l)
		if err := os.Symlink(Reroot(h.Root, target), l); err != nil {
			return err
		}
	}
	return nil
}

// UnitOptions say how the lab runs a unit.
type UnitOptions struct {
	// Programs maps a unit's program path to the file to run instead, e.g.
	// /usr/local/bin/lodestar → the binary the test built.
	Programs map[string]string
	// Env is added after the unit's own environment (e.g. JAVA_TOOL_OPTIONS for small JVMs).
	Env []string
}

// LoadUnit parses the installed unit file name (e.g. "zookeeper.service").
func (h *Host) LoadUnit(name string) (Unit, error) {
	b, err := os.ReadFile(filepath.Join(h.Root, unitDir, name))
	if err != nil {
		return Unit{}, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return ParseUnit(name, b)
}

// StartUnit runs the installed unit name inside the host the way systemd would start it:
// its EnvironmentFile= files (rerooted) and Environment= assignments, its LoadCredential=
// files copied into Root/run/credentials/<unit> (which %d names), its ExecStart expanded and
// rerooted. A Type=oneshot unit is waited for (up to timeout) and must exit 0; other units
// are left running and returned.
func (h *Host) StartUnit(name string, opts UnitOptions, timeout time.Duration) (*Proc, error) {
	u, err := h.LoadUnit(name)
	if err != nil {
		return nil, err
	}
	var env []string
	for i, f := range u.EnvironmentFiles {
		b, err := os.ReadFile(Reroot(h.Root, f))
		if errors.Is(err, fs.ErrNotExist) && u.OptionalEnvFile[i] {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("host %s: %s: EnvironmentFile: %w", h.Name, name, err)
		}
		vars, err := ParseEnvFile(f, b)
		if err != nil {
			return nil, fmt.Errorf("host %s: %s: %w", h.Name, name, err)
		}
		env = append(env, vars...)
	}
	env = append(env, u.Environment...)
	credDir := ""
	if len(u.Credentials) > 0 {
		credDir = filepath.Join(h.Root, "run", "credentials", name)
		if err := os.MkdirAll(credDir, 0o700); err != nil {
			return nil, err
		}
		for _, c := range u.Credentials {
			b, err := os.ReadFile(Reroot(h.Root, c[1]))
			if err != nil {
				return nil, fmt.Errorf("host %s: %s: LoadCredential=%s: %w", h.Name, name, c[0], err)
			}
			if err := os.WriteFile(filepath.Join(credDir, c[0]), b, 0o400); err != nil {
				return nil, err
			}
		}
	}
	if u.RuntimeDirectory != "" {
		if err := os.MkdirAll(filepath.Join(h.Root, "run", u.RuntimeDirectory), 0o755); err != nil {
			return nil, err
		}
	}
	args, err := u.Expand(env, credDir)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	for i := range args {
		args[i] = Reroot(h.Root, args[i])
	}
	if p, ok := opts.Programs[u.ExecStart[0]]; ok {
		args[0] = p
	}
	p, err := h.Start(strings.TrimSuffix(name, ".service"), append(env, opts.Env...), args...)
	if err != nil {
		return nil, err
	}
	if u.Type == "oneshot" {
		if err := p.Wait(timeout); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", p.Name, err, p.LogTail(2000))
		}
	}
	return p, nil
}
