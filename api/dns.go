package api

import (
	"fmt"
	"net/http"
	"strings"
)

// dnsRecordsResponse is the body of GET /v1/dns/records.
type dnsRecordsResponse struct {
	Name    string      `json:"name"`
	Records []DNSRecord `json:"records"`
}

// dnsRecords serves every record of ?name=: 400 without a name, 404 when it has none, 503
// when the DNS front end is not running.
func (s *Server) dnsRecords(w http.ResponseWriter, r *http.Request) {
	dns := s.frontends().DNS
	if dns == nil {
		writeError(w, http.StatusServiceUnavailable, "the DNS server is not running: start lodestar with --dns-listen")
		return
	}
	name := strings.TrimSpace(r.URL.Query().Get("name"))
	if name == "" {
		writeError(w, http.StatusBadRequest, "query parameter name is missing, e.g. /v1/dns/records?name=web.marathon.mesos")
		return
	}
	recs := dns.Records(name)
	if len(recs) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no DNS records for %s", name))
		return
	}
	writeJSON(w, http.StatusOK, dnsRecordsResponse{Name: name, Records: recs})
}
