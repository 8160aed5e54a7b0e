package cluster

import (
	"fmt"
	"net/netip"
	"strings"
)

// Paths on a systemd host. ZooKeeper, Mesos and Marathon are Debian-style packages reading
// /etc/zookeeper/conf, /etc/mesos*, /etc/marathon/conf; lodestar is the binary at lodestarBin.
const (
	hostIPScript   = "/usr/local/lib/lodestar-cluster/host-ip.sh"
	workDirScript  = "/usr/local/lib/lodestar-cluster/master-work-dir.sh"
	hostIPUnit     = "lodestar-host-ip.service"
	lodestarBin    = "/usr/local/bin/lodestar"
	zkDataDir      = "/var/lib/zookeeper"
	zkClassPath    = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
	masterWorkDir  = "/var/lib/mesos/master"
	agentWorkDir   = "/var/lib/mesos/agent"
	mesosACLsFile  = "/etc/mesos/acls.json"
	systemdUnitDir = "etc/systemd/system/"
	// systemdAPIAuthName is the credential holding the API auth; %d is the unit's credentials
	// directory (systemd 250 and later).
	systemdAPIAuthName = "lodestar-api-auth"
	systemdAPIAuth     = "%d/" + systemdAPIAuthName
)

// renderSystemd renders, under "<host>/", each host's files as they lie from /: the host-IP
// unit and script, and per role the package configuration and unit.
func renderSystemd(t *Topology) (map[string][]byte, error) {
	files := map[string][]byte{}
	lodestars := t.lodestars(systemdHostIP, func(name string) string { return "/run/lodestar-" + name }, systemdAPIAuth)
	for _, h := range t.Hosts {
		put := func(path, content string) { files[h.Name+"/"+path] = []byte(content) }
		if h.IPFrom != "" {
			put(strings.TrimPrefix(hostIPScript, "/"), t.hostIPFromScript(h))
		} else {
			put(strings.TrimPrefix(hostIPScript, "/"), t.hostIPScript(h))
		}
		put(systemdUnitDir+hostIPUnit, t.hostIPUnit(h))
		if h.has(RoleZK) {
			put("etc/zookeeper/conf/zoo.cfg", string(t.ZooCfg(h, zkDataDir)))
			put("etc/zookeeper/conf/myid", itoa(h.ZKID)+"\n")
			put(systemdUnitDir+"zookeeper.service", t.unit(h, unitSpec{
				description: fmt.Sprintf("ZooKeeper member %d", h.ZKID),
				// zookeeper.jar names its libraries in its manifest but no SLF4J binding: the
				// log4j one and log4j (both dependencies of the package) are named here. All of
				// /usr/share/java would bring slf4j-nop too, which wins and silences ZooKeeper.
				// The root logger is what Debian's log4j.properties needs and only its init
				// script sets.
				exec: []string{"/usr/bin/java", "-cp", zkClassPath,
					"-Dzookeeper.log.dir=/var/log/zookeeper", "-Dzookeeper.root.logger=INFO,CONSOLE",
					"org.apache.zookeeper.server.quorum.QuorumPeerMain", "/etc/zookeeper/conf/zoo.cfg"},
				user: "zookeeper",
			}))
		}
		if h.has(RoleMaster) || h.has(RoleAgent) {
			put("etc/mesos/zk", t.MesosZK()+"\n")
		}
		if h.has(RoleMaster) {
			for name, v := range map[string]string{
				"cluster": t.Name, "ip": h.IP, "hostname": h.IP, "port": itoa(h.MasterPort),
				"quorum": itoa(t.Quorum()), "work_dir": masterWorkDir, "registry": "replicated_log",
				"acls": mesosACLsFile,
			} {
				put("etc/mesos-master/"+name, v+"\n")
			}
			for _, kv := range t.roleExtraFlags(h, RoleMaster) {
				put("etc/mesos-master/"+kv[0], kv[1]+"\n")
			}
			put(strings.TrimPrefix(mesosACLsFile, "/"), string(t.ACLs()))
			put(strings.TrimPrefix(workDirScript, "/"), masterWorkDirScript(h))
			put(systemdUnitDir+"mesos-master.service", t.unit(h, unitSpec{
				description: fmt.Sprintf("Mesos master (quorum %d of %d)", t.Quorum(), len(t.Masters())),
				execPre:     []string{"/bin/sh", workDirScript},
				exec:        []string{"/usr/bin/mesos-init-wrapper", "master"},
				limitNOFILE: defaultLimitNOFILE,
			}))
		}
		if h.has(RoleMarathon) {
			for name, v := range map[string]string{
				"master": t.MesosZK(), "zk": t.MarathonZK(), "hostname": h.IP,
				"http_port": itoa(h.MarathonPort), "framework_name": "marathon",
				"mesos_authentication_principal": t.Marathon.Principal, "mesos_role": t.Marathon.Role,
			} {
				put("etc/marathon/conf/"+name, v+"\n")
			}
			for _, kv := range t.roleExtraFlags(h, RoleMarathon) {
				put("etc/marathon/conf/"+kv[0], kv[1]+"\n")
			}
			put(systemdUnitDir+"marathon.service", t.unit(h, unitSpec{
				description: fmt.Sprintf("Marathon (principal %s, role %s)", t.Marathon.Principal, t.Marathon.Role),
				exec:        []string{"/usr/bin/marathon"},
				limitNOFILE: defaultLimitNOFILE,
			}))
		}
		if h.has(RoleAgent) {
			for name, v := range agentFlagFiles(h) {
				put("etc/mesos-slave/"+name, v+"\n")
			}
			for _, kv := range t.roleExtraFlags(h, RoleAgent) {
				put("etc/mesos-slave/"+kv[0], kv[1]+"\n")
			}
			put(systemdUnitDir+"mesos-slave.service", t.unit(h, unitSpec{
				description: "Mesos agent (Docker and Mesos containerizers)",
				exec:        []string{"/usr/bin/mesos-init-wrapper", "slave"},
				after:       []string{"docker.service"},
				requires:    []string{"docker.service"},
				limitNOFILE: defaultLimitNOFILE,
				killMode:    "process", // tasks outlive an agent restart; the agent recovers them
			}))
		}
		for _, l := range lodestars {
			if l.Host != h.Name {
				continue
			}
			put(systemdUnitDir+"lodestar-"+l.Name+".service", t.unit(h, unitSpec{
				description:  "lodestar " + l.Name,
				exec:         append([]string{lodestarBin}, l.Args...),
				dynamicUser:  true,
				runtimeDir:   "lodestar-" + l.Name,
				bindPrivPort: true,
				limitNOFILE:  t.LodestarLimitNOFILE(),
				credential:   t.systemdAPIAuthFile(),
			}))
		}
	}
	files[ReadmeFile] = []byte(t.systemdReadme())
	return files, nil
}

// agentFlagFiles are the agent's flags as /etc/mesos-slave files, less extra_flags.
func agentFlagFiles(h Host) map[string]string {
	flags := map[string]string{
		"ip": h.IP, "hostname": h.IP, "port": itoa(h.AgentPort), "work_dir": agentWorkDir,
		"containerizers":                "docker,mesos",
		"executor_registration_timeout": executorRegistrationTimeout,
	}
	if a := agentAttributes(h); a != "" {
		flags["attributes"] = a
	}
	if h.IPFrom != "" {
		// MESOS_IP and MESOS_HOSTNAME in the host-IP unit's file carry the address.
		delete(flags, "ip")
		delete(flags, "hostname")
	}
	return flags
}

// systemdAPIAuthFile is APIAuthFile on a systemd host: a relative path lies in /etc/lodestar.
func (t *Topology) systemdAPIAuthFile() string {
	if t.APIAuthFile == "" || strings.HasPrefix(t.APIAuthFile, "/") {
		return t.APIAuthFile
	}
	return "/etc/lodestar/" + t.APIAuthFile
}

// systemdHostIP is what lodestar units bind to: the host IP from the host-IP unit's file.
func systemdHostIP(h Host) string {
	if a, err := netip.ParseAddr(h.IP); err == nil && a.Is6() {
		return "[${HOST_IP}]"
	}
	return "${HOST_IP}"
}

// hostIPScript waits until the host's topology IP is up on an interface, then writes
// HostEnvFile. Units that need the IP at start (binds, advertised addresses) start after it,
// so a slow DHCP lease or a late interface cannot make them bind or advertise the wrong address.
func (t *Topology) hostIPScript(h Host) string {
	family := "inet"
	if a, _ := netip.ParseAddr(h.IP); a.Is6() {
		family = "inet6"
	}
	return fmt.Sprintf(`#!/bin/sh
# Waits for %[1]s (host %[2]q of cluster %[3]q) to be an address of this machine, then writes
# %[4]s for the cluster's units (EnvironmentFile=).
%[5]sset -eu
addr=%[1]s
tries=0
until ip -o addr show | grep -qF " %[6]s $addr/"; do
	tries=$((tries + 1))
	if [ "$tries" -ge 120 ]; then
		echo "lodestar-cluster: $addr (host %[2]s in the topology) is not an address of this machine after 120s: check the topology's ip or the network configuration" >&2
		exit 1
	fi
	sleep 1
done
mkdir -p %[7]s
printf 'HOST_IP=%%s\nHOST_NAME=%%s\n' "$addr" %[2]s >%[4]s.tmp
mv %[4]s.tmp %[4]s
`, h.IP, h.Name, t.Name, HostEnvFile, generatedBy(FormatSystemd, "#"), family, HostEnvFile[:strings.LastIndex(HostEnvFile, "/")])
}

func (t *Topology) hostIPUnit(h Host) string {
	what := "IP " + h.IP
	if h.IPFrom != "" {
		what = "address on " + h.IPFrom
	}
	return fmt.Sprintf(`%[1]s[Unit]
Description=lodestar cluster %[2]q: wait for host %[3]q's %[4]s and write %[5]s
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh %[6]s

[Install]
WantedBy=multi-user.target
`, generatedBy(FormatSystemd, "#"), t.Name, h.Name, what, HostEnvFile, hostIPScript)
}

// unitSpec is what differs between the cluster's service units.
type unitSpec struct {
	description     string
	execPre         []string // run before exec; its failure keeps the service from starting
	exec            []string
	after, requires []string
	user            string
	dynamicUser     bool
	runtimeDir      string
	bindPrivPort    bool
	limitNOFILE     int // 0: the system's default
	killMode        string
	// credential is a file handed to the service as the credential systemdAPIAuthName.
	credential string
}

// unit renders a service unit that starts after the host-IP unit, reads its environment file
// and restarts on any exit.
func (t *Topology) unit(h Host, s unitSpec) string {
	var b strings.Builder
	b.WriteString(generatedBy(FormatSystemd, "#"))
	fmt.Fprintf(&b, "[Unit]\nDescription=%s, cluster %q host %q\n", s.description, t.Name, h.Name)
	fmt.Fprintf(&b, "Requires=%s\n", strings.Join(append([]string{hostIPUnit}, s.requires...), " "))
	fmt.Fprintf(&b, "After=%s\n", strings.Join(append([]string{"network-online.target", hostIPUnit}, s.after...), " "))
	b.WriteString("\n[Service]\n")
	fmt.Fprintf(&b, "EnvironmentFile=%s\n", HostEnvFile)
	if s.user != "" {
		fmt.Fprintf(&b, "User=%s\n", s.user)
	}
	if s.dynamicUser {
		b.WriteString("DynamicUser=yes\n")
	}
	if s.runtimeDir != "" {
		fmt.Fprintf(&b, "RuntimeDirectory=%s\n", s.runtimeDir)
	}
	if s.bindPrivPort {
		b.WriteString("AmbientCapabilities=CAP_NET_BIND_SERVICE\n")
	}
	if s.limitNOFILE > 0 {
		fmt.Fprintf(&b, "LimitNOFILE=%d\n", s.limitNOFILE)
	}
	if s.killMode != "" {
		fmt.Fprintf(&b, "KillMode=%s\n", s.killMode)
	}
	if s.credential != "" {
		fmt.Fprintf(&b, "LoadCredential=%s:%s\n", systemdAPIAuthName, s.credential)
	}
	if len(s.execPre) > 0 {
		fmt.Fprintf(&b, "ExecStartPre=%s\n", strings.Join(s.execPre, " "))
	}
	fmt.Fprintf(&b, "ExecStart=%s\n", strings.Join(execLines(s.exec), " \\\n\t"))
	b.WriteString("Restart=always\nRestartSec=5\n")
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// execLines groups a command line for a unit file: the program, then each flag with its value.
func execLines(args []string) []string {
	var lines []string
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") && !strings.Contains(args[i], "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			lines = append(lines, args[i]+" "+args[i+1])
			i++
			continue
		}
		lines = append(lines, args[i])
	}
	return lines
}
