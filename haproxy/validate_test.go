package haproxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

const validateHead = `global
    maxconn 100
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
`

// TestValidateRealAlerts runs `haproxy -c` on broken configurations and checks the alerts it
// reports: file, line, message and proxy.
func TestValidateRealAlerts(t *testing.T) {
	bin := haproxytest.Bin(t)
	port := haproxytest.FreePort(t)
	head := validateHead + fmt.Sprintf("frontend fe\n    bind 127.0.0.1:%d\n", port) // lines 1-9
	for _, tc := range []struct {
		name string
		body string // from line 10 on
		want []Alert
	}{
		{
			name: "unknown keyword",
			body: "    default_backend be\n    frobnicate on\nbackend be\n    server s1 127.0.0.1:80\n",
			want: []Alert{{Line: 11, Message: "unknown keyword 'frobnicate' in 'frontend' section"}},
		},
		{
			name: "bad server port",
			body: "    default_backend be\nbackend be\n    server s1 127.0.0.1:abc\n",
			want: []Alert{{Line: 12, Message: "'server be/s1' : invalid character 'a' in port number 'abc' in '127.0.0.1:abc'", Proxy: "be"}},
		},
		{
			name: "unknown server keyword",
			body: "    default_backend be\nbackend be\n    server s1 127.0.0.1:80 chek\n",
			want: []Alert{{Line: 12, Message: "'server be/s1' : unknown keyword 'chek'; did you mean 'check' maybe ?", Proxy: "be"}},
		},
		{
			name: "missing backend of use_backend",
			body: "    use_backend nothere if { path_beg /x }\n    default_backend be\nbackend be\n    server s1 127.0.0.1:80\n",
			want: []Alert{{Message: "Proxy 'fe': unable to find required use_backend: 'nothere'.", Proxy: "fe"}},
		},
		{
			name: "bad acl",
			body: "    acl bad hdr(host) -z x\n    default_backend be\nbackend be\n    server s1 127.0.0.1:80\n",
			want: []Alert{{Line: 10, Message: "error detected while parsing ACL 'bad' : '-z' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'."}},
		},
		{
			name: "duplicate backend",
			body: "    default_backend be\nbackend be\n    server s1 127.0.0.1:80\nbackend be\n    server s1 127.0.0.1:81\n",
			want: []Alert{{Line: 13, Message: fmt.Sprintf("backend 'be' has the same name as backend 'be' declared at %s:11.", "$CFG"), Proxy: "be"}},
		},
		{
			name: "duplicate server",
			body: "    default_backend be\nbackend be\n    server s1 127.0.0.1:80\n    server s1 127.0.0.1:81\n",
			want: []Alert{{Line: 13, Message: "backend 'be', another server named 's1' was already defined at line 12, please use distinct names.", Proxy: "be"}},
		},
		{
			name: "several errors",
			body: "    default_backend be\n    frobnicate\nbackend be\n    server s1 127.0.0.1:abc\n",
			want: []Alert{
				{Line: 11, Message: "unknown keyword 'frobnicate' in 'frontend' section"},
				{Line: 13, Message: "'server be/s1' : invalid character 'a' in port number 'abc' in '127.0.0.1:abc'", Proxy: "be"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
			if err := os.WriteFile(cfg, []byte(head+tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Validate(context.Background(), bin, cfg)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate: %v, want a *ValidationError", err)
			}
			for i := range tc.want {
				tc.want[i].Message = strings.ReplaceAll(tc.want[i].Message, "$CFG", cfg)
				if tc.want[i].Line != 0 {
					tc.want[i].File = cfg
				}
			}
			if !slices.Equal(verr.Alerts, tc.want) {
				t.Fatalf("alerts\n got %+v\nwant %+v\noutput:\n%s", verr.Alerts, tc.want, verr.Output)
			}
			if verr.Path != cfg || !strings.Contains(verr.Output, "[ALERT]") || verr.Err == nil {
				t.Fatalf("error fields: path %q err %v output %q", verr.Path, verr.Err, verr.Output)
			}
			if !strings.Contains(err.Error(), tc.want[0].String()) {
				t.Fatalf("error %q does not lead with the first alert %q", err, tc.want[0])
			}
		})
	}
}

func TestValidateAcceptsAndRejectsWholeFiles(t *testing.T) {
	bin := haproxytest.Bin(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.cfg")
	body := validateHead + fmt.Sprintf("frontend fe\n    bind 127.0.0.1:%d\n    default_backend be\nbackend be\n    server s1 127.0.0.1:80\n", haproxytest.FreePort(t))
	if err := os.WriteFile(good, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), bin, good); err != nil {
		t.Fatalf("valid config: %v", err)
	}

	// No listener at all: HAProxy exits 2 without an [ALERT]; its last line becomes the alert.
	idle := filepath.Join(dir, "idle.cfg")
	if err := os.WriteFile(idle, []byte(validateHead), 0o644); err != nil {
		t.Fatal(err)
	}
	var verr *ValidationError
	if err := Validate(context.Background(), bin, idle); !errors.As(err, &verr) || len(verr.Alerts) != 1 ||
		!strings.Contains(verr.Alerts[0].Message, "will not start (no listener)") {
		t.Fatalf("config without listener: %v", err)
	}

	missing := filepath.Join(dir, "missing.cfg")
	if err := Validate(context.Background(), bin, missing); !errors.As(err, &verr) || len(verr.Alerts) != 1 ||
		!strings.Contains(verr.Alerts[0].Message, "Cannot open configuration file") {
		t.Fatalf("missing file: %v", err)
	}

	err := Validate(context.Background(), filepath.Join(dir, "no-haproxy"), good)
	if err == nil || errors.As(err, &verr) {
		t.Fatalf("missing binary: %v, want an error that is not a ValidationError", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Validate(ctx, bin, good); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
}

func TestParseAlerts(t *testing.T) {
	out := strings.Join([]string{
		"[NOTICE]   (18422) : haproxy version is 2.6.12-1+deb12u4",
		"[WARNING]  (18428) : config : missing timeouts for frontend 'fe'.",
		"   | While not properly invalid, you will certainly encounter various problems",
		"[ALERT]    (18422) : config : parsing [/etc/h a.cfg:10] : unknown keyword 'foo' in 'frontend' section",
		"[ALERT]    (18425) : config : Proxy 'fe': unable to find required use_backend: 'nothere'.",
		"[ALERT]    (18447) : config : [d.cfg:9] : 'server be/s1' : could not resolve address ':80'.",
		"[ALERT]    (18422) : config : Parsing [a.cfg:15]: backend 'be' has the same name as backend 'be' declared at a.cfg:13.",
		"[ALERT]    (23288) : Binding [r.cfg:15] for frontend fe: cannot bind socket (Address already in use) for [127.0.0.1:18090]",
		"[ALERT]    (23288) : Starting frontend foo_81: cannot bind socket (Address already in use) [127.0.0.1:8080]",
		"[ALERT]    (23288) : config : parsing [r.cfg:3] : first line",
		"   | second line",
		"[ALERT] 123/045612 (77) : parsing [old.cfg:4] : date-stamped format of HAProxy before 2.4",
		"[ALERT]    (18422) : config : Error(s) found in configuration file : a.cfg",
		"[ALERT]    (18422) : config : Fatal errors found in configuration.",
		"   | not mine: follows a summary alert that is dropped",
	}, "\n")
	want := []Alert{
		{File: "/etc/h a.cfg", Line: 10, Message: "unknown keyword 'foo' in 'frontend' section"},
		{Message: "Proxy 'fe': unable to find required use_backend: 'nothere'.", Proxy: "fe"},
		{File: "d.cfg", Line: 9, Message: "'server be/s1' : could not resolve address ':80'.", Proxy: "be"},
		{File: "a.cfg", Line: 15, Message: "backend 'be' has the same name as backend 'be' declared at a.cfg:13.", Proxy: "be"},
		{File: "r.cfg", Line: 15, Message: "Binding [r.cfg:15] for frontend fe: cannot bind socket (Address already in use) for [127.0.0.1:18090]", Proxy: "fe"},
		{Message: "Starting frontend foo_81: cannot bind socket (Address already in use) [127.0.0.1:8080]", Proxy: "foo_81"},
		{File: "r.cfg", Line: 3, Message: "first line second line"},
		{File: "old.cfg", Line: 4, Message: "date-stamped format of HAProxy before 2.4"},
	}
	if got := ParseAlerts(out); !slices.Equal(got, want) {
		t.Fatalf("ParseAlerts:\n got %+v\nwant %+v", got, want)
	}
	// Only summaries: they are kept rather than reporting nothing.
	if got := ParseAlerts("[ALERT]    (1) : config : Fatal errors found in configuration."); len(got) != 1 {
		t.Fatalf("summary-only output gave %+v", got)
	}
	if got := ParseAlerts("Configuration file is valid\n"); len(got) != 0 {
		t.Fatalf("valid output gave %+v", got)
	}
}
