package lab

import (
	"slices"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/integration/cluster"
)

// The rendered units of testdata/lab.yaml parse, and their commands expand as systemd
// would run them, rerooted under a host's directory.
func TestRenderedUnitsParseAndExpand(t *testing.T) {
	top, _, err := cluster.Load(labTopology)
	if err != nil {
		t.Fatal(err)
	}
	files, err := cluster.Render(top, cluster.FormatSystemd)
	if err != nil {
		t.Fatal(err)
	}
	root := "/tmp/lab/lb1"
	env := []string{"HOST_IP=10.213.0.17", "HOST_NAME=lb1"}
	u, err := ParseUnit("lodestar-lb-external.service", files["lb1/etc/systemd/system/lodestar-lb-external.service"])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.EnvironmentFiles, []string{cluster.HostEnvFile}) || u.RuntimeDirectory != "lodestar-lb-external" ||
		len(u.Credentials) != 1 || u.Credentials[0] != [2]string{"lodestar-api-auth", "/etc/lodestar/lodestar-api-auth"} {
		t.Errorf("unit %+v", u)
	}
	args, err := u.Expand(env, root+"/run/credentials/lodestar-lb-external.service")
	if err != nil {
		t.Fatal(err)
	}
	for i := range args {
		args[i] = Reroot(root, args[i])
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"/usr/local/bin/lodestar serve --marathon http://10.213.0.15:8080 ",
		" --http-bind 10.213.0.17:80 ",
		" --api-auth /tmp/lab/lb1/run/credentials/lodestar-lb-external.service/lodestar-api-auth ",
		" --run-dir /tmp/lab/lb1/run/lodestar-lb-external",
		" --mesos-zk zk://10.213.0.11:2181,10.213.0.12:2181,10.213.0.13:2181/mesos ",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("expanded command lacks %q:\n%s", want, line)
		}
	}

	zk, err := ParseUnit("zookeeper.service", files["zk1/etc/systemd/system/zookeeper.service"])
	if err != nil {
		t.Fatal(err)
	}
	args, err = zk.Expand(env, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range args {
		args[i] = Reroot("/r", args[i])
	}
	want := []string{"/usr/bin/java", "-cp", "/r/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar", "-Dzookeeper.log.dir=/r/var/log/zookeeper", "-Dzookeeper.root.logger=INFO,CONSOLE",
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", "/r/etc/zookeeper/conf/zoo.cfg"}
	if !slices.Equal(args, want) {
		t.Errorf("zookeeper command\n%q\nwant\n%q", args, want)
	}
}

func TestParseUnitRejects(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"no ExecStart", "[Service]\nType=simple\n", "no ExecStart"},
		{"two ExecStart", "[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n", "a second ExecStart"},
		{"prefix", "[Service]\nExecStart=-/bin/a\n", `prefix "-"`},
		{"relative program", "[Service]\nExecStart=a b\n", "absolute program path"},
		{"unbalanced quote", "[Service]\nExecStart=/bin/a \"b\n", "unbalanced"},
		{"bad line", "[Service]\nExecStart\n", "neither a section nor KEY=VALUE"},
		{"environment not an assignment", "[Service]\nEnvironment=A\nExecStart=/bin/a\n", "want NAME=VALUE"},
		{"credential escaping the directory", "[Service]\nLoadCredential=../x:/etc/x\nExecStart=/bin/a\n", "NAME:/absolute/path"},
		{"runtime directory outside /run", "[Service]\nRuntimeDirectory=../../etc\nExecStart=/bin/a\n", "relative directory"},
		{"relative environment file", "[Service]\nEnvironmentFile=host.env\nExecStart=/bin/a\n", "absolute path"},
	} {
		_, err := ParseUnit("x.service", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x.service") {
			t.Errorf("%s: error %v, want one naming the unit and %q", tc.name, err, tc.want)
		}
	}
}

func TestParseUnitWords(t *testing.T) {
	text := "[Unit]\nExecStart=/ignored\n[Service]\nEnvironment=\"A=x y\" B=z\nExecStart=/bin/echo \\\n\t'one two' \"th\\\"ree\" ${A}-$B $B %%\n"
	u, err := ParseUnit("w.service", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Environment, []string{"A=x y", "B=z"}) {
		t.Errorf("Environment %q", u.Environment)
	}
	args, err := u.Expand(u.Environment, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/echo", "one two", `th"ree`, "x y-$B", "z", "%"}; !slices.Equal(args, want) {
		t.Errorf("args %q, want %q", args, want)
	}
}

func TestExpandRejects(t *testing.T) {
	for _, tc := range []struct{ exec, want string }{
		{"/bin/a ${MISSING}", "${MISSING}"},
		{"/bin/a $MISSING", "$MISSING"},
		{"/bin/a %n", "specifier %n"},
		{"/bin/a %d/cred", "%d without LoadCredential"},
		{"/bin/a x%", "ends in %"},
	} {
		u, err := ParseUnit("e.service", []byte("[Service]\nExecStart="+tc.exec+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Expand(nil, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.exec, err, tc.want)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	env, err := ParseEnvFile("host.env", []byte("# c\nHOST_IP=10.213.0.11\n\nQ=\"quoted value\"\n; c\n"))
	if err != nil || !slices.Equal(env, []string{"HOST_IP=10.213.0.11", "Q=quoted value"}) {
		t.Errorf("env %q, %v", env, err)
	}
	for _, bad := range []string{"1X=y\n", "no assignment\n", "A B=c\n"} {
		if _, err := ParseEnvFile("bad.env", []byte(bad)); err == nil || !strings.Contains(err.Error(), "bad.env line 1") {
			t.Errorf("%q: error %v, want one naming the file and line", bad, err)
		}
	}
}

func TestReroot(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/zookeeper/conf/zoo.cfg":                  "/R/etc/zookeeper/conf/zoo.cfg",
		"dataDir=/var/lib/zookeeper":                   "dataDir=/R/var/lib/zookeeper",
		"-cp /etc/a:/etc/b:/usr/share/java/*":          "-cp /R/etc/a:/R/etc/b:/usr/share/java/*",
		"mkdir -p /run/lodestar-cluster":               "mkdir -p /R/run/lodestar-cluster",
		">/run/x.tmp":                                  ">/R/run/x.tmp",
		"/bin/sh /usr/local/lib/lodestar-cluster/h.sh": "/bin/sh /R/usr/local/lib/lodestar-cluster/h.sh",
		"/usr/bin/java":                                "/usr/bin/java",
		"zk://10.0.0.1:2181/mesos":                     "zk://10.0.0.1:2181/mesos",
		"http://10.0.0.1:8080/etc/x":                   "http://10.0.0.1:8080/etc/x",
		"/etcetera/x /variable/y":                      "/etcetera/x /variable/y",
		"a/etc/x":                                      "a/etc/x",
	} {
		if got := Reroot("/R", in); got != want {
			t.Errorf("Reroot(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Reroot("/tmp/$1", "/etc/x"); got != "/tmp/$1/etc/x" {
		t.Errorf("a root with $ in it: %q", got)
	}
}
