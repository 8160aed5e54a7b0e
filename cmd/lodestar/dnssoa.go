package main

import (
	"fmt"
	"strings"

	"github.com/lodestar-lb/lodestar/dnsserver"
)

// soaFlags are the SOA's fields, mesos-dns's SOAMname, SOARname, SOARefresh, SOARetry,
// SOAExpire and SOASerial (its SOAMinttl is --dns-negative-ttl).
type soaFlags struct {
	mname, rname           *string
	refresh, retry, expire *uint
	serial                 *uint
}

func addSOAFlags(c *command) *soaFlags {
	fs := c.fs
	return &soaFlags{
		mname:   fs.String("dns-soa-mname", "", "SOA primary name server `name` (default ns1.{--dns-domain})"),
		rname:   fs.String("dns-soa-rname", "", "SOA responsible mailbox, as a name (hostmaster.example.com) or an `address` (hostmaster@example.com) (default root.ns1.{--dns-domain})"),
		refresh: fs.Uint("dns-soa-refresh", uint(dnsserver.DefaultSOARefresh), "SOA refresh interval in `seconds`"),
		retry:   fs.Uint("dns-soa-retry", uint(dnsserver.DefaultSOARetry), "SOA retry interval in `seconds`"),
		expire:  fs.Uint("dns-soa-expire", uint(dnsserver.DefaultSOAExpire), "SOA expire time in `seconds`"),
		serial:  fs.Uint("dns-soa-serial", 0, "lowest SOA `serial` served first; later serials advance from it (default: the time of the first build)"),
	}
}

// apply checks the SOA flags and sets them on rc.
func (f *soaFlags) apply(rc *dnsserver.RecordConfig) error {
	for _, t := range []struct {
		name string
		v    uint
	}{{"dns-soa-refresh", *f.refresh}, {"dns-soa-retry", *f.retry}, {"dns-soa-expire", *f.expire}} {
		if t.v < 1 || t.v > 1<<31-1 {
			return fmt.Errorf("--%s %d: want 1 to 2147483647 seconds", t.name, t.v)
		}
	}
	if *f.serial > 1<<32-1 {
		return fmt.Errorf("--dns-soa-serial %d: want 0 to 4294967295", *f.serial)
	}
	rc.SOAMname = strings.TrimSpace(*f.mname)
	rc.SOARname = soaMailboxName(*f.rname)
	rc.SOARefresh, rc.SOARetry, rc.SOAExpire = uint32(*f.refresh), uint32(*f.retry), uint32(*f.expire)
	rc.SOAMinSerial = uint32(*f.serial)
	return nil // the names are checked with the rest of the records' configuration (dnsserver.NewFrontEnd)
}

// soaMailboxName turns a mailbox address into its name form, as mesos-dns does with SOARname:
// hostmaster@example.com is hostmaster.example.com.
func soaMailboxName(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "@", ".")
}
