package fakemesos

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
)

// EncodeState writes st in the wire format of a Mesos master's /master/state, the inverse of
// discovery.DecodeMesosState: decoding the result gives st back (Leader, LeaderPID and Masters
// aside, which a state document does not carry as such). Tests build states from discovery
// types with it; SetMesosState serves one.
func EncodeState(st *discovery.MesosState) []byte {
	doc := map[string]any{
		"hostname":   st.Hostname,
		"frameworks": []any{},
		"slaves":     []any{},
	}
	if st.LeaderPID != "" {
		doc["leader"] = st.LeaderPID
	}
	slaves := make([]any, 0, len(st.Agents))
	for _, a := range st.Agents {
		slaves = append(slaves, map[string]any{"id": a.ID, "hostname": a.Hostname, "pid": a.PID})
	}
	doc["slaves"] = slaves
	fws := make([]any, 0, len(st.Frameworks))
	for _, f := range st.Frameworks {
		tasks := make([]any, 0, len(f.Tasks))
		for _, t := range f.Tasks {
			tasks = append(tasks, encodeTask(t))
		}
		fws = append(fws, map[string]any{"id": f.ID, "name": f.Name, "pid": f.PID, "hostname": f.Hostname, "tasks": tasks})
	}
	doc["frameworks"] = fws
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("fakemesos: EncodeState: %v", err)) // strings, numbers and lists only
	}
	return b
}

func encodeTask(t discovery.MesosTask) map[string]any {
	task := map[string]any{
		"id": t.ID, "name": t.Name, "framework_id": t.FrameworkID, "slave_id": t.SlaveID, "state": t.State,
		"resources": map[string]any{"ports": PortRanges(t.Ports)},
	}
	if len(t.Labels) > 0 {
		task["labels"] = encodeLabels(t.Labels)
	}
	statuses := make([]any, 0, len(t.Statuses))
	for _, s := range t.Statuses {
		status := map[string]any{"state": s.State, "timestamp": s.Timestamp}
		if len(s.Labels) > 0 {
			status["labels"] = encodeLabels(s.Labels)
		}
		if len(s.NetworkIPs) > 0 {
			ips := make([]any, 0, len(s.NetworkIPs))
			for _, ip := range s.NetworkIPs {
				ips = append(ips, map[string]any{"ip_address": ip})
			}
			status["container_status"] = map[string]any{"network_infos": []any{map[string]any{"ip_addresses": ips}}}
		}
		statuses = append(statuses, status)
	}
	task["statuses"] = statuses
	if d := t.Discovery; d != nil {
		ports := make([]any, 0, len(d.Ports))
		for _, p := range d.Ports {
			ports = append(ports, map[string]any{"number": p.Number, "protocol": p.Protocol, "name": p.Name})
		}
		task["discovery"] = map[string]any{"name": d.Name, "visibility": "FRAMEWORK", "ports": map[string]any{"ports": ports}}
	}
	return task
}

func encodeLabels(ls []discovery.Label) map[string]any {
	out := make([]any, 0, len(ls))
	for _, l := range ls {
		out = append(out, map[string]any{"key": l.Key, "value": l.Value})
	}
	return map[string]any{"labels": out}
}

// PortRanges writes ports as a Mesos ports resource, runs of consecutive ports as one range:
// [31000, 31001, 31005] → "[31000-31001, 31005-31005]"; none → "".
func PortRanges(ports []int) string {
	if len(ports) == 0 {
		return ""
	}
	var parts []string
	lo := ports[0]
	for i := 1; i <= len(ports); i++ {
		if i < len(ports) && ports[i] == ports[i-1]+1 {
			continue
		}
		parts = append(parts, strconv.Itoa(lo)+"-"+strconv.Itoa(ports[i-1]))
		if i < len(ports) {
			lo = ports[i]
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// SetMesosState serves st (see EncodeState) as the state document.
func (m *Master) SetMesosState(st *discovery.MesosState) error {
	return m.SetState(EncodeState(st))
}

// SetMesosState serves st on every master of the cluster.
func (c *Cluster) SetMesosState(st *discovery.MesosState) error {
	return c.SetState(EncodeState(st))
}
