package haproxy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lodestar-lb/lodestar/templates"
)

// Rendered is a model written out: the configuration file, which app emitted each of its
// lines, and the map files it reads.
type Rendered struct {
	// Config is haproxy.cfg.
	Config []byte
	// Owner[i] is the app (id, or "/<group>" for a deployment group) that emitted line i+1 of
	// Config; "" for the global parts (HEAD, shared frontend heads, map lookups).
	Owner []string
	// Maps holds map file contents by path (domain2backend.map and app2backend.map in the run
	// directory); empty unless the model was built with HAProxyMap.
	Maps map[string][]byte
}

// OwnerOf returns the app that emitted 1-based line n of the configuration, "" for a global
// line or a line outside the file.
func (r *Rendered) OwnerOf(line int) string {
	if line < 1 || line > len(r.Owner) {
		return ""
	}
	return r.Owner[line-1]
}

// Render writes m as HAProxy configuration: HEAD, userlists, the shared frontends, the
// per-port frontends and the backends, each in name order. The same model always renders to
// the same bytes.
//
// Why not config-parser for the per-app sections: its writer re-orders every section's lines
// by keyword, so it cannot keep marathon-lb's template output as users wrote it, and building
// 10,000 apps through it takes seconds (bench_test.go, BenchmarkConfigParser*), against a
// budget of 150 ms. config-parser reads the rendered HEAD instead (Build, inspectHead).
func Render(m *Model) (*Rendered, error) {
	if m == nil {
		return nil, errors.New("haproxy: render: no model")
	}
	if m.Err != nil {
		return nil, m.Err
	}
	w := newCfgWriter(m)
	w.write("", m.Head)
	for _, u := range m.Userlists {
		w.write(u.Owner, u.Text)
	}
	for _, f := range []*SharedFrontend{m.HTTP, m.AppID, m.HTTPS} {
		if f == nil {
			continue
		}
		w.write("", f.Head)
		for _, r := range f.Rules {
			w.line(r.Owner, r.Text)
		}
	}
	for _, f := range m.Frontends {
		w.write(f.Owner, f.Text)
	}
	for _, b := range m.Backends {
		w.write(b.Owner, b.Head)
		n := len(w.buf)
		var err error
		if w.buf, err = b.server.appendSlots(w.buf, b.Slots); err != nil {
			return nil, fmt.Errorf("backend %s: %w", b.Name, err)
		}
		for range bytes.Count(w.buf[n:], []byte{'\n'}) {
			w.owner = append(w.owner, b.Owner)
		}
	}
	r := &Rendered{Config: w.buf, Owner: w.owner, Maps: map[string][]byte{}}
	if m.HAProxyMap {
		r.Maps[m.DomainMapFile()] = mapFile(m.DomainMap)
		r.Maps[m.AppMapFile()] = mapFile(m.AppMap)
	}
	return r, nil
}

type cfgWriter struct {
	buf   []byte
	owner []string
}

func newCfgWriter(m *Model) *cfgWriter {
	size, lines := len(m.Head), strings.Count(m.Head, "\n")
	for _, f := range m.Frontends {
		size += len(f.Text)
		lines += 6
	}
	for _, b := range m.Backends {
		size += len(b.Head) + len(b.Slots)*(len(b.shape)+32)
		lines += 12 + len(b.Slots)
	}
	for _, f := range []*SharedFrontend{m.HTTP, m.AppID, m.HTTPS} {
		if f != nil {
			size += len(f.Head) + len(f.Rules)*64
			lines += len(f.Rules) + 4
		}
	}
	return &cfgWriter{buf: make([]byte, 0, size), owner: make([]string, 0, lines)}
}

// write appends text, which ends with a newline, owned by owner.
func (w *cfgWriter) write(owner, text string) {
	w.buf = append(w.buf, text...)
	for range strings.Count(text, "\n") {
		w.owner = append(w.owner, owner)
	}
}

// line appends one line.
func (w *cfgWriter) line(owner, text string) {
	w.buf = append(w.buf, text...)
	w.buf = append(w.buf, '\n')
	w.owner = append(w.owner, owner)
}

func mapFile(entries []MapEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		b.WriteString(e.Key)
		b.WriteByte(' ')
		b.WriteString(e.Value)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// serverRender renders a backend's server lines.
type serverRender struct {
	tmpl *templates.Template
	hc   *templates.Template
	// fixed are the port's values of the fields the two templates use, other than the ones
	// set per slot.
	fixed            []fixedField
	sticky           bool
	perSlotCheckPort bool
	checkPort        int
	// hcOptions is the rendered health check options when they are the same for every slot.
	hcOptions string
}

type fixedField struct {
	f templates.Field
	v string
}

// perSlotField reports whether f is set for every slot.
func perSlotField(f templates.Field) bool {
	switch f {
	case templates.FieldServerName, templates.FieldServerID, templates.FieldHost, templates.FieldHostIPv4,
		templates.FieldPort, templates.FieldCookieOptions, templates.FieldHealthCheckOptions, templates.FieldOtherOptions:
		return true
	}
	return false
}

// fixedFields returns the fields the server templates take from the port's values, cached per
// pair of templates.
func (b *builder) fixedFields(srv, hc *templates.Template) []templates.Field {
	key := [2]*templates.Template{srv, hc}
	if fs, ok := b.fixedCache[key]; ok {
		return fs
	}
	var fs []templates.Field
	for _, t := range key {
		if t == nil {
			continue
		}
		for _, f := range t.Fields() {
			if !perSlotField(f) && !slices.Contains(fs, f) {
				fs = append(fs, f)
			}
		}
	}
	if b.fixedCache == nil {
		b.fixedCache = map[[2]*templates.Template][]templates.Field{}
	}
	b.fixedCache[key] = fs
	return fs
}

// keep records the values the server templates need from the port's values v.
func (sr *serverRender) keep(fields []templates.Field, v *templates.Values) {
	for _, f := range fields {
		if s, ok := v.Get(f); ok {
			sr.fixed = append(sr.fixed, fixedField{f, s})
		}
	}
}

// values returns the port's values the server templates need.
func (sr *serverRender) values() templates.Values {
	var v templates.Values
	for _, ff := range sr.fixed {
		v.Set(ff.f, ff.v)
	}
	return v
}

// Markers stand for the runtime-changeable fields in a backend's shape.
const (
	markAddr      = "\x00A"
	markPort      = "\x00P"
	markState     = "\x00S"
	markCheckPort = "\x00C"
	markHost      = "\x00H"
	markName      = "\x00N"
	markID        = "\x00I"
)

// shapeOf returns sr's shape; backends with the same server templates and values share one.
func (b *builder) shapeOf(sr *serverRender) (string, error) {
	k := b.keyBuf[:0]
	k = fmt.Appendf(k, "%p %p %v %v", sr.tmpl, sr.hc, sr.sticky, sr.perSlotCheckPort)
	for _, ff := range sr.fixed {
		k = append(k, 0)
		k = append(k, ff.v...)
	}
	b.keyBuf = k
	if s, ok := b.shapes[string(k)]; ok {
		return s, nil
	}
	s, err := sr.shape()
	if err != nil {
		return "", err
	}
	if b.shapes == nil {
		b.shapes = map[string]string{}
	}
	b.shapes[string(k)] = s
	return s, nil
}

// shape renders the server line with markers for every per-slot field: backends with equal
// shapes differ only in what the markers stand for.
func (sr *serverRender) shape() (string, error) {
	v := sr.values()
	cookie := ""
	if sr.sticky {
		cookie = " cookie " + markName
	}
	hc := ""
	if sr.hc != nil {
		hv := v
		if sr.perSlotCheckPort {
			hv.Set(templates.FieldHealthCheckPort, markCheckPort)
			hv.Set(templates.FieldHealthCheckPortOptions, " port "+markCheckPort)
		}
		s, err := sr.hc.Execute(&hv)
		if err != nil {
			return "", err
		}
		hc = prefixed(" ", strings.TrimSpace(s))
	}
	v.Set(templates.FieldServerName, markName)
	v.Set(templates.FieldServerID, markID)
	v.Set(templates.FieldHost, markHost)
	v.Set(templates.FieldHostIPv4, markAddr)
	v.Set(templates.FieldPort, markPort)
	v.Set(templates.FieldCookieOptions, cookie)
	v.Set(templates.FieldHealthCheckOptions, hc)
	v.Set(templates.FieldOtherOptions, markState)
	s, err := sr.tmpl.Execute(&v)
	return s, err
}

// runtimeSafe says whether the runtime API can reproduce every difference between two slots
// of this shape: the address and port written together, the state written, the agent host
// name not written at all, and the check port (when per slot) written once.
func runtimeSafe(shape string, sr *serverRender) bool {
	ok := strings.Count(shape, markAddr+":"+markPort) == 1 &&
		strings.Count(shape, markAddr) == 1 && strings.Count(shape, markPort) == 1 &&
		strings.Count(shape, markState) == 1 && !strings.Contains(shape, markHost)
	if sr.perSlotCheckPort {
		ok = ok && strings.Count(shape, markCheckPort) == 1
	}
	return ok
}

// builtinServerOptions is the built-in BACKEND_SERVER_OPTIONS text; appendSlotsFast writes
// exactly what it renders to.
var builtinServerOptions = func() string {
	spec, _ := templates.Lookup(templates.BackendServerOptions)
	return spec.Default
}()

// appendSlots appends the server lines of slots. With the built-in server template (most
// backends, and lodestar's own with no template) the lines are written directly: a third of a 10,000-app configuration's render
// time otherwise goes into executing it 100,000 times.
func (sr *serverRender) appendSlots(dst []byte, slots []Slot) ([]byte, error) {
	return sr.appendSlotsFrom(dst, slots, 0)
}

// appendSlotsFrom appends the server lines of slots, the first of which is the backend's
// slot at index first (its server id is first+1).
func (sr *serverRender) appendSlotsFrom(dst []byte, slots []Slot, first int) ([]byte, error) {
	if sr.tmpl == nil || sr.tmpl.Text() == builtinServerOptions {
		return sr.appendSlotsFast(dst, slots)
	}
	return sr.appendSlotsTemplate(dst, slots, first)
}

// appendSlotsFast writes "  server {serverName} {host_ipv4}:{port}{cookieOptions}
// {healthCheckOptions}{otherOptions}" without the template.
func (sr *serverRender) appendSlotsFast(dst []byte, slots []Slot) ([]byte, error) {
	for i := range slots {
		s := &slots[i]
		dst = append(dst, "  server "...)
		dst = append(dst, s.Name...)
		dst = append(dst, ' ')
		if strings.IndexByte(s.Addr, ':') >= 0 {
			dst = append(dst, '[')
			dst = append(dst, s.Addr...)
			dst = append(dst, ']')
		} else {
			dst = append(dst, s.Addr...)
		}
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(s.Port), 10)
		if sr.sticky {
			dst = append(dst, " cookie "...)
			dst = append(dst, s.Name...)
		}
		hc, err := sr.hcFor(s)
		if err != nil {
			return dst, err
		}
		dst = append(dst, hc...)
		if s.State != StateReady {
			dst = append(dst, " disabled"...)
		}
		dst = append(dst, '\n')
	}
	return dst, nil
}

// appendSlotsTemplate appends the server lines of slots by executing the server template.
func (sr *serverRender) appendSlotsTemplate(dst []byte, slots []Slot, first int) ([]byte, error) {
	v := sr.values()
	var err error
	for i := range slots {
		s := &slots[i]
		v.Set(templates.FieldServerName, s.Name)
		v.Set(templates.FieldServerID, strconv.Itoa(first+i+1))
		v.Set(templates.FieldHost, s.Host)
		v.Set(templates.FieldHostIPv4, bracketIPv6(s.Addr))
		v.Set(templates.FieldPort, strconv.Itoa(s.Port))
		if sr.sticky {
			v.Set(templates.FieldCookieOptions, " cookie "+s.Name)
		} else {
			v.Set(templates.FieldCookieOptions, "")
		}
		hc, hcErr := sr.hcFor(s)
		if hcErr != nil {
			return dst, hcErr
		}
		v.Set(templates.FieldHealthCheckOptions, hc)
		if s.State == StateReady {
			v.Set(templates.FieldOtherOptions, "")
		} else {
			v.Set(templates.FieldOtherOptions, " disabled")
		}
		n := len(dst)
		if dst, err = sr.tmpl.Append(dst, &v); err != nil {
			return dst, err
		}
		if len(dst) > n && dst[len(dst)-1] != '\n' {
			dst = append(dst, '\n')
		}
	}
	return dst, err
}

func (sr *serverRender) hcFor(s *Slot) (string, error) {
	if sr.hc == nil || !sr.perSlotCheckPort {
		return sr.hcOptions, nil
	}
	v := sr.values()
	if s.CheckPort > 0 {
		v.Set(templates.FieldHealthCheckPort, strconv.Itoa(s.CheckPort))
		v.Set(templates.FieldHealthCheckPortOptions, " port "+strconv.Itoa(s.CheckPort))
	} else {
		v.Set(templates.FieldHealthCheckPort, "")
		v.Set(templates.FieldHealthCheckPortOptions, "")
	}
	out, err := sr.hc.Execute(&v)
	if err != nil {
		return "", err
	}
	return prefixed(" ", strings.TrimSpace(out)), nil
}

func bracketIPv6(addr string) string {
	if strings.IndexByte(addr, ':') >= 0 {
		return "[" + addr + "]"
	}
	return addr
}
