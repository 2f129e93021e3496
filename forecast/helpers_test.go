package forecast

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/internal/shared"
)

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// sharedTraces is the shared traces folder; the test skips without it.
func sharedTraces(tb testing.TB) string {
	tb.Helper()
	return shared.Path(tb, "data", "traces")
}

// loadTrace loads one shared trace regularised as the protocol does.
func loadTrace(t testing.TB, rel string) []float64 {
	t.Helper()
	y, err := loadEvalFile(filepath.Join(sharedTraces(t), rel), 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return y
}
