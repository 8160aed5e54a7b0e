package main

import (
	"strings"
	"testing"
)

// TestZKCredentialsRedacted: /v1/config never shows a ZooKeeper password, even in URLs
// net/url cannot parse (a % in the password, a host list).
func TestZKCredentialsRedacted(t *testing.T) {
	for _, in := range []string{
		"zk://bob:s3cr%t@127.0.0.1:1/mesos",
		"zk://bob:s3cret@[::1]:2181,[::2]:2181/mesos",
		"zk://bob:s3cret@h1:2181,h2:2181/mesos",
	} {
		got := zkCredentials.ReplaceAllString(in, "${1}"+redacted+"@")
		if strings.Contains(got, "s3cr") || !strings.HasPrefix(got, "zk://(redacted)@") {
			t.Errorf("%s → %s, want the credentials redacted", in, got)
		}
	}
	if got := zkCredentials.ReplaceAllString("zk://h1:2181/mesos", "x"); got != "zk://h1:2181/mesos" {
		t.Errorf("a URL without credentials changed: %s", got)
	}
}
