package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// needTool returns the path of the program name on PATH. When it is
// missing the test is skipped with one line saying what to install, except
// with CI=true, where it fails: CI (.ci/run) installs every tool the tests
// use, so a missing one there is a broken CI, not a smaller machine.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: %s", name, install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the tool is required)")
	}
	t.Skip(msg)
	return ""
}
