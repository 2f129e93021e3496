package profiles

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// The dynamic node metadata keys the Foresight agents publish (see
// agent/fingerprint). They are repeated here, not imported, because this
// package depends on nothing of ours.
const (
	// MetaPlatform is who owns the node's capacity: external or provider.
	MetaPlatform = "foresight.platform"
	// MetaStorage is the kind of disk under the allocation directory.
	MetaStorage = "foresight.storage"
	// MetaMemTier is the memory per CPU band.
	MetaMemTier = "foresight.mem_tier"
	// MetaNetTier is the link speed band.
	MetaNetTier = "foresight.net_tier"
	// MetaClass is all traits in one value, the one affinities target.
	MetaClass = "foresight.class"
)

// Values of the traits this package reasons about.
const (
	// PlatformExternal is capacity the operator owns: fixed, cheap, preferred.
	PlatformExternal = "external"
	// PlatformProvider is elastic cloud capacity bought on demand.
	PlatformProvider = "provider"
	// StorageSSD is solid-state storage.
	StorageSSD = "ssd"
	// StorageHDD is rotating storage.
	StorageHDD = "hdd"
	// Unknown is the value of a trait nobody measured.
	Unknown = "unknown"
)

// Node is one Nomad client node as the leader reads it from Nomad's node
// API. Only ID is required; every missing trait reads as unknown.
type Node struct {
	// ID is the Nomad node ID.
	ID string
	// Name is the node's name, for messages.
	Name string
	// Datacenter, Pool and NodeClass are Nomad's datacenter, node pool and
	// node class.
	Datacenter, Pool, NodeClass string
	// Attributes are Nomad's fingerprinted attributes (cpu.numcores, …).
	Attributes map[string]string
	// Meta is the node metadata, including the foresight.* keys.
	Meta map[string]string
	// CPUMHz is the node's total compute (cpu.totalcompute).
	CPUMHz float64
	// MemoryMB is the node's memory.
	MemoryMB float64
	// NetworkMbits is the speed of its fastest link, 0 when unknown.
	NetworkMbits float64
	// UsedCPUMHz and UsedMemoryMB are what non-terminal allocations hold.
	UsedCPUMHz, UsedMemoryMB float64
	// Ready is true when the node is ready and eligible for scheduling;
	// only ready nodes count towards free capacity.
	Ready bool
}

// Target is one node attribute and the value it must have, the shape of a
// Nomad affinity or constraint: attribute = "${meta.foresight.class}".
type Target struct {
	// Attribute is the interpolated node attribute, e.g. ${node.class}.
	Attribute string `json:"attribute"`
	// Value is the value it must equal.
	Value string `json:"value"`
}

// Traits are what a class offers, as far as placement is concerned.
type Traits struct {
	// Datacenter, Pool and NodeClass are Nomad's.
	Datacenter string `json:"datacenter"`
	Pool       string `json:"pool"`
	NodeClass  string `json:"node_class"`
	// Platform, Storage, MemTier and NetTier are the agents' foresight.*
	// traits, Unknown when not published.
	Platform string `json:"platform"`
	Storage  string `json:"storage"`
	MemTier  string `json:"mem_tier"`
	NetTier  string `json:"net_tier"`
	// Published is the foresight.class value its nodes carry, if any.
	Published string `json:"published,omitempty"`
}

// Class is a resource class: nodes that share every trait, so that one
// affinity can steer a group to all of them, and a group runs the same on
// any of them.
type Class struct {
	// ID names the class: the foresight.class its nodes publish, extended
	// with the Nomad node class, datacenter or pool only when that value
	// alone would name two classes.
	ID string `json:"id"`
	// Traits are what every node of the class shares.
	Traits Traits `json:"traits"`
	// Targets select exactly this class's nodes when all hold; the first
	// one is the foresight.class (or the node class, when the agents have
	// not published traits).
	Targets []Target `json:"targets"`
	// Nodes are the IDs of its nodes, sorted.
	Nodes []string `json:"nodes"`
	// ReadyNodes counts those that are ready and eligible.
	ReadyNodes int `json:"ready_nodes"`
	// Capacity is what the class has; Free is what its ready nodes have
	// left after what is allocated.
	CPUMHz, MemoryMB         float64
	FreeCPUMHz, FreeMemoryMB float64
	// MaxFreeCPUMHz and MaxFreeMemoryMB are the most one ready node has
	// free: an allocation must fit on a single node.
	MaxFreeCPUMHz, MaxFreeMemoryMB float64
	// NetworkMbits is the summed link speed of its nodes (0 when unknown).
	NetworkMbits float64
	// Declared is the size of one node of the class as configured, for a
	// class whose nodes Foresight buys (a capacity block's node), zero
	// otherwise: it is how big a node is while the class has none.
	Declared NodeSize `json:"declared,omitzero"`
}

// NodeSize is the capacity of one node.
type NodeSize struct {
	CPUMHz   float64 `json:"cpu_mhz"`
	MemoryMB float64 `json:"memory_mb"`
}

// NodeSize is the size of one node of the class: the mean of its nodes,
// or the declared size while it has none; ok is false when neither is
// known.
func (c Class) NodeSize() (size NodeSize, ok bool) {
	if n := float64(len(c.Nodes)); n > 0 {
		return NodeSize{CPUMHz: c.CPUMHz / n, MemoryMB: c.MemoryMB / n}, true
	}
	return c.Declared, c.Declared.CPUMHz > 0 && c.Declared.MemoryMB > 0
}

// MemoryPerCPU is the class's memory per CPU, MB per MHz, the ratio that
// tells memory-optimised hardware from compute-optimised; for a class with
// no node yet, that of its declared node.
func (c Class) MemoryPerCPU() float64 {
	size, _ := c.NodeSize()
	return ratio(size.MemoryMB, size.CPUMHz)
}

// NetworkPerCPU is the class's link speed per CPU, Mbit/s per MHz.
func (c Class) NetworkPerCPU() float64 { return ratio(c.NetworkMbits, c.CPUMHz) }

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// traitsOf reads a node's traits; missing foresight.* metadata is Unknown.
func traitsOf(n Node) Traits {
	meta := func(k string) string {
		if v := strings.TrimSpace(n.Meta[k]); v != "" {
			return v
		}
		return Unknown
	}
	t := Traits{
		Datacenter: n.Datacenter,
		Pool:       n.Pool,
		NodeClass:  n.NodeClass,
		Platform:   meta(MetaPlatform),
		Storage:    meta(MetaStorage),
		MemTier:    meta(MetaMemTier),
		NetTier:    meta(MetaNetTier),
	}
	if v := strings.TrimSpace(n.Meta[MetaClass]); v != "" {
		t.Published = v
	}
	return t
}

// ClassesOf groups nodes into resource classes: nodes with equal Traits
// form one class. It sums capacity and free capacity (free only over ready
// nodes) and names each class so that affinities can target it. Classes
// come back sorted by ID; node IDs must be unique and non-empty.
func ClassesOf(nodes []Node) ([]Class, error) {
	byTraits := map[Traits]*Class{}
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if n.ID == "" {
			return nil, fmt.Errorf("node %q has no ID", n.Name)
		}
		if seen[n.ID] {
			return nil, fmt.Errorf("node %q listed twice", n.ID)
		}
		seen[n.ID] = true
		for _, v := range []float64{n.CPUMHz, n.MemoryMB, n.NetworkMbits, n.UsedCPUMHz, n.UsedMemoryMB} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("node %q: capacity and usage must be finite and not negative, got %g", n.ID, v)
			}
		}
		t := traitsOf(n)
		c := byTraits[t]
		if c == nil {
			c = &Class{Traits: t}
			byTraits[t] = c
		}
		c.Nodes = append(c.Nodes, n.ID)
		c.CPUMHz += n.CPUMHz
		c.MemoryMB += n.MemoryMB
		c.NetworkMbits += n.NetworkMbits
		if n.Ready {
			c.ReadyNodes++
			freeCPU := math.Max(0, n.CPUMHz-n.UsedCPUMHz)
			freeMem := math.Max(0, n.MemoryMB-n.UsedMemoryMB)
			c.FreeCPUMHz += freeCPU
			c.FreeMemoryMB += freeMem
			c.MaxFreeCPUMHz = math.Max(c.MaxFreeCPUMHz, freeCPU)
			c.MaxFreeMemoryMB = math.Max(c.MaxFreeMemoryMB, freeMem)
		}
	}
	out := make([]Class, 0, len(byTraits))
	for _, c := range byTraits {
		sort.Strings(c.Nodes)
		out = append(out, *c)
	}
	name(out)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// WithDeclared adds to classes (from ClassesOf) the declared classes no
// node has joined yet, with no nodes and no capacity, so that a class can
// be scored, chosen and bought while it is empty (a provider pool at zero);
// a declared class whose ID is among classes only lends it its declared
// node size. A declared class needs an ID, its Targets and a positive
// Declared size, and no nodes. The result is sorted by ID.
func WithDeclared(classes, declared []Class) ([]Class, error) {
	out := slices.Clone(classes)
	for _, d := range declared {
		switch {
		case d.ID == "" || len(d.Targets) == 0:
			return nil, fmt.Errorf("declared class %q needs an ID and targets", d.ID)
		case len(d.Nodes) > 0 || d.CPUMHz != 0 || d.MemoryMB != 0:
			return nil, fmt.Errorf("declared class %q cannot have nodes or capacity", d.ID)
		case !(d.Declared.CPUMHz > 0) || !(d.Declared.MemoryMB > 0) || math.IsInf(d.Declared.CPUMHz+d.Declared.MemoryMB, 0):
			return nil, fmt.Errorf("declared class %q: node size %g MHz / %g MB must be positive", d.ID, d.Declared.CPUMHz, d.Declared.MemoryMB)
		}
		if i := slices.IndexFunc(out, func(c Class) bool { return c.ID == d.ID }); i >= 0 {
			out[i].Declared = d.Declared
			continue
		}
		d.Nodes = nil
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// name gives every class its ID and Targets. The base is the published
// foresight.class (what the orchestrator's affinity targets), else the
// Nomad node class, else "default". When several classes share a base, the
// Nomad fields that tell them apart (node class, datacenter, pool, in that
// order) are appended to the ID and to the Targets, so that the targets
// together still select exactly one class. Classes that differ only in
// traits the agents did not publish keep the base and a numeric suffix.
func name(classes []Class) {
	type field struct {
		attr string
		get  func(Traits) string
	}
	fields := []field{
		{"${node.class}", func(t Traits) string { return t.NodeClass }},
		{"${node.datacenter}", func(t Traits) string { return t.Datacenter }},
		{"${node.pool}", func(t Traits) string { return t.Pool }},
	}
	base := func(t Traits) Target {
		switch {
		case t.Published != "":
			return Target{"${meta." + MetaClass + "}", t.Published}
		case t.NodeClass != "":
			return Target{"${node.class}", t.NodeClass}
		default:
			return Target{"${node.class}", ""}
		}
	}
	clash := map[Target][]int{}
	for i := range classes {
		b := base(classes[i].Traits)
		clash[b] = append(clash[b], i)
	}
	for b, members := range clash {
		id := b.Value
		if id == "" {
			id = "default"
		}
		if len(members) == 1 {
			classes[members[0]].ID = id
			classes[members[0]].Targets = []Target{b}
			continue
		}
		var differing []field
		for _, f := range fields {
			if f.attr == b.Attribute {
				continue
			}
			first := f.get(classes[members[0]].Traits)
			for _, m := range members[1:] {
				if f.get(classes[m].Traits) != first {
					differing = append(differing, f)
					break
				}
			}
		}
		ids := map[string][]int{}
		for _, m := range members {
			parts := []string{id}
			targets := []Target{b}
			for _, f := range differing {
				v := f.get(classes[m].Traits)
				parts = append(parts, cmp.Or(v, "none"))
				targets = append(targets, Target{f.attr, v})
			}
			cid := strings.Join(parts, "/")
			classes[m].ID = cid
			classes[m].Targets = targets
			ids[cid] = append(ids[cid], m)
		}
		for cid, same := range ids {
			if len(same) < 2 {
				continue
			}
			// Only unpublished traits differ: no affinity can tell these
			// apart, so the ID says so and the targets stay shared.
			sort.Slice(same, func(i, j int) bool {
				return traitKey(classes[same[i]].Traits) < traitKey(classes[same[j]].Traits)
			})
			for k, m := range same {
				classes[m].ID = fmt.Sprintf("%s#%d", cid, k+1)
			}
		}
	}
}

func traitKey(t Traits) string {
	return strings.Join([]string{t.Datacenter, t.Pool, t.NodeClass, t.Platform, t.Storage, t.MemTier, t.NetTier, t.Published}, "\x00")
}
