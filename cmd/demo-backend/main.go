// Command demo-backend is the stand-in for the example cluster's tasks in `make demo`: it
// answers HTTP on every 127.0.0.1 port it is given, saying which port answered, so requests
// routed through HAProxy show where they went.
//
//	demo-backend 31001 31002 31003 31004 31005
//
// A port another process holds is named and skipped: the others are served, so only the
// routes to that one task fail. It exits only when it can serve none of them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run serves HTTP on 127.0.0.1 on each port in args until ctx ends, and returns the exit
// code: 2 for a usage error, 1 when it could serve no port, else 0. When it is serving, it
// sends the ports it serves to served (if not nil).
func run(ctx context.Context, args []string, logw io.Writer, served chan<- []int) int {
	log := slog.New(slog.NewTextHandler(logw, nil))
	ports, err := parsePorts(args)
	if err != nil {
		fmt.Fprintf(logw, "demo-backend: %v\nusage: demo-backend PORT...  (serves HTTP on 127.0.0.1:PORT for each)\n", err)
		return 2
	}
	var servers []*http.Server
	var serving []int
	errc := make(chan error, len(ports))
	for _, port := range ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			// One port held by another process (a task of an earlier demo, another
			// service) must not take down the routes to every other task.
			log.Error("demo-backend: port taken, not serving it: the routes to this task will fail until it is free",
				"port", port, "err", err)
			continue
		}
		srv := &http.Server{Handler: handler(addr), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		serving = append(serving, port)
		go func() { errc <- srv.Serve(ln) }()
	}
	if len(serving) == 0 {
		log.Error("demo-backend: every port is taken, nothing to serve", "ports", ports)
		return 1
	}
	log.Info("demo-backend serving on 127.0.0.1", "ports", serving, "skipped", len(ports)-len(serving))
	if served != nil {
		served <- serving
	}
	code := 0
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("demo-backend: serving failed", "err", err)
		code = 1
	}
	for _, srv := range servers {
		if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo-backend: closing", "err", err)
		}
	}
	return code
}

// parsePorts reads the port arguments: each a decimal TCP port, 1–65535.
func parsePorts(args []string) ([]int, error) {
	if len(args) == 0 {
		return nil, errors.New("no port given")
	}
	ports := make([]int, 0, len(args))
	for _, arg := range args {
		port, err := strconv.Atoi(arg)
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("%q is not a TCP port (1-65535)", arg)
		}
		ports = append(ports, port)
	}
	return ports, nil
}

func handler(addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", addr)
		fmt.Fprintf(w, "hello from the task at %s: %s %s, Host %s\n", addr, r.Method, r.URL.Path, r.Host)
	})
}
