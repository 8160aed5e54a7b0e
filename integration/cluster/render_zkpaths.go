package cluster

import (
	"regexp"
	"strings"
)

// zkPathRe is a ZooKeeper path as it may stand in a zk:// URL: '/'-separated names of letters,
// digits, '_', '-' and '.', without a trailing '/'.
var zkPathRe = regexp.MustCompile(`^(/[A-Za-z0-9_.-]+)+$`)

// zkPaths checks zk_paths: each a plain absolute path, and neither inside the other (Marathon
// would list Mesos's election nodes as its own, or the reverse).
func (c *checker) zkPaths() {
	p := c.t.ZKPaths
	ok := true
	for field, path := range map[string]string{"zk_paths.mesos": p.Mesos, "zk_paths.marathon": p.Marathon} {
		if !zkPathRe.MatchString(path) || strings.Contains(path+"/", "/./") || strings.Contains(path+"/", "/../") {
			c.bad("", field, "%q is not a ZooKeeper path (e.g. /prod/mesos: '/'-separated names, no trailing '/', no . or ..)", path)
			ok = false
		}
	}
	if ok && (p.Mesos == p.Marathon || strings.HasPrefix(p.Marathon+"/", p.Mesos+"/") || strings.HasPrefix(p.Mesos+"/", p.Marathon+"/")) {
		c.bad("", "zk_paths.marathon", "%q and mesos's %q overlap: Mesos and Marathon each need a node of their own", p.Marathon, p.Mesos)
	}
}

// MesosZK is the zk:// URL masters elect their leader under and agents and lodestars find it by.
func (t *Topology) MesosZK() string { return t.ZKURL(t.ZKPaths.Mesos) }

// MarathonZK is the zk:// URL Marathon keeps its state and leader election under.
func (t *Topology) MarathonZK() string { return t.ZKURL(t.ZKPaths.Marathon) }
