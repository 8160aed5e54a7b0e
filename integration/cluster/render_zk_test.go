package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// The zoo.cfg and myid files rendered for three zk hosts start a real ensemble that reaches
// quorum. Only dataDir is rewritten (to a temporary directory); hosts are 127.0.0.2–4 with
// ports that were free.
func TestRenderedZooCfgFormsQuorum(t *testing.T) {
	if err := zktest.Installed(); err != nil {
		t.Fatal(err)
	}
	var doc strings.Builder
	doc.WriteString("name: zk-test\nhosts:\n")
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		var ports [3]int
		for j := range ports {
			p, err := zktest.FreePort(ip)
			if err != nil {
				t.Fatal(err)
			}
			ports[j] = p
		}
		role := "zk"
		if i == 0 {
			role = "zk, master" // a topology needs a master only for Marathon and agents
		}
		fmt.Fprintf(&doc, "  - {name: zk%d, ip: %s, roles: [%s], zk_client_port: %d, zk_peer_port: %d, zk_election_port: %d}\n",
			i+1, ip, role, ports[0], ports[1], ports[2])
	}
	top, warnings, err := Parse([]byte(doc.String()))
	if err != nil || len(warnings) != 0 {
		t.Fatalf("%v %v\n%s", err, warnings, doc.String())
	}
	files := render(t, top, FormatSystemd)

	dataDirLine := regexp.MustCompile(`(?m)^dataDir=.*$`)
	var members []*zktest.Member
	for _, h := range top.HostsWithRole(RoleZK) {
		cfg := files[h.Name+"/etc/zookeeper/conf/zoo.cfg"]
		myid := files[h.Name+"/etc/zookeeper/conf/myid"]
		if len(dataDirLine.FindAll(cfg, -1)) != 1 || len(myid) == 0 {
			t.Fatalf("%s: zoo.cfg without one dataDir line or no myid:\n%s", h.Name, cfg)
		}
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), myid, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg = dataDirLine.ReplaceAll(cfg, []byte("dataDir="+data))
		path := filepath.Join(dir, "zoo.cfg")
		if err := os.WriteFile(path, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		members = append(members, zktest.StartMember(t, path))
	}
	modes := zktest.WaitQuorum(t, members, time.Minute)
	slices.Sort(modes)
	if !slices.Equal(modes, []string{"follower", "follower", "leader"}) {
		t.Fatalf("modes %v", modes)
	}
	for i, m := range members {
		if want := top.ZKServers()[i]; m.Addr() != want {
			t.Errorf("member %d serves clients on %s, want %s", i+1, m.Addr(), want)
		}
	}
}
