package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Checks of ZooKeeper.
const (
	CheckZKMember     = "zookeeper member"
	CheckZKQuorum     = "zookeeper quorum"
	CheckMesosZK      = "mesos zookeeper"
	zkWhitelistHelp   = "4lw.commands.whitelist=srvr,ruok in zoo.cfg"
	zkNotServing      = "This ZooKeeper instance is not currently serving requests"
	zkNotWhitelisted  = "is not executed because it is not in the whitelist"
	infoPrefix        = "json.info_"
	maxFourLetterWord = 64 << 10
)

// zkMember is what one ZooKeeper member said.
type zkMember struct {
	addr    string
	err     error  // unreachable, or srvr unusable
	ruok    string // "imok", "not whitelisted", or what it answered
	serving bool
	mode    string // leader, follower, observer, standalone
	zxid    uint64
}

func (m zkMember) epoch() uint64 { return m.zxid >> 32 }

// fourLetterWord sends a ZooKeeper four-letter command and returns the answer.
func fourLetterWord(ctx context.Context, addr, cmd string, timeout time.Duration) (string, error) {
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", fmt.Errorf("sending %s: %w", cmd, err)
	}
	b, err := io.ReadAll(io.LimitReader(c, maxFourLetterWord))
	if err != nil && len(b) == 0 {
		return "", fmt.Errorf("reading the answer to %s: %w", cmd, err)
	}
	return string(b), nil
}

// probeZKMember asks one member ruok and srvr.
func (d *Doctor) probeZKMember(ctx context.Context, addr string) zkMember {
	m := zkMember{addr: addr}
	ruok, err := fourLetterWord(ctx, addr, "ruok", d.cfg.Timeout)
	if err != nil {
		m.err = err
		return m
	}
	switch {
	case ruok == "imok":
		m.ruok = "imok"
	case strings.Contains(ruok, zkNotWhitelisted):
		m.ruok = "not whitelisted"
	case ruok == "":
		m.ruok = "no answer"
	default:
		m.ruok = strings.TrimSpace(ruok)
	}
	srvr, err := fourLetterWord(ctx, addr, "srvr", d.cfg.Timeout)
	if err != nil {
		m.err = err
		return m
	}
	m.parseSrvr(srvr)
	return m
}

// parseSrvr reads srvr's "Zxid: 0x…" and "Mode: …" lines.
func (m *zkMember) parseSrvr(out string) {
	switch {
	case strings.Contains(out, zkNotServing):
		m.err = errors.New("up but not serving requests (it is not in a quorum)")
		return
	case strings.Contains(out, zkNotWhitelisted):
		m.err = errors.New("srvr is not whitelisted: set " + zkWhitelistHelp)
		return
	}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Mode":
			m.mode = v
		case "Zxid":
			if z, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64); err == nil {
				m.zxid = z
			}
		}
	}
	if m.mode == "" {
		m.err = fmt.Errorf("srvr answered without a Mode line: %q", firstLine(out))
		return
	}
	m.serving = true
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) > 120 {
		line = line[:120] + "…"
	}
	return line
}

// checkZooKeeper probes every member and judges the quorum.
func (d *Doctor) checkZooKeeper(ctx context.Context, out *findings) {
	members := make([]zkMember, len(d.cfg.ZooKeeper))
	var wg sync.WaitGroup
	for i, addr := range d.cfg.ZooKeeper {
		wg.Go(func() { members[i] = d.probeZKMember(ctx, addr) })
	}
	wg.Wait()
	for _, f := range judgeZooKeeper(members) {
		out.add(f)
	}
}

// judgeZooKeeper turns the members' answers into findings: one per member and one for the
// quorum. A member down is a warning while a majority serves, an error otherwise.
func judgeZooKeeper(members []zkMember) []Finding {
	n := len(members)
	var serving, down, leaders, standalone []string
	var leaderEpoch uint64
	for _, m := range members {
		switch {
		case !m.serving:
			down = append(down, m.addr)
		case m.mode == "leader":
			leaders = append(leaders, m.addr)
			leaderEpoch = m.epoch()
			serving = append(serving, m.addr)
		case m.mode == "standalone":
			standalone = append(standalone, m.addr)
			serving = append(serving, m.addr)
		default:
			serving = append(serving, m.addr)
		}
	}
	majority := n/2 + 1
	quorum := len(serving) >= majority
	downSeverity := SeverityError
	if quorum {
		downSeverity = SeverityWarn
	}
	ensemble := strings.Join(addrsOf(members), ",")

	var out []Finding
	for _, m := range members {
		f := Finding{Check: CheckZKMember, Target: m.addr}
		switch {
		case m.err != nil && !m.serving && strings.Contains(m.err.Error(), "whitelist"):
			f.Severity, f.Message = SeverityWarn, m.err.Error()
			f.Fix = "allow the four-letter words the doctor uses: " + zkWhitelistHelp
		case !m.serving:
			f.Severity, f.Message = downSeverity, "down: "+errString(m.err)
			f.Fix = fmt.Sprintf("start ZooKeeper on %s and check its log; it must reach the other members on their quorum and election ports", m.addr)
		case m.mode == "standalone" && n > 1:
			f.Severity = SeverityError
			f.Message = fmt.Sprintf("runs standalone, not as a member of the %d-member ensemble", n)
			f.Fix = "list every member as server.N=host:2888:3888 in zoo.cfg on each member, give each its myid, and restart it"
		case len(leaders) == 1 && m.mode == "follower" && m.epoch() != leaderEpoch:
			f.Severity = SeverityWarn
			f.Message = fmt.Sprintf("follower at epoch %d while the leader %s is at epoch %d (zxid 0x%x): still syncing, or following another leader", m.epoch(), leaders[0], leaderEpoch, m.zxid)
			f.Fix = "run the doctor again; if it persists, check that every member's zoo.cfg lists the same servers"
		default:
			f.Severity = SeverityOK
			f.Message = fmt.Sprintf("%s, zxid 0x%x (epoch %d)", m.mode, m.zxid, m.epoch())
			if m.ruok != "imok" && m.ruok != "" {
				f.Message += "; ruok: " + m.ruok
			}
		}
		out = append(out, f)
	}

	q := Finding{Check: CheckZKQuorum, Target: ensemble}
	switch {
	case n == 1 && len(standalone) == 1:
		q.Severity, q.Message = SeverityOK, "one standalone server serving (no redundancy)"
	case !quorum:
		q.Severity = SeverityError
		q.Message = fmt.Sprintf("no quorum: %d of %d members serving, %d needed; down: %s", len(serving), n, majority, strings.Join(down, ", "))
		q.Fix = "start the members that are down; Mesos masters and Marathon stop working without a ZooKeeper quorum"
	case len(standalone) > 0 && n > 1:
		q.Severity = SeverityError
		q.Message = fmt.Sprintf("not one ensemble: %s run standalone", strings.Join(standalone, ", "))
		q.Fix = "give every member the same server.N lines in zoo.cfg and restart the standalone ones"
	case len(leaders) > 1:
		q.Severity = SeverityError
		q.Message = fmt.Sprintf("more than one ensemble: %s each lead", strings.Join(leaders, " and "))
		q.Fix = "give every member the same server.N lines in zoo.cfg; the members listed here belong to different ensembles"
	case len(leaders) == 0:
		q.Severity = SeverityError
		q.Message = fmt.Sprintf("%d of %d members serving but none leads", len(serving), n)
		q.Fix = "check the members' logs for the leader election"
	case len(down) > 0:
		q.Severity = SeverityWarn
		q.Message = fmt.Sprintf("still a quorum (%d of %d members serving, leader %s) but %s down: one more failure %s",
			len(serving), n, leaders[0], strings.Join(down, ", "), oneMoreFailure(len(serving), majority))
		q.Fix = "start ZooKeeper again on " + strings.Join(down, ", ")
	default:
		q.Severity = SeverityOK
		q.Message = fmt.Sprintf("%d of %d members in one quorum, leader %s at epoch %d", len(serving), n, leaders[0], leaderEpoch)
	}
	return append(out, q)
}

func oneMoreFailure(serving, majority int) string {
	if serving-1 < majority {
		return "loses the quorum"
	}
	return "is still survivable"
}

func addrsOf(members []zkMember) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = m.addr
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return "no answer"
	}
	return err.Error()
}

// zkRegistration is a Mesos master's json.info_ node.
type zkRegistration struct {
	node    string
	seq     int
	addr    string // ip:port
	host    string
	created time.Time
}

// mesosZK is what ZooKeeper says about the Mesos masters.
type mesosZK struct {
	err     error
	regs    []zkRegistration // by sequence: regs[0] leads
	highest int              // the highest sequence number handed out so far
}

func (z mesosZK) leader() string {
	if z.err != nil || len(z.regs) == 0 {
		return ""
	}
	return z.regs[0].addr
}

// readMesosZK reads the json.info_ nodes under the Mesos path.
func (d *Doctor) readMesosZK(ctx context.Context) mesosZK {
	servers := d.cfg.ZooKeeper
	conn, events, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietZKLogger{}))
	if err != nil {
		return mesosZK{err: fmt.Errorf("connecting to ZooKeeper %v: %w", servers, err)}
	}
	defer conn.Close()
	wait, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	for connected := false; !connected; {
		select {
		case ev := <-events:
			connected = ev.State == zk.StateHasSession
		case <-wait.Done():
			return mesosZK{err: fmt.Errorf("no ZooKeeper session with %v within %s", servers, d.cfg.Timeout)}
		}
	}
	p := d.cfg.MesosZKPath
	children, _, err := conn.Children(p)
	if err != nil {
		return mesosZK{err: fmt.Errorf("listing %s in ZooKeeper: %w", p, err)}
	}
	var z mesosZK
	for _, c := range children {
		if !strings.HasPrefix(c, infoPrefix) {
			continue
		}
		seq, err := strconv.Atoi(strings.TrimPrefix(c, infoPrefix))
		if err != nil {
			continue
		}
		z.highest = max(z.highest, seq)
		data, stat, err := conn.Get(path.Join(p, c))
		if errors.Is(err, zk.ErrNoNode) {
			continue // the master went away while we listed
		}
		if err != nil {
			return mesosZK{err: fmt.Errorf("reading %s in ZooKeeper: %w", path.Join(p, c), err)}
		}
		r := zkRegistration{node: path.Join(p, c), seq: seq, created: time.UnixMilli(stat.Ctime)}
		r.addr, r.host = parseMasterInfo(data)
		z.regs = append(z.regs, r)
	}
	slices.SortFunc(z.regs, func(a, b zkRegistration) int { return a.seq - b.seq })
	return z
}

// parseMasterInfo reads the address a json.info_ node announces: "address" (Mesos 1.0+), else
// the uint32 "ip" in network byte order and "port".
func parseMasterInfo(data []byte) (addr, host string) {
	var info struct {
		Hostname string `json:"hostname"`
		IP       uint32 `json:"ip"`
		Port     int    `json:"port"`
		Address  *struct {
			Hostname string `json:"hostname"`
			IP       string `json:"ip"`
			Port     int    `json:"port"`
		} `json:"address"`
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return "", ""
	}
	if a := info.Address; a != nil && a.IP != "" {
		return net.JoinHostPort(a.IP, strconv.Itoa(a.Port)), a.Hostname
	}
	if info.IP == 0 {
		return "", info.Hostname
	}
	ip := net.IPv4(byte(info.IP), byte(info.IP>>8), byte(info.IP>>16), byte(info.IP>>24))
	return net.JoinHostPort(ip.String(), strconv.Itoa(info.Port)), info.Hostname
}

// judgeMesosZK reports the masters' registrations: none is an error; a leader that registered
// within the flap window means leadership changed recently.
func (d *Doctor) judgeMesosZK(z mesosZK, now time.Time) Finding {
	f := Finding{Check: CheckMesosZK, Target: strings.Join(d.cfg.ZooKeeper, ",") + d.cfg.MesosZKPath}
	switch {
	case errors.Is(z.err, zk.ErrNoNode) || (z.err == nil && len(z.regs) == 0):
		f.Severity = SeverityError
		f.Message = fmt.Sprintf("no Mesos master registered under %s", d.cfg.MesosZKPath)
		f.Fix = "start the masters with --zk=zk://" + strings.Join(d.cfg.ZooKeeper, ",") + d.cfg.MesosZKPath + " (or pass the path they use with --mesos-zk-path)"
	case z.err != nil:
		f.Severity, f.Message = SeverityError, z.err.Error()
		f.Fix = "check that ZooKeeper serves (see the zookeeper checks) and that this host may read " + d.cfg.MesosZKPath
	default:
		lead := z.regs[0]
		age := now.Sub(lead.created).Round(time.Second)
		f.Message = fmt.Sprintf("%s registered; %s leads (%s), registered %s ago; %s since the path was created",
			plural(len(z.regs), "master"), lead.addr, lead.node, age, plural(z.highest+1, "registration"))
		f.Severity = SeverityOK
		if age < d.cfg.FlapWindow {
			f.Severity = SeverityWarn
			f.Message = fmt.Sprintf("leadership changed %s ago: the leading master %s registered in ZooKeeper then (%s registered, %s in all)",
				age, lead.addr, plural(len(z.regs), "master"), plural(z.highest+1, "registration"))
			f.Fix = "if this repeats, masters are flapping: check their logs for lost ZooKeeper sessions and raise --zk_session_timeout, or fix the network between masters and ZooKeeper"
		}
	}
	return f
}

// plural is "1 master", "2 masters".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// quietZKLogger drops go-zookeeper's connection chatter.
type quietZKLogger struct{}

func (quietZKLogger) Printf(string, ...any) {}
