// Package shared finds the project's shared files for tests: the real
// traces and the recorded Nomad and Consul responses that live in ../shared
// beside the repository, not in it.
package shared

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns ../shared/<elem…> relative to the repository root (the first
// folder above the test's holding go.mod). When it is absent, as on a
// machine without the shared files, it skips tb and says where it looked.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("no go.mod above the test directory, so no ../shared beside the repository")
		}
		dir = parent
	}
	path := filepath.Join(append([]string{dir, "..", "shared"}, elem...)...)
	if _, err := os.Stat(path); err != nil {
		tb.Skipf("%s is absent: the shared files belong beside the repository, in ../shared (%v)", path, err)
	}
	return path
}
