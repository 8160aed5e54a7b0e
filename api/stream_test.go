package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A degraded check keeps /readyz at 200 and shows why; a failing one beside it still makes it
// 503. The status page shows the degraded one as a warning, the failing one as an error.
func TestReadyzDegraded(t *testing.T) {
	s := newServer(t, Config{}, newRegistry(t))
	s.AddReadyCheck("registry hub", func() error { return Degraded(errors.New("no registry hub reachable")) })
	s.AddReadyCheck("fine", func() error { return Degraded(nil) })
	code, body := get(t, s.Router(), http.MethodGet, "/readyz")
	var res struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || !res.Ready || res.Checks["registry hub"] != "degraded: no registry hub reachable" || res.Checks["fine"] != "ok" {
		t.Fatalf("GET /readyz with a degraded check = %d %s, want 200 saying degraded", code, body)
	}
	page := statusGet(t, s, "/")
	if !strings.Contains(page, `<li class="warn"><strong>registry hub</strong>: no registry hub reachable`) {
		t.Errorf("the status page does not show the degraded check as a warning:\n%s", page)
	}

	s.AddReadyCheck("broken", func() error { return fmt.Errorf("wrapped: %w", errors.New("down")) })
	if code, body := get(t, s.Router(), http.MethodGet, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz with a failing check beside the degraded one = %d %s, want 503", code, body)
	}
	if page := statusGet(t, s, "/"); !strings.Contains(page, `<li class="bad"><strong>broken</strong>`) {
		t.Error("the status page does not show the failing check as an error")
	}
}

// /v1/stream is a read: served without credentials even when --api-auth is set, like every
// GET; other methods are refused.
func TestMountStream(t *testing.T) {
	s := newServer(t, Config{Auth: Auth{Token: "t0ken"}}, newRegistry(t))
	s.MountStream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": hello\n\n")
	}))
	rec := httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/stream", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != ": hello\n\n" {
		t.Fatalf("GET /v1/stream = %d %q", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	s.Router().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/stream", nil))
	if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/stream = %d, want 401 or 405", rec.Code)
	}
}
