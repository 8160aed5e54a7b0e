package dnsserver

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

func TestFrameworkDomain(t *testing.T) {
	for _, c := range []struct {
		name, want string
		renamed    bool
	}{
		// Honest names stay as mesos-dns names them.
		{"marathon", "marathon", false},
		{"chronos-2.0.1", "chronos-2.0.1", false},
		{"leaders", "leaders", false},
		{"masterx", "masterx", false},
		{"master-1", "master-1", false},
		{"nsx", "nsx", false},
		{"slave.web", "slave.web", false}, // under framework "web", not a system name
		{"leader.marathon", "leader.marathon", false},
		{"framework", "framework", false},
		{"leader-frameworks", "leader-frameworks", false},
		// Hostile: a system name, alone or as the label next to the domain.
		{"leader", "leader-framework", true},
		{"master", "master-framework", true},
		{"master0", "master0-framework", true},
		{"master17", "master17-framework", true},
		{"slave", "slave-framework", true},
		{"ns1", "ns1-framework", true},
		{"ns2", "ns2-framework", true},
		{"LEADER", "leader-framework", true},
		{"_leader_", "leader-framework", true},
		{"web.slave", "web.slave-framework", true},
		{"marathon.slave", "marathon.slave-framework", true},
		// An alternative taken as a name gets one more suffix, so it cannot take another's.
		{"leader-framework", "leader-framework-framework", true},
		{"slave-framework-framework", "slave-framework-framework-framework", true},
	} {
		got, renamed := frameworkDomain(c.name, false)
		if got != c.want || renamed != c.renamed {
			t.Errorf("frameworkDomain(%q) = %q, %v; want %q, %v", c.name, got, renamed, c.want, c.renamed)
		}
	}
}

// reservedState is a cluster with honest frameworks (marathon, chronos) and the given others,
// each with one running task "web" on agent S1, its host in 10.66.0.{i}.
func reservedState(hostile ...string) *discovery.MesosState {
	st := &discovery.MesosState{
		Leader:  "10.0.0.1:5050",
		Agents:  []discovery.Agent{{ID: "20160107-001256-134875658-5050-27524-S1", PID: "slave(1)@10.1.0.1:5051"}},
		Masters: []discovery.Master{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}},
	}
	add := func(name, host string) {
		st.Frameworks = append(st.Frameworks, discovery.Framework{
			Name: name, PID: "scheduler@" + host + ":8080",
			Tasks: []discovery.MesosTask{{
				ID: name + ".task-1", Name: "web", SlaveID: st.Agents[0].ID, State: discovery.StateRunning,
				Ports:    []int{31000},
				Statuses: []discovery.MesosTaskStatus{{State: discovery.StateRunning, NetworkIPs: []string{host}}},
			}},
		})
	}
	add("marathon", "10.2.0.1")
	add("chronos", "10.2.0.2")
	for i, name := range hostile {
		add(name, "10.66.0."+string(rune('1'+i)))
	}
	return st
}

// TestReservedFrameworks: frameworks named like the zone's own names add nothing to those
// names, nor to another framework's; the rest of the zone is byte for byte what it is without
// them, and each is served under its alternative.
func TestReservedFrameworks(t *testing.T) {
	hostile := []string{"leader", "master", "master0", "Master1", "slave", "ns1", "ns2", "marathon.slave", "leader-framework"}
	cfg := testConfig()
	honest := BuildIndex(snapshotOf(reservedState()), cfg, nil)
	mixed := BuildIndex(snapshotOf(reservedState(hostile...)), cfg, nil)

	var alts []string
	for i, name := range hostile {
		alt, renamed := frameworkDomain(name, false)
		if !renamed {
			t.Fatalf("%q not renamed", name)
		}
		alts = append(alts, "."+alt+".mesos.", "."+alt+".slave.mesos.")
		ip := "A 10.66.0." + string(rune('1'+i))
		own, ownSRV := []string{ip}, srv(alt+".mesos.", 8080)
		if strings.Contains(alt, ".") {
			// marathon.slave-framework.mesos. is task "marathon" of the framework "slave"
			// is served as: see TestFrameworkOnTaskName.
			own, ownSRV = nil, nil
		}
		checkRecords(t, mixed, []recordCase{
			{alt + ".mesos.", own},
			{"web." + alt + ".mesos.", []string{ip}},
			{"web." + alt + ".slave.mesos.", []string{"A 10.1.0.1"}},
			{"_framework._tcp." + alt + ".mesos.", ownSRV},
		})
	}
	// The system names, and marathon's agent names a "marathon.slave" framework would have
	// taken, are the honest ones.
	checkRecords(t, mixed, []recordCase{
		{"leader.mesos.", []string{"A 10.0.0.1"}},
		{"master.mesos.", []string{"A 10.0.0.1", "A 10.0.0.2"}},
		{"master0.mesos.", []string{"A 10.0.0.1"}},
		{"master1.mesos.", []string{"A 10.0.0.2"}},
		{"master2.mesos.", nil},
		{"ns1.mesos.", []string{"A 127.0.0.1"}},
		{"ns2.mesos.", nil},
		{"slave.mesos.", []string{"A 10.1.0.1"}},
		{"web.marathon.slave.mesos.", []string{"A 10.1.0.1"}},
		{"web.marathon.mesos.", []string{"A 10.2.0.1"}},
		{"leader-framework.mesos.", []string{"A 10.66.0.1"}}, // "leader", not the framework named so
		{"leader-framework-framework.mesos.", []string{"A 10.66.0.9"}},
	})
	// Every other name is the same as without the hostile frameworks.
	for name := range mixed.names {
		if slices.ContainsFunc(alts, func(a string) bool { return strings.HasSuffix("."+name, a) }) {
			continue
		}
		if got, want := rrs(mixed, name), rrs(honest, name); !slices.Equal(got, want) {
			t.Errorf("%s: %q with hostile frameworks, %q without", name, got, want)
		}
	}
	for name := range honest.names {
		if mixed.Lookup(name) == nil {
			t.Errorf("%s lost with hostile frameworks", name)
		}
	}
}

// TestReservedFrameworkLoggedOnce: a renamed framework is logged with its first index, not
// with every one after.
func TestReservedFrameworkLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	// The set of logged names is the process's; this test starts from an empty one (no test
	// of the package runs in parallel).
	saved := reservedLog
	reservedLog = &onceLog{seen: map[string]bool{}}
	t.Cleanup(func() { reservedLog = saved })
	st := reservedState("master4242", "ns4242", "web.marathon")
	var prev *RecordIndex
	for range 3 {
		prev = BuildIndex(snapshotOf(st), cfg, prev)
	}
	log := buf.String()
	for _, name := range []string{"framework=master4242 served_as=master4242-framework", "framework=ns4242 served_as=ns4242-framework",
		"framework=web.marathon other_framework=marathon"} {
		if n := strings.Count(log, name); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", name, n, log)
		}
	}
	if strings.Contains(log, " framework=marathon ") || strings.Contains(log, "chronos") {
		t.Errorf("honest frameworks logged:\n%s", log)
	}
}

// TestReservedMarathonFramework: with Marathon's framework named like a system name, its
// tasks known only from Marathon go under the same alternative as its Mesos tasks.
func TestReservedMarathonFramework(t *testing.T) {
	cfg := testConfig()
	cfg.MarathonFramework = "leader"
	app := &discovery.App{ID: "/shop", Tasks: []*discovery.Task{{
		ID: "shop.1", Host: "10.3.0.1", State: discovery.StateRunning, HostPorts: []int{31001},
	}}}
	ix := BuildIndex(snapshotOf(reservedState(), app), cfg, nil)
	checkRecords(t, ix, []recordCase{
		{"shop.leader-framework.mesos.", []string{"A 10.3.0.1"}},
		{"shop.leader.mesos.", nil},
		{"leader.mesos.", []string{"A 10.0.0.1"}},
	})
	if names := ix.AppNames("/shop"); !slices.Contains(names, "shop.leader-framework.mesos.") {
		t.Errorf("AppNames(/shop) = %q, want shop.leader-framework.mesos. among them", names)
	}
}

// TestFrameworkOnTaskName: a framework named "{label}.{other framework}" would add its host to
// the other framework's task {label}; it gets no host record, its tasks keep theirs, and
// names with more labels, or over no framework, are untouched.
func TestFrameworkOnTaskName(t *testing.T) {
	cfg := testConfig()
	honest := BuildIndex(snapshotOf(reservedState("chronos-2.0.1", "a.b.marathon", "web.nothing")), cfg, nil)
	mixed := BuildIndex(snapshotOf(reservedState("chronos-2.0.1", "a.b.marathon", "web.nothing", "web.marathon", "web.chronos")), cfg, nil)
	checkRecords(t, mixed, []recordCase{
		{"web.marathon.mesos.", []string{"A 10.2.0.1"}}, // Marathon's task only
		{"web.chronos.mesos.", []string{"A 10.2.0.2"}},
		{"_framework._tcp.web.marathon.mesos.", nil},
		{"web.web.marathon.mesos.", []string{"A 10.66.0.4"}}, // its task keeps its name
		{"web.web.chronos.mesos.", []string{"A 10.66.0.5"}},
		{"chronos-2.0.1.mesos.", []string{"A 10.66.0.1"}},
		{"a.b.marathon.mesos.", []string{"A 10.66.0.2"}},
		{"web.nothing.mesos.", []string{"A 10.66.0.3"}},
		{"_framework._tcp.web.nothing.mesos.", srv("web.nothing.mesos.", 8080)},
	})
	for name := range honest.names {
		if got, want := rrs(mixed, name), rrs(honest, name); !slices.Equal(got, want) {
			t.Errorf("%s: %q with the nested frameworks, %q without", name, got, want)
		}
	}
}
