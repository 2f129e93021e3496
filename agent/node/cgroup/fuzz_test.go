package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/procfs"
)

// The fuzz tests hold every parser to two promises: malformed input never
// panics, and an error never comes with a value.

func FuzzParseIOStat(f *testing.F) {
	f.Add([]byte("8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n259:0 rbytes=1 wbytes=2 rios=1 wios=1\n"))
	f.Add([]byte(""))
	f.Add([]byte("8:0 rbytes=18446744073709551615 wbytes=0\n8:1 rbytes=1 wbytes=0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, w, err := ParseIOStat(b, stacked)
		if err != nil && (r != 0 || w != 0) {
			t.Fatalf("error %v came with values %d %d", err, r, w)
		}
	})
}

func FuzzParseBlkio(f *testing.F) {
	f.Add([]byte("8:0 Read 10\n8:0 Write 20\n8:0 Total 30\nTotal 30\n"))
	f.Add([]byte("Total 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, w, err := ParseBlkio(b, stacked)
		if err != nil && (r != 0 || w != 0) {
			t.Fatalf("error %v came with values %d %d", err, r, w)
		}
	})
}

func FuzzParsePressure(f *testing.F) {
	f.Add([]byte("some avg10=1.50 avg60=0.80 avg300=0.20 total=3000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
	f.Add([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=12345\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePressure(b)
		if err != nil {
			if p != (Pressure{}) {
				t.Fatalf("error %v came with a value %+v", err, p)
			}
			return
		}
		if p.SomeAvg10 < 0 || p.SomeAvg10 > 100 || p.FullAvg10 < 0 || p.FullAvg10 > 100 || p.SomeTotal < 0 || p.FullTotal < 0 {
			t.Fatalf("out of range: %+v", p)
		}
	})
}

func FuzzParseCPUStat(f *testing.F) {
	f.Add([]byte("usage_usec 8000\nuser_usec 6000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 3\nthrottled_usec 1500\n"))
	f.Add([]byte("nr_periods 1000\nnr_throttled 250\nthrottled_time 3500000000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseCPUStat(b)
		if err != nil && s != (CPUStat{}) {
			t.Fatalf("error %v came with a value %+v", err, s)
		}
		if !s.HasThrottle && (s.Periods != 0 || s.ThrottledPeriods != 0 || s.ThrottledTime != 0) {
			t.Fatalf("absent throttling carries values: %+v", s)
		}
		if s.ThrottledTime < 0 || s.Usage < 0 {
			t.Fatalf("negative duration: %+v", s)
		}
	})
}

func FuzzParseMemoryStat(f *testing.F) {
	f.Add([]byte("anon 100\nfile 20\nkernel 3\n"))
	f.Add([]byte("cache 20\nrss 100\nswap 7\ntotal_rss 999\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseMemoryStat(b)
		if err != nil && s != (MemoryStat{}) {
			t.Fatalf("error %v came with a value %+v", err, s)
		}
	})
}

func FuzzParseValue(f *testing.F) {
	f.Add([]byte("134217728\n"))
	f.Add([]byte("max\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseValue(b)
		if err != nil && v != 0 {
			t.Fatalf("error %v came with a value %d", err, v)
		}
	})
}

func FuzzParseCPUQuota(f *testing.F) {
	f.Add([]byte("-1\n"))
	f.Add([]byte("max 100000\n"))
	f.Add([]byte("50000 100000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		unlimited, err := ParseCPUQuota(b)
		if err != nil && unlimited {
			t.Fatalf("error %v came with unlimited", err)
		}
	})
}

// FuzzMembership reads arbitrary /proc/<pid>/cgroup contents the way the
// agent does (procfs, then MembershipOf): nothing panics, and every v1
// controller maps to a path and a hierarchy.
func FuzzMembership(f *testing.F) {
	f.Add([]byte("9:name=systemd:/docker/40c8\n4:memory:/process_api/60a8\n3:cpuset:/nomad/shared\n1:cpu,cpuacct:/system.slice/docker-ab.scope\n0::/nomad.slice/share.slice/a.t.scope\n"))
	f.Add([]byte("0::/\n"))
	f.Add([]byte("x:y\n"))
	root := f.TempDir()
	dir := filepath.Join(root, "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := fs.Proc(1)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := p.Cgroups()
		if err != nil {
			return
		}
		m := MembershipOf(lines)
		for c, path := range m.V1 {
			if _, ok := m.Hierarchy[c]; !ok {
				t.Fatalf("controller %q at %q has no hierarchy", c, path)
			}
		}
		if m.HasUnified != slices.ContainsFunc(lines, func(l procfs.Cgroup) bool { return l.HierarchyID == 0 && len(l.Controllers) == 0 }) {
			t.Fatalf("unified %v from %+v", m.HasUnified, lines)
		}
	})
}
