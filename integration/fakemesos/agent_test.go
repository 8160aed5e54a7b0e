package fakemesos

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", url, err, body)
		}
	}
	return resp.StatusCode
}

func TestAgentServesFlags(t *testing.T) {
	a, err := StartAgent("S1", "agent-1.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	a.SetFlag("executor_registration_timeout", "1mins")
	a.SetFlag("containerizers", "")
	var doc struct {
		Flags map[string]string `json:"flags"`
	}
	if code := getJSON(t, "http://"+a.HostPort()+"/flags", &doc); code != http.StatusOK {
		t.Fatalf("GET /flags = %d", code)
	}
	if doc.Flags["executor_registration_timeout"] != "1mins" || doc.Flags["docker"] != "docker" {
		t.Errorf("flags = %v, want the timeout set and the defaults kept", doc.Flags)
	}
	if _, ok := doc.Flags["containerizers"]; ok {
		t.Errorf("flags = %v: containerizers was removed", doc.Flags)
	}
	if code := getJSON(t, "http://"+a.HostPort()+"/state", &doc); code != http.StatusNotFound {
		t.Errorf("GET /state = %d, want 404", code)
	}
	if a.Requests("/flags") != 1 || a.Requests("") != 2 {
		t.Errorf("requests /flags %d, all %d; want 1, 2", a.Requests("/flags"), a.Requests(""))
	}
	if a.PID() != "slave(1)@"+a.HostPort() {
		t.Errorf("PID = %q", a.PID())
	}
}

func TestClusterAgentsFlagsAndElection(t *testing.T) {
	c, err := NewCluster(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	a, err := StartAgent("S1", "agent-1.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	c.SetAgents(a)
	c.SetMasterFlag("acls", `{"permissive": false}`)
	at := time.Date(2024, 5, 1, 12, 0, 0, 500000000, time.UTC)
	if err := c.Elect(1, at); err != nil {
		t.Fatal(err)
	}
	if err := c.Elect(2, at); err == nil {
		t.Error("Elect(2) of a 2-master cluster succeeded")
	}

	type state struct {
		Leader      string            `json:"leader"`
		ElectedTime *float64          `json:"elected_time"`
		Flags       map[string]string `json:"flags"`
		Slaves      []struct {
			Hostname, PID string
		} `json:"slaves"`
	}
	var leader, other state
	getJSON(t, c.Masters[1].URL()+PathState, &leader)
	getJSON(t, c.Masters[0].URL()+PathState, &other)
	if leader.Leader != c.Masters[1].PID() || other.Leader != c.Masters[1].PID() {
		t.Errorf("leaders named %q and %q, want %q", leader.Leader, other.Leader, c.Masters[1].PID())
	}
	if leader.ElectedTime == nil || *leader.ElectedTime != 1714564800.5 || other.ElectedTime != nil {
		t.Errorf("elected_time leader %v, other %v; want 1714564800.5 and none", leader.ElectedTime, other.ElectedTime)
	}
	if len(leader.Slaves) != 1 || leader.Slaves[0].Hostname != "agent-1.test" || leader.Slaves[0].PID != a.PID() || len(other.Slaves) != 0 {
		t.Errorf("agents: leader %+v, other %+v", leader.Slaves, other.Slaves)
	}
	if leader.Flags["acls"] != `{"permissive": false}` || leader.Flags["registry"] != "replicated_log" {
		t.Errorf("master flags = %v, want acls set and the seed's flags kept", leader.Flags)
	}
	c.SetMasterFlag("acls", "")
	leader = state{}
	getJSON(t, c.Masters[1].URL()+PathState, &leader)
	if _, ok := leader.Flags["acls"]; ok {
		t.Errorf("acls still set after SetMasterFlag(acls, \"\"): %v", leader.Flags)
	}
}

// StartAgentAt listens where it is told (the lab runs an agent on a host's address), and the
// port flag and pid follow the port it got; an address it cannot bind is an error.
func TestStartAgentAt(t *testing.T) {
	a, err := StartAgentAt("S2", "127.0.0.2", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	var doc struct {
		Flags map[string]string `json:"flags"`
	}
	if code := getJSON(t, "http://"+a.HostPort()+"/flags", &doc); code != http.StatusOK {
		t.Fatalf("GET /flags: %d", code)
	}
	if a.PID() != "slave(1)@127.0.0.2:"+doc.Flags["port"] {
		t.Errorf("pid %q, flags port %q", a.PID(), doc.Flags["port"])
	}
	if _, err := StartAgentAt("S3", "x", "192.0.2.1:0"); err == nil {
		t.Error("an agent on an address of no interface started")
	}
}
