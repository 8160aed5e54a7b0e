package haproxy

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// RuntimeError is an error answer from HAProxy's Runtime API to one command.
type RuntimeError struct {
	Command string
	// Message is HAProxy's answer, for example "No such server.".
	Message string
}

// Error names the command and HAProxy's answer.
func (e *RuntimeError) Error() string {
	return fmt.Sprintf("haproxy runtime command %q: %s", e.Command, e.Message)
}

// RuntimeClient sends Runtime API commands to a HAProxy worker, either directly over an admin
// stats socket (`stats socket <path> mode 600 level admin expose-fd listeners`) or through the
// master CLI to the current worker.
type RuntimeClient struct {
	socket    string
	viaMaster bool
}

// NewRuntimeClient returns a client of the stats socket at socketPath, which must be configured
// with `level admin` for the set/add/del commands.
func NewRuntimeClient(socketPath string) *RuntimeClient {
	return &RuntimeClient{socket: socketPath}
}

// NewRuntimeClientViaMaster returns a client that reaches the current worker through the master
// CLI at masterSocket ("@1 <command>"); it needs no stats socket in the configuration.
func NewRuntimeClientViaMaster(masterSocket string) *RuntimeClient {
	return &RuntimeClient{socket: masterSocket, viaMaster: true}
}

// Socket returns the socket path the client connects to.
func (c *RuntimeClient) Socket() string { return c.socket }

// Exec runs one command and returns HAProxy's answer. An answer that is an error message
// ("No such server.", "Unknown command...") is returned with a *RuntimeError.
func (c *RuntimeClient) Exec(ctx context.Context, cmd string) (string, error) {
	line := cmd
	if c.viaMaster {
		line = "@1 " + cmd
	}
	out, err := cliRoundTrip(ctx, c.socket, line)
	if err != nil {
		return out, err
	}
	if msg, bad := runtimeAnswerError(cmd, out); bad {
		return out, &RuntimeError{Command: cmd, Message: msg}
	}
	return out, nil
}

// ExecAll runs cmds in order over one connection (the CLI's prompt mode, commands pipelined)
// and returns an error naming every command HAProxy answered with an error; HAProxy still runs
// the commands after a failed one. It is meant for the set/add/del commands, whose answers are
// short.
func (c *RuntimeClient) ExecAll(ctx context.Context, cmds []string) error {
	if len(cmds) == 0 {
		return nil
	}
	prefix, sep := "", statsPrompt
	if c.viaMaster {
		prefix, sep = "@1 ", masterPrompt
	}
	answers, err := promptExchange(ctx, c.socket, prefix, sep, cmds)
	if err != nil {
		return err
	}
	var errs []error
	for i, cmd := range cmds {
		if msg, bad := runtimeAnswerError(cmd, answers[i]); bad {
			errs = append(errs, &RuntimeError{Command: cmd, Message: msg})
		}
	}
	return errors.Join(errs...)
}

// The prompts that end every answer in prompt mode: the stats socket prints "\n> ", the master
// CLI "master> ".
const (
	statsPrompt  = "\n> "
	masterPrompt = "master> "
)

// promptExchange switches a CLI connection to prompt mode, pipelines cmds (each prefixed with
// prefix) and returns one answer per command, split on the prompt sep. A reader drains answers
// while the commands are written, so a long batch cannot fill both socket buffers and stall.
func promptExchange(ctx context.Context, socket, prefix, sep string, cmds []string) ([]string, error) {
	for _, cmd := range cmds {
		if strings.ContainsAny(cmd, "\r\n") {
			return nil, fmt.Errorf("command %q: line breaks are not allowed in one CLI command", cmd)
		}
		// HAProxy runs "a;b" as two commands with two answers, which would pair every later
		// answer with the wrong command and hide the last one's failure.
		if unescapedSemicolon(cmd) {
			return nil, fmt.Errorf("command %q: an unescaped ';' makes it two CLI commands; escape it as \\;", cmd)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cliTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("connect to haproxy socket %s: %w", socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var req strings.Builder
	req.WriteString("prompt\n")
	for _, cmd := range cmds {
		req.WriteString(prefix)
		req.WriteString(cmd)
		req.WriteByte('\n')
	}
	req.WriteString("quit\n")
	writeErr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(conn, req.String())
		writeErr <- err
	}()
	// The first prompt answers "prompt" itself.
	want := len(cmds) + 1
	var (
		buf     []byte
		answers []string
		chunk   = make([]byte, 32*1024)
	)
	for len(answers) < want {
		n, err := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for len(answers) < want {
			i := bytes.Index(buf, []byte(sep))
			if i < 0 {
				break
			}
			answers = append(answers, string(buf[:i]))
			buf = buf[i+len(sep):]
		}
		if err != nil && len(answers) < want {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			pending := max(len(answers)-1, 0)
			return nil, fmt.Errorf("runtime commands on %s: answer to %q: %w", socket, cmds[pending], err)
		}
	}
	if err := <-writeErr; err != nil && !isConnEnd(err) {
		return nil, fmt.Errorf("send runtime commands to %s: %w", socket, err)
	}
	return answers[1:], nil
}

// Answers by which HAProxy 2.6 reports success of a command that otherwise prints nothing.
var runtimeOKPhrases = []string{"changed from", "no need to change", "New server registered", "Server deleted", "Done."}

// Commands that print nothing when they succeed, or only one of runtimeOKPhrases (add and
// del server): any other answer is an error message.
var runtimeQuietPrefixes = []string{
	"add server ", "del server ",
	"set server ", "set weight ", "set maxconn ", "add map ", "del map ", "set map ", "clear map ",
	"add acl ", "del acl ", "clear acl ", "enable ", "disable ", "commit ", "shutdown ",
}

// Leading words of HAProxy's error answers, for commands that print something on success.
var runtimeErrorPrefixes = []string{
	"Unknown ", "No such", "Require ", "Invalid", "Permission denied", "Can't",
	"Cannot", "Missing", "Key not found", "Not found", "Unable", "Failed",
}

// runtimeAnswerError decides whether out, HAProxy's answer to cmd, reports an error. HAProxy
// 2.6's CLI has no status code: an error is a message, and success is either nothing or a
// known phrase.
func runtimeAnswerError(cmd, out string) (string, bool) {
	msg := strings.TrimSpace(out)
	if msg == "" {
		return "", false
	}
	first, _, _ := strings.Cut(msg, "\n")
	for _, p := range runtimeOKPhrases {
		if strings.Contains(first, p) {
			return "", false
		}
	}
	for _, p := range runtimeQuietPrefixes {
		if strings.HasPrefix(cmd, p) {
			return first, true
		}
	}
	for _, p := range runtimeErrorPrefixes {
		if strings.HasPrefix(first, p) {
			return first, true
		}
	}
	return "", false
}

// unescapedSemicolon reports whether cmd has a ';' that no backslash escapes.
func unescapedSemicolon(cmd string) bool {
	for i := 0; i < len(cmd); i++ {
		switch cmd[i] {
		case '\\':
			i++
		case ';':
			return true
		}
	}
	return false
}

// cliArg escapes a Runtime API argument: the CLI splits words on spaces and commands on ';',
// and a backslash escapes either.
func cliArg(s string) string {
	r := strings.NewReplacer(`\`, `\\`, " ", `\ `, ";", `\;`)
	return r.Replace(s)
}

// SetServerAddrCommand returns `set server B/S addr IP port P` (without the port when port is
// 0), after checking that ip is an IP address and port a TCP port.
func SetServerAddrCommand(backend, server, ip string, port int) (string, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "", fmt.Errorf("server %s/%s: address %q: %w", backend, server, ip, err)
	}
	if port < 0 || port > 65535 {
		return "", fmt.Errorf("server %s/%s: port %d out of range 1-65535", backend, server, port)
	}
	cmd := fmt.Sprintf("set server %s/%s addr %s", cliArg(backend), cliArg(server), addr)
	if port > 0 {
		cmd += " port " + strconv.Itoa(port)
	}
	return cmd, nil
}

// SetServerStateCommand returns `set server B/S state S` for state ready, drain or maint.
func SetServerStateCommand(backend, server, state string) (string, error) {
	switch state {
	case "ready", "drain", "maint":
	default:
		return "", fmt.Errorf("server %s/%s: state %q: want ready, drain or maint", backend, server, state)
	}
	return fmt.Sprintf("set server %s/%s state %s", cliArg(backend), cliArg(server), state), nil
}

// SetServerAddr points backend/server at ip:port (port 0 keeps the configured port).
func (c *RuntimeClient) SetServerAddr(ctx context.Context, backend, server, ip string, port int) error {
	cmd, err := SetServerAddrCommand(backend, server, ip, port)
	if err != nil {
		return err
	}
	_, err = c.Exec(ctx, cmd)
	return err
}

// SetServerState sets backend/server to ready (takes traffic), drain (keeps its sessions and
// persistent clients, takes no new ones) or maint (out).
func (c *RuntimeClient) SetServerState(ctx context.Context, backend, server, state string) error {
	cmd, err := SetServerStateCommand(backend, server, state)
	if err != nil {
		return err
	}
	_, err = c.Exec(ctx, cmd)
	return err
}

// AddMap adds key → value to the map loaded from file (the path exactly as the configuration
// names it). HAProxy keeps duplicates: a lookup returns the first entry, so replace with DelMap
// then AddMap, or SetMap.
func (c *RuntimeClient) AddMap(ctx context.Context, file, key, value string) error {
	_, err := c.Exec(ctx, fmt.Sprintf("add map %s %s %s", cliArg(file), cliArg(key), cliArg(value)))
	return err
}

// SetMap changes the value of an existing key of the map loaded from file.
func (c *RuntimeClient) SetMap(ctx context.Context, file, key, value string) error {
	_, err := c.Exec(ctx, fmt.Sprintf("set map %s %s %s", cliArg(file), cliArg(key), cliArg(value)))
	return err
}

// DelMap removes every entry of key from the map loaded from file.
func (c *RuntimeClient) DelMap(ctx context.Context, file, key string) error {
	_, err := c.Exec(ctx, fmt.Sprintf("del map %s %s", cliArg(file), cliArg(key)))
	return err
}

// RuntimeMapEntry is one entry of a loaded map as `show map <file>` lists it.
type RuntimeMapEntry struct {
	Key, Value string
}

// ShowMap returns the entries of the map loaded from file, in HAProxy's order. Keys containing
// spaces cannot be told apart from their value in HAProxy's listing: the first word is the key.
func (c *RuntimeClient) ShowMap(ctx context.Context, file string) ([]RuntimeMapEntry, error) {
	out, err := c.Exec(ctx, "show map "+cliArg(file))
	if err != nil {
		return nil, err
	}
	var entries []RuntimeMapEntry
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(strings.TrimSpace(line), " ", 3)
		if len(f) < 2 {
			continue
		}
		if !strings.HasPrefix(f[0], "0x") {
			return nil, fmt.Errorf("show map %s on %s: unexpected line %q", file, c.socket, line)
		}
		e := RuntimeMapEntry{Key: f[1]}
		if len(f) == 3 {
			e.Value = f[2]
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// ShowServersState returns `show servers state`: the server-state-file format, version line
// first.
func (c *RuntimeClient) ShowServersState(ctx context.Context) (string, error) {
	out, err := c.Exec(ctx, "show servers state")
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(out, "1\n") {
		return "", fmt.Errorf("show servers state on %s: unexpected answer %q", c.socket, firstLine(out))
	}
	return out, nil
}

// SaveServerState writes the servers' current state to path, the configuration's
// server-state-file, atomically. With `load-server-state-from-file global` in the defaults, the
// next reload starts every server with the address and admin state set at run time.
func (c *RuntimeClient) SaveServerState(ctx context.Context, path string) error {
	out, err := c.ShowServersState(ctx)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, []byte(out), 0o644)
}

// StatRow is one line of `show stat`: a frontend (Server "FRONTEND"), a backend (Server
// "BACKEND") or a server.
type StatRow struct {
	Proxy       string // pxname
	Server      string // svname
	Status      string // UP, DOWN, MAINT, DRAIN, no check, OPEN, ...
	Addr        string // server address ip:port
	CheckStatus string // check_status
	Scur        int64  // current sessions
	Stot        int64  // total sessions
	Weight      int64
	// Fields holds every column by its CSV header name.
	Fields map[string]string
}

// ParseStat parses `show stat` CSV output.
func ParseStat(out string) ([]StatRow, error) {
	out = strings.TrimPrefix(strings.TrimLeft(out, "\n"), "# ")
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("show stat: %w", err)
	}
	if len(recs) == 0 || len(recs[0]) < 2 || recs[0][0] != "pxname" {
		return nil, fmt.Errorf("show stat: no CSV header in %q", firstLine(out))
	}
	header := recs[0]
	rows := make([]StatRow, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		f := make(map[string]string, len(header))
		for i, h := range header {
			if h != "" && i < len(rec) {
				f[h] = rec[i]
			}
		}
		num := func(k string) int64 {
			n, _ := strconv.ParseInt(f[k], 10, 64)
			return n
		}
		rows = append(rows, StatRow{
			Proxy: f["pxname"], Server: f["svname"], Status: f["status"], Addr: f["addr"],
			CheckStatus: f["check_status"], Scur: num("scur"), Stot: num("stot"), Weight: num("weight"),
			Fields: f,
		})
	}
	return rows, nil
}

// ShowStat returns `show stat`, parsed.
func (c *RuntimeClient) ShowStat(ctx context.Context) ([]StatRow, error) {
	out, err := c.Exec(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	rows, err := ParseStat(out)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", c.socket, err)
	}
	return rows, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
