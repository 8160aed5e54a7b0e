package zkrules

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
)

func TestDecodeRule(t *testing.T) {
	tests := []struct {
		name, node, data string
		want             discovery.ServiceRule
		err              string // part of the error; "" for none
	}{
		{name: "v2", node: "%2Fgrp%2Fapp", data: `{"version":"2","config":{"Acl":"hdr(host) -i x"}}`,
			want: rule("/grp/app", "hdr(host) -i x")},
		{name: "v2 with more config", node: "%2Fapp", data: `{"version":"2","config":{"Acl":"path_beg /a","Other":"kept"}}`,
			want: rule("/app", "path_beg /a")},
		{name: "v2 spaces around", node: "%2Fapp", data: " \n{\"version\": \"2\", \"config\": {\"Acl\": \"  hdr(host) -i a.example  \"}}\n",
			want: rule("/app", "hdr(host) -i a.example")},
		{name: "bare", node: "%2Fgrp%2Fapp", data: "hdr(host) -i legacy.example",
			want: rule("/grp/app", "hdr(host) -i legacy.example")},
		{name: "bare with a trailing newline", node: "%2Fapp", data: "hdr_beg(host) -i a\n",
			want: rule("/app", "hdr_beg(host) -i a")},
		{name: "name escaped in lower case", node: "%2fgrp%2fapp", data: "hdr(host) -i x",
			want: rule("/grp/app", "hdr(host) -i x")},
		{name: "bad JSON", node: "%2Fapp", data: `{"version":"2","config":`, err: "malformed rule JSON"},
		{name: "unknown version", node: "%2Fapp", data: `{"version":"3","config":{"Acl":"x"}}`, err: `version "3"`},
		{name: "version as a number", node: "%2Fapp", data: `{"version":2,"config":{"Acl":"x"}}`, err: "malformed rule JSON"},
		{name: "v2 without Acl", node: "%2Fapp", data: `{"version":"2","config":{"acl":"x"}}`, err: "no config.Acl"},
		{name: "v2 empty Acl", node: "%2Fapp", data: `{"version":"2","config":{"Acl":" "}}`, err: "is empty"},
		{name: "v2 Acl of two lines", node: "%2Fapp", data: `{"version":"2","config":{"Acl":"a\nb"}}`, err: "single line"},
		{name: "no data", node: "%2Fapp", data: "", err: "no data"},
		{name: "bare of two lines", node: "%2Fapp", data: "hdr(host) -i a\nhdr(host) -i b", err: "single line"},
		{name: "bare with CR", node: "%2Fapp", data: "hdr(host) -i a\rb", err: "single line"},
		{name: "bare with NUL", node: "%2Fapp", data: "hdr(host)\x00", err: "control characters"},
		{name: "name not escaped", node: "%zz", data: "x", err: "not a query-escaped app id"},
		{name: "relative id", node: "app", data: "x", err: "must start with /"},
		{name: "id with a space", node: "%2Fmy+app", data: "x", err: "whitespace"},
		{name: "id of the root", node: "%2F", data: "x", err: "names no app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRule(tt.node, []byte(tt.data))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("decodeRule(%q, %q) = %+v, %v; want an error with %q", tt.node, tt.data, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("decodeRule(%q, %q) = %+v, %v; want %+v", tt.node, tt.data, got, err, tt.want)
			}
		})
	}
}

func TestEncodeRule(t *testing.T) {
	tests := []struct {
		name, acl, old, want string
	}{
		{"new", "hdr(host) -i x", "", `{"version":"2","config":{"Acl":"hdr(host) -i x"}}`},
		{"no HTML escaping", "hdr(host) -i a && b <c>", "", `{"version":"2","config":{"Acl":"hdr(host) -i a && b <c>"}}`},
		{"over a bare rule", "new", "hdr(host) -i old", `{"version":"2","config":{"Acl":"new"}}`},
		{"keeps other config", "new", `{"version":"2","config":{"Acl":"old","Zone":"eu"}}`,
			`{"version":"2","config":{"Acl":"new","Zone":"eu"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeRule(tt.acl, []byte(tt.old))
			if string(got) != tt.want {
				t.Fatalf("encodeRule(%q, %q) = %s, want %s", tt.acl, tt.old, got, tt.want)
			}
			r, err := decodeRule(nodeName("/app"), got)
			if err != nil || r.ACL != tt.acl {
				t.Fatalf("decoding what encodeRule wrote: %+v, %v", r, err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		servers []string
		path    string
		auth    string
		err     string
	}{
		{url: "zk://h1:2181,h2:2182/lodestar/services", servers: []string{"h1:2181", "h2:2182"}, path: "/lodestar/services"},
		{url: "zk://h1,10.0.0.2/rules/", servers: []string{"h1:2181", "10.0.0.2:2181"}, path: "/rules"},
		{url: " zk://[::1]:2181,[fe80::1]/r ", servers: []string{"[::1]:2181", "[fe80::1]:2181"}, path: "/r"},
		{url: "zk://alice:s3cr@t@h1:2181/r", servers: []string{"h1:2181"}, path: "/r", auth: "alice:s3cr@t"},
		{url: "http://h1:2181/r", err: "does not start with zk://"},
		{url: "zk://h1:2181", err: "no znode path"},
		{url: "zk://h1:2181/", err: "no znode path"},
		{url: "zk://h1:2181,/r", err: "an empty host"},
		{url: "zk://h1:99999/r", err: "bad port"},
		{url: "zk://h1:2181/a//b", err: "empty, . or .."},
		{url: "zk://h1:2181/a/../b", err: "empty, . or .."},
		{url: "zk://:pw@h1/r", err: "without a user name"},
		{url: "zk://[::1/r", err: "bad host"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parseURL(tt.url)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseURL(%q) = %+v, %v; want an error with %q", tt.url, got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got.servers, tt.servers) || got.path != tt.path || got.auth != tt.auth {
				t.Fatalf("parseURL(%q) = %+v, %v; want servers %v, path %s, auth %q", tt.url, got, err, tt.servers, tt.path, tt.auth)
			}
		})
	}
}

func TestNewRejectsABadURLWithoutShowingThePassword(t *testing.T) {
	for _, url := range []string{"", "zk://alice:topsecret@h1:2181", "zk://alice:topsecret@h1:0/r"} {
		_, err := New(Config{URL: url})
		if err == nil {
			t.Fatalf("New(%q) succeeded, want an error", url)
		}
		if !strings.Contains(err.Error(), "zk://") || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("New(%q): %v; want the expected form and no password", url, err)
		}
	}
	src, err := New(Config{URL: "zk://h1,h2:2182/lodestar/services"})
	if err != nil {
		t.Fatal(err)
	}
	if src.Name() != "zkrules" || src.Path() != "/lodestar/services" || src.Rules() != nil {
		t.Errorf("Name %q, Path %q, Rules %v", src.Name(), src.Path(), src.Rules())
	}
}

// TestValidation needs no ZooKeeper: a bad rule is refused before anything is sent.
func TestValidation(t *testing.T) {
	src, _ := newSource(t, "zk://127.0.0.1:1/never/contacted")
	ctx := context.Background()
	tests := []struct {
		rule  discovery.ServiceRule
		field string
	}{
		{rule("grp/app", "hdr(host) -i x"), "id"},
		{rule("", "hdr(host) -i x"), "id"},
		{rule("/", "hdr(host) -i x"), "id"},
		{rule("/grp/my app", "hdr(host) -i x"), "id"},
		{rule("/grp/app\t", "hdr(host) -i x"), "id"},
		{rule("/grp/app", ""), "acl"},
		{rule("/grp/app", "   "), "acl"},
		{rule("/grp/app", "hdr(host) -i x\nhdr(host) -i y"), "acl"},
		{rule("/grp/app", "hdr(host) -i x\r"), "acl"},
		{rule("/grp/app", "hdr(host) -i \x1b"), "acl"},
		{rule("/grp/app", "hdr(host) -i \xff"), "acl"},
	}
	for _, tt := range tests {
		err := src.Put(ctx, tt.rule)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("Put(%+v) = %v; want a *ValidationError on %s", tt.rule, err, tt.field)
		}
	}
	var ve *ValidationError
	if err := src.Delete(ctx, "relative"); !errors.As(err, &ve) || ve.Field != "id" {
		t.Errorf("Delete(relative) = %v; want a *ValidationError on id", err)
	}
	if src.sess.conn != nil {
		t.Error("a refused write opened a ZooKeeper connection")
	}
}

// A password holding a "/" (which the URL form cannot carry) makes the URL bad; the error
// still hides the password.
func TestBadURLHidesAPasswordWithASlash(t *testing.T) {
	_, err := New(Config{URL: "zk://alice:top/secret@h1:2181/lodestar/services"})
	if err == nil || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "top") || !strings.Contains(err.Error(), "alice:xxxxx@h1:2181") {
		t.Fatalf("error %v: want the URL with its password hidden", err)
	}
}
