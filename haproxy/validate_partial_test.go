package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// partialRun is an Applier without a process whose running configuration is taken as good
// after every validation that passes, as a reload followed by markGood would.
type partialRun struct {
	t       *testing.T
	a       *Applier
	running *Model
}

// newPartialRun validates apps (in full: nothing runs yet) and takes the result as running.
func newPartialRun(t *testing.T, cfg ApplierConfig, apps ...*discovery.App) *partialRun {
	t.Helper()
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &partialRun{t: t, a: a}
	if rec := p.apply(apps...); rec.Validation != validationFull {
		t.Fatalf("first validation %q, want full", rec.Validation)
	}
	return p
}

// apply validates apps against the running configuration and, when that passes, makes the
// result the running, good configuration.
func (p *partialRun) apply(apps ...*discovery.App) ApplyRecord {
	p.t.Helper()
	m, r, rec, err := p.a.validated(context.Background(), snapshot(p.t, apps...), p.running)
	if err != nil {
		p.t.Fatalf("validated: %v", err)
	}
	p.a.publish(m, r)
	p.a.markGood()
	p.running = m
	return rec
}

// candidate is the file the last check read.
func (p *partialRun) candidate() string {
	p.t.Helper()
	b, err := os.ReadFile(p.a.cfg.ConfigPath + ".new")
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// TestPartialValidationChecksOnlyANewApp: with 30 apps running, a new app is checked in a
// candidate holding HEAD, the userlists, its own sections and its lines of the shared
// frontends (with the shared lines of map lookups) and nothing of the 30 others; every line
// of it is the line of the full configuration its table says.
func TestPartialValidationChecksOnlyANewApp(t *testing.T) {
	apps := manyApps(30, 23400)
	p := newPartialRun(t, applierConfig(t), apps...)
	full := p.a.Config()
	apps = append(apps, vhostApp("/new/web", 23450, task("t-new", host("127.0.0.1"), ports(41450))))
	rec := p.apply(apps...)
	if rec.Validation != validationPartial || rec.Validations != 1 {
		t.Fatalf("record %+v, want one partial validation", rec)
	}
	// Its frontend, its backend, and its lines in the HTTP, HTTPS and app-id frontends.
	if rec.ValidatedSections != 5 {
		t.Errorf("%d sections validated, want 5", rec.ValidatedSections)
	}
	cand := p.candidate()
	for _, want := range []string{"global\n", "defaults\n", "frontend new_web_23450\n", "backend new_web_23450\n", "frontend marathon_http_in\n", "frontend marathon_https_in\n"} {
		if !strings.Contains(cand, want) {
			t.Errorf("candidate lacks %q", want)
		}
	}
	if strings.Contains(cand, "team_app") {
		t.Errorf("candidate holds sections of unchanged apps:\n%s", cand)
	}
	if len(cand)*4 > len(full) {
		t.Errorf("candidate is %d bytes against %d for the whole configuration", len(cand), len(full))
	}

	// The line table: every candidate line is the full configuration's line it names.
	apps = append(apps, vhostApp("/new/api", 23451, task("t-api", host("127.0.0.1"), ports(41451))))
	m := Build(snapshot(t, apps...), p.a.buildConfig(nil), p.running)
	r, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	pc, why := p.a.partialCandidate(p.running, m, r)
	if pc == nil {
		t.Fatalf("no partial candidate: %s", why)
	}
	fullLines := strings.Split(string(r.Config), "\n")
	for i, line := range strings.Split(strings.TrimSuffix(string(pc.config), "\n"), "\n") {
		if n := pc.lines[i]; n > 0 && fullLines[n-1] != line {
			t.Fatalf("candidate line %d %q is said to be line %d %q", i+1, line, n, fullLines[n-1])
		}
	}
}

// TestPartialValidationBlamesABrokenNewApp: two new apps, one with a certificate file only
// HAProxy finds missing: the partial check's alert names it by the full configuration's line, it is
// left out, and the good one goes in, in two partial checks.
func TestPartialValidationBlamesABrokenNewApp(t *testing.T) {
	apps := manyApps(20, 23500)
	p := newPartialRun(t, applierConfig(t), apps...)
	bad := vhostApp("/new/bad", 23550, task("t-bad", host("127.0.0.1"), ports(41550)))
	bad.Labels["HAPROXY_0_SSL_CERT"] = "/nonexistent/lodestar-partial.pem"
	apps = append(apps, vhostApp("/new/good", 23551, task("t-good", host("127.0.0.1"), ports(41551))), bad)
	rec := p.apply(apps...)
	if rec.Validation != validationPartial || rec.Validations != 2 {
		t.Errorf("record %+v, want two partial validations", rec)
	}
	b, ok := p.a.blamed["/new/bad"]
	if len(p.a.blamed) != 1 || !ok || !strings.Contains(b.reason, "lodestar-partial.pem") {
		t.Fatalf("blamed %v, want only /new/bad for its certificate", p.a.blamed)
	}
	conf := string(p.a.Config())
	if strings.Contains(conf, "new_bad_23550") || !strings.Contains(conf, "backend new_good_23551") || !strings.Contains(conf, "backend team_app019_23519") {
		t.Error("the configuration does not hold exactly the good apps")
	}
}

// TestPartialValidationFallsBackToFull: a changed HEAD, a validation that failed before, and
// --label-templates full each get the whole configuration checked.
func TestPartialValidationFallsBackToFull(t *testing.T) {
	apps := manyApps(5, 23600)
	p := newPartialRun(t, applierConfig(t), apps...)
	next := func(port int) {
		apps = append(apps, vhostApp("/new/app"+strings.Repeat("x", port-23650), port, task("t", host("127.0.0.1"), ports(port+18000))))
	}
	next(23651)
	if rec := p.apply(apps...); rec.Validation != validationPartial {
		t.Fatalf("a new app: %+v, want partial", rec)
	}
	p.a.cfg.Build.MaxConn = 2000 // HEAD's maxconn
	next(23652)
	if rec := p.apply(apps...); rec.Validation != validationFull || !strings.Contains(p.candidate(), "team_app004") {
		t.Errorf("a HEAD change: %+v, want full", rec)
	}
	p.a.noteValidationFailed("test")
	next(23653)
	if rec := p.apply(apps...); rec.Validation != validationFull {
		t.Errorf("after a failed validation: %+v, want full", rec)
	}
	next(23654)
	if rec := p.apply(apps...); rec.Validation != validationPartial {
		t.Errorf("after a full validation passed: %+v, want partial again", rec)
	}
	p.a.cfg.Build.LabelTemplates = LabelTemplatesFull
	next(23655)
	if rec := p.apply(apps...); rec.Validation != validationFull {
		t.Errorf("with --label-templates full: %+v, want full", rec)
	}
}

// TestPartialValidationStubsUnchangedBackends: two apps, one http and one tcp, move their
// frontends' bind address; their backends do not change. The candidate holds both frontends
// and a stub of each backend with its mode, and HAProxy accepts it (a tcp frontend refuses an
// http backend, so the modes must be right).
func TestPartialValidationStubsUnchangedBackends(t *testing.T) {
	mk := func(addr string) []*discovery.App {
		web := app("/stub/web", withPorts(23701), withLabel("HAPROXY_0_BIND_ADDR", addr), withLabel("HAPROXY_0_MODE", "http"),
			withTasks(task("t-web", host("127.0.0.1"), ports(41701))))
		db := app("/stub/db", withPorts(23702), withLabel("HAPROXY_0_BIND_ADDR", addr), withLabel("HAPROXY_0_MODE", "tcp"),
			withTasks(task("t-db", host("127.0.0.1"), ports(41702))))
		return append(manyApps(3, 23710), web, db)
	}
	p := newPartialRun(t, applierConfig(t), mk("127.0.0.1")...)
	rec := p.apply(mk("127.0.0.2")...)
	if rec.Validation != validationPartial || rec.Validations != 1 || rec.ValidatedSections != 2 {
		t.Fatalf("record %+v, want one partial validation of 2 sections", rec)
	}
	cand := p.candidate()
	for _, want := range []string{"frontend stub_web_23701\n", "frontend stub_db_23702\n",
		"backend stub_web_23701\n  mode http\n", "backend stub_db_23702\n  mode tcp\n"} {
		if !strings.Contains(cand, want) {
			t.Errorf("candidate lacks %q:\n%s", want, cand)
		}
	}
	if strings.Contains(cand, "server s1 ") {
		t.Errorf("candidate holds server lines; its backends should be stubs:\n%s", cand)
	}
}

// TestPartialValidationHostileLabels: in partial mode, an app whose label injects a section
// header, or routes to another app's backend, is still left out (lodestar refuses both before
// HAProxy sees them) while the honest change goes in.
func TestPartialValidationHostileLabels(t *testing.T) {
	apps := manyApps(6, 23800)
	p := newPartialRun(t, applierConfig(t), apps...)
	inject := vhostApp("/evil/inject", 23850, task("t-i", host("127.0.0.1"), ports(41850)))
	inject.Labels["HAPROXY_0_BACKEND_HEAD"] = "\nbackend {backend}\n  mode {mode}\nbackend team_app001_23801\n  mode tcp\n"
	steal := vhostApp("/evil/steal", 23851, task("t-s", host("127.0.0.1"), ports(41851)))
	steal.Labels["HAPROXY_0_FRONTEND_BACKEND_GLUE"] = "  use_backend team_app002_23802\n"
	apps = append(apps, inject, steal, vhostApp("/new/honest", 23852, task("t-h", host("127.0.0.1"), ports(41852))))
	rec := p.apply(apps...)
	if rec.Validation != validationPartial {
		t.Errorf("record %+v, want partial", rec)
	}
	conf := string(p.a.Config())
	if strings.Contains(conf, "evil_") || !strings.Contains(conf, "backend new_honest_23852") {
		t.Errorf("the configuration holds a hostile app or lacks the honest one")
	}
	if strings.Count(conf, "\nbackend team_app001_23801\n") != 1 {
		t.Errorf("the injected section header reached the configuration:\n%s", conf)
	}
	out := map[string]bool{}
	for _, ex := range p.running.Excluded {
		out[ex.AppID] = true
	}
	if !out["/evil/inject"] || !out["/evil/steal"] {
		t.Errorf("excluded %+v, want both hostile apps", p.running.Excluded)
	}
}

// TestPartialCandidateRefusesWhatItCannotReasonAbout: with templates written as they render
// (which the Applier never checks partially), the candidate builder still refuses a section
// header inside a changed section, and a deleted backend another section names; a change
// naming an unchanged backend other than as a use_backend target brings that backend in
// whole, not as a stub.
func TestPartialCandidateRefusesWhatItCannotReasonAbout(t *testing.T) {
	cfg := applierConfig(t)
	cfg.Build.LabelTemplates = LabelTemplatesFull
	apps := manyApps(4, 23900)
	p := newPartialRun(t, cfg, apps...)
	p.a.cfg.Build.LabelTemplates = LabelTemplatesConfined // let partialCandidate past its first test
	try := func(apps ...*discovery.App) (*partialCandidate, string) {
		m := Build(snapshot(t, apps...), cfg.Build.withDefaults(), p.running)
		r, err := Render(m)
		if err != nil {
			t.Fatal(err)
		}
		return p.a.partialCandidate(p.running, m, r)
	}
	hostile := func(label, value string) []*discovery.App {
		next := manyApps(4, 23900)
		next[3].Labels[label] = value
		return next
	}
	if pc, why := try(hostile("HAPROXY_0_BACKEND_HEAD", "\nbackend {backend}\n  mode {mode}\nlisten sneaky\n  mode http\n")...); pc != nil || !strings.Contains(why, "section header") {
		t.Errorf("an injected section header: candidate %v, why %q", pc != nil, why)
	}
	if pc, why := try(hostile("HAPROXY_0_BACKEND_HEAD", "\nbackend {backend}\n  mode {mode}\n.if defined(X)\n")...); pc != nil || !strings.Contains(why, ".if") {
		t.Errorf("a conditional block: candidate %v, why %q", pc != nil, why)
	}
	pc, why := try(hostile("HAPROXY_0_BACKEND_HEAD", "\nbackend {backend}\n  mode {mode}\n  acl other_up nbsrv(team_app001_23901) gt 0\n")...)
	if pc == nil {
		t.Fatalf("no candidate: %s", why)
	}
	if !bytes.Contains(pc.config, []byte("backend team_app001_23901\n")) || pc.stubs["team_app001_23901"] ||
		!bytes.Contains(pc.config, []byte("server s1 127.0.0.1:40001")) {
		t.Errorf("a backend named in a sample fetch is not in the candidate whole:\n%s", pc.config)
	}

	// A running app names another's backend; the other is deleted.
	withRef := manyApps(4, 23900)
	withRef[3].Labels["HAPROXY_0_BACKEND_HEAD"] = "\nbackend {backend}\n  mode {mode}\n  acl other_up nbsrv(team_app001_23901) gt 0\n"
	p.a.cfg.Build.LabelTemplates = LabelTemplatesFull
	p.apply(withRef...)
	p.a.cfg.Build.LabelTemplates = LabelTemplatesConfined
	gone := append(withRef[:1:1], withRef[2:]...)
	if pc, why := try(gone...); pc != nil || !strings.Contains(why, "still named") {
		t.Errorf("a deleted backend still named: candidate %v, why %q", pc != nil, why)
	}
}

// TestPartialRemapRefusesStubAlerts: alerts on a partial candidate get the full
// configuration's lines; one on a stub's line, or naming a stubbed backend, does not map.
func TestPartialRemapRefusesStubAlerts(t *testing.T) {
	pc := &partialCandidate{lines: []int{1, 2, 40, 0, 0}, stubs: map[string]bool{"b_80": true}}
	verr := &ValidationError{Alerts: []Alert{{File: "/run/x/haproxy.cfg.new", Line: 3, Message: "m"}, {Message: "no line"}}}
	if !pc.remap(verr, "/run/x/haproxy.cfg.new") || verr.Alerts[0].Line != 40 || verr.Alerts[1].Line != 0 {
		t.Errorf("remap: %+v, want line 3 → 40", verr.Alerts)
	}
	if pc.remap(&ValidationError{Alerts: []Alert{{File: "haproxy.cfg.new", Line: 4}}}, "/run/x/haproxy.cfg.new") {
		t.Error("an alert on a stub's line mapped")
	}
	if pc.remap(&ValidationError{Alerts: []Alert{{Message: "Proxy 'fe': …", Proxy: "b_80"}}}, "/run/x/haproxy.cfg.new") {
		t.Error("an alert naming a stub mapped")
	}
	if pc.remap(&ValidationError{Alerts: []Alert{{File: "haproxy.cfg.new", Line: 9}}}, "/run/x/haproxy.cfg.new") {
		t.Error("an alert past the candidate's end mapped")
	}
}

// TestBlameFailedReloadChecksWholeConfiguration: a reload HAProxy refuses after a partial
// check passed is followed by a full check, whose alerts blame the app by its line, and the
// next validation is a full one; after a full check, the reload's own alerts decide.
func TestBlameFailedReloadChecksWholeConfiguration(t *testing.T) {
	cfg := applierConfig(t)
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(3, 24000)
	bad := vhostApp("/new/bad", 24050, task("t-bad", host("127.0.0.1"), ports(42050)))
	bad.Labels["HAPROXY_0_SSL_CERT"] = "/nonexistent/lodestar-partial.pem"
	snap := snapshot(t, append(apps, bad)...)
	m := Build(snap, a.buildConfig(nil), nil)
	r, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	reloadErr := &ReloadError{Message: "the new worker did not come up"}
	rec := ApplyRecord{Validation: validationFull}
	if a.blameFailedReload(context.Background(), snap, m, r, reloadErr, &rec) || rec.Validations != 0 {
		t.Errorf("after a full check: blamed %v with %d checks, want nothing and none", a.blamed, rec.Validations)
	}
	rec = ApplyRecord{Validation: validationPartial}
	if !a.blameFailedReload(context.Background(), snap, m, r, reloadErr, &rec) || rec.Validations != 1 || rec.Validation != validationFull {
		t.Fatalf("after a partial check: record %+v, blamed %v; want one full check blaming /new/bad", rec, a.blamed)
	}
	if _, ok := a.blamed["/new/bad"]; !ok || len(a.blamed) != 1 {
		t.Errorf("blamed %v, want /new/bad", a.blamed)
	}
	if a.partial.fullNext == "" {
		t.Error("the next validation after a failed reload may be partial")
	}
}

// TestContainsToken: a name counts only whole.
func TestContainsToken(t *testing.T) {
	text := []byte("  use_backend app_80 if host_app_80\n  acl x nbsrv(web_8080)\n")
	for name, want := range map[string]bool{"app_80": true, "web_8080": true, "web_80": false, "app_8": false, "host_app": false, "x": true} {
		if got := containsToken(text, name); got != want {
			t.Errorf("containsToken(%q) = %v, want %v", name, got, want)
		}
	}
}

// BenchmarkValidateNewApp compares checking one new app partially and in full on 1,000 and
// 10,000 apps × 3 tasks (bench_test.go's mix): ns/op of each sub-benchmark; run with
// -benchtime=3x (the 10,000-app full check alone takes seconds).
func BenchmarkValidateNewApp(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("%dapps", n), func(b *testing.B) { benchValidateNewApp(b, n) })
	}
}

func benchValidateNewApp(b *testing.B, n int) {
	dir := haproxytest.SocketDir(b)
	if _, err := EnsureSelfSignedCert(dir + "/default.pem"); err != nil {
		b.Fatal(err)
	}
	cfg := ApplierConfig{Build: Config{Groups: []string{"*"}, RunDir: dir, MaxConn: 1024,
		HTTPBind: "127.0.0.1:1", HTTPSBind: "127.0.0.1:2", StatsBind: "127.0.0.1:3", AppIDBind: "127.0.0.1:4"},
		Bin: haproxytest.Bin(b)}
	a, err := NewApplier(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	reg, snap := benchSnapshot(b, n)
	ctx := context.Background()
	m, r, _, err := a.validated(ctx, snap, nil)
	if err != nil {
		b.Fatal(err)
	}
	a.publish(m, r)
	a.markGood()
	apps := append(benchApps(b, n), vhostApp("/bench/new", 9000, task("t-new", host("127.0.0.1"), ports(9001))))
	next := reg.replace(b, apps...)
	for _, kind := range []string{validationPartial, validationFull} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				if kind == validationFull {
					a.noteValidationFailed("benchmark")
				}
				_, _, rec, err := a.validated(ctx, next, m)
				if err != nil || rec.Validation != kind {
					b.Fatalf("validation %q, err %v; want %s", rec.Validation, err, kind)
				}
			}
		})
	}
}
