package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// scrape reads lodestar's /metrics through Prometheus's own text parser: a line it cannot
// parse fails the test.
func scrape(t *testing.T, ls *Lodestar) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, err := Get(ls.URL("/metrics"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, %v", code, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

// sample sums the samples of a family whose labels include every name=value pair of match
// (counters, gauges, and the sample count of histograms). found is false when no sample
// matched.
func sample(fams map[string]*dto.MetricFamily, name string, match ...string) (sum float64, found bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		for _, kv := range match {
			k, v, _ := strings.Cut(kv, "=")
			ok := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					ok = true
				}
			}
			if !ok {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, found
}

// TestMetrics: /metrics parses as Prometheus text, carries every family an operator needs,
// and its counters move when Marathon events, reloads, runtime updates and DNS queries happen.
func TestMetrics(t *testing.T) {
	t.Parallel()
	fm := startLBMarathon(t, lbApp("/metrics/web", FreePort(t), nil))
	s := startLB(t, fm,
		"--dns-listen", "127.0.0.1:0", "--dns-forward=false",
		"--mesos-state-file", writeState(t, smallState("127.0.0.31")), "--mesos-refresh", "1h")

	before := scrape(t, s.Lodestar)
	for _, name := range []string{
		"lodestar_discovery_sync_age_seconds", "lodestar_discovery_apps", "lodestar_discovery_tasks",
		"lodestar_marathon_stream_connects_total",
		"lodestar_haproxy_validations_total", "lodestar_haproxy_build_duration_seconds",
		"lodestar_haproxy_render_duration_seconds", "lodestar_haproxy_process_up",
		"lodestar_dnsserver_zone_records", "lodestar_api_requests_total",
	} {
		if _, ok := sample(before, name); !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	for _, src := range []string{"marathon", "file"} {
		if _, ok := sample(before, "lodestar_discovery_sync_age_seconds", "source="+src); !ok {
			t.Errorf("/metrics has no sync age for source %s", src)
		}
	}

	// A task: a Marathon event and Runtime API commands. A new app with a vhost: a reload.
	prev := s.status(t)
	addTask(t, fm, "/metrics/web", haproxytest.Backend(t))
	prev = s.waitApplied(t, prev)
	putApp(t, fm, lbApp("/metrics/api", FreePort(t), map[string]string{"HAPROXY_0_VHOST": "api.metrics.test"}))
	s.waitApplied(t, prev)
	// DNS: an in-zone answer and an NXDOMAIN.
	for _, name := range []string{"leader.mesos.", "nothing-here.mesos."} {
		if _, err := query(s.DNS, name, dns.TypeA); err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
	}

	var after map[string]*dto.MetricFamily
	moved := func(name string, match ...string) func() error {
		return func() error {
			after = scrape(t, s.Lodestar)
			b, _ := sample(before, name, match...)
			a, _ := sample(after, name, match...)
			if a <= b {
				return fmt.Errorf("%s%v: %v before, %v after", name, match, b, a)
			}
			return nil
		}
	}
	for _, c := range []struct {
		name  string
		match []string
	}{
		{"lodestar_marathon_events_total", []string{"type=status_update_event"}},
		{"lodestar_haproxy_runtime_commands_total", []string{"result=ok"}},
		{"lodestar_haproxy_reloads_total", []string{"result=ok"}},
		{"lodestar_haproxy_validations_total", []string{"result=ok"}},
		{"lodestar_haproxy_build_duration_seconds", nil},
		{"lodestar_haproxy_render_duration_seconds", nil},
		{"lodestar_discovery_snapshot_version", nil},
		{"lodestar_dnsserver_queries_total", []string{"qtype=A", "rcode=NOERROR"}},
		{"lodestar_dnsserver_queries_total", []string{"qtype=A", "rcode=NXDOMAIN"}},
		{"lodestar_dnsserver_query_duration_seconds", nil},
		{"lodestar_api_requests_total", nil},
	} {
		Eventually(t, lbTimeout, c.name+" moves", moved(c.name, c.match...))
	}
	if n, _ := sample(after, "lodestar_discovery_tasks"); n < 1 {
		t.Errorf("lodestar_discovery_tasks = %v after a task started", n)
	}
}
