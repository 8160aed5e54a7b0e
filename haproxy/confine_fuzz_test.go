package haproxy

import (
	"strings"
	"testing"
)

// FuzzConfineSnippet: ConfineSnippet never panics, and never accepts a snippet with a section
// keyword line (other than the one header of a head template), environment expansion, an
// env() fetch or a control character. The property is checked by a reader blunter than the
// checker's own: whatever HAProxy-like reading the checker does, these must hold of the raw
// text. Seeds are in testdata/fuzz/FuzzConfineSnippet and the hostile-snippet table.
func FuzzConfineSnippet(f *testing.F) {
	for _, tc := range confineCases {
		f.Add(uint8(tc.kind), tc.text)
	}
	f.Fuzz(func(t *testing.T, k uint8, text string) {
		kind := SectionKind(k%8 + 1)
		if ConfineSnippet(kind, text, confineScope("HAPROXY_0_FUZZ")) != nil {
			return
		}
		if strings.Contains(text, "${") || containsFold(text, "env(") {
			t.Fatalf("accepted environment access (%s):\n%q", kind, text)
		}
		headers := 0
		for _, line := range strings.Split(text, "\n") {
			if q := strings.IndexByte(line, '"'); q >= 0 && strings.Contains(line[q:], "$") {
				t.Fatalf("accepted \"$…\" (%s):\n%q", kind, text)
			}
			for i := 0; i < len(line); i++ {
				if c := line[i]; c < 0x20 && c != '\t' || c >= 0x7f {
					t.Fatalf("accepted byte %q (%s):\n%q", c, kind, text)
				}
			}
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			word := strings.NewReplacer(`"`, "", "'", "", `\`, "").Replace(f[0])
			if _, ok := sectionKeywords[word]; !ok {
				continue
			}
			headers++
			want := strings.SplitN(headerOf(kind), " ", 2)[0]
			if !kind.opens() || word != want || headers > 1 {
				t.Fatalf("accepted section keyword %q (%s):\n%q", word, kind, text)
			}
		}
	})
}

func headerOf(kind SectionKind) string {
	c := &confiner{kind: kind, scope: confineScope("")}
	c.scope.Userlist = "user_" + c.scope.Backend
	return c.header()
}
