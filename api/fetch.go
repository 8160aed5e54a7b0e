package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxAppDocument bounds one GET /v1/apps/{id} answer read from another lodestar.
const MaxAppDocument = 16 << 20

// ErrNoApp is FetchApp's answer for an app the edge does not know (404).
var ErrNoApp = errors.New("no such app in its registry")

// FetchApp reads another lodestar's GET /v1/apps/{id} into doc: the client side of that
// endpoint, for the readers of an edge's view (deploy's drains, autoscale's request counts).
// edge is the base URL of its API; the id is escaped whole, so no id reaches another path.
// The answer is bounded to MaxAppDocument; the time bound is client's (or ctx's).
func FetchApp(ctx context.Context, client *http.Client, edge, id string, doc any) error {
	u := strings.TrimRight(edge, "/") + "/v1/apps/" + url.PathEscape(strings.TrimPrefix(id, "/"))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ErrNoApp
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAppDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", u, err)
	}
	if len(body) > MaxAppDocument {
		return fmt.Errorf("GET %s: answer longer than %d bytes", u, MaxAppDocument)
	}
	if err := json.Unmarshal(body, doc); err != nil {
		return fmt.Errorf("GET %s: not the JSON expected: %w", u, err)
	}
	return nil
}
