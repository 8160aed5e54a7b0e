package dnsserver

import (
	"encoding/binary"
	"errors"
)

// An upstream's answer is untrusted data: before it is relayed or cached, readAnswer walks it
// record by record in wire format (no unpacking, no allocation) and checks that it is a
// well-formed response to the question asked.

// answerInfo is what readAnswer learns of an upstream's answer.
type answerInfo struct {
	rcode     int  // the header's rcode (the OPT record's extended bits give rcode 16 and up)
	truncated bool // TC
	answers   int  // records in the answer section
	// ttls are the offsets of the TTL fields of every record but OPT, for the cache to count
	// them down; readAnswer appends to the slice it is given.
	ttls []uint16
	// minTTL is the smallest TTL of those records (maxUint32 when there are none).
	minTTL uint32
	// soaTTL is min(TTL, MINIMUM) of the first SOA record of the authority section (RFC 2308
	// §5), valid when hasSOA.
	soaTTL uint32
	hasSOA bool
	// optAt is where the OPT record starts (-1: none), optEnd where it ends.
	optAt, optEnd int
}

// maxNamePointers bounds the compression pointers followed in one name: a loop of pointers is
// refused, not followed forever.
const maxNamePointers = 32

var (
	errAnswerShort    = errors.New("answer cut short")
	errAnswerName     = errors.New("answer holds a malformed name")
	errAnswerNotReply = errors.New("not a response to a standard query")
	errAnswerQuestion = errors.New("answer for another question")
	errAnswerTrailing = errors.New("answer has bytes after its last record")
	errAnswerOPT      = errors.New("answer has a misplaced or second OPT record")
)

// readAnswer checks that msg is a response to the question of q (name compared without regard
// to case, type, class) and well formed throughout, and fills info.
func readAnswer(msg []byte, q *query, info *answerInfo) error {
	info.ttls = info.ttls[:0]
	info.minTTL, info.hasSOA, info.soaTTL, info.optAt, info.optEnd = ^uint32(0), false, 0, -1, -1
	if len(msg) < headerLen {
		return errAnswerShort
	}
	if msg[2]&0x80 == 0 || msg[2]&0x78 != 0 || binary.BigEndian.Uint16(msg[4:]) != 1 {
		return errAnswerNotReply
	}
	info.rcode = int(msg[3] & 0x0F)
	info.truncated = msg[2]&0x02 != 0
	if !questionIs(msg, q) {
		return errAnswerQuestion
	}
	counts := [3]int{int(binary.BigEndian.Uint16(msg[6:])), int(binary.BigEndian.Uint16(msg[8:])), int(binary.BigEndian.Uint16(msg[10:]))}
	info.answers = counts[0]
	off := headerLen + len(q.qname) + 4
	for section, n := range counts {
		for range n {
			end, err := readRecord(msg, off, section, info)
			if err != nil {
				return err
			}
			off = end
		}
	}
	if off != len(msg) {
		return errAnswerTrailing
	}
	return nil
}

// readRecord checks the record at off of the given section (0 answer, 1 authority, 2
// additional), notes its TTL, and returns where it ends.
func readRecord(msg []byte, off, section int, info *answerInfo) (int, error) {
	at := off
	off, err := skipName(msg, off)
	if err != nil {
		return 0, err
	}
	if off+10 > len(msg) {
		return 0, errAnswerShort
	}
	rtype := binary.BigEndian.Uint16(msg[off:])
	ttl := binary.BigEndian.Uint32(msg[off+4:])
	rdStart := off + 10
	end := rdStart + int(binary.BigEndian.Uint16(msg[off+8:]))
	if end > len(msg) {
		return 0, errAnswerShort
	}
	if rtype == typeOPT {
		// One OPT record, rooted, in the additional section; its TTL field is the extended
		// rcode, version and flags, not a time.
		if section != 2 || info.optAt >= 0 || off != at+1 {
			return 0, errAnswerOPT
		}
		info.optAt, info.optEnd = at, end
		info.rcode |= int(msg[off+4]) << 4
		return end, nil
	}
	if ttl > 1<<31-1 {
		ttl = 0 // RFC 2181 §8: a TTL with the top bit set means zero
	}
	info.ttls = append(info.ttls, uint16(off+4))
	info.minTTL = min(info.minTTL, ttl)
	if rtype == typeSOA && section == 1 && !info.hasSOA {
		p, err := skipName(msg, rdStart) // MNAME
		if err == nil {
			p, err = skipName(msg, p) // RNAME
		}
		if err != nil || p+20 != end {
			return 0, errAnswerName
		}
		info.hasSOA = true
		info.soaTTL = min(ttl, binary.BigEndian.Uint32(msg[p+16:]))
	}
	return end, nil
}

// questionIs reports whether msg's question section is q's question: the same wire name
// (ASCII case aside: label lengths are below 64 and never fold), type and class.
func questionIs(msg []byte, q *query) bool {
	end := headerLen + len(q.qname)
	if end+4 > len(msg) || !equalFoldASCII(msg[headerLen:end], q.qname) {
		return false
	}
	return binary.BigEndian.Uint16(msg[end:]) == q.qtype && binary.BigEndian.Uint16(msg[end+2:]) == q.qclass
}

// equalFoldASCII compares two byte strings, ASCII letters without regard to case.
func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// skipName returns where the (possibly compressed) name at off ends. Pointers must point
// backwards, at most maxNamePointers of them, and the name may not pass 255 bytes.
func skipName(msg []byte, off int) (int, error) {
	end, total, hops := -1, 0, 0
	for {
		if off >= len(msg) {
			return 0, errAnswerShort
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			return end, nil
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) {
				return 0, errAnswerShort
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			if hops++; ptr >= off || ptr < headerLen || hops > maxNamePointers {
				return 0, errAnswerName
			}
			if end < 0 {
				end = off + 2
			}
			off = ptr
		case l&0xC0 != 0:
			return 0, errAnswerName // the 0x40 and 0x80 label types are obsolete
		default:
			if total += l + 1; total > 254 {
				return 0, errAnswerName
			}
			off += l + 1
		}
	}
}
