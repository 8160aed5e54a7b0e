package fakemesos

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// MasterInfo is what a Mesos master writes into its json.info_ node in ZooKeeper (the JSON
// form of the MasterInfo protobuf).
type MasterInfo struct {
	ID       string
	Hostname string
	// IP is an IPv4 address: Mesos writes it as a uint32 in network byte order ("ip"), and
	// since 1.0 also as text in "address".
	IP      string
	Port    int
	Version string
	// Legacy leaves "address" out, as Mesos before 1.0 did: readers must decode the uint32.
	Legacy bool
}

// NewMasterInfo returns the MasterInfo of a master at addr ("ip:port", IPv4).
func NewMasterInfo(addr string) MasterInfo {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	port, _ := strconv.Atoi(portStr)
	return MasterInfo{
		ID:       fmt.Sprintf("20150101-000000-%d-%d-1", IPToUint32(host), port),
		Hostname: host,
		IP:       host,
		Port:     port,
		Version:  "1.11.0",
	}
}

// IPToUint32 encodes an IPv4 address the way Mesos stores MasterInfo.ip: the address's four
// bytes in network order, read as a little-endian uint32 (127.0.0.1 → 16777343). It returns 0
// for anything that is not IPv4.
func IPToUint32(ip string) uint32 {
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		return 0
	}
	return uint32(v4[0]) | uint32(v4[1])<<8 | uint32(v4[2])<<16 | uint32(v4[3])<<24
}

func (i MasterInfo) object() map[string]any {
	o := map[string]any{
		"id":       i.ID,
		"hostname": i.Hostname,
		"ip":       IPToUint32(i.IP),
		"port":     i.Port,
		"pid":      "master@" + net.JoinHostPort(i.IP, strconv.Itoa(i.Port)),
		"version":  i.Version,
	}
	if !i.Legacy {
		o["address"] = map[string]any{"hostname": i.Hostname, "ip": i.IP, "port": i.Port}
	}
	return o
}

// JSON is the node's content.
func (i MasterInfo) JSON() []byte {
	b, _ := json.Marshal(i.object()) // strings and numbers only
	return b
}

// ZKRegistrar announces fake masters in a real ZooKeeper the way Mesos masters do: one
// sequential json.info_ node per master under a path such as /mesos; the lowest sequence
// leads.
type ZKRegistrar struct {
	conn *zk.Conn
	path string
}

// NewZKRegistrar connects to ZooKeeper (servers as "host:port") and waits for a session. path
// is the Mesos ZooKeeper path (the path part of --zk / --mesos-zk); it is created if missing.
func NewZKRegistrar(servers []string, path string) (*ZKRegistrar, error) {
	conn, events, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		return nil, fmt.Errorf("fakemesos: ZooKeeper %v: %w", servers, err)
	}
	timeout := time.After(30 * time.Second)
	for waiting := true; waiting; {
		select {
		case ev := <-events:
			waiting = ev.State != zk.StateHasSession
		case <-timeout:
			conn.Close()
			return nil, fmt.Errorf("fakemesos: no ZooKeeper session with %v within 30s", servers)
		}
	}
	r := &ZKRegistrar{conn: conn, path: strings.TrimRight(path, "/")}
	if err := r.ensurePath(); err != nil {
		conn.Close()
		return nil, err
	}
	return r, nil
}

// ensurePath creates every missing node of the registrar's path.
func (r *ZKRegistrar) ensurePath() error {
	p := ""
	for _, part := range strings.Split(strings.Trim(r.path, "/"), "/") {
		p += "/" + part
		_, err := r.conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll))
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("fakemesos: creating %s in ZooKeeper: %w", p, err)
		}
	}
	return nil
}

// Register writes a json.info_ node holding info and returns its full path. An ephemeral node
// vanishes with the registrar's session (Close, or an expiry while ZooKeeper is down), as a
// real master's does; a persistent one stays until Unregister.
func (r *ZKRegistrar) Register(info MasterInfo, ephemeral bool) (string, error) {
	return r.RegisterRaw(info.JSON(), ephemeral)
}

// RegisterRaw writes a json.info_ node with arbitrary content (to test bad MasterInfo).
func (r *ZKRegistrar) RegisterRaw(data []byte, ephemeral bool) (string, error) {
	flags := zk.FlagSequence
	if ephemeral {
		flags |= zk.FlagEphemeral
	}
	node, err := r.conn.Create(path.Join(r.path, "json.info_"), data, int32(flags), zk.WorldACL(zk.PermAll))
	if err != nil {
		return "", fmt.Errorf("fakemesos: creating a json.info_ node under %s: %w", r.path, err)
	}
	return node, nil
}

// Unregister deletes a node Register returned, as when its master dies.
func (r *ZKRegistrar) Unregister(node string) error {
	if err := r.conn.Delete(node, -1); err != nil {
		return fmt.Errorf("fakemesos: deleting %s: %w", node, err)
	}
	return nil
}

// Close ends the session: ZooKeeper removes its ephemeral nodes.
func (r *ZKRegistrar) Close() { r.conn.Close() }

// quietLogger drops go-zookeeper's log lines (connection chatter while ZooKeeper is down).
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
