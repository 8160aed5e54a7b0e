package scalegen

import (
	"strconv"
	"strings"
	"testing"
)

func TestVHostHTTPShape(t *testing.T) {
	spec := Spec{Apps: 300, Tasks: 3, Shape: VHostHTTP, Loopback: true}
	apps, err := spec.DiscoveryApps()
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 300 {
		t.Fatalf("%d apps", len(apps))
	}
	seen := map[string]string{}
	for i, a := range apps {
		if a.ID != AppID(i) || a.Labels["HAPROXY_GROUP"] != "external" || a.Labels["HAPROXY_0_VHOST"] == "" {
			t.Fatalf("app %d: id %s labels %v", i, a.ID, a.Labels)
		}
		if len(a.Ports) != 1 || a.Ports[0].ServicePort != FirstServicePort+i {
			t.Fatalf("app %s: ports %+v", a.ID, a.Ports)
		}
		if len(a.HealthChecks) != 1 || a.HealthChecks[0].Protocol != "HTTP" || a.HealthChecks[0].Path != "/health" {
			t.Fatalf("app %s: health checks %+v", a.ID, a.HealthChecks)
		}
		if len(a.Tasks) != 3 {
			t.Fatalf("app %s: %d tasks", a.ID, len(a.Tasks))
		}
		for _, tk := range a.Tasks {
			if !strings.HasPrefix(tk.Host, "127.0.0.") || len(tk.HostPorts) != 1 {
				t.Fatalf("task %s: %s %v", tk.ID, tk.Host, tk.HostPorts)
			}
			if len(tk.Health) != 1 || !tk.Health[0].Alive {
				t.Fatalf("task %s: health %+v, want one alive result", tk.ID, tk.Health)
			}
			// Loopback tasks each get their own address, so a live HAProxy could reach each.
			addr := tk.Host + ":" + strconv.Itoa(tk.HostPorts[0])
			if other, dup := seen[addr]; dup {
				t.Fatalf("tasks %s and %s share %s", other, tk.ID, addr)
			}
			seen[addr] = tk.ID
		}
	}
}

func TestMixedShape(t *testing.T) {
	apps, err := Spec{Apps: 6, Tasks: 2, Shape: Mixed}.DiscoveryApps()
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range apps {
		var wantCheck, label string
		switch i % 3 {
		case 0:
			label = "HAPROXY_0_VHOST"
		case 1:
			wantCheck, label = "TCP", "HAPROXY_0_MODE"
		case 2:
			wantCheck, label = "HTTP", "HAPROXY_0_STICKY"
		}
		if a.Labels[label] == "" {
			t.Errorf("app %d: no %s in %v", i, label, a.Labels)
		}
		if wantCheck == "" && len(a.HealthChecks) != 0 || wantCheck != "" && (len(a.HealthChecks) != 1 || a.HealthChecks[0].Protocol != wantCheck) {
			t.Errorf("app %d: health checks %+v, want %q", i, a.HealthChecks, wantCheck)
		}
		for _, tk := range a.Tasks {
			if !strings.HasPrefix(tk.Host, "10.") || len(tk.Health) != 0 {
				t.Errorf("task %s: host %s health %+v", tk.ID, tk.Host, tk.Health)
			}
		}
	}
}

func TestMarathonJSONRefusesNegative(t *testing.T) {
	if _, err := (Spec{Apps: -1, Tasks: 3}).MarathonJSON(); err == nil {
		t.Fatal("accepted -1 apps")
	}
}
