package dnsserver

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Answers of the zone are kept in wire format. A RecordIndex is compiled once, when it is swapped
// in, into a zoneAnswers: for every owner name and type, the answer and additional sections as
// bytes. Serving a query then only copies bytes and patches what depends on the query:
//
//   - the header (ID, RD and CD from the query, counts, TC);
//   - the question, copied from the query, so owner names keep the question's case (0x20): every
//     answer record's owner is a compression pointer to the question (0xC00C);
//   - the order of the answer records, rotated by one per query; a rotation is two copies, and the
//     additional records' owner names, which point into the answers' SRV targets, are re-pointed;
//   - the OPT record, echoed when the query had one.
//
// A name has the same length in every case, so the question's length, and with it every offset,
// is known when the answers are compiled.
//
// Names with the same records share one compiled answer (a task's or agent's address, an SRV
// list the index shares). While the first index of a big zone compiles, an interim zone answers
// each query with answers compiled for it by the same code (newInterimZone).

// DNS wire-format constants the server uses.
const (
	headerLen   = 12
	optLen      = 11 // an OPT record without options
	minUDPSize  = 512
	maxUDPSize  = 4096 // cap on the EDNS0 buffer size the server uses and echoes
	maxTCPSize  = 65535
	maxPointer  = 0x3FFF
	typeA       = 1
	typeNS      = 2
	typeSOA     = 6
	typeAAAA    = 28
	typeSRV     = 33
	typeOPT     = 41
	typeIXFR    = 251
	typeAXFR    = 252
	typeANY     = 255
	classIN     = 1
	classANY    = 255
	rcodeOK     = 0
	rcodeFail   = 2
	rcodeNX     = 3
	rcodeRefuse = 5
	srvTargetAt = 18 // offset of the target name in an SRV record whose owner is a pointer
)

// query is what the server needs of one question. qname is the wire-format name as sent (case
// kept); key is the lower-case presentation form ("app.marathon.mesos.") the index is keyed by.
type query struct {
	id      uint16
	flags   uint16 // the query's header flags; RD and CD are copied into the reply
	qname   []byte
	key     []byte
	qtype   uint16
	qclass  uint16
	edns    bool
	bufSize uint16
	do      bool
}

// udpLimit is the largest UDP reply the client takes: its EDNS0 buffer (at least 512, at most
// maxUDPSize), or 512 without EDNS0.
func (q *query) udpLimit() int {
	if !q.edns {
		return minUDPSize
	}
	return min(max(int(q.bufSize), minUDPSize), maxUDPSize)
}

// parseQuery reads a plain query (opcode QUERY, one question, at most an OPT record of EDNS
// version 0) from p into q, with q.key built in keyBuf. It returns false for anything else —
// malformed packets, responses, other opcodes, escapes in the name, TSIG — which the server
// then handles through miekg/dns.
func parseQuery(p []byte, q *query, keyBuf []byte) bool {
	if len(p) < headerLen+5 || p[2]&0xF8 != 0 || // QR set or opcode not QUERY
		binary.BigEndian.Uint16(p[4:]) != 1 || binary.BigEndian.Uint16(p[6:]) != 0 ||
		binary.BigEndian.Uint16(p[8:]) != 0 || binary.BigEndian.Uint16(p[10:]) > 1 {
		return false
	}
	q.id = binary.BigEndian.Uint16(p)
	q.flags = binary.BigEndian.Uint16(p[2:])
	key := keyBuf[:0]
	off := headerLen
	for {
		if off >= len(p) {
			return false
		}
		l := int(p[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(p) || off+1+l-headerLen > 254 {
			return false
		}
		for _, c := range p[off+1 : off+1+l] {
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
			key = append(key, c)
		}
		key = append(key, '.')
		off += 1 + l
	}
	if len(key) == 0 {
		key = append(key, '.')
	}
	q.qname = p[headerLen:off]
	q.key = key
	if off+4 > len(p) {
		return false
	}
	q.qtype = binary.BigEndian.Uint16(p[off:])
	q.qclass = binary.BigEndian.Uint16(p[off+2:])
	off += 4
	q.edns, q.do, q.bufSize = false, false, 0
	if p[11] == 1 {
		// The OPT record: root owner, type 41, class = buffer size, TTL = extended rcode,
		// version, flags (DO is the top bit); its options (cookies, client subnet) are ignored.
		if off+optLen > len(p) || p[off] != 0 || binary.BigEndian.Uint16(p[off+1:]) != typeOPT || p[off+6] != 0 {
			return false
		}
		q.edns = true
		q.bufSize = binary.BigEndian.Uint16(p[off+3:])
		q.do = p[off+7]&0x80 != 0
		off += optLen + int(binary.BigEndian.Uint16(p[off+9:]))
	}
	return off == len(p)
}

// appendWireKey appends the key of an uncompressed wire-format name, for the queries parseQuery
// does not take: lower case, labels joined by dots, and every byte no index name has written as
// \DDD. A dot inside a label ("foo\.mesos." is the one label "foo.mesos") so cannot pass for a
// label boundary, which keyInZone and the negative answers' pointer to the apex rely on.
func appendWireKey(key, wire []byte) []byte {
	for off := 0; off < len(wire) && wire[off] != 0; {
		l := int(wire[off])
		for _, c := range wire[off+1 : min(off+1+l, len(wire))] {
			switch {
			case c >= 'A' && c <= 'Z':
				key = append(key, c+'a'-'A')
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
				key = append(key, c)
			default:
				key = append(key, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
			}
		}
		key = append(key, '.')
		off += 1 + l
	}
	if len(key) == 0 {
		key = append(key, '.')
	}
	return key
}

// rrAnswer is one compiled answer: the records of one (name, type) and their additional records.
type rrAnswer struct {
	// data holds the answer records in canonical order, then the additional records.
	data   []byte
	ansLen uint32 // bytes of answer records at the start of data
	n      uint16 // answer records
	nAdd   uint16 // additional records
	// stride is the length of every answer record when they are all alike (A, AAAA, NS, SOA);
	// otherwise 0 and offs holds where each starts.
	stride uint16
	offs   []uint32
	// fixes are the additional records' owner-name pointers into the answers' SRV targets,
	// re-pointed after each rotation.
	fixes []addFix
}

// addFix: the pointer at data[ansLen+at] names the target of answer record ans.
type addFix struct {
	at  uint32
	ans uint16
}

// start is where answer record j begins in data.
func (a *rrAnswer) start(j int) int {
	if a.stride != 0 {
		return j * int(a.stride)
	}
	return int(a.offs[j])
}

// rotatedStart is where answer record j begins once the answers are rotated to start at r.
func (a *rrAnswer) rotatedStart(j, r int) int {
	if j >= r {
		return a.start(j) - a.start(r)
	}
	return int(a.ansLen) - a.start(r) + a.start(j)
}

// nameAnswers are the compiled answers of one owner name; nil means no records of that type.
type nameAnswers struct {
	a, aaaa, srv *rrAnswer
	soa, ns      *rrAnswer // the zone apex only
}

// zoneAnswers is the compiled form of a RecordIndex. It is immutable once built.
type zoneAnswers struct {
	ix     *RecordIndex
	apex   string // lower-case FQDN, "mesos."
	serial uint32
	ttl    uint32
	negTTL uint32
	ra     bool // set RA in replies (forwarding is on)
	soa    soaNames
	// answers holds the answers of the index's names in the index's order (RecordSet.pos);
	// names outside the zone have none. The apex's, with its SOA and NS, are apexSet.
	answers  []nameAnswers
	apexSet  nameAnswers
	numNames int // names with answers, the apex included
	// nonTerminals are names with no records of their own but with names below them
	// ("_tcp.marathon.mesos."): they exist, so they answer NOERROR without data, not NXDOMAIN.
	nonTerminals map[string]struct{}
	records      int // resource records in the index
	// interim: answers are compiled per query, while the compiled zone is being made (see
	// newInterimZone).
	interim bool
}

// compileZone builds the wire-format answers of every name of ix. A big zone is compiled by
// one goroutine per CPU (up to 4), each over its share of the names with its own compiler:
// compiling is most of the time from a new Mesos state to answering it.
func compileZone(ix *RecordIndex, apex string, ttl, negTTL uint32, ra bool) *zoneAnswers {
	workers := 1
	if ix.Len() >= parallelCompileNames {
		workers = min(runtime.GOMAXPROCS(0), 4)
	}
	z := &zoneAnswers{
		ix: ix, apex: apex, serial: ix.Serial, ttl: ttl, negTTL: negTTL, ra: ra,
		soa:          compileSOANames(ix, apex),
		answers:      make([]nameAnswers, len(ix.order)),
		nonTerminals: map[string]struct{}{},
	}
	parts := make([]compiledPart, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { parts[w] = compileShare(z, w, workers) })
	}
	wg.Wait()
	for _, p := range parts {
		for nt, ok := range p.parents {
			if !ok {
				z.nonTerminals[nt] = struct{}{}
			}
		}
		z.records += p.records
		z.numNames += p.names
	}
	c := &zoneCompiler{z: z}
	if rs := ix.Lookup(apex); rs != nil {
		z.apexSet = z.answers[rs.pos]
	} else {
		z.numNames++
	}
	z.apexSet.soa, z.apexSet.ns = c.apexSOA(), c.apexNS()
	return z
}

// newInterimZone returns the zone of ix to serve while compileZone compiles it: it compiles
// the answers of each query's name when asked, with the same code, so they are the compiled
// zone's to the byte. It cannot tell a name that does not exist from a non-terminal without
// the compiled zone's list of them: names the index does not have answer SERVFAIL, as every
// name of the zone did before the first index (resolvers retry, and cache nothing).
func newInterimZone(ix *RecordIndex, apex string, ttl, negTTL uint32, ra bool) *zoneAnswers {
	z := &zoneAnswers{ix: ix, apex: apex, serial: ix.Serial, ttl: ttl, negTTL: negTTL, ra: ra, interim: true,
		soa: compileSOANames(ix, apex)}
	c := &zoneCompiler{z: z}
	if rs := ix.Lookup(apex); rs != nil {
		z.apexSet = c.nameAnswers(apex, rs)
	}
	z.apexSet.soa, z.apexSet.ns = c.apexSOA(), c.apexNS()
	return z
}

// interimCompilers hold the compilers of interim zones' queries; a query's answers live in
// its compiler's slabs until the reply is written.
var interimCompilers = sync.Pool{New: func() any { return new(zoneCompiler) }}

// respondInterim is respond for an interim zone.
func (z *zoneAnswers) respondInterim(out []byte, q *query, limit int, rot uint32) ([]byte, int) {
	if string(q.key) == z.apex {
		return z.respondName(out, q, &z.apexSet, limit, rot)
	}
	rs := z.ix.Lookup(string(q.key))
	if rs == nil {
		return appendBare(out, q, z.ra, rcodeFail), rcodeFail
	}
	c := interimCompilers.Get().(*zoneCompiler)
	c.z = z
	c.byteSlab, c.offSlab, c.fixSlab, c.answerSlab = c.byteSlab[:0], c.offSlab[:0], c.fixSlab[:0], c.answerSlab[:0]
	na := c.nameAnswers(string(q.key), rs)
	out, rcode := z.respondName(out, q, &na, limit, rot)
	c.z = nil
	interimCompilers.Put(c)
	return out, rcode
}

// nameAnswers compiles the answers of one name on their own, sharing none with another name.
func (c *zoneCompiler) nameAnswers(name string, rs *RecordSet) nameAnswers {
	base := headerLen + wireNameLen(name) + 4
	na := nameAnswers{a: c.compileAddrs(base, rs.A, typeA), aaaa: c.compileAddrs(base, rs.AAAA, typeAAAA)}
	if len(rs.SRV) > 0 {
		na.srv = c.srv(base, name, rs.SRV)
	}
	return na
}

// parallelCompileNames is the zone size from which compiling is spread over several CPUs.
const parallelCompileNames = 20000

// share picks the compiler of a name, by a hash of its first label. The names whose records
// are often one shared SRV list, _{task}._tcp and ._udp in {fw}.{d} and {fw}.slave.{d} (see
// srvGroup), have the same first label, so one compiler makes their answer once; the first
// labels of the others (task, canonical and service names) differ, which spreads the work.
func share(name string, workers int) int {
	if workers == 1 {
		return 0
	}
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(name) && name[i] != '.'; i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return int(h % uint32(workers))
}

// lookup returns the answers of a lower-case FQDN of the zone (queries for other names never
// get here, so the index's names outside the zone, which have no answers, are never asked).
func (z *zoneAnswers) lookup(key []byte) (nameAnswers, bool) {
	if string(key) == z.apex {
		return z.apexSet, true
	}
	rs := z.ix.Lookup(string(key))
	if rs == nil {
		return nameAnswers{}, false
	}
	return z.answers[rs.pos], true
}

// len is the number of names with answers.
func (z *zoneAnswers) len() int { return z.numNames }

// compiledPart is what one compiling goroutine made, besides the answers it wrote in place.
type compiledPart struct {
	// parents are the parents of the share's names, each true when it has records of its
	// own, false when it is a non-terminal.
	parents map[string]bool
	records int
	names   int
}

// compileShare compiles the names of z's index that are share w of workers, writing their
// answers to z.answers. It reads z otherwise.
func compileShare(z *zoneAnswers, w, workers int) compiledPart {
	c := &zoneCompiler{z: z}
	ix := z.ix
	p := compiledPart{parents: map[string]bool{}}
	for _, e := range ix.order {
		name, rs := e.name, e.rs
		if share(name, workers) != w || !inZone(name, z.apex) {
			continue
		}
		base := headerLen + wireNameLen(name) + 4
		z.answers[rs.pos] = nameAnswers{
			a:    c.addrs(base, rs.A, typeA),
			aaaa: c.addrs(base, rs.AAAA, typeAAAA),
			srv:  c.sharedSRV(base, name, rs.SRV),
		}
		p.names++
		p.records += len(rs.A) + len(rs.AAAA) + len(rs.SRV)
		// Names have few parents, shared by many: each is looked up once. Once one is known,
		// so are all above it.
		for n := parentName(name); len(n) > len(z.apex); n = parentName(n) {
			if _, seen := p.parents[n]; seen {
				break
			}
			exists := ix.Lookup(n) != nil
			p.parents[n] = exists
			if exists {
				break
			}
		}
	}
	return p
}

// zoneCompiler builds rrAnswers. Their bytes, offsets and the rrAnswers themselves are cut from
// slabs, so a zone of a million records is a few thousand allocations, not millions.
type zoneCompiler struct {
	z       *zoneAnswers
	b       []byte // the message being built; answers start at its base offset
	offs    []uint32
	fixes   []addFix
	first   map[string]int
	targets []string
	firsts  []int

	// Compiled answers that do not depend on the owner name, for the names that have the
	// same records: single addresses (a task's, an agent's: thousands of names each) and SRV
	// lists the index shares between names (see srvGroup), by the list's first element and
	// length.
	oneAddr map[netip.Addr]*rrAnswer
	srvs    map[srvListID]*rrAnswer

	byteSlab   []byte
	offSlab    []uint32
	fixSlab    []addFix
	answerSlab []rrAnswer
}

// slabCut copies items into the slab and returns the copy, starting a new slab chunk when the
// current one is full.
func slabCut[T any](slab *[]T, items []T) []T {
	if len(items) == 0 {
		return nil
	}
	if cap(*slab)-len(*slab) < len(items) {
		*slab = make([]T, 0, max(64<<10/int(unsafe.Sizeof(items[0])), len(items)))
	}
	start := len(*slab)
	*slab = append(*slab, items...)
	return (*slab)[start:len(*slab):len(*slab)]
}

// start begins a message whose answers start at base.
func (c *zoneCompiler) start(base int) {
	c.b = append(c.b[:0], make([]byte, base)...)
	c.offs, c.fixes = c.offs[:0], c.fixes[:0]
}

// finish keeps the records built since start as an rrAnswer of n answer records.
func (c *zoneCompiler) finish(base, ansEnd, n, nAdd, stride int) *rrAnswer {
	a := rrAnswer{
		data: slabCut(&c.byteSlab, c.b[base:]), ansLen: uint32(ansEnd - base), n: uint16(n), nAdd: uint16(nAdd),
		stride: uint16(stride), offs: slabCut(&c.offSlab, c.offs), fixes: slabCut(&c.fixSlab, c.fixes),
	}
	return &slabCut(&c.answerSlab, []rrAnswer{a})[0]
}

// addrs compiles A or AAAA records; addresses of the other family are left out. Their answer
// does not depend on base (the owner is a pointer to the question): a single address's is
// compiled once and shared by every name that has it.
func (c *zoneCompiler) addrs(base int, addrs []netip.Addr, qtype uint16) *rrAnswer {
	if len(addrs) == 1 {
		ip := addrs[0].Unmap()
		if ip.Is4() != (qtype == typeA) {
			return nil
		}
		if a, ok := c.oneAddr[ip]; ok {
			return a
		}
		if c.oneAddr == nil {
			c.oneAddr = map[netip.Addr]*rrAnswer{}
		}
		a := c.compileAddrs(base, addrs, qtype)
		c.oneAddr[ip] = a
		return a
	}
	return c.compileAddrs(base, addrs, qtype)
}

func (c *zoneCompiler) compileAddrs(base int, addrs []netip.Addr, qtype uint16) *rrAnswer {
	c.start(base)
	n := 0
	for _, ip := range addrs {
		if ip = ip.Unmap(); ip.Is4() == (qtype == typeA) {
			c.b = binary.BigEndian.AppendUint16(c.b, 0xC000|headerLen)
			c.b = appendAddrData(c.b, c.z.ttl, ip)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return c.finish(base, len(c.b), n, 0, (len(c.b)-base)/n)
}

// srvListID identifies an SRV list of the index: lists are only ever shared whole.
type srvListID struct {
	first *SRV
	n     int
}

// sharedSRV is srv for a list several names may share. The compiled answer depends on the
// owner name only when its additional records cannot point at the targets (a message past
// compression-pointer range), so one answer serves every sharer whose question leaves the
// targets in range.
func (c *zoneCompiler) sharedSRV(base int, name string, srvs []SRV) *rrAnswer {
	if len(srvs) == 0 {
		return nil
	}
	id := srvListID{unsafe.SliceData(srvs), len(srvs)}
	if a, ok := c.srvs[id]; ok && base+int(a.ansLen) <= maxPointer {
		return a
	}
	a := c.srv(base, name, srvs)
	if base+int(a.ansLen) <= maxPointer {
		if c.srvs == nil {
			c.srvs = map[srvListID]*rrAnswer{}
		}
		c.srvs[id] = a
	}
	return a
}

// srv compiles SRV records and, as additional records, the A and AAAA records of their targets.
// Targets are written uncompressed (RFC 2782), so every answer record stands alone and can be
// moved; the additional records' owners point at those targets while the message stays within
// compression-pointer range, and are written out in full (up to the zone apex, a pointer into
// the question) otherwise.
func (c *zoneCompiler) srv(base int, name string, srvs []SRV) *rrAnswer {
	if len(srvs) == 0 {
		return nil
	}
	z := c.z
	c.start(base)
	// targets are the distinct targets in order, firsts the answer record naming each first.
	// A short list is searched; a long one has a map (cleared per list: a map's clear costs
	// its capacity, so the short lists must not pay for the longest).
	useMap := len(srvs) > 16
	if useMap {
		if c.first == nil {
			c.first = map[string]int{}
		}
		clear(c.first)
	}
	c.targets, c.firsts = c.targets[:0], c.firsts[:0]
	for i, s := range srvs {
		c.offs = append(c.offs, uint32(len(c.b)-base))
		c.b = append(c.b, 0xC0, headerLen)
		c.b = appendRRHeader(c.b, typeSRV, z.ttl, 6+wireNameLen(s.Target))
		c.b = binary.BigEndian.AppendUint16(c.b, s.Priority)
		c.b = binary.BigEndian.AppendUint16(c.b, s.Weight)
		c.b = binary.BigEndian.AppendUint16(c.b, s.Port)
		c.b = appendWireName(c.b, s.Target)
		if useMap {
			if _, ok := c.first[s.Target]; ok {
				continue
			}
			c.first[s.Target] = i
		} else if slices.Contains(c.targets, s.Target) {
			continue
		}
		c.targets = append(c.targets, s.Target)
		c.firsts = append(c.firsts, i)
	}
	ansEnd := len(c.b)
	pointable := ansEnd <= maxPointer
	apexAt := headerLen + wireNameLen(name) - wireNameLen(z.apex)
	nAdd := 0
	for k, t := range c.targets {
		rs := z.ix.Lookup(t)
		if rs == nil {
			continue
		}
		for _, list := range [...][]netip.Addr{rs.A, rs.AAAA} {
			for _, ip := range list {
				if pointable {
					c.fixes = append(c.fixes, addFix{at: uint32(len(c.b) - ansEnd), ans: uint16(c.firsts[k])})
					c.b = append(c.b, 0xC0, 0) // re-pointed per query
				} else {
					c.b = z.appendOwner(c.b, t, apexAt)
				}
				c.b = appendAddrData(c.b, z.ttl, ip)
				nAdd++
			}
		}
	}
	return c.finish(base, ansEnd, len(srvs), nAdd, 0)
}

// apexSOA compiles the SOA answer at the apex.
func (c *zoneCompiler) apexSOA() *rrAnswer {
	base := headerLen + wireNameLen(c.z.apex) + 4
	c.start(base)
	c.b = c.z.appendSOA(c.b, headerLen, c.z.ttl)
	return c.finish(base, len(c.b), 1, 0, len(c.b)-base)
}

// apexNS compiles the NS answer at the apex (ns1.{apex}) with ns1's addresses, if the index has
// any, as additional records.
func (c *zoneCompiler) apexNS() *rrAnswer {
	z := c.z
	base := headerLen + wireNameLen(z.apex) + 4
	c.start(base)
	c.b = append(c.b, 0xC0, headerLen)
	c.b = appendRRHeader(c.b, typeNS, z.ttl, 6)
	nsAt := len(c.b)
	c.b = append(c.b, 3, 'n', 's', '1', 0xC0, headerLen)
	ansEnd := len(c.b)
	nAdd := 0
	if rs := z.ix.Lookup("ns1." + z.apex); rs != nil {
		for _, list := range [...][]netip.Addr{rs.A, rs.AAAA} {
			for _, ip := range list {
				c.b = binary.BigEndian.AppendUint16(c.b, uint16(0xC000|nsAt))
				c.b = appendAddrData(c.b, z.ttl, ip)
				nAdd++
			}
		}
	}
	return c.finish(base, ansEnd, 1, nAdd, ansEnd-base)
}

// appendOwner writes name for use as an owner: its labels below the zone apex, then a pointer
// to the apex in the question at apexAt; a name outside the zone in full.
func (z *zoneAnswers) appendOwner(b []byte, name string, apexAt int) []byte {
	if !inZone(name, z.apex) {
		return appendWireName(b, name)
	}
	b = appendWireName(b, name[:len(name)-len(z.apex)])
	b = b[:len(b)-1] // drop the root label the prefix ended with
	return binary.BigEndian.AppendUint16(b, uint16(0xC000|apexAt))
}

// appendSOA appends the zone's SOA record, its owner a pointer to the apex at apexAt:
// {mname} {rname} serial refresh retry expire {negTTL} (by default ns1.{apex} root.ns1.{apex}
// serial 60 600 86400, mesos-dns's).
func (z *zoneAnswers) appendSOA(b []byte, apexAt int, ttl uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(0xC000|apexAt))
	b = appendRRHeader(b, typeSOA, ttl, 0)
	rdAt := len(b)
	mnameAt := len(b)
	b = z.soa.mname.append(b, apexAt, 0)
	b = z.soa.rname.append(b, apexAt, mnameAt)
	cfg := &z.ix.cfg
	b = binary.BigEndian.AppendUint32(b, z.serial)
	b = binary.BigEndian.AppendUint32(b, cfg.SOARefresh)
	b = binary.BigEndian.AppendUint32(b, cfg.SOARetry)
	b = binary.BigEndian.AppendUint32(b, cfg.SOAExpire)
	b = binary.BigEndian.AppendUint32(b, z.negTTL)
	binary.BigEndian.PutUint16(b[rdAt-2:], uint16(len(b)-rdAt))
	return b
}

// soaNames are the SOA's mname and rname, compiled once per zone into what every SOA record
// writes of them.
type soaNames struct{ mname, rname soaName }

// soaName is a name in an SOA record: its labels, then a pointer to the apex (in the zone), or
// to the mname (rname below the mname, as root.ns1.mesos. below ns1.mesos.), or the root
// label (a name elsewhere).
type soaName struct {
	labels []byte
	ref    soaRef
}

type soaRef uint8

const (
	soaRefRoot soaRef = iota
	soaRefApex
	soaRefMname
)

func compileSOANames(ix *RecordIndex, apex string) soaNames {
	mname, rname := fqdn(ix.Mname), fqdn(ix.Rname)
	var n soaNames
	n.mname = compileSOAName(mname, apex, "")
	n.rname = compileSOAName(rname, apex, mname)
	return n
}

func compileSOAName(name, apex, mname string) soaName {
	switch {
	case mname != "" && strings.HasSuffix(name, "."+mname):
		return soaName{labels: wireLabels(name[:len(name)-len(mname)]), ref: soaRefMname}
	case inZone(name, apex):
		return soaName{labels: wireLabels(name[:len(name)-len(apex)]), ref: soaRefApex}
	}
	return soaName{labels: appendWireName(nil, name), ref: soaRefRoot}
}

// wireLabels is the wire form of a name's leading labels ("ns1."), without the root label.
func wireLabels(prefix string) []byte {
	b := appendWireName(nil, prefix)
	return b[:len(b)-1]
}

func (n soaName) append(b []byte, apexAt, mnameAt int) []byte {
	b = append(b, n.labels...)
	switch n.ref {
	case soaRefApex:
		return binary.BigEndian.AppendUint16(b, uint16(0xC000|apexAt))
	case soaRefMname:
		return binary.BigEndian.AppendUint16(b, uint16(0xC000|mnameAt))
	}
	return b
}

// respond appends to out (empty, with room for limit bytes) the reply to an in-zone query and
// returns it with its rcode. limit is the largest reply the transport takes.
func (z *zoneAnswers) respond(out []byte, q *query, limit int, rot uint32) ([]byte, int) {
	if q.qclass != classIN && q.qclass != classANY || q.qtype == typeAXFR || q.qtype == typeIXFR {
		// Other classes are not served; zone transfers are not offered (mesos-dns's /v1/axfr
		// JSON is the way to list the zone).
		return appendBare(out, q, z.ra, rcodeRefuse), rcodeRefuse
	}
	if z.interim {
		return z.respondInterim(out, q, limit, rot)
	}
	na, ok := z.lookup(q.key)
	if !ok {
		if _, ok := z.nonTerminals[string(q.key)]; ok {
			return z.appendNegative(out, q, rcodeOK), rcodeOK
		}
		return z.appendNegative(out, q, rcodeNX), rcodeNX
	}
	return z.respondName(out, q, &na, limit, rot)
}

// respondName answers a query for a name of the zone from its answers.
func (z *zoneAnswers) respondName(out []byte, q *query, na *nameAnswers, limit int, rot uint32) ([]byte, int) {
	var a *rrAnswer
	switch q.qtype {
	case typeA:
		a = na.a
	case typeAAAA:
		a = na.aaaa
	case typeSRV:
		a = na.srv
	case typeSOA:
		a = na.soa
	case typeNS:
		a = na.ns
	case typeANY:
		// RFC 8482: one RRset is a complete answer to ANY.
		for _, c := range [...]*rrAnswer{na.soa, na.a, na.aaaa, na.srv} {
			if c != nil {
				a = c
				break
			}
		}
	}
	if a == nil {
		return z.appendNegative(out, q, rcodeOK), rcodeOK
	}
	return z.appendPositive(out, q, a, limit, rot), rcodeOK
}

// appendPositive writes a's records, rotated to start at record rot mod n. What does not fit in
// limit is dropped: first the additional records (all of them; no TC), then answer records from
// the end (TC set).
func (z *zoneAnswers) appendPositive(out []byte, q *query, a *rrAnswer, limit int, rot uint32) []byte {
	out = appendHead(out, q, z.ra, true, rcodeOK)
	base := len(out)
	budget := limit
	if q.edns {
		budget -= optLen
	}
	n := int(a.n)
	r := int(rot % uint32(n))
	an, ar, tc := n, 0, false
	if base+int(a.ansLen) <= budget {
		rs := a.start(r)
		out = append(out, a.data[rs:a.ansLen]...)
		out = append(out, a.data[:rs]...)
		if a.nAdd > 0 && base+len(a.data) <= budget {
			addAt := len(out)
			out = append(out, a.data[a.ansLen:]...)
			for _, f := range a.fixes {
				ptr := base + a.rotatedStart(int(f.ans), r) + srvTargetAt
				binary.BigEndian.PutUint16(out[addAt+int(f.at):], uint16(0xC000|ptr))
			}
			ar = int(a.nAdd)
		}
	} else {
		an, tc = 0, true
		for k := range n {
			j := (r + k) % n
			end := int(a.ansLen)
			if j+1 < n {
				end = a.start(j + 1)
			}
			rr := a.data[a.start(j):end]
			if len(out)+len(rr) > budget {
				break
			}
			out = append(out, rr...)
			an++
		}
	}
	if tc {
		out[2] |= 0x02
	}
	return finishReply(out, q, an, 0, ar)
}

// appendNegative writes NXDOMAIN or no-data: the SOA in the authority section, its TTL the
// smaller of the zone TTL and the negative TTL (RFC 2308).
func (z *zoneAnswers) appendNegative(out []byte, q *query, rcode int) []byte {
	out = appendHead(out, q, z.ra, true, rcode)
	apexAt := headerLen + len(q.qname) - wireNameLen(z.apex)
	out = z.appendSOA(out, apexAt, min(z.ttl, z.negTTL))
	return finishReply(out, q, 0, 1, 0)
}

// appendBare writes a reply with no records: the header, the question and the OPT record.
func appendBare(out []byte, q *query, ra bool, rcode int) []byte {
	return finishReply(appendHead(out, q, ra, false, rcode), q, 0, 0, 0)
}

// appendHead writes the header (counts are set by finishReply) and the question.
func appendHead(out []byte, q *query, ra, aa bool, rcode int) []byte {
	flags := uint16(0x8000) | q.flags&0x0110 | uint16(rcode) // QR, RD and CD of the query
	if aa {
		flags |= 0x0400
	}
	if ra {
		flags |= 0x0080
	}
	out = binary.BigEndian.AppendUint16(out, q.id)
	out = binary.BigEndian.AppendUint16(out, flags)
	out = append(out, 0, 1, 0, 0, 0, 0, 0, 0)
	out = append(out, q.qname...)
	out = binary.BigEndian.AppendUint16(out, q.qtype)
	return binary.BigEndian.AppendUint16(out, q.qclass)
}

// finishReply sets the section counts and appends the OPT record when the query had one: the
// client's buffer size (capped) echoed, and its DO bit.
func finishReply(out []byte, q *query, an, ns, ar int) []byte {
	if q.edns {
		ar++
		size := min(max(q.bufSize, minUDPSize), maxUDPSize)
		out = append(out, 0, 0, typeOPT, byte(size>>8), byte(size), 0, 0, 0, 0, 0, 0)
		if q.do {
			out[len(out)-4] = 0x80
		}
	}
	binary.BigEndian.PutUint16(out[6:], uint16(an))
	binary.BigEndian.PutUint16(out[8:], uint16(ns))
	binary.BigEndian.PutUint16(out[10:], uint16(ar))
	return out
}

// appendRRHeader writes type, class IN, TTL and the data length.
func appendRRHeader(b []byte, rtype uint16, ttl uint32, rdLen int) []byte {
	b = binary.BigEndian.AppendUint16(b, rtype)
	b = binary.BigEndian.AppendUint16(b, classIN)
	b = binary.BigEndian.AppendUint32(b, ttl)
	return binary.BigEndian.AppendUint16(b, uint16(rdLen))
}

// appendAddrData writes an A or AAAA record after its owner name, the type following the address.
func appendAddrData(b []byte, ttl uint32, ip netip.Addr) []byte {
	ip = ip.Unmap()
	if ip.Is4() {
		b = appendRRHeader(b, typeA, ttl, 4)
		a := ip.As4()
		return append(b, a[:]...)
	}
	b = appendRRHeader(b, typeAAAA, ttl, 16)
	a := ip.As16()
	return append(b, a[:]...)
}

// appendWireName writes a presentation-form FQDN ("a.b.") in wire form, uncompressed. Index
// names have no escapes.
func appendWireName(b []byte, name string) []byte {
	for name != "" && name != "." {
		i := 0
		for i < len(name) && name[i] != '.' {
			i++
		}
		b = append(b, byte(i))
		b = append(b, name[:i]...)
		if i == len(name) {
			break
		}
		name = name[i+1:]
	}
	return append(b, 0)
}

// wireNameLen is the length of a presentation-form FQDN in wire form.
func wireNameLen(name string) int {
	if name == "." || name == "" {
		return 1
	}
	return len(name) + 1
}

// keyInZone is inZone for a query's key, without converting it to a string.
func keyInZone(key []byte, apex string) bool {
	if len(key) == len(apex) {
		return string(key) == apex
	}
	return len(key) > len(apex) && key[len(key)-len(apex)-1] == '.' && string(key[len(key)-len(apex):]) == apex
}

// inZone reports whether the lower-case FQDN name is apex or below it.
func inZone(name, apex string) bool {
	if len(name) == len(apex) {
		return name == apex
	}
	return len(name) > len(apex) && name[len(name)-len(apex)-1] == '.' && name[len(name)-len(apex):] == apex
}

// parentName drops the first label of an FQDN.
func parentName(name string) string {
	_, rest, _ := strings.Cut(name, ".")
	return rest
}
