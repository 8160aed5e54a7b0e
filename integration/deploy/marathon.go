package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lodestar-lb/lodestar/discovery"
)

// maxMarathonBody bounds a Marathon response deploy reads.
const maxMarathonBody = 32 << 20

// MarathonConfig configures the Marathon client.
type MarathonConfig struct {
	// URLs are Marathon members; a request that cannot reach one goes to the next.
	URLs []string
	// User and Password are basic-auth credentials ("" for none).
	User, Password string
	// CACertFile is a PEM bundle trusted (beside the system roots) for https members.
	CACertFile string
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// Retry is the policy for a Marathon that refuses, times out or is busy.
	Retry Backoff
}

// Marathon writes and reads apps through Marathon's REST API.
type Marathon struct {
	urls  []string
	user  string
	pass  string
	http  *http.Client
	retry Backoff
}

// NewMarathon checks cfg and returns a client.
func NewMarathon(cfg MarathonConfig) (*Marathon, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("no Marathon URL (--marathon)")
	}
	m := &Marathon{user: cfg.User, pass: cfg.Password, retry: cfg.Retry.withDefaults()}
	for _, u := range cfg.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("Marathon URL %q: want http://host:port or https://host:port", u)
		}
		m.urls = append(m.urls, strings.TrimSuffix(u, "/"))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CACertFile != "" {
		conf, err := discovery.TLSClientConfig(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("marathon: %w", err)
		}
		tr.TLSClientConfig = conf
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	m.http = &http.Client{Transport: tr, Timeout: timeout}
	return m, nil
}

// MarathonError is a Marathon answer other than success.
type MarathonError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *MarathonError) Error() string {
	return fmt.Sprintf("Marathon %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// retryable reports whether Marathon may answer differently soon: it is restarting, electing
// a leader, overloaded, or the app is locked by a deployment that will end.
func (e *MarathonError) retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusConflict && strings.Contains(strings.ToLower(e.Message), "locked")
}

// do sends one request with retries (Backoff), trying the members in turn, and decodes a
// JSON answer into out (when not nil). A 404 is returned at once as a *MarathonError.
func (m *Marathon) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("Marathon %s %s: %w", method, path, err)
		}
	}
	var last error
	for attempt := 0; ; attempt++ {
		base := m.urls[attempt%len(m.urls)]
		err := m.once(ctx, method, base, path, payload, out)
		if err == nil {
			return nil
		}
		last = err
		var me *MarathonError
		if errors.As(err, &me) && !me.retryable() || ctx.Err() != nil {
			return err
		}
		if attempt+1 >= m.retry.Attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", last, attempt+1)
		}
		if err := m.retry.Sleep(ctx, m.retry.Delay(attempt)); err != nil {
			return fmt.Errorf("%w (interrupted: %w)", last, err)
		}
	}
}

// once sends one request to one member.
func (m *Marathon) once(ctx context.Context, method, base, path string, payload []byte, out any) error {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return fmt.Errorf("Marathon %s %s: %w", method, path, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if m.user != "" {
		req.SetBasicAuth(m.user, m.pass)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return fmt.Errorf("Marathon %s %s%s: %w", method, base, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMarathonBody+1))
	if err != nil {
		return fmt.Errorf("Marathon %s %s%s: reading the answer: %w", method, base, path, err)
	}
	if len(data) > maxMarathonBody {
		return fmt.Errorf("Marathon %s %s%s: answer larger than %d bytes", method, base, path, maxMarathonBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &MarathonError{Method: method, Path: path, Status: resp.StatusCode, Message: marathonMessage(data)}
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("Marathon %s %s%s: answer is not the JSON expected: %w", method, base, path, err)
	}
	return nil
}

// marathonMessage is the "message" of a Marathon error body, or the start of the body, made
// printable (it reaches the operator's terminal): at most 200 characters, control characters
// and invalid UTF-8 replaced by '?'.
func marathonMessage(data []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	s := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		s = e.Message
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// appPath is the API path of an app id: /v2/apps/shop/web, each segment escaped.
func appPath(id string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/v2/apps/" + strings.Join(parts, "/")
}

// ListApps is GET /v2/apps with the tasks embedded.
func (m *Marathon) ListApps(ctx context.Context) ([]App, error) {
	var out struct {
		Apps []App `json:"apps"`
	}
	if err := m.do(ctx, http.MethodGet, "/v2/apps?embed=apps.tasks", nil, &out); err != nil {
		return nil, err
	}
	return out.Apps, nil
}

// GetApp is GET /v2/apps/{id}; ok is false when Marathon has no such app.
func (m *Marathon) GetApp(ctx context.Context, id string) (a App, ok bool, err error) {
	var out struct {
		App App `json:"app"`
	}
	err = m.do(ctx, http.MethodGet, appPath(id)+"?embed=app.tasks", nil, &out)
	var me *MarathonError
	if errors.As(err, &me) && me.Status == http.StatusNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if out.App == nil {
		return nil, false, fmt.Errorf("Marathon GET %s: no \"app\" in the answer", appPath(id))
	}
	if err := checkAnswered(id, out.App); err != nil {
		return nil, false, fmt.Errorf("Marathon GET %s: %w", appPath(id), err)
	}
	return out.App, true, nil
}

// CreateApp is POST /v2/apps. A retry after a lost answer may find the app created by the
// first attempt: an "already exists" for an app carrying this definition's
// HAPROXY_DEPLOYMENT_STARTED_AT is success.
func (m *Marathon) CreateApp(ctx context.Context, a App) error {
	err := m.do(ctx, http.MethodPost, "/v2/apps", a, nil)
	var me *MarathonError
	if errors.As(err, &me) && me.Status == http.StatusConflict && !me.retryable() {
		got, ok, gerr := m.GetApp(ctx, a.ID())
		if gerr == nil && ok && got.Label(LabelStartedAt) == a.Label(LabelStartedAt) {
			return nil
		}
	}
	return err
}

// ScaleApp is PUT /v2/apps/{id} with only "instances": a scale deployment. force overrides a
// deployment that holds the app (the rollback's).
func (m *Marathon) ScaleApp(ctx context.Context, id string, instances int, force bool) error {
	return m.do(ctx, http.MethodPut, appPath(id)+forceQuery(force), map[string]any{"instances": instances}, nil)
}

// DeleteApp is DELETE /v2/apps/{id}; an app already gone is success.
func (m *Marathon) DeleteApp(ctx context.Context, id string, force bool) error {
	err := m.do(ctx, http.MethodDelete, appPath(id)+forceQuery(force), nil, nil)
	var me *MarathonError
	if errors.As(err, &me) && me.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// KillTasks is POST /v2/tasks/delete?scale=true: the tasks are killed and their apps scaled
// down by as many, so Marathon does not replace them.
func (m *Marathon) KillTasks(ctx context.Context, ids []string) error {
	return m.do(ctx, http.MethodPost, "/v2/tasks/delete?scale=true", map[string]any{"ids": ids}, nil)
}

func forceQuery(force bool) string {
	if force {
		return "?force=true"
	}
	return ""
}
