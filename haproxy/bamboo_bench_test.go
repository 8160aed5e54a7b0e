package haproxy

import (
	"fmt"
	"testing"
)

// BenchmarkBambooRender1000Apps is bamboo template mode's render of 1,000 apps (the data and
// the test template), against BenchmarkNativeBuildRender1000Apps, the native build and render
// of the same snapshot.
func BenchmarkBambooRender1000Apps(b *testing.B) {
	snap := snapshot(b, manyApps(1000, 20000)...)
	tpl, err := ParseBambooTemplate("bench.cfg", fmt.Sprintf(bambooTestTemplate, 18080))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.Render(snap, []string{"*"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNativeBuildRender1000Apps(b *testing.B) {
	snap := snapshot(b, manyApps(1000, 20000)...)
	cfg := testConfig()
	cfg.Groups = []string{"*"}
	b.ReportAllocs()
	for b.Loop() {
		m := Build(snap, cfg, nil)
		if m.Err != nil {
			b.Fatal(m.Err)
		}
		if _, err := Render(m); err != nil {
			b.Fatal(err)
		}
	}
}
