package discovery

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/bits"
	"reflect"
	"strings"
	"unicode/utf8"
)

// The JSON scanner under the Marathon apps decoder (see marathon_fastjson.go): reading one
// value at a time with encoding/json's semantics, skipping what is not read, and matching keys
// against struct field names.

// fastDec reads JSON from data. Its methods read one value at pos (after any whitespace) into
// their destination with encoding/json's semantics, or fail with errFastSyntax or
// errFastType (after which pos is meaningless).
type fastDec struct {
	data  []byte
	pos   int
	depth int // containers open at pos

	// w is the app being decoded (its tasks share its appId and version strings), reused
	// for every app: convertApp copies what it needs, except the maps and the tasks' ports,
	// which are new for each app.
	w wireApp
	// tasks is the backing array for w.Tasks, all zero between apps.
	tasks []wireTask
	// keys interns label keys.
	keys map[string]string
}

// startApp readies d.w for decoding the next app.
func (d *fastDec) startApp() *wireApp {
	d.w = wireApp{}
	return &d.w
}

// endApp cleans up after an app, decoded (err == nil) or not.
func (d *fastDec) endApp(err error) {
	if err != nil {
		// The decode may have stopped in the middle of the tasks.
		clear(d.tasks[:cap(d.tasks)])
	} else {
		if cap(d.w.Tasks) > cap(d.tasks) { // w.Tasks outgrew the array
			d.tasks = d.w.Tasks[:0]
		}
		clear(d.tasks[:len(d.w.Tasks)])
	}
	d.w = wireApp{}
}

func (d *fastDec) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *fastDec) ws() {
	// Compact JSON has none: one comparison (no whitespace is above ' ').
	for d.pos < len(d.data) && d.data[d.pos] <= ' ' {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// lit consumes the literal lit (true, false or null).
func (d *fastDec) lit(lit string) error {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return nil
	}
	return errFastSyntax
}

// objOpen starts reading an object into a struct: true after its '{', false after a null.
func (d *fastDec) objOpen() (bool, error) { return d.open('{') }

// open starts reading a value that opens with c ('{' or '['): true after it, false after a
// null; a value nested deeper than maxJSONDepth is a syntax error.
func (d *fastDec) open(c byte) (bool, error) {
	d.ws()
	switch d.peek() {
	case c:
		d.pos++
		d.depth++
		if d.depth > maxJSONDepth {
			return false, errFastSyntax
		}
		return true, nil
	case 'n':
		return false, d.lit("null")
	case 0:
		return false, errFastSyntax
	}
	return false, errFastType
}

// objKey moves to the next key of the object being read, n keys having been read: it returns
// the key's raw bytes data[ks:ke] (plain: ASCII without escapes, which is the key itself) and
// leaves pos after the ':', or returns more=false after the closing '}'.
func (d *fastDec) objKey(n int) (ks, ke int, plain, more bool, err error) {
	d.ws()
	c := d.peek()
	if c == '}' {
		d.pos++
		d.depth--
		return 0, 0, false, false, nil
	}
	if n > 0 {
		if c != ',' {
			return 0, 0, false, false, errFastSyntax
		}
		d.pos++
		d.ws()
		c = d.peek()
	}
	if c != '"' {
		return 0, 0, false, false, errFastSyntax
	}
	ks, ke, plain, err = d.scanString()
	if err != nil {
		return 0, 0, false, false, err
	}
	d.ws()
	if d.peek() != ':' {
		return 0, 0, false, false, errFastSyntax
	}
	d.pos++
	return ks, ke, plain, true, nil
}

// arrNext moves to the next element of the array being read, n having been read: more=false
// after the closing ']'.
func (d *fastDec) arrNext(n int) (more bool, err error) {
	d.ws()
	c := d.peek()
	if c == ']' {
		d.pos++
		d.depth--
		return false, nil
	}
	if n > 0 {
		if c != ',' {
			return false, errFastSyntax
		}
		d.pos++
	}
	return true, nil
}

// strStop marks the bytes that end the fast scan of a string: its closing quote, a
// backslash, control characters (errors) and non-ASCII bytes (which need a UTF-8 check).
// skipStop marks the bytes that matter when the string is only skipped.
var strStop, skipStop [256]bool

func init() {
	for c := range 256 {
		strStop[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80
		skipStop[c] = c == '"' || c == '\\' || c < 0x20
	}
}

// scanString consumes the string at pos, which is at its opening quote, and returns the
// bounds of its raw contents; plain means ASCII without escapes.
func (d *fastDec) scanString() (start, end int, plain bool, err error) {
	data := d.data
	start = d.pos + 1
	i := start
	for ; i+8 <= len(data); i += 8 {
		if m := strStopMask(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			goto stop
		}
	}
	for i < len(data) && !strStop[data[i]] {
		i++
	}
stop:
	if i < len(data) && data[i] == '"' {
		d.pos = i + 1
		return start, i, true, nil
	}
	d.pos = i
	if err := d.skipStringRest(); err != nil {
		return 0, 0, false, err
	}
	return start, d.pos - 1, false, nil
}

// skipString consumes the string at pos, which is at its opening quote.
func (d *fastDec) skipString() error {
	d.pos++
	return d.skipStringRest()
}

// skipStringRest consumes the rest of a string from inside it (pos is not at a backslash's
// escaped character).
func (d *fastDec) skipStringRest() error {
	data := d.data
	i := d.pos
	for {
		for ; i+8 <= len(data); i += 8 {
			if m := skipStopMask(binary.LittleEndian.Uint64(data[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto stop
			}
		}
		for i < len(data) && !skipStop[data[i]] {
			i++
		}
	stop:
		if i >= len(data) {
			return errFastSyntax
		}
		switch data[i] {
		case '"':
			d.pos = i + 1
			return nil
		case '\\':
			i++
			if i >= len(data) {
				return errFastSyntax
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(data)-i < 5 || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
					return errFastSyntax
				}
				i += 5
			default:
				return errFastSyntax
			}
		default: // a control character
			return errFastSyntax
		}
	}
}

// strStopMask and skipStopMask look at 8 bytes of a string at once (little-endian): the
// lowest byte with its high bit set in the result is the first strStop (skipStop) byte.
// (Higher bytes may be flagged wrongly, after a borrow.)
func strStopMask(x uint64) uint64 {
	q := x ^ (lsbs * '"')
	b := x ^ (lsbs * '\\')
	return ((q-lsbs)&^q | (b-lsbs)&^b | (x - lsbs*0x20) | x) & msbs
}

func skipStopMask(x uint64) uint64 {
	q := x ^ (lsbs * '"')
	b := x ^ (lsbs * '\\')
	return ((q-lsbs)&^q | (b-lsbs)&^b | (x-lsbs*0x20)&^x) & msbs
}

const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringAt returns the string whose raw contents are data[start:end], unescaped as
// encoding/json does (invalid UTF-8 becomes U+FFFD).
func (d *fastDec) stringAt(start, end int, plain bool) (string, error) {
	raw := d.data[start:end]
	if plain || bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw), nil
	}
	var s string
	if err := json.Unmarshal(d.data[start-1:end+1], &s); err != nil {
		return "", errFastSyntax
	}
	return s, nil
}

// mapKey returns the key data[ks:ke] of a labels map (see stringAt). Apps repeat the same
// few label keys (HAPROXY_GROUP, HAPROXY_0_VHOST, …): one string each serves every app.
func (d *fastDec) mapKey(ks, ke int, plain bool) (string, error) {
	if !plain {
		return d.stringAt(ks, ke, plain)
	}
	return d.internRaw(d.data[ks:ke]), nil
}

// internRaw returns raw, the contents of a plain string (see scanString), as a string that
// serves every occurrence of the same value in the document: label keys, agent and framework
// ids, task states, … The first maxInterned distinct values are kept.
func (d *fastDec) internRaw(raw []byte) string {
	if k, ok := d.keys[string(raw)]; ok {
		return k
	}
	k := string(raw)
	if len(d.keys) < maxInterned {
		if d.keys == nil {
			d.keys = make(map[string]string)
		}
		d.keys[k] = k
	}
	return k
}

const maxInterned = 1 << 16

// str reads a string (null leaves *s as it is).
func (d *fastDec) str(s *string) error {
	return d.strIntern(s, "", nil)
}

// strIntern reads a string like str, without allocating when it equals same or is one of
// the constants intern knows.
func (d *fastDec) strIntern(s *string, same string, intern func([]byte) string) error {
	d.ws()
	switch d.peek() {
	case '"':
		start, end, plain, err := d.scanString()
		if err != nil {
			return err
		}
		if plain {
			raw := d.data[start:end]
			if same != "" && string(raw) == same {
				*s = same
				return nil
			}
			if intern != nil {
				if v := intern(raw); v != "" {
					*s = v
					return nil
				}
			}
		}
		*s, err = d.stringAt(start, end, plain)
		return err
	case 'n':
		return d.lit("null")
	case 0:
		return errFastSyntax
	}
	return errFastType
}

// internConst returns the constant string equal to b for the values every app or task
// repeats (task states, protocols, network modes), or "".
func internConst(b []byte) string {
	switch string(b) {
	case "TASK_RUNNING":
		return "TASK_RUNNING"
	case "TASK_STAGING":
		return "TASK_STAGING"
	case "TASK_STARTING":
		return "TASK_STARTING"
	case "TASK_KILLING":
		return "TASK_KILLING"
	case "TASK_UNREACHABLE":
		return "TASK_UNREACHABLE"
	case "tcp":
		return "tcp"
	case "udp":
		return "udp"
	case "tcp,udp":
		return "tcp,udp"
	case "HTTP":
		return "HTTP"
	case "HTTPS":
		return "HTTPS"
	case "TCP":
		return "TCP"
	case "COMMAND":
		return "COMMAND"
	case "MESOS_HTTP":
		return "MESOS_HTTP"
	case "MESOS_HTTPS":
		return "MESOS_HTTPS"
	case "MESOS_TCP":
		return "MESOS_TCP"
	case "host":
		return "host"
	case "container":
		return "container"
	case "container/bridge":
		return "container/bridge"
	case "BRIDGE":
		return "BRIDGE"
	case "HOST":
		return "HOST"
	case "USER":
		return "USER"
	case "DOCKER":
		return "DOCKER"
	case "MESOS":
		return "MESOS"
	}
	return ""
}

// int reads an integer that fits an int (null leaves *p as it is). Numbers with a fraction or
// an exponent are errFastType: encoding/json rejects them for an int.
func (d *fastDec) int(p *int) error {
	d.ws()
	data := d.data
	i := d.pos
	if i >= len(data) {
		return errFastSyntax
	}
	c := data[i]
	neg := c == '-'
	if neg {
		i++
		if i >= len(data) {
			return errFastSyntax
		}
		c = data[i]
	}
	var u uint64
	switch {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		start := i
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		if i-start > 19 {
			return errFastType // out of range
		}
		for _, c := range data[start:i] { // at most 19 digits: no overflow
			u = u*10 + uint64(c-'0')
		}
	case c == 'n' && !neg:
		return d.lit("null")
	default:
		if neg {
			return errFastSyntax
		}
		return errFastType
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return errFastType
	}
	switch {
	case !neg && u <= math.MaxInt:
		*p = int(u)
	case neg && u <= math.MaxInt+1:
		*p = -int(u)
	default:
		return errFastType
	}
	d.pos = i
	return nil
}

// bool reads true or false (null leaves *p as it is).
func (d *fastDec) bool(p *bool) error {
	d.ws()
	switch d.peek() {
	case 't':
		*p = true
		return d.lit("true")
	case 'f':
		*p = false
		return d.lit("false")
	case 'n':
		return d.lit("null")
	case 0:
		return errFastSyntax
	}
	return errFastType
}

// strMap reads an object of strings: null sets *m to nil, an object adds to *m (made if nil);
// a null value is "".
func (d *fastDec) strMap(m *map[string]string) error {
	d.ws()
	switch d.peek() {
	case '{':
	case 'n':
		*m = nil
		return d.lit("null")
	case 0:
		return errFastSyntax
	default:
		return errFastType
	}
	d.pos++
	d.depth++
	if d.depth > maxJSONDepth {
		return errFastSyntax
	}
	if *m == nil {
		*m = make(map[string]string)
	}
	mm := *m
	for n := 0; ; n++ {
		ks, ke, plain, more, err := d.objKey(n)
		if err != nil || !more {
			return err
		}
		k, err := d.mapKey(ks, ke, plain)
		if err != nil {
			return err
		}
		var v string
		if err := d.str(&v); err != nil {
			return err
		}
		mm[k] = v
	}
}

// decodeSlice reads an array into *s with encoding/json's semantics: null sets nil, elements
// decode into what *s already holds (up to its capacity), and [] is an empty non-nil slice.
func decodeSlice[T any](d *fastDec, s *[]T, elem func(*fastDec, *T) error) error {
	if ok, err := d.arrOpen(); !ok {
		if err == nil {
			*s = nil
		}
		return err
	}
	v := *s
	i := 0
	for ; ; i++ {
		more, err := d.arrNext(i)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if i == len(v) {
			if i < cap(v) {
				v = v[:i+1]
			} else {
				var zero T
				v = append(v, zero)
			}
		}
		if err := elem(d, &v[i]); err != nil {
			return err
		}
	}
	if i < len(v) {
		v = v[:i]
	}
	if i == 0 {
		v = []T{}
	}
	*s = v
	return nil
}

// arrOpen starts reading an array: true after its '[', false after a null.
func (d *fastDec) arrOpen() (bool, error) { return d.open('[') }

// decodePtr reads an object into **p, allocating it when nil; null sets nil.
func decodePtr[T any](d *fastDec, p **T, f func(*fastDec, *T) error) error {
	d.ws()
	switch d.peek() {
	case '{':
		if *p == nil {
			*p = new(T)
		}
		return f(d, *p)
	case 'n':
		*p = nil
		return d.lit("null")
	case 0:
		return errFastSyntax
	}
	return errFastType
}

func (d *fastDec) intElem(p *int) error { return d.int(p) }

// skip consumes any JSON value, checking that it is well-formed.
func (d *fastDec) skip() error {
	d.ws()
	switch d.peek() {
	case '"':
		return d.skipString()
	case '{':
		d.pos++
		d.depth++
		if d.depth > maxJSONDepth {
			return errFastSyntax
		}
		for n := 0; ; n++ {
			_, _, _, more, err := d.objKey(n)
			if err != nil || !more {
				return err
			}
			if err := d.skip(); err != nil {
				return err
			}
		}
	case '[':
		d.pos++
		d.depth++
		if d.depth > maxJSONDepth {
			return errFastSyntax
		}
		for n := 0; ; n++ {
			more, err := d.arrNext(n)
			if err != nil || !more {
				return err
			}
			if err := d.skip(); err != nil {
				return err
			}
		}
	case 't':
		return d.lit("true")
	case 'f':
		return d.lit("false")
	case 'n':
		return d.lit("null")
	}
	return d.skipNumber()
}

// skipNumber consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *fastDec) skipNumber() error {
	data := d.data
	i := d.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return errFastSyntax
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i)
	default:
		return errFastSyntax
	}
	if i < len(data) && data[i] == '.' {
		i++
		j := skipDigits(data, i)
		if j == i {
			return errFastSyntax
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return errFastSyntax
		}
		i = j
	}
	d.pos = i
	return nil
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

// foldSet holds the JSON names of a struct's fields, to tell a key encoding/json would
// match case-insensitively ("Instances" for "instances") from an unknown one.
type foldSet struct {
	lens  uint64 // bit n set: a name of n bytes
	names []string
}

func newFoldSet(names ...string) foldSet {
	f := foldSet{names: names}
	for _, n := range names {
		f.lens |= 1 << len(n)
	}
	return f
}

// foldSetOf lists the JSON names of T's fields.
func foldSetOf[T any]() foldSet {
	t := reflect.TypeFor[T]()
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return newFoldSet(names...)
}

// has reports whether the ASCII key equals one of the names, ignoring case.
func (f *foldSet) has(key []byte) bool {
	return f.index(key) >= 0
}

// index returns the position in names of the first name the ASCII key equals ignoring case,
// or -1. For a struct's fold set (foldSetOf) that is the field encoding/json decodes the key
// into, when no two of its names are equal ignoring case.
func (f *foldSet) index(key []byte) int {
	if len(key) >= 64 || f.lens&(1<<len(key)) == 0 {
		return -1
	}
	for i, n := range f.names {
		if len(n) == len(key) && (string(key) == n || asciiEqualFold(key, n)) {
			return i
		}
	}
	return -1
}

func asciiEqualFold(b []byte, s string) bool {
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// structKey reads the next key of a struct's object (see objKey); keys that are not plain
// are errFastType: encoding/json unescapes them, and could fold one into a field name.
func (d *fastDec) structKey(n int) (key []byte, more bool, err error) {
	ks, ke, plain, more, err := d.objKey(n)
	if err != nil || !more {
		return nil, false, err
	}
	if !plain {
		return nil, false, errFastType
	}
	return d.data[ks:ke], true, nil
}

// object decodes a JSON object (null leaves the target alone, as encoding/json does), calling
// field for each key with the reader on its value; field must consume the value.
func (d *fastDec) object(field func(key []byte) error) error {
	if ok, err := d.objOpen(); !ok {
		return err
	}
	for n := 0; ; n++ {
		key, more, err := d.structKey(n)
		if !more {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
	}
}

// unknownField skips the value of a key that is not one of the struct's (exact-case) names,
// or fails with errFastType if encoding/json would match it to one case-insensitively.
func (d *fastDec) unknownField(key []byte, fields *foldSet) error {
	if fields.has(key) {
		return errFastType
	}
	return d.skip()
}
