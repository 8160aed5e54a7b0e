package lab

import (
	"fmt"
	"os"
	"testing"

	"github.com/lodestar-lb/lodestar/integration"
)

// TestMain runs a lab role when the binary was re-executed as one (RunRole exits then);
// otherwise it builds lodestar once, when labs can be made here, and runs the tests.
func TestMain(m *testing.M) {
	RunRole()
	dir, err := os.MkdirTemp("", "lodestar-lab-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		os.Exit(1)
	}
	if Available() == nil {
		if err := integration.BuildBinary(dir); err != nil {
			fmt.Fprintf(os.Stderr, "lab: building the lodestar binary failed, so no test ran:\n%v\n", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
