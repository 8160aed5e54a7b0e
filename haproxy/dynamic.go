package haproxy

import (
	"fmt"
	"slices"
	"strings"
)

// slotCapacity is how many slots a backend with n tasks gets, given its previous build.
//
// A backend HAProxy can add servers to at run time (dynamic) has one slot per task: growing is
// `add server`, with no reload. It shrinks to n only with shrink (the build of a reload that
// happens anyway); until then a slot whose task left waits for the next one, as a spare.
//
// Any other backend grows in steps of step to keep at least one spare, and shrinks only once
// no more than half of it would be needed and the smaller capacity leaves at least half a
// step free. Without that margin an app of 10 instances (step 10) shrank to 10 slots when a
// task died and grew back to 20 when Marathon replaced it: two reloads for every replacement.
func slotCapacity(n, step int, prev *Backend, dynamic, shrink bool) int {
	if dynamic {
		if prev == nil || !prev.DynamicServers || shrink {
			return n
		}
		return max(n, len(prev.Slots))
	}
	need := (n/step + 1) * step
	if prev == nil {
		return need
	}
	c := len(prev.Slots)
	if need > c || need*2 <= c && need-n >= (step+1)/2 {
		return need
	}
	return c
}

// freeDynamicSlots reports whether a backend of outs that HAProxy can add servers to has a
// slot without a task, which a build with Config.ShrinkSlots drops.
func freeDynamicSlots(outs []*out) bool {
	for _, o := range outs {
		if o == nil || o.backend == nil || !o.backend.DynamicServers {
			continue
		}
		for _, s := range o.backend.Slots {
			if s.Spare() {
				return true
			}
		}
	}
	return false
}

// Server options HAProxy 2.6.12's `add server` refuses ("'…' option is not accepted for
// dynamic server"), each tried against it. A backend whose server lines have one keeps spare
// slots.
var staticServerKeywords = map[string]bool{
	"cookie": true, "resolvers": true, "resolve-prefer": true, "resolve-net": true,
	"resolve-opts": true, "init-addr": true, "redir": true, "namespace": true,
}

// dynamicShape reports whether no word of a backend's server line shape is an option `add
// server` refuses. (Any it refuses that is not listed makes the runtime update fail, and the
// change is reloaded instead.)
func dynamicShape(shape string) bool {
	for _, w := range strings.Fields(shape) {
		if staticServerKeywords[w] {
			return false
		}
	}
	return true
}

// Balance algorithms HAProxy can add servers to at run time ("Backend must use a dynamic
// load balancing to support dynamic servers"); the hashing ones only with `hash-type
// consistent`.
var dynamicAlgorithms = map[string]bool{"roundrobin": true, "leastconn": true, "first": true, "random": true}

// dynamicBalance reports whether the balance algorithm a backend ends up with is dynamic:
// the last `balance` line of its own section, else of the defaults in head, else HAProxy's
// default, roundrobin. A hashing algorithm counts only with `hash-type consistent` in the
// same text.
func dynamicBalance(head, backendHead string) bool {
	for _, text := range []string{backendHead, head} {
		algo, consistent := "", false
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "balance":
				algo = f[1]
			case len(f) >= 2 && f[0] == "hash-type" && f[1] == "consistent":
				consistent = true
			}
		}
		if algo != "" {
			return dynamicAlgorithms[algo] || consistent
		}
	}
	return true
}

// growsAtRuntime reports whether the slots nb has beyond ob's can be added with `add server`:
// both are dynamic with the same server lines and head, and every added slot's address is
// an IP (a dynamic server never resolves a name).
func growsAtRuntime(ob, nb *Backend) bool {
	if !ob.DynamicServers || !nb.DynamicServers || !ob.RuntimeServers || !nb.RuntimeServers ||
		ob.shape != nb.shape || ob.Head != nb.Head || ob.ID != nb.ID || len(nb.Slots) <= len(ob.Slots) {
		return false
	}
	for _, s := range nb.Slots[len(ob.Slots):] {
		if !validAddr(s.Addr) {
			return false
		}
	}
	return true
}

// addServers emits the commands that add nb's slots from index from on: `add server` with
// the slot's server line, its checks started, then its state (HAProxy adds it in
// maintenance). A line the CLI cannot take word for word makes the change structural.
func (p *planner) addServers(nb *Backend, from int) {
	var cmds []RuntimeCmd
	for i := from; i < len(nb.Slots); i++ {
		s := nb.Slots[i]
		args, err := nb.server.addServerArgs(nb.Slots, i)
		if err != nil {
			p.structural(fmt.Sprintf("slots of %s grew %d→%d (%v)", nb.Name, from, len(nb.Slots), err))
			return
		}
		cmd := RuntimeCmd{Backend: nb.Name, Server: s.Name}
		add := cmd
		add.Kind, add.Line = CmdAddServer, strings.Join(args, " ")
		cmds = append(cmds, add)
		if slices.Contains(args, "check") {
			c := cmd
			c.Kind = CmdEnableHealth
			cmds = append(cmds, c)
		}
		if slices.Contains(args, "agent-check") {
			c := cmd
			c.Kind = CmdEnableAgent
			cmds = append(cmds, c)
		}
		if s.State != StateMaint {
			c := cmd
			c.Kind, c.State = CmdSetState, s.State
			cmds = append(cmds, c)
		}
	}
	p.cmds = append(p.cmds, cmds...)
	p.servers = append(p.servers, nb.Name)
}

// addServerArgs is the server line of slots[i] without its "server <name>" words, as `add
// server` takes it. A line with quotes, backslashes or ';' (which the CLI reads differently
// from the configuration parser), or that is not one server line, is refused.
func (sr *serverRender) addServerArgs(slots []Slot, i int) ([]string, error) {
	line, err := sr.appendSlotsFrom(nil, slots[i:i+1], i)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSuffix(string(line), "\n")
	if strings.ContainsAny(text, "\n\"'\\;#") {
		return nil, fmt.Errorf("server line %q cannot be sent to the Runtime API as it is", text)
	}
	f := strings.Fields(text)
	if len(f) < 3 || f[0] != "server" || f[1] != slots[i].Name {
		return nil, fmt.Errorf("server line %q is not \"server %s <address> …\"", text, slots[i].Name)
	}
	return f[2:], nil
}
