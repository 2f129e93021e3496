package proc

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// io is a process with I/O and CPU counters.
func io(pid, ppid int, start, ticks, read, write uint64) Process {
	return Process{PID: pid, PPID: ppid, Start: start, Present: FieldCPU | FieldIO, CPUTicks: ticks, ReadBytes: read, WriteBytes: write}
}

func TestTreeRates(t *testing.T) {
	cases := []struct {
		name        string
		before, now []Process
		want        Rates
	}{{
		// The recorded exec task: sh (25333) reaps each dd; the sleep
		// seen at t0 is gone at t1, its counts in sh's.
		name:   "a child reaped by the task's process keeps counting",
		before: []Process{io(25333, 25321, 1, 51, 90112, 650145792), io(25593, 25333, 2, 0, 0, 0)},
		now:    []Process{io(25333, 25321, 1, 68, 90112, 859889664), io(25727, 25333, 3, 0, 0, 0)},
		want:   Rates{Present: FieldCPU | FieldIO, CPUCores: 0.017, WriteBPS: 20974387.2},
	}, {
		name:   "a child that wrote, then was reaped, counts what it did in the interval once",
		before: []Process{io(10, 1, 1, 0, 0, 1000), io(11, 10, 2, 0, 0, 5000)},
		now:    []Process{io(10, 1, 1, 0, 0, 1000+8000)}, // the child ended at 8000
		want:   Rates{Present: FieldCPU | FieldIO, WriteBPS: 300},
	}, {
		name:   "a process reaped outside the task takes its counts along, not a negative rate",
		before: []Process{io(10, 1, 1, 100, 0, 1000), io(20, 1, 2, 500, 0, 90000)},
		now:    []Process{io(10, 1, 1, 110, 0, 2000)},
		want:   Rates{Present: FieldCPU | FieldIO, CPUCores: 0.01, WriteBPS: 100},
	}, {
		name:   "a reused PID is another process",
		before: []Process{io(10, 1, 1, 100, 0, 1000), io(20, 1, 2, 500, 0, 90000)},
		now:    []Process{io(10, 1, 1, 100, 0, 1000), io(20, 1, 9, 5, 0, 300)},
		want:   Rates{Present: FieldCPU | FieldIO, CPUCores: 0.005, WriteBPS: 30},
	}, {
		name:   "a counter one process could not give gives no rate",
		before: []Process{io(10, 1, 1, 100, 0, 1000)},
		now:    []Process{io(10, 1, 1, 110, 0, 2000), {PID: 11, PPID: 10, Start: 3, Present: FieldCPU, CPUTicks: 1}},
		want:   Rates{Present: FieldCPU, CPUCores: 0.011},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr Tree
			if r := tr.Update(t0, c.before); r.Present != 0 {
				t.Fatalf("first reading gave %+v", r)
			}
			got := tr.Update(t0.Add(10*time.Second), c.now)
			if got.Present != c.want.Present || !near(got.CPUCores, c.want.CPUCores) || !near(got.ReadBPS, c.want.ReadBPS) || !near(got.WriteBPS, c.want.WriteBPS) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// writeProc lays /proc/<pid>/environ with the given variables.
func writeProc(t *testing.T, root string, pid int, env string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "environ"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The scan reads the environment of new PIDs only: a process's environment
// is fixed at exec, so a PID seen before keeps its verdict until it goes
// (or, for a process of no task, until the periodic full rescan).
func TestScannerIsIncremental(t *testing.T) {
	root := t.TempDir()
	web := Task{AllocID: "a1", Name: "web"}
	writeProc(t, root, 100, "PATH=/bin\x00NOMAD_ALLOC_ID=a1\x00NOMAD_TASK_NAME=web\x00")
	writeProc(t, root, 200, "PATH=/bin\x00")
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := NewScanner(root)
	if err != nil {
		t.Fatal(err)
	}
	scan := func() map[Task][]int {
		t.Helper()
		got, err := s.Scan()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := scan(); !reflect.DeepEqual(got, map[Task][]int{web: {100}}) {
		t.Fatalf("first scan: %v", got)
	}
	// 200 execs into a task's process: not read again until the rescan.
	writeProc(t, root, 200, "NOMAD_ALLOC_ID=a1\x00NOMAD_TASK_NAME=web\x00")
	writeProc(t, root, 101, "NOMAD_ALLOC_ID=a1\x00NOMAD_TASK_NAME=web\x00")
	if got := scan(); !reflect.DeepEqual(got, map[Task][]int{web: {100, 101}}) {
		t.Fatalf("second scan: %v", got)
	}
	for s.scans%rescanEvery != rescanEvery-1 {
		scan()
	}
	if got := scan(); !reflect.DeepEqual(got, map[Task][]int{web: {100, 101, 200}}) {
		t.Fatalf("after the full rescan: %v", got)
	}
	if err := os.RemoveAll(filepath.Join(root, "100")); err != nil {
		t.Fatal(err)
	}
	if got := scan(); !reflect.DeepEqual(got, map[Task][]int{web: {101, 200}}) {
		t.Fatalf("after 100 exited: %v", got)
	}
	if tk, exists := s.Identify(100); exists || tk != (Task{}) {
		t.Fatalf("an exited PID identified as %v", tk)
	}
}
