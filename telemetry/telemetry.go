// Package telemetry is the vocabulary every part of Foresight shares: a
// sample of one task, the names of the metrics a sample may carry, and the
// reference to a task group ("namespace/job/group") with its parsing and
// validation. It imports nothing of Nomad or Consul, so the node role, the
// leader, the forecaster, the profiler and the plugins can all use it.
package telemetry

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Metric names, as DESIGN.md defines them.
const (
	// CPUMHz is the CPU a task used, in MHz.
	CPUMHz = "cpu_mhz"
	// CPUThrottledRatio is the share of CPU periods, 0…1, in which the task
	// wanted more than its limit.
	CPUThrottledRatio = "cpu_throttled_ratio"
	// MemRSSBytes is the task's resident (anonymous) memory, in bytes.
	MemRSSBytes = "mem_rss_bytes"
	// MemUsageBytes is the memory charged to the task, page cache
	// included, in bytes.
	MemUsageBytes = "mem_usage_bytes"
	// IOReadBPS and IOWriteBPS are bytes read from and written to block
	// devices per second.
	IOReadBPS  = "io_read_bps"
	IOWriteBPS = "io_write_bps"
	// NetRxBPS and NetTxBPS are bytes received and sent per second in the
	// task's own network namespace.
	NetRxBPS = "net_rx_bps"
	NetTxBPS = "net_tx_bps"
	// PSICPUSome, PSIMemSome and PSIIOSome are pressure stall: the
	// percentage of time some of the task's threads waited for CPU, memory
	// or I/O.
	PSICPUSome = "psi_cpu_some"
	PSIMemSome = "psi_mem_some"
	PSIIOSome  = "psi_io_some"
)

// metrics are the metric names a sample may carry, in the design's order.
var metrics = []string{
	CPUMHz, CPUThrottledRatio, MemRSSBytes, MemUsageBytes,
	IOReadBPS, IOWriteBPS, NetRxBPS, NetTxBPS,
	PSICPUSome, PSIMemSome, PSIIOSome,
}

// Metrics returns the metric names a sample may carry.
func Metrics() []string { return slices.Clone(metrics) }

// KnownMetric reports whether m is a metric name a sample may carry.
func KnownMetric(m string) bool { return slices.Contains(metrics, m) }

// Sample is one reading of one task.
type Sample struct {
	// Time is when the agent took the reading.
	Time time.Time
	// Group is the task group, keyed namespace/job/group.
	Group string
	// Alloc is the allocation ID.
	Alloc string
	// Task is the task name within the allocation.
	Task string
	// Metric is one of the metric names above.
	Metric string
	// Value is the reading.
	Value float64
	// Source says how the agent read the value (one of the Source names);
	// empty when unknown, as from agents that predate it.
	Source string
}

// Sources: how an agent read a sample. Where a task has a cgroup of its own
// the agent reads it; where it has none (raw_exec, or a controller shared
// with other processes) it sums the task's processes instead, and never
// attributes a shared cgroup's counters to one task.
const (
	// SourceNomad is Nomad's client allocation stats.
	SourceNomad = "nomad"
	// SourceCgroup is the task's own cgroup (v1 controller or v2).
	SourceCgroup = "cgroup"
	// SourceProcess is the sum over the task's process tree of
	// /proc/<pid>/io, stat or status: the task has no cgroup of its own for
	// this metric.
	SourceProcess = "process"
	// SourceProcessOverCgroup is the sum over the task's processes where
	// its cgroup counted no disk I/O in the interval while the processes
	// did (v1 blkio misses much of it): the processes' count is the reading.
	SourceProcessOverCgroup = "process, cgroup counted none"
	// SourceNetns is the task's own network namespace.
	SourceNetns = "netns"
	// SourceSim is a simulated cluster's telemetry endpoint.
	SourceSim = "sim"
)

// Reasons a metric is missing for a task, as a Note states them.
const (
	// AbsentHostNetwork: the task shares the host's network namespace, whose
	// counters are every process's on the host.
	AbsentHostNetwork = "host network: not attributable"
	// AbsentPressureV1: the host has cgroup v1 only, and pressure stall is
	// kept per cgroup only on v2.
	AbsentPressureV1 = "no pressure on cgroup v1"
	// AbsentNoCgroup: the task has no cgroup of its own for the metric's
	// controller (raw_exec, or a cgroup shared with other processes).
	AbsentNoCgroup = "no cgroup of its own: not attributable"
)

// Note says why the tasks of a group on one node carry no sample of a
// metric, so that a reader can tell "not measurable here" from "zero".
type Note struct {
	// Group is the task group, keyed namespace/job/group.
	Group string
	// Metric is the metric that is missing.
	Metric string
	// Reason is why, one of the Absent texts.
	Reason string
}

// Check reports why the note cannot be taken, or nil.
func (n Note) Check() error {
	if _, err := ParseGroup(n.Group); err != nil {
		return err
	}
	if err := CheckMetric(n.Metric); err != nil {
		return fmt.Errorf("group %q note: %w", n.Group, err)
	}
	if err := CheckID("note reason", n.Reason); err != nil {
		return fmt.Errorf("group %q metric %s: %w", n.Group, n.Metric, err)
	}
	return nil
}

// MaxIDBytes bounds every string of a sample, and agent and node IDs.
const MaxIDBytes = 512

// MinSampleTime is the earliest time a sample may carry; anything before
// it comes from a clock that was never set.
var MinSampleTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Check reports why the sample cannot be taken, or nil. It does not check
// how far in the future the time is: that depends on the reader's clock.
func (s Sample) Check() error {
	for _, c := range []struct{ role, val string }{
		{"group", s.Group}, {"alloc", s.Alloc}, {"task", s.Task}, {"metric", s.Metric},
	} {
		if err := CheckID(c.role, c.val); err != nil {
			return err
		}
	}
	if _, err := ParseGroup(s.Group); err != nil {
		return err
	}
	if err := CheckMetric(s.Metric); err != nil {
		return fmt.Errorf("group %q: %w", s.Group, err)
	}
	if err := CheckValue(s.Value); err != nil {
		return fmt.Errorf("group %q metric %s: %w", s.Group, s.Metric, err)
	}
	if s.Time.Before(MinSampleTime) {
		return fmt.Errorf("group %q metric %s: time %v is before %v", s.Group, s.Metric, s.Time, MinSampleTime)
	}
	if s.Source != "" {
		if err := CheckID("source", s.Source); err != nil {
			return fmt.Errorf("group %q metric %s: %w", s.Group, s.Metric, err)
		}
	}
	return nil
}

// CheckMetric reports why m is not a metric a sample may carry, or nil.
func CheckMetric(m string) error {
	if !KnownMetric(m) {
		return fmt.Errorf("unknown metric %q (want one of %s)", m, strings.Join(metrics, ", "))
	}
	return nil
}

// CheckValue reports why v cannot be a reading, or nil.
func CheckValue(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("value %v is not a finite number", v)
	}
	return nil
}

// CheckID reports why s cannot be an identifier in the role named (a
// sample's group, alloc, task or metric, an agent or node ID), or nil.
func CheckID(role, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", role)
	case len(s) > MaxIDBytes:
		return fmt.Errorf("%s of %d bytes exceeds %d", role, len(s), MaxIDBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not UTF-8", role)
	}
	return nil
}

// Point is the demand of a group for one metric over one step: the sum
// over the group's allocations, as the leader's store keeps it.
type Point struct {
	// Time is the start of the step.
	Time time.Time
	// Mean is the mean demand over the raw slots in the step that have data.
	Mean float64
	// Max is the highest demand of a raw slot in the step, if HasMax.
	Max float64
	// HasMax says whether Max is known: the tier read keeps maxima.
	HasMax bool
	// Slots is how many raw slots in the step have data.
	Slots int
}

// GroupRef names a task group.
type GroupRef struct {
	Namespace, Job, Group string
}

// ParseGroup reads a "namespace/job/group" key: three non-empty parts.
func ParseGroup(key string) (GroupRef, error) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return GroupRef{}, fmt.Errorf("group %q is not namespace/job/group", key)
	}
	return GroupRef{Namespace: parts[0], Job: parts[1], Group: parts[2]}, nil
}

// Key is the group's "namespace/job/group" name; an empty namespace is
// Nomad's "default".
func (g GroupRef) Key() string {
	ns := g.Namespace
	if ns == "" {
		ns = "default"
	}
	return ns + "/" + g.Job + "/" + g.Group
}

// String is the group's key.
func (g GroupRef) String() string { return g.Key() }

// Path is the group's key with each part escaped for a URL path, as the
// leader's API and dashboard address a group.
func (g GroupRef) Path() string {
	ns := g.Namespace
	if ns == "" {
		ns = "default"
	}
	return url.PathEscape(ns) + "/" + url.PathEscape(g.Job) + "/" + url.PathEscape(g.Group)
}
