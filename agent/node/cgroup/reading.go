package cgroup

import (
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

// Field is a bit set naming which values of a Reading or Rates are present.
type Field uint16

// The fields of a Reading; the same bits mark the rates derived from them.
const (
	// FieldIO covers IOReadBytes and IOWriteBytes (rates io_read_bps, io_write_bps).
	FieldIO Field = 1 << iota
	// FieldThrottle covers the CPU bandwidth counters (rate cpu_throttled_ratio).
	FieldThrottle
	// FieldCPUUsage covers CPUUsage.
	FieldCPUUsage
	// FieldPSICPU covers PSICPU (rate psi_cpu_some).
	FieldPSICPU
	// FieldPSIMemory covers PSIMemory (rate psi_mem_some).
	FieldPSIMemory
	// FieldPSIIO covers PSIIO (rate psi_io_some).
	FieldPSIIO
	// FieldMemUsage covers MemUsageBytes.
	FieldMemUsage
	// FieldMemRSS covers MemRSSBytes.
	FieldMemRSS
	// FieldMemCache covers MemCacheBytes.
	FieldMemCache
	// FieldMemSwap covers MemSwapBytes.
	FieldMemSwap
	// FieldCPUQuota covers CPUUnlimited.
	FieldCPUQuota
)

// Reading is one sample of a task cgroup's counters. Counters are cumulative
// since the cgroup was created; memory values are instantaneous. Only the
// fields named in Present hold a value.
type Reading struct {
	// Present names the fields that were read.
	Present Field

	// IOReadBytes is the cumulative number of bytes read from block devices.
	IOReadBytes uint64
	// IOWriteBytes is the cumulative number of bytes written to block devices.
	IOWriteBytes uint64

	// CPUPeriods counts CPU bandwidth periods in which the task was runnable.
	CPUPeriods uint64
	// CPUThrottledPeriods counts the periods in which it was throttled.
	CPUThrottledPeriods uint64
	// CPUThrottledTime is the cumulative time it was throttled.
	CPUThrottledTime time.Duration
	// CPUUsage is the cumulative CPU time it used (v2 only).
	CPUUsage time.Duration
	// CPUUnlimited says the cgroup has no CPU quota, so it is never throttled.
	CPUUnlimited bool

	// PSICPU is the CPU pressure stall of the task (v2 only).
	PSICPU Pressure
	// PSIMemory is its memory pressure stall (v2 only).
	PSIMemory Pressure
	// PSIIO is its I/O pressure stall (v2 only).
	PSIIO Pressure

	// MemUsageBytes is the memory charged to the cgroup, page cache included.
	MemUsageBytes uint64
	// MemRSSBytes is its anonymous memory.
	MemRSSBytes uint64
	// MemCacheBytes is its page cache.
	MemCacheBytes uint64
	// MemSwapBytes is its memory swapped out.
	MemSwapBytes uint64
}

// Has reports whether every field in f is present.
func (r *Reading) Has(f Field) bool { return r.Present&f == f }

// Metrics appends the instantaneous metrics of the reading that are present,
// under their project-wide names: mem_usage_bytes and mem_rss_bytes. Rates
// come from a Rater. The Nomad client API reports these too; prefer it where
// the task's driver measures them.
func (r *Reading) Metrics(dst []Metric) []Metric {
	if r.Has(FieldMemUsage) {
		dst = append(dst, Metric{telemetry.MemUsageBytes, float64(r.MemUsageBytes)})
	}
	if r.Has(FieldMemRSS) {
		dst = append(dst, Metric{telemetry.MemRSSBytes, float64(r.MemRSSBytes)})
	}
	return dst
}

// Metric is one named value, under a project-wide metric name.
type Metric struct {
	// Name is the metric's project-wide name, such as io_read_bps.
	Name string
	// Value is in the unit the name states.
	Value float64
}
