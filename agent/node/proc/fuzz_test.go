package proc

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

func FuzzTaskOf(f *testing.F) {
	f.Add("PATH=/bin\x00NOMAD_ALLOC_ID=2dd4a291-a286-7474-e2ab-b09a80aa2eee\x00NOMAD_TASK_NAME=writer\x00")
	f.Add("NOMAD_ALLOC_ID=\x00NOMAD_TASK_NAME=x")
	f.Add("NOMAD_TASK_NAME=a=b\x00NOMAD_ALLOC_ID=NOMAD_ALLOC_ID=")
	f.Fuzz(func(t *testing.T, environ string) {
		tk, ok := TaskOf([]byte(environ))
		if ok != (tk.AllocID != "" && tk.Name != "") {
			t.Fatalf("ok %v for %+v", ok, tk)
		}
		if ok && !strings.Contains(environ, "NOMAD_ALLOC_ID="+tk.AllocID) {
			t.Fatalf("alloc %q is not in the environment", tk.AllocID)
		}
	})
}

// FuzzTree holds the process-tree rater to its promise whatever the
// readings: rates are finite and never negative, and a rate is given only
// from the second reading on.
func FuzzTree(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32})
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr Tree
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for round := 0; len(b) >= 8; round++ {
			n := int(b[0]%4) + 1
			b = b[1:]
			var procs []Process
			for i := 0; i < n && len(b) >= 8; i++ {
				v := binary.LittleEndian.Uint64(b)
				b = b[8:]
				procs = append(procs, Process{
					PID: int(v%5) + 1, PPID: int(v>>8%5) + 1, Start: v >> 16 % 3, Present: Field(v>>24) & (FieldCPU | FieldIO | FieldRSS),
					CPUTicks: v >> 28, ReadBytes: v >> 30, WriteBytes: v >> 32, RSSBytes: v >> 34,
				})
			}
			if len(b) > 0 {
				at = at.Add(time.Duration(b[0]%3) * 5 * time.Second)
				b = b[1:]
			}
			r := tr.Update(at, procs)
			if round == 0 && r.Present&(FieldCPU|FieldIO) != 0 {
				t.Fatalf("first reading gave rates: %+v", r)
			}
			for _, v := range []float64{r.CPUCores, r.ReadBPS, r.WriteBPS, r.RSSBytes} {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("rate %v from %+v", v, procs)
				}
			}
		}
	})
}

// FuzzParsers holds the hot path's parsers of /proc/<pid>/stat, io and
// status to procfs's answers on the same bytes: where procfs reads a
// value, the parser reads the same or refuses the file; a parser never
// invents a value procfs cannot read.
func FuzzParsers(f *testing.F) {
	f.Add([]byte("25073 (sh) S 25053 25073 25073 0 -1 4194560 2098 23536 0 0 5 9 21 59 20 0 1 0 1335493 2322432 363 18446744073709551615 4198400 5785993 140730222184944 0 0 0 0 4 65538 1 0 0 17 1 0 0 0 0 0 6141704 6178576 661778432 140730222189966 140730222190073 140730222190073 140730222190576 0\n"),
		[]byte("rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 1426108416\ncancelled_write_bytes: 0\n"),
		[]byte("Name:\tsh\nPid:\t1\nPPid:\t0\nVmRSS:\t    1580 kB\nThreads:\t1\n"))
	f.Add([]byte("1 (a) b) S 0 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 99 0 0 0"), []byte("read_bytes: x\nwrite_bytes: 1\n"), []byte("VmRSS: 12 MB\n"))
	root := f.TempDir()
	dir := filepath.Join(root, "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, statB, ioB, statusB []byte) {
		for name, b := range map[string][]byte{"stat": statB, "io": ioB, "status": statusB} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p, err := fs.Proc(1)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := parseStat(statB); err == nil {
			if ref, rerr := p.Stat(); rerr == nil {
				if ref.PPID != st.ppid || uint64(ref.UTime) != st.utime || uint64(ref.STime) != st.stime || ref.Starttime != st.start ||
					ref.CUTime >= 0 && uint64(ref.CUTime) != st.cutime || ref.CSTime >= 0 && uint64(ref.CSTime) != st.cstime {
					t.Fatalf("stat: parsed %+v, procfs %+v", st, ref)
				}
			}
		}
		if r, w, err := parseIO(ioB); err == nil {
			if ref, rerr := p.IO(); rerr == nil && (ref.ReadBytes != r || ref.WriteBytes != w) {
				t.Fatalf("io: parsed %d %d, procfs %+v", r, w, ref)
			}
		}
		if rss, ok, err := parseRSS(statusB); err == nil && ok {
			if ref, rerr := p.NewStatus(); rerr == nil && ref.VmRSS != 0 && ref.VmRSS != rss {
				t.Fatalf("status: parsed %d, procfs %d", rss, ref.VmRSS)
			}
		}
	})
}
