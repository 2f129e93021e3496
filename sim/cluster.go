// Package sim is a virtual Nomad cluster: nodes, jobs, a scheduler and a
// workload model driven by real traces on a virtual clock. It serves the
// Nomad HTTP API so that Foresight, the official clients and the autoscaler
// can be run against it unchanged. It powers `foresight sim`, the demo, the
// backtests and the end-to-end tests.
//
// Everything the cluster holds is guarded by one mutex: a write (register,
// stop, a clock step) is applied atomically and gets one index, as a Raft
// apply does in Nomad, and every reader sees whole states only.
package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/sim/consul"
)

// Tables whose indexes blocking queries watch, as Nomad's state store names them.
const (
	tableJobs      = "jobs"
	tableNodes     = "nodes"
	tableAllocs    = "allocs"
	tableEvals     = "evals"
	tableSummaries = "job_summary"
	tableScaling   = "scaling_policy"
	tableServices  = "service_registrations"
	tableNodePools = "node_pools"
)

// Options are what a Cluster needs besides its config.
type Options struct {
	Logger hclog.Logger
	// Consul receives the allocations' Consul services, as a Nomad client
	// registers them; nil leaves them out.
	Consul *consul.Server
	// Seed makes IDs and ports reproducible.
	Seed uint64
}

// Cluster is one simulated Nomad region.
type Cluster struct {
	mu     sync.Mutex
	cfg    *Config
	clock  *clock.Virtual
	log    hclog.Logger
	rng    *rand.Rand
	consul *consul.Server

	index  uint64
	tables map[string]uint64
	notify chan struct{}

	groups     []*nodeGroup
	groupNames map[string]*nodeGroup
	nodes      map[string]*simNode
	nodeList   []*simNode

	jobs      map[jobKey]*simJob
	allocs    map[string]*simAlloc
	allocList []*simAlloc
	evals     map[string]*api.Evaluation
	evalList  []*api.Evaluation
	policies  map[string]*api.ScalingPolicy
	services  map[string]*api.ServiceRegistration
	// deployments by ID, and in creation order.
	deployments    map[string]*simDeployment
	deploymentList []*simDeployment
	// watching holds the deployments whose watcher is due to run.
	watching map[string]bool

	events *eventLog

	workloads map[groupKey]*workload
	stepped   time.Time
	collected time.Time
	// timers are future state changes (an allocation starting, a node
	// becoming ready), applied in time order as the clock advances.
	timers timerQueue
	totals Totals
	// api is the HTTP front, once Handler has been called.
	api *nomadAPI
	// regexps caches compiled constraint expressions.
	regexps map[string]*regexp.Regexp
	// acl is Nomad's ACL system, when the cluster file turns it on.
	acl aclState
}

type jobKey struct{ ns, id string }

type groupKey struct {
	ns, job, group string
}

func (k groupKey) String() string { return k.ns + "/" + k.job + "/" + k.group }

// New builds a cluster from its config: nodes up, jobs registered and
// placed, the clock at the config's start.
func New(cfg *Config, opts Options) (*Cluster, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Cluster{
		cfg:        cfg,
		clock:      clock.NewVirtual(cfg.Start),
		log:        log,
		rng:        rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		consul:     opts.Consul,
		tables:     map[string]uint64{},
		notify:     make(chan struct{}),
		groupNames: map[string]*nodeGroup{},
		nodes:      map[string]*simNode{},
		jobs:       map[jobKey]*simJob{},
		allocs:     map[string]*simAlloc{},
		evals:      map[string]*api.Evaluation{},
		policies:   map[string]*api.ScalingPolicy{},
		services:   map[string]*api.ServiceRegistration{},
		events:     newEventLog(eventLogSize),
		workloads:  map[groupKey]*workload{},
		stepped:    cfg.Start,
		collected:  cfg.Start,
	}
	c.deployments, c.watching = map[string]*simDeployment{}, map[string]bool{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.setupACL(cfg.ACL); err != nil {
		return nil, err
	}
	idx := c.bump(tableNodes, tableNodePools)
	for _, gc := range cfg.NodeGroups {
		g := &nodeGroup{cfg: gc, desired: gc.Count}
		c.groups = append(c.groups, g)
		c.groupNames[gc.Name] = g
		for range gc.Count {
			c.addNode(g, cfg.Start, idx)
		}
	}
	for _, jc := range cfg.Jobs {
		if _, err := c.registerLocked(jc.Job, 0, false); err != nil {
			return nil, fmt.Errorf("register job %q: %w", *jc.Job.ID, err)
		}
		for _, wc := range jc.Workloads {
			key := groupKey{*jc.Job.Namespace, *jc.Job.ID, wc.Group}
			c.workloads[key] = &workload{key: key, cfg: wc}
		}
	}
	return c, nil
}

// Now is the cluster's virtual time.
func (c *Cluster) Now() time.Time { return c.clock.Now() }

// Clock is the cluster's virtual clock, for components that must share its
// time. Advance the cluster, not the clock: the cluster applies what is due
// as it moves.
func (c *Cluster) Clock() clock.Clock { return c.clock }

// Advance moves virtual time forward by d, applying every state change that
// falls due on the way (allocations starting, nodes joining) and updating
// workload usage every step of the config.
func (c *Cluster) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked(c.clock.Now().Add(d))
}

func (c *Cluster) advanceLocked(to time.Time) {
	step := c.cfg.Step
	for {
		next := c.stepped.Add(step)
		due, hasTimer := c.timers.peek()
		if hasTimer && !due.After(to) && !due.After(next) {
			c.clock.Set(due)
			c.fireTimers(due)
			continue
		}
		if next.After(to) {
			break
		}
		c.clock.Set(next)
		c.stepWorkloads(next, step)
		c.stepped = next
		if next.Sub(c.collected) >= gcInterval {
			c.collectGarbage(next)
			c.collected = next
		}
	}
	c.clock.Set(to)
}

// Run advances the clock with the wall clock, speed virtual seconds per real
// second, until ctx ends.
func (c *Cluster) Run(ctx context.Context, speed float64) {
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.Advance(time.Duration(float64(now.Sub(last)) * speed))
			last = now
		}
	}
}

// bump starts a new write: it takes the next index, marks the tables it
// touches and wakes blocking queries.
func (c *Cluster) bump(tables ...string) uint64 {
	c.index++
	for _, t := range tables {
		c.tables[t] = c.index
	}
	close(c.notify)
	c.notify = make(chan struct{})
	return c.index
}

// tableIndex is the index of the last write to any of tables.
func (c *Cluster) tableIndex(tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		if i := c.tables[t]; i > max {
			max = i
		}
	}
	if max == 0 {
		max = 1 // Nomad never answers with index 0
	}
	return max
}

// newID returns a UUID drawn from the cluster's seeded generator.
func (c *Cluster) newID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := c.rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// timer is a state change due at a virtual time.
type timer struct {
	at  time.Time
	seq uint64
	fn  func(now time.Time)
}

// timerQueue keeps timers in due order.

type timerQueue struct {
	items []timer
	seq   uint64
}

func (q *timerQueue) push(at time.Time, fn func(time.Time)) {
	q.seq++
	// Insert after every timer due at or before at, so equal times keep
	// their order of arrival.
	i := sort.Search(len(q.items), func(i int) bool { return q.items[i].at.After(at) })
	q.items = append(q.items, timer{})
	copy(q.items[i+1:], q.items[i:])
	q.items[i] = timer{at: at, seq: q.seq, fn: fn}
}

func (q *timerQueue) peek() (time.Time, bool) {
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return q.items[0].at, true
}

func (c *Cluster) fireTimers(now time.Time) {
	for len(c.timers.items) > 0 && !c.timers.items[0].at.After(now) {
		t := c.timers.items[0]
		c.timers.items = c.timers.items[1:]
		t.fn(now)
	}
}
