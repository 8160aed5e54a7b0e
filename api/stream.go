package api

import (
	"errors"
	"net/http"
)

// MountStream serves GET /v1/stream, the registry as a resumable stream of versions (the
// handler is discovery/relay's Hub, wired in by cmd). It is a read, so it follows the API's
// rules for reads: no credential needed.
func (s *Server) MountStream(stream http.Handler) {
	s.router.Handle("/v1/stream", stream).Methods(http.MethodGet)
}

// degradedError is a readiness check's error that does not make lodestar unready: it still
// serves (its last known state, say), and /readyz and the status page say how it is degraded.
type degradedError struct{ err error }

func (e degradedError) Error() string { return e.err.Error() }
func (e degradedError) Unwrap() error { return e.err }

// Degraded marks a readiness check's error as a degradation: /readyz keeps answering 200 and
// shows "degraded: <err>" under the check's name, and the status page shows it as a warning.
// A replica that lost every hub is the case: taking every edge out of rotation when the hubs
// go would turn a control-plane outage into a traffic one. Degraded(nil) is nil.
func Degraded(err error) error {
	if err == nil {
		return nil
	}
	return degradedError{err}
}

// isDegraded reports whether a check's error is a degradation rather than a failure.
func isDegraded(err error) bool {
	var d degradedError
	return errors.As(err, &d)
}
