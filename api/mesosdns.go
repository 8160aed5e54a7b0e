package api

import (
	"net/http"

	"github.com/gorilla/mux"
)

// HostRecord is one answer of mesos-dns's GET /v1/hosts/{host}.
type HostRecord struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

// ServiceRecord is one answer of mesos-dns's GET /v1/services/{service}. Port is a string, as
// mesos-dns sends it.
type ServiceRecord struct {
	Service string `json:"service"`
	Host    string `json:"host"`
	IP      string `json:"ip"`
	Port    string `json:"port"`
}

// MesosDNS is what the mesos-dns compatible endpoints read. cmd wires the DNS front end's
// current records in; every method reads one immutable record index.
type MesosDNS interface {
	// Hosts returns the A/AAAA answers of a name (any case, trailing dot optional).
	Hosts(name string) []HostRecord
	// Services returns the SRV answers of a name with their targets' addresses.
	Services(name string) []ServiceRecord
	// Enumerate returns every record by framework and task, in mesos-dns's /v1/enumerate shape.
	Enumerate() any
	// AXFR returns every record in mesos-dns's /v1/axfr shape.
	AXFR() any
	// Config returns the DNS configuration with secrets redacted.
	Config() any
}

// mesosDNSVersion is the body of GET /v1/version.
type mesosDNSVersion struct {
	Service string
	URL     string
	Version string
}

// MountMesosDNS mounts mesos-dns's HTTP API (/v1/version, /v1/config, /v1/hosts/{host},
// /v1/services/{service}, /v1/enumerate, /v1/axfr) so clients of mesos-dns keep working. A
// name with no records answers 404 with an empty list, not mesos-dns's fake empty entry.
func (s *Server) MountMesosDNS(d MesosDNS) {
	r := s.router
	get := []string{http.MethodGet, http.MethodHead}
	r.HandleFunc("/v1/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, mesosDNSVersion{
			Service: "lodestar (Mesos-DNS compatible)",
			URL:     "https://github.com/lodestar-lb/lodestar",
			Version: s.cfg.Version,
		})
	}).Methods(get...)
	r.HandleFunc("/v1/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Config())
	}).Methods(get...)
	r.HandleFunc("/v1/hosts/{host}", func(w http.ResponseWriter, r *http.Request) {
		writeList(w, d.Hosts(mux.Vars(r)["host"]))
	}).Methods(get...)
	r.HandleFunc("/v1/services/{service}", func(w http.ResponseWriter, r *http.Request) {
		writeList(w, d.Services(mux.Vars(r)["service"]))
	}).Methods(get...)
	r.HandleFunc("/v1/enumerate", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Enumerate())
	}).Methods(get...)
	r.HandleFunc("/v1/axfr", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.AXFR())
	}).Methods(get...)
}

// writeList answers a lookup: 200 with the records, or 404 with an empty JSON list.
func writeList[T any](w http.ResponseWriter, list []T) {
	if len(list) == 0 {
		writeJSON(w, http.StatusNotFound, []T{})
		return
	}
	writeJSON(w, http.StatusOK, list)
}
