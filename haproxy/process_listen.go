package haproxy

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// orphanSoftStop bounds how long the workers of a master that died may finish the requests
// they are serving before they are stopped hard and the next master starts.
const orphanSoftStop = 2 * time.Second

// livePath is the configuration HAProxy loads when the Process holds listeners: the file at
// ConfigPath with the held addresses' bind lines saying fd@N. It keeps ConfigPath's base name
// and line numbers, so HAProxy's alerts point at the lines of ConfigPath.
func (p *Process) livePath() string {
	return filepath.Join(p.cfg.RunDir, "live", filepath.Base(p.cfg.ConfigPath))
}

// prepareListeners returns the file HAProxy is to load, the sockets it inherits and their
// descriptors by address, for a start with config (ok: config could be read).
func (p *Process) prepareListeners(config []byte, ok bool) (string, []*os.File, map[string]int, error) {
	if p.listeners == nil || !ok {
		return p.cfg.ConfigPath, nil, nil, nil
	}
	files, fds := p.listeners.forStart(config, func(addr string, err error) {
		p.log.Warn("could not hold the listening socket; HAProxy binds it itself and a crash will refuse connections until it is back", "bind", addr, "err", err)
	})
	if err := p.writeLive(config, fds); err != nil {
		return "", nil, nil, err
	}
	return p.livePath(), files, fds, nil
}

// writeLive writes config with fds's bind lines rewritten to livePath.
func (p *Process) writeLive(config []byte, fds map[string]int) error {
	if err := os.MkdirAll(filepath.Dir(p.livePath()), 0o750); err != nil {
		return fmt.Errorf("haproxy live configuration: %w", err)
	}
	if err := WriteFileAtomic(p.livePath(), rewriteBinds(config, fds), 0o644); err != nil {
		return fmt.Errorf("haproxy live configuration: %w", err)
	}
	return nil
}

// refreshLive rewrites livePath from ConfigPath before a reload of inst, with the descriptors
// inst inherited: the re-executed master still has those, and only those. An address the new
// file binds that inst did not inherit is bound by HAProxy itself until the next start.
func (p *Process) refreshLive(inst *instance) error {
	if p.listeners == nil {
		return nil
	}
	config, err := os.ReadFile(p.cfg.ConfigPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p.cfg.ConfigPath, err)
	}
	return p.writeLive(config, inst.fds)
}

// closeListeners closes the sockets the Process holds.
func (p *Process) closeListeners() {
	if p.listeners != nil {
		p.listeners.Close()
	}
}

// HeldListeners returns the bind addresses whose sockets the Process holds across restarts.
func (p *Process) HeldListeners() []string {
	if p.listeners == nil {
		return nil
	}
	return p.listeners.Held()
}
