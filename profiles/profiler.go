package profiles

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// Profiler accumulates what groups do on which classes and scores every
// (group, class). It is safe for concurrent use. Its memory per group is
// bounded by the classes and pairs of classes the group has run on, not by
// its history: all evidence is kept as sufficient statistics.
//
// Evidence is kept per class ID. A class whose ID changes (its traits
// changed, or a new class now shares its published name) starts afresh.
type Profiler struct {
	mu  sync.Mutex
	cfg Config

	classes   []Class          // current classes, sorted by ID
	classIdx  []int32          // stable index of classes[i]
	offers    []offer          // offers of classes[i]
	index     map[string]int32 // class ID → stable index, never shrinks
	names     []string         // stable index → class ID
	nodeClass map[string]int32 // node ID → stable class index

	groups map[string]*groupState
	// totals of every observation, the reference for intensity.
	totals [nUsage]float64
	solver solver
}

// groupState is everything known about one group.
type groupState struct {
	profile  profileStats
	evidence evidence
}

// New returns a profiler with no classes and no evidence.
func New(cfg Config) (*Profiler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Profiler{
		cfg:       cfg,
		index:     map[string]int32{},
		nodeClass: map[string]int32{},
		groups:    map[string]*groupState{},
	}, nil
}

// SetNodes replaces the cluster's nodes and recomputes the classes; call
// it whenever the leader's view of the nodes changes. Observations name
// nodes, and are attributed to the class their node is in at the time of
// Observe. declared are classes that may have no node yet (see
// WithDeclared): they are scored like the others, by their traits.
func (p *Profiler) SetNodes(nodes []Node, declared ...Class) error {
	classes, err := ClassesOf(nodes)
	if err == nil {
		classes, err = WithDeclared(classes, declared)
	}
	if err != nil {
		return fmt.Errorf("set nodes: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.classes = classes
	p.classIdx = make([]int32, len(classes))
	p.offers = offersOf(classes)
	clear(p.nodeClass)
	for i, c := range classes {
		idx, ok := p.index[c.ID]
		if !ok {
			idx = int32(len(p.names))
			p.index[c.ID] = idx
			p.names = append(p.names, c.ID)
		}
		p.classIdx[i] = idx
		for _, n := range c.Nodes {
			p.nodeClass[n] = idx
		}
	}
	return nil
}

// Classes returns the current classes, sorted by ID.
func (p *Profiler) Classes() []Class {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Class(nil), p.classes...)
}

// ClassOf returns the ID of the class node is in.
func (p *Profiler) ClassOf(node string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	idx, ok := p.nodeClass[node]
	if !ok {
		return "", false
	}
	return p.names[idx], true
}

// Observe adds one sampling round: an observation per running allocation,
// all covering the same interval. Allocations of a group in one round are
// compared with each other (see efficiency.go), so a round must hold all
// of a group's allocations that were sampled, not a subset chosen by class.
// A bad observation, or one on a node SetNodes did not describe, is an
// error and nothing of the round is kept.
func (p *Profiler) Observe(round []Observation) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	byGroup := map[string][]int{}
	for i := range round {
		o := &round[i]
		if err := o.validate(); err != nil {
			return fmt.Errorf("observe: %w", err)
		}
		if _, ok := p.nodeClass[o.Node]; !ok {
			return fmt.Errorf("observe: allocation %q of %s runs on node %q, which is in no known class", o.Alloc, o.Group, o.Node)
		}
		byGroup[o.Group] = append(byGroup[o.Group], i)
	}
	names := make([]string, 0, len(byGroup))
	for g := range byGroup {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		p.observeGroup(g, round, byGroup[g])
	}
	return nil
}

// observeGroup adds one group's part of a round.
func (p *Profiler) observeGroup(group string, round []Observation, idx []int) {
	gs := p.groups[group]
	if gs == nil {
		gs = &groupState{}
		p.groups[group] = gs
	}
	// Throughput compares allocations only when every one reports it;
	// otherwise the even share of the load is the measure for all.
	withThroughput := true
	for _, i := range idx {
		if round[i].Throughput <= 0 {
			withThroughput = false
			break
		}
	}
	var parts []roundClass
	var demand float64
	var length time.Duration
	for _, i := range idx {
		o := round[i]
		if !withThroughput {
			o.Throughput = 0
		}
		gs.profile.addAlloc(&o)
		length = max(length, o.Duration)
		demand += o.need()
		secs := o.Duration.Seconds()
		p.totals[uCPU] += o.CPUMHz * secs
		p.totals[uRSS] += o.MemRSSBytes * secs
		p.totals[uIORead] += (o.IOReadBps + o.IOWriteBps) * secs
		p.totals[uNetRx] += (o.NetRxBps + o.NetTxBps) * secs

		class := p.nodeClass[o.Node]
		k := -1
		for j := range parts {
			if parts[j].class == class {
				k = j
				break
			}
		}
		if k < 0 {
			parts = append(parts, roundClass{class: class})
			k = len(parts) - 1
		}
		h := o.Duration.Hours()
		parts[k].hours += h
		parts[k].stall += o.stall() * h
		if l, ok := o.logEfficiency(); ok {
			parts[k].sumLog += l * h
			parts[k].valid += h
		}
	}
	gs.profile.addRound(demand)
	gs.evidence.addRound(parts, math.Exp2(-length.Hours()/p.cfg.EvidenceHalfLife.Hours()))
}

// references are the cluster-wide yardsticks of intensity: the average
// group's memory, disk and network per MHz, weighted by CPU.
func (p *Profiler) references() references {
	cpu := p.totals[uCPU]
	return references{
		memBytesPerMHz: ratio(p.totals[uRSS], cpu),
		ioBpsPerMHz:    ratio(p.totals[uIORead], cpu),
		netBpsPerMHz:   ratio(p.totals[uNetRx], cpu),
	}
}

// Profile returns what the profiler knows of a group's needs.
func (p *Profiler) Profile(group string) (Profile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gs := p.groups[group]
	if gs == nil {
		return Profile{}, false
	}
	return gs.profile.profile(group, p.references()), true
}

// Groups returns the groups observed so far, sorted.
func (p *Profiler) Groups() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.groups))
	for g := range p.groups {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}
