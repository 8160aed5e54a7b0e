package fakemesos

import (
	"reflect"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

func TestEncodeStateRoundTrips(t *testing.T) {
	seed, err := discovery.DecodeMesosState(SeedState)
	if err != nil {
		t.Fatal(err)
	}
	built := &discovery.MesosState{
		LeaderPID: "master@127.0.0.1:5050", Leader: "127.0.0.1:5050", Hostname: "m1",
		Agents: []discovery.Agent{{ID: "S1", Hostname: "127.0.0.9", PID: "slave(1)@127.0.0.9:5051"}},
		Frameworks: []discovery.Framework{{
			ID: "F1", Name: "marathon", PID: "scheduler(1)@127.0.0.9:8080", Hostname: "127.0.0.9",
			Tasks: []discovery.MesosTask{{
				ID: "web.1", Name: "web", FrameworkID: "F1", SlaveID: "S1", State: "TASK_RUNNING",
				Ports:  []int{31000, 31001, 31005},
				Labels: []discovery.Label{{Key: "k", Value: "v"}},
				Statuses: []discovery.MesosTaskStatus{{
					State: "TASK_RUNNING", Timestamp: 1700000000.5,
					Labels:     []discovery.Label{{Key: "Docker.NetworkSettings.IPAddress", Value: "172.17.0.2"}},
					NetworkIPs: []string{"10.3.0.1", "fd01:b::1"},
				}},
				Discovery: &discovery.DiscoveryInfo{Name: "big.dog", Ports: []discovery.DiscoveryPort{{Number: 80, Protocol: "tcp", Name: "http"}}},
			}, {
				ID: "bare.1", Name: "bare", FrameworkID: "F1", SlaveID: "S1", State: "TASK_STAGING",
			}},
		}},
	}
	for name, st := range map[string]*discovery.MesosState{"seed": seed, "built": built} {
		got, err := discovery.DecodeMesosState(EncodeState(st))
		if err != nil {
			t.Fatalf("%s: decoding the encoded state: %v", name, err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", name, got, st)
		}
	}
}

func TestPortRanges(t *testing.T) {
	for _, tt := range []struct {
		ports []int
		want  string
	}{
		{nil, ""},
		{[]int{80}, "[80-80]"},
		{[]int{31000, 31001, 31002, 31005, 31007, 31008}, "[31000-31002, 31005-31005, 31007-31008]"},
	} {
		if got := PortRanges(tt.ports); got != tt.want {
			t.Errorf("PortRanges(%v) = %q, want %q", tt.ports, got, tt.want)
		}
	}
}

func TestSetMesosState(t *testing.T) {
	c := startCluster(t, 2)
	st := &discovery.MesosState{Frameworks: []discovery.Framework{{ID: "F1", Name: "chronos"}}}
	if err := c.SetMesosState(st); err != nil {
		t.Fatal(err)
	}
	got := decode(t, c.Masters[0].State())
	if len(got.Frameworks) != 1 || got.Frameworks[0].Name != "chronos" || got.Leader != c.Masters[0].HostPort() {
		t.Errorf("served %+v", got)
	}
}
