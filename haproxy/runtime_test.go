package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

const twoServers = `
frontend fe
    bind 127.0.0.1:$PORT
    default_backend be

backend be
    balance roundrobin
    server s1 $B1
    server s2 $B2
`

// servedBy sends n requests on fresh connections and counts the answering backends; a request
// that fails or is not a 200 counts under its status.
func (h *testHAProxy) servedBy(n int) map[string]int {
	h.t.Helper()
	got := make(map[string]int)
	for range n {
		id, code, err := h.get("")
		switch {
		case err != nil:
			got["error"]++
		case code != http.StatusOK:
			got[fmt.Sprint(code)]++
		default:
			got[id]++
		}
	}
	return got
}

// serverRow returns the `show stat` row of backend/server.
func (h *testHAProxy) serverRow(backend, server string) StatRow {
	h.t.Helper()
	rows, err := h.admin.ShowStat(h.ctx())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range rows {
		if r.Proxy == backend && r.Server == server {
			return r
		}
	}
	h.t.Fatalf("no show stat row for %s/%s", backend, server)
	return StatRow{}
}

func sameCounts(got map[string]int, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestRuntimeMovesTrafficWithoutReload(t *testing.T) {
	b1, b2, b3 := haproxytest.Backend(t), haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, twoServers, map[string]string{"$B1": b1.Addr, "$B2": b2.Addr})
	ctx := h.ctx()
	if got := h.servedBy(4); !sameCounts(got, map[string]int{b1.ID: 2, b2.ID: 2}) {
		t.Fatalf("at start served by %v", got)
	}

	// set server addr: s1 now points at b3.
	if err := h.admin.SetServerAddr(ctx, "be", "s1", "127.0.0.1", b3.Port); err != nil {
		t.Fatal(err)
	}
	if got := h.servedBy(4); !sameCounts(got, map[string]int{b3.ID: 2, b2.ID: 2}) {
		t.Fatalf("after set server addr served by %v", got)
	}
	if r := h.serverRow("be", "s1"); r.Addr != b3.Addr {
		t.Fatalf("show stat addr of be/s1 %q, want %q", r.Addr, b3.Addr)
	}

	// maint: s2 takes nothing.
	if err := h.admin.SetServerState(ctx, "be", "s2", "maint"); err != nil {
		t.Fatal(err)
	}
	if got := h.servedBy(4); !sameCounts(got, map[string]int{b3.ID: 4}) {
		t.Fatalf("with be/s2 in maint served by %v", got)
	}
	if r := h.serverRow("be", "s2"); r.Status != "MAINT" {
		t.Fatalf("be/s2 status %q, want MAINT", r.Status)
	}

	// drain: s2 takes no new connections either, and with s1 in maint nothing is left.
	for _, step := range [][3]string{{"be", "s2", "drain"}, {"be", "s1", "maint"}} {
		if err := h.admin.SetServerState(ctx, step[0], step[1], step[2]); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.servedBy(2); !sameCounts(got, map[string]int{"503": 2}) {
		t.Fatalf("with be/s1 in maint and be/s2 draining served by %v, want 503s", got)
	}
	if r := h.serverRow("be", "s2"); r.Status != "DRAIN" {
		t.Fatalf("be/s2 status %q, want DRAIN", r.Status)
	}

	// ready: both back.
	for _, srv := range []string{"s1", "s2"} {
		if err := h.admin.SetServerState(ctx, "be", srv, "ready"); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.servedBy(4); !sameCounts(got, map[string]int{b3.ID: 2, b2.ID: 2}) {
		t.Fatalf("with both ready served by %v", got)
	}
	if n := h.reloadCount(); n != 0 {
		t.Fatalf("runtime changes caused %d reload(s)", n)
	}
	if h.proc.Restarts() != 0 {
		t.Fatal("runtime changes caused a restart")
	}
}

const mapRouting = `
frontend fe
    bind 127.0.0.1:$PORT
    use_backend %[req.hdr(host),lower,map($DIR/hosts.map,be_default)]

backend be_default
    server s1 $B1

backend be_app
    server s1 $B2
`

func TestRuntimeMapsRouteHostsWithoutReload(t *testing.T) {
	b1, b2 := haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, mapRouting, map[string]string{"$B1": b1.Addr, "$B2": b2.Addr},
		map[string]string{"hosts.map": "# host backend\n"})
	mapFile := filepath.Join(h.dir, "hosts.map")
	ctx := h.ctx()
	if h.mustGet("app.example") != b1.ID {
		t.Fatal("unmapped host not on the default backend")
	}
	if err := h.admin.AddMap(ctx, mapFile, "app.example", "be_app"); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"app.example", "APP.Example"} {
		if got := h.mustGet(host); got != b2.ID {
			t.Fatalf("host %s after add map answered by %q, want %q", host, got, b2.ID)
		}
	}
	if h.mustGet("other.example") != b1.ID {
		t.Fatal("another host left the default backend")
	}
	entries, err := h.admin.ShowMap(ctx, mapFile)
	if err != nil || len(entries) != 1 || entries[0] != (RuntimeMapEntry{"app.example", "be_app"}) {
		t.Fatalf("show map: %+v %v", entries, err)
	}
	if err := h.admin.DelMap(ctx, mapFile, "app.example"); err != nil {
		t.Fatal(err)
	}
	if h.mustGet("app.example") != b1.ID {
		t.Fatal("host still routed to be_app after del map")
	}
	var rerr *RuntimeError
	if err := h.admin.DelMap(ctx, mapFile, "app.example"); !errors.As(err, &rerr) || rerr.Message != "Key not found." {
		t.Fatalf("del map of a missing key: %v", err)
	}
	if err := h.admin.AddMap(ctx, filepath.Join(h.dir, "other.map"), "k", "v"); !errors.As(err, &rerr) ||
		!strings.HasPrefix(rerr.Message, "Unknown map identifier") {
		t.Fatalf("add map to a map HAProxy has not loaded: %v", err)
	}
	if err := h.admin.SetMap(ctx, mapFile, "absent.example", "be_app"); !errors.As(err, &rerr) {
		t.Fatalf("set map of a missing key: %v", err)
	}

	// Keys are escaped: spaces, ';' and '\' survive the CLI's word splitting.
	for _, key := range []string{`a b`, `c;d`, `e\f`} {
		if err := h.admin.AddMap(ctx, mapFile, key, "be_app"); err != nil {
			t.Fatal(err)
		}
	}
	entries, err = h.admin.ShowMap(ctx, mapFile)
	if err != nil || len(entries) != 3 || entries[1].Key != "c;d" || entries[2].Key != `e\f` {
		t.Fatalf("show map after escaped keys: %+v %v", entries, err)
	}

	// A batch of many commands over one connection.
	var cmds []string
	for i := range 300 {
		cmds = append(cmds, fmt.Sprintf("add map %s host%d.example be_app", mapFile, i))
	}
	if err := h.admin.ExecAll(ctx, cmds); err != nil {
		t.Fatal(err)
	}
	entries, err = h.admin.ShowMap(ctx, mapFile)
	if err != nil || len(entries) != 303 {
		t.Fatalf("show map after 300 adds: %d entries, %v", len(entries), err)
	}
	if h.mustGet("host299.example") != b2.ID {
		t.Fatal("host299.example not routed by the batch-added entry")
	}
	if n := h.reloadCount(); n != 0 {
		t.Fatalf("map changes caused %d reload(s)", n)
	}
}

func TestRuntimeErrorsNameTheCommand(t *testing.T) {
	b1, b2, b3 := haproxytest.Backend(t), haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, twoServers, map[string]string{"$B1": b1.Addr, "$B2": b2.Addr})
	ctx := h.ctx()
	var rerr *RuntimeError
	for _, tc := range []struct {
		cmd, msg string
	}{
		{"set server be/nosuch state ready", "No such server."},
		{"set server nobe/s1 state ready", "No such backend."},
		{"set server be state ready", "Require 'backend/server'."},
		{"set server be/s1 state up", "'set server <srv> state' expects 'ready', 'drain' and 'maint'."},
		{"set server be/s1 addr 300.1.1.1 port 80", "Invalid addr '300.1.1.1' by 'stats socket command'"},
		{"frobnicate now", "Unknown command, but maybe one of the following ones is a better match:"},
	} {
		_, err := h.admin.Exec(ctx, tc.cmd)
		if !errors.As(err, &rerr) || rerr.Command != tc.cmd || rerr.Message != tc.msg {
			t.Errorf("Exec(%q): %v, want a RuntimeError %q", tc.cmd, err, tc.msg)
		} else if !strings.Contains(err.Error(), tc.cmd) {
			t.Errorf("error %q does not name the command", err)
		}
	}

	// Checked before anything is sent.
	for _, err := range []error{
		h.admin.SetServerState(ctx, "be", "s1", "up"),
		h.admin.SetServerAddr(ctx, "be", "s1", "not-an-ip", 80),
		h.admin.SetServerAddr(ctx, "be", "s1", "127.0.0.1", 70000),
	} {
		if err == nil || errors.As(err, &rerr) {
			t.Errorf("invalid argument: %v, want a local error", err)
		}
	}

	// A batch runs every command and reports each failed one.
	setS2, _ := SetServerAddrCommand("be", "s2", "127.0.0.1", b3.Port)
	err := h.admin.ExecAll(ctx, []string{
		"set server be/s1 state maint",
		"set server be/nosuch state ready",
		setS2,
		"set server be/s9 state drain",
	})
	if !errors.As(err, &rerr) || rerr.Command != "set server be/nosuch state ready" ||
		!strings.Contains(err.Error(), "be/s9") || strings.Contains(err.Error(), "be/s1") {
		t.Fatalf("ExecAll with two bad commands: %v", err)
	}
	if r := h.serverRow("be", "s1"); r.Status != "MAINT" {
		t.Fatalf("be/s1 status %q: the batch's good commands did not run", r.Status)
	}
	if got := h.servedBy(2); !sameCounts(got, map[string]int{b3.ID: 2}) {
		t.Fatalf("after the batch served by %v, want b3 only", got)
	}
	if err := h.admin.ExecAll(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRuntimeClient(filepath.Join(h.dir, "absent.sock")).Exec(ctx, "show info"); err == nil ||
		!strings.Contains(err.Error(), "absent.sock") {
		t.Fatalf("Exec on a missing socket: %v", err)
	}
}

func TestSaveServerStateSurvivesReload(t *testing.T) {
	b1, b2, b3 := haproxytest.Backend(t), haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, twoServers, map[string]string{"$B1": b1.Addr, "$B2": b2.Addr})
	ctx := h.ctx()
	stateFile := filepath.Join(h.dir, "server-state")

	// Without a saved state a reload goes back to the file's addresses.
	if err := h.admin.SetServerAddr(ctx, "be", "s1", "127.0.0.1", b3.Port); err != nil {
		t.Fatal(err)
	}
	if err := h.proc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if r := h.serverRow("be", "s1"); r.Addr != b1.Addr {
		t.Fatalf("be/s1 at %q after a reload without saved state, want the configured %q", r.Addr, b1.Addr)
	}

	// With the state saved, the runtime address and admin state are kept.
	if err := h.admin.SetServerAddr(ctx, "be", "s1", "127.0.0.1", b3.Port); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.SetServerState(ctx, "be", "s2", "maint"); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.SaveServerState(ctx, stateFile); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(stateFile)
	if err != nil || !strings.HasPrefix(string(saved), "1\n# be_id ") || !regexp.MustCompile(fmt.Sprintf(`(?m)^\d+ be \d+ s1 127\.0\.0\.1 .* - %d `, b3.Port)).Match(saved) {
		t.Fatalf("state file %q %v", saved, err)
	}
	if err := h.proc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.reloadCount(); n != 2 {
		t.Fatalf("reload count %d, want 2", n)
	}
	if r := h.serverRow("be", "s1"); r.Addr != b3.Addr {
		t.Fatalf("be/s1 at %q after reload with saved state, want %q", r.Addr, b3.Addr)
	}
	if r := h.serverRow("be", "s2"); r.Status != "MAINT" {
		t.Fatalf("be/s2 %q after reload with saved state, want MAINT", r.Status)
	}
	if got := h.servedBy(3); !sameCounts(got, map[string]int{b3.ID: 3}) {
		t.Fatalf("after reload served by %v, want b3 only", got)
	}
}

func TestRuntimeClientViaMaster(t *testing.T) {
	b1, b2 := haproxytest.Backend(t), haproxytest.Backend(t)
	h := startHAProxy(t, oneBackend, map[string]string{"$B1": b1.Addr})
	rc := NewRuntimeClientViaMaster(h.proc.MasterSocket())
	ctx := h.ctx()
	if err := rc.SetServerAddr(ctx, "be", "s1", "127.0.0.1", b2.Port); err != nil {
		t.Fatal(err)
	}
	if h.mustGet("") != b2.ID {
		t.Fatal("set server addr through the master did not move traffic")
	}
	err := rc.ExecAll(ctx, []string{"set server be/s1 state ready", "set server be/zz state ready"})
	var rerr *RuntimeError
	if !errors.As(err, &rerr) || rerr.Command != "set server be/zz state ready" || rerr.Message != "No such server." {
		t.Fatalf("ExecAll through the master: %v", err)
	}
	// A long batch through the master: pipelined in prompt mode, answers matched in order.
	var cmds []string
	for i := range 200 {
		state := []string{"ready", "drain"}[i%2]
		cmds = append(cmds, "set server be/s1 state "+state)
	}
	cmds[150] = "set server be/s150 state ready"
	err = rc.ExecAll(ctx, cmds)
	if !errors.As(err, &rerr) || rerr.Command != cmds[150] || strings.Count(err.Error(), "No such server.") != 1 {
		t.Fatalf("batch of 200 through the master: %v", err)
	}
	if r := h.serverRow("be", "s1"); r.Status != "DRAIN" {
		t.Fatalf("be/s1 %q after the batch, want DRAIN (its last command)", r.Status)
	}
	state, err := rc.ShowServersState(ctx)
	if err != nil || !strings.Contains(state, fmt.Sprintf(" %d ", b2.Port)) {
		t.Fatalf("show servers state through the master: %q %v", state, err)
	}
	if n := h.reloadCount(); n != 0 {
		t.Fatalf("%d reloads", n)
	}
}

func TestRuntimeAnswerError(t *testing.T) {
	for _, tc := range []struct {
		cmd, out string
		bad      bool
	}{
		{"set server be/s1 state ready", "\n", false},
		{"set server be/s1 state ready", "No such server.\n\n", true},
		{"set server be/s1 addr 127.0.0.2 port 80", "IP changed from '127.0.0.1' to '127.0.0.2', no need to change the port by 'stats socket command'\n", false},
		{"set server be/s1 addr 127.0.0.1 port 80", "no need to change the addr, no need to change the port by 'stats socket command'\n", false},
		{"set server be/s1 addr 1.2.3", "Invalid addr '1.2.3' by 'stats socket command'\n", true},
		{"set map /m k v", "entry not found.\n", true},
		{"add server be/s3 127.0.0.1:80", "New server registered.\n", false},
		{"del server be/s3", "Server deleted.\n", false},
		// HAProxy 2.6's refusals of add server start with no word the error prefixes know.
		{"add server be/s3 127.0.0.1:80 cookie s3", "'cookie' option is not accepted for dynamic server\n", true},
		{"add server be/s3 127.0.0.1:80", "Backend must use a dynamic load balancing to support dynamic servers.\n", true},
		{"add server be/s3 127.0.0.1:80", "Already exists a server with the same name in backend.\n", true},
		{"enable health be/s3", "\n", false},
		{"show info", "Name: HAProxy\nVersion: 2.6.12\n", false},
		{"show map /x", "Unknown map identifier. Please use #<id> or <file>.\n", true},
		{"frob", "Unknown command, but maybe one of the following ones is a better match:\n  help\n", true},
	} {
		msg, bad := runtimeAnswerError(tc.cmd, tc.out)
		if bad != tc.bad || bad && msg != firstLine(strings.TrimSpace(tc.out)) {
			t.Errorf("runtimeAnswerError(%q, %q) = %q, %v; want bad=%v", tc.cmd, tc.out, msg, bad, tc.bad)
		}
	}
}

func TestParseStat(t *testing.T) {
	out := "# pxname,svname,qcur,scur,stot,status,weight,check_status,addr,\n" +
		"fe,FRONTEND,,1,10,OPEN,,,,\n" +
		"be,s1,0,2,7,UP,1,L7OK,127.0.0.1:8080,\n\n"
	rows, err := ParseStat(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Proxy != "be" || rows[1].Server != "s1" || rows[1].Status != "UP" ||
		rows[1].Scur != 2 || rows[1].Stot != 7 || rows[1].Addr != "127.0.0.1:8080" ||
		rows[1].CheckStatus != "L7OK" || rows[1].Weight != 1 || rows[0].Fields["status"] != "OPEN" {
		t.Fatalf("ParseStat = %+v", rows)
	}
	if _, err := ParseStat("Unknown command\n"); err == nil {
		t.Fatal("ParseStat accepted a non-CSV answer")
	}
}

// BenchmarkRuntimeExecAll measures one batch of 100 `set server` commands over the stats socket
// and through the master CLI.
func BenchmarkRuntimeExecAll(b *testing.B) {
	b1 := haproxytest.Backend(b)
	h := startHAProxy(b, twoServers, map[string]string{"$B1": b1.Addr, "$B2": b1.Addr})
	var cmds []string
	for i := range 100 {
		cmd, err := SetServerAddrCommand("be", []string{"s1", "s2"}[i%2], "127.0.0.1", b1.Port)
		if err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, rc := range []*RuntimeClient{h.admin, NewRuntimeClientViaMaster(h.proc.MasterSocket())} {
		name := "stats-socket"
		if rc.viaMaster {
			name = "via-master"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := rc.ExecAll(context.Background(), cmds); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
