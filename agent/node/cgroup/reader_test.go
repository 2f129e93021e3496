package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	allocWeb = "8f3c1e2a-5b6d-4c7e-9a1b-2c3d4e5f6a7b"
	allocDB  = "1d2e3f4a-6b7c-4d8e-8f9a-0b1c2d3e4f5a"
)

// locate finds a fixture task, failing the test when it cannot.
func locate(t testing.TB, root, alloc, task string) Task {
	t.Helper()
	l, err := NewLocator(root, "")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := l.Locate(alloc, task)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestDetectMode(t *testing.T) {
	cases := []struct {
		root    string
		want    Mode
		wantErr bool
	}{
		{"testdata/v2-nomad17", V2, false},
		{"testdata/v2-nomad16", V2, false},
		{"testdata/v1", V1, false},
		{"testdata", ModeUnknown, true},
		{"testdata/absent", ModeUnknown, true},
	}
	for _, c := range cases {
		got, err := DetectMode(c.root)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("DetectMode(%s) = %v, %v; want %v, error %v", c.root, got, err, c.want, c.wantErr)
		}
	}
}

func TestLocate(t *testing.T) {
	cases := []struct {
		name, root, alloc, task string
		wantDir                 string // relative to root; "" for ErrNotFound
	}{
		{"nomad 1.7 shared cores", "testdata/v2-nomad17", allocWeb, "web", "nomad.slice/share.slice/" + allocWeb + ".web.scope"},
		{"nomad 1.7 reserved cores", "testdata/v2-nomad17", allocDB, "db", "nomad.slice/reserve.slice/" + allocDB + ".db.scope"},
		{"nomad 1.6", "testdata/v2-nomad16", allocWeb, "web", "nomad.slice/" + allocWeb + ".web.scope"},
		{"v1", "testdata/v1", allocWeb, "web", "memory/nomad/" + allocWeb + ".web"},
		{"v2 task not started", "testdata/v2-nomad17", allocWeb, "cache", ""},
		{"v1 task not started", "testdata/v1", allocDB, "db", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := NewLocator(c.root, "")
			if err != nil {
				t.Fatal(err)
			}
			task, err := l.Locate(c.alloc, c.task)
			if c.wantDir == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Locate = %+v, %v; want ErrNotFound", task, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(c.root, c.wantDir); task.Dir != want {
				t.Errorf("Dir = %s, want %s", task.Dir, want)
			}
		})
	}
}

func TestLocateCustomParent(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "batch.slice", "share.slice", "a1.t.scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu io memory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := NewLocator(root, "batch.slice")
	if err != nil {
		t.Fatal(err)
	}
	task, err := l.Locate("a1", "t")
	if err != nil || task.Dir != dir {
		t.Fatalf("Locate = %q, %v; want %q", task.Dir, err, dir)
	}
	if _, err := l.Locate("", "t"); err == nil {
		t.Error("Locate with an empty allocation ID succeeded")
	}
}

func TestReadFixtures(t *testing.T) {
	web17 := Reading{
		Present:      FieldIO | FieldThrottle | FieldCPUUsage | FieldPSICPU | FieldPSIMemory | FieldPSIIO | FieldMemUsage | FieldMemRSS | FieldMemCache | FieldMemSwap,
		IOReadBytes:  1048576 + 4096,
		IOWriteBytes: 524288,
		CPUPeriods:   1200, CPUThrottledPeriods: 60, CPUThrottledTime: 2500 * time.Millisecond,
		CPUUsage:      8123456 * time.Microsecond,
		PSICPU:        Pressure{SomeAvg10: 1.5, SomeTotal: 3 * time.Second, HasFull: true},
		PSIMemory:     Pressure{SomeAvg10: 0.25, SomeTotal: 500 * time.Millisecond, HasFull: true, FullAvg10: 0.1, FullTotal: 200 * time.Millisecond},
		PSIIO:         Pressure{SomeAvg10: 4, SomeTotal: 9 * time.Second, HasFull: true, FullAvg10: 3, FullTotal: 7 * time.Second},
		MemUsageBytes: 134217728, MemRSSBytes: 100663296, MemCacheBytes: 29360128,
	}
	web16 := web17
	web16.IOReadBytes, web16.IOWriteBytes = 0, 0 // an empty io.stat: no disk I/O yet

	cases := []struct {
		name, root, alloc, task string
		want                    Reading
	}{
		{"v2 nomad 1.7, everything", "testdata/v2-nomad17", allocWeb, "web", web17},
		{"v2 nomad 1.6, no I/O yet", "testdata/v2-nomad16", allocWeb, "web", web16},
		{
			// io controller not delegated, cpu controller off, old kernel
			// without a full line in cpu.pressure, no swap file.
			"v2 reserved cores, sparse", "testdata/v2-nomad17", allocDB, "db",
			Reading{
				Present:       FieldCPUUsage | FieldPSICPU | FieldPSIMemory | FieldMemUsage | FieldMemRSS | FieldMemCache,
				CPUUsage:      500 * time.Millisecond,
				PSICPU:        Pressure{SomeTotal: 12345 * time.Microsecond},
				PSIMemory:     Pressure{HasFull: true},
				MemUsageBytes: 67108864, MemRSSBytes: 50331648, MemCacheBytes: 8388608,
			},
		},
		{
			"v1 with blkio", "testdata/v1", allocWeb, "web",
			Reading{
				Present:      FieldIO | FieldThrottle | FieldMemUsage | FieldMemRSS | FieldMemCache | FieldMemSwap,
				IOReadBytes:  2097152 + 4096,
				IOWriteBytes: 1048576 + 8192,
				CPUPeriods:   1000, CPUThrottledPeriods: 250, CPUThrottledTime: 3500 * time.Millisecond,
				MemUsageBytes: 73400320, MemRSSBytes: 41943040, MemCacheBytes: 20971520, MemSwapBytes: 1048576,
			},
		},
		{
			"v1 without blkio", "testdata/v1", allocWeb, "sidecar",
			Reading{
				Present:       FieldThrottle | FieldMemUsage | FieldMemRSS | FieldMemCache,
				MemUsageBytes: 8388608, MemRSSBytes: 8388608,
			},
		},
	}
	r := NewReader(stacked)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task := locate(t, c.root, c.alloc, c.task)
			var got Reading
			if err := r.Read(&task, &got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestReadWithoutSkipCountsStackedTwice shows why the agent passes
// StackedDevices: the bytes on the LVM volume are the bytes on its disk.
func TestReadWithoutSkipCountsStackedTwice(t *testing.T) {
	task := locate(t, "testdata/v2-nomad17", allocWeb, "web")
	var got Reading
	if err := NewReader(nil).Read(&task, &got); err != nil {
		t.Fatal(err)
	}
	if got.IOReadBytes != 2*1048576+4096 || got.IOWriteBytes != 2*524288 {
		t.Errorf("read %d, wrote %d: want the stacked device counted too", got.IOReadBytes, got.IOWriteBytes)
	}
}

// TestReadReportsBadFiles checks that a corrupt file costs only its own
// metric, and says so.
func TestReadReportsBadFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"io.stat":        "8:0 rbytes=oops wbytes=1\n",
		"cpu.pressure":   "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\n",
		"memory.current": "4096\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	task := Task{Mode: V2, Dir: dir}
	task.files[fileIO] = filepath.Join(dir, "io.stat")
	task.files[fileCPUPressure] = filepath.Join(dir, "cpu.pressure")
	task.files[fileMemCurrent] = filepath.Join(dir, "memory.current")

	var got Reading
	err := NewReader(nil).Read(&task, &got)
	if err == nil || !strings.Contains(err.Error(), "io.stat") {
		t.Errorf("err = %v, want one naming io.stat", err)
	}
	if want := FieldPSICPU | FieldMemUsage; got.Present != want {
		t.Errorf("Present = %b, want %b", got.Present, want)
	}
	if got.IOReadBytes != 0 || got.Has(FieldIO) {
		t.Errorf("a corrupt io.stat produced a value: %+v", got)
	}
}

func TestReadGoneTask(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "nomad.slice", "share.slice", "a.t.scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := NewLocator(root, "")
	if err != nil {
		t.Fatal(err)
	}
	task, err := l.Locate("a", "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	var got Reading
	if err := NewReader(nil).Read(&task, &got); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read of a removed cgroup = %v, want ErrNotFound", err)
	}
}

func TestReadLargeFile(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 500 {
		b.WriteString("padding_key_")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(" 1\n")
	}
	b.WriteString("anon 77\n")
	path := filepath.Join(dir, "memory.stat")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	task := Task{Mode: V2, Dir: dir}
	task.files[fileMemStat] = path
	var got Reading
	if err := (&Reader{}).Read(&task, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Has(FieldMemRSS) || got.MemRSSBytes != 77 {
		t.Errorf("a memory.stat larger than the buffer read as %+v", got)
	}
}

func TestReadPIDs(t *testing.T) {
	task := locate(t, "testdata/v2-nomad17", allocWeb, "web")
	pids, err := readPIDs(task.files[fileProcs])
	if err != nil || !slices.Equal(pids, []int{4242, 4250}) {
		t.Errorf("readPIDs = %v, %v; want [4242 4250]", pids, err)
	}
	sidecar := locate(t, "testdata/v1", allocWeb, "sidecar")
	if pids, err := readPIDs(sidecar.files[fileProcs]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readPIDs without cgroup.procs = %v, %v; want not-exist", pids, err)
	}
}
