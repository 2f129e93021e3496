package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// layBenchProcs writes n processes, one in three a task's, in the files the
// agent reads, on the repository's filesystem (not the kernel's procfs).
func layBenchProcs(b *testing.B, root string, n int) {
	for pid := 1; pid <= n; pid++ {
		dir := filepath.Join(root, strconv.Itoa(pid))
		env := "PATH=/usr/bin\x00HOME=/root\x00LANG=C.UTF-8\x00"
		if pid%3 == 0 {
			env += fmt.Sprintf("NOMAD_ALLOC_ID=%08d-a286-7474-e2ab-b09a80aa2eee\x00NOMAD_TASK_NAME=writer\x00", pid)
		}
		for name, body := range map[string]string{
			"environ": env,
			"stat":    fmt.Sprintf("%d (sh) S 1 %d %d 0 -1 4194560 2098 23536 0 0 5 9 21 59 20 0 1 0 1335493 2322432 363 18446744073709551615 4198400 5785993 140730222184944 0 0 0 0 4 65538 1 0 0 17 1 0 0 0 0 0 6141704 6178576 661778432 140730222189966 140730222190073 140730222190073 140730222190576 0\n", pid, pid, pid),
			"io":      "rchar: 1426167561\nwchar: 1426073358\nsyscr: 1532\nsyscw: 1435\nread_bytes: 4096\nwrite_bytes: 1426108416\ncancelled_write_bytes: 0\n",
			"status":  "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nPid:\t1\nPPid:\t0\nVmPeak:\t    2268 kB\nVmSize:\t    2268 kB\nVmHWM:\t    1580 kB\nVmRSS:\t    1580 kB\nRssAnon:\t      64 kB\nRssFile:\t    1516 kB\nThreads:\t1\nvoluntary_ctxt_switches:\t152\nnonvoluntary_ctxt_switches:\t75\n",
		} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkScan is one round of the /proc scan on a host of 400 processes
// of which 100 are new since the last round (a busy node's churn): the
// listing, and the environment of each new PID.
func BenchmarkScan(b *testing.B) {
	root := b.TempDir()
	layBenchProcs(b, root, 400)
	s, err := NewScanner(root)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Scan(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for pid := 1; pid <= 100; pid++ {
			delete(s.known, pid) // as if these PIDs were new
		}
		if _, err := s.Scan(); err != nil {
			b.Fatal(err)
		}
	}
	perRound := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perRound/1e3, "µs/round")
	b.ReportMetric(perRound/float64(10*time.Second)*100, "core%@10s")
}

// BenchmarkReadProcess reads one process's counters as the agent does for
// every process of every task each round (io; stat and status too for a
// task without cpu and memory cgroups), with the Reader's own parsers and,
// as the baseline of the same run, with procfs: the reason the hot path
// does not use procfs.
func BenchmarkReadProcess(b *testing.B) {
	root := b.TempDir()
	layBenchProcs(b, root, 3)
	fs, err := procfs.NewFS(root)
	if err != nil {
		b.Fatal(err)
	}
	r := NewReader(root)
	for _, c := range []struct {
		name string
		what Field
	}{{"io", FieldIO}, {"stat+io+status", FieldCPU | FieldIO | FieldRSS}} {
		b.Run("reader/"+c.name, func(b *testing.B) {
			var p Process
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Read(3, 1, 0, c.what, &p); err != nil || p.Present != c.what {
					b.Fatal(err)
				}
			}
			reportPerProcess(b)
		})
		b.Run("procfs/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := fs.Proc(3)
				if err != nil {
					b.Fatal(err)
				}
				if c.what&FieldCPU != 0 {
					if _, err := p.Stat(); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := p.IO(); err != nil {
					b.Fatal(err)
				}
				if c.what&FieldRSS != 0 {
					if _, err := p.NewStatus(); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportPerProcess(b)
		})
	}
}

// reportPerProcess reports the share of a core reading 200 processes (100
// tasks of two) every 10 s costs.
func reportPerProcess(b *testing.B) {
	perProc := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perProc*200/float64(10*time.Second)*100, "core%@200procs/10s")
}

// BenchmarkIdentify reads a new PID as the scan does (its environment, and
// for a task's process its stat), with the Scanner's own reads and, as the
// baseline of the same run, with procfs.
func BenchmarkIdentify(b *testing.B) {
	root := b.TempDir()
	layBenchProcs(b, root, 3)
	s, err := NewScanner(root)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if e := s.identify(3); e.task == (Task{}) || !e.haveParents {
				b.Fatal("pid 3 not identified")
			}
		}
	})
	b.Run("procfs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.fs.Proc(3)
			if err != nil {
				b.Fatal(err)
			}
			env, err := p.Environ()
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := TaskOf([]byte(strings.Join(env, "\x00"))); !ok {
				b.Fatal("pid 3 not identified")
			}
			if _, err := p.Stat(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
