package api

import (
	"strings"
	"testing"
	"time"
)

type statusAutoscale struct{ st AutoscaleStatus }

func (s statusAutoscale) AutoscaleStatus() AutoscaleStatus { return s.st }

// The status page shows the autoscaler's role and each app's last decision with its
// inputs; hostile text from labels is escaped; without an autoscaler there is no section.
func TestStatusPageAutoscale(t *testing.T) {
	at := time.Now().Add(-3 * time.Second)
	st := AutoscaleStatus{Leading: true, Lock: "ZooKeeper lock /lodestar/autoscale", Interval: 5 * time.Second, Decisions: []AutoscaleDecision{
		{AppID: "/shop/web", Mode: "rps", Action: "scale", From: 2, To: 5, Reason: "480.0 req/s on port 10080", Inputs: "rps 480.00 on port 10080", At: at},
		{AppID: "/bad/app", Action: "skip", From: 1, To: 1, Reason: `bad labels: LODESTAR_AUTOSCALE_MODE "<script>x</script>"`, At: at},
		{AppID: `/x"><script>alert(1)</script>`, Mode: "cpu", Action: "hold", From: 1, To: 1, Inputs: "<b>cpu</b>", Error: "<i>e</i>", At: at},
	}}
	s := statusServer(t, fixtureRegistry(t), Frontends{Autoscale: statusAutoscale{st}})
	body := statusGet(t, s, "/")
	mustContain(t, body, "<h2>Autoscale</h2>", "This instance scales (ZooKeeper lock /lodestar/autoscale); every 5s.",
		`<td data-label="Decision" class="ok">scale</td>`, "2 → 5", "rps 480.00 on port 10080",
		`<td data-label="Decision" class="bad">skip</td>`, "&lt;script&gt;x&lt;/script&gt;",
		// An app id, inputs and errors are text wherever they appear, the link's query too.
		`<code>/x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</code>`, `href="?q=%2fx%22%3e%3cscript%3ealert%281%29%3c%2fscript%3e"`,
		"&lt;b&gt;cpu&lt;/b&gt;", "&lt;i&gt;e&lt;/i&gt;")
	if n := strings.Count(body, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the page's own", n)
	}
	body = statusGet(t, s, "/?q=shop")
	mustNotContain(t, body, "/bad/app")

	st.Leading, st.DryRun = false, true
	s = statusServer(t, fixtureRegistry(t), Frontends{Autoscale: statusAutoscale{st}})
	mustContain(t, statusGet(t, s, "/"), "decides only: another instance holds the lock", "dry run: logs scales, writes none")

	s = statusServer(t, fixtureRegistry(t), Frontends{})
	mustNotContain(t, statusGet(t, s, "/"), "<h2>Autoscale</h2>")
}
