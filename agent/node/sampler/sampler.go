// Package sampler reads how every task on one node really uses its
// resources: CPU and memory from Nomad's client API, and from an Extra
// source what Nomad does not serve (disk and network rates, pressure stall,
// CPU throttling), or serves worse (CPU and memory of a task without
// cgroups, which Nomad counts with its executor).
//
// The promise: every interval, one reading per running task and metric that
// a source actually measured, stamped with the sampling time and saying how
// it was read (telemetry.Source*). Where both Nomad and the Extra read a
// metric, the Extra's reading is the one. A metric that no source measures
// (Nomad's Measured list says so, a cgroup file is missing, a counter has
// only one reading yet) is left out, never reported as zero; where it
// cannot be measured at all (the host's network, pressure on cgroup v1) a
// note per group says why. Allocations are followed with blocking queries,
// not by polling every allocation.
package sampler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/backoff"
	"github.com/foresight-nomad/foresight/telemetry"
)

// watchWait is how long one blocking query for the node's allocations waits.
const watchWait = 5 * time.Minute

// Task identifies one running task on the node.
type Task struct {
	AllocID string
	// Group is namespace/job/group.
	Group string
	Name  string
}

// Extra measures what Nomad's alloc stats do not: it returns, per task, the
// metrics it could read and why others cannot be. A task or metric it could
// not read is absent from the result.
type Extra interface {
	Sample(ctx context.Context, tasks []Task) (map[Task]*TaskExtra, error)
}

// TaskExtra is what an Extra read of one task.
type TaskExtra struct {
	// Metrics are the readings, by metric name.
	Metrics map[string]Reading
	// Absent maps a metric the task cannot have on this node to why
	// (telemetry.Absent*).
	Absent map[string]string
}

// Reading is one metric's value and how it was read (telemetry.Source*).
type Reading struct {
	Value  float64
	Source string
}

func (te *TaskExtra) put(metric string, v float64, source string) {
	if te.Metrics == nil {
		te.Metrics = map[string]Reading{}
	}
	te.Metrics[metric] = Reading{Value: v, Source: source}
}

func (te *TaskExtra) absent(metric, reason string) {
	if te.Absent == nil {
		te.Absent = map[string]string{}
	}
	te.Absent[metric] = reason
}

// Sink receives each interval's samples, and the notes on what the node's
// tasks cannot have; the agent's durable buffer.
type Sink func(samples []telemetry.Sample, notes []telemetry.Note) error

// Config wires a Sampler.
type Config struct {
	Nomad    *api.Client
	NodeID   string
	Interval time.Duration
	Clock    clock.Clock
	// Extra is optional; without it only CPU and memory are sampled.
	Extra  Extra
	Sink   Sink
	Logger hclog.Logger
}

// Sampler samples every running task on one node.
type Sampler struct {
	cfg Config
	log hclog.Logger

	mu     sync.Mutex
	allocs map[string]*api.Allocation
	synced chan struct{}
	once   sync.Once
}

// New checks cfg and returns a Sampler.
func New(cfg Config) (*Sampler, error) {
	if cfg.Nomad == nil || cfg.NodeID == "" || cfg.Sink == nil {
		return nil, errors.New("sampler needs a Nomad client, a node ID and a sink")
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("sample interval must be positive, not %s", cfg.Interval)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Sampler{cfg: cfg, log: cfg.Logger, allocs: map[string]*api.Allocation{}, synced: make(chan struct{})}, nil
}

// Run follows the node's allocations and samples them every interval until
// ctx ends.
func (s *Sampler) Run(ctx context.Context) error {
	watchErr := make(chan error, 1)
	go func() { watchErr <- s.watch(ctx) }()
	select {
	case <-s.synced:
	case err := <-watchErr:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-watchErr:
			return err
		case <-s.cfg.Clock.After(s.cfg.Interval):
		}
		samples, notes := s.SampleOnce(ctx)
		if len(samples) == 0 {
			continue
		}
		if err := s.cfg.Sink(samples, notes); err != nil {
			s.log.Error("store samples", "samples", len(samples), "error", err)
		}
	}
}

// watch keeps the set of allocations on the node current with blocking
// queries; it returns only when ctx ends.
func (s *Sampler) watch(ctx context.Context) error {
	var index uint64
	// Retries wait on the wall clock: they pace requests to a real server,
	// whatever clock the samples are stamped with.
	retry := backoff.Backoff{Min: time.Second, Max: time.Minute}
	for ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: watchWait}).WithContext(ctx)
		allocs, meta, err := s.cfg.Nomad.Nodes().Allocations(s.cfg.NodeID, q)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("follow allocations", "node", s.cfg.NodeID, "error", err)
			retry.Wait(ctx, nil)
			continue
		}
		retry.Reset()
		if meta.LastIndex < index {
			index = 0 // the index went backwards: Nomad's state was reset
		} else {
			index = meta.LastIndex
		}
		s.setAllocs(allocs)
	}
	return ctx.Err()
}

func (s *Sampler) setAllocs(allocs []*api.Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.allocs)
	for _, a := range allocs {
		if a.ClientStatus == api.AllocClientStatusRunning && a.DesiredStatus == api.AllocDesiredStatusRun {
			s.allocs[a.ID] = a
		}
	}
	s.once.Do(func() { close(s.synced) })
}

// Running lists the tasks sampled now, sorted.
func (s *Sampler) Running() []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Task
	for _, a := range s.allocs {
		group := a.Namespace + "/" + a.JobID + "/" + a.TaskGroup
		for name, ts := range a.TaskStates {
			if ts.State == "running" {
				out = append(out, Task{AllocID: a.ID, Group: group, Name: name})
			}
		}
	}
	slices.SortFunc(out, func(a, b Task) int {
		if a.AllocID != b.AllocID {
			if a.AllocID < b.AllocID {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// SampleOnce reads every running task once, and notes per group the
// metrics its tasks cannot have here.
func (s *Sampler) SampleOnce(ctx context.Context) ([]telemetry.Sample, []telemetry.Note) {
	tasks := s.Running()
	if len(tasks) == 0 {
		return nil, nil
	}
	now := s.cfg.Clock.Now()
	read := make(map[Task]map[string]Reading, len(tasks))
	put := func(t Task, metric string, v float64, source string) {
		if read[t] == nil {
			read[t] = map[string]Reading{}
		}
		read[t][metric] = Reading{Value: v, Source: source}
	}
	byAlloc := map[string][]Task{}
	var order []string
	for _, t := range tasks {
		if byAlloc[t.AllocID] == nil {
			order = append(order, t.AllocID)
		}
		byAlloc[t.AllocID] = append(byAlloc[t.AllocID], t)
	}
	for _, id := range order {
		st, err := s.cfg.Nomad.Allocations().Stats(&api.Allocation{ID: id}, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			// The allocation may have just stopped; the watcher will see it.
			s.log.Debug("alloc stats", "alloc", id, "error", err)
			continue
		}
		for _, t := range byAlloc[id] {
			tu := st.Tasks[t.Name]
			if tu == nil || tu.ResourceUsage == nil {
				continue
			}
			if cpu := tu.ResourceUsage.CpuStats; cpu != nil && slices.Contains(cpu.Measured, "Percent") {
				put(t, telemetry.CPUMHz, cpu.TotalTicks, telemetry.SourceNomad)
			}
			if mem := tu.ResourceUsage.MemoryStats; mem != nil {
				if slices.Contains(mem.Measured, "RSS") {
					put(t, telemetry.MemRSSBytes, float64(mem.RSS), telemetry.SourceNomad)
				}
				if slices.Contains(mem.Measured, "Usage") {
					put(t, telemetry.MemUsageBytes, float64(mem.Usage), telemetry.SourceNomad)
				}
			}
		}
	}
	type noteKey struct{ group, metric, reason string }
	noted := map[noteKey]bool{}
	var notes []telemetry.Note
	if s.cfg.Extra != nil {
		extra, err := s.cfg.Extra.Sample(ctx, tasks)
		if err != nil {
			s.log.Warn("extra telemetry", "error", err)
		}
		for _, t := range tasks {
			te := extra[t]
			if te == nil {
				continue
			}
			for name, r := range te.Metrics {
				put(t, name, r.Value, r.Source)
			}
			for _, metric := range slices.Sorted(maps.Keys(te.Absent)) {
				k := noteKey{t.Group, metric, te.Absent[metric]}
				if !noted[k] {
					noted[k] = true
					notes = append(notes, telemetry.Note{Group: k.group, Metric: k.metric, Reason: k.reason})
				}
			}
		}
	}
	var out []telemetry.Sample
	for _, t := range tasks {
		metrics := read[t]
		for _, name := range slices.Sorted(maps.Keys(metrics)) {
			r := metrics[name]
			out = append(out, telemetry.Sample{Time: now, Group: t.Group, Alloc: t.AllocID, Task: t.Name, Metric: name, Value: r.Value, Source: r.Source})
		}
	}
	return out, notes
}
