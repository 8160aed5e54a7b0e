package integration

import (
	"fmt"
	"os"
	"testing"
)

// TestMain builds the lodestar binary once for every test of the package.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lodestar-integration-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		os.Exit(1)
	}
	if err := BuildBinary(dir); err != nil {
		fmt.Fprintf(os.Stderr, "integration: building the lodestar binary failed, so no test ran:\n%v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
