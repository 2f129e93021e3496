package ingest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/foresight-nomad/foresight/agent/ingest/ingestpb"
	"github.com/foresight-nomad/foresight/agent/store"
)

// Metrics are the metric names a sample may carry.
var Metrics = []string{
	"cpu_mhz", "cpu_throttled_ratio", "mem_rss_bytes", "mem_usage_bytes",
	"io_read_bps", "io_write_bps", "net_rx_bps", "net_tx_bps",
	"psi_cpu_some", "psi_mem_some", "psi_io_some",
}

const (
	// DefaultMaxBatchSamples is the most samples a batch may hold, unless
	// the leader's Limits say otherwise; the agent never enqueues more.
	DefaultMaxBatchSamples = 16384
	// DefaultMaxMessageBytes is the largest message the leader receives,
	// unless its Limits say otherwise; the agent never enqueues a batch that
	// would not fit.
	DefaultMaxMessageBytes = 4 << 20
)

// messageOverhead is room left in a message for everything but the samples.
const messageOverhead = 4 << 10

// maxIDBytes bounds agent and node ids and every string of a sample.
const maxIDBytes = 512

// minSampleTime is the earliest sample time any batch may carry; anything
// before it is a clock that was never set.
var minSampleTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// EncodeBlock packs samples into the wire's columnar form, with each
// distinct string stored once. Times are rounded down to the millisecond.
func EncodeBlock(samples []store.Sample) *ingestpb.SampleBlock {
	n := len(samples)
	blk := &ingestpb.SampleBlock{
		TimeOffsetMs: make([]uint64, n),
		Group:        make([]uint32, n),
		Alloc:        make([]uint32, n),
		Task:         make([]uint32, n),
		Metric:       make([]uint32, n),
		Value:        make([]float64, n),
	}
	if n == 0 {
		return blk
	}
	base := samples[0].Time.UnixMilli()
	for _, sm := range samples[1:] {
		base = min(base, sm.Time.UnixMilli())
	}
	blk.BaseTimeMs = base
	index := map[string]uint32{}
	intern := func(s string) uint32 {
		i, ok := index[s]
		if !ok {
			i = uint32(len(blk.Strings))
			index[s] = i
			blk.Strings = append(blk.Strings, s)
		}
		return i
	}
	for i, sm := range samples {
		blk.TimeOffsetMs[i] = uint64(sm.Time.UnixMilli() - base)
		blk.Group[i] = intern(sm.Group)
		blk.Alloc[i] = intern(sm.Alloc)
		blk.Task[i] = intern(sm.Task)
		blk.Metric[i] = intern(sm.Metric)
		blk.Value[i] = sm.Value
	}
	return blk
}

// CheckSample reports why a sample would be rejected by the leader, or nil.
// It does not check how far in the future the time is: that depends on the
// leader's clock.
func CheckSample(sm store.Sample) error {
	for _, c := range []struct {
		role string
		val  string
	}{{roleGroup, sm.Group}, {roleAlloc, sm.Alloc}, {roleTask, sm.Task}, {roleMetric, sm.Metric}} {
		if err := checkString(c.role, c.val); err != nil {
			return err
		}
	}
	if err := checkValue(sm.Value); err != nil {
		return fmt.Errorf("%s %s: %w", sm.Group, sm.Metric, err)
	}
	if sm.Time.Before(minSampleTime) {
		return fmt.Errorf("%s %s: time %v is before %v", sm.Group, sm.Metric, sm.Time, minSampleTime)
	}
	return nil
}

const (
	roleGroup  = "group"
	roleAlloc  = "alloc"
	roleTask   = "task"
	roleMetric = "metric"
)

// checkString reports why s cannot be a sample's group, alloc, task or
// metric, or an agent or node id (any other role).
func checkString(role, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", role)
	case len(s) > maxIDBytes:
		return fmt.Errorf("%s of %d bytes exceeds %d", role, len(s), maxIDBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not UTF-8", role)
	case role == roleGroup && !validGroup(s):
		return fmt.Errorf("group %q is not namespace/job/group", s)
	case role == roleMetric && !slices.Contains(Metrics, s):
		return fmt.Errorf("unknown metric %q (want one of %s)", s, strings.Join(Metrics, ", "))
	}
	return nil
}

func validGroup(s string) bool {
	ns, rest, _ := strings.Cut(s, "/")
	job, group, ok := strings.Cut(rest, "/")
	return ok && ns != "" && job != "" && group != "" && !strings.Contains(group, "/")
}

func checkValue(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("value %v is not a finite number", v)
	}
	return nil
}

// errMalformed marks a batch that does not decode into valid samples.
var errMalformed = errors.New("malformed batch")

// errLimit marks a batch that decodes but exceeds a limit.
var errLimit = errors.New("batch over limit")

// blockDecoder turns blocks into samples, checking every field; it keeps its
// scratch space between calls and is not safe for concurrent use.
type blockDecoder struct {
	roles []uint8 // per string: roles it was found valid for
}

const (
	okGroup uint8 = 1 << iota
	okAlloc
	okTask
	okMetric
)

// decode appends the samples of blk to out[:0] and returns them, or an error
// wrapping errMalformed or errLimit that names the first bad field. Sample
// times must lie in [minSampleTime, latest].
func (d *blockDecoder) decode(blk *ingestpb.SampleBlock, maxSamples int, latest time.Time, out []store.Sample) ([]store.Sample, error) {
	if blk == nil || len(blk.Value) == 0 {
		return nil, fmt.Errorf("%w: no samples", errMalformed)
	}
	n := len(blk.Value)
	if n > maxSamples {
		return nil, fmt.Errorf("%w: %d samples exceed the limit of %d per batch", errLimit, n, maxSamples)
	}
	if len(blk.TimeOffsetMs) != n || len(blk.Group) != n || len(blk.Alloc) != n || len(blk.Task) != n || len(blk.Metric) != n {
		return nil, fmt.Errorf("%w: columns disagree: %d values, %d times, %d groups, %d allocs, %d tasks, %d metrics",
			errMalformed, n, len(blk.TimeOffsetMs), len(blk.Group), len(blk.Alloc), len(blk.Task), len(blk.Metric))
	}
	if len(blk.Strings) > 4*n {
		return nil, fmt.Errorf("%w: %d strings for %d samples", errMalformed, len(blk.Strings), n)
	}
	d.roles = slices.Grow(d.roles[:0], len(blk.Strings))[:len(blk.Strings)]
	clear(d.roles)
	minMs, maxMs := minSampleTime.UnixMilli(), latest.UnixMilli()
	base := blk.BaseTimeMs
	if base < minMs || base > maxMs {
		return nil, fmt.Errorf("%w: base time %v outside [%v, %v]", errMalformed, time.UnixMilli(base).UTC(), minSampleTime, latest.UTC())
	}
	out = slices.Grow(out[:0], n)
	columns := [4]struct {
		idx  []uint32
		role string
		ok   uint8
	}{{blk.Group, roleGroup, okGroup}, {blk.Alloc, roleAlloc, okAlloc}, {blk.Task, roleTask, okTask}, {blk.Metric, roleMetric, okMetric}}
	var strs [4]string
	for i := range n {
		for c, col := range columns {
			str, err := d.str(blk, col.idx[i], col.role, col.ok)
			if err != nil {
				return nil, fmt.Errorf("%w: sample %d: %w", errMalformed, i, err)
			}
			strs[c] = str
		}
		g, a, t, m := strs[0], strs[1], strs[2], strs[3]
		v := blk.Value[i]
		if err := checkValue(v); err != nil {
			return nil, fmt.Errorf("%w: sample %d (%s %s): %w", errMalformed, i, g, m, err)
		}
		off := blk.TimeOffsetMs[i]
		if off > uint64(maxMs-base) {
			return nil, fmt.Errorf("%w: sample %d (%s %s): time %v ms after base is later than %v", errMalformed, i, g, m, off, latest.UTC())
		}
		out = append(out, store.Sample{Time: time.UnixMilli(base + int64(off)), Group: g, Alloc: a, Task: t, Metric: m, Value: v})
	}
	return out, nil
}

// str returns the string at index i of the block's table after checking it
// is valid in the given role; each (string, role) is checked once per block.
func (d *blockDecoder) str(blk *ingestpb.SampleBlock, i uint32, role string, ok uint8) (string, error) {
	if int(i) >= len(blk.Strings) {
		return "", fmt.Errorf("%s index %d outside a table of %d strings", role, i, len(blk.Strings))
	}
	s := blk.Strings[i]
	if d.roles[i]&ok == 0 {
		if err := checkString(role, s); err != nil {
			return "", err
		}
		d.roles[i] |= ok
	}
	return s, nil
}
