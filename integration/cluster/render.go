package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Formats Render knows.
const (
	// FormatCompose is one docker-compose.yml running the whole topology on one machine.
	FormatCompose = "compose"
	// FormatSystemd is, per host, the systemd units and the configuration files of Debian-style
	// zookeeper, mesos and marathon packages.
	FormatSystemd = "systemd"
)

// Formats lists the formats Render knows, for messages.
var Formats = []string{FormatCompose, FormatSystemd}

// Paths every format shares.
const (
	// ComposeFile is the compose output's file.
	ComposeFile = "docker-compose.yml"
	// HostEnvFile is what the host-IP unit writes and every other unit reads (HOST_IP, HOST_NAME).
	HostEnvFile = "/run/lodestar-cluster/host.env"
	// executorRegistrationTimeout is the agents' executor_registration_timeout: with Mesos'
	// default of one minute, Docker tasks whose image pull takes longer are killed.
	executorRegistrationTimeout = "5mins"
)

// Render renders the topology in format ("compose" or "systemd") as files: relative path →
// content. The output is deterministic. Both formats include dns/named.conf.<domain> (the bind9
// forward zone) and dns/resolv.conf (the nameserver lines).
func Render(t *Topology, format string) (map[string][]byte, error) {
	if _, err := t.Validate(); err != nil {
		return nil, fmt.Errorf("topology %q: %w", t.Name, err)
	}
	var files map[string][]byte
	var err error
	switch format {
	case FormatCompose:
		files, err = renderCompose(t)
	case FormatSystemd:
		files, err = renderSystemd(t)
	default:
		return nil, fmt.Errorf("format %q: use %s", format, strings.Join(Formats, " or "))
	}
	if err != nil {
		return nil, err
	}
	maps.Copy(files, renderDNS(t, format))
	return files, nil
}

// WriteFiles writes files under dir, creating directories. A file that exists with other
// content is refused (all of them are listed, nothing is written) unless overwrite is set;
// one with the same content is left alone. Other files in dir are never touched. It returns
// the paths it wrote, sorted.
func WriteFiles(dir string, files map[string][]byte, overwrite bool) ([]string, error) {
	paths := slices.Sorted(maps.Keys(files))
	var differ, write []string
	for _, p := range paths {
		if !filepath.IsLocal(p) {
			return nil, fmt.Errorf("refusing to write %q outside %s", p, dir)
		}
		old, err := os.ReadFile(filepath.Join(dir, p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			write = append(write, p)
		case err != nil:
			return nil, err
		case !bytes.Equal(old, files[p]):
			differ = append(differ, p)
			write = append(write, p)
		}
	}
	if len(differ) > 0 && !overwrite {
		return nil, fmt.Errorf("%s: %d files exist with other content (%s); render into an empty directory or pass --force to overwrite them",
			dir, len(differ), strings.Join(differ, ", "))
	}
	for _, p := range write {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".sh") {
			mode = 0o755
		}
		tmp := full + ".tmp"
		if err := os.WriteFile(tmp, files[p], mode); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, full); err != nil {
			return nil, err
		}
	}
	return write, nil
}

// zkServerLine is one host's server.N line value: "ip:peer:election".
func zkServerLine(h Host) string {
	return hostPort(h.IP, h.ZKPeerPort) + ":" + itoa(h.ZKElectionPort)
}

// fourLetterWords are the ZooKeeper four-letter commands lodestar cluster doctor and operators use.
const fourLetterWords = "ruok,srvr,stat,mntr,conf,isro"

// ZooCfg renders host h's zoo.cfg with its data in dataDir: classic server lines for the whole
// ensemble, the client port on the host's IP, the admin server off and the four-letter words
// `lodestar cluster doctor` needs.
func (t *Topology) ZooCfg(h Host, dataDir string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# ZooKeeper member %d of cluster %q on host %q.\n", h.ZKID, t.Name, h.Name)
	b.WriteString(generatedBy(FormatSystemd, "#"))
	b.WriteString("tickTime=2000\ninitLimit=10\nsyncLimit=5\n")
	fmt.Fprintf(&b, "dataDir=%s\n", dataDir)
	fmt.Fprintf(&b, "clientPort=%d\nclientPortAddress=%s\n", h.ZKClientPort, h.IP)
	b.WriteString("maxClientCnxns=0\nautopurge.snapRetainCount=5\nautopurge.purgeInterval=24\n")
	b.WriteString("admin.enableServer=false\n")
	fmt.Fprintf(&b, "4lw.commands.whitelist=%s\n", fourLetterWords)
	for _, z := range t.HostsWithRole(RoleZK) {
		fmt.Fprintf(&b, "server.%d=%s\n", z.ZKID, zkServerLine(z))
	}
	return []byte(b.String())
}

// aclRule is one Mesos ACL entry: who (principals) may act on what.
type aclRule map[string]aclEntity

type aclEntity struct {
	Values []string `json:"values,omitempty"`
	Type   string   `json:"type,omitempty"`
}

// ACLs renders the Mesos masters' ACL JSON (--acls): Marathon's principal may register for its
// role, run tasks as any user, and reserve, unreserve, create and destroy the persistent
// volumes of that role. Everything else stays permitted (permissive), as without --acls.
func (t *Topology) ACLs() []byte {
	principal := aclEntity{Values: []string{t.Marathon.Principal}}
	role := aclEntity{Values: []string{t.Marathon.Role}}
	acls := struct {
		Permissive         bool      `json:"permissive"`
		RegisterFrameworks []aclRule `json:"register_frameworks"`
		RunTasks           []aclRule `json:"run_tasks"`
		ReserveResources   []aclRule `json:"reserve_resources"`
		UnreserveResources []aclRule `json:"unreserve_resources"`
		CreateVolumes      []aclRule `json:"create_volumes"`
		DestroyVolumes     []aclRule `json:"destroy_volumes"`
	}{
		Permissive:         true,
		RegisterFrameworks: []aclRule{{"principals": principal, "roles": role}},
		RunTasks:           []aclRule{{"principals": principal, "users": {Type: "ANY"}}},
		ReserveResources:   []aclRule{{"principals": principal, "roles": role}},
		UnreserveResources: []aclRule{{"principals": principal, "reserver_principals": principal}},
		CreateVolumes:      []aclRule{{"principals": principal, "roles": role}},
		DestroyVolumes:     []aclRule{{"principals": principal, "creator_principals": principal}},
	}
	out, err := json.MarshalIndent(acls, "", "  ")
	if err != nil {
		panic(err) // only maps of strings: cannot fail
	}
	return append(out, '\n')
}

// agentAttributes is MESOS_ATTRIBUTES / --attributes: "k:v;k:v", sorted by name.
func agentAttributes(h Host) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(h.AgentAttributes)) {
		parts = append(parts, k+":"+h.AgentAttributes[k])
	}
	return strings.Join(parts, ";")
}

// generatedBy is the header line of every rendered file, as a comment.
func generatedBy(format, comment string) string {
	return fmt.Sprintf("%s Generated by `lodestar cluster render --format %s`: edit the topology, not this file.\n", comment, format)
}

func itoa(i int) string { return strconv.Itoa(i) }
