package haproxy

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/options"
	"github.com/haproxytech/config-parser/v5/params"
	"github.com/haproxytech/config-parser/v5/types"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/scalegen"
)

// benchApps makes n apps with 3 tasks each, decoded from Marathon JSON: a third with a vhost,
// a third in tcp mode with a TCP health check, a third plain http with an HTTP health check and
// sticky sessions (scalegen.Mixed).
func benchApps(b *testing.B, n int) []*discovery.App {
	b.Helper()
	apps, err := scalegen.Spec{Apps: n, Tasks: 3, Shape: scalegen.Mixed}.DiscoveryApps()
	if err != nil {
		b.Fatal(err)
	}
	return apps
}

func benchSnapshot(b *testing.B, n int) (*testRegistry, *discovery.Snapshot) {
	b.Helper()
	reg := newTestRegistry(b)
	snap := reg.replace(b, benchApps(b, n)...)
	if snap.Tasks != 3*n {
		b.Fatalf("%d tasks", snap.Tasks)
	}
	return reg, snap
}

// cpuTime is the CPU time the process used so far (every thread, GC included). The benchmarks
// report it per operation next to wall time: it is what the work costs, while wall time on a
// shared machine also counts waiting for a CPU.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs fn b.N times and reports CPU milliseconds per operation.
func measure(b *testing.B, fn func()) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		fn()
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

func benchRender(b *testing.B, n int) {
	_, snap := benchSnapshot(b, n)
	for _, mapMode := range []bool{false, true} {
		cfg := testConfig()
		cfg.HAProxyMap = mapMode
		mode := "acls"
		if mapMode {
			mode = "maps"
		}
		m := Build(snap, cfg, nil)
		if m.Err != nil || len(m.Backends) != n || len(m.Excluded) > 0 {
			b.Fatalf("build: %v, %d backends, excluded %v", m.Err, len(m.Backends), excluded(m))
		}
		b.Run(mode+"/build", func(b *testing.B) {
			measure(b, func() { Build(snap, cfg, nil) })
		})
		b.Run(mode+"/build-incremental", func(b *testing.B) {
			measure(b, func() { Build(snap, cfg, m) })
		})
		b.Run(mode+"/render", func(b *testing.B) {
			r, err := Render(m)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(r.Config))/1e6, "MB")
			measure(b, func() { _, _ = Render(m) })
		})
		b.Run(mode+"/build+render", func(b *testing.B) {
			measure(b, func() {
				if _, err := Render(Build(snap, cfg, nil)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkRender10kApps: 10,000 apps with 30,000 servers (100,000 server lines with the spare
// slots), with and without --haproxy-map. Budget: build+render under 150 ms.
func BenchmarkRender10kApps(b *testing.B) { benchRender(b, 10000) }

// BenchmarkRender1kApps shows that the cost is linear in the number of apps.
func BenchmarkRender1kApps(b *testing.B) { benchRender(b, 1000) }

// BenchmarkPlanOneTaskChanged: one task changes among 30,000 servers. Target: under 1 ms.
func BenchmarkPlanOneTaskChanged(b *testing.B) {
	reg, snap := benchSnapshot(b, 10000)
	cfg := testConfig()
	old := Build(snap, cfg, nil)
	a := snap.App("/team042/app04242")
	changed := reg.send(b, discovery.TaskStatus{AppID: a.ID, TaskID: a.Tasks[1].ID, State: discovery.StateKilling})
	next := Build(changed, cfg, old)
	p := MakePlan(old, next)
	if p.Reload || len(p.Runtime) != 1 {
		b.Fatalf("plan %+v", p)
	}
	measure(b, func() { MakePlan(old, next) })
}

// BenchmarkConfigParser builds the same per-app frontends, backends, servers, ACLs and
// use_backend rules through config-parser v5 and writes them out, for comparison with
// BenchmarkRender*/render: see Render for the decision.
func BenchmarkConfigParser(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n)+"apps/build+write", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				configParserBuild(b, n)
			}
		})
	}
	b.Run("10000apps/parse", func(b *testing.B) {
		_, snap := benchSnapshot(b, 10000)
		r, err := Render(Build(snap, testConfig(), nil))
		if err != nil {
			b.Fatal(err)
		}
		text := string(r.Config)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parser.New(options.String(text)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func configParserBuild(b *testing.B, n int) string {
	p, err := parser.New()
	if err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(p.SectionsCreate(parser.Frontends, "marathon_http_in"))
	bindOpts, _ := params.ParseBindOptions([]string{})
	for i := range n {
		name := fmt.Sprintf("team%03d_app%05d_%d", i%100, i, 10000+i)
		must(p.SectionsCreate(parser.Frontends, name))
		must(p.Insert(parser.Frontends, name, "bind", types.Bind{Path: "*:" + strconv.Itoa(10000+i), Params: bindOpts}))
		must(p.Set(parser.Frontends, name, "mode", &types.StringC{Value: "http"}))
		must(p.Set(parser.Frontends, name, "default_backend", &types.StringC{Value: name}))
		if i%3 == 0 {
			acl := "host_" + name
			must(p.Insert(parser.Frontends, "marathon_http_in", "acl", &types.ACL{Name: acl, Criterion: "hdr(host)", Value: "-i app.example.com"}))
			must(p.Insert(parser.Frontends, "marathon_http_in", "use_backend", &types.UseBackend{Name: name, Cond: "if", CondTest: acl}))
		}
		must(p.SectionsCreate(parser.Backends, name))
		must(p.Set(parser.Backends, name, "balance", &types.Balance{Algorithm: "roundrobin"}))
		must(p.Set(parser.Backends, name, "mode", &types.StringC{Value: "http"}))
		must(p.Set(parser.Backends, name, "option forwardfor", &types.OptionForwardFor{}))
		for s := range 10 {
			opts := params.ParseServerOptions([]string{"check", "inter", "3s", "fall", "3", "disabled"})
			must(p.Insert(parser.Backends, name, "server", types.Server{Name: "s" + strconv.Itoa(s+1), Address: "10.0.0.1:31000", Params: opts}))
		}
	}
	return p.String()
}
