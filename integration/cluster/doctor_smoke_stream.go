package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"sync"
)

// The wire side of the smoke test through Mesos's v1 scheduler HTTP API: RecordIO records of
// JSON events on the subscription, and calls posted beside it with the stream's id.

// maxRecord bounds one RecordIO record of the event stream. An OFFERS event carries an offer
// per agent with room to spare in 16 MiB; a longer length prefix is refused before anything is
// allocated for it.
const maxRecord = 16 << 20

// recordReader reads RecordIO records: the record's length in decimal, a newline, and that many
// bytes (Mesos's recordio.md). Read errors, a non-digit in the length, a length of 0 or beyond
// max are errors; nothing is allocated before the length is known to fit.
type recordReader struct {
	r   *bufio.Reader
	max uint64
}

func newRecordReader(r io.Reader, max int) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, 64<<10), max: uint64(max)}
}

// next returns the next record; io.EOF when the stream ends between records.
func (rr *recordReader) next() ([]byte, error) {
	var n uint64
	digits := 0
	for {
		c, err := rr.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && digits == 0 {
				return nil, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading a record's length: %w", err)
		}
		if c == '\n' && digits > 0 {
			break
		}
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("a record's length holds %q: RecordIO wants decimal digits and a newline", c)
		}
		digits++
		n = n*10 + uint64(c-'0')
		if n > rr.max {
			return nil, fmt.Errorf("a record longer than the %d-byte limit (its length starts %d…)", rr.max, n)
		}
	}
	if n == 0 {
		return nil, errors.New("a record of length 0 (Mesos never sends one)")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(rr.r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading a record of %d bytes: %w", n, err)
	}
	return buf, nil
}

// mesosID is a v1 protobuf id message ({"value": "…"}).
type mesosID struct {
	Value string `json:"value"`
}

// smokeEvent is the part of a scheduler Event the smoke test reads.
type smokeEvent struct {
	Type       string `json:"type"`
	Subscribed *struct {
		FrameworkID mesosID `json:"framework_id"`
	} `json:"subscribed"`
	Offers *struct {
		Offers []smokeOffer `json:"offers"`
	} `json:"offers"`
	Update *struct {
		Status smokeTaskStatus `json:"status"`
	} `json:"update"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// smokeOffer is the part of an Offer the smoke test reads; resources stay raw so that the ones
// it takes go back exactly as offered (role, allocation_info, reservations).
type smokeOffer struct {
	ID        mesosID           `json:"id"`
	AgentID   mesosID           `json:"agent_id"`
	Hostname  string            `json:"hostname"`
	Resources []json.RawMessage `json:"resources"`
}

// smokeTaskStatus is the part of a TaskStatus the smoke test reads.
type smokeTaskStatus struct {
	TaskID  mesosID `json:"task_id"`
	AgentID mesosID `json:"agent_id"`
	State   string  `json:"state"`
	Message string  `json:"message"`
	Reason  string  `json:"reason"`
	Source  string  `json:"source"`
	UUID    string  `json:"uuid"`
}

// mesosIDRE is what an id from the master may be before it goes into a call or a finding:
// Mesos's ids are UUID-like strings with a counter.
var mesosIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$`)

// decodeEvent decodes one record and checks the ids the smoke test will send back.
func decodeEvent(rec []byte) (smokeEvent, error) {
	var ev smokeEvent
	if err := json.Unmarshal(rec, &ev); err != nil {
		return ev, fmt.Errorf("an event that is not the JSON of a scheduler Event (%.60q): %w", rec, err)
	}
	if ev.Type == "" {
		return ev, fmt.Errorf("an event without a type (%.60q)", rec)
	}
	if ev.Type == "SUBSCRIBED" && (ev.Subscribed == nil || !mesosIDRE.MatchString(ev.Subscribed.FrameworkID.Value)) {
		return ev, fmt.Errorf("a SUBSCRIBED event without a valid framework_id (%.80q)", rec)
	}
	if ev.Offers != nil {
		for _, o := range ev.Offers.Offers {
			if !mesosIDRE.MatchString(o.ID.Value) || !mesosIDRE.MatchString(o.AgentID.Value) {
				return ev, fmt.Errorf("an offer without a valid id and agent_id (%q, %q)", firstLine(o.ID.Value), firstLine(o.AgentID.Value))
			}
		}
	}
	if ev.Update != nil && ev.Update.Status.UUID != "" {
		if _, err := base64.StdEncoding.DecodeString(ev.Update.Status.UUID); err != nil || len(ev.Update.Status.UUID) > 64 {
			return ev, fmt.Errorf("an update whose uuid %q is not the Base64 of a UUID", firstLine(ev.Update.Status.UUID))
		}
	}
	return ev, nil
}

// eventStream reads a subscription's events in a goroutine of its own, so that the smoke test
// can wait for one under a deadline. Close stops it and waits for it.
type eventStream struct {
	body   io.ReadCloser
	events chan smokeEvent
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // why the stream ended; set before events is closed
}

func newEventStream(body io.ReadCloser) *eventStream {
	s := &eventStream{body: body, events: make(chan smokeEvent), done: make(chan struct{})}
	s.wg.Go(s.read)
	return s
}

func (s *eventStream) read() {
	defer close(s.events)
	rr := newRecordReader(s.body, maxRecord)
	for {
		rec, err := rr.next()
		var ev smokeEvent
		if err == nil {
			ev, err = decodeEvent(rec)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the master ended the event stream")
			}
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		select {
		case s.events <- ev:
		case <-s.done:
			return
		}
	}
}

// next waits for the next event; an error when the stream ended or ctx did.
func (s *eventStream) next(ctx context.Context) (smokeEvent, error) {
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.mu.Lock()
			defer s.mu.Unlock()
			return ev, fmt.Errorf("event stream: %w", s.err)
		}
		return ev, nil
	case <-ctx.Done():
		return smokeEvent{}, ctx.Err()
	}
}

// Close ends the subscription's connection and waits for the reader.
func (s *eventStream) Close() {
	close(s.done)
	_ = s.body.Close()
	s.wg.Wait()
}

// scalarValue reads a resource's scalar value: a finite number, not negative. Mesos writes
// doubles as JSON numbers; a string (as "NaN" or "Infinity" would come) is read only to be
// refused with its text.
func scalarValue(raw json.RawMessage) (float64, error) {
	text := string(bytes.TrimSpace(raw))
	if unq, err := strconv.Unquote(text); err == nil {
		text = unq
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("scalar value %s is not a finite number of at least 0", firstLine(string(raw)))
	}
	return v, nil
}

// smokeResource is the part of a Resource the smoke test reads.
type smokeResource struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Scalar *struct {
		Value json.RawMessage `json:"value"`
	} `json:"scalar"`
	Revocable json.RawMessage `json:"revocable"`
}

// fit finds in an offer a cpus and a mem resource of at least the amounts wanted (revocable
// ones left out: they can be taken back) and returns them rewritten to those amounts, every
// other field as offered. It also returns the offer's total cpus and mem, for a finding when
// nothing fits, and an error for a resource no master sends (a negative or NaN amount).
func fit(o smokeOffer, cpus, mem float64) (taken []any, total [2]float64, err error) {
	want := map[string]float64{"cpus": cpus, "mem": mem}
	got := map[string]any{}
	for _, raw := range o.Resources {
		var r smokeResource
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, total, fmt.Errorf("offer %s: a resource that is not a Resource: %w", o.ID.Value, err)
		}
		if r.Type != "SCALAR" || (r.Name != "cpus" && r.Name != "mem") {
			continue
		}
		if r.Scalar == nil {
			return nil, total, fmt.Errorf("offer %s: SCALAR resource %s without a scalar", o.ID.Value, r.Name)
		}
		v, err := scalarValue(r.Scalar.Value)
		if err != nil {
			return nil, total, fmt.Errorf("offer %s from agent %s: resource %s: %w", o.ID.Value, o.AgentID.Value, r.Name, err)
		}
		if r.Name == "cpus" {
			total[0] += v
		} else {
			total[1] += v
		}
		if got[r.Name] != nil || len(r.Revocable) > 0 || v < want[r.Name] {
			continue
		}
		var full map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&full); err != nil {
			return nil, total, fmt.Errorf("offer %s: resource %s: %w", o.ID.Value, r.Name, err)
		}
		full["scalar"] = map[string]any{"value": want[r.Name]}
		got[r.Name] = full
	}
	if got["cpus"] == nil || got["mem"] == nil {
		return nil, total, nil
	}
	return []any{got["cpus"], got["mem"]}, total, nil
}

// schedulerCall posts one call with the stream's id and the probe timeout, and returns an
// error unless the master answers 202.
func (s *mesosSmoke) schedulerCall(ctx context.Context, call map[string]any) error {
	ctx, cancel := context.WithTimeout(ctx, s.d.cfg.Timeout)
	defer cancel()
	call["framework_id"] = map[string]any{"value": s.frameworkID}
	body, err := json.Marshal(call)
	if err != nil {
		return fmt.Errorf("%s: %w", call["type"], err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	s.header(req)
	req.Header.Set("Mesos-Stream-Id", s.streamID)
	resp, err := s.d.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", call["type"], err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s: %d %s", call["type"], resp.StatusCode, firstLine(string(answer)))
	}
	return nil
}

// header sets what every call carries: JSON both ways, and the principal's credentials.
func (s *mesosSmoke) header(req *http.Request) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if fw := s.d.cfg.SmokeFramework; fw.Secret != "" {
		req.SetBasicAuth(fw.Principal, fw.Secret)
	}
}
