package sim

import (
	"time"

	"github.com/hashicorp/nomad/api"
)

// Nomad's HTTP API encodes its server structs, which carry fields the api
// client's types lack or drop, and writes a zero time as null. The wire
// types here wrap the api types sim keeps its state in and add what
// Nomad 1.6 sends, so that sim's answers have Nomad's shape. Fields of the
// wrapper shadow the embedded type's fields of the same name.

// allocWire is an allocation as `/v1/allocation/<id>` sends it.
type allocWire struct {
	*api.Allocation
	AllocatedResources *allocatedResourcesWire
	// SharedResources is the deprecated form of the group's shared disk
	// and networks.
	SharedResources *api.Resources
	TaskStates      map[string]*taskStateWire
}

// allocatedResourcesWire adds the task lifecycles Nomad's struct has.
type allocatedResourcesWire struct {
	*api.AllocatedResources
	// TaskLifecycles holds each task's lifecycle hook, null for a main task.
	TaskLifecycles map[string]*api.TaskLifecycle
}

// taskStateWire is a task state with Nomad's nulls for times not reached
// and for the driver handle, which sim's tasks do not have.
type taskStateWire struct {
	*api.TaskState
	LastRestart *time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	TaskHandle  *struct{}
}

// allocStubWire is an allocation as list endpoints send it.
type allocStubWire struct {
	*api.AllocationListStub
	DesiredTransition api.DesiredTransition
	TaskStates        map[string]*taskStateWire
}

// wireAlloc wraps an allocation for the wire. It shares a's state, so the
// result must be encoded under the cluster lock.
func wireAlloc(a *api.Allocation) *allocWire {
	w := &allocWire{Allocation: a, TaskStates: wireTaskStates(a.TaskStates)}
	if ar := a.AllocatedResources; ar != nil {
		w.AllocatedResources = &allocatedResourcesWire{AllocatedResources: ar, TaskLifecycles: map[string]*api.TaskLifecycle{}}
		for name := range ar.Tasks {
			w.AllocatedResources.TaskLifecycles[name] = nil
		}
		if a.Job != nil {
			if tg := groupOf(a.Job, a.TaskGroup); tg != nil {
				for _, t := range tg.Tasks {
					w.AllocatedResources.TaskLifecycles[t.Name] = t.Lifecycle
				}
			}
		}
		w.SharedResources = legacyResources(0, 0, 0, int(ar.Shared.DiskMB), ar.Shared.Networks)
	}
	return w
}

// wireTaskStates wraps task states for the wire.
func wireTaskStates(states map[string]*api.TaskState) map[string]*taskStateWire {
	if states == nil {
		return nil
	}
	out := make(map[string]*taskStateWire, len(states))
	for name, ts := range states {
		out[name] = &taskStateWire{
			TaskState: ts, LastRestart: timeOrNull(ts.LastRestart),
			StartedAt: timeOrNull(ts.StartedAt), FinishedAt: timeOrNull(ts.FinishedAt),
		}
	}
	return out
}

// timeOrNull is t, or nil for the zero time, which Nomad writes as null.
func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// nodeWire is a node as `/v1/node/<id>` sends it.
type nodeWire struct {
	*api.Node
	// ComputedClass is Nomad's hash of what makes nodes interchangeable
	// for placement; sim's nodes of one group are.
	ComputedClass            string
	LastAllocUpdateIndex     uint64
	LastMissedHeartbeatIndex uint64
	NodeResources            *nodeResourcesWire
	ReservedResources        *nodeReservedWire
	// SecretID is always empty: Nomad redacts it on reads.
	SecretID string
}

// nodeResourcesWire adds the fingerprinted interfaces Nomad's struct has.
type nodeResourcesWire struct {
	*api.NodeResources
	NodeNetworks []*nodeNetworkWire
}

// nodeNetworkWire is one fingerprinted interface of a node.
type nodeNetworkWire struct {
	Addresses  []nodeNetworkAddress
	Device     string
	MacAddress string
	Mode       string
	Speed      int
}

// nodeNetworkAddress is one address of a fingerprinted interface.
type nodeNetworkAddress struct {
	Address       string
	Alias         string
	Family        string
	Gateway       string
	ReservedPorts string
}

// nodeReservedWire adds the reserved cores Nomad's struct has.
type nodeReservedWire struct {
	*api.NodeReservedResources
	Cpu struct {
		CpuShares        uint64
		ReservedCpuCores []uint16
	}
}

// wire wraps the node for the wire; encode it under the cluster lock.
func (n *simNode) wire() *nodeWire {
	w := &nodeWire{Node: n.api, ComputedClass: n.group.computedClass(), ReservedResources: &nodeReservedWire{NodeReservedResources: n.api.ReservedResources}}
	if r := n.api.ReservedResources; r != nil {
		w.ReservedResources.Cpu.CpuShares = r.Cpu.CpuShares
	}
	if nr := n.api.NodeResources; nr != nil {
		w.NodeResources = &nodeResourcesWire{NodeResources: nr}
		for _, nw := range nr.Networks {
			speed := 0
			if nw.MBits != nil {
				speed = *nw.MBits
			}
			w.NodeResources.NodeNetworks = append(w.NodeResources.NodeNetworks, &nodeNetworkWire{
				Addresses: []nodeNetworkAddress{{Address: nw.IP, Alias: "default", Family: "ipv4"}},
				Device:    nw.Device, Mode: nw.Mode, Speed: speed,
			})
		}
	}
	return w
}

// nodeStubWire is a node as `/v1/nodes` lists it.
type nodeStubWire struct {
	*api.NodeListStub
	// HostVolumes is null: sim's nodes have no host volumes.
	HostVolumes map[string]*api.HostVolumeInfo
}

// jobStubWire is a job as `/v1/jobs` lists it.
type jobStubWire struct {
	*api.JobListStub
	Multiregion *api.Multiregion
	NodePool    string
}

// nodePoolWire is a node pool as `/v1/node/pools` lists it. It copies
// api.NodePool rather than embedding it, because that type's own
// MarshalJSON would hide the added field.
type nodePoolWire struct {
	Name                   string
	Description            string
	Meta                   map[string]string
	SchedulerConfiguration *api.NodePoolSchedulerConfiguration
	// Hash is null: Nomad sets it only on pools written through its API.
	Hash        []byte
	CreateIndex uint64
	ModifyIndex uint64
}

// wirePool copies a node pool for the wire.
func wirePool(p *api.NodePool) *nodePoolWire {
	return &nodePoolWire{
		Name: p.Name, Description: p.Description, Meta: p.Meta, SchedulerConfiguration: p.SchedulerConfiguration,
		CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex,
	}
}

// planAnnotations are a plan's annotations as Nomad 1.6.5 sends them
// (fixtures 14 and 45): the api package's DesiredUpdates has the counts of
// later versions (disconnects, reschedules), which 1.6.5 lacks.
type planAnnotations struct {
	DesiredTGUpdates map[string]*desiredUpdatesWire
	PreemptedAllocs  []*api.AllocationListStub
}

// desiredUpdatesWire is what the reconciler wants for one group.
type desiredUpdatesWire struct {
	Canary            uint64
	DestructiveUpdate uint64
	Ignore            uint64
	InPlaceUpdate     uint64
	Migrate           uint64
	Place             uint64
	Preemptions       uint64
	Stop              uint64
}

// wireAnnotations wraps a plan's desired updates for the wire.
func wireAnnotations(updates map[string]*api.DesiredUpdates) *planAnnotations {
	out := &planAnnotations{DesiredTGUpdates: make(map[string]*desiredUpdatesWire, len(updates))}
	for name, u := range updates {
		out.DesiredTGUpdates[name] = &desiredUpdatesWire{
			Canary: u.Canary, DestructiveUpdate: u.DestructiveUpdate, Ignore: u.Ignore, InPlaceUpdate: u.InPlaceUpdate,
			Migrate: u.Migrate, Place: u.Place, Preemptions: u.Preemptions, Stop: u.Stop,
		}
	}
	return out
}
