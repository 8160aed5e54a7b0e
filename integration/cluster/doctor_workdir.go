package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// A Mesos master's work_dir holds its replicated log, which names the address the master had
// when the log was made. A master whose IP changes (a new DHCP lease, a re-rendered topology)
// and starts on the old work_dir fails to recover its log or rejoins the quorum under the old
// address. A rendered mesos-master unit runs a script first (ExecStartPre) that records the
// address in the work_dir (WorkDirIPFile) and keeps the master from starting when it changed;
// the doctor, run on a master host, compares that record with the masters' addresses now.

// CheckMasterWorkDir names the finding on a master's work_dir on the doctor's own host.
const CheckMasterWorkDir = "master work_dir"

// WorkDirIPFile is the file in a master's work_dir holding the address the work_dir was made
// under, as the rendered host-IP script records it.
const WorkDirIPFile = "lodestar-host-ip"

// DefaultMasterWorkDir is the master work_dir the systemd form renders.
const DefaultMasterWorkDir = masterWorkDir

// wipeFix says how to recover a master whose work_dir names an old address.
func wipeFix(dir string) string {
	return fmt.Sprintf("move %s aside (or wipe %s) and start mesos-master again: the master rejoins the quorum and copies the log from the others",
		filepath.Join(dir, "replicated_log"), dir)
}

// checkMasterWorkDir judges the work_dir dir of a master on this host against the addresses
// (ip:port) of the cluster's masters.
func checkMasterWorkDir(dir string, masters []string) Finding {
	f := Finding{Check: CheckMasterWorkDir, Target: dir}
	data, err := os.ReadFile(filepath.Join(dir, WorkDirIPFile))
	if errors.Is(err, fs.ErrNotExist) {
		f.Severity = SeverityWarn
		f.Message = fmt.Sprintf("no %s: the address its replicated log was made under is not known", WorkDirIPFile)
		f.Fix = "start " + hostIPUnit + " of the rendered units once (it records the address), or check the work_dir path"
		return f
	}
	if err != nil {
		f.Severity = SeverityError
		f.Message = fmt.Sprintf("cannot read its %s: %v", WorkDirIPFile, err)
		f.Fix = "run the doctor as root on the master's host"
		return f
	}
	recorded, err := netip.ParseAddr(strings.TrimSpace(string(data)))
	if err != nil {
		f.Severity = SeverityError
		f.Message = fmt.Sprintf("its %s holds %q, not an IP address", WorkDirIPFile, firstLine(string(data)))
		f.Fix = wipeFix(dir)
		return f
	}
	var ips []string
	for _, m := range masters {
		ip, _, err := parseIPPort(m)
		if err != nil {
			continue
		}
		if ip == recorded.Unmap() {
			f.Severity = SeverityOK
			f.Message = fmt.Sprintf("made under %s, the address of master %s", recorded, m)
			return f
		}
		ips = append(ips, ip.String())
	}
	if len(ips) == 0 {
		f.Severity = SeverityWarn
		f.Message = fmt.Sprintf("made under %s; no master address is known to compare it with", recorded)
		f.Fix = "give --mesos-master or --topology"
		return f
	}
	f.Severity = SeverityError
	f.Message = fmt.Sprintf("made under %s, which no master has now (masters: %s): its replicated log names the old address",
		recorded, strings.Join(ips, ", "))
	f.Fix = wipeFix(dir)
	return f
}

// masterWorkDirScript is the mesos-master unit's ExecStartPre script: it records the host's
// address (HOST_IP, from the host-IP unit's environment file) in the master's work_dir, and
// fails, naming the fix, when the work_dir's replicated log was made under another address.
func masterWorkDirScript(h Host) string {
	dir := masterWorkDir
	return fmt.Sprintf(`#!/bin/sh
# Run by mesos-master.service before the master (host %[4]q): the master's replicated log in
# %[1]s names the address it was made under; a master whose address changed must not start on it.
%[5]sset -eu
addr=${HOST_IP:?HOST_IP unset: %[6]s has not run}
wd=%[1]s
if [ -d "$wd/replicated_log" ] && [ -s "$wd/%[2]s" ]; then
	was=$(head -n 1 "$wd/%[2]s")
	if [ "$was" != "$addr" ]; then
		echo "lodestar-cluster: this Mesos master's work_dir $wd was made under $was, and the host is now $addr: %[3]s" >&2
		exit 1
	fi
fi
mkdir -p "$wd"
printf '%%s\n' "$addr" >"$wd/%[2]s"
`, dir, WorkDirIPFile, wipeFix(dir), h.Name, generatedBy(FormatSystemd, "#"), hostIPUnit)
}
