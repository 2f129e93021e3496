package sim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/telemetry"
)

// What a driver measures, as Nomad 1.6 reports it in Measured. Drivers
// that run tasks in cgroups (exec, docker) measure the cgroup; raw_exec
// measures the task's processes, which gives CPU and RSS only.
var (
	measuredMemory        = []string{"RSS", "Cache", "Swap", "Usage", "Max Usage", "Kernel Usage", "Kernel Max Usage"}
	measuredCPU           = []string{"System Mode", "User Mode", "Throttled Periods", "Throttled Time", "Percent"}
	measuredProcessMemory = []string{"RSS", "Swap"}
	measuredProcessCPU    = []string{"System Mode", "User Mode", "Percent"}
)

// userShare is the part of CPU time spent in user mode in the model.
const userShare = 0.85

// allocStats is what `/v1/client/allocation/<id>/stats` sends: Nomad's
// client struct, which has more than api.AllocResourceUsage (MappedFile,
// per-process stats). Its fields, like Nomad's, are in alphabetical order.
type allocStats struct {
	ResourceUsage *resourceUsage
	Tasks         map[string]*taskStats
	Timestamp     int64
}

type taskStats struct {
	// Pids holds the stats of each process of a task whose driver runs
	// it through Nomad's executor; sim's tasks are one process each.
	Pids          map[string]*resourceUsage
	ResourceUsage *resourceUsage
	Timestamp     int64
}

type resourceUsage struct {
	CpuStats    *cpuStats
	DeviceStats []*api.DeviceGroupStats
	MemoryStats *memoryStats
}

type cpuStats struct {
	Measured         []string
	Percent          float64
	SystemMode       float64
	ThrottledPeriods uint64
	ThrottledTime    uint64
	TotalTicks       float64
	UserMode         float64
}

type memoryStats struct {
	Cache          uint64
	KernelMaxUsage uint64
	KernelUsage    uint64
	MappedFile     uint64
	MaxUsage       uint64
	Measured       []string
	RSS            uint64
	Swap           uint64
	Usage          uint64
}

// processDrivers run tasks through Nomad's executor, which reports the
// stats of each process besides the task's.
var processDrivers = map[string]bool{"exec": true, "raw_exec": true, "java": true}

// AllocStats answers `/v1/client/allocation/<id>/stats`: the allocation's
// usage split over its tasks by their CPU reservation, measured as each
// task's driver does.
func (c *Cluster) AllocStats(id string) (*allocStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.allocs[id]
	if a == nil {
		return nil, fmt.Errorf("%w: unknown allocation %q", ErrNotFound, id)
	}
	if !a.running() {
		return nil, fmt.Errorf("%w: allocation %q is not running", ErrInvalid, id)
	}
	now := c.clock.Now().UnixNano()
	out := &allocStats{Tasks: map[string]*taskStats{}, Timestamp: now}
	coreMHz := float64(a.node.group.cfg.CPUMHz)
	total := &resourceUsage{CpuStats: &cpuStats{Measured: measuredCPU}, MemoryStats: &memoryStats{Measured: measuredMemory}, DeviceStats: []*api.DeviceGroupStats{}}
	tg := groupOf(a.api.Job, a.api.TaskGroup)
	for i, task := range slices.Sorted(maps.Keys(a.api.AllocatedResources.Tasks)) {
		share := float64(a.api.AllocatedResources.Tasks[task].Cpu.CpuShares) / float64(a.cpu)
		u := &a.usage
		rss := uint64(u.memBytes * share)
		// What the task's process measures: CPU time and RSS.
		cpu := cpuStats{
			TotalTicks: u.cpuMHz * share,
			Percent:    100 * u.cpuMHz * share / coreMHz,
			UserMode:   100 * userShare * u.cpuMHz * share / coreMHz,
			SystemMode: 100 * (1 - userShare) * u.cpuMHz * share / coreMHz,
			Measured:   measuredProcessCPU,
		}
		driver := driverOf(tg, task)
		if a.node.group.cfg.NoTaskCgroups {
			driver = "raw_exec" // no cgroup: Nomad measures the processes
		}
		ts := &taskStats{Timestamp: now}
		if processDrivers[driver] {
			pc := cpu
			proc := &resourceUsage{CpuStats: &pc, MemoryStats: &memoryStats{RSS: rss, Measured: measuredProcessMemory}}
			ts.ResourceUsage = proc
			// A made-up but stable PID for the task's one process.
			ts.Pids = map[string]*resourceUsage{strconv.FormatUint(1000+a.api.CreateIndex*16+uint64(i), 10): proc}
		}
		if driver == "raw_exec" {
			total.CpuStats.Measured, total.MemoryStats.Measured = measuredProcessCPU, measuredProcessMemory
		} else {
			// The task's cgroup adds cache, kernel memory and throttling.
			cg := cpu
			cg.ThrottledPeriods, cg.ThrottledTime, cg.Measured = u.throttledPeriods, uint64(float64(u.throttledNanos)*share), measuredCPU
			cache := rss / 10
			ts.ResourceUsage = &resourceUsage{CpuStats: &cg, MemoryStats: &memoryStats{
				RSS: rss, Cache: cache, Usage: rss + cache, MaxUsage: uint64(u.maxMemBytes*share) + cache,
				KernelUsage: rss / 50, KernelMaxUsage: rss / 40, Measured: measuredMemory,
			}}
		}
		out.Tasks[task] = ts
		addUsage(total, ts.ResourceUsage)
	}
	out.ResourceUsage = total
	return out, nil
}

// driverOf is the driver of a task of tg.
func driverOf(tg *api.TaskGroup, task string) string {
	if tg != nil {
		for _, t := range tg.Tasks {
			if t.Name == task {
				return t.Driver
			}
		}
	}
	return ""
}

func addUsage(total, u *resourceUsage) {
	t, cpu := total.CpuStats, u.CpuStats
	t.TotalTicks += cpu.TotalTicks
	t.Percent += cpu.Percent
	t.UserMode += cpu.UserMode
	t.SystemMode += cpu.SystemMode
	t.ThrottledPeriods = max(t.ThrottledPeriods, cpu.ThrottledPeriods)
	t.ThrottledTime += cpu.ThrottledTime
	m, mem := total.MemoryStats, u.MemoryStats
	m.RSS += mem.RSS
	m.Cache += mem.Cache
	m.Swap += mem.Swap
	m.Usage += mem.Usage
	m.MaxUsage += mem.MaxUsage
	m.KernelUsage += mem.KernelUsage
	m.KernelMaxUsage += mem.KernelMaxUsage
}

// hostStats is what `/v1/client/stats` reports for a node: its CPU cores
// and memory as the allocations on it load them.
type hostStats struct {
	api.HostStats
	CPU       []*hostCPUStats
	Timestamp int64
}

// hostCPUStats is one core's load; Nomad sends the total and ticks that
// api.HostCPUStats lacks.
type hostCPUStats struct {
	CPU          string
	Idle         float64
	System       float64
	TotalPercent float64
	TotalTicks   float64
	User         float64
}

// HostStats answers `/v1/client/stats?node_id=…`.
func (c *Cluster) HostStats(nodeID string) (*hostStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.nodeByID(nodeID)
	if err != nil {
		return nil, err
	}
	gc := n.group.cfg
	var cpuMHz, mem float64
	for _, a := range n.allocs {
		if a.running() {
			cpuMHz += a.usage.cpuMHz
			mem += a.usage.memBytes
		}
	}
	busy := min(1, cpuMHz/float64(gc.CPUMHz*gc.Cores))
	hs := &hostStats{Timestamp: c.clock.Now().UnixNano()}
	hs.CPUTicksConsumed = cpuMHz
	hs.Uptime = uint64(c.clock.Now().Sub(c.cfg.Start).Seconds())
	for i := range gc.Cores {
		hs.CPU = append(hs.CPU, &hostCPUStats{
			CPU: fmt.Sprintf("cpu%d", i), User: 100 * busy * userShare, System: 100 * busy * (1 - userShare), Idle: 100 * (1 - busy),
			TotalPercent: 100 * busy, TotalTicks: busy * float64(gc.CPUMHz),
		})
	}
	total := uint64(gc.MemoryMB) << 20
	used := min(uint64(mem), total)
	hs.Memory = &api.HostMemoryStats{Total: total, Used: used, Available: total - used, Free: total - used}
	disk := uint64(gc.DiskMB) << 20
	hs.AllocDirStats = &api.HostDiskStats{Device: "/dev/sim0", Mountpoint: "/opt/nomad/data", Size: disk, Available: disk}
	hs.DiskStats = []*api.HostDiskStats{hs.AllocDirStats}
	return hs, nil
}

// TaskTelemetry is what sim measures for a task beyond what Nomad's stats
// carry: disk and network rates, pressure stall and throttling. In
// production the agent reads these from cgroups, processes and the network
// namespace.
type TaskTelemetry map[string]float64

// NodeTelemetry answers `/v1/sim/node/<id>/telemetry`: what an agent on the
// node's host would read.
type NodeTelemetry struct {
	NodeID    string
	Timestamp int64
	// Allocations maps allocation ID to task name to metric.
	Allocations map[string]map[string]TaskTelemetry
	// Sources says, keyed as Allocations, how a host agent reads each
	// metric (telemetry.Source*).
	Sources map[string]map[string]map[string]string
	// Absent says, keyed as Allocations, why a task has no such metric
	// (telemetry.Absent*).
	Absent map[string]map[string]map[string]string
	// Host is what an agent would fingerprint on the node's hardware.
	Host HostTraits
}

// HostTraits describe a node's hardware the way the agent's fingerprint
// reads it from /proc and /sys on a real host.
type HostTraits struct {
	// Storage is the kind of disk under the allocation directory.
	Storage  string
	CPUModel string
	Cores    int
	CPUMHz   int
	MemoryMB int
	// NetMbits is the link speed.
	NetMbits int
}

// Telemetry reports the extra metrics of every running task on a node.
func (c *Cluster) Telemetry(nodeID string) (*NodeTelemetry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.nodeByID(nodeID)
	if err != nil {
		return nil, err
	}
	gc := n.group.cfg
	out := &NodeTelemetry{
		NodeID: n.api.ID, Timestamp: c.clock.Now().UnixNano(), Allocations: map[string]map[string]TaskTelemetry{},
		Host: HostTraits{Storage: gc.Storage, CPUModel: n.api.Attributes["cpu.modelname"], Cores: gc.Cores, CPUMHz: gc.CPUMHz, MemoryMB: gc.MemoryMB, NetMbits: gc.NetMbits},
	}
	noCgroups := gc.NoTaskCgroups
	out.Sources = map[string]map[string]map[string]string{}
	out.Absent = map[string]map[string]map[string]string{}
	for id, a := range n.allocs {
		if !a.running() {
			continue
		}
		tasks := map[string]TaskTelemetry{}
		sources := map[string]map[string]string{}
		absent := map[string]map[string]string{}
		for name, res := range a.api.AllocatedResources.Tasks {
			share := float64(res.Cpu.CpuShares) / float64(a.cpu)
			u := &a.usage
			if noCgroups {
				// As the agent reads raw_exec on cgroup v1: disk bytes,
				// CPU and RSS from the task's processes; no pressure, no
				// throttling, the host's network.
				tasks[name] = TaskTelemetry{
					telemetry.IOReadBPS:   u.ioReadBps * share,
					telemetry.IOWriteBPS:  u.ioWriteBps * share,
					telemetry.CPUMHz:      u.cpuMHz * share,
					telemetry.MemRSSBytes: u.memBytes * share,
				}
				sources[name] = sourcesOf(tasks[name], telemetry.SourceProcess)
				absent[name] = map[string]string{
					telemetry.CPUThrottledRatio: telemetry.AbsentNoCgroup,
					telemetry.PSICPUSome:        telemetry.AbsentPressureV1,
					telemetry.PSIMemSome:        telemetry.AbsentPressureV1,
					telemetry.PSIIOSome:         telemetry.AbsentPressureV1,
					telemetry.NetRxBPS:          telemetry.AbsentHostNetwork,
					telemetry.NetTxBPS:          telemetry.AbsentHostNetwork,
				}
				continue
			}
			tasks[name] = TaskTelemetry{
				telemetry.IOReadBPS:         u.ioReadBps * share,
				telemetry.IOWriteBPS:        u.ioWriteBps * share,
				telemetry.NetRxBPS:          u.netRxBps * share,
				telemetry.NetTxBPS:          u.netTxBps * share,
				telemetry.PSICPUSome:        u.psiCPU,
				telemetry.PSIMemSome:        u.psiMem,
				telemetry.PSIIOSome:         u.psiIO,
				telemetry.CPUThrottledRatio: u.throttleRatio,
			}
			sources[name] = sourcesOf(tasks[name], telemetry.SourceCgroup)
			sources[name][telemetry.NetRxBPS] = telemetry.SourceNetns
			sources[name][telemetry.NetTxBPS] = telemetry.SourceNetns
		}
		out.Allocations[id] = tasks
		out.Sources[id] = sources
		if len(absent) > 0 {
			out.Absent[id] = absent
		}
	}
	return out, nil
}

// sourcesOf says that every metric of tt was read one way.
func sourcesOf(tt TaskTelemetry, source string) map[string]string {
	out := make(map[string]string, len(tt))
	for m := range tt {
		out[m] = source
	}
	return out
}

func (c *Cluster) nodeByID(id string) (*simNode, error) {
	if n := c.nodes[id]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%w: node %q", ErrNotFound, id)
}
