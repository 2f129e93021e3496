package sim

import (
	"fmt"

	"github.com/hashicorp/nomad/api"
)

// What a cgroup-based driver (exec, docker) measures, as Nomad reports it.
var (
	measuredMemory = []string{"RSS", "Cache", "Swap", "Usage", "Max Usage", "Kernel Usage", "Kernel Max Usage"}
	measuredCPU    = []string{"System Mode", "User Mode", "Throttled Periods", "Throttled Time", "Percent"}
)

// userShare is the part of CPU time spent in user mode in the model.
const userShare = 0.85

// AllocStats answers `/v1/client/allocation/<id>/stats`: the allocation's
// usage split over its tasks by their CPU reservation.
func (c *Cluster) AllocStats(id string) (*api.AllocResourceUsage, error) {
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
	out := &api.AllocResourceUsage{Tasks: map[string]*api.TaskResourceUsage{}, Timestamp: now}
	coreMHz := float64(a.node.group.cfg.CPUMHz)
	var total api.ResourceUsage
	total.CpuStats = &api.CpuStats{Measured: measuredCPU}
	total.MemoryStats = &api.MemoryStats{Measured: measuredMemory}
	for _, task := range sortedKeys(a.api.AllocatedResources.Tasks) {
		share := float64(a.api.AllocatedResources.Tasks[task].Cpu.CpuShares) / float64(a.cpu)
		u := &a.usage
		cpu := &api.CpuStats{
			TotalTicks:       u.cpuMHz * share,
			Percent:          100 * u.cpuMHz * share / coreMHz,
			UserMode:         100 * userShare * u.cpuMHz * share / coreMHz,
			SystemMode:       100 * (1 - userShare) * u.cpuMHz * share / coreMHz,
			ThrottledPeriods: u.throttledPeriods,
			ThrottledTime:    uint64(float64(u.throttledNanos) * share),
			Measured:         measuredCPU,
		}
		rss := uint64(u.memBytes * share)
		cache := rss / 10
		mem := &api.MemoryStats{
			RSS: rss, Cache: cache, Usage: rss + cache, MaxUsage: uint64(u.maxMemBytes*share) + cache,
			KernelUsage: rss / 50, KernelMaxUsage: rss / 40, Measured: measuredMemory,
		}
		out.Tasks[task] = &api.TaskResourceUsage{ResourceUsage: &api.ResourceUsage{CpuStats: cpu, MemoryStats: mem}, Timestamp: now}
		addUsage(&total, cpu, mem)
	}
	out.ResourceUsage = &total
	return out, nil
}

func addUsage(total *api.ResourceUsage, cpu *api.CpuStats, mem *api.MemoryStats) {
	t := total.CpuStats
	t.TotalTicks += cpu.TotalTicks
	t.Percent += cpu.Percent
	t.UserMode += cpu.UserMode
	t.SystemMode += cpu.SystemMode
	t.ThrottledPeriods = max(t.ThrottledPeriods, cpu.ThrottledPeriods)
	t.ThrottledTime += cpu.ThrottledTime
	m := total.MemoryStats
	m.RSS += mem.RSS
	m.Cache += mem.Cache
	m.Usage += mem.Usage
	m.MaxUsage += mem.MaxUsage
	m.KernelUsage += mem.KernelUsage
	m.KernelMaxUsage += mem.KernelMaxUsage
}

// hostStats is what `/v1/client/stats` reports for a node: its CPU cores
// and memory as the allocations on it load them.
type hostStats struct {
	api.HostStats
	Timestamp int64
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
		hs.CPU = append(hs.CPU, &api.HostCPUStats{CPU: fmt.Sprintf("cpu%d", i), User: 100 * busy * userShare, System: 100 * busy * (1 - userShare), Idle: 100 * (1 - busy)})
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
// production the agent reads these from cgroups and the network namespace.
type TaskTelemetry map[string]float64

// NodeTelemetry answers `/v1/sim/node/<id>/telemetry`.
type NodeTelemetry struct {
	NodeID    string
	Timestamp int64
	// Allocations maps allocation ID to task name to metric.
	Allocations map[string]map[string]TaskTelemetry
}

// Telemetry reports the extra metrics of every running task on a node.
func (c *Cluster) Telemetry(nodeID string) (*NodeTelemetry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.nodeByID(nodeID)
	if err != nil {
		return nil, err
	}
	out := &NodeTelemetry{NodeID: n.api.ID, Timestamp: c.clock.Now().UnixNano(), Allocations: map[string]map[string]TaskTelemetry{}}
	for id, a := range n.allocs {
		if !a.running() {
			continue
		}
		tasks := map[string]TaskTelemetry{}
		for name, res := range a.api.AllocatedResources.Tasks {
			share := float64(res.Cpu.CpuShares) / float64(a.cpu)
			u := &a.usage
			tasks[name] = TaskTelemetry{
				"io_read_bps":         u.ioReadBps * share,
				"io_write_bps":        u.ioWriteBps * share,
				"net_rx_bps":          u.netRxBps * share,
				"net_tx_bps":          u.netTxBps * share,
				"psi_cpu_some":        u.psiCPU,
				"psi_mem_some":        u.psiMem,
				"psi_io_some":         u.psiIO,
				"cpu_throttled_ratio": u.throttleRatio,
			}
		}
		out.Allocations[id] = tasks
	}
	return out, nil
}

func (c *Cluster) nodeByID(id string) (*simNode, error) {
	if n := c.nodes[id]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%w: node %q", ErrNotFound, id)
}
