package dnsserver

import (
	"slices"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// withTasks returns the fixture's state with extra running tasks in the ipv6-framework, each
// a copy of its toy-store task (same agent, same ports) whose only status is a TASK_RUNNING
// one with the given netinfo addresses and labels.
func withTasks(t *testing.T, extra ...discovery.MesosTask) *discovery.MesosState {
	t.Helper()
	st := loadState(t)
	fi := slices.IndexFunc(st.Frameworks, func(f discovery.Framework) bool { return f.Name == "ipv6-framework" })
	if fi < 0 {
		t.Fatal("the fixture has no ipv6-framework")
	}
	fw := &st.Frameworks[fi]
	base := fw.Tasks[slices.IndexFunc(fw.Tasks, func(tk discovery.MesosTask) bool { return tk.Name == "toy-store" })]
	for _, e := range extra {
		tk := base
		tk.ID, tk.Name, tk.Discovery = e.Name+".7f1c", e.Name, nil
		tk.Statuses = e.Statuses
		fw.Tasks = append(fw.Tasks, tk)
	}
	return st
}

func runningWith(name string, ips []string, labels ...discovery.Label) discovery.MesosTask {
	return discovery.MesosTask{Name: name, Statuses: []discovery.MesosTaskStatus{
		// An older running status with other addresses: only the latest counts.
		{State: discovery.StateRunning, Timestamp: 1, NetworkIPs: []string{"10.99.0.1"}},
		{State: discovery.StateRunning, Timestamp: 2, NetworkIPs: ips, Labels: labels},
	}}
}

// TestTaskAddressesEveryNetworkInfo: a task's records carry every address of every
// network_info of its latest TASK_RUNNING status, IPv4 as A and IPv6 as AAAA, under the task
// name and the canonical name, as mesos-dns publishes them. The fixture's toy-store task is
// on two networks, the second dual-stack: [{12.0.1.3}, {12.0.1.2, fd01:b::1:8000:2}].
func TestTaskAddressesEveryNetworkInfo(t *testing.T) {
	mesosLabel := func(v string) discovery.Label { return discovery.Label{Key: mesosIPLabel, Value: v} }
	st := withTasks(t,
		runningWith("spread", []string{"10.7.0.1", "fd00::7:1", "10.7.0.2", "10.7.0.3", "fd00::7:2"}),
		runningWith("twice", []string{"10.7.1.1", "10.7.1.1"}),
		// Hostile values: no address, garbage, a prefix, an IPv6 zone, an IPv4-mapped address.
		runningWith("hostile", []string{"", "not-an-ip", "999.1.1.1", "10.7.2.0/24", "web.example.com",
			"fe80::1%eth0", "::ffff:10.7.2.2", "10.7.2.3"}),
		// Nothing usable from netinfo: the next IP source (mesos) wins, with every label.
		runningWith("fallback", []string{"1.2.3", "x"}, mesosLabel("10.7.3.1"), mesosLabel("bad"), mesosLabel("10.7.3.2")),
	)
	ix := BuildIndex(snapshotOf(st), testConfig(), nil)
	canon := func(task string) string {
		return task + "-" + hashString(task+".7f1c") + "-3.ipv6-framework.mesos."
	}
	toy := []string{"A 12.0.1.3", "A 12.0.1.2", "AAAA fd01:b::1:8000:2"}
	spread := []string{"A 10.7.0.1", "A 10.7.0.2", "A 10.7.0.3", "AAAA fd00::7:1", "AAAA fd00::7:2"}
	hostile := []string{"A 10.7.2.2", "A 10.7.2.3"}
	fallback := []string{"A 10.7.3.1", "A 10.7.3.2"}
	checkRecords(t, ix, []recordCase{
		{"toy-store.ipv6-framework.mesos.", toy},
		{"toy-store-go588-3.ipv6-framework.mesos.", toy},
		{"spread.ipv6-framework.mesos.", spread},
		{canon("spread"), spread},
		{"twice.ipv6-framework.mesos.", []string{"A 10.7.1.1"}},
		{"hostile.ipv6-framework.mesos.", hostile},
		{canon("hostile"), hostile},
		{"fallback.ipv6-framework.mesos.", fallback},
		{canon("fallback"), fallback},
		// The agent names keep the agent's address.
		{"spread.ipv6-framework.slave.mesos.", []string{"AAAA 2001:db8::1"}},
	})

	// The mesos-dns API views read the same records.
	hosts := ix.Hosts("spread.ipv6-framework.mesos")
	var ips []string
	for _, h := range hosts {
		ips = append(ips, h.IP)
	}
	if want := []string{"10.7.0.1", "10.7.0.2", "10.7.0.3", "fd00::7:1", "fd00::7:2"}; !slices.Equal(ips, want) {
		t.Errorf("Hosts: %q, want %q", ips, want)
	}
	axfr := ix.AXFR()
	if got := axfr.Records.As[canon("spread")]; !slices.Equal(got, []string{"10.7.0.1", "10.7.0.2", "10.7.0.3"}) {
		t.Errorf("AXFR As of the canonical name: %q", got)
	}
	if got := axfr.Records.AAAAs["spread.ipv6-framework.mesos."]; !slices.Equal(got, []string{"fd00::7:1", "fd00::7:2"}) {
		t.Errorf("AXFR AAAAs of the task name: %q", got)
	}

	// Enumerate lists the task's records in the order of its network_infos.
	var recs []string
	for _, f := range ix.Enumerate().Frameworks {
		for _, tk := range f.Tasks {
			if tk.Name == "toy-store" {
				for _, r := range tk.Records {
					if r.Name == "toy-store.ipv6-framework.mesos." {
						recs = append(recs, r.Rtype+" "+r.Host)
					}
				}
			}
		}
	}
	if !slices.Equal(recs, toy) {
		t.Errorf("Enumerate of toy-store: %q, want %q", recs, toy)
	}
}

// TestMarathonTaskEveryAddress: a container-network task known only from Marathon gets every
// address Marathon reports, as the Mesos state's netinfo will give them once polled.
func TestMarathonTaskEveryAddress(t *testing.T) {
	apps := loadApps(t)
	i := slices.IndexFunc(apps, func(a *discovery.App) bool { return a.Network == discovery.NetworkContainer })
	if i < 0 || len(apps[i].Tasks) == 0 {
		t.Fatal("the fixture has no container-network app with a task")
	}
	app := *apps[i]
	task := *app.Tasks[0]
	task.IPAddresses = []string{"9.0.0.5", "fd00::5", "9.0.0.6", "bogus"}
	app.Tasks = []*discovery.Task{&task}
	ix := BuildIndex(snapshotOf(nil, &app), testConfig(), nil)
	name := cleanLabel(marathonTaskName(app.ID), false) + ".marathon.mesos."
	checkRecords(t, ix, []recordCase{{name, []string{"A 9.0.0.5", "A 9.0.0.6", "AAAA fd00::5"}}})
}
