package main

import (
	"regexp"
	"testing"
)

// TestRecordsSRVWeight: SRV records carry weight 1 unless --dns-srv-weight says otherwise
// (mesos-dns answers 1; lodestar used to answer 0).
func TestRecordsSRVWeight(t *testing.T) {
	srvLine := regexp.MustCompile(`(?m)^_\S+\s+SRV\s+(\d+) (\d+) \d+ \S+$`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "1"},
		{[]string{"--dns-srv-weight", "0"}, "0"},
		{[]string{"--dns-srv-weight", "10"}, "10"},
	} {
		args := append([]string{"records", "--mesos-state-file", "../../examples/state.json"}, tc.args...)
		code, out, errOut := runCmd(t, nil, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		lines := srvLine.FindAllStringSubmatch(out, -1)
		if len(lines) == 0 {
			t.Fatalf("%v: no SRV records in\n%s", args, out)
		}
		for _, l := range lines {
			if l[1] != "0" || l[2] != tc.want {
				t.Errorf("%v: %q, want priority 0 and weight %s", args, l[0], tc.want)
			}
		}
	}
}
