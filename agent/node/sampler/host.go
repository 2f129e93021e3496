package sampler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foresight-nomad/foresight/agent/node/cgroup"
	"github.com/foresight-nomad/foresight/agent/node/netns"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// HostExtra reads what Nomad does not serve from the host's kernel: disk
// bytes, CPU throttling and pressure stall from each task's cgroup, and
// network bytes from each allocation's network namespace.
//
// Rates need two readings, so a task's first interval reports none of them.
// Network bytes belong to the allocation (its tasks share one namespace);
// they are reported on the allocation's first task so that a group's sum
// counts them once.
type HostExtra struct {
	loc    *cgroup.Locator
	reader *cgroup.Reader
	net    *netns.Reader
	clock  clock.Clock
	log    hclog.Logger

	mu        sync.Mutex
	raters    map[Task]*cgroup.Rater
	netRaters map[string]*netns.Rater
	pids      []int
}

// HostPaths says where the host's kernel files are.
type HostPaths struct {
	CgroupRoot, CgroupParent, ProcRoot, SysRoot string
}

// NewHostExtra finds the task cgroups under paths and prepares readers.
func NewHostExtra(paths HostPaths, clk clock.Clock, log hclog.Logger) (*HostExtra, error) {
	loc, err := cgroup.NewLocator(paths.CgroupRoot, paths.CgroupParent)
	if err != nil {
		return nil, fmt.Errorf("find task cgroups: %w", err)
	}
	skip, err := cgroup.StackedDevices(paths.SysRoot)
	if err != nil {
		// Without it, I/O on stacked devices (LVM, RAID) counts twice.
		log.Warn("cannot tell stacked block devices apart; disk bytes may count twice", "error", err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &HostExtra{
		loc: loc, reader: cgroup.NewReader(skip), net: netns.NewReader(paths.ProcRoot, ""),
		clock: clk, log: log,
		raters: map[Task]*cgroup.Rater{}, netRaters: map[string]*netns.Rater{},
	}, nil
}

// Sample implements Extra.
func (h *HostExtra) Sample(_ context.Context, tasks []Task) (map[string]map[string]map[string]float64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	out := map[string]map[string]map[string]float64{}
	put := func(t Task, name string, v float64) {
		if out[t.AllocID] == nil {
			out[t.AllocID] = map[string]map[string]float64{}
		}
		if out[t.AllocID][t.Name] == nil {
			out[t.AllocID][t.Name] = map[string]float64{}
		}
		out[t.AllocID][t.Name][name] = v
	}
	live := map[Task]bool{}
	liveAllocs := map[string]bool{}
	var metrics []cgroup.Metric
	for _, t := range tasks {
		live[t] = true
		cg, err := h.loc.Locate(t.AllocID, t.Name)
		if err != nil {
			if !errors.Is(err, cgroup.ErrNotFound) {
				h.log.Debug("locate task cgroup", "alloc", t.AllocID, "task", t.Name, "error", err)
			}
			continue
		}
		var reading cgroup.Reading
		if err := h.reader.Read(&cg, &reading); err != nil {
			// A partial reading still carries what could be read.
			h.log.Debug("read task cgroup", "alloc", t.AllocID, "task", t.Name, "error", err)
		}
		rt := h.raters[t]
		if rt == nil {
			rt = &cgroup.Rater{}
			h.raters[t] = rt
		}
		rates := rt.Update(now, &reading)
		metrics = rates.Metrics(metrics[:0])
		for _, m := range metrics {
			put(t, m.Name, m.Value)
		}
		if liveAllocs[t.AllocID] {
			continue // the allocation's network was read with its first task
		}
		liveAllocs[t.AllocID] = true
		h.sampleNetwork(t, &cg, now, put)
	}
	for t := range h.raters {
		if !live[t] {
			delete(h.raters, t)
		}
	}
	for id := range h.netRaters {
		if !liveAllocs[id] {
			delete(h.netRaters, id)
		}
	}
	return out, nil
}

func (h *HostExtra) sampleNetwork(t Task, cg *cgroup.Task, now time.Time, put func(Task, string, float64)) {
	pids, err := h.reader.PIDs(cg, h.pids[:0])
	h.pids = pids
	if err != nil || len(pids) == 0 {
		return
	}
	c, err := h.net.Read(pids[0])
	if err != nil {
		// A task in the host namespace has no counters of its own: the
		// host's would be wrong, so nothing is reported.
		return
	}
	rt := h.netRaters[t.AllocID]
	if rt == nil {
		rt = &netns.Rater{}
		h.netRaters[t.AllocID] = rt
	}
	if rates, ok := rt.Update(now, c); ok {
		put(t, telemetry.NetRxBPS, rates.RxBPS)
		put(t, telemetry.NetTxBPS, rates.TxBPS)
	}
}
