package fingerprint

import (
	"os"
	"testing"
)

// The fuzz test holds the hand-written cpuinfo parser (procfs reads the
// other files) to two promises: malformed input never panics, and an
// error never comes with a value.

func addFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseCPUInfo(f *testing.F) {
	addFiles(f, "testdata/cpuinfo/x86_64", "testdata/cpuinfo/arm64-graviton2", "testdata/cpuinfo/arm64-unlisted")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCPUInfo(b)
		if err != nil {
			if c != (CPUInfo{}) {
				t.Fatalf("error %v came with a value %+v", err, c)
			}
			return
		}
		if c.CPUs <= 0 || c.Cores <= 0 || c.Cores > c.CPUs {
			t.Fatalf("impossible counts %+v", c)
		}
	})
}
