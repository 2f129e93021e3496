package proc

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"
)

func FuzzTaskOf(f *testing.F) {
	f.Add("PATH=/bin\x00NOMAD_ALLOC_ID=2dd4a291-a286-7474-e2ab-b09a80aa2eee\x00NOMAD_TASK_NAME=writer\x00")
	f.Add("NOMAD_ALLOC_ID=\x00NOMAD_TASK_NAME=x")
	f.Add("NOMAD_TASK_NAME=a=b\x00NOMAD_ALLOC_ID=NOMAD_ALLOC_ID=")
	f.Fuzz(func(t *testing.T, environ string) {
		tk, ok := TaskOf(strings.Split(environ, "\x00"))
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
