package autoscale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Marathon is what the Scaler reads from and writes to Marathon.
type Marathon interface {
	// App returns the app's instances and deployments as Marathon has them now.
	App(ctx context.Context, id string) (AppState, error)
	// Scale asks Marathon for n instances of the app (PUT /v2/apps/{id}, never forced).
	Scale(ctx context.Context, id string, n int) error
}

// AppState is an app as Marathon has it.
type AppState struct {
	Instances   int
	Deployments int
}

// ErrDeploymentLocked is returned by Scale when Marathon refuses because a deployment holds
// the app (409): the app is in a deployment, and is left alone.
var ErrDeploymentLocked = errors.New("Marathon says a deployment holds the app")

// ErrMarathonUnavailable is returned when no Marathon URL answered (a network error, a
// timeout or a 5xx from each): an outage of Marathon, not a refusal about one app.
var ErrMarathonUnavailable = errors.New("no Marathon answered")

// MarathonClient is Marathon over its REST API: each URL is tried in turn until one answers.
type MarathonClient struct {
	URLs   []string
	Client *http.Client
	// User and Password are basic auth when User is set.
	User, Password string
	// Timeout bounds each request; default 10s.
	Timeout time.Duration
}

// marathonBodyLimit bounds one answer from Marathon about one app.
const marathonBodyLimit = 16 << 20

// App is GET /v2/apps/{id}.
func (m MarathonClient) App(ctx context.Context, id string) (AppState, error) {
	body, err := m.do(ctx, http.MethodGet, id, nil)
	if err != nil {
		return AppState{}, err
	}
	var doc struct {
		App struct {
			Instances   *int              `json:"instances"`
			Deployments []json.RawMessage `json:"deployments"`
		} `json:"app"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return AppState{}, fmt.Errorf("app %s from Marathon: %w", id, err)
	}
	if doc.App.Instances == nil || *doc.App.Instances < 0 {
		return AppState{}, fmt.Errorf("app %s from Marathon has no instance count", id)
	}
	return AppState{Instances: *doc.App.Instances, Deployments: len(doc.App.Deployments)}, nil
}

// Scale is PUT /v2/apps/{id} with {"instances": n}.
func (m MarathonClient) Scale(ctx context.Context, id string, n int) error {
	body, _ := json.Marshal(map[string]int{"instances": n})
	_, err := m.do(ctx, http.MethodPut, id, body)
	return err
}

// do sends one request to each URL in turn until one answers; a 4xx answer is final (409
// is ErrDeploymentLocked), a 5xx or a network error moves on to the next URL.
func (m MarathonClient) do(ctx context.Context, method, id string, body []byte) ([]byte, error) {
	if len(m.URLs) == 0 {
		return nil, errors.New("no Marathon URL")
	}
	timeout := timeoutOr(m.Timeout)
	client := m.Client
	if client == nil {
		client = http.DefaultClient
	}
	if err := checkAppID(id); err != nil {
		return nil, err
	}
	var errs []error
	for _, base := range m.URLs {
		out, final, err := m.once(ctx, client, timeout, method, strings.TrimRight(base, "/")+"/v2/apps"+id, body)
		if err == nil || final {
			return out, err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrMarathonUnavailable, errors.Join(errs...))
}

// appIDSegment is one segment of a Marathon app id as Marathon itself allows it.
var appIDSegment = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$`)

// checkAppID refuses an app id Marathon would not have given: it goes into the URL path of
// a write, where a "?force=true", a ".." or a "#" would scale another app or force a
// deployment aside.
func checkAppID(id string) error {
	rest, ok := strings.CutPrefix(id, "/")
	if !ok || rest == "" {
		return fmt.Errorf("app id %q: want /group/app", id)
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if !appIDSegment.MatchString(seg) {
			return fmt.Errorf("app id %q: segment %q is not a Marathon id (lowercase letters, digits, '-' and '.')", id, seg)
		}
	}
	return nil
}

func (m MarathonClient) once(ctx context.Context, client *http.Client, timeout time.Duration, method, u string, body []byte) (out []byte, final bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, true, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if m.User != "" {
		req.SetBasicAuth(m.User, m.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	out, err = io.ReadAll(io.LimitReader(resp.Body, marathonBodyLimit))
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", method, u, err)
	}
	switch {
	case resp.StatusCode == http.StatusConflict:
		return nil, true, fmt.Errorf("%s %s: %w (409)", method, u, ErrDeploymentLocked)
	case resp.StatusCode >= 500:
		return nil, false, fmt.Errorf("%s %s: %s", method, u, resp.Status)
	case resp.StatusCode >= 300:
		return nil, true, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, firstLine(out))
	}
	return out, true, nil
}

// firstLine is the start of an answer, for an error message.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "?")
}

// Backoff spaces out the attempts for one app after failures: base, then twice as long
// each failure more, up to max. It reads no clock: every call is given the time.
type Backoff struct {
	Base, Max time.Duration
	failures  int
	until     time.Time
}

// Ready reports whether an attempt may be made at now.
func (b *Backoff) Ready(now time.Time) bool { return !now.Before(b.until) }

// Failed records a failed attempt at now and returns how long until the next.
func (b *Backoff) Failed(now time.Time) time.Duration {
	d := b.Base << min(b.failures, 20)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	b.failures++
	b.until = now.Add(d)
	return d
}

// Succeeded forgets the failures.
func (b *Backoff) Succeeded() { b.failures, b.until = 0, time.Time{} }
