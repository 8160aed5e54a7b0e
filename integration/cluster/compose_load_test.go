package cluster

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// loadCompose loads the compose file at dir/name with the Compose specification's own loader
// (compose-go, which docker compose runs): schema validation, interpolation, normalization and
// the consistency checks (networks, volumes, secrets and services that are named exist).
func loadCompose(t *testing.T, dir, name string, data []byte) (*types.Project, error) {
	t.Helper()
	details := types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, name), Content: data}},
		Environment: types.Mapping{},
	}
	return loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("lab", true)
	})
}

// serviceNames are the services of a compose file as lodestar wrote it.
func serviceNames(t *testing.T, data []byte) []string {
	t.Helper()
	var cf struct {
		Services map[string]any `yaml:"services"`
	}
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&cf); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range cf.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// TestComposeLoadsWithComposeGo: the compose file `cluster render` writes, and the
// repository's docker-compose.yml, load with compose-go and hold every service lodestar wrote;
// the same file with a value the specification does not allow is refused, so the check is
// the loader's and not a YAML parse.
func TestComposeLoadsWithComposeGo(t *testing.T) {
	files := render(t, loadExample(t), FormatCompose)
	dir := t.TempDir()
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rendered := files[ComposeFile]
	committed, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]struct {
		dir  string
		data []byte
	}{"rendered": {dir, rendered}, "committed": {"../..", committed}} {
		p, err := loadCompose(t, c.dir, ComposeFile, c.data)
		if err != nil {
			t.Fatalf("%s docker-compose.yml: compose-go refuses it: %v", what, err)
		}
		got := p.ServiceNames()
		slices.Sort(got)
		if want := serviceNames(t, c.data); !slices.Equal(got, want) || len(got) == 0 {
			t.Errorf("%s: compose-go loaded services %v, the file has %v", what, got, want)
		}
	}

	for _, tc := range []struct{ name, bad, want string }{
		{"a key the specification does not have", string(rendered) + "\nsurprise: true\n", "surprise"},
		{"a service on a network nobody defined", strings.Replace(string(rendered), "\n      lab:", "\n      elsewhere:", 1), "elsewhere"},
	} {
		if tc.bad == string(rendered) {
			t.Fatalf("%s: nothing to spoil in the rendered file", tc.name)
		}
		if _, err := loadCompose(t, dir, ComposeFile, []byte(tc.bad)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}
