package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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

// BenchmarkReadProcess reads one process's counters with procfs, as the
// agent does for every process of every task each round: stat and io, and
// status for a task without a memory cgroup.
func BenchmarkReadProcess(b *testing.B) {
	root := b.TempDir()
	layBenchProcs(b, root, 3)
	s, err := NewScanner(root)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Scan(); err != nil {
		b.Fatal(err)
	}
	h, ppid, start, ok := s.Process(3)
	if !ok {
		b.Fatal("pid 3 not found")
	}
	for _, c := range []struct {
		name string
		what Field
	}{{"io", FieldIO}, {"stat+io", FieldCPU | FieldIO}, {"stat+io+status", FieldCPU | FieldIO | FieldRSS}} {
		b.Run(c.name, func(b *testing.B) {
			var p Process
			b.ReportAllocs()
			for b.Loop() {
				if err := Read(h, ppid, start, c.what, &p); err != nil {
					b.Fatal(err)
				}
			}
			perProc := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			// 100 tasks of two processes, every 10 s.
			b.ReportMetric(perProc*200/float64(10*time.Second)*100, "core%@200procs/10s")
		})
	}
}
