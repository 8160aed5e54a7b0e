package dnsserver

import (
	"net"
	"strconv"
)

// AXFR is every record of the zone in mesos-dns's GET /v1/axfr shape (field names included).
type AXFR struct {
	Domain         string
	Mname          string
	Rname          string
	Serial         uint32
	TTL            uint32
	RefreshSeconds int
	Records        AXFRRecords
}

// AXFRRecords maps owner names (FQDN) to values: addresses for As and AAAAs, "target:port"
// for SRVs ("liquor-store-4dfjd-0.marathon.mesos.:80"). Values are sorted.
type AXFRRecords struct {
	As    map[string][]string
	AAAAs map[string][]string
	SRVs  map[string][]string
}

// AXFR returns every record in mesos-dns's /v1/axfr shape.
func (ix *RecordIndex) AXFR() AXFR {
	out := AXFR{
		Records: AXFRRecords{As: map[string][]string{}, AAAAs: map[string][]string{}, SRVs: map[string][]string{}},
	}
	if ix == nil {
		return out
	}
	out.Domain = ix.cfg.Domain
	out.Mname, out.Rname, out.Serial = ix.Mname, ix.Rname, ix.Serial
	out.TTL, out.RefreshSeconds = ix.cfg.TTL, ix.cfg.RefreshSeconds
	for name, rs := range ix.names {
		if len(rs.A) > 0 {
			out.Records.As[name] = addrStrings(rs.A)
		}
		if len(rs.AAAA) > 0 {
			out.Records.AAAAs[name] = addrStrings(rs.AAAA)
		}
		if len(rs.SRV) > 0 {
			v := make([]string, len(rs.SRV))
			for i, s := range rs.SRV {
				v[i] = net.JoinHostPort(s.Target, strconv.Itoa(int(s.Port)))
			}
			out.Records.SRVs[name] = v
		}
	}
	return out
}

func addrStrings[T interface{ String() string }](addrs []T) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// Enumeration is mesos-dns's GET /v1/enumerate: every framework of the Mesos state, its tasks
// that have records, and each task's records.
type Enumeration struct {
	Frameworks []*EnumerableFramework `json:"frameworks"`
}

// EnumerableFramework is one framework (by its name in the Mesos state) and its tasks.
type EnumerableFramework struct {
	Tasks []*EnumerableTask `json:"tasks"`
	Name  string            `json:"name"`
}

// EnumerableTask is one task and the records it contributes.
type EnumerableTask struct {
	Name    string             `json:"name"`
	ID      string             `json:"id"`
	Records []EnumerableRecord `json:"records"`
}

// EnumerableRecord is one record: name is the owner FQDN, host the address (A, AAAA) or
// "target:port" (SRV), rtype the type.
type EnumerableRecord struct {
	Name  string `json:"name"`
	Host  string `json:"host"`
	Rtype string `json:"rtype"`
}

// framework returns the entry of a framework by name, adding it when missing.
func (e *Enumeration) framework(name string) *EnumerableFramework {
	for _, f := range e.Frameworks {
		if f.Name == name {
			return f
		}
	}
	f := &EnumerableFramework{Name: name, Tasks: []*EnumerableTask{}}
	e.Frameworks = append(e.Frameworks, f)
	return f
}

// Enumerate returns every task's records by framework, in mesos-dns's /v1/enumerate shape.
// The per-task view is not kept in the index (it would double its memory); it is rebuilt from
// the snapshot the index was made of, so one call costs about one BuildIndex.
func (ix *RecordIndex) Enumerate() Enumeration {
	out := Enumeration{Frameworks: []*EnumerableFramework{}}
	if ix == nil || ix.snap == nil {
		return out
	}
	b := newBuilder(ix.snap, ix.cfg)
	b.enum = &out
	b.build()
	return out
}
