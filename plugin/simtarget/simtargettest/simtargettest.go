// Package simtargettest builds the foresight-sim-target plugin binary for
// tests that host it as a real plugin process.
package simtargettest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/foresight-nomad/foresight/plugin/simtarget"
)

// Build compiles cmd/foresight-sim-target into a new plugin directory under
// tb.TempDir() and returns that directory. The Go build cache makes repeated
// builds cheap.
func Build(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			tb.Fatalf("no go command to build the plugin: %v", err)
		}
	}
	cmd := exec.Command(gobin, "build", "-o", filepath.Join(dir, simtarget.PluginName),
		"github.com/foresight-nomad/foresight/cmd/"+simtarget.PluginName)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", simtarget.PluginName, err, out)
	}
	return dir
}
