package leader

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// Defaults of the profiling feed.
const (
	// DefaultProfileRound is the interval one profiler observation covers.
	DefaultProfileRound = time.Minute
	// maxOpenRounds bounds the rounds held while they wait.
	maxOpenRounds = 10
)

// profileFeed turns the telemetry the leader takes in into the profiler's
// observations: per round and allocation, the sum over its tasks of each
// metric's mean reading (the worst task's, for stall and throttling), with
// the node and reservation Nomad reports for the allocation. Only live
// telemetry is profiled: rounds that closed before this leader started
// (replayed history) are not, so a new leader's scores rebuild from its own
// observations.
type profileFeed struct {
	nomad   *nomadapi.Client
	prof    *profiles.Profiler
	clock   clock.Clock
	log     hclog.Logger
	round   time.Duration
	started time.Time
	// declared are the classes of the capacity targets' declared nodes,
	// known before any of their nodes exists.
	declared []profiles.Class

	mu     sync.Mutex
	rounds map[int64]map[string]*allocRound // round start → alloc → readings
}

// allocRound accumulates one allocation's readings in one round.
type allocRound struct {
	group string
	// per task and metric, the sum and count of readings
	tasks map[string]map[string]*meanOf
}

type meanOf struct{ sum, n float64 }

func (m *meanOf) mean() float64 { return m.sum / m.n }

func newProfileFeed(nomad *nomadapi.Client, clk clock.Clock, round time.Duration, declared []profiles.Class, log hclog.Logger) (*profileFeed, error) {
	prof, err := profiles.New(profiles.Config{})
	if err != nil {
		return nil, fmt.Errorf("profiler: %w", err)
	}
	if round <= 0 {
		round = DefaultProfileRound
	}
	return &profileFeed{nomad: nomad, prof: prof, clock: clk, log: log, round: round, started: clk.Now(), declared: declared, rounds: map[int64]map[string]*allocRound{}}, nil
}

// take records samples the store accepted.
func (f *profileFeed) take(samples []telemetry.Sample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldest := f.started.Truncate(f.round).UnixMilli()
	for i := range samples {
		sm := &samples[i]
		r := sm.Time.Truncate(f.round).UnixMilli()
		if r < oldest {
			continue // replayed history
		}
		allocs := f.rounds[r]
		if allocs == nil {
			if len(f.rounds) >= maxOpenRounds {
				continue
			}
			allocs = map[string]*allocRound{}
			f.rounds[r] = allocs
		}
		ar := allocs[sm.Alloc]
		if ar == nil {
			ar = &allocRound{group: sm.Group, tasks: map[string]map[string]*meanOf{}}
			allocs[sm.Alloc] = ar
		}
		metrics := ar.tasks[sm.Task]
		if metrics == nil {
			metrics = map[string]*meanOf{}
			ar.tasks[sm.Task] = metrics
		}
		m := metrics[sm.Metric]
		if m == nil {
			m = &meanOf{}
			metrics[sm.Metric] = m
		}
		m.sum += sm.Value
		m.n++
	}
}

// run closes rounds as they fall due and feeds them to the profiler, until
// ctx ends.
func (f *profileFeed) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.clock.After(f.round / 4):
		}
		if err := f.closeDue(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("profile round", "error", err)
		}
	}
}

// closeDue observes every round that ended at least the lateness ago.
func (f *profileFeed) closeDue(ctx context.Context) error {
	// A round waits half its length for samples still on their way.
	due := f.clock.Now().Add(-f.round - f.round/2).UnixMilli()
	f.mu.Lock()
	var ready []int64
	for r := range f.rounds {
		if r <= due {
			ready = append(ready, r)
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i] < ready[j] })
	closed := make([]map[string]*allocRound, len(ready))
	for i, r := range ready {
		closed[i] = f.rounds[r]
		delete(f.rounds, r)
	}
	f.mu.Unlock()
	if len(closed) == 0 {
		return nil
	}
	nodes, allocs, err := f.cluster(ctx)
	if err != nil {
		return err
	}
	if err := f.prof.SetNodes(nodes, f.declared...); err != nil {
		return err
	}
	for _, round := range closed {
		obs := f.observations(round, allocs, nodes)
		if len(obs) == 0 {
			continue
		}
		if err := f.prof.Observe(obs); err != nil {
			return fmt.Errorf("observe %d allocations: %w", len(obs), err)
		}
	}
	return nil
}

// allocInfo is what Nomad says of an allocation that the profiler needs.
type allocInfo struct {
	node     string
	cpu, mem float64
}

// cluster reads the nodes (with what their allocations hold) and the live
// allocations from Nomad.
func (f *profileFeed) cluster(ctx context.Context) ([]profiles.Node, map[string]allocInfo, error) {
	q := (&nomadapi.QueryOptions{Params: map[string]string{"resources": "true"}}).WithContext(ctx)
	stubs, _, err := f.nomad.Allocations().List(q)
	if err != nil {
		return nil, nil, fmt.Errorf("list allocations: %w", err)
	}
	allocs := map[string]allocInfo{}
	used := map[string][2]float64{}
	for _, a := range stubs {
		if a.DesiredStatus != nomadapi.AllocDesiredStatusRun || a.AllocatedResources == nil {
			continue
		}
		var cpu, mem float64
		for _, t := range a.AllocatedResources.Tasks {
			cpu += float64(t.Cpu.CpuShares)
			mem += float64(t.Memory.MemoryMB)
		}
		allocs[a.ID] = allocInfo{node: a.NodeID, cpu: cpu, mem: mem}
		u := used[a.NodeID]
		used[a.NodeID] = [2]float64{u[0] + cpu, u[1] + mem}
	}
	nodeStubs, _, err := f.nomad.Nodes().List((&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes: %w", err)
	}
	var nodes []profiles.Node
	for _, s := range nodeStubs {
		if s.Status == "down" {
			continue
		}
		n, _, err := f.nomad.Nodes().Info(s.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, nil, fmt.Errorf("read node %s: %w", s.ID, err)
		}
		pn := profiles.Node{
			ID: n.ID, Name: n.Name, Datacenter: n.Datacenter, Pool: n.NodePool, NodeClass: n.NodeClass,
			Attributes: n.Attributes, Meta: n.Meta,
			UsedCPUMHz: used[n.ID][0], UsedMemoryMB: used[n.ID][1],
			Ready: n.Status == "ready" && n.SchedulingEligibility == nomadapi.NodeSchedulingEligible && !n.Drain,
		}
		if r := n.NodeResources; r != nil {
			pn.CPUMHz = float64(r.Cpu.CpuShares)
			pn.MemoryMB = float64(r.Memory.MemoryMB)
			for _, nw := range r.Networks {
				if nw.MBits != nil {
					pn.NetworkMbits = max(pn.NetworkMbits, float64(*nw.MBits))
				}
			}
		}
		if pn.CPUMHz == 0 {
			pn.CPUMHz, _ = strconv.ParseFloat(n.Attributes["cpu.totalcompute"], 64)
		}
		nodes = append(nodes, pn)
	}
	return nodes, allocs, nil
}

// observations builds one round's observations, leaving out allocations
// Nomad no longer runs or whose node it does not list.
func (f *profileFeed) observations(round map[string]*allocRound, allocs map[string]allocInfo, nodes []profiles.Node) []profiles.Observation {
	known := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		known[n.ID] = true
	}
	ids := make([]string, 0, len(round))
	for id := range round {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []profiles.Observation
	for _, id := range ids {
		info, ok := allocs[id]
		if !ok || !known[info.node] {
			continue
		}
		ar := round[id]
		o := profiles.Observation{Group: ar.group, Alloc: id, Node: info.node, Duration: f.round, ReservedCPUMHz: info.cpu, ReservedMemoryMB: info.mem}
		for _, metrics := range ar.tasks {
			for name, m := range metrics {
				v := m.mean()
				switch name {
				case telemetry.CPUMHz:
					o.CPUMHz += v
				case telemetry.MemRSSBytes:
					o.MemRSSBytes += v
				case telemetry.MemUsageBytes:
					o.MemUsageBytes += v
				case telemetry.IOReadBPS:
					o.IOReadBps += v
				case telemetry.IOWriteBPS:
					o.IOWriteBps += v
				case telemetry.NetRxBPS:
					o.NetRxBps += v
				case telemetry.NetTxBPS:
					o.NetTxBps += v
				case telemetry.CPUThrottledRatio:
					o.ThrottledRatio = max(o.ThrottledRatio, v)
				case telemetry.PSICPUSome:
					o.PSICPU = max(o.PSICPU, v)
				case telemetry.PSIMemSome:
					o.PSIMem = max(o.PSIMem, v)
				case telemetry.PSIIOSome:
					o.PSIIO = max(o.PSIIO, v)
				}
			}
		}
		out = append(out, o)
	}
	return out
}
