package haproxy

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// benchBackendHead is a typical backend override: the built-in BACKEND_HEAD plus a timeout.
const benchBackendHead = "\nbackend shop_web_10000\n  balance roundrobin\n  mode http\n  timeout server 5m\n  option forwardfor\n"

// BenchmarkConfineSnippet: one typical override as a rebuild sees it, with the config-parser
// verdict cached (the same app renders the same text on every build).
func BenchmarkConfineSnippet(b *testing.B) {
	scope := confineScope("HAPROXY_0_BACKEND_HEAD")
	if err := ConfineSnippet(SectionBackendHead, benchBackendHead, scope); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ConfineSnippet(SectionBackendHead, benchBackendHead, scope); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfineSnippetCold: a text never seen before (a new app, a changed label), which
// config-parser reads.
func BenchmarkConfineSnippetCold(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		// A timeout never used before makes a text config-parser has not read.
		timeout := strconv.FormatInt(coldTexts.Add(1), 10)
		scope := confineScope("HAPROXY_0_BACKEND_HEAD")
		text := "\nbackend " + own + "\n  balance roundrobin\n  mode http\n  timeout server " + timeout + "s\n  option forwardfor\n"
		if err := ConfineSnippet(SectionBackendHead, text, scope); err != nil {
			b.Fatal(err)
		}
	}
}

var coldTexts atomic.Int64

// BenchmarkConfineSnippetOtherApp: the same label on another app (another backend name and
// host): the cached config-parser verdict is shared.
func BenchmarkConfineSnippetOtherApp(b *testing.B) {
	if err := ConfineSnippet(SectionBackendHead, benchBackendHead, confineScope("HAPROXY_0_BACKEND_HEAD")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		name := "team_app" + strconv.Itoa(i) + "_10000"
		scope := NewAppScope("HAPROXY_0_BACKEND_HEAD", "/team/app"+strconv.Itoa(i), name, nil)
		text := "\nbackend " + name + "\n  balance roundrobin\n  mode http\n  timeout server 5m\n  option forwardfor\n"
		if err := ConfineSnippet(SectionBackendHead, text, scope); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfineSharedFrontend: the built-in HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH as a label,
// cached: the most conditions a shared-frontend snippet usually has.
func BenchmarkConfineSharedFrontend(b *testing.B) {
	text := "  acl " + ownACL + " hdr(host),field(1,:) -i shop.example.com\n" +
		"  acl auth_x_" + own + " http_auth(user_" + own + ")\n" +
		"  acl path_" + own + " path_beg /api\n" +
		"  http-request auth realm \"shop\" if " + ownACL + " path_" + own + " !auth_x_" + own + "\n" +
		"  use_backend " + own + " if " + ownACL + " path_" + own + "\n"
	scope := confineScope("HAPROXY_0_HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH")
	if err := ConfineSnippet(SectionSharedFrontend, text, scope); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ConfineSnippet(SectionSharedFrontend, text, scope); err != nil {
			b.Fatal(err)
		}
	}
}
