package haproxy

import (
	"slices"
	"strings"
	"testing"

	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/options"
)

// FuzzBuildHostileApp: whatever two labels, a task's host, IP address and port and a routing
// rule the hostile app carries, under --label-templates confined:
//
//   - the configuration parses with config-parser, and every section it holds that the render
//     without the hostile app does not hold is named as the hostile app's;
//   - every line the hostile app emits sits in one of its own sections or in a shared frontend,
//     and a section header it emits names one of its own;
//   - the lines of everyone else are byte-identical to the render without it (backend ids
//     aside: see evilID), and so are the map files but for the hostile app's entries.
//
// Inputs that contend for a victim's vhost or port are left to the route ownership tests.
// Seeds: testdata/fuzz/FuzzBuildHostileApp and the hostile corpus.
func FuzzBuildHostileApp(f *testing.F) {
	for _, tc := range hostileCases {
		a := evilApp()
		if tc.mutate != nil {
			tc.mutate(a)
		}
		var keys []string
		for k := range a.Labels {
			if k != "HAPROXY_0_VHOST" {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		k1, v1, k2, v2 := "VHOST", "evil.example.test", "", ""
		if len(keys) > 0 {
			k1, v1 = strings.TrimPrefix(keys[0], "HAPROXY_0_"), a.Labels[keys[0]]
		}
		if len(keys) > 1 {
			k2, v2 = strings.TrimPrefix(keys[1], "HAPROXY_0_"), a.Labels[keys[1]]
		}
		t := a.Tasks[len(a.Tasks)-1]
		ip := ""
		if len(t.IPAddresses) > 0 {
			ip = t.IPAddresses[0]
		}
		port := 31010
		if len(t.HostPorts) > 0 {
			port = t.HostPorts[0]
		}
		f.Add(k1, v1, k2, v2, t.Host, ip, port, tc.rule, tc.cfg != nil)
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, taskHost, taskAddr string, taskPort int, rule string, mapMode bool) {
		for _, s := range []string{k1, v1, k2, v2, taskHost, taskAddr, rule} {
			if strings.Contains(s, "victim") || strings.Contains(s, "271") || strings.Contains(s, "272") ||
				strings.Contains(s, "273") || strings.Contains(s, "274") || len(s) > 512 {
				return
			}
		}
		evil := app(evilID, withPorts(27300), withLabel("HAPROXY_0_VHOST", "evil.example.test"),
			withTasks(task("evil.1", host("10.0.0.9"), ports(31009))))
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}} {
			if kv[0] == "" {
				continue
			}
			key := kv[0]
			if !strings.HasPrefix(key, LabelPrefix) {
				key = "HAPROXY_0_" + key
			}
			evil.Labels[key] = kv[1]
		}
		tk := task("evil.2", host(taskHost), ports(taskPort))
		if taskAddr != "" {
			tk.IPAddresses = []string{taskAddr}
		}
		tk.AppID = evil.ID
		evil.Tasks = append(evil.Tasks, tk)
		cfg := testConfig()
		cfg.Groups = []string{"*"}
		cfg.HAProxyMap = mapMode
		with, _, rw, rwo := buildHostile(t, cfg, evil, rule)
		checkHostileRender(t, with, rw, rwo)
	})
}

// checkHostileRender checks the properties of FuzzBuildHostileApp.
func checkHostileRender(t *testing.T, with *Model, rw, rwo *Rendered) {
	t.Helper()
	owner, names := hostileKeys(with)
	own := func(name string) bool { return names[name] || names[strings.TrimPrefix(name, "user_")] }
	configParserMu.Lock()
	pw, errW := parser.New(options.String(string(rw.Config)))
	pwo, errWO := parser.New(options.String(string(rwo.Config)))
	configParserMu.Unlock()
	if errW != nil || errWO != nil {
		t.Fatalf("config-parser: %v / %v\n%s", errW, errWO, rw.Config)
	}
	for _, sec := range []parser.Section{parser.Defaults, parser.Global, parser.Resolvers, parser.UserList, parser.Peers,
		parser.Mailers, parser.Frontends, parser.Backends, parser.Listen, parser.Cache, parser.Program, parser.HTTPErrors,
		parser.Ring, parser.LogForward, parser.FCGIApp} {
		got, _ := pw.SectionsGet(sec)
		base, _ := pwo.SectionsGet(sec)
		for _, name := range got {
			if !slices.Contains(base, name) && !own(name) {
				t.Fatalf("section %s %q is new and not the hostile app's\n%s", sec, name, rw.Config)
			}
		}
	}
	section := ""
	for i, l := range strings.Split(strings.TrimSuffix(string(rw.Config), "\n"), "\n") {
		o := rw.OwnerOf(i + 1)
		if l != "" && l[0] != ' ' && l[0] != '\t' && l[0] != '#' {
			f := strings.Fields(l)
			section = f[0]
			if len(f) > 1 {
				section = f[1]
			}
			if owner[o] && !own(section) {
				t.Fatalf("line %d %q: the hostile app opens a section that is not its own\n%s", i+1, l, rw.Config)
			}
			continue
		}
		if owner[o] && strings.TrimSpace(l) != "" && !own(section) && !strings.HasPrefix(section, "marathon_") {
			t.Fatalf("line %d %q of the hostile app is in section %q\n%s", i+1, l, section, rw.Config)
		}
	}
	others := string(rw.Config)
	for k := range owner {
		others = linesNotOwnedBy(rw, k) // one hostile app: one key
	}
	if withoutIDs(others) != withoutIDs(string(rwo.Config)) {
		t.Fatalf("the others' lines changed:\n%s", lineDiff(withoutIDs(string(rwo.Config)), withoutIDs(others)))
	}
	for path, m := range rw.Maps {
		var kept []string
		for _, l := range strings.SplitAfter(string(m), "\n") {
			if f := strings.Fields(l); len(f) == 2 && own(f[1]) {
				continue
			}
			kept = append(kept, l)
		}
		if strings.Join(kept, "") != string(rwo.Maps[path]) {
			t.Fatalf("map %s changed beyond the hostile app's entries:\n%s\nwithout it:\n%s", path, m, rwo.Maps[path])
		}
	}
}

// hostileKeys returns the unit keys of the apps not in victimApps (the hostile app's id, or
// its deployment group) and the names of their backends (which are also their frontends').
func hostileKeys(m *Model) (keys, names map[string]bool) {
	victims := map[string]bool{}
	for _, a := range victimApps() {
		victims[a.ID] = true
	}
	keys, names = map[string]bool{}, map[string]bool{}
	for _, b := range m.Backends {
		if !victims[b.Owner] {
			keys[b.Owner] = true
			names[b.Name] = true
		}
	}
	return keys, names
}
