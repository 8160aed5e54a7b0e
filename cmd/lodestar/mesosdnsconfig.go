package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// A mesos-dns config.json (--mesos-dns-config) is read as mesos-dns reads it: a JSON object
// decoded by encoding/json into its Config, so a key matches a field case-insensitively, the
// last of equal keys wins, null leaves a field as it was, and a value of the wrong type is an
// error. Each key maps onto lodestar's flags; a flag set on the command line, in the
// environment or in --config wins over the key. Keys mesos-dns does not read are warnings.

// compatNote is something a compatibility file makes lodestar say at start.
type compatNote struct {
	warn bool
	msg  string
}

// logCompatNotes says the notes of --mesos-dns-config and --bamboo-config.
func logCompatNotes(log *slog.Logger, notes []compatNote) {
	for _, n := range notes {
		if n.warn {
			log.Warn(n.msg)
		} else {
			log.Info(n.msg)
		}
	}
}

// flagValue is what one key of a compatibility file sets: a flag, to one or more values (a
// list flag gets each).
type flagValue struct {
	key    string // the file's key(s) it comes from, for errors
	flag   string
	values []string
}

// applyFlagValues sets each flag not in set; set gains them.
func applyFlagValues(fs *flag.FlagSet, source string, vals []flagValue, set map[string]bool) error {
	var errs []error
	done := map[string]bool{}
	for _, v := range vals {
		if set[v.flag] {
			continue
		}
		f := fs.Lookup(v.flag)
		if f == nil {
			return fmt.Errorf("%s: key %s maps to --%s, which 'lodestar' lacks here", source, v.key, v.flag)
		}
		for _, s := range v.values {
			if err := f.Value.Set(s); err != nil {
				errs = append(errs, fmt.Errorf("%s: key %s (--%s %q): %w", source, v.key, v.flag, s, err))
			}
		}
		done[v.flag] = true
	}
	for name := range done {
		set[name] = true
	}
	return errors.Join(errs...)
}

// addMesosDNSConfigFlag adds --mesos-dns-config to c; notes gathers what the file makes
// lodestar say at start.
func addMesosDNSConfigFlag(c *command, notes *[]compatNote) {
	path := c.fs.String("mesos-dns-config", "", "read mesos-dns's config.json `file`: its keys set the equivalent flags (docs/migrating.md); flags given otherwise win")
	c.compatFiles = append(c.compatFiles, func(set map[string]bool) error {
		if *path == "" {
			return nil
		}
		data, err := os.ReadFile(*path)
		if err != nil {
			return fmt.Errorf("--mesos-dns-config: %w", err)
		}
		source := "--mesos-dns-config " + *path
		vals, warnings, err := mesosDNSFlagValues(data)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		for _, w := range warnings {
			*notes = append(*notes, compatNote{warn: true, msg: source + ": " + w})
		}
		return applyFlagValues(c.fs, source, vals, set)
	})
}

// mesosDNSFile is what lodestar reads of mesos-dns's Config, with mesos-dns's defaults.
type mesosDNSFile struct {
	RefreshSeconds, Port, Timeout, StateTimeoutSeconds, ZkDetectionTimeout, HttpPort int
	TTL                                                                              int32
	SRVRecordDefaultWeight                                                           uint16
	SOASerial, SOARefresh, SOARetry, SOAExpire, SOAMinttl                            uint32
	SOAMname, SOARname                                                               string
	Masters, Resolvers, IPSources                                                    []string
	ZoneResolvers                                                                    map[string][]string
	Zk, Domain, File, Listener, HTTPListener                                         string
	RecurseOn, DnsOn, HttpOn, ExternalOn, EnforceRFC952, SetTruncateBit              bool
	EnumerationOn, MesosHTTPSOn                                                      bool
	CACertFile, CertFile, KeyFile, IAMConfigFile, MesosAuthentication                string
	MesosCredentials                                                                 struct{ Principal, Secret string }

	seen map[string]bool // the keys the file gave, by the field's name
}

func newMesosDNSFile() *mesosDNSFile {
	return &mesosDNSFile{
		RefreshSeconds: 60, Port: 53, Timeout: 5, StateTimeoutSeconds: 300, ZkDetectionTimeout: 30,
		HttpPort: 8123, TTL: 60, SRVRecordDefaultWeight: 1,
		SOARefresh: 60, SOARetry: 600, SOAExpire: 86400, SOAMinttl: 60,
		SOAMname: "ns1.mesos", SOARname: "root.ns1.mesos", Domain: "mesos",
		Listener: "0.0.0.0", HTTPListener: "0.0.0.0",
		DnsOn: true, HttpOn: true, ExternalOn: true, SetTruncateBit: true, RecurseOn: true, EnumerationOn: true,
		seen: map[string]bool{},
	}
}

// fields are the config's fields by the key mesos-dns's JSON decoding matches (the field's
// name, or its JSON tag: HttpPort, DnsOn, HttpOn).
func (m *mesosDNSFile) fields() map[string]any {
	return map[string]any{
		"RefreshSeconds": &m.RefreshSeconds, "Port": &m.Port, "Timeout": &m.Timeout,
		"StateTimeoutSeconds": &m.StateTimeoutSeconds, "ZkDetectionTimeout": &m.ZkDetectionTimeout,
		"HttpPort": &m.HttpPort, "TTL": &m.TTL, "SRVRecordDefaultWeight": &m.SRVRecordDefaultWeight,
		"SOASerial": &m.SOASerial, "SOARefresh": &m.SOARefresh, "SOARetry": &m.SOARetry,
		"SOAExpire": &m.SOAExpire, "SOAMinttl": &m.SOAMinttl, "SOAMname": &m.SOAMname, "SOARname": &m.SOARname,
		"Masters": &m.Masters, "ZoneResolvers": &m.ZoneResolvers, "Resolvers": &m.Resolvers,
		"IPSources": &m.IPSources, "Zk": &m.Zk, "Domain": &m.Domain, "File": &m.File,
		"Listener": &m.Listener, "HTTPListener": &m.HTTPListener, "RecurseOn": &m.RecurseOn,
		"DnsOn": &m.DnsOn, "HttpOn": &m.HttpOn, "ExternalOn": &m.ExternalOn,
		"EnforceRFC952": &m.EnforceRFC952, "SetTruncateBit": &m.SetTruncateBit,
		"EnumerationOn": &m.EnumerationOn, "MesosHTTPSOn": &m.MesosHTTPSOn,
		"CACertFile": &m.CACertFile, "CertFile": &m.CertFile, "KeyFile": &m.KeyFile,
		"MesosCredentials": &m.MesosCredentials, "IAMConfigFile": &m.IAMConfigFile,
		"MesosAuthentication": &m.MesosAuthentication,
	}
}

// mesosDNSKeyName is the field a key of config.json sets, "" for none.
func mesosDNSKeyName(key string) string {
	for name := range newMesosDNSFile().fields() {
		if strings.EqualFold(name, key) {
			return name
		}
	}
	return ""
}

// decodeMesosDNSFile decodes config.json key by key, in the file's order.
func decodeMesosDNSFile(data []byte) (*mesosDNSFile, []string, error) {
	m := newMesosDNSFile()
	fields := m.fields()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not a JSON object")
	}
	var warnings []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("not valid JSON: %w", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("key %q: not valid JSON: %w", key, err)
		}
		name := mesosDNSKeyName(key)
		switch {
		case name == "" && strings.EqualFold(key, "ns"):
			warnings = append(warnings, `key "ns" ignored: mesos-dns does not read it either (its sample config has it; the name server is SOAMname)`)
			continue
		case name == "":
			warnings = append(warnings, fmt.Sprintf("unknown key %q ignored: it is no key of mesos-dns's config", key))
			continue
		case string(raw) == "null":
			continue
		}
		if err := json.Unmarshal(raw, fields[name]); err != nil {
			return nil, nil, fmt.Errorf("key %q: %w", key, jsonTypeError(err))
		}
		m.seen[name] = true
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("not valid JSON: data after the object")
	}
	return m, warnings, nil
}

// jsonTypeError says what a value should have been.
func jsonTypeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("a JSON %s where a %s belongs", te.Value, te.Type)
	}
	return err
}

// mesosDNSFlagValues maps config.json onto flags; the warnings name what has no effect.
func mesosDNSFlagValues(data []byte) ([]flagValue, []string, error) {
	m, warnings, err := decodeMesosDNSFile(data)
	if err != nil {
		return nil, nil, err
	}
	if err := m.check(); err != nil {
		return nil, nil, err
	}
	vals, err := m.flagValues()
	if err != nil {
		return nil, nil, err
	}
	return vals, append(warnings, m.warnings()...), nil
}

// check applies mesos-dns's bounds, each error naming its key.
func (m *mesosDNSFile) check() error {
	var errs []error
	for _, p := range []struct {
		key string
		v   int
	}{{"port", m.Port}, {"httpport", m.HttpPort}} {
		if p.v < 1 || p.v > 65535 {
			errs = append(errs, fmt.Errorf("key %q: %d is no port (1 to 65535)", p.key, p.v))
		}
	}
	for _, p := range []struct {
		key string
		v   int
	}{{"refreshSeconds", m.RefreshSeconds}, {"timeout", m.Timeout}, {"stateTimeoutSeconds", m.StateTimeoutSeconds}} {
		if p.v <= 0 {
			errs = append(errs, fmt.Errorf("key %q: %d, want at least 1 second", p.key, p.v))
		}
	}
	if m.TTL < 0 {
		errs = append(errs, fmt.Errorf("key \"ttl\": %d, want at least 0", m.TTL))
	}
	for _, l := range []struct{ key, v string }{{"listener", m.Listener}, {"httpListener", m.HTTPListener}} {
		if _, err := netip.ParseAddr(l.v); err != nil {
			errs = append(errs, fmt.Errorf("key %q: %q is no IP address", l.key, l.v))
		}
	}
	for _, ms := range m.Masters {
		if _, port, err := net.SplitHostPort(ms); err != nil || !validPort(port) {
			errs = append(errs, fmt.Errorf("key \"masters\": %q, want host:port", ms))
		}
	}
	for _, src := range m.IPSources {
		if !slices.Contains([]string{"netinfo", "mesos", "docker", "host"}, src) {
			errs = append(errs, fmt.Errorf("key \"IPSources\": %q, want netinfo, mesos, docker or host", src))
		}
	}
	for _, n := range []struct{ key, v string }{{"SOAMname", m.SOAMname}, {"SOARname", soaMailboxName(m.SOARname)}} {
		if !plausibleDomainName(n.v) {
			errs = append(errs, fmt.Errorf("key %q: %q is no domain name", n.key, n.v))
		}
	}
	switch m.MesosAuthentication {
	case "", "basic":
	case "iam":
		errs = append(errs, errors.New(`key "MesosAuthentication": "iam" (DC/OS IAM) is not supported by lodestar; use "basic" with MesosCredentials, or --mesos-auth`))
	default:
		errs = append(errs, fmt.Errorf("key \"MesosAuthentication\": %q, want \"\", \"basic\" or \"iam\"", m.MesosAuthentication))
	}
	if m.MesosAuthentication == "basic" && m.MesosCredentials.Principal == "" {
		errs = append(errs, errors.New(`key "MesosCredentials": "basic" MesosAuthentication needs a principal`))
	}
	return errors.Join(errs...)
}

// plausibleDomainName: labels of letters, digits, '-' and '_', at most 63 bytes each
// (dnsserver checks names in full).
func plausibleDomainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || strings.ContainsFunc(l, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			return false
		}
	}
	return true
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// resolverAddr is a resolver as host:port: a bare IP means port 53, as in mesos-dns.
func resolverAddr(key, r string) (string, error) {
	if ip, err := netip.ParseAddr(r); err == nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(r)
	if err != nil || !validPort(port) {
		return "", fmt.Errorf("key %q: %q, want an IP address or IP:port", key, r)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", fmt.Errorf("key %q: %q, want an IP address or IP:port", key, r)
	}
	return r, nil
}

// flagValues are the flags config.json sets. Where DNS and the HTTP API listen is always set
// (mesos-dns serves both by default, on 0.0.0.0:53 and 0.0.0.0:8123); other flags only when
// the file gives their key.
func (m *mesosDNSFile) flagValues() ([]flagValue, error) {
	var vals []flagValue
	add := func(key, flagName string, values ...string) {
		vals = append(vals, flagValue{key: key, flag: flagName, values: values})
	}
	num := func(v uint64) string { return strconv.FormatUint(v, 10) }
	dnsListen := ""
	if m.DnsOn {
		dnsListen = net.JoinHostPort(m.Listener, strconv.Itoa(m.Port))
	}
	add(`"listener", "port", "dnson"`, "dns-listen", dnsListen)
	if m.HttpOn {
		add(`"httpListener", "httpport", "httpon"`, "api-listen", net.JoinHostPort(m.HTTPListener, strconv.Itoa(m.HttpPort)))
	}
	given := func(name string) bool { return m.seen[name] }
	if given("Zk") && m.Zk != "" {
		add(`"zk"`, "mesos-zk", m.Zk)
	}
	if given("Masters") && len(m.Masters) > 0 {
		add(`"masters"`, "mesos-master", m.Masters...)
	}
	for _, d := range []struct {
		name, flagName string
		seconds        int
	}{{"RefreshSeconds", "mesos-refresh", m.RefreshSeconds}, {"Timeout", "dns-upstream-timeout", m.Timeout}} {
		if given(d.name) {
			add(strconv.Quote(d.name), d.flagName, strconv.Itoa(d.seconds)+"s")
		}
	}
	for _, u := range []struct {
		name, flagName string
		v              uint64
	}{
		{"TTL", "dns-ttl", uint64(m.TTL)}, {"SRVRecordDefaultWeight", "dns-srv-weight", uint64(m.SRVRecordDefaultWeight)},
		{"SOASerial", "dns-soa-serial", uint64(m.SOASerial)}, {"SOARefresh", "dns-soa-refresh", uint64(m.SOARefresh)},
		{"SOARetry", "dns-soa-retry", uint64(m.SOARetry)}, {"SOAExpire", "dns-soa-expire", uint64(m.SOAExpire)},
		{"SOAMinttl", "dns-negative-ttl", uint64(m.SOAMinttl)},
	} {
		if given(u.name) {
			add(strconv.Quote(u.name), u.flagName, num(u.v))
		}
	}
	for _, s := range []struct{ name, flagName, v string }{
		{"SOAMname", "dns-soa-mname", m.SOAMname}, {"SOARname", "dns-soa-rname", m.SOARname},
		{"Domain", "dns-domain", m.Domain}, {"CACertFile", "mesos-ca-cert", m.CACertFile},
	} {
		if given(s.name) {
			add(strconv.Quote(s.name), s.flagName, s.v)
		}
	}
	for _, b := range []struct {
		name, flagName string
		v              bool
	}{{"ExternalOn", "dns-forward", m.ExternalOn}, {"EnforceRFC952", "enforce-rfc952", m.EnforceRFC952}, {"MesosHTTPSOn", "mesos-https", m.MesosHTTPSOn}} {
		if given(b.name) {
			add(strconv.Quote(b.name), b.flagName, strconv.FormatBool(b.v))
		}
	}
	if given("IPSources") {
		add(`"IPSources"`, "ip-sources", m.IPSources...)
	}
	return m.forwardingValues(vals)
}

// forwardingValues adds the resolvers and the Mesos credentials.
func (m *mesosDNSFile) forwardingValues(vals []flagValue) ([]flagValue, error) {
	var ups []string
	for _, r := range m.Resolvers {
		a, err := resolverAddr("resolvers", r)
		if err != nil {
			return nil, err
		}
		ups = append(ups, a)
	}
	if len(ups) > 0 {
		vals = append(vals, flagValue{key: `"resolvers"`, flag: "dns-upstream", values: ups})
	}
	zones := make([]string, 0, len(m.ZoneResolvers))
	for z := range m.ZoneResolvers {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	var zoneUps []string
	for _, z := range zones {
		for _, r := range m.ZoneResolvers[z] {
			a, err := resolverAddr("ZoneResolvers", r)
			if err != nil {
				return nil, err
			}
			zoneUps = append(zoneUps, z+"="+a)
		}
	}
	if len(zoneUps) > 0 {
		vals = append(vals, flagValue{key: `"ZoneResolvers"`, flag: "dns-zone-upstream", values: zoneUps})
	}
	if m.MesosAuthentication == "basic" {
		vals = append(vals, flagValue{key: `"MesosCredentials"`, flag: "mesos-auth", values: []string{m.MesosCredentials.Principal + ":" + m.MesosCredentials.Secret}})
	}
	return vals, nil
}

// warnings name the keys given that have no effect under lodestar, and why.
func (m *mesosDNSFile) warnings() []string {
	var w []string
	say := func(cond bool, format string, args ...any) {
		if cond {
			w = append(w, fmt.Sprintf(format, args...))
		}
	}
	say(!m.HttpOn, `"httpon" false: lodestar's HTTP API (health, metrics, and mesos-dns's /v1/*) stays on, at --api-listen`)
	say(m.seen["StateTimeoutSeconds"], `"stateTimeoutSeconds" has no effect: lodestar bounds one Mesos state request at 30 s`)
	say(m.seen["ZkDetectionTimeout"], `"zkDetectionTimeout" has no effect: lodestar keeps looking for the Mesos leader in ZooKeeper, with the masters of "masters" as the fallback`)
	say(m.seen["RecurseOn"] && m.RecurseOn != m.ExternalOn, `"recurseOn" %t has no effect: lodestar sets RA exactly when it forwards ("externalon" %t)`, m.RecurseOn, m.ExternalOn)
	say(!m.SetTruncateBit, `"SetTruncateBit" false has no effect: lodestar always sets TC on a truncated UDP answer (clients retry over TCP)`)
	say(!m.EnumerationOn, `"EnumerationOn" false has no effect: /v1/enumerate stays on`)
	say(m.seen["File"], `"File" has no effect: mesos-dns sets it itself to the file it read`)
	say(m.CertFile != "" || m.KeyFile != "", `"CertFile"/"KeyFile" have no effect: lodestar presents no client certificate to Mesos`)
	say(m.IAMConfigFile != "", `"IAMConfigFile" has no effect: DC/OS IAM is not supported`)
	say(m.MesosAuthentication == "" && m.MesosCredentials.Principal != "", `"MesosCredentials" unused without "MesosAuthentication": "basic" (as in mesos-dns)`)
	return w
}

// foreignConfigHint points --config's "unknown key" error at the flag that reads another
// tool's file, when the key is one of its keys.
func (c *command) foreignConfigHint(key string) string {
	if c.fs.Lookup("mesos-dns-config") != nil && (mesosDNSKeyName(key) != "" || strings.EqualFold(key, "ns")) {
		return "; is it mesos-dns's config.json? read that with --mesos-dns-config"
	}
	if c.fs.Lookup("bamboo-config") != nil && slices.ContainsFunc(bambooKeys[""], func(k string) bool { return strings.EqualFold(k, key) }) {
		return "; is it bamboo's production.json? read that with --bamboo-config"
	}
	return ""
}
