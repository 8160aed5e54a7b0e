package fakemarathon

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestLoopbackFor(t *testing.T) {
	seen := map[string]string{}
	for i := range 200 {
		in := fmt.Sprintf("10.%d.%d.7", i/10, i%10)
		out := LoopbackFor(in)
		if again := LoopbackFor(in); again != out {
			t.Fatalf("LoopbackFor(%s) = %s then %s", in, out, again)
		}
		x, err := strconv.Atoi(strings.TrimPrefix(out, "127.0.0."))
		if !strings.HasPrefix(out, "127.0.0.") || err != nil || x < 2 || x > 250 {
			t.Fatalf("LoopbackFor(%s) = %s", in, out)
		}
		if prev, dup := seen[out]; dup {
			t.Fatalf("LoopbackFor(%s) = LoopbackFor(%s) = %s", in, prev, out)
		}
		seen[out] = in
	}
}

func TestRewriteAddresses(t *testing.T) {
	s := start(t)
	load(t, s, "marathon15_apps.json", "zdd_apps.json")
	addShopWeb(t, s)
	if _, err := s.AddTask("/shop/web", TaskSpec{Host: "agent-1.example.com", IPAddresses: []string{"::1", "127.0.0.9"}}); err != nil {
		t.Fatal(err)
	}
	s.RewriteAddresses()

	_, body := getJSON(t, s, "/v2/apps?embed=apps.tasks")
	hosts := map[string]bool{}
	n := 0
	for _, a := range body["apps"].([]any) {
		for _, tk := range a.(map[string]any)["tasks"].([]any) {
			task := tk.(map[string]any)
			n++
			addrs := []string{task["host"].(string)}
			hosts[task["host"].(string)] = true
			for _, ip := range task["ipAddresses"].([]any) {
				addrs = append(addrs, ip.(map[string]any)["ipAddress"].(string))
			}
			for _, addr := range addrs {
				if !strings.HasPrefix(addr, "127.") {
					t.Errorf("task %s: address %s left", task["id"], addr)
				}
			}
		}
	}
	if n != 6 {
		t.Errorf("%d tasks served, want 6", n)
	}
	// The three nginx-green tasks share host 10.0.6.25; the other hosts are
	// 10.0.1.147, 10.0.2.148 and the host name.
	want := map[string]bool{
		LoopbackFor("10.0.6.25"): true, LoopbackFor("10.0.1.147"): true,
		LoopbackFor("10.0.2.148"): true, LoopbackFor("agent-1.example.com"): true,
	}
	if len(want) != 4 || fmt.Sprint(hosts) != fmt.Sprint(want) {
		t.Errorf("hosts = %v, want %v", hosts, want)
	}
	ips := s.Tasks("/shop/web")[0]["ipAddresses"].([]any)
	if ips[0].(map[string]any)["ipAddress"] != LoopbackFor("::1") || ips[1].(map[string]any)["ipAddress"] != "127.0.0.9" {
		t.Errorf("ipAddresses = %v", ips)
	}
}
