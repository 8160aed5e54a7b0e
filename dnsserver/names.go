package dnsserver

import (
	"crypto/sha1"
	"encoding/binary"
	"strings"
)

// Label rules of mesos-dns. RFC 1123 (the default) allows 63 characters and trims leading
// hyphens; RFC 952 (EnforceRFC952) allows 24 and trims leading digits too. Both keep a-z, 0-9
// and '-', turn '.', '_' and '-' into '-', lower-case A-Z and drop everything else.
const (
	maxLabel1123 = 63
	maxLabel952  = 24
)

// cleanLabel turns a name into one DNS label, exactly as mesos-dns's labels.RFC1123 and
// labels.RFC952 do: map the characters, trim the leading cut set, cut at the maximum length,
// and when the cut leaves trailing hyphens, drop them and fill up from what follows them (so
// "hello" + 60 hyphens + "f" becomes "hellof", not "hello"). One difference: a result ending in
// a hyphen (possible in mesos-dns when the fill itself ends on one) is trimmed, since such a
// label is not a valid host name.
func cleanLabel(s string, rfc952 bool) string {
	maxLen := maxLabel1123
	if rfc952 {
		maxLen = maxLabel952
	}
	if isCleanLabel(s, maxLen, rfc952) {
		return s
	}
	mapped := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			mapped = append(mapped, c+('a'-'A'))
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			mapped = append(mapped, c)
		case c == '-' || c == '.' || c == '_':
			mapped = append(mapped, '-')
		}
	}
	// Trim the leading cut set: hyphens, and for RFC 952 digits as well.
	start := 0
	for start < len(mapped) && (mapped[start] == '-' || rfc952 && isDigit(mapped[start])) {
		start++
	}
	trim := mapped[start:]
	size := min(len(trim), maxLen)
	head := trimHyphensRight(trim[:size])
	if len(head) < size {
		tail := trim[size:]
		for len(tail) > 0 && tail[0] == '-' {
			tail = tail[1:]
		}
		if len(tail) > 0 {
			head = append(head[:len(head):len(head)], tail[:min(len(tail), size-len(head))]...)
			head = trimHyphensRight(head)
		}
	}
	return string(head)
}

// isCleanLabel reports whether cleanLabel would return s unchanged, so the common case (an
// already valid name) costs no allocation.
func isCleanLabel(s string, maxLen int, rfc952 bool) bool {
	if len(s) == 0 || len(s) > maxLen || s[0] == '-' || s[len(s)-1] == '-' || rfc952 && isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '-') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func trimHyphensRight(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '-' {
		b = b[:len(b)-1]
	}
	return b
}

// domainFrag cleans a dotted name (a framework name) part by part, keeping the dots and
// dropping parts that clean to nothing, as mesos-dns's labels.DomainFrag:
// "chronos with a space AND MIXED CASE-2.0.1" → "chronoswithaspaceandmixedcase-2.0.1".
func domainFrag(name string, rfc952 bool) string {
	var parts []string
	clean := true
	for part := range strings.SplitSeq(name, ".") {
		c := cleanLabel(part, rfc952)
		if c != part || c == "" {
			clean = false
		}
		if c != "" {
			parts = append(parts, c)
		}
	}
	if clean {
		return name
	}
	return strings.Join(parts, ".")
}

// zbase32Alphabet is the human-oriented base-32 alphabet mesos-dns's hashes are written in.
const zbase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// hashLen is how many zbase32 characters of a task id's SHA-1 the canonical name carries.
const hashLen = 5

// appendTaskHash appends the first 5 characters of zbase32(sha1(id)) to b: the {hash} in a
// task's canonical name {task}-{hash}-{slave}. Five characters use the hash's top 25 bits.
func appendTaskHash(b []byte, id string) []byte {
	var sum [sha1.Size]byte
	var buf [128]byte
	if len(id) <= len(buf) {
		sum = sha1.Sum(append(buf[:0], id...)) // no copy of the id on the heap
	} else {
		sum = sha1.Sum([]byte(id))
	}
	v := binary.BigEndian.Uint32(sum[:4])
	for i := range hashLen {
		b = append(b, zbase32Alphabet[(v>>(27-5*i))&31])
	}
	return b
}

// hashString returns a task id's 5-character hash ("test" → "iffe9").
func hashString(id string) string { return string(appendTaskHash(nil, id)) }

// slaveIDTail returns the last '-'-separated part of an agent id, lower-cased: the {slave} in
// a canonical name ("20140803-125133-3041283216-5050-2410-S0" → "s0").
func slaveIDTail(id string) string {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		id = id[i+1:]
	}
	return strings.ToLower(id)
}

// marathonTaskName is the Mesos task name Marathon gives an app's tasks: the app id's path
// reversed and joined with dots ("/shop/web" → "web.shop").
func marathonTaskName(appID string) string {
	var segs []string
	for s := range strings.SplitSeq(appID, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return strings.Join(segs, ".")
}

// marathonTaskPrefix is the part of an app's task ids before the first dot Marathon adds:
// the app id without its leading slash, '/' replaced by '_' ("/shop/web" → "shop_web").
func marathonTaskPrefix(appID string) string {
	return strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_")
}

// legacyName returns a DiscoveryInfo name as mesos-dns uses it raw (lower-cased), or "" when
// it cannot be part of a DNS name: empty labels, or characters other than a-z, 0-9, '-', '_'.
func legacyName(raw string) string {
	s := strings.ToLower(raw)
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > maxLabel1123 {
			return ""
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '-' || c == '_') {
				return ""
			}
		}
	}
	return s
}

// validFQDN reports whether name (lower-case, with its trailing dot) can be served: labels of
// 1 to 63 octets and at most 255 octets on the wire.
func validFQDN(name string) bool {
	if len(name) < 2 || len(name) > 254 || name[len(name)-1] != '.' {
		return false
	}
	n := 0
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			n++
			continue
		}
		if n == 0 || n > maxLabel1123 {
			return false
		}
		n = 0
	}
	return true
}

// fqdn lower-cases a name as a client gives it (any case, trailing dot optional) and adds the
// trailing dot: the form the index is keyed by.
func fqdn(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}
