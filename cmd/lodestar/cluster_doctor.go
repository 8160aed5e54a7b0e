package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/cluster"
)

const clusterDoctorDetails = `
Probes a live cluster and reports each finding with its fix:
  - ZooKeeper: every member answers ruok and srvr, and all are in one quorum (one leader,
    the rest followers, one epoch); a member down is a warning while a majority serves.
  - Mesos: exactly one leader that every master agrees on, not elected within --flap-window;
    masters' and agents' host names resolve from here; each agent's advertised address (its
    pid) answers a TCP connect from here and is not on a Docker bridge network the leading
    master is not on (nor loopback while the master is not); agents' /flags: docker containerizer,
    executor_registration_timeout of at least 5 minutes, a host name that is not a container's;
    the masters' ACLs let Marathon's principal reserve resources and create volumes for its role.
  - Marathon: leader reachable, registered with the leading Mesos master, principal and role set.
  - --proxy: each leader-proxy address reaches the current leader.
  - --lodestar: each lodestar instance answers /readyz (synced with its sources).
  - --smoke: runs a trivial task and removes it, whatever happened. With --marathon (or a
    topology that has Marathon) it posts a one-instance "sleep 3600" app (POST /v2/apps), waits
    until its task is TASK_RUNNING (at most --smoke-timeout), then deletes the app. Without
    Marathon it is a framework of its own for a moment, like mesos-execute, through the leading
    Mesos master's v1 scheduler API (POST /api/v1/scheduler, following a redirect from a master
    that does not lead): it subscribes as "lodestar-doctor-smoke" (role --smoke-role, user
    --smoke-user, principal --smoke-principal), launches "sleep 600" with cpus 0.1 and mem 32 on
    the first offer that fits, declines the others, waits for TASK_RUNNING, kills the task and
    tears the framework down (its 30s failover_timeout removes it should the teardown fail).
    A refusal (401 without credentials, 403 or "Not authorized" from the masters' ACLs), no
    offer in time, or a task that fails is an error with Mesos's message and the fix.

Prints a table (or JSON with --json). Exit code: 0 when every finding is ok, 1 when any is a
warning or an error, 2 for a usage error.

Example:
  lodestar cluster doctor --zk zk://zk1:2181,zk2:2181,zk3:2181/mesos \
    --mesos-master m1:5050,m2:5050,m3:5050 --marathon http://m1:8080 \
    --proxy mesos=lb1:15050 --lodestar http://lb1:8090
  lodestar cluster doctor --topology cluster.yaml --json
  lodestar cluster doctor --mesos-master m1:5050,m2:5050,m3:5050 --smoke \
    --smoke-principal ops --smoke-secret-file /etc/mesos/ops.secret
`

// clusterDoctor runs `lodestar cluster doctor` with args (the flags after "doctor") and returns
// the exit code: 0 all good, 1 something wrong, 2 a usage error.
func clusterDoctor(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := newCommand("cluster doctor", "Probe a live cluster and report what is wrong and how to fix it.", "[flags]", clusterDoctorDetails)
	fs := c.fs
	topology := fs.String("topology", "", "cluster topology `file` (YAML) naming every component to probe")
	zkMembers := addList(c, "zk", "ZooKeeper members `host:port`, comma-separated or repeated; a zk://host:port,…/path URL also sets --mesos-zk-path")
	zkPath := fs.String("mesos-zk-path", "", "ZooKeeper `path` under which Mesos masters register (e.g. /mesos): checks their json.info_ nodes, and finds the masters when --mesos-master is not given")
	masters := addList(c, "mesos-master", "Mesos masters `host:port` or URL, comma-separated or repeated (default: the masters registered in ZooKeeper)")
	marathons := addList(c, "marathon", "Marathon `URL`s, comma-separated or repeated")
	proxies := addList(c, "proxy", "leader-proxy address to check as `name=host:port` (name mesos or marathon: it must reach the leader; any other, e.g. zk: a TCP connect; repeatable)")
	lodestars := addList(c, "lodestar", "lodestar API `URL`s whose /readyz must answer 200, comma-separated or repeated")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "time limit of each probe")
	flapWindow := fs.Duration("flap-window", 5*time.Minute, "a Mesos leader elected more recently than this is reported as flapping")
	smoke := fs.Bool("smoke", false, "launch a trivial task through Marathon (or, without Marathon, the leading Mesos master's scheduler API), wait until it runs, and remove it")
	smokeTimeout := fs.Duration("smoke-timeout", 2*time.Minute, "how long --smoke waits for its task to run")
	smokeAppID := fs.String("smoke-app-id", "", "Marathon app `id` --smoke creates and deletes (default /lodestar-doctor-smoke-<time>); it must not exist")
	smokeFW := addSmokeFrameworkFlags(fs)
	workDir := fs.String("master-work-dir", "", "work_dir of a Mesos master on this host, checked against the masters' addresses: a master whose IP changed must have it wiped (default with --topology: "+cluster.DefaultMasterWorkDir+" when it exists)")

	if err := c.parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "lodestar cluster doctor: %v\n", err)
		return 2
	}
	var targets cluster.Targets
	if *topology != "" {
		t, err := topologyTargets(*topology)
		if err != nil {
			fmt.Fprintf(stderr, "lodestar cluster doctor: %v\n", err)
			return 2
		}
		targets = t
	}
	// Flags replace what the topology names.
	if len(zkMembers.vals) > 0 {
		servers, path, err := zkServers(zkMembers.vals)
		if err != nil {
			fmt.Fprintf(stderr, "lodestar cluster doctor: %v\n", err)
			return 2
		}
		targets.ZooKeeper, targets.MesosZKPath = servers, path
	}
	if *zkPath != "" {
		targets.MesosZKPath = "/" + strings.Trim(*zkPath, "/")
	}
	if len(masters.vals) > 0 {
		targets.MesosMasters = masters.vals
	}
	if len(marathons.vals) > 0 {
		targets.Marathon = marathons.vals
	}
	if len(lodestars.vals) > 0 {
		targets.Lodestar = lodestars.vals
	}
	for _, p := range proxies.vals {
		name, addr, ok := strings.Cut(p, "=")
		if !ok || name == "" || addr == "" {
			fmt.Fprintf(stderr, "lodestar cluster doctor: --proxy %q: want name=host:port, e.g. mesos=127.0.0.1:15050\n", p)
			return 2
		}
		targets.Proxies = append(targets.Proxies, cluster.Proxy{Name: name, Addr: addr})
	}
	if err := doctorDurations(*timeout, *flapWindow, *smokeTimeout); err != nil {
		fmt.Fprintf(stderr, "lodestar cluster doctor: %v\n", err)
		return 2
	}
	if *workDir == "" && *topology != "" {
		if st, err := os.Stat(cluster.DefaultMasterWorkDir); err == nil && st.IsDir() {
			*workDir = cluster.DefaultMasterWorkDir
		}
	}
	fw, err := smokeFW.framework()
	if err != nil {
		fmt.Fprintf(stderr, "lodestar cluster doctor: %v\n", err)
		return 2
	}
	d, err := cluster.New(cluster.Config{Targets: targets, Timeout: *timeout, FlapWindow: *flapWindow,
		Smoke: *smoke, SmokeTimeout: *smokeTimeout, SmokeAppID: *smokeAppID, SmokeFramework: fw, MasterWorkDir: *workDir})
	if err != nil {
		fmt.Fprintf(stderr, "lodestar cluster doctor: %v (see lodestar cluster doctor --help)\n", err)
		return 2
	}
	report := d.Run(ctx)
	if *asJSON {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "lodestar cluster doctor: writing the report: %v\n", err)
		return 1
	}
	if !report.OK() {
		return 1
	}
	return 0
}

// zkServers reads --zk: host:port members, or one zk://host:port,host:port/path URL (the form
// Mesos's --zk takes), whose path is the Mesos path. The list flag split the URL at its commas.
func zkServers(vals []string) (servers []string, path string, err error) {
	joined := strings.Join(vals, ",")
	rest, isURL := strings.CutPrefix(joined, "zk://")
	if !isURL {
		for _, v := range vals {
			if strings.ContainsAny(v, "/@") {
				// Shown without a password that came with it (user:password@host).
				shown := strings.TrimPrefix(discovery.RedactZKURL("zk://"+joined), "zk://")
				return nil, "", fmt.Errorf("--zk %q: want host:port members or one zk://host:port,host:port/path URL", shown)
			}
		}
		return vals, "", nil
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:] // user:password@ is for ZooKeeper ACLs; reading needs none
	}
	hosts, p, _ := strings.Cut(rest, "/")
	for _, h := range strings.Split(hosts, ",") {
		if h != "" {
			servers = append(servers, h)
		}
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("--zk %q: want zk://host:port,host:port/path", discovery.RedactZKURL(joined))
	}
	if p = strings.Trim(p, "/"); p != "" {
		path = "/" + p
	}
	return servers, path, nil
}

// topologyTargets reads the targets of a topology file (its warnings do not matter here).
func topologyTargets(path string) (cluster.Targets, error) {
	t, _, err := cluster.Load(path)
	if err != nil {
		return cluster.Targets{}, fmt.Errorf("--topology: %w", err)
	}
	return cluster.TargetsFromTopology(t), nil
}

// doctorDurations checks the doctor's durations against their least sensible values.
func doctorDurations(timeout, flapWindow, smokeTimeout time.Duration) error {
	if err := durationAtLeast("timeout", timeout, 10*time.Millisecond); err != nil {
		return err
	}
	if err := durationAtLeast("flap-window", flapWindow, time.Second); err != nil {
		return err
	}
	return durationAtLeast("smoke-timeout", smokeTimeout, time.Second)
}

// smokeFrameworkFlags are the flags of the smoke framework's identity (the Mesos path).
type smokeFrameworkFlags struct{ user, role, principal, secretFile *string }

func addSmokeFrameworkFlags(fs *flag.FlagSet) smokeFrameworkFlags {
	return smokeFrameworkFlags{
		user:       fs.String("smoke-user", "", "`user` the --smoke task runs as on the agent when it goes through Mesos without Marathon (default: the user running the doctor, as mesos-execute)"),
		role:       fs.String("smoke-role", "*", "Mesos `role` the --smoke framework subscribes with, without Marathon (a role the agents reserve resources for, or * for unreserved ones)"),
		principal:  fs.String("smoke-principal", "", "Mesos `principal` of the --smoke framework, without Marathon: the masters' ACLs must let it register_frameworks and run_tasks"),
		secretFile: fs.String("smoke-secret-file", "", "`file` holding the secret of --smoke-principal, for masters that authenticate frameworks (HTTP basic auth)"),
	}
}

// framework is the identity the flags give, the secret read from its file without the
// trailing newline an editor leaves.
func (f smokeFrameworkFlags) framework() (cluster.SmokeFramework, error) {
	fw := cluster.SmokeFramework{User: *f.user, Role: *f.role, Principal: *f.principal}
	if *f.secretFile != "" {
		secret, err := os.ReadFile(*f.secretFile)
		if err != nil {
			return fw, fmt.Errorf("--smoke-secret-file: %w", err)
		}
		fw.Secret = strings.TrimRight(string(secret), "\r\n")
	}
	return fw, nil
}
