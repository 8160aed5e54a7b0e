package main

import (
	"strings"
	"testing"
)

// A replica follows a hub: the hub's example cluster reaches it through GET /v1/stream.
func TestServeReplicaFollowsHub(t *testing.T) {
	hub := startServe(t, "--run-dir", t.TempDir())
	waitReady(t, hub)
	replica := startServe(t, "--registry-from", "http://127.0.0.1:1,"+hub, "--registry-auth", "token:s3cret")
	waitApps(t, replica, func(doc appsDoc) bool {
		return len(doc.Apps) == 3 && doc.task("/db/cache", "db_cache.8d4c3f51-b7c1-11f0-9c3e-0242ac110002") != nil
	})
	waitReady(t, replica)
}

// --registry-from gives the whole registry: every other source beside it is refused, with the
// flags named, and its own options are checked.
func TestRegistryFromRefusesOtherSources(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--marathon", "http://127.0.0.1:1"}, "--registry-from and --marathon both give the registry"},
		{[]string{"--apps-file", "x.json"}, "--registry-from and --apps-file"},
		{[]string{"--mesos-state-file", "x.json"}, "--registry-from and --mesos-state-file"},
		{[]string{"--mesos-zk", "zk://127.0.0.1:1/mesos"}, "--registry-from and --mesos-zk"},
		{[]string{"--mesos-master", "127.0.0.1:1"}, "--registry-from and --mesos-master"},
		{[]string{"--zk-rules", "zk://127.0.0.1:1/rules"}, "--registry-from and --zk-rules"},
		{[]string{"--registry-max-event", "1000"}, "--registry-max-event 1000"},
		{[]string{"--registry-idle-timeout", "1ms"}, "registry-idle-timeout"},
		{[]string{"--registry-auth", "tokn:s3cret"}, "--registry-auth"},
	} {
		args := append([]string{"serve", "--haproxy=false", "--run-dir", t.TempDir(), "--api-listen", "127.0.0.1:0",
			"--registry-from", "http://127.0.0.1:1"}, tc.args...)
		code, _, errOut := runCmd(t, nil, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want an error containing %q", tc.args, code, errOut, tc.want)
		}
		if strings.Contains(errOut, "s3cret") {
			t.Errorf("serve %v: the error repeats the secret: %q", tc.args, errOut)
		}
	}
	code, _, errOut := runCmd(t, nil, "serve", "--haproxy=false", "--run-dir", t.TempDir(), "--registry-from", "http://edge:pw@127.0.0.1:1")
	if code == 0 || !strings.Contains(errOut, "holds credentials") || strings.Contains(errOut, "pw@") {
		t.Errorf("a hub URL with credentials: exit %d, stderr %q", code, errOut)
	}
}
