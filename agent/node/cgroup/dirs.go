package cgroup

import (
	"os"
	"path/filepath"
)

// Dirs are the cgroups one task owns, as absolute directories, one per
// hierarchy that matters; "" where the task owns none (it sits in the root,
// or in a cgroup it shares with other processes). On a v2 host everything
// is in Unified; on a v1 host each controller has its own tree; on a hybrid
// host (v1 controllers and a v2 hierarchy beside them, often at
// <root>/unified) Unified holds no controllers but keeps pressure stall.
type Dirs struct {
	// Unified is the task's cgroup in the v2 hierarchy.
	Unified string
	// UnifiedControllers says whether the v2 hierarchy holds the controllers
	// (a v2 host), rather than only pressure stall (a hybrid host).
	UnifiedControllers bool
	// CPU, Memory and Blkio are its cgroups in those v1 controllers' trees.
	CPU, Memory, Blkio string
}

// Task returns the interface files of d that hold the task's counters, v1
// controllers taking precedence over a hybrid host's controller-less v2
// hierarchy.
func (d Dirs) Task() Task {
	t := Task{Dirs: d, Mode: V1}
	if d.UnifiedControllers {
		t.Mode = V2
	}
	// Dir is the cgroup whose disappearance means the task has gone.
	for _, dir := range [...]string{d.Memory, d.CPU, d.Unified, d.Blkio} {
		if dir != "" {
			t.Dir = dir
			t.files[fileProcs] = filepath.Join(dir, "cgroup.procs")
			break
		}
	}
	if u := d.Unified; u != "" {
		t.files[fileCPUPressure] = filepath.Join(u, "cpu.pressure")
		t.files[fileMemPressure] = filepath.Join(u, "memory.pressure")
		t.files[fileIOPressure] = filepath.Join(u, "io.pressure")
		if d.UnifiedControllers {
			t.files[fileIO] = filepath.Join(u, "io.stat")
			t.files[fileCPUStat] = filepath.Join(u, "cpu.stat")
			t.files[fileCPUQuota] = filepath.Join(u, "cpu.max")
			t.files[fileMemCurrent] = filepath.Join(u, "memory.current")
			t.files[fileMemStat] = filepath.Join(u, "memory.stat")
			t.files[fileMemSwap] = filepath.Join(u, "memory.swap.current")
		}
	}
	if m := d.Memory; m != "" {
		t.files[fileMemCurrent] = filepath.Join(m, "memory.usage_in_bytes")
		t.files[fileMemStat] = filepath.Join(m, "memory.stat")
	}
	if c := d.CPU; c != "" {
		t.files[fileCPUStat] = filepath.Join(c, "cpu.stat")
		t.files[fileCPUQuota] = filepath.Join(c, "cpu.cfs_quota_us")
	}
	if b := d.Blkio; b != "" {
		for _, name := range v1BlkioFiles {
			p := filepath.Join(b, name)
			if _, err := os.Stat(p); err == nil {
				t.files[fileIO] = p
				break
			}
		}
	}
	return t
}

// Has reports which counters the task's own cgroups can give: disk bytes,
// CPU throttling, pressure stall and memory.
func (d Dirs) Has() (io, throttle, pressure, memory bool) {
	return d.Blkio != "" || d.UnifiedControllers,
		d.CPU != "" || d.UnifiedControllers,
		d.Unified != "",
		d.Memory != "" || d.UnifiedControllers
}

// fileFields are the Reading fields each interface file fills.
var fileFields = [nFiles]Field{
	fileIO:          FieldIO,
	fileCPUStat:     FieldThrottle | FieldCPUUsage,
	fileCPUPressure: FieldPSICPU,
	fileMemPressure: FieldPSIMemory,
	fileIOPressure:  FieldPSIIO,
	fileMemCurrent:  FieldMemUsage,
	fileMemStat:     FieldMemRSS | FieldMemCache | FieldMemSwap,
	fileMemSwap:     FieldMemSwap,
	fileCPUQuota:    FieldCPUQuota,
}

// Only returns t reading just the files that fill a field of f, so that a
// caller that needs a few counters opens no other file.
func (t Task) Only(f Field) Task {
	for i, fields := range fileFields {
		if fields&f == 0 && file(i) != fileProcs {
			t.files[i] = ""
		}
	}
	return t
}
