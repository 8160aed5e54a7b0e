package cluster

import (
	"strings"
	"testing"
)

// TestSystemdLimitNOFILEFromExpectedSize: the lodestar units' LimitNOFILE fits what HAProxy
// needs at the topology's planned size; the default size keeps 65,536, and the other units
// keep 65,536 whatever the size.
func TestSystemdLimitNOFILEFromExpectedSize(t *testing.T) {
	lbUnit := "lb1/etc/systemd/system/lodestar-lb-external.service"
	masterUnit := "node1/etc/systemd/system/mesos-master.service"
	files := render(t, loadExample(t), FormatSystemd)
	for _, unit := range []string{lbUnit, masterUnit} {
		if !strings.Contains(string(files[unit]), "\nLimitNOFILE=65536\n") {
			t.Errorf("%s at the default size:\n%s", unit, files[unit])
		}
	}

	top := loadExample(t)
	top.ExpectedApps, top.ExpectedTasks = 100000, 200000
	files = render(t, top, FormatSystemd)
	// 2×4096 maxconn + 100,005 listeners + 200,000 checked servers + 10 + 3×64 threads + 22
	// (master CLI) = 308,421 for HAProxy, + 4,096 for lodestar = 312,517, rounded up to 313,344.
	if unit := string(files[lbUnit]); !strings.Contains(unit, "\nLimitNOFILE=313344\n") {
		t.Errorf("%s at 100,000 apps and 200,000 tasks:\n%s", lbUnit, unit)
	}
	if unit := string(files[masterUnit]); !strings.Contains(unit, "\nLimitNOFILE=65536\n") {
		t.Errorf("%s changed with the apps' size:\n%s", masterUnit, unit)
	}
}

// TestExpectedSizeBounds: a negative or absurd planned size is refused, naming the field.
func TestExpectedSizeBounds(t *testing.T) {
	for _, c := range []struct {
		apps, tasks int
		field       string
	}{
		{-1, 0, "expected_apps"},
		{0, 1 << 40, "expected_tasks"},
		{maxExpected + 1, 10, "expected_apps"},
	} {
		top := loadExample(t)
		top.ExpectedApps, top.ExpectedTasks = c.apps, c.tasks
		_, err := top.Validate()
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("apps %d tasks %d: %v, want an error naming %s", c.apps, c.tasks, err, c.field)
		}
	}
	top := loadExample(t)
	top.ExpectedApps, top.ExpectedTasks = maxExpected, maxExpected
	if _, err := top.Validate(); err != nil {
		t.Errorf("the largest planned size refused: %v", err)
	}
	if n := top.LodestarLimitNOFILE(); n > 1<<20 {
		t.Errorf("the largest planned size gives LimitNOFILE %d, over the kernel's default fs.nr_open", n)
	}
}
