package sampler

import (
	"os"
	"testing"

	"github.com/foresight-nomad/foresight/internal/shared"
)

// TestMain reports the tests skipped for want of ../shared.
func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }
