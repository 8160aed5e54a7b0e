package api

import (
	"context"
	"net/http"
)

// resync asks every source for a full resync and answers once it is done (200), or failed
// (500 with the error). It waits at most signalTimeout, as the /_mlb_signal/* endpoints do.
func (s *Server) resync(w http.ResponseWriter, r *http.Request) {
	rs := s.frontends().Resync
	if rs == nil {
		writeError(w, http.StatusServiceUnavailable, "resync is not available: no source that can resync is wired in")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), signalTimeout)
	defer cancel()
	if err := rs.Resync(ctx); err != nil {
		s.log.Warn("resync failed", "err", err)
		writeError(w, http.StatusInternalServerError, "resync: "+err.Error())
		return
	}
	s.log.Info("resync requested over the API", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"status": "resynced"})
}
