package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The wire types mirror the parts of a Mesos master's /master/state that lodestar reads.
// mesos_fastjson.go decodes the same fields, by the JSON names read from these types.
type wireMesosState struct {
	Leader     string          `json:"leader"`
	Hostname   string          `json:"hostname"`
	LeaderInfo *wireLeaderInfo `json:"leader_info"`
	Frameworks []wireFramework `json:"frameworks"`
	Slaves     []wireAgent     `json:"slaves"`
}

// The nested wire types are aliases of unnamed struct types, not named types, so that
// encoding/json's error messages (which print the Go types) read as they always have.
type (
	wireLeaderInfo = struct {
		Hostname string            `json:"hostname"`
		Port     int               `json:"port"`
		Address  *wireMesosAddress `json:"address"`
	}
	wireMesosAddress = struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	}
	wireFramework = struct {
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		PID      string          `json:"pid"`
		Hostname string          `json:"hostname"`
		Tasks    []wireMesosTask `json:"tasks"`
	}
	wireAgent = struct {
		ID       string `json:"id"`
		Hostname string `json:"hostname"`
		PID      string `json:"pid"`
	}
	wireResources = struct {
		Ports string `json:"ports"`
	}
	wireTaskStatus = struct {
		State           string               `json:"state"`
		Timestamp       float64              `json:"timestamp"`
		Labels          json.RawMessage      `json:"labels"`
		ContainerStatus *wireContainerStatus `json:"container_status"`
	}
	wireContainerStatus = struct {
		NetworkInfos []wireNetworkInfo `json:"network_infos"`
	}
	wireNetworkInfo = struct {
		IPAddresses []wireNetworkIP `json:"ip_addresses"`
	}
	wireNetworkIP = struct {
		IPAddress string `json:"ip_address"`
	}
	wireMesosDiscovery = struct {
		Name  string                  `json:"name"`
		Ports wireMesosDiscoveryPorts `json:"ports"`
	}
	wireMesosDiscoveryPorts = struct {
		Ports []wireMesosDiscoveryPort `json:"ports"`
	}
	wireMesosDiscoveryPort = struct {
		Number   int    `json:"number"`
		Protocol string `json:"protocol"`
		Name     string `json:"name"`
	}
)

type wireLabels struct {
	Labels []Label `json:"labels"`
}

type wireMesosTask struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	FrameworkID string              `json:"framework_id"`
	SlaveID     string              `json:"slave_id"`
	State       string              `json:"state"`
	Resources   wireResources       `json:"resources"`
	Labels      json.RawMessage     `json:"labels"`
	Statuses    []wireTaskStatus    `json:"statuses"`
	Discovery   *wireMesosDiscovery `json:"discovery"`
}

// maxTaskPorts bounds how many ports one task's `resources.ports` ranges may expand to.
const maxTaskPorts = 10000

// DecodeMesosState decodes a Mesos master's /master/state (or state.json) document.
//
// It uses the hand-written decoder of mesos_fastjson.go, which gives the same results as
// decodeMesosStateStd (encoding/json) and hands it every input it is not sure about,
// including every one that is an error.
func DecodeMesosState(data []byte) (*MesosState, error) {
	if st, ok := decodeMesosStateFast(data); ok {
		return st, nil
	}
	return decodeMesosStateStd(data)
}

// decodeMesosStateStd is DecodeMesosState on encoding/json: the reference implementation.
// The fast decoder falls back to it for documents that are not well-formed, unusual or wrong,
// and the tests compare the two.
func decodeMesosStateStd(data []byte) (*MesosState, error) {
	var w wireMesosState
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("malformed Mesos state JSON: %w", err)
	}
	if w.Leader == "" && w.Frameworks == nil && w.Slaves == nil {
		return nil, errors.New(`no "leader", "frameworks" or "slaves": not a Mesos master state`)
	}
	st := &MesosState{LeaderPID: w.Leader, Hostname: w.Hostname, Leader: addrOfPID(w.Leader)}
	if li := w.LeaderInfo; li != nil && li.Address != nil && li.Address.IP != "" {
		st.Leader = joinHostPort(li.Address.IP, li.Address.Port)
	}
	for _, s := range w.Slaves {
		st.Agents = append(st.Agents, Agent{ID: s.ID, Hostname: s.Hostname, PID: s.PID})
	}
	for _, f := range w.Frameworks {
		fw := Framework{ID: f.ID, Name: f.Name, PID: f.PID, Hostname: f.Hostname}
		for i := range f.Tasks {
			t, err := convertMesosTask(&f.Tasks[i])
			if err != nil {
				return nil, fmt.Errorf("framework %q, task %s: %w", f.Name, f.Tasks[i].ID, err)
			}
			fw.Tasks = append(fw.Tasks, t)
		}
		st.Frameworks = append(st.Frameworks, fw)
	}
	return st, nil
}

func convertMesosTask(w *wireMesosTask) (MesosTask, error) {
	t := MesosTask{ID: w.ID, Name: w.Name, FrameworkID: w.FrameworkID, SlaveID: w.SlaveID, State: w.State}
	var err error
	if t.Ports, err = ParsePortRanges(w.Resources.Ports); err != nil {
		return t, err
	}
	if t.Labels, err = decodeLabels(w.Labels); err != nil {
		return t, err
	}
	for _, s := range w.Statuses {
		ts := MesosTaskStatus{State: s.State, Timestamp: s.Timestamp}
		if ts.Labels, err = decodeLabels(s.Labels); err != nil {
			return t, err
		}
		if s.ContainerStatus != nil {
			for _, ni := range s.ContainerStatus.NetworkInfos {
				for _, ip := range ni.IPAddresses {
					if ip.IPAddress != "" {
						ts.NetworkIPs = append(ts.NetworkIPs, ip.IPAddress)
					}
				}
			}
		}
		t.Statuses = append(t.Statuses, ts)
	}
	if d := w.Discovery; d != nil {
		di := &DiscoveryInfo{Name: d.Name}
		for _, p := range d.Ports.Ports {
			di.Ports = append(di.Ports, DiscoveryPort(p))
		}
		t.Discovery = di
	}
	return t, nil
}

// decodeLabels reads Mesos labels in either shape: `{"labels":[…]}` (Labels message) or a bare
// array (state.json of some versions).
func decodeLabels(raw json.RawMessage) ([]Label, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '[' {
		var ls []Label
		if err := json.Unmarshal(raw, &ls); err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		return ls, nil
	}
	var w wireLabels
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	return w.Labels, nil
}

// ParsePortRanges expands a Mesos ports resource such as "[31000-31002, 31005-31005]".
func ParsePortRanges(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ports []int
	for _, r := range strings.Split(s, ",") {
		lo, hi, found := strings.Cut(strings.TrimSpace(r), "-")
		if !found {
			hi = lo
		}
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a < 0 || b > 65535 || a > b {
			return nil, fmt.Errorf("ports resource %q: bad range %q", s, r)
		}
		if len(ports)+(b-a+1) > maxTaskPorts {
			return nil, fmt.Errorf("ports resource %q: more than %d ports", s, maxTaskPorts)
		}
		for p := a; p <= b; p++ {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// addrOfPID turns a libprocess pid ("master@1.2.3.4:5050", "scheduler(1)@[2001:db8::1]:25501")
// into its "host:port".
func addrOfPID(pid string) string {
	_, addr, found := strings.Cut(pid, "@")
	if !found {
		return ""
	}
	return addr
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}
