package haproxy

import (
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

// TestReloadPlanLeavesMapsToTheReload: a vhost moves to an app that is new, so the plan is a
// reload. The running HAProxy must not get the map entry first: it has no such backend and
// would answer 503 for the vhost until the reload, and for good if HAProxy refuses the new
// configuration (the previous files are put back, the runtime map would stay changed). The
// reloaded HAProxy reads the map files anyway.
func TestReloadPlanLeavesMapsToTheReload(t *testing.T) {
	cfg := testConfig()
	cfg.HAProxyMap = true
	vhostApp := func(id string, port int, vhost string) *discovery.App {
		return app(id, withPorts(port), withLabel("HAPROXY_GROUP", "external"), withLabel("HAPROXY_0_VHOST", vhost),
			withTasks(task(id[1:]+".1", ports(31000))))
	}
	reg := newTestRegistry(t)
	old := Build(reg.replace(t, vhostApp("/old", 10001, "shop.test"), vhostApp("/other", 10003, "other.test")), cfg, nil)
	next := Build(reg.replace(t, vhostApp("/new", 10002, "shop.test"), vhostApp("/other", 10003, "other.test,more.test")), cfg, old)
	if old.Err != nil || next.Err != nil {
		t.Fatal(old.Err, next.Err)
	}
	p := MakePlan(old, next)
	if !p.Reload {
		t.Fatalf("plan %+v, want a reload (backend new_10002 added)", p)
	}
	for _, c := range p.Runtime {
		if c.Kind == CmdAddMap || c.Kind == CmdDelMap {
			t.Errorf("reload plan carries map command %q", c.String())
		}
	}
}

// TestTaskReplacementAtSlotBoundaryIsNoReload: an app of 10 instances has 20 slots. A task
// dies (9 left) and Marathon replaces it (10 again): both steps must be runtime commands. A
// capacity that shrank to 10 at 9 tasks and grew back to 20 at 10 reloaded HAProxy twice for
// every task replacement of such an app.
func TestTaskReplacementAtSlotBoundaryIsNoReload(t *testing.T) {
	cfg := testConfig()
	cfg.StaticSlots = true
	web := func(ids ...int) *discovery.App {
		var ts []*discovery.Task
		for _, i := range ids {
			ts = append(ts, task("t"+string(rune('a'+i)), ports(31000+i)))
		}
		return app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withTasks(ts...))
	}
	reg := newTestRegistry(t)
	ten := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	m1 := Build(reg.replace(t, web(ten...)), cfg, nil)
	if n := len(m1.Backend("web_10000").Slots); n != 20 {
		t.Fatalf("10 tasks in %d slots, want 20", n)
	}
	m2 := Build(reg.replace(t, web(ten[1:]...)), cfg, m1)
	if p := MakePlan(m1, m2); p.Reload {
		t.Errorf("a task of 10 gone: reload (%s), want runtime commands", p.Reason)
	}
	m3 := Build(reg.replace(t, web(append(ten[1:], 10)...)), cfg, m2)
	if p := MakePlan(m2, m3); p.Reload {
		t.Errorf("its replacement started: reload (%s), want runtime commands", p.Reason)
	}
	// Far fewer tasks still give the slots back.
	m4 := Build(reg.replace(t, web(0, 1, 2)), cfg, m3)
	if n := len(m4.Backend("web_10000").Slots); n != 10 {
		t.Errorf("3 tasks keep %d slots, want 10", n)
	}
}

// TestDynamicSlotsFollowTheTasks: a backend HAProxy can add servers to has one slot per task.
// A task replaced by Marathon takes its predecessor's slot, a rolling deployment (twice the
// tasks for a while) adds servers at run time, and when it is over the old tasks' slots stay
// as spares (no reload) until a build for a reload happening anyway (ShrinkSlots) drops them.
func TestDynamicSlotsFollowTheTasks(t *testing.T) {
	cfg := testConfig()
	web := func(ids ...string) *discovery.App {
		var ts []*discovery.Task
		for i, id := range ids {
			ts = append(ts, task(id, ports(31000+i)))
		}
		return app("/web", withPorts(10000), withLabel("HAPROXY_GROUP", "external"), withTasks(ts...))
	}
	other := app("/other", withPorts(10001), withLabel("HAPROXY_GROUP", "external"))
	reg := newTestRegistry(t)
	step := func(prev *Model, cfg Config, wantSlots int, wantReload bool, apps ...*discovery.App) *Model {
		t.Helper()
		m := Build(reg.replace(t, apps...), cfg, prev)
		b := m.Backend("web_10000")
		if b == nil || !b.DynamicServers || len(b.Slots) != wantSlots {
			t.Fatalf("backend %+v, want %d dynamic slots", b, wantSlots)
		}
		if prev != nil {
			if p := MakePlan(prev, m); p.Reload != wantReload {
				t.Fatalf("plan %+v, want reload %v", p, wantReload)
			}
		}
		return m
	}
	m := step(nil, cfg, 3, false, web("a", "b", "c"))
	m = step(m, cfg, 3, false, web("a", "c"))      // b killed
	m = step(m, cfg, 3, false, web("a", "c", "d")) // its replacement
	if got := slotOf(t, m.Backend("web_10000"), "d"); got != 1 {
		t.Errorf("the replacement is in slot %d, want b's (1)", got)
	}
	m = step(m, cfg, 6, false, web("a", "c", "d", "e", "f", "g")) // a deployment's new tasks: add server
	m = step(m, cfg, 6, false, web("e", "f", "g"))                // the old ones gone: spares
	m = step(m, cfg, 6, false, web("e", "f", "g"))                // nothing changed, nothing dropped
	// A new app reloads HAProxy: that build drops the spares, and the tasks beyond the
	// three slots left move into the freed ones.
	shrink := cfg
	shrink.ShrinkSlots = true
	m = step(m, shrink, 3, true, web("e", "f", "g"), other)
	for _, s := range m.Backend("web_10000").Slots {
		if s.Spare() {
			t.Errorf("slot %s is free after the shrinking build", s.Name)
		}
	}
	m = step(m, cfg, 3, false, web("e", "f", "g"), other) // and the next plain build keeps that
	m = step(m, cfg, 3, false, other, web())              // scaled to 0: spares, no reload
	step(m, cfg, 3, false, web("h"), other)               // and back
}
