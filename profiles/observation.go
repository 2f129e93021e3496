package profiles

import (
	"fmt"
	"math"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

// Observation is what one allocation did over one sampling interval: the
// mean of its tasks' samples, summed over tasks for rates and amounts and
// the worst task for pressure stall. The leader builds one per running
// allocation per round and hands a whole round to [Profiler.Observe].
type Observation struct {
	// Group is the task group, "namespace/job/group".
	Group string
	// Alloc is the allocation ID, for messages.
	Alloc string
	// Node is the ID of the node it runs on.
	Node string
	// Duration is the interval the observation covers.
	Duration time.Duration
	// Throughput is the work the allocation did per second, from an
	// application metric when the operator configured one (requests/s,
	// records/s); 0 when none is configured. Without it, the group's
	// allocations are taken to share its load evenly, as services behind a
	// balancer do, so all of them do the same work in one round.
	Throughput float64
	// CPUMHz is the CPU used; ThrottledRatio the share of CPU periods in
	// which the task wanted more than its limit, 0…1.
	CPUMHz, ThrottledRatio float64
	// MemRSSBytes and MemUsageBytes are resident and total memory.
	MemRSSBytes, MemUsageBytes float64
	// Disk and network rates, bytes per second.
	IOReadBps, IOWriteBps, NetRxBps, NetTxBps float64
	// Pressure stall, "some" line, percent of time, 0…100.
	PSICPU, PSIMem, PSIIO float64
	// ReservedCPUMHz and ReservedMemoryMB are what the allocation asked
	// for, so that load can be told as a share of it.
	ReservedCPUMHz, ReservedMemoryMB float64
}

// validate reports the first thing wrong with o, naming it.
func (o *Observation) validate() error {
	if o.Group == "" {
		return fmt.Errorf("allocation %q: no group", o.Alloc)
	}
	if o.Node == "" {
		return fmt.Errorf("allocation %q of %s: no node", o.Alloc, o.Group)
	}
	if o.Duration <= 0 {
		return fmt.Errorf("allocation %q of %s: duration %s must be positive", o.Alloc, o.Group, o.Duration)
	}
	check := []struct {
		name string
		v    float64
		max  float64
	}{
		{"throughput", o.Throughput, math.Inf(1)},
		{telemetry.CPUMHz, o.CPUMHz, math.Inf(1)},
		{telemetry.CPUThrottledRatio, o.ThrottledRatio, 1},
		{telemetry.MemRSSBytes, o.MemRSSBytes, math.Inf(1)},
		{telemetry.MemUsageBytes, o.MemUsageBytes, math.Inf(1)},
		{telemetry.IOReadBPS, o.IOReadBps, math.Inf(1)},
		{telemetry.IOWriteBPS, o.IOWriteBps, math.Inf(1)},
		{telemetry.NetRxBPS, o.NetRxBps, math.Inf(1)},
		{telemetry.NetTxBPS, o.NetTxBps, math.Inf(1)},
		{telemetry.PSICPUSome, o.PSICPU, 100},
		{telemetry.PSIMemSome, o.PSIMem, 100},
		{telemetry.PSIIOSome, o.PSIIO, 100},
		{"reserved cpu", o.ReservedCPUMHz, math.Inf(1)},
		{"reserved memory", o.ReservedMemoryMB, math.Inf(1)},
	}
	for _, c := range check {
		if math.IsNaN(c.v) || math.IsInf(c.v, 0) || c.v < 0 || c.v > c.max {
			return fmt.Errorf("allocation %q of %s: %s = %g, want 0…%g", o.Alloc, o.Group, c.name, c.v, c.max)
		}
	}
	return nil
}

// need is the CPU the allocation would have used unthrottled: a throttled
// task used its limit and wanted more, in the ratio of throttled periods.
// Capped at ten times the use so that a ratio near 1 cannot explode it.
func (o *Observation) need() float64 {
	return o.CPUMHz / math.Max(1-o.ThrottledRatio, 0.1)
}

// stall is the share of time, 0…1, the allocation waited on memory or
// disk: time in which it did no work although it had CPU to do it. CPU
// stall is left out: it is the consequence of a CPU cost that need already
// counts.
func (o *Observation) stall() float64 {
	return math.Min(0.9, math.Max(o.PSIMem, o.PSIIO)/100)
}

// logEfficiency is the log of work per unit of CPU over the interval, up to
// a per-round constant. With a throughput metric it is ln(throughput /
// need). Without one every allocation of the group does the same share of
// work in a round, delayed by stall, so ln(share·(1−stall)/need) and the
// share, equal for all, drops out of every comparison within the round.
func (o *Observation) logEfficiency() (float64, bool) {
	need := o.need()
	if need <= 0 {
		return 0, false
	}
	if o.Throughput > 0 {
		return math.Log(o.Throughput / need), true
	}
	return math.Log((1 - o.stall()) / need), true
}
