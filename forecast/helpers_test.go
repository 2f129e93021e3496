package forecast

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sharedDir returns ../shared relative to the repository root (the folder
// holding go.mod), or skips the test when it is absent.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the test directory; shared data not found")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(filepath.Join(shared, "data", "traces")); err != nil {
		t.Skipf("shared traces not found at %s (want ../shared next to the repository)", shared)
	}
	return shared
}

// loadTrace loads one shared trace regularised as the protocol does.
func loadTrace(t testing.TB, rel string) []float64 {
	t.Helper()
	y, err := loadEvalFile(filepath.Join(sharedDir(t), "data", "traces", rel), 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return y
}
