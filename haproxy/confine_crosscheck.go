package haproxy

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/options"
)

// crossCheck parses the snippet, wrapped as lodestar writes it, with config-parser and
// requires exactly the one expected section and nothing in global. The app's own names are
// replaced by placeholders first (crossCheckNames), so that every app with the same template
// label shares one cached verdict: config-parser takes a quarter of a millisecond a snippet.
func crossCheck(kind SectionKind, text string, scope AppScope) error {
	text = crossCheckNames(text, scope)
	name := crossCheckNames(scope.Backend, scope)
	var wrapped string
	var section parser.Section
	switch kind {
	case SectionBackendHead:
		wrapped, section = text, parser.Backends
	case SectionFrontendHead:
		wrapped, section = text, parser.Frontends
	case SectionUserlistHead:
		wrapped, section, name = text, parser.UserList, crossCheckNames(scope.Userlist, scope)
	case SectionFrontend, SectionSharedFrontend:
		wrapped, section = "frontend "+name+"\n"+text, parser.Frontends
	case SectionServerOptions:
		wrapped, section = "backend "+name+"\n  server s1 127.0.0.1:1 "+text, parser.Backends
	default:
		wrapped, section = "backend "+name+"\n"+text, parser.Backends
	}
	key := string(rune('0'+kind)) + name + "\n" + wrapped
	crossCache.Lock()
	err, ok := crossCache.m[key]
	crossCache.Unlock()
	if ok {
		return err
	}
	err = parseOneSection(wrapped, section, name)
	crossCache.Lock()
	if crossCache.m == nil || len(crossCache.m) >= maxCrossCache {
		crossCache.m = make(map[string]error)
	}
	crossCache.m[key] = err
	crossCache.Unlock()
	return err
}

// crossCheckNames replaces the app's own names in s by fixed placeholders. Only names that
// can never be a keyword are replaced (the backend name ends in _<port>, the app id starts
// with '/', a host or address holds '.' or ':'), and a placeholder is one word, so the
// sections config-parser reads are the same. The line pass has checked the names already.
func crossCheckNames(s string, scope AppScope) string {
	if scope.Backend != "" {
		s = strings.ReplaceAll(s, scope.Backend, "lodestar_backend")
	}
	if strings.HasPrefix(scope.AppID, "/") && len(scope.AppID) > 1 {
		s = strings.ReplaceAll(s, scope.AppID, "/lodestar/app")
	}
	for i, h := range scope.Hosts {
		if strings.Contains(h, ".") {
			s = strings.ReplaceAll(s, h, "host"+strconv.Itoa(i)+".lodestar.invalid")
		}
	}
	for _, a := range []string{scope.ServerAddr, scope.ServerHost} {
		if strings.ContainsAny(a, ".:") {
			s = strings.ReplaceAll(s, a, "192.0.2.1")
		}
	}
	return s
}

// maxCrossCache bounds the cached config-parser verdicts; the cache starts over when full.
const maxCrossCache = 8192

var crossCache struct {
	sync.Mutex
	m map[string]error
}

// configSections are the section types config-parser knows, global and comments aside.
var configSections = []parser.Section{parser.Defaults, parser.Frontends, parser.Backends, parser.Listen,
	parser.UserList, parser.Peers, parser.Resolvers, parser.Mailers, parser.Cache, parser.Program,
	parser.HTTPErrors, parser.Ring, parser.FCGIApp, parser.LogForward}

// globalProbes are global directives the cross-check looks for; "" is config-parser's parser
// of lines it does not know.
var globalProbes = []string{"", "daemon", "stats socket", "lua-load", "lua-prepend-path", "external-check",
	"setenv", "presetenv", "resetenv", "unsetenv", "chroot", "user", "group", "uid", "gid", "master-worker"}

// parseOneSection parses text with config-parser (never a defaults section: the line pass
// refused it, and config-parser writes a package variable when it reads one) and requires
// exactly one section, of type want and named name, and an empty global section.
func parseOneSection(text string, want parser.Section, name string) (err error) {
	// config-parser v5.1.6 panics on some malformed lines ("http-request set-var( 0", found by
	// FuzzConfineSnippet): a snippet it cannot read is refused, never a crashed build.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("config-parser cannot read the snippet: %v", r)
		}
	}()
	p, err := parser.New(options.String(text))
	if err != nil {
		return fmt.Errorf("config-parser: %w", err)
	}
	var found []string
	for _, s := range configSections {
		names, err := p.SectionsGet(s)
		if err != nil {
			continue
		}
		for _, n := range names {
			found = append(found, string(s)+" "+n)
		}
	}
	if len(found) != 1 || found[0] != string(want)+" "+name {
		return fmt.Errorf("config-parser reads sections %q, want exactly %q", found, string(want)+" "+name)
	}
	for _, kw := range globalProbes {
		if _, err := p.Get(parser.Global, parser.GlobalSectionName, kw); err == nil {
			return fmt.Errorf("config-parser reads %q in the global section", kw)
		}
	}
	return nil
}
