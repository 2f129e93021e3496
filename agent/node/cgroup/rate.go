package cgroup

import (
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

// Rates are the per-second rates and ratios over the interval between two
// readings of one task. Only the fields named in Present hold a value; the
// bits are those of the readings they come from.
type Rates struct {
	// Present names the rates that could be computed.
	Present Field
	// Interval is the time between the two readings.
	Interval time.Duration

	// IOReadBPS is bytes read from block devices per second.
	IOReadBPS float64
	// IOWriteBPS is bytes written to block devices per second.
	IOWriteBPS float64
	// CPUThrottledRatio is the share of runnable CPU periods in which the
	// task hit its quota, from 0 to 1.
	CPUThrottledRatio float64
	// PSICPUSome is the share of the interval in which some of the task's
	// threads stalled waiting for CPU, in percent.
	PSICPUSome float64
	// PSIMemorySome is the same for memory.
	PSIMemorySome float64
	// PSIIOSome is the same for I/O.
	PSIIOSome float64
}

// Metrics appends the rates that are present under their project-wide names.
func (r *Rates) Metrics(dst []Metric) []Metric {
	if r.Present&FieldIO != 0 {
		dst = append(dst, Metric{telemetry.IOReadBPS, r.IOReadBPS}, Metric{telemetry.IOWriteBPS, r.IOWriteBPS})
	}
	if r.Present&FieldThrottle != 0 {
		dst = append(dst, Metric{telemetry.CPUThrottledRatio, r.CPUThrottledRatio})
	}
	if r.Present&FieldPSICPU != 0 {
		dst = append(dst, Metric{telemetry.PSICPUSome, r.PSICPUSome})
	}
	if r.Present&FieldPSIMemory != 0 {
		dst = append(dst, Metric{telemetry.PSIMemSome, r.PSIMemorySome})
	}
	if r.Present&FieldPSIIO != 0 {
		dst = append(dst, Metric{telemetry.PSIIOSome, r.PSIIOSome})
	}
	return dst
}

// Rater turns successive readings of one task into rates. It keeps the
// previous reading; the first reading yields no rates, since a rate needs
// two. A counter that went backwards (the cgroup was recreated, say by a
// task restart) yields no rate for that interval and becomes the new
// baseline, so a reset never shows as a huge or negative rate. Use one
// Rater per task; the zero value is ready to use.
type Rater struct {
	prev   Reading
	prevAt time.Time
	have   bool
}

// Update records the reading r taken at at and returns the rates since the
// previous one. A reading at or before the previous one's time yields no
// rates and replaces the baseline.
func (rt *Rater) Update(at time.Time, r *Reading) Rates {
	prev, prevAt, had := rt.prev, rt.prevAt, rt.have
	rt.prev, rt.prevAt, rt.have = *r, at, true

	var out Rates
	if !had || !at.After(prevAt) {
		return out
	}
	dt := at.Sub(prevAt)
	out.Interval = dt
	secs := dt.Seconds()
	both := prev.Present & r.Present

	if both&FieldIO != 0 && r.IOReadBytes >= prev.IOReadBytes && r.IOWriteBytes >= prev.IOWriteBytes {
		out.IOReadBPS = float64(r.IOReadBytes-prev.IOReadBytes) / secs
		out.IOWriteBPS = float64(r.IOWriteBytes-prev.IOWriteBytes) / secs
		out.Present |= FieldIO
	}
	switch {
	case both&FieldThrottle == 0:
	case r.CPUPeriods > prev.CPUPeriods && r.CPUThrottledPeriods >= prev.CPUThrottledPeriods:
		ratio := float64(r.CPUThrottledPeriods-prev.CPUThrottledPeriods) / float64(r.CPUPeriods-prev.CPUPeriods)
		out.CPUThrottledRatio = min(ratio, 1)
		out.Present |= FieldThrottle
	case r.CPUPeriods == prev.CPUPeriods && r.CPUThrottledPeriods == prev.CPUThrottledPeriods &&
		r.Has(FieldCPUQuota) && r.CPUUnlimited:
		// No quota (Nomad sets shares, not a quota, unless cpu_hard_limit):
		// the kernel cannot throttle the task, and counts no period. The
		// ratio is a measured zero. With a quota and no period the task did
		// not run, and the ratio is undefined: left absent.
		out.Present |= FieldThrottle
	}
	for _, p := range [...]struct {
		field     Field
		prev, cur time.Duration
		dst       *float64
	}{
		{FieldPSICPU, prev.PSICPU.SomeTotal, r.PSICPU.SomeTotal, &out.PSICPUSome},
		{FieldPSIMemory, prev.PSIMemory.SomeTotal, r.PSIMemory.SomeTotal, &out.PSIMemorySome},
		{FieldPSIIO, prev.PSIIO.SomeTotal, r.PSIIO.SomeTotal, &out.PSIIOSome},
	} {
		if both&p.field == 0 || p.cur < p.prev {
			continue
		}
		// The stall total and the timestamps are read at slightly
		// different instants, so the share can overshoot 100 % by the
		// read latency; it cannot really.
		*p.dst = min(100*float64(p.cur-p.prev)/float64(dt), 100)
		out.Present |= p.field
	}
	return out
}

// Reset forgets the baseline, so the next reading yields no rates.
func (rt *Rater) Reset() { *rt = Rater{} }
