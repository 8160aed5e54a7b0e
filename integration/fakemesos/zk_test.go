package fakemesos

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/internal/zktest"
)

func TestMain(m *testing.M) { zktest.Main(m) }

func TestMasterInfoJSON(t *testing.T) {
	if got := IPToUint32("127.0.0.1"); got != 16777343 {
		t.Errorf("IPToUint32(127.0.0.1) = %d, want 16777343 (what Mesos writes)", got)
	}
	if got := IPToUint32("10.0.2.15"); got != 0x0f02000a {
		t.Errorf("IPToUint32(10.0.2.15) = %#x, want 0x0f02000a", got)
	}
	if got := IPToUint32("::1"); got != 0 {
		t.Errorf("IPToUint32(::1) = %d, want 0", got)
	}

	info := NewMasterInfo("127.0.0.3:5050")
	var got map[string]any
	if err := json.Unmarshal(info.JSON(), &got); err != nil {
		t.Fatal(err)
	}
	addr, _ := got["address"].(map[string]any)
	if got["ip"] != float64(50331775) || got["port"] != float64(5050) || got["pid"] != "master@127.0.0.3:5050" ||
		addr["ip"] != "127.0.0.3" || addr["port"] != float64(5050) {
		t.Errorf("MasterInfo JSON = %s", info.JSON())
	}
	info.Legacy = true
	if strings.Contains(string(info.JSON()), "address") {
		t.Errorf("legacy MasterInfo has an address: %s", info.JSON())
	}
}

func TestZKRegistrar(t *testing.T) {
	z := zktest.Shared(t)
	path := "/fakemesos/" + t.Name()
	r, err := NewZKRegistrar(z.Servers(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	observer, err := NewZKRegistrar(z.Servers(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()

	a, err := r.Register(NewMasterInfo("127.0.0.1:5050"), true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Register(NewMasterInfo("127.0.0.1:5051"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a, path+"/json.info_") || !(a < b) {
		t.Fatalf("nodes %q and %q: want increasing json.info_ sequences under %s", a, b, path)
	}
	data, _, err := observer.conn.Get(a)
	if err != nil || string(data) != string(NewMasterInfo("127.0.0.1:5050").JSON()) {
		t.Fatalf("node %s holds %s (%v)", a, data, err)
	}

	// The session ends: the ephemeral node goes, the persistent one stays.
	r.Close()
	children := waitChildren(t, observer, path, 1)
	if children[0] != b[len(path)+1:] {
		t.Fatalf("after Close: children %v, want only %s", children, b)
	}
	if err := observer.Unregister(b); err != nil {
		t.Fatal(err)
	}
	waitChildren(t, observer, path, 0)
	if err := observer.Unregister(b); !errors.Is(err, zk.ErrNoNode) {
		t.Errorf("Unregister of a deleted node: %v, want ErrNoNode", err)
	}
}

// waitChildren waits, on watches, until path has n children, and returns them sorted.
func waitChildren(t *testing.T, r *ZKRegistrar, path string, n int) []string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		children, _, watch, err := r.conn.ChildrenW(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(children) == n {
			slices.Sort(children)
			return children
		}
		select {
		case <-watch:
		case <-timeout:
			t.Fatalf("%s has children %v, waiting for %d", path, children, n)
		}
	}
}
