package dnsserver

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/discovery"
)

// referenceAnswers compiles one name's answers on their own (nameAnswers shares no answer
// with another name).
func referenceAnswers(c *zoneCompiler, name string, rs *RecordSet) nameAnswers {
	return c.nameAnswers(name, rs)
}

// referenceNonTerminals walks every name's parents up to the apex.
func referenceNonTerminals(ix *RecordIndex, apex string) map[string]struct{} {
	out := map[string]struct{}{}
	for name, rs := range ix.All() {
		if rs == nil || !inZone(name, apex) {
			continue
		}
		for n := parentName(name); len(n) > len(apex); n = parentName(n) {
			if ix.Lookup(n) != nil {
				break
			}
			out[n] = struct{}{}
		}
	}
	return out
}

func sameAnswer(a, b *rrAnswer) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(*a, *b)
}

// describe summarises an answer for a failure message.
func describe(a *rrAnswer) string {
	if a == nil {
		return "none"
	}
	return fmt.Sprintf("%d answers (%d bytes), %d additional (%d bytes), %d pointers re-pointed",
		a.n, a.ansLen, a.nAdd, len(a.data)-int(a.ansLen), len(a.fixes))
}

// checkZone compares every name's compiled answers with the reference compile.
func checkZone(t *testing.T, ix *RecordIndex) *zoneAnswers {
	t.Helper()
	z := compileZone(ix, "mesos.", 60, 5, true)
	names := 0
	ref := &zoneCompiler{z: z}
	for name, rs := range ix.All() {
		if rs == nil {
			continue
		}
		names++
		got, ok := z.lookup([]byte(name))
		if !ok {
			t.Fatalf("%s: not compiled", name)
		}
		want := referenceAnswers(ref, name, rs)
		for _, c := range []struct {
			rtype     string
			got, want *rrAnswer
		}{{"A", got.a, want.a}, {"AAAA", got.aaaa, want.aaaa}, {"SRV", got.srv, want.srv}} {
			if !sameAnswer(c.got, c.want) {
				t.Fatalf("%s %s: compiled answer differs from the name's own:\n%s\nwant\n%s", name, c.rtype, describe(c.got), describe(c.want))
			}
		}
	}
	if _, ok := ix.names["mesos."]; !ok {
		names++ // the apex, added for its SOA and NS
	}
	if z.len() != names {
		t.Errorf("%d names compiled, want %d", z.len(), names)
	}
	if want := referenceNonTerminals(ix, "mesos."); !reflect.DeepEqual(z.nonTerminals, want) {
		t.Errorf("%d non-terminals, want %d", len(z.nonTerminals), len(want))
	}
	return z
}

// TestCompileZoneSharesAnswersFaithfully: a big zone is compiled in shards, with the answers
// of names that have the same single address or the same SRV list made once; every name's
// answers are still byte for byte those it would get on its own.
func TestCompileZoneSharesAnswersFaithfully(t *testing.T) {
	st, err := discovery.DecodeMesosState(mesosStateJSON(1000, 10, 200, 100))
	if err != nil {
		t.Fatal(err)
	}
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	if ix.Len() < parallelCompileNames {
		t.Fatalf("%d names: too few to compile in parallel", ix.Len())
	}
	z := checkZone(t, ix)
	// _{task}._tcp and ._udp in {fw}.slave.{d} share one SRV list, and so one answer.
	tcp, ok1 := z.lookup([]byte("_svc-3-apps._tcp.marathon.slave.mesos."))
	udp, ok2 := z.lookup([]byte("_svc-3-apps._udp.marathon.slave.mesos."))
	if !ok1 || !ok2 || tcp.srv == nil || tcp.srv != udp.srv {
		t.Errorf("_svc-3-apps._tcp and ._udp.marathon.slave.mesos.: SRV answers %p and %p, want one shared", tcp.srv, udp.srv)
	}
}

// TestCompileZoneSharedSRVOutOfPointerRange: names sharing one SRV list of nearly 16 KiB of
// answers, some short enough for the additional records to point at the targets and some so
// long they cannot, each get the answer their own length calls for.
func TestCompileZoneSharedSRVOutOfPointerRange(t *testing.T) {
	var list []SRV
	sets := map[string]*RecordSet{}
	// The answers end 100 bytes short of pointer range after a question of 32 bytes.
	for i, size := 0, 0; ; i++ {
		target := fmt.Sprintf("task-%04d-with-a-rather-long-canonical-name.marathon.slave.mesos.", i)
		rr := 2 + 10 + 6 + wireNameLen(target)
		if headerLen+32+size+rr > maxPointer-100 {
			break
		}
		size += rr
		list = append(list, SRV{Target: target, Port: uint16(31000 + i)})
		sets[target] = &RecordSet{A: []netip.Addr{netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})}}
	}
	long := strings.Repeat("x", 60)
	owners := []string{
		"_a._tcp.marathon.mesos.",
		"_a._udp.marathon.mesos.",
		"_a." + long + "." + long + "." + long + ".marathon.mesos.",
		"_a." + long + "." + long + ".marathon.mesos.",
		"_a.b.marathon.mesos.",
	}
	for _, o := range owners {
		sets[o] = &RecordSet{SRV: list}
	}
	ix := NewRecordIndex("mesos.", 1, sets)
	z := checkZone(t, ix)
	var pointable, written int
	for _, o := range owners {
		na, _ := z.lookup([]byte(o))
		if len(na.srv.fixes) > 0 {
			pointable++
		} else {
			written++
		}
	}
	if pointable == 0 || written == 0 {
		t.Errorf("%d owners with pointed additional records, %d with written ones; want both", pointable, written)
	}
}

// TestInterimZoneAnswersAsCompiled: while the first index of a big zone compiles, the interim
// zone answers every name of the index exactly as the compiled zone will, and the names it
// does not have (non-existent or non-terminal) SERVFAIL, as before any index.
func TestInterimZoneAnswersAsCompiled(t *testing.T) {
	st, err := discovery.DecodeMesosState(mesosStateJSON(1000, 10, 200, 100))
	if err != nil {
		t.Fatal(err)
	}
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	z := compileZone(ix, "mesos.", 60, 5, true)
	iz := newInterimZone(ix, "mesos.", 60, 5, true)
	names := []string{"mesos.", "_svc-3-apps._tcp.marathon.mesos.", "_big-one-apps._udp.marathon.slave.mesos."}
	for i, name := range ix.Names() {
		if i%5 == 0 {
			names = append(names, name)
		}
	}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY, dns.TypeSOA, dns.TypeNS, dns.TypeTXT}
	bufs := map[*zoneAnswers][]byte{z: make([]byte, 0, maxTCPSize), iz: make([]byte, 0, maxTCPSize)}
	respond := func(z *zoneAnswers, name string, qtype, edns uint16) ([]byte, int) {
		m := newQuery(name, qtype, edns)
		m.Id = 4711
		pkt, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var q query
		if !parseQuery(pkt, &q, nil) {
			t.Fatalf("%s: query does not parse", name)
		}
		out := bufs[z][:0]
		if edns == 0 {
			return z.respond(out, &q, minUDPSize, 7)
		}
		return z.respond(out, &q, int(edns), 7)
	}
	answered := 0
	for _, name := range names {
		for _, qtype := range qtypes {
			for _, edns := range []uint16{0, 4096} {
				want, wantRcode := respond(z, name, qtype, edns)
				got, rcode := respond(iz, name, qtype, edns)
				if rcode != wantRcode || !bytes.Equal(got, want) {
					t.Fatalf("%s %s (EDNS %d): interim answer (rcode %d, %d bytes) differs from the compiled one (rcode %d, %d bytes)",
						name, dns.TypeToString[qtype], edns, rcode, len(got), wantRcode, len(want))
				}
				answered++
			}
		}
	}
	for _, name := range []string{"nothing.marathon.mesos.", "_tcp.marathon.mesos."} {
		if _, rcode := respond(iz, name, dns.TypeA, 0); rcode != rcodeFail {
			t.Errorf("%s: interim rcode %d, want SERVFAIL (%d)", name, rcode, rcodeFail)
		}
	}
	if answered < 1000 {
		t.Errorf("only %d answers compared", answered)
	}
}
