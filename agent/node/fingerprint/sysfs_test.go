package fingerprint

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fixtureSysfs returns the root of the fixture host's sysfs, built once per
// test binary from testdata/sysfs.txt. Tests only read it.
func fixtureSysfs(t testing.TB) string {
	t.Helper()
	sysfs.once.Do(func() {
		sysfs.root, sysfs.err = os.MkdirTemp("", "fingerprint-sysfs-")
		if sysfs.err == nil {
			sysfs.err = buildSysfs(sysfs.root, "testdata/sysfs.txt")
		}
	})
	if sysfs.err != nil {
		t.Fatal(sysfs.err)
	}
	return sysfs.root
}

var sysfs struct {
	once sync.Once
	root string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sysfs.root != "" {
		os.RemoveAll(sysfs.root)
	}
	os.Exit(code)
}

// buildSysfs materialises a tree description (see testdata/sysfs.txt) under root.
func buildSysfs(root, desc string) error {
	f, err := os.Open(desc)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var err error
		if path, target, ok := strings.Cut(line, " -> "); ok {
			p := filepath.Join(root, path)
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.Symlink(target, p)
			}
		} else if path, content, ok := strings.Cut(line, " = "); ok {
			p := filepath.Join(root, path)
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.WriteFile(p, []byte(content+"\n"), 0o644)
			}
		} else if strings.HasSuffix(line, "/") {
			err = os.MkdirAll(filepath.Join(root, line), 0o755)
		} else {
			return fmt.Errorf("%s:%d: %q is not a file, link or directory", desc, n, line)
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", desc, n, err)
		}
	}
	return sc.Err()
}
