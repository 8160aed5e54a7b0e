package haproxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestCheckLeavesOutEveryRejectedLabelCombo: label values only HAProxy can judge (a balance
// algorithm without its argument, a certificate file that does not exist, a bind address that
// is no address, a bad path_beg) each leave out their own app, named with HAProxy's message;
// the good apps stay.
func TestCheckLeavesOutEveryRejectedLabelCombo(t *testing.T) {
	bad := map[string]map[string]string{
		"/bad/balance": {"HAPROXY_0_BALANCE": "hdr"},
		"/bad/cert":    {"HAPROXY_0_SSL_CERT": "/nonexistent/lodestar-review.pem"},
		"/bad/addr":    {"HAPROXY_0_BIND_ADDR": "not..an..address"},
		"/bad/auth":    {"HAPROXY_0_VHOST": "auth.test", "HAPROXY_0_AUTH": "realm\\:user:pass"},
		"/bad/hsts":    {"HAPROXY_0_VHOST": "hsts.test", "HAPROXY_0_USE_HSTS": "true", "HAPROXY_0_BACKEND_HSTS_OPTIONS": "  http-response nonsense\n"},
	}
	cfg := applierConfig(t)
	a, err := NewApplier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := manyApps(4, 22000)
	i := 0
	var ids []string
	for id, labels := range bad {
		ids = append(ids, id)
		opts := []appOpt{withPorts(22100 + i), withTasks(task(fmt.Sprintf("bad%d", i), host("127.0.0.1"), ports(41000+i)))}
		for k, v := range labels {
			opts = append(opts, withLabel(k, v))
		}
		apps = append(apps, app(id, opts...))
		i++
	}
	conf, ex, validations, err := a.Check(context.Background(), snapshot(t, apps...))
	if err != nil {
		t.Fatalf("Check: %v (excluded %+v)", err, ex)
	}
	var got []string
	for _, e := range ex {
		got = append(got, e.AppID)
		t.Logf("%s: %s", e.AppID, e.Reason)
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("excluded %v, want %v (%d validations)", got, ids, validations)
	}
	for _, a := range apps[:4] {
		if !strings.Contains(string(conf), "backend "+backendName(a.ID, a.Ports[0].ServicePort)) {
			t.Errorf("good app %s left out", a.ID)
		}
	}
}
