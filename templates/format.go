package templates

import (
	"fmt"
	"strings"
)

// Field is one value a template refers to as {name}. The names are marathon-lb's, so that
// templates written for marathon-lb keep working.
type Field uint8

// The fields. See the package documentation for which template sees which.
const (
	FieldBackend Field = iota
	FieldAppID
	FieldCleanedUpAppID
	FieldServicePort
	FieldMode
	FieldBalance
	FieldBindAddr
	FieldBindOptions
	FieldSSLCert
	FieldHostname
	FieldHostnames
	FieldCleanedUpHostname
	FieldPath
	FieldRealm
	FieldUser
	FieldPasswd
	FieldProxyPath
	FieldRootPath
	FieldRedirPath
	FieldHAProxyDir
	FieldNetworkAllowed
	FieldServerName
	FieldServerID
	FieldHost
	FieldHostIPv4
	FieldPort
	FieldCookieOptions
	FieldHealthCheckOptions
	FieldOtherOptions
	FieldHealthCheckPortIndex
	FieldHealthCheckPort
	FieldHealthCheckProtocol
	FieldHealthCheckPath
	FieldHealthCheckTimeoutSeconds
	FieldHealthCheckIntervalSeconds
	FieldHealthCheckGracePeriodSeconds
	FieldHealthCheckMaxConsecutiveFailures
	FieldHealthCheckFalls
	FieldHealthCheckPortOptions
	FieldRunDir
	FieldMaxConn
	FieldHardStopAfter
	FieldStatsBind
	FieldHTTPBind
	FieldHTTPSBind
	FieldAppIDBind
	FieldSSLCerts
	numFields
)

var fieldNames = [numFields]string{
	FieldBackend:                           "backend",
	FieldAppID:                             "appId",
	FieldCleanedUpAppID:                    "cleanedUpAppId",
	FieldServicePort:                       "servicePort",
	FieldMode:                              "mode",
	FieldBalance:                           "balance",
	FieldBindAddr:                          "bindAddr",
	FieldBindOptions:                       "bindOptions",
	FieldSSLCert:                           "sslCert",
	FieldHostname:                          "hostname",
	FieldHostnames:                         "hostnames",
	FieldCleanedUpHostname:                 "cleanedUpHostname",
	FieldPath:                              "path",
	FieldRealm:                             "realm",
	FieldUser:                              "user",
	FieldPasswd:                            "passwd",
	FieldProxyPath:                         "proxypath",
	FieldRootPath:                          "rootpath",
	FieldRedirPath:                         "redirpath",
	FieldHAProxyDir:                        "haproxy_dir",
	FieldNetworkAllowed:                    "network_allowed",
	FieldServerName:                        "serverName",
	FieldServerID:                          "serverId",
	FieldHost:                              "host",
	FieldHostIPv4:                          "host_ipv4",
	FieldPort:                              "port",
	FieldCookieOptions:                     "cookieOptions",
	FieldHealthCheckOptions:                "healthCheckOptions",
	FieldOtherOptions:                      "otherOptions",
	FieldHealthCheckPortIndex:              "healthCheckPortIndex",
	FieldHealthCheckPort:                   "healthCheckPort",
	FieldHealthCheckProtocol:               "healthCheckProtocol",
	FieldHealthCheckPath:                   "healthCheckPath",
	FieldHealthCheckTimeoutSeconds:         "healthCheckTimeoutSeconds",
	FieldHealthCheckIntervalSeconds:        "healthCheckIntervalSeconds",
	FieldHealthCheckGracePeriodSeconds:     "healthCheckGracePeriodSeconds",
	FieldHealthCheckMaxConsecutiveFailures: "healthCheckMaxConsecutiveFailures",
	FieldHealthCheckFalls:                  "healthCheckFalls",
	FieldHealthCheckPortOptions:            "healthCheckPortOptions",
	FieldRunDir:                            "runDir",
	FieldMaxConn:                           "maxConn",
	FieldHardStopAfter:                     "hardStopAfter",
	FieldStatsBind:                         "statsBind",
	FieldHTTPBind:                          "httpBind",
	FieldHTTPSBind:                         "httpsBind",
	FieldAppIDBind:                         "appIdBind",
	FieldSSLCerts:                          "sslCerts",
}

var fieldByName = func() map[string]Field {
	m := make(map[string]Field, numFields)
	for f, n := range fieldNames {
		m[n] = Field(f)
	}
	return m
}()

// String returns the field's name as templates write it, without braces.
func (f Field) String() string {
	if f >= numFields {
		return fmt.Sprintf("Field(%d)", uint8(f))
	}
	return fieldNames[f]
}

type fieldSet uint64

func setOf(fs ...Field) fieldSet {
	var s fieldSet
	for _, f := range fs {
		s |= 1 << f
	}
	return s
}

func (s fieldSet) has(f Field) bool { return s&(1<<f) != 0 }

func (s fieldSet) names() []string {
	var out []string
	for f := Field(0); f < numFields; f++ {
		if s.has(f) {
			out = append(out, fieldNames[f])
		}
	}
	return out
}

// Values holds the field values for executing templates. The zero value holds none. One Values
// is typically filled once per service port and reused for every template of that port, with
// the varying fields (hostname per vhost, server fields per slot) set before each execution.
type Values struct {
	v   [numFields]string
	set fieldSet
}

// Set sets field f to s.
func (v *Values) Set(f Field, s string) {
	v.v[f] = s
	v.set |= 1 << f
}

// Unset removes field f.
func (v *Values) Unset(f Field) {
	v.v[f] = ""
	v.set &^= 1 << f
}

// Get returns the value of field f and whether it is set.
func (v *Values) Get(f Field) (string, bool) { return v.v[f], v.set.has(f) }

// Reset removes every field.
func (v *Values) Reset() { *v = Values{} }

// segment is a literal run of text, or a field reference when field < numFields.
type segment struct {
	lit   string
	field Field
}

const literal = numFields

// parseFormat parses text in Python str.format syntax as marathon-lb used it: {name} is a field,
// {{ and }} are literal braces. Only plain names are supported (no indexes, conversions or format
// specs); a name outside allowed is an error.
func parseFormat(text string, allowed fieldSet) ([]segment, fieldSet, error) {
	var segs []segment
	var used fieldSet
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, segment{lit: lit.String(), field: literal})
			lit.Reset()
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch c {
		case '{':
			if i+1 < len(text) && text[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(text[i+1:], '}')
			if end < 0 {
				return nil, 0, fmt.Errorf("line %d: unterminated {", lineOf(text, i))
			}
			name := text[i+1 : i+1+end]
			f, ok := fieldByName[name]
			switch {
			case name == "":
				return nil, 0, fmt.Errorf("line %d: empty {} (positional fields are not supported)", lineOf(text, i))
			case !ok && strings.ContainsAny(name, "[.!:"):
				return nil, 0, fmt.Errorf("line %d: {%s}: only plain {name} fields are supported", lineOf(text, i), name)
			case !ok || !allowed.has(f):
				return nil, 0, fmt.Errorf("line %d: unknown field {%s} (this template has: %s)",
					lineOf(text, i), name, strings.Join(allowed.names(), ", "))
			}
			flush()
			segs = append(segs, segment{field: f})
			used |= 1 << f
			i += end + 1
		case '}':
			if i+1 < len(text) && text[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return nil, 0, fmt.Errorf("line %d: single } (write }} for a literal brace)", lineOf(text, i))
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return segs, used, nil
}

// parseRaw parses a template that marathon-lb wrote out verbatim (HEAD, HTTP_FRONTEND_HEAD,
// BACKEND_HTTP_OPTIONS, …): text is literal, braces included (HAProxy's "{ ssl_fc }"), except
// that {name} for a field in allowed is replaced. It never fails.
func parseRaw(text string, allowed fieldSet) ([]segment, fieldSet) {
	var segs []segment
	var used fieldSet
	start := 0
	for i := 0; i < len(text); i++ {
		if text[i] != '{' {
			continue
		}
		end := strings.IndexByte(text[i+1:], '}')
		if end < 0 {
			break
		}
		f, ok := fieldByName[text[i+1:i+1+end]]
		if !ok || !allowed.has(f) {
			continue
		}
		if start < i {
			segs = append(segs, segment{lit: text[start:i], field: literal})
		}
		segs = append(segs, segment{field: f})
		used |= 1 << f
		i += end + 1
		start = i + 1
	}
	if start < len(text) {
		segs = append(segs, segment{lit: text[start:], field: literal})
	}
	return segs, used
}

func lineOf(text string, i int) int { return strings.Count(text[:i], "\n") + 1 }
