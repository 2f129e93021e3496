package sim

import (
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Allocation client statuses, as Nomad reports them.
const (
	clientPending  = "pending"
	clientRunning  = "running"
	clientComplete = "complete"
	clientFailed   = "failed"
	clientLost     = "lost"
)

// simAlloc is one allocation and what it is using.
type simAlloc struct {
	api   *api.Allocation
	node  *simNode
	index int // the N in job.group[N]
	cpu   int // MHz reserved, summed over tasks
	mem   int // MB reserved
	disk  int // MB reserved
	port  int
	usage allocUsage
	// registered is set while its services are registered.
	registered bool
}

func (a *simAlloc) terminal() bool {
	return a.api.DesiredStatus != api.AllocDesiredStatusRun ||
		a.api.ClientStatus == clientComplete || a.api.ClientStatus == clientFailed || a.api.ClientStatus == clientLost
}

func (a *simAlloc) running() bool {
	return a.api.DesiredStatus == api.AllocDesiredStatusRun && a.api.ClientStatus == clientRunning
}

// newAlloc places one allocation of group tg on n.
func (c *Cluster) newAlloc(job *api.Job, tg *api.TaskGroup, index int, n *simNode, evalID string, metric *api.AllocationMetric, prev *simAlloc, now time.Time, idx uint64) *simAlloc {
	id := c.newID()
	tasks := map[string]*api.AllocatedTaskResources{}
	taskLegacy := map[string]*api.Resources{}
	states := map[string]*api.TaskState{}
	var cpu, mem, maxMemTotal int
	for _, t := range tg.Tasks {
		tc, tm := *t.Resources.CPU, *t.Resources.MemoryMB
		cpu += tc
		mem += tm
		maxMem := 0
		if t.Resources.MemoryMaxMB != nil {
			maxMem = *t.Resources.MemoryMaxMB
		}
		maxMemTotal += max(tm, maxMem)
		tasks[t.Name] = &api.AllocatedTaskResources{
			Cpu:    api.AllocatedCpuResources{CpuShares: int64(tc)},
			Memory: api.AllocatedMemoryResources{MemoryMB: int64(tm), MemoryMaxMB: int64(maxMem)},
		}
		taskLegacy[t.Name] = legacyResources(tc, tm, maxMem, 0, nil)
		states[t.Name] = &api.TaskState{State: "pending", Events: []*api.TaskEvent{
			{Type: "Received", Time: now.UnixNano(), DisplayMessage: "Task received by client", Details: map[string]string{}},
		}}
	}
	disk := 0
	if tg.EphemeralDisk != nil && tg.EphemeralDisk.SizeMB != nil {
		disk = *tg.EphemeralDisk.SizeMB
	}
	port := minDynamicPort + c.rng.IntN(maxDynamicPort-minDynamicPort)
	networks, ports := groupNetworks(tg, n.api.Attributes["unique.network.ip-address"], port)
	a := &simAlloc{
		node: n, index: index, cpu: cpu, mem: mem, disk: disk,
		port: port,
		api: &api.Allocation{
			ID:        id,
			Namespace: *job.Namespace,
			EvalID:    evalID,
			Name:      fmt.Sprintf("%s.%s[%d]", *job.ID, *tg.Name, index),
			NodeID:    n.api.ID,
			NodeName:  n.api.Name,
			JobID:     *job.ID,
			Job:       job,
			TaskGroup: *tg.Name,
			AllocatedResources: &api.AllocatedResources{
				Tasks:  tasks,
				Shared: api.AllocatedSharedResources{DiskMB: int64(disk), Networks: networks, Ports: ports},
			},
			Resources:        legacyResources(cpu, mem, maxMemTotal, disk, networks),
			TaskResources:    taskLegacy,
			NetworkStatus:    &api.AllocNetworkStatus{},
			Metrics:          metric,
			DesiredStatus:    api.AllocDesiredStatusRun,
			ClientStatus:     clientPending,
			TaskStates:       states,
			CreateIndex:      idx,
			ModifyIndex:      idx,
			AllocModifyIndex: idx,
			CreateTime:       now.UnixNano(),
			ModifyTime:       now.UnixNano(),
		},
	}
	if prev != nil {
		a.api.PreviousAllocation = prev.api.ID
		prev.api.NextAllocation = id
		prev.api.ModifyIndex = idx
	}
	n.usedCPU += cpu
	n.usedMem += mem
	n.usedDisk += disk
	n.allocs[id] = a
	c.allocs[id] = a
	c.allocList = append(c.allocList, a)
	c.timers.push(now.Add(c.cfg.AllocStart), func(at time.Time) { c.startAlloc(a, at) })
	return a
}

// groupNetworks assigns the group's ports on a node with address ip, as a
// Nomad client reports them in AllocatedResources: dynamic ports take
// consecutive values from first, static ports keep theirs.
func groupNetworks(tg *api.TaskGroup, ip string, first int) ([]*api.NetworkResource, []api.PortMapping) {
	var networks []*api.NetworkResource
	var ports []api.PortMapping
	next := first
	assign := func(in []api.Port, dynamic bool) []api.Port {
		var out []api.Port
		for _, p := range in {
			if dynamic {
				p.Value = next
				next++
			}
			if p.HostNetwork == "" {
				p.HostNetwork = "default"
			}
			out = append(out, p)
			ports = append(ports, api.PortMapping{Label: p.Label, Value: p.Value, To: p.To, HostIP: ip})
		}
		return out
	}
	for _, nw := range tg.Networks {
		networks = append(networks, &api.NetworkResource{
			Mode: nw.Mode, IP: ip, MBits: intPtr(0),
			ReservedPorts: assign(nw.ReservedPorts, false), DynamicPorts: assign(nw.DynamicPorts, true),
		})
	}
	return networks, ports
}

// legacyResources is the deprecated Resources form of an allocation's or a
// task's reservation, which Nomad still sends alongside AllocatedResources.
func legacyResources(cpu, mem, maxMem, disk int, networks []*api.NetworkResource) *api.Resources {
	return &api.Resources{
		CPU: intPtr(cpu), Cores: intPtr(0), MemoryMB: intPtr(mem), MemoryMaxMB: intPtr(maxMem),
		DiskMB: intPtr(disk), IOPS: intPtr(0), Networks: networks,
	}
}

// portFor is the host port the allocation got for a port label; a label
// the group does not declare gets the allocation's first port, as sim
// always did for services.
func (a *simAlloc) portFor(label string) int {
	for _, p := range a.api.AllocatedResources.Shared.Ports {
		if p.Label == label {
			return p.Value
		}
	}
	return a.port
}

// taskSetupMessage is what a Nomad client reports while it builds a task's
// directory.
const taskSetupMessage = "Building Task Directory"

// startAlloc moves a pending allocation to running and healthy, and
// registers its services.
func (c *Cluster) startAlloc(a *simAlloc, now time.Time) {
	if a.terminal() || a.api.ClientStatus != clientPending {
		return
	}
	idx := c.bump(tableAllocs, tableSummaries, tableJobs)
	a.api.ClientStatus = clientRunning
	a.api.ClientDescription = "Tasks are running"
	for _, ts := range a.api.TaskStates {
		ts.State = "running"
		ts.StartedAt = now
		ts.Events = append(ts.Events,
			&api.TaskEvent{Type: api.TaskSetup, Time: now.UnixNano(), Message: taskSetupMessage, DisplayMessage: taskSetupMessage, Details: map[string]string{"message": taskSetupMessage}},
			&api.TaskEvent{Type: "Started", Time: now.UnixNano(), DisplayMessage: "Task started by client", Details: map[string]string{}})
	}
	a.api.ModifyIndex = idx
	a.api.ModifyTime = now.UnixNano()
	c.registerServices(a)
	c.events.add(now, idx, allocEvent("AllocationUpdated", a))
	c.watchHealth(a, now)
}

// stopAlloc makes an allocation terminal and frees its node.
func (c *Cluster) stopAlloc(a *simAlloc, now time.Time, idx uint64, why, clientStatus string) {
	if a.terminal() {
		return
	}
	a.api.DesiredStatus = api.AllocDesiredStatusStop
	a.api.DesiredDescription = why
	a.api.ClientStatus = clientStatus
	a.api.ClientDescription = "All tasks have completed"
	for _, ts := range a.api.TaskStates {
		ts.State = "dead"
		ts.FinishedAt = now
		ts.Failed = clientStatus == clientFailed
	}
	a.api.ModifyIndex = idx
	a.api.AllocModifyIndex = idx
	a.api.ModifyTime = now.UnixNano()
	n := a.node
	n.usedCPU -= a.cpu
	n.usedMem -= a.mem
	n.usedDisk -= a.disk
	delete(n.allocs, a.api.ID)
	c.deregisterServices(a)
	c.events.add(now, idx, allocEvent("AllocationUpdated", a))
	// A task that fails before its allocation is healthy makes the client
	// report it unhealthy.
	if d, _ := c.inDeployment(a); d != nil && clientStatus == clientFailed && !hasHealth(a) && d.active() {
		c.setAllocHealth(a, false, now, idx)
	}
}

// StopAlloc stops an allocation as `POST /v1/allocation/<id>/stop` does: the
// scheduler then places a replacement under the job's current spec.
func (c *Cluster) StopAlloc(id string) (evalID string, index uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.allocs[id]
	if a == nil {
		return "", 0, fmt.Errorf("%w: alloc %q", ErrNotFound, id)
	}
	now := c.clock.Now()
	idx := c.bump(tableAllocs, tableEvals, tableSummaries)
	a.api.DesiredTransition.Migrate = boolPtr(true)
	a.api.DesiredTransition.NoShutdownDelay = boolPtr(false)
	c.stopAlloc(a, now, idx, "alloc is being migrated", clientComplete)
	j := c.jobs[jobKey{a.api.Namespace, a.api.JobID}]
	if j == nil {
		return "", idx, nil
	}
	eval := c.evaluateAt(j, "alloc-stop", now, idx)
	return eval.ID, idx, nil
}

func sortedAllocs(m map[string]*simAlloc) []*simAlloc {
	out := make([]*simAlloc, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].api.CreateIndex < out[j].api.CreateIndex || out[i].api.CreateIndex == out[j].api.CreateIndex && out[i].api.ID < out[j].api.ID
	})
	return out
}

// stub is the allocation as list endpoints show it; withResources adds its
// allocated resources, as `?resources=true` asks of /v1/allocations.
func (a *simAlloc) stub(withResources bool) *allocStubWire {
	var version uint64
	var jobType string
	if a.api.Job != nil {
		version = *a.api.Job.Version
		jobType = *a.api.Job.Type
	}
	stub := &api.AllocationListStub{
		ID: a.api.ID, EvalID: a.api.EvalID, Name: a.api.Name, Namespace: a.api.Namespace,
		NodeID: a.api.NodeID, NodeName: a.api.NodeName, JobID: a.api.JobID, JobType: jobType, JobVersion: version,
		TaskGroup: a.api.TaskGroup, DesiredStatus: a.api.DesiredStatus, DesiredDescription: a.api.DesiredDescription,
		ClientStatus: a.api.ClientStatus, ClientDescription: a.api.ClientDescription, TaskStates: a.api.TaskStates,
		DeploymentStatus: a.api.DeploymentStatus, FollowupEvalID: a.api.FollowupEvalID, NextAllocation: a.api.NextAllocation,
		RescheduleTracker: a.api.RescheduleTracker, PreemptedAllocations: a.api.PreemptedAllocations,
		PreemptedByAllocation: a.api.PreemptedByAllocation,
		CreateIndex:           a.api.CreateIndex, ModifyIndex: a.api.ModifyIndex, CreateTime: a.api.CreateTime, ModifyTime: a.api.ModifyTime,
	}
	if withResources {
		stub.AllocatedResources = a.api.AllocatedResources
	}
	return &allocStubWire{AllocationListStub: stub, DesiredTransition: a.api.DesiredTransition, TaskStates: wireTaskStates(a.api.TaskStates)}
}
