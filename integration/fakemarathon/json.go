package fakemarathon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// marshal encodes v as one line of JSON without HTML escaping, like
// Marathon's Jackson output.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decode parses JSON keeping numbers as json.Number, so that they are
// re-encoded exactly as they were read.
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("fakemarathon: trailing data after JSON value")
	}
	return v, nil
}

// normalizeMap turns any Go value (possibly holding typed slices or maps)
// into the generic form decode produces.
func normalizeMap(m map[string]any) (map[string]any, error) {
	data, err := marshal(m)
	if err != nil {
		return nil, err
	}
	v, err := decode(data)
	if err != nil {
		return nil, err
	}
	out, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("fakemarathon: not a JSON object")
	}
	return out, nil
}

// deepCopy copies the maps and slices of a decoded JSON value; leaves are
// immutable and shared.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// plainCopy returns v re-decoded by encoding/json without UseNumber, i.e.
// numbers become float64, as callers of a map[string]any API expect.
func plainCopy(m map[string]any) map[string]any {
	data, err := marshal(m)
	if err != nil {
		return deepCopy(m).(map[string]any)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		return deepCopy(m).(map[string]any)
	}
	return out
}

// toInt reads a JSON number in any of the forms this package stores.
func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case float64:
		return int(n), true
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return int(i), true
		}
		if f, err := n.Float64(); err == nil {
			return int(f), true
		}
	case string:
		if i, err := strconv.Atoi(n); err == nil {
			return i, true
		}
	}
	return 0, false
}

// timestamp formats t the way Marathon does: RFC 3339, UTC, milliseconds.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// now is the current Marathon timestamp.
func now() string { return timestamp(time.Now()) }

// normID normalises an app id to Marathon's absolute form ("/shop/web").
func normID(id string) string {
	return "/" + strings.Trim(id, "/")
}

// str returns m[key] if it is a string.
func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}
