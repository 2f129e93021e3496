package fingerprint

import (
	"os"
	"strings"
	"testing"
)

// The fuzz tests hold every parser to two promises: malformed input never
// panics, and an error never comes with a value.

func addFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseMeminfo(f *testing.F) {
	addFiles(f, "testdata/meminfo/16g", "testdata/meminfo/no-total")
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseMeminfo(b)
		if err != nil && v != 0 {
			t.Fatalf("error %v came with a value %d", err, v)
		}
		if err == nil && v == 0 {
			t.Fatal("no error and no memory")
		}
	})
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

func FuzzParseMountinfo(f *testing.F) {
	addFiles(f, fixtureProc+"/1/mountinfo", fixtureProc+"/self/mountinfo")
	f.Add([]byte("36 22 0:61 / /mnt/lvm\\040name rw - btrfs /dev/mapper/vg0-data rw\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mounts, err := ParseMountinfo(b)
		if err != nil && mounts != nil {
			t.Fatalf("error %v came with mounts %v", err, mounts)
		}
		for _, m := range mounts {
			if !strings.HasPrefix(m.MountPoint, "/") {
				t.Fatalf("relative mount point in %+v", m)
			}
			// Any path must find a mount or none, without panicking.
			MountOf(mounts, m.MountPoint+"/x")
		}
	})
}

func FuzzParseRoute(f *testing.F) {
	addFiles(f, fixtureProc+"/net/route")
	f.Fuzz(func(t *testing.T, b []byte) {
		iface, err := ParseRoute(b)
		if err != nil && iface != "" {
			t.Fatalf("error %v came with an interface %q", err, iface)
		}
	})
}
