package shared

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestAbsentFilesSkipAndAreRecorded(t *testing.T) {
	t.Run("absent", func(t *testing.T) {
		Path(t, "no such file, on purpose")
		t.Error("Path returned for a file that is absent")
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(skipped, "TestAbsentFilesSkipAndAreRecorded/absent") || !strings.HasSuffix(looked, "shared") {
		t.Errorf("skips %v in %q, want the subtest, looked for in ../shared", skipped, looked)
	}
	// Forget this test's own skip: Run reports the project's, not ours.
	skipped = nil
}

// fatalTB stops at Fatal, as testing.T does, so that a test can see it.
type fatalTB struct {
	testing.TB
	msg string
}

type fatal struct{}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatal(args ...any) {
	f.msg = args[0].(string)
	panic(fatal{})
}

func TestPathWithoutRunFails(t *testing.T) {
	running.Store(false)
	defer running.Store(true)
	tb := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != (fatal{}) {
				panic(r)
			}
		}()
		Path(tb, "data")
	}()
	if !strings.Contains(tb.msg, "shared.Run") {
		t.Fatalf("Path without Run: %q, want a failure that names shared.Run", tb.msg)
	}
}
