package zkrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lodestar-lb/lodestar/discovery"
)

// ErrNoRule is returned (wrapped) by Delete for an app that has no rule.
var ErrNoRule = errors.New("no rule for that app")

// ValidationError says why a rule cannot be stored: the caller sent a bad rule (an API
// answers 400). A node in ZooKeeper with a bad id or ACL is logged with the same error.
type ValidationError struct {
	// Field is "id" or "acl".
	Field string
	// Value is the offending value.
	Value string
	// Reason says what is wrong, e.g. "must start with /".
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("bad rule %s %q: %s", e.Field, e.Value, e.Reason)
}

// nodeName is the znode name of an app's rule, as bamboo names it.
func nodeName(appID string) string { return url.QueryEscape(appID) }

// checkAppID validates an app id: an absolute Marathon id without whitespace.
func checkAppID(id string) error {
	switch {
	case !strings.HasPrefix(id, "/"):
		return &ValidationError{"id", id, "must start with / (an absolute Marathon app id such as /grp/app)"}
	case id == "/":
		return &ValidationError{"id", id, "names no app"}
	case strings.IndexFunc(id, unicode.IsSpace) >= 0:
		return &ValidationError{"id", id, "must not contain whitespace"}
	case !utf8.ValidString(id):
		return &ValidationError{"id", id, "is not valid UTF-8"}
	}
	return nil
}

// checkACL validates an ACL: one non-empty line of HAProxy condition text.
func checkACL(acl string) error {
	switch {
	case strings.TrimSpace(acl) == "":
		return &ValidationError{"acl", acl, "is empty"}
	case strings.ContainsAny(acl, "\r\n"):
		return &ValidationError{"acl", acl, "must be a single line (no CR or LF)"}
	case strings.IndexFunc(acl, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }) >= 0:
		return &ValidationError{"acl", acl, "must not contain control characters"}
	case !utf8.ValidString(acl):
		return &ValidationError{"acl", acl, "is not valid UTF-8"}
	}
	return nil
}

// normalize validates a rule and trims the spaces around its ACL.
func normalize(r discovery.ServiceRule) (discovery.ServiceRule, error) {
	if err := checkAppID(r.AppID); err != nil {
		return r, err
	}
	if err := checkACL(r.ACL); err != nil {
		return r, err
	}
	r.ACL = strings.TrimSpace(r.ACL)
	return r, nil
}

// wireRule is bamboo's version 2 node data: {"version":"2","config":{"Acl":"…"}}.
type wireRule struct {
	Version string            `json:"version"`
	Config  map[string]string `json:"config"`
}

// decodeRule reads the node name (the query-escaped app id) and data of a rule: bamboo's
// version 2 JSON, or the older form, the bare ACL text.
func decodeRule(name string, data []byte) (discovery.ServiceRule, error) {
	id, err := url.QueryUnescape(name)
	if err != nil {
		return discovery.ServiceRule{}, fmt.Errorf("node name %q is not a query-escaped app id: %w", name, err)
	}
	r := discovery.ServiceRule{AppID: id}
	if err := checkAppID(id); err != nil {
		return r, fmt.Errorf("node name %q: %w", name, err)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return r, errors.New("no data: want {\"version\":\"2\",\"config\":{\"Acl\":\"…\"}} or a bare ACL")
	}
	if data[0] == '{' {
		// No HAProxy ACL starts with "{": this is meant as JSON, and must be version 2.
		var w wireRule
		if err := json.Unmarshal(data, &w); err != nil {
			return r, fmt.Errorf("malformed rule JSON: %w", err)
		}
		if w.Version != "2" {
			return r, fmt.Errorf("rule JSON has version %q; only \"2\" is known", w.Version)
		}
		acl, ok := w.Config["Acl"]
		if !ok {
			return r, errors.New(`rule JSON has no config.Acl`)
		}
		r.ACL = acl
	} else {
		r.ACL = string(data)
	}
	if err := checkACL(r.ACL); err != nil {
		return r, err
	}
	r.ACL = strings.TrimSpace(r.ACL)
	return r, nil
}

// encodeRule returns the version 2 node data for acl. The other config keys of old (the
// node's current data, if it is version 2 JSON) are kept: bamboo stored more there.
func encodeRule(acl string, old []byte) []byte {
	w := wireRule{Version: "2", Config: map[string]string{}}
	var prev wireRule
	if json.Unmarshal(old, &prev) == nil && prev.Version == "2" {
		maps.Copy(w.Config, prev.Config)
	}
	w.Config["Acl"] = acl
	// Without HTML escaping, so that an ACL with & or < reads in ZooKeeper as written.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		// A struct of strings always encodes.
		panic(fmt.Sprintf("zkrules: encoding a rule: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
