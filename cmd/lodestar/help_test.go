package main

import (
	"context"
	"strings"
	"testing"
)

// TestHelpPrintedOnce: --help and -h of every command and subcommand print the usage once, to
// stdout, and exit 0; nothing goes to stderr. (The flag package printed it to stderr as well,
// so a terminal showed it twice.)
func TestHelpPrintedOnce(t *testing.T) {
	var invocations [][]string
	invocations = append(invocations, []string{"--help"}, []string{"-h"}, []string{"help"})
	for _, c := range commands(context.Background(), nil, nil, nil) {
		invocations = append(invocations, []string{c.name, "--help"}, []string{c.name, "-h"}, []string{"help", c.name})
	}
	for _, sub := range []string{"render", "doctor"} {
		invocations = append(invocations, []string{"cluster", sub, "--help"}, []string{"cluster", sub, "-h"})
	}
	for _, args := range invocations {
		code, out, errOut := runCmd(t, nil, args...)
		if code != 0 {
			t.Errorf("lodestar %s: exit %d, want 0", strings.Join(args, " "), code)
		}
		if n := strings.Count(out, "Usage: lodestar"); n != 1 {
			t.Errorf("lodestar %s: usage printed %d times on stdout, want once:\n%s", strings.Join(args, " "), n, out)
		}
		if errOut != "" {
			t.Errorf("lodestar %s: stderr %q, want nothing", strings.Join(args, " "), errOut)
		}
	}
}

// A mistyped flag is said once, on stderr, with where to look; the usage is not dumped.
func TestBadFlagSaidOnce(t *testing.T) {
	for _, args := range [][]string{{"serve", "--bogus"}, {"render", "--bogus"}, {"cluster", "render", "--bogus"}, {"cluster", "doctor", "--bogus"}} {
		code, out, errOut := runCmd(t, nil, args...)
		if code != 2 {
			t.Errorf("lodestar %s: exit %d, want 2", strings.Join(args, " "), code)
		}
		if n := strings.Count(errOut, "flag provided but not defined: -bogus"); n != 1 || strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "--help") || out != "" {
			t.Errorf("lodestar %s: stdout %q, stderr %q; want the error once on stderr, pointing at --help", strings.Join(args, " "), out, errOut)
		}
	}
}
