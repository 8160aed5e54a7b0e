package mesos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
)

// bigState is a state of n running tasks over 100 agents, each with a status carrying a
// container IP, as Marathon tasks have.
func bigState(n int) *discovery.MesosState {
	st := &discovery.MesosState{Hostname: "m1"}
	for a := range 100 {
		st.Agents = append(st.Agents, discovery.Agent{ID: fmt.Sprintf("S%d", a), Hostname: fmt.Sprintf("10.0.%d.%d", a/250, a%250), PID: "slave(1)@10.0.0.1:5051"})
	}
	fw := discovery.Framework{ID: "F1", Name: "marathon", PID: "scheduler(1)@10.0.0.1:8080", Hostname: "10.0.0.1"}
	for i := range n {
		fw.Tasks = append(fw.Tasks, discovery.MesosTask{
			ID: fmt.Sprintf("app%d.%08d", i%500, i), Name: fmt.Sprintf("app%d", i%500), FrameworkID: "F1",
			SlaveID: fmt.Sprintf("S%d", i%100), State: "TASK_RUNNING", Ports: []int{31000 + i%1000},
			Statuses: []discovery.MesosTaskStatus{{State: "TASK_RUNNING", Timestamp: 1.7e9, NetworkIPs: []string{"10.3.0.1"}}},
		})
	}
	st.Frameworks = []discovery.Framework{fw}
	return st
}

// BenchmarkFetchLeader: one poll of a leader's state (HTTP on loopback, read, decode). "ip"
// asks it under the address its pid holds; "hostname" under another name, which costs a
// second decode to learn that it leads.
func BenchmarkFetchLeader(b *testing.B) {
	for _, tasks := range []int{1000, 10000} {
		m := fakemesos.New()
		if err := m.Start(); err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		if err := m.SetMesosState(bigState(tasks)); err != nil {
			b.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(m.HostPort())
		for _, via := range []string{"ip", "hostname"} {
			addr := m.HostPort()
			if via == "hostname" {
				addr = net.JoinHostPort("localhost", port)
			}
			b.Run(fmt.Sprintf("tasks=%d/%s", tasks, via), func(b *testing.B) {
				s, err := New(Config{Masters: []string{addr}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(m.State())))
				b.ReportAllocs()
				for b.Loop() {
					st, _, err := s.fetchLeader(context.Background(), []string{addr})
					if err != nil || len(st.Frameworks[0].Tasks) != tasks {
						b.Fatalf("fetch: %v", err)
					}
				}
			})
		}
	}
}
