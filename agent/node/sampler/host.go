package sampler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foresight-nomad/foresight/agent/node/cgroup"
	"github.com/foresight-nomad/foresight/agent/node/netns"
	"github.com/foresight-nomad/foresight/agent/node/proc"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/telemetry"
)

// HostExtra reads what Nomad does not serve from the host's kernel, for
// every task whatever its driver and cgroup layout. Its rules, in order:
//
//  1. A task's processes are those whose environment carries its
//     NOMAD_ALLOC_ID and NOMAD_TASK_NAME: an incremental /proc scan reads
//     the environment of new PIDs only.
//  2. The task's cgroups are Nomad's own path for it where that exists (the
//     fast path), else, per hierarchy (v2; v1 cpu, memory, blkio), the
//     cgroup all its processes sit in, if it is not the root and holds no
//     process of another task or of none (cgroup.Resolver): libcontainer's
//     random IDs, Docker (either cgroup driver), podman and containerd all
//     resolve so. A shared cgroup is never read for one task.
//  3. io_read_bps, io_write_bps: the task's own io.stat or blkio cgroup.
//     Where that counted no byte in the interval while the task's
//     processes' /proc/<pid>/io did, or where the task has no such cgroup,
//     the processes' sum is the reading (telemetry.SourceProcessOverCgroup,
//     telemetry.SourceProcess): v1 blkio misses much I/O. A cgroup's zero
//     the processes cannot confirm in that interval is not reported.
//  4. cpu_throttled_ratio: the task's own cpu cgroup; a cgroup without a
//     quota is never throttled and reads 0. Without a cpu cgroup of its
//     own: absent, noted telemetry.AbsentNoCgroup.
//  5. psi_*_some: the task's own v2 cgroup, also on a hybrid host's
//     controller-less v2 hierarchy. Absent otherwise, noted
//     telemetry.AbsentPressureV1 on a host without v2 (logged once), else
//     telemetry.AbsentNoCgroup.
//  6. cpu_mhz and mem_rss_bytes: only for a task without a cpu (memory)
//     cgroup of its own, from its processes' /proc/<pid>/stat CPU time
//     (times the node's MHz per core) and /proc/<pid>/status VmRSS. Where
//     the task has the cgroup, Nomad's stats read it.
//  7. net_rx_bps, net_tx_bps: from the network namespace of one of the
//     allocation's processes when it is not the host's, reported on the
//     allocation's first task so that a group's sum counts it once. In
//     the host's namespace: absent, noted telemetry.AbsentHostNetwork.
//
// Rates need two readings, so a task's first interval reports none.
type HostExtra struct {
	scan    *proc.Scanner
	preader *proc.Reader
	res     *cgroup.Resolver
	reader  *cgroup.Reader
	net     *netns.Reader
	coreMHz func(context.Context) (float64, error)
	clock   clock.Clock
	log     hclog.Logger

	mu        sync.Mutex
	tasks     map[Task]*hostTask
	netRaters map[string]*netns.Rater
	netNS     map[string]allocNS // per allocation
	mhz       float64
	procs     []proc.Process // scratch
	// warnedUnreadable: the warning about unreadable environments was given.
	warnedUnreadable bool
}

// hostTask is what HostExtra keeps of one task between samples.
type hostTask struct {
	members  map[int]cgroup.Membership // per process of the task
	ref      *cgroup.Membership        // the membership dirs were resolved from
	dirs     cgroup.Dirs
	resolved bool
	cg       cgroup.Task // the files read every round
	cgQuota  cgroup.Task // the CPU quota file
	quotaAge int         // rounds since the quota was read, modulo quotaEvery
	// quotaKnown and unlimited are the quota last read.
	quotaKnown, unlimited bool
	rater                 cgroup.Rater
	tree                  proc.Tree
}

// allocNS is which network namespace an allocation's process runs in.
type allocNS struct {
	pid int
	own bool
}

// HostPaths says where the host's kernel files are.
type HostPaths struct {
	CgroupRoot, CgroupParent, ProcRoot, SysRoot string
}

// NewHostExtra prepares to read the host's tasks under paths. coreMHz
// returns the node's MHz per core (Nomad's cpu.totalcompute / numcores),
// to turn a task's process CPU time into cpu_mhz; nil leaves cpu_mhz of
// tasks without a cpu cgroup to Nomad.
func NewHostExtra(paths HostPaths, coreMHz func(context.Context) (float64, error), clk clock.Clock, log hclog.Logger) (*HostExtra, error) {
	res, err := cgroup.NewResolver(paths.CgroupRoot, paths.CgroupParent)
	if err != nil {
		return nil, fmt.Errorf("find task cgroups: %w", err)
	}
	scan, err := proc.NewScanner(paths.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("find task processes: %w", err)
	}
	skip, err := cgroup.StackedDevices(paths.SysRoot)
	if err != nil {
		// Without it, I/O on stacked devices (LVM, RAID) counts twice.
		log.Warn("cannot tell stacked block devices apart; disk bytes may count twice", "error", err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if !res.HasUnified() {
		log.Info("cgroup v1 without a v2 hierarchy: no task has pressure stall (psi_*); the leader's group view says so")
	}
	return &HostExtra{
		scan: scan, preader: proc.NewReader(paths.ProcRoot), res: res, reader: cgroup.NewReader(skip), net: netns.NewReader(paths.ProcRoot, ""),
		coreMHz: coreMHz, clock: clk, log: log,
		tasks: map[Task]*hostTask{}, netRaters: map[string]*netns.Rater{}, netNS: map[string]allocNS{},
	}, nil
}

// Sample implements Extra.
func (h *HostExtra) Sample(ctx context.Context, tasks []Task) (map[Task]*TaskExtra, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byTask, err := h.scan.Scan()
	if err != nil {
		return nil, err
	}
	if h.scan.Unreadable > 0 && !h.warnedUnreadable {
		// Said once: without root, other users' tasks stay unseen.
		h.warnedUnreadable = true
		h.log.Warn("cannot read the environment of some processes; their tasks' disk, pressure and network go unread: run the agent as root", "processes", h.scan.Unreadable)
	}
	now := h.clock.Now()
	out := map[Task]*TaskExtra{}
	live := map[Task]bool{}
	liveAllocs := map[string]bool{}
	hostNet := map[string]bool{}
	for _, t := range tasks {
		live[t] = true
		pids := byTask[proc.Task{AllocID: t.AllocID, Name: t.Name}]
		ht := h.tasks[t]
		if ht == nil {
			ht = &hostTask{members: map[int]cgroup.Membership{}}
			h.tasks[t] = ht
		}
		te := &TaskExtra{}
		h.sampleTask(ctx, t, ht, pids, now, te)
		if !liveAllocs[t.AllocID] && len(pids) > 0 {
			liveAllocs[t.AllocID] = true
			hostNet[t.AllocID] = h.sampleNetwork(t, pids[0], now, te)
		}
		out[t] = te
	}
	// The allocation's tasks share its namespace, and so the note.
	for _, t := range tasks {
		if hostNet[t.AllocID] {
			out[t].absent(telemetry.NetRxBPS, telemetry.AbsentHostNetwork)
			out[t].absent(telemetry.NetTxBPS, telemetry.AbsentHostNetwork)
		}
	}
	for t := range h.tasks {
		if !live[t] {
			delete(h.tasks, t)
		}
	}
	for id := range h.netRaters {
		if !liveAllocs[id] {
			delete(h.netRaters, id)
		}
	}
	for id := range h.netNS {
		if !liveAllocs[id] {
			delete(h.netNS, id)
		}
	}
	return out, nil
}

// sampleTask reads one task's cgroups and processes into te.
func (h *HostExtra) sampleTask(ctx context.Context, t Task, ht *hostTask, pids []int, now time.Time, te *TaskExtra) {
	h.follow(t, ht, pids)

	var rates cgroup.Rates
	if ht.dirs != (cgroup.Dirs{}) {
		var reading cgroup.Reading
		if err := h.reader.Read(&ht.cg, &reading); err != nil {
			// A partial reading still carries what could be read; a cgroup
			// that has gone is looked for again next time.
			h.log.Debug("read task cgroup", "alloc", t.AllocID, "task", t.Name, "error", err)
			if errors.Is(err, cgroup.ErrNotFound) {
				ht.resolved = false
			}
		}
		h.quota(ht, &reading)
		rates = ht.rater.Update(now, &reading)
	}
	ioOwn, throttleOwn, pressureOwn, memOwn := ht.dirs.Has()
	cpuOwn := throttleOwn

	// Only what a rule below needs is read: /proc/<pid>/io always (rule
	// 3), stat and status where no cgroup of the task's keeps CPU or
	// memory (rule 6).
	what := proc.FieldIO
	if !cpuOwn {
		what |= proc.FieldCPU
	}
	if !memOwn {
		what |= proc.FieldRSS
	}
	h.procs = h.procs[:0]
	for _, pid := range pids {
		ppid, start, ok := h.scan.Process(pid)
		if !ok {
			continue
		}
		var p proc.Process
		if err := h.preader.Read(pid, ppid, start, what, &p); err != nil && p.Present == 0 {
			continue // it exited since the scan
		}
		h.procs = append(h.procs, p)
	}
	pr := ht.tree.Update(now, h.procs)

	// Disk bytes (rule 3).
	switch {
	case ioOwn && rates.Present&cgroup.FieldIO != 0:
		cgroupZero := rates.IOReadBPS == 0 && rates.IOWriteBPS == 0
		switch {
		case cgroupZero && pr.Present&proc.FieldIO == 0:
			// A zero the processes cannot confirm this interval (v1 blkio
			// reads zero for I/O it misses): nothing rather than a zero.
		case cgroupZero && pr.ReadBPS+pr.WriteBPS > 0:
			te.put(telemetry.IOReadBPS, pr.ReadBPS, telemetry.SourceProcessOverCgroup)
			te.put(telemetry.IOWriteBPS, pr.WriteBPS, telemetry.SourceProcessOverCgroup)
		default:
			te.put(telemetry.IOReadBPS, rates.IOReadBPS, telemetry.SourceCgroup)
			te.put(telemetry.IOWriteBPS, rates.IOWriteBPS, telemetry.SourceCgroup)
		}
	case pr.Present&proc.FieldIO != 0:
		te.put(telemetry.IOReadBPS, pr.ReadBPS, telemetry.SourceProcess)
		te.put(telemetry.IOWriteBPS, pr.WriteBPS, telemetry.SourceProcess)
	}

	// CPU throttling and pressure stall (rules 4 and 5).
	var metrics [8]cgroup.Metric
	for _, m := range rates.Metrics(metrics[:0]) {
		if m.Name != telemetry.IOReadBPS && m.Name != telemetry.IOWriteBPS {
			te.put(m.Name, m.Value, telemetry.SourceCgroup)
		}
	}
	if !throttleOwn {
		te.absent(telemetry.CPUThrottledRatio, telemetry.AbsentNoCgroup)
	}
	if !pressureOwn {
		reason := telemetry.AbsentNoCgroup
		if !h.res.HasUnified() {
			reason = telemetry.AbsentPressureV1
		}
		for _, m := range [...]string{telemetry.PSICPUSome, telemetry.PSIMemSome, telemetry.PSIIOSome} {
			te.absent(m, reason)
		}
	}

	// CPU and memory of a task without cgroups of its own (rule 6).
	if !cpuOwn && pr.Present&proc.FieldCPU != 0 {
		if mhz := h.nodeCoreMHz(ctx); mhz > 0 {
			te.put(telemetry.CPUMHz, pr.CPUCores*mhz, telemetry.SourceProcess)
		}
	}
	if !memOwn && pr.Present&proc.FieldRSS != 0 {
		te.put(telemetry.MemRSSBytes, pr.RSSBytes, telemetry.SourceProcess)
	}
}

// quotaEvery is how many rounds a task's CPU quota is trusted before it is
// read again: Nomad changes it only with the task's resources, and most
// tasks have none.
const quotaEvery = 30

// quota adds the task's CPU quota, read every quotaEvery rounds, to r.
func (h *HostExtra) quota(ht *hostTask, r *cgroup.Reading) {
	if ht.quotaAge == 0 {
		var q cgroup.Reading
		_ = h.reader.Read(&ht.cgQuota, &q) // a quota it cannot read stays unknown
		ht.quotaKnown, ht.unlimited = q.Has(cgroup.FieldCPUQuota), q.CPUUnlimited
	}
	ht.quotaAge = (ht.quotaAge + 1) % quotaEvery
	if ht.quotaKnown {
		r.CPUUnlimited = ht.unlimited
		r.Present |= cgroup.FieldCPUQuota
	}
}

// follow keeps the task's processes' cgroup memberships current and finds
// the cgroups it owns again when a process sits somewhere new.
func (h *HostExtra) follow(t Task, ht *hostTask, pids []int) {
	current := make(map[int]bool, len(pids))
	changed := !ht.resolved
	for _, pid := range pids {
		current[pid] = true
		if _, ok := ht.members[pid]; ok {
			continue
		}
		m, ok := h.membership(ht, pid)
		if !ok {
			continue
		}
		ht.members[pid] = m
		if ht.ref == nil || !sameMembership(m, *ht.ref) {
			changed = true
		}
	}
	for pid := range ht.members {
		if !current[pid] {
			delete(ht.members, pid)
		}
	}
	if !changed {
		return
	}
	members := make([]cgroup.Membership, 0, len(ht.members))
	for _, m := range ht.members {
		members = append(members, m)
	}
	ht.ref = nil
	if len(members) > 0 {
		ht.ref = &members[0]
	}
	me := proc.Task{AllocID: t.AllocID, Name: t.Name}
	dirs := h.res.Resolve(t.AllocID, t.Name, members, func(pid int) bool {
		owner, exists := h.scan.Identify(pid)
		return !exists || owner == me // a process that has exited has left the cgroup
	})
	ht.resolved = len(members) > 0 || dirs != (cgroup.Dirs{})
	if dirs != ht.dirs {
		h.log.Debug("task cgroups", "alloc", t.AllocID, "task", t.Name, "processes", len(pids),
			"unified", dirs.Unified, "cpu", dirs.CPU, "memory", dirs.Memory, "blkio", dirs.Blkio)
		// Nomad's stats read the memory cgroup; the rules here need only
		// disk bytes, throttling and pressure, and the quota now and then.
		ht.dirs = dirs
		ht.cg = dirs.Task().Only(cgroup.FieldIO | cgroup.FieldThrottle | cgroup.FieldPSICPU | cgroup.FieldPSIMemory | cgroup.FieldPSIIO)
		ht.cgQuota = dirs.Task().Only(cgroup.FieldCPUQuota)
		ht.quotaAge = 0
		ht.rater.Reset()
	}
}

// membership is where a new process of the task sits. A child starts in
// its parent's cgroups, so one forked by a process of the task the agent
// already placed is placed the same without a read: on a task that forks
// often, most new PIDs are such children.
func (h *HostExtra) membership(ht *hostTask, pid int) (cgroup.Membership, bool) {
	if ppid, _, ok := h.scan.Process(pid); ok {
		if m, ok := ht.members[ppid]; ok {
			return m, true
		}
	}
	p, ok := h.scan.Proc(pid)
	if !ok {
		return cgroup.Membership{}, false
	}
	lines, err := p.Cgroups()
	if err != nil {
		return cgroup.Membership{}, false
	}
	return cgroup.MembershipOf(lines), true
}

func sameMembership(a, b cgroup.Membership) bool {
	return a.Unified == b.Unified && a.HasUnified == b.HasUnified && maps.Equal(a.V1, b.V1)
}

// nodeCoreMHz is the node's MHz per core, asked for once it is known.
func (h *HostExtra) nodeCoreMHz(ctx context.Context) float64 {
	if h.mhz > 0 || h.coreMHz == nil {
		return h.mhz
	}
	mhz, err := h.coreMHz(ctx)
	if err != nil {
		h.log.Debug("node MHz per core", "error", err)
		return 0
	}
	h.mhz = mhz
	return mhz
}

// sampleNetwork reads the allocation's network namespace through one of
// its processes; hostNet says it is the host's, whose counters are every
// process's and not the allocation's. Which namespace it is does not change
// while the allocation runs, so it is asked once per process read through.
func (h *HostExtra) sampleNetwork(t Task, pid int, now time.Time, te *TaskExtra) (hostNet bool) {
	ns, known := h.netNS[t.AllocID]
	if !known || ns.pid != pid {
		own, err := h.net.OwnNamespace(pid)
		if err != nil {
			h.log.Debug("read task network namespace", "alloc", t.AllocID, "pid", pid, "error", err)
			return false
		}
		ns = allocNS{pid: pid, own: own}
		h.netNS[t.AllocID] = ns
	}
	if !ns.own {
		return true
	}
	c, err := h.net.Counters(pid)
	if err != nil {
		h.log.Debug("read task network", "alloc", t.AllocID, "pid", pid, "error", err)
		return false
	}
	rt := h.netRaters[t.AllocID]
	if rt == nil {
		rt = &netns.Rater{}
		h.netRaters[t.AllocID] = rt
	}
	if rates, ok := rt.Update(now, c); ok {
		te.put(telemetry.NetRxBPS, rates.RxBPS, telemetry.SourceNetns)
		te.put(telemetry.NetTxBPS, rates.TxBPS, telemetry.SourceNetns)
	}
	return false
}
