package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/lodestar-lb/lodestar/integration/fakemarathon"
	"github.com/lodestar-lb/lodestar/integration/fakemesos"
)

// Roles a lab host can run as a child process (the test binary re-executed; see RunRole).
const (
	// RoleMarathon is a fake Marathon on LAB_ADDR serving the apps of LAB_APPS (a
	// /v2/apps fixture) with every task's host rewritten to LAB_TASK_HOST, and Marathon's
	// framework id LAB_FRAMEWORK_ID.
	RoleMarathon = "marathon"
	// RoleMesosMaster is a fake Mesos master on LAB_ADDR, leading since an hour, listing the
	// agent LAB_AGENT ("ip:port"), registered in the ZooKeeper ensemble LAB_ZK (host:port,…)
	// under LAB_ZK_PATH.
	RoleMesosMaster = "mesos-master"
	// RoleAgent is a fake Mesos agent on LAB_ADDR (its /flags) and, as its tasks, an HTTP
	// backend on each port of LAB_BACKEND_PORTS on the same IP, answering "backend <port>".
	RoleAgent = "agent"
	// RoleDNSUpstream is a resolver on LAB_ADDR (UDP and TCP) answering A queries under
	// example.org. with 192.0.2.1, TTL 300, and NXDOMAIN for other names.
	RoleDNSUpstream = "dns-upstream"
)

// roleEnv names the role a re-executed test binary runs; roleReady is the line a role prints
// on stdout once it serves.
const (
	roleEnv   = "LODESTAR_LAB_ROLE"
	roleReady = "lab-role-ready"
)

// roleStartTimeout bounds a role's start (a ZooKeeper session included).
const roleStartTimeout = 60 * time.Second

// RunRole runs the role named by LODESTAR_LAB_ROLE when the process was started as one, and
// exits; otherwise it returns at once. The lab's TestMain calls it first thing.
func RunRole() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := runRole(ctx, role); err != nil {
		fmt.Fprintf(os.Stderr, "lab role %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runRole(ctx context.Context, role string) error {
	addr := os.Getenv("LAB_ADDR")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("LAB_ADDR %q: %w", addr, err)
	}
	var stopRole func()
	var err error
	switch role {
	case RoleMarathon:
		stopRole, err = startMarathon(addr)
	case RoleMesosMaster:
		stopRole, err = startMesosMaster(addr)
	case RoleAgent:
		stopRole, err = startAgent(addr)
	case RoleDNSUpstream:
		stopRole, err = startDNSUpstream(addr)
	default:
		return fmt.Errorf("unknown role (known: %s, %s, %s, %s)", RoleMarathon, RoleMesosMaster, RoleAgent, RoleDNSUpstream)
	}
	if err != nil {
		return err
	}
	fmt.Println(roleReady)
	<-ctx.Done()
	stopRole()
	return nil
}

func startMarathon(addr string) (func(), error) {
	taskHost := os.Getenv("LAB_TASK_HOST")
	if net.ParseIP(taskHost) == nil {
		return nil, fmt.Errorf("LAB_TASK_HOST %q is not an IP", taskHost)
	}
	apps, err := appsOnHost(os.Getenv("LAB_APPS"), taskHost)
	if err != nil {
		return nil, err
	}
	m := fakemarathon.New()
	m.Addr = addr
	if err := m.LoadApps(apps); err != nil {
		return nil, err
	}
	m.SetInfo(func(info map[string]any) {
		info["frameworkId"] = os.Getenv("LAB_FRAMEWORK_ID")
		mc, _ := info["marathon_config"].(map[string]any)
		if mc != nil {
			mc["mesos_role"], mc["mesos_authentication_principal"] = "marathon", "marathon"
		}
	})
	if err := m.Start(); err != nil {
		return nil, err
	}
	return m.Close, nil
}

func startMesosMaster(addr string) (func(), error) {
	agent := os.Getenv("LAB_AGENT")
	agentIP, _, err := net.SplitHostPort(agent)
	if err != nil {
		return nil, fmt.Errorf("LAB_AGENT %q: %w", agent, err)
	}
	m := fakemesos.New()
	m.Addr = addr
	if err := m.Start(); err != nil {
		return nil, err
	}
	c := &fakemesos.Cluster{Masters: []*fakemesos.Master{m}}
	host, _, _ := net.SplitHostPort(addr)
	c.EditState(func(st map[string]any) {
		st["hostname"] = host
		st["slaves"] = []any{map[string]any{
			"id": "lab-agent-S0", "hostname": agentIP, "pid": "slave(1)@" + agent, "active": true,
			"attributes": map[string]any{},
			"resources":  map[string]any{"cpus": 4, "mem": 8192, "disk": 40960, "ports": "[31000-32000]"},
		}}
	})
	if err := c.Elect(0, time.Now().Add(-time.Hour)); err != nil {
		m.Close()
		return nil, err
	}
	reg, err := fakemesos.NewZKRegistrar(strings.Split(os.Getenv("LAB_ZK"), ","), os.Getenv("LAB_ZK_PATH"))
	if err != nil {
		m.Close()
		return nil, err
	}
	if _, err := reg.Register(fakemesos.NewMasterInfo(m.HostPort()), true); err != nil {
		reg.Close()
		m.Close()
		return nil, err
	}
	return func() { reg.Close(); m.Close() }, nil
}

func startAgent(addr string) (func(), error) {
	host, _, _ := net.SplitHostPort(addr)
	a, err := fakemesos.StartAgentAt("lab-agent-S0", host, addr)
	if err != nil {
		return nil, err
	}
	if dir := os.Getenv("LAB_FLAGS_DIR"); dir != "" {
		// The flags the render wrote for the agent (/etc/mesos-slave/NAME files), which the
		// real agent's init wrapper would pass it.
		entries, err := os.ReadDir(dir)
		if err != nil {
			a.Close()
			return nil, err
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				a.Close()
				return nil, err
			}
			a.SetFlag(e.Name(), strings.TrimSpace(string(b)))
		}
	}
	var servers []*http.Server
	stop := func() {
		for _, s := range servers {
			_ = s.Close()
		}
		a.Close()
	}
	for _, p := range strings.Split(os.Getenv("LAB_BACKEND_PORTS"), ",") {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			stop()
			return nil, fmt.Errorf("LAB_BACKEND_PORTS: %q is not a port", p)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err != nil {
			stop()
			return nil, err
		}
		body := "backend " + p + "\n"
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(body))
		}), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	return stop, nil
}

// upstreamAnswer is what the DNS upstream role answers for names under example.org.
const upstreamAnswer = "192.0.2.1"

func startDNSUpstream(addr string) (func(), error) {
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) != 1 || !dns.IsSubDomain("example.org.", q.Question[0].Name) {
			m.Rcode = dns.RcodeNameError
		} else if q.Question[0].Qtype == dns.TypeA {
			rr, err := dns.NewRR(q.Question[0].Name + " 300 IN A " + upstreamAnswer)
			if err == nil {
				m.Answer = append(m.Answer, rr)
			}
		}
		_ = w.WriteMsg(m)
	})
	var servers []*dns.Server
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan error, 1)
		s := &dns.Server{Addr: addr, Net: network, Handler: handler,
			NotifyStartedFunc: func() { started <- nil }}
		go func() {
			if err := s.ListenAndServe(); err != nil {
				started <- err
			}
		}()
		if err := <-started; err != nil {
			for _, s := range servers {
				_ = s.Shutdown()
			}
			return nil, fmt.Errorf("DNS upstream %s/%s: %w", addr, network, err)
		}
		servers = append(servers, s)
	}
	return func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
	}, nil
}

// StartRole runs role on the host as a child process (the test binary with
// LODESTAR_LAB_ROLE=role and env) and returns once it serves.
func (h *Host) StartRole(role string, env ...string) (*Proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p, stdout, err := h.start(role, append([]string{roleEnv + "=" + role}, env...), true, self)
	if err != nil {
		return nil, err
	}
	if err := p.waitLine(stdout, roleReady, roleStartTimeout); err != nil {
		p.Stop()
		return nil, errors.Join(fmt.Errorf("host %s: role %s", h.Name, role), err)
	}
	return p, nil
}

// appsOnHost reads a /v2/apps fixture and moves every task to host: the fixture's
// addresses (10.0.x.y) exist nowhere, the lab's agent host serves the tasks' ports.
func appsOnHost(path, host string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Apps []map[string]any `json:"apps"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, app := range doc.Apps {
		tasks, _ := app["tasks"].([]any)
		for _, t := range tasks {
			if task, ok := t.(map[string]any); ok {
				task["host"] = host
				delete(task, "ipAddresses")
			}
		}
	}
	return json.Marshal(doc)
}
