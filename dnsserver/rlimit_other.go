//go:build !unix

package dnsserver

// fileLimit: no descriptor limit to read on this system.
func fileLimit() (uint64, bool) { return 0, false }
