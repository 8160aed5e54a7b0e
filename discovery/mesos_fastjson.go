package discovery

import (
	"slices"
	"strconv"
)

// A hand-written decoder for Mesos /master/state documents, on the scanner of
// marathon_fastjson.go. A large cluster's state is tens of megabytes that lodestar reads every
// few seconds; most of it is fields lodestar does not read (resources, executors, flags,
// completed tasks, …), which this decoder skips without building anything, and what it reads
// it puts straight into the MesosState with no reflection and few allocations: repeated
// strings (agent and framework ids, states, label keys and values) are interned, tasks with
// the same ports resource share its parsed ports, and the many short slices of a state (a
// task's statuses, labels, addresses, discovery ports) are cut from shared arrays.
//
// It gives the same results as decodeMesosStateStd, which stays the reference, by decoding only
// the documents where encoding/json's answer is plain and leaving it every other one:
//
//   - Keys are matched to the wire structs' fields as encoding/json matches them (exactly, or
//     ignoring ASCII case); values take encoding/json's semantics (null leaves a field as it
//     is, a float is rounded as strconv.ParseFloat rounds it, an int takes only an integer
//     literal that fits, labels come in either of decodeLabels' shapes, `[]` labels are an
//     empty, not a nil, slice).
//   - decodeMesosStateStd decodes the document whole when it is not well-formed JSON, nests
//     deeper than encoding/json allows, has a value of the wrong type, a key with escapes or
//     non-ASCII bytes, a repeated key (which encoding/json decodes into what the first one
//     left), a ports resource ParsePortRanges rejects, or is not a Mesos state: so every error
//     is the reference's, message and all.

// decodeMesosStateFast decodes data as decodeMesosStateStd does, or reports ok=false when it
// has to be left to decodeMesosStateStd (see above).
func decodeMesosStateFast(data []byte) (st *MesosState, ok bool) {
	d := mesosDec{fastDec: fastDec{data: data}}
	st, err := d.state()
	if err != nil {
		return nil, false
	}
	d.ws()
	return st, d.pos == len(data)
}

// mesosDec reads a Mesos state. It shares fastDec's scanner and string interning.
type mesosDec struct {
	fastDec

	// name is the last task name read: a framework lists an app's tasks one after another, and
	// a task's DiscoveryInfo repeats its name.
	name string
	// frameworkID is the last task framework_id read: all of a framework's tasks have its id.
	frameworkID string
	// ports holds the parsed ports resources by their text (read-only, capacity = length).
	ports map[string][]int
	// tasks collects the tasks of the framework being read.
	tasks chunks[MesosTask]

	// Scratch space for the slice being read, copied to its slab when complete.
	statusBuf []MesosTaskStatus
	labelBuf  []Label
	ipBuf     []string
	dportBuf  []DiscoveryPort

	statusSlab    slab[MesosTaskStatus]
	labelSlab     slab[Label]
	ipSlab        slab[string]
	dportSlab     slab[DiscoveryPort]
	discoverySlab slab[DiscoveryInfo]
}

// The JSON names of the wire structs' fields, which decide which keys are read.
var (
	mesosStateFields      = foldSetOf[wireMesosState]()
	leaderInfoFields      = foldSetOf[wireLeaderInfo]()
	mesosAddressFields    = foldSetOf[wireMesosAddress]()
	frameworkFields       = foldSetOf[wireFramework]()
	agentFields           = foldSetOf[wireAgent]()
	mesosTaskFields       = foldSetOf[wireMesosTask]()
	resourcesFields       = foldSetOf[wireResources]()
	taskStatusFields      = foldSetOf[wireTaskStatus]()
	containerStatusFields = foldSetOf[wireContainerStatus]()
	networkInfoFields     = foldSetOf[wireNetworkInfo]()
	networkIPFields       = foldSetOf[wireNetworkIP]()
	mesosDiscoveryFields  = foldSetOf[wireMesosDiscovery]()
	discoveryPortsFields  = foldSetOf[wireMesosDiscoveryPorts]()
	mesosDiscPortFields   = foldSetOf[wireMesosDiscoveryPort]()
	labelsFields          = foldSetOf[wireLabels]()
	labelFields           = foldSetOf[Label]()
)

// fields reads an object into a struct whose JSON names are names (a foldSetOf): field is
// called with the JSON name of the field each key stands for, matched as encoding/json
// matches keys (exactly or ignoring ASCII case), and must consume its value (skipping those of
// fields it does not read: the differential tests catch any it forgets); other keys are
// skipped. null leaves the struct as it is. A second key for the same field is errFastType.
func (d *fastDec) fields(names *foldSet, field func(name string) error) error {
	if ok, err := d.objOpen(); !ok {
		return err
	}
	var seen uint64
	for n := 0; ; n++ {
		key, more, err := d.structKey(n)
		if !more {
			return err
		}
		i := names.index(key)
		if i < 0 {
			if err := d.skip(); err != nil {
				return err
			}
			continue
		}
		if seen&(1<<i) != 0 {
			return errFastType
		}
		seen |= 1 << i
		if err := field(names.names[i]); err != nil {
			return err
		}
	}
}

// array reads an array, calling elem for each element (elem must consume it); null reports
// null=true.
func (d *fastDec) array(elem func() error) (null bool, err error) {
	ok, err := d.arrOpen()
	if !ok {
		return err == nil, err
	}
	for n := 0; ; n++ {
		more, err := d.arrNext(n)
		if err != nil || !more {
			return false, err
		}
		if err := elem(); err != nil {
			return false, err
		}
	}
}

// internStr reads a string like str, interned (see internRaw).
func (d *fastDec) internStr(s *string) error {
	return d.strIntern(s, "", d.internRaw)
}

// internState interns a task state: most are one of internConst's.
func (d *fastDec) internState(raw []byte) string {
	if s := internConst(raw); s != "" {
		return s
	}
	return d.internRaw(raw)
}

// float reads a number into a float64 (null leaves *p as it is), rounded as encoding/json
// rounds it (strconv.ParseFloat); a number out of float64's range is errFastType.
func (d *fastDec) float(p *float64) error {
	d.ws()
	switch c := d.peek(); {
	case c == 'n':
		return d.lit("null")
	case c == 0:
		return errFastSyntax
	case c != '-' && (c < '0' || c > '9'):
		return errFastType
	}
	start := d.pos
	if err := d.skipNumber(); err != nil {
		return err
	}
	num := d.data[start:d.pos]
	if f, ok := exactDecimal(num); ok {
		*p = f
		return nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return errFastType
	}
	*p = f
	return nil
}

// exactDecimal converts a well-formed JSON number without an exponent whose digits, read as an
// integer, are at most 2^53 and which has at most 22 decimals (a Unix timestamp, a port): both
// that integer and the power of ten are exact float64s, so one division rounds the quotient
// correctly, as strconv.ParseFloat does.
func exactDecimal(num []byte) (float64, bool) {
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	var m uint64
	decimals := -1
	for i, c := range num {
		switch {
		case c == '.':
			decimals = len(num) - i - 1
		case c < '0' || c > '9' || i >= 19: // an exponent, or maybe too many digits
			return 0, false
		default:
			m = m*10 + uint64(c-'0')
		}
	}
	if m > 1<<53 || decimals >= len(exactPow10) {
		return 0, false
	}
	f := float64(m)
	if decimals > 0 {
		f /= exactPow10[decimals]
	}
	if neg {
		f = -f
	}
	return f, true
}

// exactPow10 are the powers of ten that are exact float64s.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

func (d *mesosDec) state() (*MesosState, error) {
	d.ws()
	if d.peek() != '{' { // null, or not an object: encoding/json's answer
		return nil, errFastType
	}
	st := &MesosState{}
	var leaderIP string
	var leaderPort int
	var frameworks, agents bool // present and not null
	err := d.fields(&mesosStateFields, func(name string) (err error) {
		switch name {
		case "leader":
			err = d.str(&st.LeaderPID)
		case "hostname":
			err = d.str(&st.Hostname)
		case "leader_info":
			err = d.leaderInfo(&leaderIP, &leaderPort)
		case "frameworks":
			var null bool
			null, err = d.array(func() error {
				st.Frameworks = append(st.Frameworks, Framework{})
				return d.framework(&st.Frameworks[len(st.Frameworks)-1])
			})
			frameworks = !null
		case "slaves":
			var null bool
			null, err = d.array(func() error {
				st.Agents = append(st.Agents, Agent{})
				return d.agent(&st.Agents[len(st.Agents)-1])
			})
			agents = !null
		default:
			err = d.skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if st.LeaderPID == "" && !frameworks && !agents {
		return nil, errFastType // not a Mesos state: decodeMesosStateStd says so
	}
	st.Leader = addrOfPID(st.LeaderPID)
	if leaderIP != "" {
		st.Leader = joinHostPort(leaderIP, leaderPort)
	}
	return st, nil
}

// leaderInfo reads leader_info: its address is the leader's, when it has an IP.
func (d *mesosDec) leaderInfo(ip *string, port *int) error {
	var hostname string
	var infoPort int
	return d.fields(&leaderInfoFields, func(name string) error {
		switch name {
		case "hostname":
			return d.str(&hostname)
		case "port":
			return d.int(&infoPort)
		case "address":
			return d.fields(&mesosAddressFields, func(name string) error {
				if name == "ip" {
					return d.str(ip)
				}
				return d.int(port)
			})
		}
		return d.skip()
	})
}

func (d *mesosDec) agent(a *Agent) error {
	return d.fields(&agentFields, func(name string) error {
		switch name {
		case "id":
			return d.internStr(&a.ID)
		case "hostname":
			return d.str(&a.Hostname)
		case "pid":
			return d.str(&a.PID)
		}
		return d.skip()
	})
}

func (d *mesosDec) framework(fw *Framework) error {
	return d.fields(&frameworkFields, func(name string) error {
		switch name {
		case "id":
			return d.internStr(&fw.ID)
		case "name":
			return d.str(&fw.Name)
		case "pid":
			return d.str(&fw.PID)
		case "hostname":
			return d.str(&fw.Hostname)
		case "tasks":
			_, err := d.array(func() error { return d.task(d.tasks.next()) })
			fw.Tasks = d.tasks.collect()
			return err
		}
		return d.skip()
	})
}

func (d *mesosDec) task(t *MesosTask) error {
	return d.fields(&mesosTaskFields, func(name string) (err error) {
		switch name {
		case "id":
			err = d.str(&t.ID)
		case "name":
			err = d.strIntern(&t.Name, d.name, nil)
			d.name = t.Name
		case "framework_id":
			err = d.strIntern(&t.FrameworkID, d.frameworkID, d.internRaw)
			d.frameworkID = t.FrameworkID
		case "slave_id":
			err = d.internStr(&t.SlaveID)
		case "state":
			err = d.strIntern(&t.State, "", d.internState)
		case "resources":
			err = d.fields(&resourcesFields, func(string) error { return d.portsResource(&t.Ports) })
		case "labels":
			t.Labels, err = d.labels()
		case "statuses":
			t.Statuses, err = d.statuses()
		case "discovery":
			t.Discovery, err = d.discovery()
		default:
			err = d.skip()
		}
		return err
	})
}

// portsResource reads a ports resource ("[31000-31001]") and expands it. Tasks on the same
// ports share one slice. A range ParsePortRanges rejects is errFastType: decodeMesosStateStd
// reports it, naming the framework and the task.
func (d *mesosDec) portsResource(ports *[]int) error {
	d.ws()
	if d.peek() != '"' {
		var s string
		return d.str(&s) // null, or not a string
	}
	ks, ke, plain, err := d.scanString()
	if err != nil {
		return err
	}
	if p, ok := d.ports[string(d.data[ks:ke])]; ok && plain {
		*ports = p
		return nil
	}
	s, err := d.stringAt(ks, ke, plain)
	if err != nil {
		return err
	}
	p, err := ParsePortRanges(s)
	if err != nil {
		return errFastType
	}
	p = slices.Clip(p)
	if plain && len(d.ports) < maxInterned {
		if d.ports == nil {
			d.ports = make(map[string][]int)
		}
		d.ports[s] = p
	}
	*ports = p
	return nil
}

// labels reads labels in either of the shapes decodeLabels takes.
func (d *mesosDec) labels() (ls []Label, err error) {
	d.ws()
	switch d.peek() {
	case '[':
		return d.labelList()
	case '{':
		err = d.fields(&labelsFields, func(string) (err error) { // "labels"
			ls, err = d.labelList()
			return err
		})
		return ls, err
	case 'n':
		return nil, d.lit("null")
	case 0:
		return nil, errFastSyntax
	}
	return nil, errFastType
}

func (d *mesosDec) labelList() ([]Label, error) {
	buf := d.labelBuf[:0]
	null, err := d.array(func() error {
		buf = append(buf, Label{})
		l := &buf[len(buf)-1]
		return d.fields(&labelFields, func(name string) error {
			switch name {
			case "Key":
				return d.internStr(&l.Key)
			case "Value":
				return d.internStr(&l.Value)
			}
			return d.skip()
		})
	})
	d.labelBuf = buf
	switch {
	case err != nil || null:
		return nil, err
	case len(buf) == 0:
		return []Label{}, nil
	}
	return d.labelSlab.copy(buf), nil
}

func (d *mesosDec) statuses() ([]MesosTaskStatus, error) {
	buf := d.statusBuf[:0]
	_, err := d.array(func() error {
		buf = append(buf, MesosTaskStatus{})
		return d.status(&buf[len(buf)-1])
	})
	d.statusBuf = buf
	if err != nil {
		return nil, err
	}
	return d.statusSlab.copy(buf), nil
}

func (d *mesosDec) status(s *MesosTaskStatus) error {
	return d.fields(&taskStatusFields, func(name string) (err error) {
		switch name {
		case "state":
			err = d.strIntern(&s.State, "", d.internState)
		case "timestamp":
			err = d.float(&s.Timestamp)
		case "labels":
			s.Labels, err = d.labels()
		case "container_status":
			s.NetworkIPs, err = d.networkIPs()
		default:
			err = d.skip()
		}
		return err
	})
}

// networkIPs reads a container_status: the non-empty
// network_infos[].ip_addresses[].ip_address, in order.
func (d *mesosDec) networkIPs() ([]string, error) {
	ips := d.ipBuf[:0]
	err := d.fields(&containerStatusFields, func(string) error { // "network_infos"
		_, err := d.array(func() error {
			return d.fields(&networkInfoFields, func(string) error { // "ip_addresses"
				_, err := d.array(func() error {
					return d.fields(&networkIPFields, func(string) error { // "ip_address"
						var ip string
						if err := d.str(&ip); err != nil || ip == "" {
							return err
						}
						ips = append(ips, ip)
						return nil
					})
				})
				return err
			})
		})
		return err
	})
	d.ipBuf = ips
	if err != nil {
		return nil, err
	}
	return d.ipSlab.copy(ips), nil
}

func (d *mesosDec) discovery() (*DiscoveryInfo, error) {
	d.ws()
	switch d.peek() {
	case '{':
	case 'n':
		return nil, d.lit("null")
	case 0:
		return nil, errFastSyntax
	default:
		return nil, errFastType
	}
	di := d.discoverySlab.new()
	err := d.fields(&mesosDiscoveryFields, func(name string) error {
		switch name {
		case "name":
			return d.strIntern(&di.Name, d.name, nil)
		case "ports":
			return d.fields(&discoveryPortsFields, func(string) error { // {"ports": […]}
				buf := d.dportBuf[:0]
				_, err := d.array(func() error {
					buf = append(buf, DiscoveryPort{})
					return d.discoveryPort(&buf[len(buf)-1])
				})
				d.dportBuf = buf
				di.Ports = d.dportSlab.copy(buf)
				return err
			})
		}
		return d.skip()
	})
	return di, err
}

func (d *mesosDec) discoveryPort(p *DiscoveryPort) error {
	return d.fields(&mesosDiscPortFields, func(name string) error {
		switch name {
		case "number":
			return d.int(&p.Number)
		case "protocol":
			return d.internStr(&p.Protocol)
		case "name":
			return d.internStr(&p.Name)
		}
		return d.skip()
	})
}

// slab hands out short slices of larger arrays, so that the many short slices of a state
// cost one allocation for many, not one each.
type slab[T any] struct {
	free []T // the unused end of the current array
	size int // its size
}

const (
	minSlab = 16
	maxSlab = 1024
)

// copy returns a copy of src, nil when src is empty. Its capacity is its length: appending
// to it never writes to another.
func (s *slab[T]) copy(src []T) []T {
	n := len(src)
	if n == 0 {
		return nil
	}
	if n > len(s.free) {
		if n > maxSlab/4 {
			return slices.Clip(slices.Clone(src))
		}
		s.grow()
	}
	out := s.free[:n:n]
	copy(out, src)
	s.free = s.free[n:]
	return out
}

// new returns a pointer to a zero T.
func (s *slab[T]) new() *T {
	if len(s.free) == 0 {
		s.grow()
	}
	p := &s.free[0]
	s.free = s.free[1:]
	return p
}

func (s *slab[T]) grow() {
	s.size = min(max(2*s.size, minSlab), maxSlab)
	s.free = make([]T, s.size)
}

// chunks collects values in arrays of growing size and copies them, once, into a slice of
// their number (appending to one slice would copy them each time it grows). The arrays are
// reused for the next collection.
type chunks[T any] struct {
	full  [][]T // filled arrays, in order
	cur   []T   // the array being filled
	spare [][]T // arrays collected before, for reuse
	n     int   // values in full
}

// next appends a zero T and returns a pointer to it.
func (c *chunks[T]) next() *T {
	if len(c.cur) == cap(c.cur) {
		if cap(c.cur) > 0 {
			c.full = append(c.full, c.cur)
			c.n += len(c.cur)
		}
		if k := len(c.spare); k > 0 {
			c.cur, c.spare = c.spare[k-1][:0], c.spare[:k-1]
		} else {
			c.cur = make([]T, 0, min(max(c.n, minSlab), 4*maxSlab))
		}
	}
	var zero T
	c.cur = append(c.cur, zero)
	return &c.cur[len(c.cur)-1]
}

// collect returns the values appended since the last collect, nil when there are none.
func (c *chunks[T]) collect() []T {
	var out []T
	if n := c.n + len(c.cur); n > 0 {
		out = make([]T, 0, n)
		for _, f := range c.full {
			out = append(out, f...)
		}
		out = append(out, c.cur...)
	}
	if cap(c.cur) > 0 {
		c.spare = append(c.spare, c.cur)
	}
	c.spare = append(c.spare, c.full...)
	c.full, c.cur, c.n = c.full[:0], nil, 0
	return out
}
