package lab

import (
	"os"
	"sync"
	"testing"

	"github.com/lodestar-lb/lodestar/integration"
)

// TestMain runs a lab role when the binary was re-executed as one (RunRole exits then),
// and the tests otherwise.
func TestMain(m *testing.M) {
	RunRole()
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built is the lodestar binary the lab tests run, built on first use.
var built struct {
	once sync.Once
	dir  string
	err  error
}

// lodestarBinary builds ./cmd/lodestar once (with -race when the tests run with it) and
// returns its path.
func lodestarBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "lodestar-lab-")
		if built.err == nil {
			built.err = integration.BuildBinary(built.dir)
		}
	})
	if built.err != nil {
		t.Fatalf("building lodestar: %v", built.err)
	}
	return integration.Binary(t)
}
