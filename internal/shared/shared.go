// Package shared finds the project's shared files for tests: the real
// traces and the recorded Nomad and Consul responses that live in ../shared
// beside the repository, not in it.
//
// A test that needs them skips when they are absent, as on a laptop
// without them, and the skip must not go unseen: every test package that
// calls Path runs its tests through Run, which prints one line naming the
// tests it skipped and where it looked, and appends the same to the file
// named by $FORESIGHT_SHARED_SKIPS (how `make test` lists them all at its
// end, since `go test ./...` shows nothing of a passing package). A
// package that calls Path without Run fails, so none can forget.
package shared

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// SkipsEnv names the file that Run appends its summary line to.
const SkipsEnv = "FORESIGHT_SHARED_SKIPS"

var (
	running atomic.Bool
	mu      sync.Mutex
	skipped []string // test names
	looked  string   // the ../shared that was looked for
)

// Path returns ../shared/<elem…> relative to the repository root (the first
// folder above the test's holding go.mod). When it is absent, as on a
// machine without the shared files, it records the skip for Run's summary,
// and skips tb saying where it looked.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	if !running.Load() {
		tb.Fatal("shared.Path needs the package's TestMain to run its tests through shared.Run, so that skips are reported: func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }")
	}
	dir, err := repoRoot()
	if err != nil {
		skip(tb, "no repository", fmt.Sprintf("%v, so no ../shared beside the repository", err))
	}
	root := filepath.Join(dir, "..", "shared")
	path := filepath.Join(append([]string{root}, elem...)...)
	if _, err := os.Stat(path); err != nil {
		skip(tb, filepath.Clean(root), fmt.Sprintf("%s is absent: the shared files belong beside the repository, in ../shared (%v)", path, err))
	}
	return path
}

func skip(tb testing.TB, where, msg string) {
	tb.Helper()
	mu.Lock()
	skipped = append(skipped, tb.Name())
	looked = where
	mu.Unlock()
	tb.Skip(msg)
}

// repoRoot is the first folder above the working directory (a test's
// package folder) that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

// Run runs m's tests and returns their exit code, for TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }
//
// After the tests, if any skipped for want of the shared files, it prints
// "shared files absent: skipped TestX, TestY (looked in DIR)" and appends
// "<package folder>: TestX, TestY (looked in DIR)" to the file named by
// $FORESIGHT_SHARED_SKIPS when that is set.
func Run(m *testing.M) int {
	running.Store(true)
	code := m.Run()
	mu.Lock()
	tests, where := strings.Join(skipped, ", "), looked
	mu.Unlock()
	if tests != "" {
		fmt.Printf("shared files absent: skipped %s (looked in %s)\n", tests, where)
		if name := os.Getenv(SkipsEnv); name != "" {
			if err := appendLine(name, fmt.Sprintf("%s: %s (looked in %s)", packageDir(), tests, where)); err != nil {
				fmt.Fprintf(os.Stderr, "shared: record skips in %s: %v\n", name, err)
				code = max(code, 1)
			}
		}
	}
	return code
}

// packageDir is the test's package folder relative to the repository.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	if root, err := repoRoot(); err == nil {
		if rel, err := filepath.Rel(root, wd); err == nil {
			return filepath.ToSlash(rel)
		}
	}
	return wd
}

func appendLine(name, line string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	return errors.Join(err, f.Close())
}
