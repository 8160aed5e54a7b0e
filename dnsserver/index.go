package dnsserver

import (
	"bufio"
	"io"
	"iter"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/lodestar-lb/lodestar/discovery"
)

// RecordSet holds every record of one owner name.
type RecordSet struct {
	A    []netip.Addr
	AAAA []netip.Addr
	SRV  []SRV

	// pos is the set's place in its index's order: a compiled zone keeps its answers in a
	// slice in that order, so that a name's answers are found with the index's map alone.
	pos int32
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
	// Mname and Rname are the SOA's primary name server ("ns1.mesos.", whose A/AAAA records
	// are lodestar's listen addresses) and responsible mailbox ("root.ns1.mesos.").
	Mname string
	Rname string
	names map[string]*RecordSet
	// order holds every name of names and its set, in the order the builder made them, which
	// is the order of their memory: compiling walks it, not the map, whose order makes every
	// name and set a cache miss.
	order []namedSet

	// cfg and snap are what the index was built from; Enumerate rebuilds the per-task view
	// from them rather than keeping it for every index.
	cfg  RecordConfig
	snap *discovery.Snapshot
	// digest sums a hash of every name and its records; equal digests mean equal records.
	// It is computed once, by sum, for indexes BuildIndex made (nil for others).
	digest *lazyDigest
	counts [3]int // A, AAAA, SRV records
}

// NewRecordIndex makes an index of the given sets, keyed by lower-case FQDN (trailing dot).
func NewRecordIndex(domain string, serial uint32, sets map[string]*RecordSet) *RecordIndex {
	domain = fqdn(domain)
	ix := &RecordIndex{Domain: domain, Serial: serial}
	ix.cfg = RecordConfig{Domain: domain}.WithDefaults()
	ix.Mname, ix.Rname = ix.cfg.SOAMname, ix.cfg.SOARname
	// The index keeps copies of the sets: their positions are its own, and a caller may have
	// put one set under several names.
	ix.names = make(map[string]*RecordSet, len(sets))
	ix.order = make([]namedSet, 0, len(sets))
	copies := make([]RecordSet, len(sets))
	for name, rs := range sets {
		if rs == nil {
			ix.names[name] = nil
			continue
		}
		c := &copies[len(ix.order)]
		*c = *rs
		c.pos = int32(len(ix.order))
		ix.names[name] = c
		ix.order = append(ix.order, namedSet{name, c})
		ix.counts[0] += len(rs.A)
		ix.counts[1] += len(rs.AAAA)
		ix.counts[2] += len(rs.SRV)
	}
	return ix
}

// lazyDigest is a digest computed on first use. A copy of an index shares it: the records are
// the same.
type lazyDigest struct {
	once sync.Once
	sum  uint64
}

// namedSet is an owner name and its records.
type namedSet struct {
	name string
	rs   *RecordSet
}

// Lookup returns the records of a lower-case FQDN, or nil when the name has none.
func (ix *RecordIndex) Lookup(name string) *RecordSet {
	if ix == nil {
		return nil
	}
	return ix.names[name]
}

// Len is the number of owner names.
func (ix *RecordIndex) Len() int {
	if ix == nil {
		return 0
	}
	return len(ix.names)
}

// Counts returns how many A, AAAA and SRV records the index holds.
func (ix *RecordIndex) Counts() (a, aaaa, srv int) {
	if ix == nil {
		return 0, 0, 0
	}
	return ix.counts[0], ix.counts[1], ix.counts[2]
}

// All yields every owner name and its records, in no particular order (cheaper than Names when
// the order does not matter).
func (ix *RecordIndex) All() iter.Seq2[string, *RecordSet] {
	return func(yield func(string, *RecordSet) bool) {
		if ix == nil {
			return
		}
		for name, rs := range ix.names {
			if !yield(name, rs) {
				return
			}
		}
	}
}

// Names returns every owner name, sorted.
func (ix *RecordIndex) Names() []string {
	if ix == nil {
		return nil
	}
	out := make([]string, 0, len(ix.names))
	for n := range ix.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// HostRecord is one answer of mesos-dns's GET /v1/hosts/{host}.
type HostRecord struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

// ServiceRecord is one answer of mesos-dns's GET /v1/services/{service}: an SRV record with
// its target's address. Port is a string, as mesos-dns sends it.
type ServiceRecord struct {
	Service string `json:"service"`
	Host    string `json:"host"`
	IP      string `json:"ip"`
	Port    string `json:"port"`
}

// Hosts returns the A and AAAA records of a name (any case, trailing dot optional) as
// mesos-dns's /v1/hosts does: host is the lower-case FQDN. Nil when the name has none.
func (ix *RecordIndex) Hosts(name string) []HostRecord {
	dom := fqdn(name)
	rs := ix.Lookup(dom)
	if rs == nil || len(rs.A)+len(rs.AAAA) == 0 {
		return nil
	}
	out := make([]HostRecord, 0, len(rs.A)+len(rs.AAAA))
	for _, ip := range rs.A {
		out = append(out, HostRecord{Host: dom, IP: ip.String()})
	}
	for _, ip := range rs.AAAA {
		out = append(out, HostRecord{Host: dom, IP: ip.String()})
	}
	return out
}

// Services returns the SRV records of a name (any case, trailing dot optional) as mesos-dns's
// /v1/services does: service is the name as asked, host the target, ip the target's first
// IPv4 address (else its first IPv6 address, else ""). Nil when the name has none.
func (ix *RecordIndex) Services(name string) []ServiceRecord {
	rs := ix.Lookup(fqdn(name))
	if rs == nil || len(rs.SRV) == 0 {
		return nil
	}
	out := make([]ServiceRecord, 0, len(rs.SRV))
	for _, s := range rs.SRV {
		ip := ""
		if t := ix.Lookup(s.Target); t != nil {
			switch {
			case len(t.A) > 0:
				ip = t.A[0].String()
			case len(t.AAAA) > 0:
				ip = t.AAAA[0].String()
			}
		}
		out = append(out, ServiceRecord{Service: name, Host: s.Target, IP: ip, Port: strconv.Itoa(int(s.Port))})
	}
	return out
}

// WriteTable writes every record, one per line, sorted by name, then type (A, AAAA, SRV), then
// value: the name padded to a column, the type, and the value in zone-file form ("10.0.0.1";
// SRV as "priority weight port target").
func (ix *RecordIndex) WriteTable(w io.Writer) error {
	names := ix.Names()
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	pad := strings.Repeat(" ", max(width+2, 6))
	line := func(name, rtype, value string) {
		bw.WriteString(name)
		bw.WriteString(pad[:width+2-len(name)])
		bw.WriteString(rtype)
		bw.WriteString(pad[:6-len(rtype)])
		bw.WriteString(value)
		bw.WriteByte('\n')
	}
	var num []byte
	for _, n := range names {
		rs := ix.names[n]
		for _, ip := range rs.A {
			line(n, "A", ip.String())
		}
		for _, ip := range rs.AAAA {
			line(n, "AAAA", ip.String())
		}
		for _, s := range rs.SRV {
			num = strconv.AppendUint(num[:0], uint64(s.Priority), 10)
			num = append(num, ' ')
			num = strconv.AppendUint(num, uint64(s.Weight), 10)
			num = append(num, ' ')
			num = strconv.AppendUint(num, uint64(s.Port), 10)
			num = append(num, ' ')
			line(n, "SRV", string(num)+s.Target)
		}
	}
	return bw.Flush()
}
