package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// BenchmarkTaskEventToRegistry measures one health event from the fake's stream to the
// registry: SSE parse, decode, delta. The flush at the end makes every event count.
func BenchmarkTaskEventToRegistry(b *testing.B) {
	fake := newFake(b, "zdd_apps.json")
	h := start(b, testConfig(), fake)
	h.waitSynced()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fake.SetHealth(green1, i%2 == 1); err != nil {
			b.Fatal(err)
		}
	}
	h.flush(fake)
}

// BenchmarkFullSync measures a resync of 1,000 apps with 5 tasks each that changed nothing:
// GET, decode, compare. The fake's JSON encoding is part of the cost.
func BenchmarkFullSync(b *testing.B) {
	const nApps, nTasks = 1000, 5
	apps := make([]any, nApps)
	for i := range apps {
		tasks := make([]any, nTasks)
		for j := range tasks {
			tasks[j] = map[string]any{
				"id": fmt.Sprintf("app%04d.task-%d", i, j), "host": "127.0.0.1", "ports": []int{31000 + j},
				"state": "TASK_RUNNING", "startedAt": "2024-01-01T00:00:00.000Z", "version": "v1",
				"healthCheckResults": []any{map[string]any{"alive": true}},
			}
		}
		apps[i] = map[string]any{
			"id": fmt.Sprintf("/bench/app%04d", i), "instances": nTasks, "version": "v1",
			"labels":          map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": fmt.Sprintf("app%d.example", i)},
			"portDefinitions": []any{map[string]any{"port": 10000 + i, "protocol": "tcp"}},
			"healthChecks":    []any{map[string]any{"protocol": "HTTP", "path": "/", "portIndex": 0}},
			"tasks":           tasks,
		}
	}
	body, err := json.Marshal(map[string]any{"apps": apps})
	if err != nil {
		b.Fatal(err)
	}
	fake := newFake(b)
	if err := fake.LoadApps(body); err != nil {
		b.Fatal(err)
	}
	h := start(b, testConfig(), fake)
	if s := h.waitSynced(); s.Apps.Len() != nApps || s.Tasks != nApps*nTasks {
		b.Fatalf("synced %d apps, %d tasks", s.Apps.Len(), s.Tasks)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from := h.sink.ReportCount()
		h.src.Resync(context.Background())
		h.waitReport(from, "the resync", isSuccess)
	}
}

// BenchmarkSSEReader parses the recorded event stream (12 events) over and over: the cost of
// the reader itself, the per-event size and time limits included.
func BenchmarkSSEReader(b *testing.B) {
	fixture, err := os.ReadFile("testdata/events.sse")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(fixture)))
	for b.Loop() {
		r := newSSEReader(bytes.NewReader(fixture), nil)
		for {
			if _, err := r.next(); err != nil {
				break
			}
		}
	}
}
