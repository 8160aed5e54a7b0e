package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// TestHangingCheckFreezesNoOtherApp: an app whose backend template makes `haproxy -c` hang
// (an ACL pattern file that is a FIFO nobody writes: HAProxy blocks in open) is left out, named
// with the timeout in /v1/haproxy/status, and a victim's vhost change made afterwards reaches
// HAProxy and routes traffic, while the hanging app stays out.
func TestHangingCheckFreezesNoOtherApp(t *testing.T) {
	t.Parallel()
	backend := haproxytest.Backend(t)
	victimPort, evilPort := FreePort(t), FreePort(t)
	victim := func(vhost string) map[string]any {
		return lbApp("/victim/web", victimPort, map[string]string{"HAPROXY_0_VHOST": vhost})
	}
	fm := startLBMarathon(t, victim("victim.hang.test"))
	addTask(t, fm, "/victim/web", backend)
	// A full-mode edge: confined labels refuse `-f` before haproxy -c ever runs, but a trusted
	// template can still make it hang, and no app may freeze the others then either.
	lb := startLB(t, fm, "--label-templates", "full")

	fifo := filepath.Join(lb.RunDir, "patterns.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	putApp(t, fm, lbApp("/evil/app", evilPort, map[string]string{
		"HAPROXY_0_VHOST":        "evil.hang.test",
		"HAPROXY_0_BACKEND_HEAD": "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  acl from_fifo path -f " + fifo + "\n",
	}))
	evilOut := func() error {
		for _, e := range lb.status(t).Excluded {
			if e.AppID == "/evil/app" && strings.Contains(e.Reason, "haproxy -c timed out") {
				return nil
			}
		}
		return fmt.Errorf("excluded %+v: /evil/app not out for a timed-out check", lb.status(t).Excluded)
	}
	Eventually(t, lbTimeout+lbTimeout, "the app that hangs haproxy -c left out", evilOut)

	putApp(t, fm, victim("victim-new.hang.test"))
	c := lbClient(t, false)
	Eventually(t, lbTimeout, "the victim's new vhost routed", func() error {
		id, err := askBackend(c, "GET", "http://"+lb.HTTPAddr+"/", "victim-new.hang.test")
		if err != nil {
			return err
		}
		if id != backend.ID {
			return fmt.Errorf("answered by %q, want %q", id, backend.ID)
		}
		return nil
	})
	if err := evilOut(); err != nil {
		t.Error(err)
	}
	// The victim's change (a map entry or a reload) takes at most one check: the hanging app
	// stays out without being checked again.
	if st := lb.status(t); st.LastApply == nil || st.LastApply.Kind == "failed" || st.LastApply.Validations > 1 {
		t.Errorf("last apply %+v: want the victim's change applied after at most one check", st.LastApply)
	}
}
