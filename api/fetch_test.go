package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFetchApp: the client side of GET /v1/apps/{id} decodes an honest answer, says
// ErrNoApp for a 404, and refuses another status, garbage, an oversized answer and a peer
// that does not answer in time; an id with path tricks stays one escaped path segment.
func TestFetchApp(t *testing.T) {
	var gotPath string
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.EscapedPath() + "?" + r.URL.RawQuery
		switch r.URL.Path {
		case "/v1/apps/shop/web":
			fmt.Fprint(w, `{"id": "/shop/web"}`)
		case "/v1/apps/gone":
			http.NotFound(w, r)
		case "/v1/apps/garbage":
			fmt.Fprint(w, `{"id": 7`)
		case "/v1/apps/huge":
			fmt.Fprintf(w, `{"id": "%s"}`, strings.Repeat("x", MaxAppDocument))
		case "/v1/apps/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer edge.Close()
	// A generous bound for the answers (16 MiB under -race takes a while); a short one only
	// for the peer that never answers.
	client := &http.Client{Timeout: time.Minute}
	var doc struct {
		ID string `json:"id"`
	}
	if err := FetchApp(context.Background(), client, edge.URL+"/", "/shop/web", &doc); err != nil || doc.ID != "/shop/web" {
		t.Fatalf("honest answer: %+v, %v", doc, err)
	}
	if gotPath != "/v1/apps/shop%2Fweb?" {
		t.Errorf("requested %s, want the id escaped whole", gotPath)
	}
	if err := FetchApp(context.Background(), client, edge.URL, "/gone", &doc); !errors.Is(err, ErrNoApp) {
		t.Errorf("404: %v, want ErrNoApp", err)
	}
	for id, want := range map[string]string{
		"/other":             "500",
		"/garbage":           "not the JSON expected",
		"/huge":              "longer than",
		"/slow":              "Timeout",
		"/../x?force=true":   "500",
		"/a%2F..%2Fb\x1b[2J": "500",
	} {
		c := client
		if id == "/slow" {
			c = &http.Client{Timeout: 100 * time.Millisecond}
		}
		err := FetchApp(context.Background(), c, edge.URL, id, &doc)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", id, err, want)
		}
		if strings.Contains(id, "?") && strings.Contains(gotPath, "force") && !strings.Contains(gotPath, "%3F") {
			t.Errorf("%q reached the edge as %s: the query was not escaped", id, gotPath)
		}
	}
}
