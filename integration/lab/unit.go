package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// Unit is what the lab needs of a rendered systemd service unit to run it without systemd:
// the command, its environment and its credentials. Other keys (User=, DynamicUser=,
// LimitNOFILE=, Restart=, …) are systemd's business and ignored: the lab runs every unit as
// root, once.
type Unit struct {
	Name string // the file name, e.g. "zookeeper.service"
	// ExecStart is the command as words, before any expansion.
	ExecStart []string
	// Type is the service type ("simple" when not given, "oneshot").
	Type string
	// EnvironmentFiles are the files read for variables, in order; Optional[i] is true for
	// a "-" prefix (a missing file is no error).
	EnvironmentFiles []string
	OptionalEnvFile  []bool
	// Environment are the unit's own KEY=VALUE assignments, in order.
	Environment []string
	// Credentials are LoadCredential= pairs: name, then the file the credential is read from.
	Credentials [][2]string
	// RuntimeDirectory is the directory under /run systemd creates for the service.
	RuntimeDirectory string
}

// ParseUnit reads a unit file: backslash continuations are joined, keys of the [Service]
// section that the lab acts on are kept, and anything it cannot run faithfully (a second
// ExecStart, an ExecStart prefix such as "-" or "+", an unbalanced quote) is an error naming
// the unit and the line.
func ParseUnit(name string, text []byte) (Unit, error) {
	u := Unit{Name: name, Type: "simple"}
	section := ""
	lineNo := 0
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		start := lineNo
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			lineNo++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(sc.Text())
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return Unit{}, fmt.Errorf("%s line %d: %q is neither a section nor KEY=VALUE", name, start, line)
		}
		if section != "[Service]" {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if err := u.set(key, value); err != nil {
			return Unit{}, fmt.Errorf("%s line %d: %s: %w", name, start, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Unit{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(u.ExecStart) == 0 {
		return Unit{}, fmt.Errorf("%s: no ExecStart= in [Service]", name)
	}
	return u, nil
}

func (u *Unit) set(key, value string) error {
	switch key {
	case "ExecStart":
		if len(u.ExecStart) > 0 {
			return fmt.Errorf("a second ExecStart (only Type=oneshot may have several, and the lab runs one)")
		}
		if value != "" && strings.ContainsRune("-@:+!|", rune(value[0])) {
			return fmt.Errorf("prefix %q: the lab runs plain commands only", value[:1])
		}
		words, err := splitWords(value)
		if err != nil {
			return err
		}
		if len(words) == 0 || !strings.HasPrefix(words[0], "/") {
			return fmt.Errorf("%q: want an absolute program path", value)
		}
		u.ExecStart = words
	case "Type":
		u.Type = value
	case "EnvironmentFile":
		optional := strings.HasPrefix(value, "-")
		path := strings.TrimPrefix(value, "-")
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: want an absolute path", value)
		}
		u.EnvironmentFiles = append(u.EnvironmentFiles, path)
		u.OptionalEnvFile = append(u.OptionalEnvFile, optional)
	case "Environment":
		words, err := splitWords(value)
		if err != nil {
			return err
		}
		for _, w := range words {
			k, _, ok := strings.Cut(w, "=")
			if !ok || !envNameRe.MatchString(k) {
				return fmt.Errorf("%q: want NAME=VALUE", w)
			}
			u.Environment = append(u.Environment, w)
		}
	case "RuntimeDirectory":
		if !filepath.IsLocal(value) || strings.ContainsAny(value, " \t") {
			return fmt.Errorf("%q: want a relative directory name", value)
		}
		u.RuntimeDirectory = value
	case "LoadCredential":
		name, path, ok := strings.Cut(value, ":")
		if !ok || !credNameRe.MatchString(name) || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: want NAME:/absolute/path", value)
		}
		u.Credentials = append(u.Credentials, [2]string{name, path})
	}
	return nil
}

var (
	envNameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	credNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// splitWords splits a unit's command line into words the way systemd does for the cases the
// renderer emits: white space separates, double or single quotes group (without escapes
// inside single quotes), a backslash escapes the next character in double quotes and bare.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '"' || c == '\'':
			end := i + 1
			for ; end < len(s) && s[end] != c; end++ {
				if c == '"' && s[end] == '\\' && end+1 < len(s) {
					end++
				}
			}
			if end >= len(s) {
				return nil, fmt.Errorf("unbalanced %c in %q", c, s)
			}
			inner := s[i+1 : end]
			if c == '"' {
				inner = unescape(inner)
			}
			cur.WriteString(inner)
			inWord = true
			i = end
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ParseEnvFile reads an EnvironmentFile: KEY=VALUE lines, # and ; comments, values
// optionally in double or single quotes.
func ParseEnvFile(name string, text []byte) ([]string, error) {
	var env []string
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !envNameRe.MatchString(k) {
			return nil, fmt.Errorf("%s line %d: %q: want NAME=VALUE", name, i+1, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env = append(env, k+"="+v)
	}
	return env, nil
}

// varRe is a ${NAME} reference; a word that is exactly $NAME is one too.
var (
	varRe      = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	wholeVarRe = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)$`)
)

// Expand expands the unit's command line as systemd would at start: ${NAME} inside a word
// and $NAME as a whole word from env (later assignments win), %d as credentialsDir and %% as
// %. A variable that is not set, or any other specifier, is an error: the lab would
// otherwise run something other than what systemd runs.
func (u Unit) Expand(env []string, credentialsDir string) ([]string, error) {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	out := make([]string, 0, len(u.ExecStart))
	for _, w := range u.ExecStart {
		var err error
		if m := wholeVarRe.FindStringSubmatch(w); m != nil {
			v, ok := vars[m[1]]
			if !ok {
				return nil, fmt.Errorf("%s: ExecStart uses $%s, which no Environment or EnvironmentFile sets", u.Name, m[1])
			}
			out = append(out, v)
			continue
		}
		w = varRe.ReplaceAllStringFunc(w, func(ref string) string {
			name := varRe.FindStringSubmatch(ref)[1]
			v, ok := vars[name]
			if !ok && err == nil {
				err = fmt.Errorf("%s: ExecStart uses ${%s}, which no Environment or EnvironmentFile sets", u.Name, name)
			}
			return v
		})
		if err != nil {
			return nil, err
		}
		if w, err = expandSpecifiers(u.Name, w, credentialsDir); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

func expandSpecifiers(unit, w, credentialsDir string) (string, error) {
	if !strings.Contains(w, "%") {
		return w, nil
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != '%' {
			b.WriteByte(w[i])
			continue
		}
		if i+1 >= len(w) {
			return "", fmt.Errorf("%s: ExecStart word %q ends in %%", unit, w)
		}
		i++
		switch w[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			if credentialsDir == "" {
				return "", fmt.Errorf("%s: ExecStart word %q uses %%d without LoadCredential=", unit, w)
			}
			b.WriteString(credentialsDir)
		default:
			return "", fmt.Errorf("%s: ExecStart word %q: specifier %%%c is not one the lab knows (%%d, %%%%)", unit, w, w[i])
		}
	}
	return b.String(), nil
}

// rerootRe finds the host paths a lab host keeps under its Root: /etc, /run, /var and the
// cluster's script directory, where a path starts (start of text, after white space, =, :, >
// or a quote).
var rerootRe = regexp.MustCompile(`(^|[\s=:>"'])(/(?:etc|run|var)/|/usr/local/lib/lodestar-cluster/)`)

// Reroot rewrites the host paths in s (a command word or a configuration file) to lie under
// root, so that /etc/zookeeper/conf becomes root/etc/zookeeper/conf; other paths (/usr/bin/java,
// /usr/share/java/*) are the machine's and stay. root must be absolute and clean.
func Reroot(root, s string) string {
	return rerootRe.ReplaceAllString(s, "${1}"+strings.ReplaceAll(root, "$", "$$")+"${2}")
}
