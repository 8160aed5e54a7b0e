// Command gen makes the clusters of the DNS benchmarks. The 10k cluster (scripts/bench-dns.sh) is
// 1,000 Marathon apps of 10 tasks and one of 200, on 100 agents — 10,200 running tasks, each with
// a netinfo address and one host port. The 100k cluster (scripts/bench-ingest.sh) is the DNS
// issue's ingest shape, that of BenchmarkIngest100k: 10,000 apps of 10 tasks and one of 200, on
// 1,000 agents — 100,200 tasks with two host ports each, every second one with a netinfo address
// (the others are answered with their agent's), every fifth with DiscoveryInfo named ports.
//
//	gen state -out DIR [-size 10k|100k]
//	                         writes DIR/state.json (a Mesos /master/state document), the dnsperf
//	                         query files DIR/queries-{a,srv,nxdomain}.txt and DIR/answer-a.txt:
//	                         one A name of the state and the addresses it must resolve to, a
//	                         line "NAME ADDRESS" per address
//	gen serve -listen ADDR [-cpuprofile FILE]
//	                         serves the names of the 10k cluster with dnsserver, from a hand-built
//	                         index, until interrupted: the benchmark's stand-in for `lodestar
//	                         serve` when the binary at hand cannot serve DNS
//	gen freeport             prints a loopback port free for both UDP and TCP
//
// Names follow mesos-dns; the query files use only names that do not
// depend on the task-ID hash (app-N.marathon.mesos., _app-N._tcp.marathon.mesos.), so they fit
// both servers. Task and agent addresses are 10.x: they only appear in answers, no packet is
// ever sent to them.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/dnsserver"
)

const queries = 10000 // lines per query file; dnsperf cycles through them

// shape is the size and make-up of a generated cluster.
type shape struct {
	apps, tasksPerApp, bigTasks, agents int
	// netinfoEvery: every netinfoEvery-th task has a netinfo address (1: all of them).
	netinfoEvery int
	// discoveryEvery: every discoveryEvery-th task has a DiscoveryInfo naming its host ports
	// (0: none).
	discoveryEvery int
	// hostPorts is the number of host ports of every task.
	hostPorts int
	// extras adds what real documents carry and lodestar skips: a TASK_STARTING status before
	// the running one, a task label, cpus, mem and disk resources.
	extras bool
}

// shapes are the clusters of `gen state -size`.
var shapes = map[string]shape{
	"10k":  {apps: 1000, tasksPerApp: 10, bigTasks: 200, agents: 100, netinfoEvery: 1, hostPorts: 1},
	"100k": {apps: 10000, tasksPerApp: 10, bigTasks: 200, agents: 1000, netinfoEvery: 2, discoveryEvery: 5, hostPorts: 2, extras: true},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gen state -out DIR [-size 10k|100k] | gen serve -listen ADDR | gen freeport")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "state":
		fs := flag.NewFlagSet("state", flag.ExitOnError)
		out := fs.String("out", ".", "directory for state.json and the query files")
		size := fs.String("size", "10k", "cluster: 10k (10,200 tasks) or 100k (100,200 tasks)")
		fs.Parse(os.Args[2:])
		sh, ok := shapes[*size]
		if !ok {
			err = fmt.Errorf("-size %q: want 10k or 100k", *size)
			break
		}
		err = writeState(*out, sh)
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		listen := fs.String("listen", "127.0.0.1:8053", "UDP and TCP address")
		profile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this `file`")
		baseline := fs.Bool("baseline", false, "serve with a plain miekg/dns server (a goroutine and a dns.Msg per query) instead of dnsserver, for comparison")
		fs.Parse(os.Args[2:])
		err = serve(*listen, *profile, *baseline)
	case "freeport":
		var port int
		port, err = freePort()
		fmt.Println(port)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// task is one running task of the cluster.
type task struct {
	app   string
	id    string
	agent int
	// ip is the task's netinfo address; invalid when it has none.
	ip netip.Addr
	// port is the first of its host ports.
	port      int
	discovery bool
}

// addr is the address mesos-dns answers for the task: its netinfo address, else its agent's.
func (t task) addr() string {
	if t.ip.IsValid() {
		return t.ip.String()
	}
	return agentIP(t.agent)
}

// cluster lists every task of sh, app by app.
func cluster(sh shape) []task {
	var out []task
	add := func(app string, n int) {
		for i := range n {
			k := len(out)
			t := task{
				app:       app,
				id:        fmt.Sprintf("%s.%08x-0000-11e4-a088-c20493233aa5", app, k),
				agent:     k % sh.agents,
				port:      31000 + i*sh.hostPorts,
				discovery: sh.discoveryEvery > 0 && k%sh.discoveryEvery == 0,
			}
			if k%sh.netinfoEvery == 0 {
				t.ip = netip.AddrFrom4([4]byte{10, 2 + byte(k>>16), byte(k >> 8), byte(k)})
			}
			out = append(out, t)
		}
	}
	for a := range sh.apps {
		add(appName(a), sh.tasksPerApp)
	}
	add("big", sh.bigTasks)
	return out
}

func appName(i int) string { return fmt.Sprintf("app-%d", i) }
func agentID(i int) string { return fmt.Sprintf("20140916-194712-631065744-5050-4798-S%d", i) }
func agentIP(i int) string { return fmt.Sprintf("10.1.%d.%d", (i+1)>>8, (i+1)&255) }

// The shapes of Mesos state.json that writeState writes.
type ipAddr struct {
	IPAddress string `json:"ip_address"`
}
type netInfo struct {
	IPAddresses []ipAddr `json:"ip_addresses"`
}
type containerStatus struct {
	NetworkInfos []netInfo `json:"network_infos"`
}
type status struct {
	State           string           `json:"state"`
	Timestamp       float64          `json:"timestamp"`
	ContainerStatus *containerStatus `json:"container_status,omitempty"`
}
type label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}
type discoveryPort struct {
	Number   int    `json:"number"`
	Protocol string `json:"protocol"`
	Name     string `json:"name"`
}
type discovery struct {
	Visibility string `json:"visibility"`
	Name       string `json:"name"`
	Ports      struct {
		Ports []discoveryPort `json:"ports"`
	} `json:"ports"`
}
type mtask struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	FrameworkID string         `json:"framework_id"`
	SlaveID     string         `json:"slave_id"`
	State       string         `json:"state"`
	Resources   map[string]any `json:"resources"`
	Labels      []label        `json:"labels,omitempty"`
	Statuses    []status       `json:"statuses"`
	Discovery   *discovery     `json:"discovery,omitempty"`
}
type slave struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	PID      string `json:"pid"`
}

// writeState writes state.json, the query files and answer-a.txt of the cluster sh.
func writeState(dir string, sh shape) error {
	const fwID = "20140703-014514-3041283216-5050-5349-0000"
	portNames := []string{"http", "admin"}
	all := cluster(sh)
	var tasks []mtask
	for k, t := range all {
		st := status{State: "TASK_RUNNING", Timestamp: 1.7e9}
		if t.ip.IsValid() {
			st.ContainerStatus = &containerStatus{NetworkInfos: []netInfo{{IPAddresses: []ipAddr{{t.ip.String()}}}}}
		}
		mt := mtask{
			ID: t.id, Name: t.app, FrameworkID: fwID, SlaveID: agentID(t.agent), State: "TASK_RUNNING",
			Resources: map[string]any{"ports": fmt.Sprintf("[%d-%d]", t.port, t.port+sh.hostPorts-1)},
			Statuses:  []status{st},
		}
		if sh.extras {
			mt.Resources["cpus"], mt.Resources["mem"], mt.Resources["disk"] = 0.25, 256, 0
			mt.Labels = []label{{Key: "team", Value: fmt.Sprintf("t%d", k%40)}}
			mt.Statuses = []status{{State: "TASK_STARTING", Timestamp: 1.7e9 - 1}, st}
		}
		if t.discovery {
			d := &discovery{Visibility: "FRAMEWORK", Name: t.app}
			for p := range sh.hostPorts {
				name := fmt.Sprintf("port%d", p)
				if p < len(portNames) {
					name = portNames[p]
				}
				d.Ports.Ports = append(d.Ports.Ports, discoveryPort{Number: t.port + p, Protocol: "tcp", Name: name})
			}
			mt.Discovery = d
		}
		tasks = append(tasks, mt)
	}
	var slaves []slave
	for i := range sh.agents {
		slaves = append(slaves, slave{ID: agentID(i), Hostname: agentIP(i), PID: "slave(1)@" + agentIP(i) + ":5051"})
	}
	state := map[string]any{
		"leader":   "master@10.0.0.1:5050",
		"hostname": "10.0.0.1",
		"slaves":   slaves,
		"frameworks": []map[string]any{{
			"id": fwID, "name": "marathon", "pid": "scheduler-1@10.0.0.2:8080", "hostname": "10.0.0.2", "tasks": tasks,
		}},
	}
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), data, 0o644); err != nil {
		return err
	}
	files := map[string]func(i int) string{
		"queries-a.txt":        func(i int) string { return fmt.Sprintf("app-%d.marathon.mesos A", i%sh.apps) },
		"queries-srv.txt":      func(i int) string { return fmt.Sprintf("_app-%d._tcp.marathon.mesos SRV", i%sh.apps) },
		"queries-nxdomain.txt": func(i int) string { return fmt.Sprintf("nope-%d.marathon.mesos A", i) },
	}
	for name, line := range files {
		if err := writeLines(filepath.Join(dir, name), queries, line); err != nil {
			return err
		}
	}
	// The last of the regular apps: its tasks are near the end of the document.
	last := all[(sh.apps-1)*sh.tasksPerApp : sh.apps*sh.tasksPerApp]
	return writeLines(filepath.Join(dir, "answer-a.txt"), len(last), func(i int) string {
		return last[i].app + ".marathon.mesos. " + last[i].addr()
	})
}

func writeLines(path string, n int, line func(int) string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintln(w, line(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// index builds mesos-dns's names of the cluster by hand: per task {task}.marathon,
// {canonical}.marathon, {task}.marathon.slave, {canonical}.slave (A), and _{task}._tcp.marathon,
// _{task}._tcp.marathon.slave (SRV to {canonical}.slave). The hash in {canonical} is not
// mesos-dns's (FNV instead of zbase32 of SHA-1): only the names' lengths matter here.
func index() *dnsserver.RecordIndex {
	sets := map[string]*dnsserver.RecordSet{}
	get := func(name string) *dnsserver.RecordSet {
		rs := sets[name]
		if rs == nil {
			rs = &dnsserver.RecordSet{}
			sets[name] = rs
		}
		return rs
	}
	for _, t := range cluster(shapes["10k"]) {
		h := fnv.New32a()
		h.Write([]byte(t.id))
		canonical := fmt.Sprintf("%s-%05x-s%d", t.app, h.Sum32()&0xFFFFF, t.agent)
		agent := netip.MustParseAddr(agentIP(t.agent))
		for _, n := range []string{t.app + ".marathon.mesos.", canonical + ".marathon.mesos."} {
			get(n).A = append(get(n).A, t.ip)
		}
		for _, n := range []string{t.app + ".marathon.slave.mesos.", canonical + ".slave.mesos."} {
			get(n).A = append(get(n).A, agent)
		}
		srv := dnsserver.SRV{Target: canonical + ".slave.mesos.", Port: uint16(t.port)}
		for _, n := range []string{"_" + t.app + "._tcp.marathon.mesos.", "_" + t.app + "._tcp.marathon.slave.mesos."} {
			get(n).SRV = append(get(n).SRV, srv)
		}
	}
	get("ns1.mesos.").A = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	return dnsserver.NewRecordIndex("mesos.", 1, sets)
}

// serve runs dnsserver on the hand-built index until SIGINT or SIGTERM.
func serve(listen, profile string, baseline bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ix := index()
	if baseline {
		return serveBaseline(ctx, listen, ix)
	}
	s, err := dnsserver.New(dnsserver.Config{Listen: listen, Domain: "mesos", NegativeTTL: 5, Logger: log})
	if err != nil {
		return err
	}
	s.SetIndex(ix)
	log.Info("serving the benchmark cluster", "names", ix.Len())
	return s.Run(ctx)
}

// serveBaseline answers A and SRV queries of ix the textbook miekg/dns way: dns.Server's
// goroutine per packet, a dns.Msg built and packed per answer. It is what dnsserver's wire-format
// answers are measured against.
func serveBaseline(ctx context.Context, listen string, ix *dnsserver.RecordIndex) error {
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		q := r.Question[0]
		rs := ix.Lookup(strings.ToLower(q.Name))
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60}
		switch {
		case rs == nil:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			for _, ip := range rs.A {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.AsSlice()})
			}
		case q.Qtype == dns.TypeSRV:
			hdr.Rrtype = dns.TypeSRV
			for _, s := range rs.SRV {
				m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr, Target: s.Target, Port: s.Port})
			}
		}
		m.Truncate(512)
		w.WriteMsg(m)
	})
	srv := &dns.Server{Addr: listen, Net: "udp", Handler: h}
	go func() {
		<-ctx.Done()
		srv.Shutdown()
	}()
	return srv.ListenAndServe()
}

// freePort finds a loopback port that is free for TCP and UDP alike.
func freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no loopback port free for both UDP and TCP")
}
