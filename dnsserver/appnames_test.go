package dnsserver

import (
	"slices"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

func TestAppNames(t *testing.T) {
	ix := BuildIndex(snapshotOf(loadState(t)), testConfig(), nil)
	got := ix.AppNames("/car-store")
	for _, want := range []string{
		"car-store.marathon.mesos.",
		"car-store-zinaz-0.marathon.mesos.",
		"car-store.marathon.slave.mesos.",
		"car-store-zinaz-0.marathon.slave.mesos.",
		"_car-store._tcp.marathon.mesos.",
		"_car-store._udp.marathon.slave.mesos.",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("AppNames(/car-store) lacks %s; got %q", want, got)
		}
	}
	for _, n := range got {
		if ix.Lookup(n) == nil {
			t.Errorf("AppNames returned %s, which has no records", n)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("AppNames not sorted: %q", got)
	}
	if liquor := ix.AppNames("/liquor-store"); slices.ContainsFunc(liquor, func(n string) bool { return n == "car-store.marathon.mesos." }) || len(liquor) == 0 {
		t.Errorf("AppNames(/liquor-store) = %q", liquor)
	}
	if n := ix.AppNames("/no-such-app"); len(n) != 0 {
		t.Errorf("AppNames of an unknown app = %q, want none", n)
	}
	// A nested Marathon app: its task name "web.shop" is one label, "web-shop".
	apps := loadApps(t)
	web := apps[slices.IndexFunc(apps, func(a *discovery.App) bool { return a.ID == "/shop/web" })]
	ix = BuildIndex(snapshotOf(loadState(t), web), testConfig(), nil)
	names := ix.AppNames("/shop/web")
	for _, want := range []string{"web-shop.marathon.mesos.", "_web-shop._tcp.marathon.mesos."} {
		if !slices.Contains(names, want) {
			t.Errorf("AppNames(/shop/web) lacks %s; got %q", want, names)
		}
	}
	// Agent ids of Mesos since 0.23 end in "-S{n}": canonical names carry "s{n}".
	st := loadState(t)
	for i := range st.Agents {
		st.Agents[i].ID += "-S12"
	}
	for f := range st.Frameworks {
		for i := range st.Frameworks[f].Tasks {
			st.Frameworks[f].Tasks[i].SlaveID += "-S12"
		}
	}
	ix = BuildIndex(snapshotOf(st), testConfig(), nil)
	got = ix.AppNames("/car-store")
	for _, want := range []string{"car-store-zinaz-s12.marathon.mesos.", "car-store-zinaz-s12.marathon.slave.mesos."} {
		if ix.Lookup(want) == nil {
			t.Fatalf("test state: %s has no records", want)
		}
		if !slices.Contains(got, want) {
			t.Errorf("AppNames(/car-store) lacks %s; got %q", want, got)
		}
	}
	var nilIx *RecordIndex
	if n := nilIx.AppNames("/car-store"); n != nil {
		t.Errorf("nil index: %q", n)
	}
}
