package dnsserver

import (
	"net/netip"
	"slices"
)

// RecordSet holds every record of one owner name.
type RecordSet struct {
	A    []netip.Addr
	AAAA []netip.Addr
	SRV  []SRV
}

// SRV is one SRV record's data. Target is a lower-case FQDN with its trailing dot.
type SRV struct {
	Target   string
	Port     uint16
	Priority uint16
	Weight   uint16
}

// RecordIndex is the immutable set of records of one snapshot: built off to the side, swapped in
// whole, and only read while serving.
type RecordIndex struct {
	// Domain is the zone apex as a lower-case FQDN ("mesos.").
	Domain string
	// Serial is the SOA serial; it increases with every change of the records.
	Serial uint32
	names  map[string]*RecordSet
}

// NewRecordIndex makes an index of the given sets, keyed by lower-case FQDN (trailing dot).
func NewRecordIndex(domain string, serial uint32, sets map[string]*RecordSet) *RecordIndex {
	return &RecordIndex{Domain: domain, Serial: serial, names: sets}
}

// Lookup returns the records of a lower-case FQDN, or nil when the name has none.
func (ix *RecordIndex) Lookup(name string) *RecordSet { return ix.names[name] }

// Len is the number of owner names.
func (ix *RecordIndex) Len() int { return len(ix.names) }

// Names returns every owner name, sorted.
func (ix *RecordIndex) Names() []string {
	out := make([]string, 0, len(ix.names))
	for n := range ix.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
