package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// relayedAPISocket is the unix socket, in the run directory, that HAProxy's stats frontend
// forwards marathon-lb's /_haproxy_get* and /_mlb_signal/* to (the lodestar_mlb_api backend
// of the built-in HAPROXY_HEAD). Requests on it never get loopback trust (api.ServeRelayed).
const relayedAPISocket = "mlb-api.sock"

// listenRelayed opens the relayed API socket, replacing one a previous run left behind. Only
// lodestar's user can reach it: the run directory is lodestar's own and the socket 0600.
func listenRelayed(runDir string) (net.Listener, error) {
	path := filepath.Join(runDir, relayedAPISocket)
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: remove it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("the stats port's API socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ln, nil
}
