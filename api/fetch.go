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

// MaxRequestTotalsDocument bounds one GET /v1/requests answer read from another lodestar:
// room for about 300,000 routes with long app ids.
const MaxRequestTotalsDocument = 32 << 20

// ErrNoApp is FetchApp's answer for an app the edge does not know (404).
var ErrNoApp = errors.New("no such app in its registry")

// ErrNoRequestTotals is FetchRequestTotals' answer for an edge without GET /v1/requests (404:
// a lodestar older than that endpoint); its apps can still be read one by one with FetchApp.
var ErrNoRequestTotals = errors.New("no GET /v1/requests on that lodestar (an older version?)")

// FetchApp reads another lodestar's GET /v1/apps/{id} into doc: the client side of that
// endpoint, for the readers of an edge's view (deploy's drains, autoscale's request counts).
// edge is the base URL of its API; the id is escaped whole, so no id reaches another path.
// The answer is bounded to MaxAppDocument; the time bound is client's (or ctx's).
func FetchApp(ctx context.Context, client *http.Client, edge, id string, doc any) error {
	u := strings.TrimRight(edge, "/") + "/v1/apps/" + url.PathEscape(strings.TrimPrefix(id, "/"))
	err := fetchJSON(ctx, client, u, MaxAppDocument, doc)
	if errors.Is(err, errNotFound) {
		return ErrNoApp
	}
	return err
}

// FetchRequestTotals reads another lodestar's GET /v1/requests: every routed app's request
// totals in one answer, bounded to MaxRequestTotalsDocument; ErrNoRequestTotals when the edge
// does not have that endpoint. The time bound is client's (or ctx's).
func FetchRequestTotals(ctx context.Context, client *http.Client, edge string) (RequestTotals, error) {
	var doc RequestTotals
	err := fetchJSON(ctx, client, strings.TrimRight(edge, "/")+"/v1/requests", MaxRequestTotalsDocument, &doc)
	if errors.Is(err, errNotFound) {
		return RequestTotals{}, ErrNoRequestTotals
	}
	return doc, err
}

// maxErrorBody bounds the error answer read for its message.
const maxErrorBody = 4 << 10

// errorOf is the message of an API error answer ({"error": "..."}), quoted (it is the peer's
// text) after ": ", or "" when the answer is not one.
func errorOf(body io.Reader) string {
	var e errorBody
	b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		return ""
	}
	return fmt.Sprintf(": %q", e.Error)
}

// errNotFound is fetchJSON's answer for a 404, which each caller names for its endpoint.
var errNotFound = errors.New("status 404")

// fetchJSON GETs u and decodes its answer, at most max bytes, into doc; a 404 is errNotFound,
// another status than 200 an error naming it.
func fetchJSON(ctx context.Context, client *http.Client, u string, max int64, doc any) error {
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
		return errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d%s", u, resp.StatusCode, errorOf(resp.Body))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", u, err)
	}
	if int64(len(body)) > max {
		return fmt.Errorf("GET %s: answer longer than %d bytes", u, max)
	}
	if err := json.Unmarshal(body, doc); err != nil {
		return fmt.Errorf("GET %s: not the JSON expected: %w", u, err)
	}
	return nil
}
