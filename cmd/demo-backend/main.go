// Command demo-backend is the stand-in for the example cluster's tasks in `make demo`: it
// answers HTTP on every 127.0.0.1 port it is given, saying which port answered, so requests
// routed through HAProxy show where they went.
//
//	demo-backend 31001 31002 31003 31004 31005
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: demo-backend PORT...  (serves HTTP on 127.0.0.1:PORT for each)")
		os.Exit(2)
	}
	errc := make(chan error, len(os.Args)-1)
	for _, arg := range os.Args[1:] {
		port, err := strconv.Atoi(arg)
		if err != nil || port < 1 || port > 65535 {
			fail("not a port", "arg", arg)
		}
		addr := net.JoinHostPort("127.0.0.1", arg)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fail(err.Error())
		}
		srv := &http.Server{Handler: handler(addr)}
		go func() { errc <- srv.Serve(ln) }()
	}
	slog.Info("demo-backend serving on 127.0.0.1", "ports", os.Args[1:])
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		fail(err.Error())
	}
}

func handler(addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", addr)
		fmt.Fprintf(w, "hello from the task at %s: %s %s, Host %s\n", addr, r.Method, r.URL.Path, r.Host)
	})
}

// fail logs why the backend cannot run and exits.
func fail(msg string, args ...any) {
	slog.Error("demo-backend: "+msg, args...)
	os.Exit(1)
}
