package dnsserver

import (
	"regexp"
	"slices"
)

// AppNames returns the names (A, AAAA and SRV, sorted FQDNs) that the tasks of a Marathon app
// have in the index: "{task}.{framework}.{domain}.", the canonical per-task names, the SRV
// names (named ports included) and their ".slave." twins. It scans the index, so it suits the
// API, not the query path.
func (ix *RecordIndex) AppNames(appID string) []string {
	if ix == nil {
		return nil
	}
	task := cleanLabel(marathonTaskName(appID), ix.cfg.EnforceRFC952) // as the records are named
	fw, _ := frameworkDomain(ix.cfg.MarathonFramework, ix.cfg.EnforceRFC952)
	if task == "" || fw == "" {
		return nil
	}
	q := regexp.QuoteMeta
	re := regexp.MustCompile(`^(_[a-z0-9-]+\.)?_?` + q(task) + `(-[a-z0-9]{5}-[a-z0-9]+)?\.(_tcp\.|_udp\.)?` +
		q(fw) + `\.(slave\.)?` + q(ix.Domain) + `$`)
	var out []string
	for name := range ix.names {
		if re.MatchString(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
