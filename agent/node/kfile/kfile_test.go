package kfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789", 1000) // past the first buffer
	small := filepath.Join(dir, "small")
	large := filepath.Join(dir, "large")
	for p, body := range map[string]string{small: "some avg10=0.00\n", large: big} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var r Reader
	for _, c := range []struct{ path, want string }{{small, "some avg10=0.00\n"}, {large, big}, {small, "some avg10=0.00\n"}} {
		got, err := r.Read(c.path)
		if err != nil || string(got) != c.want {
			t.Fatalf("Read(%s) = %d bytes, %v", c.path, len(got), err)
		}
	}
	if _, err := r.Read(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing file: %v, want not-exist", err)
	}
	capped := Reader{Max: 4096}
	if _, err := capped.Read(large); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a file over Max: %v", err)
	}
}
