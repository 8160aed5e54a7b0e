package main

import (
	"regexp"
	"strings"
	"testing"
)

// Issue 12, item 9: the rendered global section bounds old HAProxy workers by time
// (hard-stop-after, 15m unless --haproxy-hard-stop-after says otherwise) and by count
// (mworker-max-reloads from the default HAPROXY_HEAD).
func TestRenderBoundsOldWorkers(t *testing.T) {
	global := regexp.MustCompile(`(?s)^global\n(.*?)\n\S`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "hard-stop-after 15m"},
		{[]string{"--haproxy-hard-stop-after", "90s"}, "hard-stop-after 90s"},
	} {
		args := append([]string{"render", "--apps-file", "../../examples/apps.json", "--group", "*", "--run-dir", t.TempDir()}, tc.args...)
		code, out, errOut := runCmd(t, nil, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errOut)
		}
		m := global.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%v: no global section in:\n%s", tc.args, out)
		}
		for _, want := range []string{tc.want, "mworker-max-reloads 10"} {
			if !strings.Contains(m[1], "  "+want+"\n") {
				t.Errorf("%v: global section lacks %q:\n%s", tc.args, want, m[1])
			}
		}
	}
	code, _, errOut := runCmd(t, nil, "render", "--apps-file", "../../examples/apps.json", "--run-dir", t.TempDir(), "--haproxy-hard-stop-after", "10ms")
	if code == 0 || !strings.Contains(errOut, "--haproxy-hard-stop-after") {
		t.Errorf("a 10ms hard-stop-after: exit %d, %q; want a refusal naming the flag", code, errOut)
	}
}
