package discovery

import "strings"

// RedactZKURL hides the password of a zk://user:password@hosts/path URL, for messages and
// logs; anything else is returned as it is.
func RedactZKURL(raw string) string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(raw), "zk://")
	if !ok {
		return raw
	}
	hosts, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(hosts, "@")
	if at < 0 {
		// A password may hold a "/" (the URL is bad then, and must still not show it).
		at = strings.LastIndex(rest, "@")
	}
	if at < 0 {
		return raw
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return "zk://" + user + ":xxxxx@" + rest[at+1:]
}
