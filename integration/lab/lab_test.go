package lab

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// labNamespaces lists the network namespaces whose names start with prefix.
func labNamespaces(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := run("ip", "netns", "list")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}

// deadPID is the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// A lab left behind by a killed test run (its namespace and a process in it) is removed
// when the next lab starts; a lab's hosts reach each other on the lab subnet, which the
// machine's own namespace never sees; and every namespace is gone when the test ends.
func TestLabHostsAndTeardown(t *testing.T) {
	skipUnlessLab(t)
	stale := namePrefix + strconv.Itoa(deadPID(t)) + "-zk1"
	if out, err := run("ip", "netns", "add", stale); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = run("ip", "netns", "delete", stale) })
	sleeper := exec.Command("ip", "netns", "exec", stale, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()

	ours := namePrefix + strconv.Itoa(os.Getpid()) + "-"
	t.Run("lab", func(t *testing.T) {
		l := New(t, "a", "b")
		if names := labNamespaces(t, stale); len(names) != 0 {
			t.Errorf("the stale lab namespace %s is still there", stale)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("the process in the stale lab still runs")
		}
		a, b := l.Host("a"), l.Host("b")
		if a.IP != "10.213.0.11" || b.IP != "10.213.0.12" || a.Root == b.Root {
			t.Fatalf("hosts %+v %+v", a, b)
		}
		if out, err := run("ip", "-o", "addr"); err != nil || strings.Contains(string(out), "10.213.") {
			t.Errorf("the machine's own namespace has a lab address (%v):\n%s", err, out)
		}
		if out := b.MustRun("ip", "-o", "addr", "show", "eth0"); !strings.Contains(string(out), " 10.213.0.12/24 ") {
			t.Errorf("host b's eth0:\n%s", out)
		}
		if _, err := a.StartRole(RoleAgent, "LAB_ADDR="+a.Addr(5051), "LAB_BACKEND_PORTS=31000"); err != nil {
			t.Fatal(err)
		}
		if err := fetchBackend(b, a.Addr(31000)); err != nil {
			t.Fatalf("from host b to host a: %v", err)
		}
		if err := b.DropAll(); err != nil {
			t.Fatal(err)
		}
		if err := fetchBackend(b, a.Addr(31000)); err == nil {
			t.Error("host b still reaches host a while it drops every packet")
		}
		if err := b.Heal(); err != nil {
			t.Fatal(err)
		}
		if err := fetchBackend(b, a.Addr(31000)); err != nil {
			t.Errorf("after Heal: %v", err)
		}
		if len(labNamespaces(t, ours)) != 3 {
			t.Errorf("namespaces %q, want a, b and the switch", labNamespaces(t, ours))
		}
	})
	if names := labNamespaces(t, ours); len(names) != 0 {
		t.Errorf("namespaces left after the test: %q", names)
	}
}

func fetchBackend(from *Host, addr string) error {
	resp, err := from.HTTPClient(2 * time.Second).Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(string(b), "backend ") {
		return fmt.Errorf("answer %d %q", resp.StatusCode, b)
	}
	return nil
}
