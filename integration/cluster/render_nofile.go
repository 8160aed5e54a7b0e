package cluster

import "github.com/lodestar-lb/lodestar/haproxy"

// The planned size of a cluster when the topology names none, and what the units of the
// other services (Mesos, Marathon) get.
const (
	defaultExpectedApps  = 1000
	defaultExpectedTasks = 3000
	defaultLimitNOFILE   = 65536
	// lodestarOwnFiles is what lodestar itself keeps open beside HAProxy (it shares the unit's
	// limit with its HAProxy child): DNS and API connections, ZooKeeper, Marathon streams.
	lodestarOwnFiles = 4096
	// plannedThreads bounds HAProxy's nbthread when the host's CPUs are unknown (HAProxy 2.6
	// runs at most 64 threads).
	plannedThreads = 64
)

// expectedSize is the planned number of apps and tasks, defaults filled in.
func (t *Topology) expectedSize() (apps, tasks int) {
	apps, tasks = t.ExpectedApps, t.ExpectedTasks
	if apps <= 0 {
		apps = defaultExpectedApps
	}
	if tasks <= 0 {
		tasks = defaultExpectedTasks
	}
	return apps, tasks
}

// LodestarLimitNOFILE is the LimitNOFILE of the lodestar units: what HAProxy needs (as
// haproxy.FDBudget counts it) for the planned size at lodestar's default maxconn, when every
// app binds a port of its own and every server is checked, with room for a rolling deployment
// of every app at once (twice the tasks: a backend has one server per task, and a deployment's
// new tasks are added beside the old), plus lodestar's own files;
// never below the other units' 65536. It is rounded up to a multiple of 1024.
func (t *Topology) LodestarLimitNOFILE() int {
	apps, tasks := t.expectedSize()
	need := haproxy.FDBudget{
		MaxConn: haproxy.DefaultMaxConn,
		// The HEAD's http, https, stats and app-id binds, the admin socket, and a port per app.
		Listeners:      apps + 5,
		CheckedServers: 2 * tasks,
		Threads:        plannedThreads,
		CLI:            haproxy.MasterCLIFDs, // lodestar starts HAProxy with a master CLI (-W -S)
	}.Need() + lodestarOwnFiles
	need = (need + 1023) / 1024 * 1024
	return max(need, defaultLimitNOFILE)
}

// maxExpected bounds expected_apps and expected_tasks (the sum is bounded by maxLimitNOFILE).
const maxExpected = 1000000

// maxLimitNOFILE is the kernel's default fs.nr_open, beyond which systemd cannot raise the
// limit: a cluster that large needs its apps spread over more LB groups.
const maxLimitNOFILE = 1 << 20
