package haproxy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/templates"
)

// App labels: every label lodestar reads that is not per port (LABELS.md).
const (
	LabelPrefix                    = "HAPROXY_"
	LabelGroup                     = "HAPROXY_GROUP"
	LabelDeploymentGroup           = "HAPROXY_DEPLOYMENT_GROUP"
	LabelDeploymentAltPort         = "HAPROXY_DEPLOYMENT_ALT_PORT"
	LabelDeploymentColour          = "HAPROXY_DEPLOYMENT_COLOUR"
	LabelDeploymentStartedAt       = "HAPROXY_DEPLOYMENT_STARTED_AT"
	LabelDeploymentTargetInstances = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES"
	// LabelDeploymentNewInstances and LabelAppID are written by marathon-lb's
	// bluegreen_deploy.py; lodestar accepts them and does not use them.
	LabelDeploymentNewInstances = "HAPROXY_DEPLOYMENT_NEW_INSTANCES"
	LabelAppID                  = "HAPROXY_APP_ID"
)

// Port labels are HAPROXY_{n}_<suffix>; these are the suffixes. Any per-app template name
// (templates.Spec.PerApp) is a suffix too: HAPROXY_{n}_BACKEND_HEAD overrides BACKEND_HEAD.
const (
	SuffixGroup                = "GROUP"
	SuffixEnabled              = "ENABLED"
	SuffixVHost                = "VHOST"
	SuffixPath                 = "PATH"
	SuffixMode                 = "MODE"
	SuffixBalance              = "BALANCE"
	SuffixSticky               = "STICKY"
	SuffixRedirectToHTTPS      = "REDIRECT_TO_HTTPS"
	SuffixUseHSTS              = "USE_HSTS"
	SuffixSSLCert              = "SSL_CERT"
	SuffixBindOptions          = "BIND_OPTIONS"
	SuffixBindAddr             = "BIND_ADDR"
	SuffixPort                 = "PORT"
	SuffixBackendWeight        = "BACKEND_WEIGHT"
	SuffixAuth                 = "AUTH"
	SuffixProxyPassPath        = "HTTP_BACKEND_PROXYPASS_PATH"
	SuffixRevProxyPath         = "HTTP_BACKEND_REVPROXY_PATH"
	SuffixRedirPath            = "HTTP_BACKEND_REDIR"
	SuffixNetworkAllowed       = "BACKEND_NETWORK_ALLOWED_ACL"
	SuffixHealthCheckPortIndex = "BACKEND_HEALTHCHECK_PORT_INDEX"
)

// PortLabel returns the label name HAPROXY_{n}_<suffix>.
func PortLabel(n int, suffix string) string {
	return LabelPrefix + strconv.Itoa(n) + "_" + suffix
}

// Modes of a service port.
const (
	ModeHTTP = "http"
	ModeTCP  = "tcp"
)

// balanceAlgorithms are HAProxy 2.6's balance algorithms; hdr, url_param and rdp-cookie take
// arguments.
var balanceAlgorithms = []string{"first", "hash", "hdr", "leastconn", "random", "rdp-cookie",
	"roundrobin", "source", "static-rr", "uri", "url_param"}

// LabelError is a label with a value lodestar cannot use. It names the app, the label and the
// value, and says what was expected.
type LabelError struct {
	AppID string
	Label string
	Value string
	Want  string
}

func (e *LabelError) Error() string {
	return fmt.Sprintf("app %s: label %s=%q: %s", e.AppID, e.Label, e.Value, e.Want)
}

// AppLabels are the HAPROXY_* labels of one app, parsed.
type AppLabels struct {
	AppID string
	// Groups is HAPROXY_GROUP, split at commas.
	Groups     []string
	Deployment Deployment
	// Ports has one entry per app port.
	Ports []PortLabels
	// Err holds the malformed app-level labels: the whole app is skipped.
	Err error
	// Warnings are labels that were ignored.
	Warnings []Warning

	port1 [1]PortLabels
}

// Deployment is a zero-downtime (blue/green) deployment as bluegreen_deploy.py labels it.
type Deployment struct {
	// Group is HAPROXY_DEPLOYMENT_GROUP; "" when the app is not part of one.
	Group   string
	AltPort int
	Colour  string
	// StartedAt is zero when the label is missing.
	StartedAt time.Time
	// TargetInstances is -1 when the label is missing.
	TargetInstances int
}

// PortLabels are the HAPROXY_{n}_* labels of port n.
type PortLabels struct {
	Index int
	// Err holds the malformed labels of this port: the port is skipped.
	Err error
	// Groups is HAPROXY_{n}_GROUP; GroupSet says whether the label is present (it then
	// overrides HAPROXY_GROUP).
	Groups   []string
	GroupSet bool
	// Enabled is HAPROXY_{n}_ENABLED; EnabledSet whether it is present.
	Enabled    bool
	EnabledSet bool
	// VHosts are the lower-cased names of HAPROXY_{n}_VHOST.
	VHosts []string
	// Path is HAPROXY_{n}_PATH as written (path_beg arguments).
	Path string
	// Mode is "http", "tcp", or "" for the default.
	Mode string
	// Balance defaults to "roundrobin".
	Balance                 string
	Sticky, RedirectToHTTPS bool
	UseHSTS                 bool
	SSLCert, BindOptions    string
	BindAddr                string
	Port                    int
	BackendWeight           int
	Auth                    *Auth
	ProxyPassPath           string
	RevProxyPath, RedirPath string
	NetworkAllowed          []string
	HealthCheckPortIndex    int
	HealthCheckPortIndexSet bool
	// Templates are the per-app template overrides by template name (CRLF normalised).
	Templates map[string]string
}

// Auth is HAPROXY_{n}_AUTH: realm:user:crypted-password.
type Auth struct {
	Realm, User, Password string
}

type rawLabel struct {
	port   int // -1 for app labels
	suffix string
	key    string
	value  string
}

// ParseLabels reads every HAPROXY_* label of app. Malformed app labels are in the result's
// Err, malformed port labels in that port's Err; unknown labels become warnings.
func ParseLabels(app *discovery.App) *AppLabels {
	al := &AppLabels{AppID: app.ID, Deployment: Deployment{TargetInstances: -1}}
	raw := make([]rawLabel, 0, len(app.Labels))
	for k, v := range app.Labels {
		if !strings.HasPrefix(k, LabelPrefix) {
			continue
		}
		rest := k[len(LabelPrefix):]
		digits := 0
		for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
			digits++
		}
		if digits > 0 && digits < len(rest) && rest[digits] == '_' {
			n, err := strconv.Atoi(rest[:digits])
			if err == nil {
				raw = append(raw, rawLabel{port: n, suffix: rest[digits+1:], key: k, value: v})
				continue
			}
		}
		raw = append(raw, rawLabel{port: -1, suffix: rest, key: k, value: v})
	}
	// Map iteration order is random: sort so that errors and warnings come out the same way.
	slices.SortFunc(raw, func(a, b rawLabel) int { return strings.Compare(a.key, b.key) })

	var appErrs []error
	r := labelReader{appID: app.ID}
	for _, l := range raw {
		if l.port >= 0 {
			if l.port >= len(app.Ports) {
				al.Warnings = append(al.Warnings, Warning{AppID: app.ID, Port: l.port,
					Message: fmt.Sprintf("label %s: the app has %d ports, ignored", l.key, len(app.Ports))})
			}
			continue
		}
		switch l.key {
		case LabelGroup:
			al.Groups = splitList(l.value, ",")
		case LabelDeploymentGroup:
			al.Deployment.Group = strings.TrimSpace(l.value)
			if al.Deployment.Group == "" || strings.ContainsAny(al.Deployment.Group, " \t\r\n") {
				appErrs = append(appErrs, r.fail(l, "want a group name"))
			} else if err := checkGroupKey(al.Deployment.Group); err != nil {
				appErrs = append(appErrs, err)
			}
		case LabelDeploymentAltPort:
			al.Deployment.AltPort, appErrs = r.port(l, appErrs)
		case LabelDeploymentColour:
			al.Deployment.Colour = l.value
		case LabelDeploymentStartedAt:
			t, err := parseDeploymentTime(l.value)
			if err != nil {
				appErrs = append(appErrs, r.fail(l, "want a timestamp (RFC 3339)"))
			}
			al.Deployment.StartedAt = t
		case LabelDeploymentTargetInstances:
			n, err := strconv.Atoi(strings.TrimSpace(l.value))
			if err != nil || n < 0 {
				appErrs = append(appErrs, r.fail(l, "want a non-negative integer"))
			}
			al.Deployment.TargetInstances = n
		case LabelDeploymentNewInstances, LabelAppID:
		default:
			al.Warnings = append(al.Warnings, Warning{AppID: app.ID, Port: -1,
				Message: fmt.Sprintf("label %s: unknown, ignored", l.key)})
		}
	}
	// Data is data: the app id and the label values are held to their types here, before
	// anything renders (build_checks.go). A hostile id leaves out the whole app.
	if err := CheckAppID("app id", app.ID); err != nil {
		appErrs = append(appErrs, err)
	}
	al.Err = errors.Join(appErrs...)

	if len(app.Ports) == 1 {
		al.Ports = al.port1[:]
	} else {
		al.Ports = make([]PortLabels, len(app.Ports))
	}
	for i := range al.Ports {
		p := &al.Ports[i]
		*p = PortLabels{Index: i, Balance: "roundrobin", BindAddr: "*"}
		var errs []error
		for _, l := range raw {
			if l.port != i {
				continue
			}
			errs = r.portLabel(p, l, len(app.Ports), errs, &al.Warnings)
		}
		if len(errs) == 0 {
			if err := checkPortValues(app, p); err != nil {
				errs = append(errs, err)
			}
		}
		p.Err = errors.Join(errs...)
	}
	return al
}

type labelReader struct{ appID string }

func (r labelReader) fail(l rawLabel, want string) error {
	return &LabelError{AppID: r.appID, Label: l.key, Value: l.value, Want: want}
}

func (r labelReader) port(l rawLabel, errs []error) (int, []error) {
	n, err := strconv.Atoi(strings.TrimSpace(l.value))
	if err != nil || n < 1 || n > 65535 {
		return 0, append(errs, r.fail(l, "want a port number (1-65535)"))
	}
	return n, errs
}

// boolValue reads marathon-lb's booleans (true/t/yes/y, any case) and their negations.
func (r labelReader) boolValue(l rawLabel, errs []error) (bool, []error) {
	switch strings.ToLower(strings.TrimSpace(l.value)) {
	case "true", "t", "yes", "y", "1":
		return true, errs
	case "false", "f", "no", "n", "0":
		return false, errs
	}
	return false, append(errs, r.fail(l, "want true or false"))
}

func (r labelReader) oneWord(l rawLabel, want string, errs []error) (string, []error) {
	v := strings.TrimSpace(l.value)
	if v == "" || strings.ContainsAny(v, " \t\r\n") {
		return "", append(errs, r.fail(l, want))
	}
	return v, errs
}

func (r labelReader) path(l rawLabel, errs []error) (string, []error) {
	v := strings.TrimSpace(l.value)
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \t\r\n") {
		return "", append(errs, r.fail(l, "want a path starting with /"))
	}
	return v, errs
}

func (r labelReader) portLabel(p *PortLabels, l rawLabel, nports int, errs []error, warnings *[]Warning) []error {
	if r.templateLabel(p, l, warnings) {
		return errs
	}
	if strings.ContainsAny(l.value, "\r\n") {
		return append(errs, r.fail(l, "want a single line"))
	}
	switch l.suffix {
	case SuffixGroup:
		p.Groups, p.GroupSet = splitList(l.value, ","), true
	case SuffixEnabled:
		p.Enabled, errs = r.boolValue(l, errs)
		p.EnabledSet = true
	case SuffixVHost:
		p.VHosts = splitList(strings.ToLower(l.value), ",")
		if len(p.VHosts) == 0 || slices.ContainsFunc(p.VHosts, func(h string) bool { return !validHostname(h) }) {
			return append(errs, r.fail(l, "want comma-separated host names"))
		}
	case SuffixPath:
		p.Path = strings.TrimSpace(l.value)
		if p.Path == "" {
			return append(errs, r.fail(l, "want path prefixes (path_beg arguments)"))
		}
	case SuffixMode:
		switch m := strings.ToLower(strings.TrimSpace(l.value)); m {
		case ModeHTTP, ModeTCP:
			p.Mode = m
		default:
			return append(errs, r.fail(l, "want http or tcp"))
		}
	case SuffixBalance:
		v := strings.TrimSpace(l.value)
		algo := v
		if i := strings.IndexAny(algo, " ("); i >= 0 {
			algo = algo[:i]
		}
		if !slices.Contains(balanceAlgorithms, algo) {
			return append(errs, r.fail(l, "want a balance algorithm ("+strings.Join(balanceAlgorithms, ", ")+")"))
		}
		p.Balance = v
	case SuffixSticky:
		p.Sticky, errs = r.boolValue(l, errs)
	case SuffixRedirectToHTTPS:
		p.RedirectToHTTPS, errs = r.boolValue(l, errs)
	case SuffixUseHSTS:
		p.UseHSTS, errs = r.boolValue(l, errs)
	case SuffixSSLCert:
		p.SSLCert, errs = r.oneWord(l, "want a certificate file path", errs)
	case SuffixBindOptions:
		p.BindOptions = strings.TrimSpace(l.value)
	case SuffixBindAddr:
		p.BindAddr, errs = r.oneWord(l, "want an address or *", errs)
	case SuffixPort:
		p.Port, errs = r.port(l, errs)
	case SuffixBackendWeight:
		n, err := strconv.Atoi(strings.TrimSpace(l.value))
		if err != nil {
			return append(errs, r.fail(l, "want an integer"))
		}
		p.BackendWeight = n
	case SuffixAuth:
		parts := strings.Split(l.value, ":")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" ||
			strings.Contains(parts[0], `"`) || strings.ContainsAny(parts[1]+parts[2], " \t") {
			return append(errs, r.fail(l, "want realm:user:password (a crypt(3) hash)"))
		}
		p.Auth = &Auth{Realm: parts[0], User: parts[1], Password: parts[2]}
	case SuffixProxyPassPath:
		// A trailing slash would make the rewrite eat the next segment's slash.
		p.ProxyPassPath, errs = r.path(l, errs)
		p.ProxyPassPath = strings.TrimRight(p.ProxyPassPath, "/")
	case SuffixRevProxyPath:
		// The Location path already starts with a slash: "/" or "/app/" must not make "//".
		p.RevProxyPath, errs = r.path(l, errs)
		p.RevProxyPath = strings.TrimRight(p.RevProxyPath, "/")
	case SuffixRedirPath:
		p.RedirPath, errs = r.oneWord(l, "want a path or URL", errs)
	case SuffixNetworkAllowed:
		p.NetworkAllowed = strings.Fields(l.value)
		if len(p.NetworkAllowed) == 0 || slices.ContainsFunc(p.NetworkAllowed, func(n string) bool { return !validNetwork(n) }) {
			return append(errs, r.fail(l, "want space-separated IP addresses or CIDR networks"))
		}
	case SuffixHealthCheckPortIndex:
		n, err := strconv.Atoi(strings.TrimSpace(l.value))
		if err != nil || n < 0 || n >= nports {
			return append(errs, r.fail(l, fmt.Sprintf("want a port index from 0 to %d", nports-1)))
		}
		p.HealthCheckPortIndex, p.HealthCheckPortIndexSet = n, true
	default:
		*warnings = append(*warnings, Warning{AppID: r.appID, Port: l.port,
			Message: fmt.Sprintf("label %s: unknown, ignored", l.key)})
	}
	return errs
}

// templateLabel takes a per-port template override (HAPROXY_{n}_<TEMPLATE>), and reports
// whether the label named a template. HTTP_BACKEND_REDIR is both a template and a port label
// in marathon-lb; as a label it is the redirect path.
func (r labelReader) templateLabel(p *PortLabels, l rawLabel, warnings *[]Warning) bool {
	if l.suffix == SuffixRedirPath {
		return false
	}
	spec, ok := templates.Lookup(l.suffix)
	if !ok {
		return false
	}
	if !spec.PerApp {
		*warnings = append(*warnings, Warning{AppID: r.appID, Port: l.port,
			Message: fmt.Sprintf("label %s: template %s%s cannot be overridden per app, ignored", l.key, LabelPrefix, l.suffix)})
		return true
	}
	if p.Templates == nil {
		p.Templates = map[string]string{}
	}
	p.Templates[l.suffix] = strings.ReplaceAll(l.value, "\r\n", "\n")
	return true
}

// validNetwork reports whether n is an IP address or a CIDR network.
func validNetwork(n string) bool {
	if _, err := netip.ParsePrefix(n); err == nil {
		return true
	}
	_, err := netip.ParseAddr(n)
	return err == nil
}

// validHostname accepts what can safely go into an ACL value and a map key.
func validHostname(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '*') {
			return false
		}
	}
	return true
}

// splitList splits s at sep, trims each part and drops empty ones.
func splitList(s, sep string) []string {
	if !strings.Contains(s, sep) {
		if s = strings.TrimSpace(s); s == "" {
			return nil
		}
		return []string{s}
	}
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// deploymentTimeLayouts: bluegreen_deploy.py writes Python's datetime.isoformat(), which has
// no time zone; Marathon-style RFC 3339 is accepted too.
var deploymentTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"}

func parseDeploymentTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range deploymentTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %q", s)
}
