package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The doctor compares the address a master's work_dir was made under with the masters'
// addresses now: the same is ok; another is an error naming both and the wipe.
func TestCheckMasterWorkDir(t *testing.T) {
	masters := []string{"10.0.0.1:5050", "10.0.0.2:5050"}
	cases := []struct {
		name, marker string // marker "-" means no file
		masters      []string
		sev          Severity
		want         string
	}{
		{"same address", "10.0.0.2\n", masters, SeverityOK, "made under 10.0.0.2, the address of master 10.0.0.2:5050"},
		{"changed address", "10.0.0.9\n", masters, SeverityError, "made under 10.0.0.9, which no master has now (masters: 10.0.0.1, 10.0.0.2)"},
		{"no record", "-", masters, SeverityWarn, "no lodestar-host-ip"},
		{"garbage", "10.0.0.1; rm -rf /\n", masters, SeverityError, `holds "10.0.0.1; rm -rf /", not an IP address`},
		{"no masters known", "10.0.0.1\n", nil, SeverityWarn, "no master address is known"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.marker != "-" {
				if err := os.WriteFile(filepath.Join(dir, WorkDirIPFile), []byte(c.marker), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f := checkMasterWorkDir(dir, c.masters)
			if f.Severity != c.sev || !strings.Contains(f.Message, c.want) {
				t.Errorf("%s %q, want %s containing %q", f.Severity, f.Message, c.sev, c.want)
			}
			if c.sev == SeverityError && !strings.Contains(f.Fix, filepath.Join(dir, "replicated_log")) {
				t.Errorf("fix %q does not name the replicated log", f.Fix)
			}
		})
	}
}

// Run reports the work_dir check beside the masters it probed (here given, and down).
func TestDoctorReportsMasterWorkDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, WorkDirIPFile), []byte("192.0.2.7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Targets: Targets{MesosMasters: []string{"127.0.0.1:1"}}, MasterWorkDir: dir, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := d.Run(context.Background()).Find(CheckMasterWorkDir, SeverityError)
	if len(got) != 1 || !strings.Contains(got[0].Message, "made under 192.0.2.7, which no master has now (masters: 127.0.0.1)") {
		t.Errorf("findings %+v", got)
	}
}

// The rendered mesos-master unit's ExecStartPre script records the address in the work_dir,
// and fails when the work_dir's replicated log was made under another; it is run here with
// the work_dir moved into a temp dir and HOST_IP as the host-IP unit's file sets it.
func TestMasterUnitGuardsItsWorkDir(t *testing.T) {
	top, _, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	files := render(t, top, FormatSystemd)
	var master Host
	for _, h := range top.Hosts {
		if h.has(RoleMaster) {
			master = h
			break
		}
	}
	unit := string(files[master.Name+"/"+systemdUnitDir+"mesos-master.service"])
	if !strings.Contains(unit, "ExecStartPre=/bin/sh "+workDirScript+"\n") {
		t.Errorf("mesos-master.service runs no work_dir check:\n%s", unit)
	}
	script := string(files[master.Name+"/"+strings.TrimPrefix(workDirScript, "/")])
	for _, h := range top.Hosts {
		if _, ok := files[h.Name+"/"+strings.TrimPrefix(workDirScript, "/")]; ok != h.has(RoleMaster) {
			t.Errorf("host %s (roles %v): work_dir script rendered %v", h.Name, h.Roles, ok)
		}
	}
	wd := filepath.Join(t.TempDir(), "master")
	script = strings.ReplaceAll(script, masterWorkDir, wd)
	runScript := func() (string, error) {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Env = append(os.Environ(), "HOST_IP="+master.IP)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	marker := filepath.Join(wd, WorkDirIPFile)
	if out, err := runScript(); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(marker); string(got) != master.IP+"\n" {
		t.Fatalf("recorded %q, want %s", got, master.IP)
	}
	// The work_dir was made under another address, and holds a log: stop, naming the fix.
	if err := os.MkdirAll(filepath.Join(wd, "replicated_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte("10.9.9.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runScript()
	if err == nil || !strings.Contains(out, "was made under 10.9.9.9, and the host is now "+master.IP) ||
		!strings.Contains(out, filepath.Join(wd, "replicated_log")) {
		t.Fatalf("stale work_dir: %v\n%s", err, out)
	}
	// Once the log is moved aside, the script records the new address.
	if err := os.RemoveAll(filepath.Join(wd, "replicated_log")); err != nil {
		t.Fatal(err)
	}
	if out, err := runScript(); err != nil {
		t.Fatalf("after the wipe: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(marker); string(got) != master.IP+"\n" {
		t.Errorf("after the wipe recorded %q, want %s", got, master.IP)
	}
}
