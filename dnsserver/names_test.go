package dnsserver

import (
	"strconv"
	"strings"
	"testing"
)

func TestCleanLabel(t *testing.T) {
	tests := []struct {
		in       string
		rfc1123  string
		rfc952   string
		describe string
	}{
		{"", "", "", "empty"},
		{"a", "a", "a", "one letter"},
		{"-", "", "", "only a hyphen"},
		{"---a---b", "a---b", "a---b", "inner hyphens kept, outer trimmed"},
		{"a.b.c.d.e", "a-b-c-d-e", "a-b-c-d-e", "dots become hyphens"},
		{"a.c.d_de.", "a-c-d-de", "a-c-d-de", "underscores become hyphens"},
		{"liquor.store", "liquor-store", "liquor-store", "task name with a dot"},
		{"MiXeD CaSe", "mixedcase", "mixedcase", "lower-cased, space dropped"},
		{"4abc123", "4abc123", "abc123", "leading digit: kept by 1123, trimmed by 952"},
		{"-4abc123", "4abc123", "abc123", "leading hyphen and digit"},
		{"tâsk€name", "tskname", "tskname", "non-ASCII dropped"},
		{"chronos with a space AND MIXED CASE-2", "chronoswithaspaceandmixedcase-2", "chronoswithaspaceandmixe", "RFC 952 cuts at 24"},
		{"fd%gsf---gs7-f$gs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg1", "RFC 952 cut on a hyphen fills from the rest"},
		{"89fdgsf---gs7-fgs--d7fddg---123", "89fdgsf---gs7-fgs--d7fddg---123", "fdgsf---gs7-fgs--d7fddg1", "RFC 952 trims leading digits, then cuts"},
		{"hello" + strings.Repeat("-", 58) + "f", "hellof", "hellof", "1123 cut on hyphens fills from the rest"},
		{"fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123",
			"fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891", "fdgsf---gs7-fgs--d7fddg1", "63-character cut on a hyphen"},
		{"##fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-",
			"fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789", "fdgsf---gs7-fgs--d7fddg1", "trailing hyphen at the cut"},
		{strings.Repeat("a", 61) + "--b-cdef", strings.Repeat("a", 61) + "b", strings.Repeat("a", 24), "fill never ends on a hyphen"},
	}
	for _, tt := range tests {
		if got := cleanLabel(tt.in, false); got != tt.rfc1123 {
			t.Errorf("%s: cleanLabel(%q, RFC 1123) = %q, want %q", tt.describe, tt.in, got, tt.rfc1123)
		}
		if got := cleanLabel(tt.in, true); got != tt.rfc952 {
			t.Errorf("%s: cleanLabel(%q, RFC 952) = %q, want %q", tt.describe, tt.in, got, tt.rfc952)
		}
	}
}

func TestCleanLabelProperties(t *testing.T) {
	inputs := []string{
		"", "---", "0123456789abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789",
		strings.Repeat("a-", 70), strings.Repeat("-_.", 30) + "x", "9-9-9-9", "Ünïcödé_Name.v2",
	}
	for _, in := range inputs {
		for _, rfc952 := range []bool{false, true} {
			got := cleanLabel(in, rfc952)
			maxLen := 63
			if rfc952 {
				maxLen = 24
			}
			if len(got) > maxLen {
				t.Errorf("cleanLabel(%q, %v) = %q: longer than %d", in, rfc952, got, maxLen)
			}
			if got != "" && (got[0] == '-' || got[len(got)-1] == '-' || rfc952 && isDigit(got[0])) {
				t.Errorf("cleanLabel(%q, %v) = %q: bad first or last character", in, rfc952, got)
			}
			if strings.ContainsFunc(got, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) {
				t.Errorf("cleanLabel(%q, %v) = %q: character outside a-z0-9-", in, rfc952, got)
			}
			if again := cleanLabel(got, rfc952); again != got {
				t.Errorf("cleanLabel is not idempotent on %q: %q then %q", in, got, again)
			}
		}
	}
}

func TestDomainFrag(t *testing.T) {
	tests := []struct{ in, rfc1123, rfc952 string }{
		{"", "", ""},
		{"...", "", ""},
		{"marathon", "marathon", "marathon"},
		{".a..c.", "a.c", "a.c"},
		{"space space.com", "spacespace.com", "spacespace.com"},
		{"(@ host . com", "host.com", "host.com"},
		{"MiXeDcase.CoM", "mixedcase.com", "mixedcase.com"},
		{"chronos with a space AND MIXED CASE-2.0.1", "chronoswithaspaceandmixedcase-2.0.1", "chronoswithaspaceandmixe"},
		{"pod_123$abc.marathon-0.6.0-dev.mesos", "pod-123abc.marathon-0.6.0-dev.mesos", "pod-123abc.marathon-0.dev.mesos"},
	}
	for _, tt := range tests {
		if got := domainFrag(tt.in, false); got != tt.rfc1123 {
			t.Errorf("domainFrag(%q, RFC 1123) = %q, want %q", tt.in, got, tt.rfc1123)
		}
		if got := domainFrag(tt.in, true); got != tt.rfc952 {
			t.Errorf("domainFrag(%q, RFC 952) = %q, want %q", tt.in, got, tt.rfc952)
		}
	}
}

func TestHashString(t *testing.T) {
	// "iffe9" is mesos-dns's own test vector; the task ids are from its state fixture, whose
	// canonical names (liquor-store-4dfjd-0, liquor-store-zasmd-1, car-store-zinaz-0) its
	// generator tests expect.
	tests := map[string]string{
		"test": "iffe9",
		"liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5": "4dfjd",
		"liquor-store.b71166c1-562f-11e4-a088-c20493233aa5": "zasmd",
		"car-store.43758382-562f-11e4-a088-c20493233aa5":    "zinaz",
	}
	for in, want := range tests {
		if got := hashString(in); got != want {
			t.Errorf("hashString(%q) = %q, want %q", in, got, want)
		}
	}
	seen := map[string]string{}
	for i := range 2000 {
		id := "app.task-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i)
		h := hashString(id)
		if len(h) != 5 || strings.Trim(h, zbase32Alphabet) != "" {
			t.Fatalf("hashString(%q) = %q: not 5 zbase32 characters", id, h)
		}
		seen[h] = id
	}
	if len(seen) < 1990 {
		t.Errorf("2000 ids gave only %d distinct hashes", len(seen))
	}
}

func TestNameHelpers(t *testing.T) {
	for in, want := range map[string]string{
		"20140803-125133-3041283216-5050-2410-0":   "0",
		"db7b40e2-791c-445f-b373-183e2a648a86-S12": "s12",
		"no-dashes-at-all-but-this-one-XYZ":        "xyz",
		"plain":                                    "plain",
		"":                                         "",
	} {
		if got := slaveIDTail(in); got != want {
			t.Errorf("slaveIDTail(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/shop/web": "web.shop", "/web": "web", "/a/b/c": "c.b.a", "/foo.bar/web": "web.foo.bar", "": "",
	} {
		if got := marathonTaskName(in); got != want {
			t.Errorf("marathonTaskName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"/shop/web": "shop_web", "/web": "web", "/a/b/c": "a_b_c"} {
		if got := marathonTaskPrefix(in); got != want {
			t.Errorf("marathonTaskPrefix(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"liquor.store": "liquor.store", "Big.Dog": "big.dog", "my_svc": "my_svc",
		"has space": "", "a..b": "", ".lead": "", "trail.": "", "": "",
	} {
		if got := legacyName(in); got != want {
			t.Errorf("legacyName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{
		"a.mesos.": true, "mesos.": true, "a..mesos.": false, "a.mesos": false, ".": false, "": false,
		strings.Repeat("a", 63) + ".mesos.": true, strings.Repeat("a", 64) + ".mesos.": false,
		strings.Repeat("abcdefg.", 31) + "mesos.": true, strings.Repeat("abcdefg.", 32) + "mesos.": false,
	} {
		if got := validFQDN(in); got != want {
			t.Errorf("validFQDN(%q) = %v, want %v", in, got, want)
		}
	}
	for in, want := range map[string]string{"Web.Marathon.Mesos": "web.marathon.mesos.", "a.mesos.": "a.mesos."} {
		if got := fqdn(in); got != want {
			t.Errorf("fqdn(%q) = %q, want %q", in, got, want)
		}
	}
}
