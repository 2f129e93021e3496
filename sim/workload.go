package sim

import (
	"math"
	"sort"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Pressure stall model: how stall (% of time some task waits) grows with
// contention. They shape telemetry only; nothing else depends on them.
const (
	// cpuStallOnset is the utilisation of its CPU limit above which an
	// allocation starts to stall even before it is throttled.
	cpuStallOnset = 0.8
	// memStallOnset is the share of the memory limit above which reclaim
	// starts to stall.
	memStallOnset = 0.9
)

// workload is the demand of one task group and what it has cost so far.
type workload struct {
	key groupKey
	cfg *WorkloadConfig
	// demand is the group's CPU work now, MHz at efficiency 1.
	demand float64
}

// allocUsage is what an allocation uses right now, and the counters that
// only grow.
type allocUsage struct {
	cpuMHz        float64 // CPU used
	cpuNeed       float64 // CPU the work needed on this node
	throttleRatio float64 // share of the need that was not met
	memBytes      float64
	maxMemBytes   float64
	ioReadBps     float64
	ioWriteBps    float64
	netRxBps      float64
	netTxBps      float64
	psiCPU        float64
	psiMem        float64
	psiIO         float64
	// Counters since the allocation started.
	cpuSeconds       float64 // MHz·s, for ticks
	throttledPeriods uint64
	throttledNanos   uint64
}

// Totals is what the workload model has measured over the whole run, for
// backtests and the demo.
type Totals struct {
	// DemandMHzSeconds is the work asked for, UnmetMHzSeconds the part no
	// allocation could do (no allocation running, or all at their limit).
	DemandMHzSeconds float64
	UnmetMHzSeconds  float64
	// ViolationSeconds is the time some group had unmet demand.
	ViolationSeconds float64
	// OOMKills counts allocations killed for exceeding their memory.
	OOMKills int
}

// Totals returns the workload totals so far.
func (c *Cluster) Totals() Totals {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.totals
}

// GroupDemand is a group's current work in MHz at efficiency 1 (what its
// trace asks for now), for tests and backtests.
func (c *Cluster) GroupDemand(ns, job, group string) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.workloads[groupKey{ns, job, group}]
	if !ok {
		return 0, false
	}
	return w.cfg.Trace.At(c.clock.Now().Sub(c.cfg.Start)) * w.cfg.Scale, true
}

// stepWorkloads recomputes every allocation's usage at now from its group's
// demand; dt is the time since the last step.
func (c *Cluster) stepWorkloads(now time.Time, dt time.Duration) {
	secs := dt.Seconds()
	elapsed := now.Sub(c.cfg.Start)
	var oom []*simAlloc
	for _, w := range c.sortedWorkloads() {
		w.demand = w.cfg.Trace.At(elapsed) * w.cfg.Scale
		running := c.runningAllocs(w.key)
		c.totals.DemandMHzSeconds += w.demand * secs
		if len(running) == 0 {
			if w.demand > 0 {
				c.totals.UnmetMHzSeconds += w.demand * secs
				c.totals.ViolationSeconds += secs
			}
			continue
		}
		share := w.demand / float64(len(running))
		var unmet float64
		for _, a := range running {
			eff := w.cfg.efficiency(a.node.api.NodeClass)
			u := &a.usage
			u.cpuNeed = share / eff
			u.cpuMHz = math.Min(u.cpuNeed, float64(a.cpu))
			u.throttleRatio = 0
			if u.cpuNeed > 0 {
				u.throttleRatio = (u.cpuNeed - u.cpuMHz) / u.cpuNeed
			}
			// Work not done, in efficiency-1 MHz, so groups compare.
			unmet += (u.cpuNeed - u.cpuMHz) * eff
			u.cpuSeconds += u.cpuMHz * secs
			if u.throttleRatio > 0 {
				// One CFS period is 100 ms.
				periods := uint64(secs * 10)
				u.throttledPeriods += periods
				u.throttledNanos += uint64(u.throttleRatio * secs * 1e9)
			}
			done := u.cpuMHz * eff // work actually handled
			u.memBytes = (w.cfg.MemoryBaseMB + w.cfg.MemoryPerGHz*done/1000) * (1 << 20)
			u.maxMemBytes = math.Max(u.maxMemBytes, u.memBytes)
			u.ioReadBps = w.cfg.IOReadPerMHz * done
			u.ioWriteBps = w.cfg.IOWritePerMHz * done
			u.netRxBps = w.cfg.NetRxPerMHz * done
			u.netTxBps = w.cfg.NetTxPerMHz * done
			u.psiCPU = cpuStall(u.cpuNeed/float64(a.cpu), u.throttleRatio)
			u.psiMem = memStall(u.memBytes / (float64(a.mem) * (1 << 20)))
			u.psiIO = ioStall((u.ioReadBps + u.ioWriteBps) / (float64(a.node.group.cfg.IOMBps) * 1e6))
			if u.memBytes > float64(a.memLimitMB())*(1<<20) {
				oom = append(oom, a)
			}
		}
		c.totals.UnmetMHzSeconds += unmet * secs
		if unmet > 1e-9 {
			c.totals.ViolationSeconds += secs
		}
	}
	if len(oom) > 0 {
		c.oomKill(oom, now)
	}
}

// oomKill fails allocations that went over their memory limit; the
// scheduler replaces them, as Nomad reschedules failed allocations.
func (c *Cluster) oomKill(allocs []*simAlloc, now time.Time) {
	idx := c.bump(tableAllocs, tableSummaries, tableEvals)
	var touched []*simJob
	for _, a := range allocs {
		for _, ts := range a.api.TaskStates {
			ts.Events = append(ts.Events, &api.TaskEvent{Type: "OOM Killed", Time: now.UnixNano(), DisplayMessage: "OOM Killed", Details: map[string]string{}})
		}
		c.stopAlloc(a, now, idx, "alloc was rescheduled because it failed", clientFailed)
		a.api.DesiredStatus = api.AllocDesiredStatusRun // failed, not stopped by the user: Nomad keeps "run"
		c.totals.OOMKills++
		if j := c.jobs[jobKey{a.api.Namespace, a.api.JobID}]; j != nil {
			touched = append(touched, j)
		}
	}
	for _, j := range uniqueJobs(touched) {
		c.evaluateAt(j, "alloc-failure", now, idx)
	}
}

// cpuStall is the share of time (%) tasks wait for CPU: it rises as the
// allocation nears its limit and with every throttled period.
func cpuStall(utilisation, throttled float64) float64 {
	s := 100 * throttled
	if utilisation > cpuStallOnset {
		s += 20 * math.Min(1, (utilisation-cpuStallOnset)/(1-cpuStallOnset))
	}
	return math.Min(100, s)
}

// memStall is the share of time (%) spent reclaiming memory near the limit.
func memStall(used float64) float64 {
	if used <= memStallOnset {
		return 0
	}
	return math.Min(100, 100*(used-memStallOnset)/(1-memStallOnset))
}

// ioStall is the share of time (%) waiting on the disk, from its load.
func ioStall(load float64) float64 {
	return math.Min(100, 100*load*load)
}

func (w *WorkloadConfig) efficiency(class string) float64 {
	if e, ok := w.Efficiency[class]; ok {
		return e
	}
	return 1
}

// memLimitMB is where the kernel kills the allocation: its memory_max when
// set (oversubscription), else its memory.
func (a *simAlloc) memLimitMB() int {
	limit := 0
	for _, t := range a.api.AllocatedResources.Tasks {
		if t.Memory.MemoryMaxMB > t.Memory.MemoryMB {
			limit += int(t.Memory.MemoryMaxMB)
		} else {
			limit += int(t.Memory.MemoryMB)
		}
	}
	return limit
}

func (c *Cluster) runningAllocs(k groupKey) []*simAlloc {
	var out []*simAlloc
	for _, a := range c.allocList {
		if a.running() && a.api.TaskGroup == k.group && a.api.JobID == k.job && a.api.Namespace == k.ns {
			out = append(out, a)
		}
	}
	return out
}

func (c *Cluster) sortedWorkloads() []*workload {
	out := make([]*workload, 0, len(c.workloads))
	for _, w := range c.workloads {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key.String() < out[j].key.String() })
	return out
}
