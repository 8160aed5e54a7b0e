package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestTemplateFromProcessEnvironment: HAPROXY_<NAME> in the process's environment overrides
// the built-in template, as LABELS.md's lookup order says, when lodestar runs for real (run's
// getenv is nil: the process's environment). A hostile override that does not parse fails
// loudly instead of being ignored.
func TestTemplateFromProcessEnvironment(t *testing.T) {
	t.Setenv("HAPROXY_HEAD", "global\n  maxconn 1234\n  # from-the-environment\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 50s\n  timeout server 50s\n")
	var out, errb bytes.Buffer
	args := []string{"render", "--apps-file", "../../examples/apps.json", "--run-dir", t.TempDir()}
	if code := run(context.Background(), args, &out, &errb, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "# from-the-environment") {
		t.Errorf("HAPROXY_HEAD from the environment not used:\n%s", out.String())
	}

	// A hostile override (a field no template has) is an error naming it, not ignored.
	t.Setenv("HAPROXY_BACKEND_HEAD", "backend {backend}\n  {no_such_field}\n")
	out.Reset()
	errb.Reset()
	run(context.Background(), args, &out, &errb, nil)
	if !strings.Contains(errb.String(), "HAPROXY_BACKEND_HEAD") {
		t.Errorf("a HAPROXY_BACKEND_HEAD with an unknown field was not reported; stderr:\n%s", errb.String())
	}
}
