package templates

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func values(kv ...string) *Values {
	var v Values
	for i := 0; i+1 < len(kv); i += 2 {
		f, ok := fieldByName[kv[i]]
		if !ok {
			panic("no field " + kv[i])
		}
		v.Set(f, kv[i+1])
	}
	return &v
}

func TestFormatTemplates(t *testing.T) {
	tests := []struct {
		name, text string
		vals       *Values
		want       string
		err        string
	}{
		{name: BackendHead, text: "backend {backend}\n  balance {balance}\n",
			vals: values("backend", "shop_10000", "balance", "leastconn"), want: "backend shop_10000\n  balance leastconn\n"},
		{name: HTTPSFrontendACL, text: "  use_backend {backend} if {{ ssl_fc_sni {hostname} }}\n",
			vals: values("backend", "b", "hostname", "x.com"), want: "  use_backend b if { ssl_fc_sni x.com }\n"},
		{name: BackendHead, text: "no fields at all", vals: values(), want: "no fields at all"},
		{name: BackendHead, text: "backend {backend", err: "line 1: unterminated {"},
		{name: BackendHead, text: "a\nb }", err: "line 2: single } (write }} for a literal brace)"},
		{name: BackendHead, text: "x {}", err: "line 1: empty {} (positional fields are not supported)"},
		{name: BackendHead, text: "x {healthCheck[path]}", err: "line 1: {healthCheck[path]}: only plain {name} fields are supported"},
		{name: BackendHead, text: "x {backend!r}", err: "line 1: {backend!r}: only plain {name} fields are supported"},
		{name: HTTPSFrontendHead, text: "bind {httpsBind} ssl {backend}", err: "line 1: unknown field {backend} (this template has: httpsBind, sslCerts)"},
		{name: BackendHead, text: "{runDir}", err: "line 1: unknown field {runDir}"},
		{name: BackendHead, text: "backend {backend}\n  balance {balance}\n", vals: values("backend", "b"),
			err: "template HAPROXY_BACKEND_HEAD (environment): {balance} has no value here"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			tmpl, err := Parse(tt.name, tt.text, SourceEnv)
			if err == nil {
				var out string
				out, err = tmpl.Execute(tt.vals)
				if err == nil && out != tt.want {
					t.Errorf("got %q, want %q", out, tt.want)
				}
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}

// TestVerbatimTemplates: marathon-lb wrote these out as they were, so braces are literal;
// only the template's own fields are replaced.
func TestVerbatimTemplates(t *testing.T) {
	text := "global\n  stats socket {runDir}/admin.sock\n  # {backend} { ssl_fc } {{x}} {unclosed\n"
	tmpl, err := Parse(Head, text, SourceFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Execute(values("runDir", "/run/x", "backend", "b"))
	if err != nil {
		t.Fatal(err)
	}
	want := "global\n  stats socket /run/x/admin.sock\n  # {backend} { ssl_fc } {{x}} {unclosed\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !tmpl.Uses(FieldRunDir) || tmpl.Uses(FieldBackend) {
		t.Error("Uses")
	}
}

func TestBuiltinsParseAndMatchFiles(t *testing.T) {
	set := Builtin()
	entries, err := builtinFS.ReadDir("builtin")
	if err != nil {
		t.Fatal(err)
	}
	var files, names []string
	for _, e := range entries {
		files = append(files, strings.TrimPrefix(e.Name(), prefix))
	}
	for _, s := range Specs() {
		names = append(names, s.Name)
		tmpl, err := set.Get(s.Name)
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		if tmpl.Source() != SourceBuiltin || tmpl.Text() != s.Default {
			t.Errorf("%s: source %v", s.Name, tmpl.Source())
		}
		if strings.Contains(s.Default, "reqirep") || strings.Contains(s.Default, "rspadd") || strings.Contains(s.Default, "rspirep") {
			t.Errorf("%s uses a keyword HAProxy 2.x removed", s.Name)
		}
	}
	if !slices.Equal(files, names) {
		t.Errorf("builtin files %v\ncatalog %v", files, names)
	}
	if len(names) != 49 {
		t.Errorf("%d templates", len(names))
	}
}

func TestLoadLookupOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, prefix+name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(BackendHead, "backend {backend} # file\r\n")
	write(FrontendHead, "frontend {nope}\n")
	env := map[string]string{
		prefix + BackendHead:         "backend {backend} # env\n",
		prefix + FrontendBackendGlue: "  use_backend {backend} # env\n",
	}
	set, err := Load(dir, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, src Source, origin, text string) {
		t.Helper()
		tmpl, err := set.Get(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tmpl.Source() != src || tmpl.Origin() != origin || tmpl.Text() != text {
			t.Errorf("%s: %v %q %q", name, tmpl.Source(), tmpl.Origin(), tmpl.Text())
		}
	}
	check(BackendHead, SourceFile, filepath.Join(dir, prefix+BackendHead), "backend {backend} # file\n")
	check(FrontendBackendGlue, SourceEnv, prefix+FrontendBackendGlue, "  use_backend {backend} # env\n")
	spec, _ := Lookup(BackendHTTPOptions)
	check(BackendHTTPOptions, SourceBuiltin, "", spec.Default)
	if _, err := set.Get(FrontendHead); err == nil || !strings.Contains(err.Error(), "template HAPROXY_FRONTEND_HEAD (file "+dir) {
		t.Errorf("broken file template: %v", err)
	}

	// A label beats them all; non-per-app templates cannot be overridden by a label.
	labels := map[string]string{"HAPROXY_0_BACKEND_HEAD": "backend {backend} # label\r\n", "HAPROXY_0_HEAD": "x"}
	tmpl, err := set.ForApp(BackendHead, labels, 0)
	if err != nil || tmpl.Source() != SourceLabel || tmpl.Text() != "backend {backend} # label\n" {
		t.Errorf("label override: %v %v", tmpl, err)
	}
	if tmpl, err := set.ForApp(BackendHead, labels, 1); err != nil || tmpl.Source() != SourceFile {
		t.Errorf("other port: %v %v", tmpl, err)
	}
	if tmpl, err := set.ForApp(Head, labels, 0); err != nil || tmpl.Source() != SourceBuiltin {
		t.Errorf("HEAD from a label: %v %v", tmpl, err)
	}
	if _, err := set.Override(Head, "x"); err == nil {
		t.Error("HEAD overridden per app")
	}
	again, _ := set.ForApp(BackendHead, labels, 0)
	if again != tmpl {
		t.Error("override cache")
	}

	if err := os.Mkdir(filepath.Join(dir, prefix+Head), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, nil); err == nil {
		t.Error("an unreadable template file is not an error")
	}
}

func TestLabelKey(t *testing.T) {
	if got := LabelKey(BackendHead, 2); got != "HAPROXY_2_BACKEND_HEAD" {
		t.Errorf("got %q", got)
	}
}
