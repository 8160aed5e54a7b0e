package haproxy

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// TestPlanCommandsAreEscaped: a plan's commands reach HAProxy as one command each even when a
// key holds the CLI's separators (an app id with ';' from a file source, say): the key is
// added as it is, and an error in the batch is reported for the command that failed, not for
// the one after a split.
func TestPlanCommandsAreEscaped(t *testing.T) {
	b1, b2 := haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, mapRouting, map[string]string{"$B1": b1.Addr, "$B2": b2.Addr},
		map[string]string{"hosts.map": "# host backend\n"})
	mapFile := filepath.Join(h.dir, "hosts.map")
	ctx := h.ctx()
	cmds := []RuntimeCmd{
		{Kind: CmdAddMap, Map: mapFile, Key: "/team/a;b", Value: "be_app"},
		{Kind: CmdAddMap, Map: mapFile, Key: `/team/c\d`, Value: "be_app"},
		{Kind: CmdSetState, Backend: "be_app", Server: "s1", State: StateReady},
		{Kind: CmdSetState, Backend: "be_app", Server: "nosuch", State: StateReady},
	}
	var lines []string
	for _, c := range cmds {
		lines = append(lines, c.String())
	}
	err := h.admin.ExecAll(ctx, lines)
	var rerr *RuntimeError
	if !errors.As(err, &rerr) || rerr.Command != cmds[3].String() || strings.Count(err.Error(), "haproxy runtime command") != 1 {
		t.Errorf("ExecAll: %v, want one error, for %q", err, cmds[3].String())
	}
	entries, err := h.admin.ShowMap(ctx, mapFile)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key+"="+e.Value)
	}
	if got := strings.Join(keys, " "); got != `/team/a;b=be_app /team/c\d=be_app` {
		t.Errorf("map after the batch: %s", got)
	}
}

// TestExecAllRefusesUnescapedSemicolon: HAProxy runs "a;b" as two commands, which would shift
// every later answer onto the wrong command; ExecAll refuses such a batch before sending it.
func TestExecAllRefusesUnescapedSemicolon(t *testing.T) {
	b1, b2 := haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, mapRouting, map[string]string{"$B1": b1.Addr, "$B2": b2.Addr},
		map[string]string{"hosts.map": "# host backend\n"})
	mapFile := filepath.Join(h.dir, "hosts.map")
	err := h.admin.ExecAll(h.ctx(), []string{"del map " + mapFile + " /x;y", "set server be_app/nosuch state ready"})
	var rerr *RuntimeError
	if err == nil || errors.As(err, &rerr) || !strings.Contains(err.Error(), "/x;y") {
		t.Fatalf("ExecAll with an unescaped ';': %v, want a local error naming the command", err)
	}
	if err := h.admin.ExecAll(h.ctx(), []string{`add map ` + mapFile + ` /x\;y be_app`}); err != nil {
		t.Fatalf("an escaped ';' is refused: %v", err)
	}
}
