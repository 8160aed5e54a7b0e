package zkrules

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
)

// target is a parsed --zk-rules URL.
type target struct {
	servers []string // "host:port", in the URL's order
	path    string   // the rules' parent znode, e.g. "/lodestar/services"
	user    string   // digest auth user, "" for none
	auth    string   // "user:password" for digest auth, "" for none
}

// where names the servers and path (never the password) in errors and logs.
func (t target) where() string {
	return strings.Join(t.servers, ",") + t.path
}

// parseURL parses zk://[user:password@]host[:port][,host[:port]…]/path. A host without a
// port gets 2181; IPv6 addresses go in brackets.
func parseURL(raw string) (target, error) {
	var t target
	bad := func(why string) error {
		return fmt.Errorf("bad ZooKeeper URL %q: %s; want zk://host1:2181,host2:2181/lodestar/services", discovery.RedactZKURL(raw), why)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(raw), "zk://")
	if !ok {
		return t, bad("it does not start with zk://")
	}
	hosts, path, ok := strings.Cut(rest, "/")
	if !ok || strings.Trim(path, "/") == "" {
		return t, bad("no znode path after the hosts")
	}
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		t.auth, hosts = hosts[:at], hosts[at+1:]
		t.user, _, _ = strings.Cut(t.auth, ":")
		if t.user == "" {
			return t, bad("credentials without a user name")
		}
	}
	for h := range strings.SplitSeq(hosts, ",") {
		server, err := hostPort(strings.TrimSpace(h))
		if err != nil && t.auth == "" && strings.Contains(path, "@") {
			// Credentials whose password holds a "/": the host named is part of it.
			return t, bad(`the password holds a "/", which the URL cannot carry`)
		}
		if err != nil {
			return t, bad(err.Error())
		}
		t.servers = append(t.servers, server)
	}
	t.path = "/" + strings.TrimRight(path, "/")
	for part := range strings.SplitSeq(t.path[1:], "/") {
		if part == "" || part == "." || part == ".." {
			return t, bad(fmt.Sprintf("znode path %q has an empty, . or .. component", t.path))
		}
	}
	return t, nil
}

// hostPort validates "host[:port]" and adds ZooKeeper's default port when there is none.
func hostPort(h string) (string, error) {
	if h == "" {
		return "", errors.New("an empty host")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: a name, an IPv4 address or a bracketed IPv6 address.
		host, port = h, "2181"
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			host = h[1 : len(h)-1]
			if net.ParseIP(host) == nil {
				return "", fmt.Errorf("bad host %q", h)
			}
		}
	}
	if host == "" || strings.ContainsAny(host, "[]/@ ") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return "", fmt.Errorf("bad host %q", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port in %q", h)
	}
	return net.JoinHostPort(host, port), nil
}
