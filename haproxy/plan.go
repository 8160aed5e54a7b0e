package haproxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Plan is what it takes to move a running HAProxy from one model to the next.
//
//   - Nothing changed: Reload is false and Runtime empty.
//   - Only slot addresses, check ports and states, or map entries changed: Runtime holds the
//     commands, Reload is false.
//   - Anything else changed (a backend added or removed, slot capacity, frontend rules,
//     options, binds, a template): Reload is true and Reason names the first change.
//
// When Reload is true, Runtime still holds the commands for the slots that exist in both
// models. Apply them before saving the server state and reloading: HAProxy restores a
// server's address and port from the server-state file over the configuration
// (haproxy/haproxy#1412, #2103), so the state saved must already be the new one. Map entries
// are left to the reload, which reads the map files: sent before it, an entry could name a
// backend the running HAProxy does not have, and would stay if HAProxy refused the new
// configuration.
type Plan struct {
	Reload  bool
	Reason  string
	Runtime []RuntimeCmd
}

// Empty reports whether the plan does nothing.
func (p Plan) Empty() bool { return !p.Reload && len(p.Runtime) == 0 }

// CmdKind is the kind of a runtime API command.
type CmdKind uint8

// Runtime API commands lodestar sends.
const (
	// CmdSetAddr is `set server B/S addr IP port P`.
	CmdSetAddr CmdKind = iota + 1
	// CmdSetState is `set server B/S state ready|drain|maint`.
	CmdSetState
	// CmdSetCheckPort is `set server B/S check-port P`.
	CmdSetCheckPort
	// CmdAddMap is `add map F K V`.
	CmdAddMap
	// CmdDelMap is `del map F K`.
	CmdDelMap
	// CmdAddServer is `add server B/S <Line>`: a slot a dynamic backend grows by, added in
	// maintenance (HAProxy's choice) with its server line's address and options.
	CmdAddServer
	// CmdEnableHealth and CmdEnableAgent start an added server's checks, which HAProxy
	// leaves off.
	CmdEnableHealth
	CmdEnableAgent
)

// RuntimeCmd is one HAProxy runtime API command.
type RuntimeCmd struct {
	Kind CmdKind
	// Backend and Server name the server of the set server commands.
	Backend, Server string
	// Addr and Port are the new address (CmdSetAddr); Port is also the check port
	// (CmdSetCheckPort).
	Addr  string
	Port  int
	State ServerState
	// Map is the map file; Key and Value the entry (CmdAddMap, CmdDelMap).
	Map, Key, Value string
	// Line is an added server's address and options as its server line has them
	// (CmdAddServer), already in the CLI's words.
	Line string
}

// String returns the command exactly as it is written to the socket (without the newline).
// Names, map files, keys and values are escaped (cliArg): an unescaped space or ';' would
// split them, and a ';' would make HAProxy run two commands and answer twice.
func (c RuntimeCmd) String() string {
	server := func() string { return "set server " + cliArg(c.Backend) + "/" + cliArg(c.Server) }
	switch c.Kind {
	case CmdSetAddr:
		return server() + " addr " + cliArg(c.Addr) + " port " + strconv.Itoa(c.Port)
	case CmdSetState:
		return server() + " state " + c.State.String()
	case CmdSetCheckPort:
		return server() + " check-port " + strconv.Itoa(c.Port)
	case CmdAddMap:
		return "add map " + cliArg(c.Map) + " " + cliArg(c.Key) + " " + cliArg(c.Value)
	case CmdDelMap:
		return "del map " + cliArg(c.Map) + " " + cliArg(c.Key)
	case CmdAddServer:
		return "add server " + cliArg(c.Backend) + "/" + cliArg(c.Server) + " " + c.Line
	case CmdEnableHealth:
		return "enable health " + cliArg(c.Backend) + "/" + cliArg(c.Server)
	case CmdEnableAgent:
		return "enable agent " + cliArg(c.Backend) + "/" + cliArg(c.Server)
	}
	return fmt.Sprintf("unknown command kind %d", c.Kind)
}

// MakePlan compares the running model old (nil when HAProxy runs nothing lodestar built) with
// new. It is pure and takes time in proportion to the number of backends, plus the changed
// ones' slots: unchanged parts are shared between models and compared by pointer.
func MakePlan(old, new *Model) Plan {
	switch {
	case new == nil:
		return Plan{Reason: "no new configuration"}
	case new.Err != nil:
		return Plan{Reason: "the new configuration cannot be built: " + new.Err.Error()}
	case old == nil || old.Err != nil:
		return Plan{Reload: true, Reason: "initial configuration"}
	case old == new:
		return Plan{}
	}
	var p planner
	if old.Head != new.Head {
		p.structural("global section (HEAD) changed: " + firstDiff(old.Head, new.Head))
	}
	if old.RunDir != new.RunDir {
		p.structural("run directory changed")
	}
	if old.HAProxyMap != new.HAProxyMap {
		p.structural("--haproxy-map changed")
	}
	p.backends(old.Backends, new.Backends)
	p.frontends(old.Frontends, new.Frontends)
	p.shared(old.HTTP, new.HTTP)
	p.shared(old.AppID, new.AppID)
	p.shared(old.HTTPS, new.HTTPS)
	p.userlists(old.Userlists, new.Userlists)
	if old.HAProxyMap && new.HAProxyMap {
		p.maps(new.DomainMapFile(), old.DomainMap, new.DomainMap)
		p.maps(new.AppMapFile(), old.AppMap, new.AppMap)
	}
	return p.plan()
}

// runtimePart is the model HAProxy runs once the part of the move from running to next that
// the Runtime API can make is made: running, with the slots of every backend both have taken
// from next wherever a runtime command can set them (the backend's server lines have the
// same shape in both, and a new address is an IP). It is running itself when there is no
// such part. New backends, slot capacity, map entries and everything else structural wait
// for a reload; MakePlan(running, runtimePart(running, next)) never reloads.
//
// While a structural change waits out the reload window, this is what a task move in an
// existing backend is applied as, at once (the README promises runtime changes at once);
// the reload that follows is planned from it, so it carries the move instead of reverting it.
func runtimePart(running, next *Model) *Model {
	if running == nil || next == nil || running == next || running.Err != nil || next.Err != nil {
		return running
	}
	var backends []*Backend // a copy of running's, made at the first change
	byName := func(b *Backend) string { return b.Name }
	mergeJoin(running.Backends, next.Backends, byName, func(ob, nb *Backend) {
		if ob == nil || nb == nil {
			return
		}
		slots := runtimeSlots(ob, nb)
		if slots == nil {
			return
		}
		if backends == nil {
			backends = slices.Clone(running.Backends)
		}
		i, _ := searchByName(backends, ob.Name, byName)
		b := *ob
		b.Slots = slots
		backends[i] = &b
	})
	if backends == nil {
		return running
	}
	m := *running
	m.Backends = backends
	return &m
}

// runtimeSlots returns ob's slots with those the Runtime API can move to nb's taken from nb;
// nil when there are none.
func runtimeSlots(ob, nb *Backend) []Slot {
	if !ob.RuntimeServers || !nb.RuntimeServers || ob.shape != nb.shape || sameSlices(ob.Slots, nb.Slots) {
		return nil
	}
	var slots []Slot
	for i := range min(len(ob.Slots), len(nb.Slots)) {
		os, ns := ob.Slots[i], nb.Slots[i]
		if os == ns || (os.Addr != ns.Addr || os.Port != ns.Port) && !validAddr(ns.Addr) {
			continue
		}
		if slots == nil {
			slots = slices.Clone(ob.Slots)
		}
		slots[i] = ns
	}
	if growsAtRuntime(ob, nb) {
		if slots == nil {
			slots = slices.Clone(ob.Slots)
		}
		slots = append(slots, nb.Slots[len(ob.Slots):]...)
	}
	return slots
}

type planner struct {
	reasons  []string
	cmds     []RuntimeCmd
	servers  []string
	mapCmds  int
	nReasons int
}

// maxReasons bounds the reasons kept; the rest are only counted.
const maxReasons = 4

func (p *planner) structural(reason string) {
	p.nReasons++
	if len(p.reasons) < maxReasons {
		p.reasons = append(p.reasons, reason)
	}
}

func (p *planner) plan() Plan {
	out := Plan{Runtime: p.cmds}
	switch {
	case p.nReasons > 0:
		out.Reload = true
		if p.mapCmds > 0 {
			out.Runtime = slices.DeleteFunc(p.cmds, func(c RuntimeCmd) bool { return c.Kind == CmdAddMap || c.Kind == CmdDelMap })
		}
		out.Reason = p.reasons[0]
		if p.nReasons > 1 {
			out.Reason += fmt.Sprintf(" (and %d more changes)", p.nReasons-1)
		}
	case len(p.servers) == 1:
		out.Reason = "servers of " + p.servers[0] + " changed"
	case len(p.servers) > 1:
		out.Reason = fmt.Sprintf("servers of %d backends changed", len(p.servers))
	}
	if !out.Reload && p.mapCmds > 0 {
		if out.Reason != "" {
			out.Reason += "; "
		}
		out.Reason += "map entries changed"
	}
	return out
}

func (p *planner) shared(o, n *SharedFrontend) {
	switch {
	case o == n:
		return
	case o == nil:
		p.structural("frontend " + n.Name + " added")
		return
	case n == nil:
		p.structural("frontend " + o.Name + " removed")
		return
	case o.Head != n.Head:
		p.structural("frontend " + n.Name + " changed: " + firstDiff(o.Head, n.Head))
		return
	}
	for i := 0; i < max(len(o.Rules), len(n.Rules)); i++ {
		var or, nr Rule
		if i < len(o.Rules) {
			or = o.Rules[i]
		}
		if i < len(n.Rules) {
			nr = n.Rules[i]
		}
		if or != nr {
			owner := nr.Owner
			if owner == "" {
				owner = or.Owner
			}
			what := "routing rules of frontend " + n.Name + " changed"
			if owner != "" {
				what += " (app " + owner + ")"
			}
			p.structural(what)
			return
		}
	}
}

func (p *planner) userlists(o, n []*Userlist) {
	if len(o) != len(n) {
		p.structural("basic-auth userlists changed")
		return
	}
	for i := range o {
		if *o[i] != *n[i] {
			p.structural("userlist " + n[i].Name + " changed")
			return
		}
	}
}

func (p *planner) frontends(o, n []*Frontend) {
	mergeJoin(o, n, func(f *Frontend) string { return f.Name }, func(of, nf *Frontend) {
		switch {
		case of == nil:
			p.structural("frontend " + nf.Name + " added")
		case nf == nil:
			p.structural("frontend " + of.Name + " removed")
		case *of != *nf:
			p.structural("frontend " + nf.Name + " changed: " + firstDiff(of.Text, nf.Text))
		}
	})
}

func (p *planner) backends(o, n []*Backend) {
	mergeJoin(o, n, func(b *Backend) string { return b.Name }, func(ob, nb *Backend) {
		switch {
		case ob == nil:
			p.structural("backend " + nb.Name + " added")
			return
		case nb == nil:
			p.structural("backend " + ob.Name + " removed")
			return
		}
		if ob.ID != nb.ID {
			p.structural(fmt.Sprintf("backend %s id changed %d→%d", nb.Name, ob.ID, nb.ID))
		}
		if ob.Head != nb.Head {
			p.structural("backend " + nb.Name + " changed: " + firstDiff(ob.Head, nb.Head))
		}
		if ob.shape != nb.shape {
			p.structural("server options of " + nb.Name + " changed")
		}
		switch {
		case len(nb.Slots) > len(ob.Slots) && growsAtRuntime(ob, nb):
			p.slots(ob, nb)
			p.addServers(nb, len(ob.Slots))
			return
		case len(nb.Slots) > len(ob.Slots):
			p.structural(fmt.Sprintf("slots of %s grew %d→%d", nb.Name, len(ob.Slots), len(nb.Slots)))
		case len(nb.Slots) < len(ob.Slots):
			p.structural(fmt.Sprintf("slots of %s shrank %d→%d", nb.Name, len(ob.Slots), len(nb.Slots)))
		}
		p.slots(ob, nb)
	})
}

// slots emits the runtime commands for the slots both backends have.
func (p *planner) slots(ob, nb *Backend) {
	if sameSlices(ob.Slots, nb.Slots) {
		return
	}
	changed := false
	for i := range min(len(ob.Slots), len(nb.Slots)) {
		os, ns := &ob.Slots[i], &nb.Slots[i]
		addrChanged := os.Addr != ns.Addr || os.Port != ns.Port
		checkChanged := os.CheckPort != ns.CheckPort
		stateChanged := os.State != ns.State
		if !addrChanged && !checkChanged && !stateChanged {
			continue
		}
		changed = true
		if !nb.RuntimeServers {
			p.structural("servers of " + nb.Name + " changed (its server template needs a reload)")
			return
		}
		if addrChanged && !validAddr(ns.Addr) {
			p.structural(fmt.Sprintf("server %s/%s address %s is a host name", nb.Name, ns.Name, ns.Addr))
			return
		}
		cmd := RuntimeCmd{Backend: nb.Name, Server: ns.Name}
		setAddr := func() {
			if addrChanged {
				c := cmd
				c.Kind, c.Addr, c.Port = CmdSetAddr, ns.Addr, ns.Port
				p.cmds = append(p.cmds, c)
			}
			if checkChanged {
				c := cmd
				c.Kind, c.Port = CmdSetCheckPort, ns.CheckPort
				if c.Port == 0 {
					c.Port = ns.Port
				}
				p.cmds = append(p.cmds, c)
			}
		}
		setState := func() {
			if stateChanged {
				c := cmd
				c.Kind, c.State = CmdSetState, ns.State
				p.cmds = append(p.cmds, c)
			}
		}
		// Taking a slot out of service comes before moving it; putting one in comes after.
		if ns.State == StateMaint {
			setState()
			setAddr()
		} else {
			setAddr()
			setState()
		}
	}
	if changed {
		p.servers = append(p.servers, nb.Name)
	}
}

func (p *planner) maps(file string, o, n []MapEntry) {
	mergeJoin(o, n, func(e MapEntry) string { return e.Key }, func(oe, ne MapEntry) {
		switch {
		case oe == ne:
			return
		case oe.Key == "":
			p.cmds = append(p.cmds, RuntimeCmd{Kind: CmdAddMap, Map: file, Key: ne.Key, Value: ne.Value})
		case ne.Key == "":
			p.cmds = append(p.cmds, RuntimeCmd{Kind: CmdDelMap, Map: file, Key: oe.Key})
		default:
			p.cmds = append(p.cmds, RuntimeCmd{Kind: CmdDelMap, Map: file, Key: oe.Key},
				RuntimeCmd{Kind: CmdAddMap, Map: file, Key: ne.Key, Value: ne.Value})
		}
		p.mapCmds++
	})
}

// mergeJoin walks two slices sorted by key and calls fn with the elements of each key; the
// zero value stands for a side without it. Elements equal by == (shared pointers) are skipped
// without comparing keys.
func mergeJoin[T comparable](o, n []T, key func(T) string, fn func(o, n T)) {
	var zero T
	i, j := 0, 0
	for i < len(o) || j < len(n) {
		switch {
		case i < len(o) && j < len(n) && o[i] == n[j]:
			i++
			j++
			continue
		case j == len(n):
			fn(o[i], zero)
			i++
			continue
		case i == len(o):
			fn(zero, n[j])
			j++
			continue
		}
		switch c := strings.Compare(key(o[i]), key(n[j])); {
		case c < 0:
			fn(o[i], zero)
			i++
		case c > 0:
			fn(zero, n[j])
			j++
		default:
			fn(o[i], n[j])
			i++
			j++
		}
	}
}

// firstDiff describes the first line that differs between two texts.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("%q → %q", strings.TrimSpace(x), strings.TrimSpace(y))
		}
	}
	return "whitespace"
}
