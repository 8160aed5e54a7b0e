package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// One port held by another process: demo-backend names it and serves the others.
func TestTakenPortIsNamedAndTheOthersServed(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldPort := held.Addr().(*net.TCPAddr).Port
	free := []int{freePort(t), freePort(t)}
	args := []string{strconv.Itoa(free[0]), strconv.Itoa(heldPort), strconv.Itoa(free[1])}

	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan []int, 1)
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &logs, served) }()
	var ports []int
	select {
	case ports = <-served:
	case code := <-done:
		cancel()
		t.Fatalf("demo-backend exited %d with port %d taken:\n%s", code, heldPort, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("demo-backend never said it was serving")
	}
	if !slices.Equal(ports, free) {
		t.Errorf("serving %v, want the free ports %v", ports, free)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("port=%d", heldPort)) || !strings.Contains(logs.String(), "port taken") {
		t.Errorf("the log does not name the taken port %d:\n%s", heldPort, logs.String())
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, port := range free {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/x", port))
		if err != nil {
			t.Errorf("port %d: %v", port, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("127.0.0.1:%d", port); !strings.Contains(string(body), want) {
			t.Errorf("port %d answered %q, want it to name %s", port, body, want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after the context ended, want 0", code)
	}
}

// Every port taken: nothing to serve, exit 1 naming them.
func TestEveryPortTaken(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	var logs bytes.Buffer
	if code := run(context.Background(), []string{port}, &logs, nil); code != 1 || !strings.Contains(logs.String(), "port="+port) {
		t.Errorf("exit %d, log %q: want 1 naming port %s", code, logs.String(), port)
	}
}

// Arguments that are no port are a usage error, before anything listens.
func TestBadPortArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"abc"}, {"0"}, {"65536"}, {"-1"}, {"31001", "31002x"}, {"1e3"}} {
		var logs bytes.Buffer
		if code := run(context.Background(), args, &logs, nil); code != 2 || !strings.Contains(logs.String(), "usage:") {
			t.Errorf("demo-backend %q: exit %d, log %q; want 2 and the usage", args, code, logs.String())
		}
	}
}
