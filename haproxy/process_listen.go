package haproxy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	if err := WriteFileAtomic(p.liveFDsPath(), formatFDs(fds), 0o644); err != nil {
		return fmt.Errorf("haproxy live configuration: %w", err)
	}
	if err := WriteFileAtomic(p.livePath(), rewriteBinds(config, fds), 0o644); err != nil {
		return fmt.Errorf("haproxy live configuration: %w", err)
	}
	return nil
}

// liveFDsPath lists, next to livePath, the address of each fd@N the master holds.
func (p *Process) liveFDsPath() string {
	return filepath.Join(filepath.Dir(p.livePath()), "listeners")
}

// refreshLive rewrites livePath from ConfigPath before a reload of inst, with the descriptors
// inst inherited: the re-executed master still has those, and only those (HAProxy's reload
// does not hand an inherited socket over by address). An address the new file adds is bound
// by HAProxy itself until the next start, when lodestar opens it and hands it over.
//
// A reload HAProxy refuses makes its 2.6 master close the inherited descriptors, and every
// later reload of it would fail on them. So a new address another process holds, the one
// refusal `haproxy -c` cannot foresee, is found here first and refused like HAProxy would,
// with an alert naming its line; the master is not asked at all.
func (p *Process) refreshLive(inst *instance) error {
	if p.listeners == nil {
		return nil
	}
	config, err := os.ReadFile(p.cfg.ConfigPath)
	if err != nil {
		return &ReloadError{Message: fmt.Sprintf("reading %s: %v", p.cfg.ConfigPath, err)}
	}
	if loaded, err := os.ReadFile(p.livePath()); err == nil {
		if alerts := probeNewBinds(config, loaded, p.cfg.ConfigPath, inst.fds); len(alerts) > 0 {
			return &ReloadError{Message: "a new bind address is held by another process; HAProxy was not asked to reload", Alerts: alerts}
		}
	}
	if err := p.writeLive(config, inst.fds); err != nil {
		return &ReloadError{Message: err.Error()}
	}
	return nil
}

// probeNewBinds tries each host:port address config binds that loaded (the file the master
// runs) did not and held does not map, as HAProxy will (SO_REUSEADDR and SO_REUSEPORT, so
// that HAProxy's own sockets on it do not count), and returns an alert for each one refused.
func probeNewBinds(config, loaded []byte, path string, held map[string]int) []Alert {
	old := map[string]bool{}
	for _, a := range boundAddrs(loaded) {
		old[a] = true
	}
	var alerts []Alert
	frontend := ""
	for i, line := range strings.Split(string(config), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == "frontend" || f[0] == "listen") {
			frontend = f[1]
		}
		m := bindLineRE.FindStringSubmatch(line)
		if m == nil || old[m[2]] {
			continue
		}
		if _, ok := held[m[2]]; ok {
			continue
		}
		if err := probeBind(m[2]); err != nil {
			alerts = append(alerts, Alert{File: path, Line: i + 1, Proxy: frontend,
				Message: fmt.Sprintf("Binding [%s:%d] for frontend %s: cannot bind socket (%v) for [%s]", path, i+1, frontend, err, m[2])})
		}
	}
	return alerts
}

// probeBind binds (without listening: a listening probe could take a connection) and
// closes a socket on addr. Only EADDRINUSE counts: an address lodestar cannot parse or open for
// another reason is left to HAProxy.
func probeBind(addr string) error {
	fd, err := boundSocket(addr, true)
	if err == nil {
		syscall.Close(fd)
		return nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return err
	}
	return nil
}

// afterRefusedReload soft-stops inst when it runs with inherited listening sockets: its master
// closed them while failing to load, so it cannot reload any more. The supervisor starts the
// next master with the sockets lodestar holds; connections wait in their backlog meanwhile.
func (p *Process) afterRefusedReload(inst *instance) {
	if len(inst.fds) == 0 {
		return
	}
	p.log.Error("HAProxy's master refused a reload and with it lost the listening sockets it inherited; restarting it gracefully", "pid", inst.pid)
	syscall.Kill(inst.pid, syscall.SIGUSR1)
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
