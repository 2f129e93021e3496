package wire

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/wire/ingestpb"
)

const (
	// DefaultMaxBatchSamples is the most samples a batch may hold, unless
	// the leader's Limits say otherwise; the agent never enqueues more.
	DefaultMaxBatchSamples = 16384
	// DefaultMaxMessageBytes is the largest message the leader receives,
	// unless its Limits say otherwise; the agent never enqueues a batch that
	// would not fit.
	DefaultMaxMessageBytes = 4 << 20
)

// MaxPayloadBytes is the largest encoded batch an agent may enqueue: a
// message's limit less room for everything but the samples.
const MaxPayloadBytes = DefaultMaxMessageBytes - 4<<10

// EncodeBlock packs samples, and the notes of the same interval, into the
// wire's columnar form, with each distinct string stored once. Times are
// rounded down to the millisecond. The source column is left out when no
// sample has a source, as older agents sent it.
func EncodeBlock(samples []telemetry.Sample, notes ...telemetry.Note) *ingestpb.SampleBlock {
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
		// A block carries notes only beside samples: the leader takes no
		// block without samples.
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
	if slices.ContainsFunc(samples, func(sm telemetry.Sample) bool { return sm.Source != "" }) {
		blk.Source = make([]uint32, n)
		for i, sm := range samples {
			blk.Source[i] = intern(sm.Source)
		}
	}
	for _, nt := range notes {
		blk.NoteGroup = append(blk.NoteGroup, intern(nt.Group))
		blk.NoteMetric = append(blk.NoteMetric, intern(nt.Metric))
		blk.NoteReason = append(blk.NoteReason, intern(nt.Reason))
	}
	return blk
}

const (
	roleGroup  = "group"
	roleAlloc  = "alloc"
	roleTask   = "task"
	roleMetric = "metric"
	roleSource = "source"
	roleReason = "note reason"
)

// checkString reports why s cannot be a sample's string in the role named.
func checkString(role, s string) error {
	if err := telemetry.CheckID(role, s); err != nil {
		return err
	}
	switch role {
	case roleGroup:
		_, err := telemetry.ParseGroup(s)
		return err
	case roleMetric:
		return telemetry.CheckMetric(s)
	}
	return nil
}

// maxNotes bounds the notes of one block: a note per group and metric, and
// a node runs far fewer groups than this.
const maxNotes = 4096

// ErrMalformed marks a batch that does not decode into valid samples.
var ErrMalformed = errors.New("malformed batch")

// ErrLimit marks a batch that decodes but exceeds a limit.
var ErrLimit = errors.New("batch over limit")

// Decoder turns blocks into samples, checking every field; it keeps its
// scratch space between calls and is not safe for concurrent use.
type Decoder struct {
	roles []uint8 // per string: roles it was found valid for
}

const (
	okGroup uint8 = 1 << iota
	okAlloc
	okTask
	okMetric
	okSource
	okReason
)

// decode appends the samples of blk to out[:0] and returns them, or an error
// wrapping ErrMalformed or ErrLimit that names the first bad field. Sample
// times must lie in [telemetry.MinSampleTime, latest].
func (d *Decoder) Decode(blk *ingestpb.SampleBlock, maxSamples int, latest time.Time, out []telemetry.Sample) ([]telemetry.Sample, error) {
	if blk == nil || len(blk.Value) == 0 {
		return nil, fmt.Errorf("%w: no samples", ErrMalformed)
	}
	n := len(blk.Value)
	if n > maxSamples {
		return nil, fmt.Errorf("%w: %d samples exceed the limit of %d per batch", ErrLimit, n, maxSamples)
	}
	if len(blk.TimeOffsetMs) != n || len(blk.Group) != n || len(blk.Alloc) != n || len(blk.Task) != n || len(blk.Metric) != n {
		return nil, fmt.Errorf("%w: columns disagree: %d values, %d times, %d groups, %d allocs, %d tasks, %d metrics",
			ErrMalformed, n, len(blk.TimeOffsetMs), len(blk.Group), len(blk.Alloc), len(blk.Task), len(blk.Metric))
	}
	if len(blk.Source) != 0 && len(blk.Source) != n {
		return nil, fmt.Errorf("%w: columns disagree: %d values, %d sources", ErrMalformed, n, len(blk.Source))
	}
	notes := len(blk.NoteGroup)
	if len(blk.NoteMetric) != notes || len(blk.NoteReason) != notes {
		return nil, fmt.Errorf("%w: note columns disagree: %d groups, %d metrics, %d reasons", ErrMalformed, notes, len(blk.NoteMetric), len(blk.NoteReason))
	}
	if notes > maxNotes {
		return nil, fmt.Errorf("%w: %d notes exceed the limit of %d per batch", ErrLimit, notes, maxNotes)
	}
	if len(blk.Strings) > 5*n+3*notes {
		return nil, fmt.Errorf("%w: %d strings for %d samples and %d notes", ErrMalformed, len(blk.Strings), n, notes)
	}
	d.roles = slices.Grow(d.roles[:0], len(blk.Strings))[:len(blk.Strings)]
	clear(d.roles)
	minMs, maxMs := telemetry.MinSampleTime.UnixMilli(), latest.UnixMilli()
	base := blk.BaseTimeMs
	if base < minMs || base > maxMs {
		return nil, fmt.Errorf("%w: base time %v outside [%v, %v]", ErrMalformed, time.UnixMilli(base).UTC(), telemetry.MinSampleTime, latest.UTC())
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
				return nil, fmt.Errorf("%w: sample %d: %w", ErrMalformed, i, err)
			}
			strs[c] = str
		}
		g, a, t, m := strs[0], strs[1], strs[2], strs[3]
		v := blk.Value[i]
		if err := telemetry.CheckValue(v); err != nil {
			return nil, fmt.Errorf("%w: sample %d (%s %s): %w", ErrMalformed, i, g, m, err)
		}
		off := blk.TimeOffsetMs[i]
		if off > uint64(maxMs-base) {
			return nil, fmt.Errorf("%w: sample %d (%s %s): time %v ms after base is later than %v", ErrMalformed, i, g, m, off, latest.UTC())
		}
		var src string
		if len(blk.Source) != 0 {
			var err error
			if src, err = d.source(blk, blk.Source[i]); err != nil {
				return nil, fmt.Errorf("%w: sample %d (%s %s): %w", ErrMalformed, i, g, m, err)
			}
		}
		out = append(out, telemetry.Sample{Time: time.UnixMilli(base + int64(off)), Group: g, Alloc: a, Task: t, Metric: m, Value: v, Source: src})
	}
	return out, nil
}

// source returns a sample's source string: empty (unknown) or a valid ID.
func (d *Decoder) source(blk *ingestpb.SampleBlock, i uint32) (string, error) {
	if int(i) < len(blk.Strings) && blk.Strings[i] == "" {
		return "", nil
	}
	return d.str(blk, i, roleSource, okSource)
}

// Notes appends the notes of blk to out[:0] and returns them. Call it after
// Decode accepted the block, which checked the note columns' lengths; a
// bad note is an error wrapping ErrMalformed.
func (d *Decoder) Notes(blk *ingestpb.SampleBlock, out []telemetry.Note) ([]telemetry.Note, error) {
	out = out[:0]
	for j := range blk.NoteGroup {
		g, err := d.str(blk, blk.NoteGroup[j], roleGroup, okGroup)
		if err != nil {
			return nil, fmt.Errorf("%w: note %d: %w", ErrMalformed, j, err)
		}
		m, err := d.str(blk, blk.NoteMetric[j], roleMetric, okMetric)
		if err != nil {
			return nil, fmt.Errorf("%w: note %d: %w", ErrMalformed, j, err)
		}
		r, err := d.str(blk, blk.NoteReason[j], roleReason, okReason)
		if err != nil {
			return nil, fmt.Errorf("%w: note %d: %w", ErrMalformed, j, err)
		}
		out = append(out, telemetry.Note{Group: g, Metric: m, Reason: r})
	}
	return out, nil
}

// str returns the string at index i of the block's table after checking it
// is valid in the given role; each (string, role) is checked once per block.
func (d *Decoder) str(blk *ingestpb.SampleBlock, i uint32, role string, ok uint8) (string, error) {
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
