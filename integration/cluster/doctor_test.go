package cluster

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// member builds a zkMember as probeZKMember would leave it.
func member(addr, mode string, epoch uint64) zkMember {
	if mode == "down" {
		return zkMember{addr: addr, err: testErr("connection refused")}
	}
	return zkMember{addr: addr, serving: true, mode: mode, zxid: epoch<<32 | 7, ruok: "imok"}
}

type testErr string

func (e testErr) Error() string { return string(e) }

// severities maps each finding's target to its severity, for one check.
func severities(fs []Finding, check string) map[string]Severity {
	out := map[string]Severity{}
	for _, f := range fs {
		if f.Check == check {
			out[f.Target] = f.Severity
		}
	}
	return out
}

func TestJudgeZooKeeper(t *testing.T) {
	for _, tc := range []struct {
		name      string
		members   []zkMember
		quorum    Severity
		want      string // in the quorum finding's message
		perMember map[string]Severity
	}{
		{
			name:    "one quorum",
			members: []zkMember{member("a", "follower", 3), member("b", "leader", 3), member("c", "follower", 3)},
			quorum:  SeverityOK, want: "3 of 3 members in one quorum, leader b at epoch 3",
			perMember: map[string]Severity{"a": SeverityOK, "b": SeverityOK, "c": SeverityOK},
		},
		{
			name:    "one member down",
			members: []zkMember{member("a", "follower", 3), member("b", "leader", 3), member("c", "down", 0)},
			quorum:  SeverityWarn, want: "still a quorum (2 of 3 members serving, leader b) but c down: one more failure loses the quorum",
			perMember: map[string]Severity{"a": SeverityOK, "b": SeverityOK, "c": SeverityWarn},
		},
		{
			name:    "two of five down",
			members: []zkMember{member("a", "follower", 3), member("b", "leader", 3), member("c", "down", 0), member("d", "down", 0), member("e", "follower", 3)},
			quorum:  SeverityWarn, want: "but c, d down",
			perMember: map[string]Severity{"c": SeverityWarn, "d": SeverityWarn, "e": SeverityOK},
		},
		{
			name:    "two down: no quorum",
			members: []zkMember{member("a", "down", 0), member("b", "follower", 3), member("c", "down", 0)},
			quorum:  SeverityError, want: "no quorum: 1 of 3 members serving, 2 needed; down: a, c",
			perMember: map[string]Severity{"a": SeverityError, "b": SeverityOK, "c": SeverityError},
		},
		{
			name: "up but not serving counts as down",
			members: []zkMember{member("a", "down", 0), {addr: "b", err: testErr("up but not serving requests (it is not in a quorum)")},
				member("c", "down", 0)},
			quorum: SeverityError, want: "no quorum: 0 of 3",
			perMember: map[string]Severity{"b": SeverityError},
		},
		{
			name:    "two ensembles",
			members: []zkMember{member("a", "leader", 3), member("b", "follower", 3), member("c", "leader", 1)},
			quorum:  SeverityError, want: "more than one ensemble: a and c each lead",
			perMember: map[string]Severity{"a": SeverityOK},
		},
		{
			name:    "a standalone member",
			members: []zkMember{member("a", "leader", 3), member("b", "follower", 3), member("c", "standalone", 1)},
			quorum:  SeverityError, want: "not one ensemble: c run standalone",
			perMember: map[string]Severity{"c": SeverityError},
		},
		{
			name:    "single standalone server",
			members: []zkMember{member("a", "standalone", 1)},
			quorum:  SeverityOK, want: "one standalone server",
			perMember: map[string]Severity{"a": SeverityOK},
		},
		{
			name:    "follower of another epoch",
			members: []zkMember{member("a", "leader", 4), member("b", "follower", 4), member("c", "follower", 2)},
			quorum:  SeverityOK, want: "leader a at epoch 4",
			perMember: map[string]Severity{"b": SeverityOK, "c": SeverityWarn},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := judgeZooKeeper(tc.members)
			q := got[len(got)-1]
			if q.Check != CheckZKQuorum || q.Severity != tc.quorum || !strings.Contains(q.Message, tc.want) {
				t.Errorf("quorum finding = %+v, want %s containing %q", q, tc.quorum, tc.want)
			}
			if q.Severity != SeverityOK && q.Fix == "" {
				t.Errorf("quorum finding %+v has no fix", q)
			}
			sev := severities(got, CheckZKMember)
			for addr, want := range tc.perMember {
				if sev[addr] != want {
					t.Errorf("member %s: severity %q, want %q (findings %+v)", addr, sev[addr], want, got)
				}
			}
		})
	}
}

func TestParseSrvr(t *testing.T) {
	const out = `Zookeeper version: 3.8.0-5a02a05eddb59aee6ac762f7ea82e92a68eb9c0f, built on 2022-02-25 08:49 UTC
Latency min/avg/max: 0/0.0/0
Received: 3
Sent: 2
Connections: 1
Outstanding: 0
Zxid: 0x500000003
Mode: follower
Node count: 5
`
	var m zkMember
	m.parseSrvr(out)
	if !m.serving || m.mode != "follower" || m.zxid != 0x500000003 || m.epoch() != 5 {
		t.Errorf("parseSrvr = %+v, want a serving follower at zxid 0x500000003, epoch 5", m)
	}
	m = zkMember{}
	m.parseSrvr("This ZooKeeper instance is not currently serving requests\n")
	if m.serving || m.err == nil || !strings.Contains(m.err.Error(), "not serving") {
		t.Errorf("parseSrvr(not serving) = %+v, want not serving", m)
	}
	m = zkMember{}
	m.parseSrvr("srvr is not executed because it is not in the whitelist.\n")
	if m.serving || m.err == nil || !strings.Contains(m.err.Error(), "4lw.commands.whitelist") {
		t.Errorf("parseSrvr(not whitelisted) = %+v, want the whitelist named", m)
	}
	f := judgeZooKeeper([]zkMember{m})[0]
	if f.Severity != SeverityWarn || !strings.Contains(f.Fix, "4lw.commands.whitelist") {
		t.Errorf("finding of a member that refuses srvr = %+v, want a warning naming the whitelist", f)
	}
}

func TestParseMasterInfo(t *testing.T) {
	for _, tc := range []struct{ data, addr, host string }{
		{`{"address":{"hostname":"m1","ip":"10.0.0.1","port":5050},"hostname":"m1","ip":16777226,"port":5050}`, "10.0.0.1:5050", "m1"},
		{`{"hostname":"m2","ip":16777343,"port":5051}`, "127.0.0.1:5051", "m2"},
		{`not json`, "", ""},
	} {
		addr, host := parseMasterInfo([]byte(tc.data))
		if addr != tc.addr || host != tc.host {
			t.Errorf("parseMasterInfo(%s) = %q, %q; want %q, %q", tc.data, addr, host, tc.addr, tc.host)
		}
	}
}

func TestParseMesosDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1mins": time.Minute, "5mins": 5 * time.Minute, "30secs": 30 * time.Second, "1.5hrs": 90 * time.Minute,
		"2days": 48 * time.Hour, "1weeks": 7 * 24 * time.Hour, "500ms": 500 * time.Millisecond,
	} {
		got, err := parseMesosDuration(in)
		if err != nil || got != want {
			t.Errorf("parseMesosDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5", "5m", "minsmins", "-1mins"} {
		if _, err := parseMesosDuration(bad); err == nil {
			t.Errorf("parseMesosDuration(%q) succeeded, want an error", bad)
		}
	}
	if got := mesosDuration(5 * time.Minute); got != "5mins" {
		t.Errorf("mesosDuration(5m) = %q, want 5mins", got)
	}
	if got := mesosDuration(90 * time.Second); got != "90secs" {
		t.Errorf("mesosDuration(90s) = %q, want 90secs", got)
	}
}

func TestACLsAllowed(t *testing.T) {
	for _, tc := range []struct {
		name, acls string
		reserve    bool
		volumes    bool
	}{
		{"no rules, permissive by default", `{}`, true, true},
		{"no rules, not permissive", `{"permissive": false}`, false, false},
		{"reserve only, not permissive", `{"permissive": false,
			"reserve_resources": [{"principals": {"values": ["marathon"]}, "roles": {"values": ["marathon"]}}]}`, true, false},
		{"both, not permissive", `{"permissive": false,
			"reserve_resources": [{"principals": {"values": ["marathon"]}, "roles": {"values": ["marathon"]}}],
			"create_volumes": [{"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}]}`, true, true},
		{"another role only", `{"permissive": false,
			"reserve_resources": [{"principals": {"values": ["marathon"]}, "roles": {"values": ["other"]}}],
			"create_volumes": [{"principals": {"values": ["marathon"]}, "roles": {"values": ["marathon"]}}]}`, false, true},
		{"explicitly denied though permissive", `{
			"create_volumes": [{"principals": {"values": ["marathon"]}, "roles": {"type": "NONE"}}]}`, true, false},
		{"first matching rule decides", `{"permissive": false,
			"reserve_resources": [{"principals": {"type": "NONE"}, "roles": {"type": "ANY"}}, {"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}]}`, false, false},
	} {
		var a doctorACLs
		if err := json.Unmarshal([]byte(tc.acls), &a); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := a.allowed(a.ReserveResources, "marathon", "marathon"); got != tc.reserve {
			t.Errorf("%s: reserve_resources allowed = %v, want %v", tc.name, got, tc.reserve)
		}
		if got := a.allowed(a.CreateVolumes, "marathon", "marathon"); got != tc.volumes {
			t.Errorf("%s: create_volumes allowed = %v, want %v", tc.name, got, tc.volumes)
		}
	}
}

func TestContainerInternal(t *testing.T) {
	for name, internal := range map[string]bool{
		"172.17.0.3": true, "4f1e2d3c4b5a": true, "::ffff:172.17.0.9": true,
		"10.0.0.7": false, "agent-1.example.com": false, "172.18.0.3": false, "4f1e2d3c4b5a.example": false,
	} {
		if got := containerInternal(name) != ""; got != internal {
			t.Errorf("containerInternal(%q) = %q, want internal=%v", name, containerInternal(name), internal)
		}
	}
}

func TestReportTableAndJSON(t *testing.T) {
	r := Report{Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Findings: []Finding{
		{Check: CheckZKQuorum, Target: "a:2181,b:2181", Severity: SeverityOK, Message: "fine"},
		{Check: CheckAgentFlags, Target: "agent-1", Severity: SeverityWarn, Message: "executor_registration_timeout=1mins", Fix: "start the agent with\n--executor_registration_timeout=5mins"},
	}}
	if r.OK() || r.Worst() != SeverityWarn || r.Count(SeverityOK) != 1 {
		t.Errorf("OK=%v Worst=%v Count(ok)=%d, want false, warn, 1", r.OK(), r.Worst(), r.Count(SeverityOK))
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(table.String(), "\n")
	if !strings.HasPrefix(lines[0], "SEVERITY") || !strings.HasPrefix(lines[2], "WARN") ||
		!strings.Contains(lines[3], "fix: start the agent with --executor_registration_timeout=5mins") ||
		!strings.Contains(table.String(), "1 ok, 1 warning, 0 errors") {
		t.Errorf("table:\n%s", table.String())
	}
	// The columns line up: every finding's CHECK starts where the header's does.
	col := strings.Index(lines[0], "CHECK")
	for _, l := range lines[1:3] {
		if !strings.HasPrefix(l[col:], "zookeeper quorum") && !strings.HasPrefix(l[col:], "agent flags") {
			t.Errorf("line %q: CHECK column not at %d", l, col)
		}
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK       bool      `json:"ok"`
		Worst    string    `json:"worst"`
		Findings []Finding `json:"findings"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("JSON report does not decode: %v\n%s", err, js.String())
	}
	if got.OK || got.Worst != "warn" || !slices.Equal(got.Findings, r.Findings) {
		t.Errorf("JSON report = %+v", got)
	}
	js.Reset()
	if err := (Report{}).WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"findings": []`) || !strings.Contains(js.String(), `"ok": true`) {
		t.Errorf("empty report JSON = %s, %v", js.String(), err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New with no targets succeeded")
	}
	if _, err := New(Config{Targets: Targets{Proxies: []Proxy{{Name: "mesos"}}}}); err == nil {
		t.Error("New with a proxy without address succeeded")
	}
}

func TestTargetsFromTopology(t *testing.T) {
	topo, _, err := Load("../../examples/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := TargetsFromTopology(topo)
	want := Targets{
		ZooKeeper:        []string{"172.28.0.11:2181", "172.28.0.12:2181", "172.28.0.13:2181"},
		MesosZKPath:      "/mesos",
		MesosMasters:     []string{"172.28.0.11:5050", "172.28.0.12:5050", "172.28.0.13:5050"},
		Marathon:         []string{"http://172.28.0.11:8080", "http://172.28.0.12:8080"},
		MarathonIdentity: MarathonConfig{Principal: "marathon", Role: "marathon"},
		Proxies:          []Proxy{{"mesos", "172.28.0.41:15050"}, {"marathon", "172.28.0.41:18080"}, {"zk", "172.28.0.41:12181"}},
		Lodestar:         []string{"http://172.28.0.31:8090", "http://172.28.0.31:8190", "http://172.28.0.41:8123", "http://172.28.0.41:8092"},
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(gj, wj) {
		t.Errorf("TargetsFromTopology(examples/cluster.yaml) =\n%s\nwant\n%s", gj, wj)
	}
	// A cluster whose masters register elsewhere is looked for there.
	topo.ZKPaths.Mesos = "/team-a/mesos"
	if got := TargetsFromTopology(topo).MesosZKPath; got != "/team-a/mesos" {
		t.Errorf("with zk_paths.mesos /team-a/mesos the doctor looks under %q", got)
	}
}
