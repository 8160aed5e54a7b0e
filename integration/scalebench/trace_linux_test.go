package main

import (
	"bufio"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// The peak is the child's own: a small child of a large parent reports a small peak (the
// rusage ru_maxrss reported the parent's), and a child that grows reports its growth.
func TestRunTracedPeakIsTheChilds(t *testing.T) {
	ballast := make([]byte, 96<<20)
	for i := range ballast {
		ballast[i] = 1 // touched, so resident
	}
	small, err := runTraced(exec.Command("true"))
	if err != nil {
		t.Fatal(err)
	}
	if small.PeakKiB <= 0 || small.PeakKiB > 32<<10 {
		t.Errorf("true: peak %d KiB, want a few MiB (the parent holds 96 MiB more)", small.PeakKiB)
	}
	// 24 MB in a shell variable.
	big, err := runTraced(exec.Command("sh", "-c", `x=$(head -c 24000000 /dev/zero | tr '\0' a); [ ${#x} -eq 24000000 ]`))
	if err != nil {
		t.Fatal(err)
	}
	if big.Status.ExitStatus() != 0 || big.PeakKiB < 23000 {
		t.Errorf("sh holding 24 MB: status %v, peak %d KiB", big.Status, big.PeakKiB)
	}
	runtime.KeepAlive(ballast)
}

func TestRunTracedExitStatus(t *testing.T) {
	r, err := runTraced(exec.Command("sh", "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Status.Exited() || r.Status.ExitStatus() != 3 {
		t.Fatalf("status %v, want exit 3", r.Status)
	}
	if _, err := runTraced(exec.Command("/nonexistent/haproxy")); err == nil {
		t.Fatal("a missing binary ran")
	}
}

func TestParseVmHWM(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   int64
		ok     bool
	}{
		{"Name:\thaproxy\nVmPeak:\t  700000 kB\nVmHWM:\t  684380 kB\nVmRSS:\t 1 kB\n", 684380, true},
		{"Name:\tx\nVmRSS:\t1 kB\n", 0, false},
		{"VmHWM:\t  many kB\n", 0, false},
	} {
		got, err := parseVmHWM(bufio.NewScanner(strings.NewReader(tc.status)))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseVmHWM(%q) = %d, %v; want %d (ok %v)", tc.status, got, err, tc.want, tc.ok)
		}
	}
}
