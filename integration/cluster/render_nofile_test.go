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
	top.ExpectedApps, top.ExpectedTasks = 20000, 60000
	files = render(t, top, FormatSystemd)
	// 2×4096 maxconn + 20,005 listeners + 2×60,000 checked servers (every app in a rolling
	// deployment at once) + 10 + 3×64 threads + 22 (master CLI) = 148,421 for HAProxy,
	// + 4,096 for lodestar = 152,517, rounded up to 152,576.
	if unit := string(files[lbUnit]); !strings.Contains(unit, "\nLimitNOFILE=152576\n") {
		t.Errorf("%s at 20,000 apps and 60,000 tasks:\n%s", lbUnit, unit)
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
		{400000, 400000, "over the kernel's default fs.nr_open"},
	} {
		top := loadExample(t)
		top.ExpectedApps, top.ExpectedTasks = c.apps, c.tasks
		_, err := top.Validate()
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("apps %d tasks %d: %v, want an error naming %s", c.apps, c.tasks, err, c.field)
		}
	}
	top := loadExample(t)
	top.ExpectedApps, top.ExpectedTasks = 80000, 100000
	if _, err := top.Validate(); err != nil {
		t.Errorf("80,000 apps and 100,000 tasks refused: %v", err)
	}
	// 8,192 + 80,005 + 200,000 + 224 + 4,096 = 292,517, rounded up.
	if n := top.LodestarLimitNOFILE(); n != 292864 {
		t.Errorf("80,000 apps and 100,000 tasks give LimitNOFILE %d, want 292,864", n)
	}
}
